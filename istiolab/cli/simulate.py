"""``istiolab simulate``: run one scenario and print its per-route, per-cluster summary.

Exit codes: 0 success, 1 the scenario has errors, 2 usage errors or a missing scenario file,
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EngineOpt,
    FormatOpt,
    echo_findings,
    echo_result,
    usage_error,
    warm_fast_engine,
)

if TYPE_CHECKING:
    from istiolab.sim.results import Result
    from istiolab.sim.scenario import Scenario

__all__ = [
    "bare_ms_warnings",
    "explained_warnings",
    "format_summary",
    "register",
    "result_files",
    "save_both",
    "write_readme",
]

_COLUMNS = [
    "route",
    "cluster",
    "requests",
    "rps",
    "success_ratio",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "flags",
]


def _parse_set(items: list[str]) -> dict[str, Any]:
    from istiolab.config.codecs import load_data

    out: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise usage_error(f"--set takes dotted.path=value, got {item!r}")
        try:
            out[path.strip()] = load_data(raw) if raw.strip() else ""
        except Exception:
            out[path.strip()] = raw
    return out


def _summary_doc(
    result: Result, sc: Scenario, seed: int, notes: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """The ``--format json`` document (every field is in docs/outputs.md).

    Summary rows, totals (with the worst metrics window and the recovery, see
    :meth:`Result.window_totals <istiolab.sim.results.Result.window_totals>`), warnings (the
    scenario's *notes* first), assumptions, seed and run lengths.
    """
    return {
        "summary": [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in result.summary()[_COLUMNS].to_dict(orient="records")
        ],
        "totals": {**result.totals(), **result.window_totals()},
        "warnings": [*(notes or []), *explained_warnings(result, sc)],
        "assumptions": result.assumptions,
        "seed": seed,
        "duration_s": sc.run.duration_s,
        "warmup_s": sc.run.warmup_s,
    }


def format_summary(result: Result, sc: Scenario, seed: int) -> str:
    """The human summary: one line per route and cluster, the totals, status codes, retries."""
    summary = result.summary()
    totals = result.totals()
    lines = [
        f"{sc.name}: {sc.description}".rstrip(": "),
        f"seed {seed}, {sc.run.duration_s:g} s simulated "
        f"({sc.run.warmup_s:g} s warm-up left out)\n",
        f"{'route':<22} {'cluster':<46} {'requests':>8} {'rps':>8} {'non-5xx':>7} "
        f"{'mean ms':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}  flags",
    ]
    for row in summary.itertuples():
        row_flags: dict[str, int] = row.flags  # type: ignore[assignment]
        flags = ", ".join(f"{k} {v}" for k, v in sorted(row_flags.items())) or "-"
        lines.append(
            f"{str(row.route)[:22]:<22} {str(row.cluster)[:46]:<46} {row.requests:>8d} "
            f"{row.rps:>8.1f} {row.success_ratio:>7.2%} {row.mean_ms:>8.2f} {row.p50_ms:>8.2f} "
            f"{row.p90_ms:>8.2f} {row.p99_ms:>8.2f}  {flags}"
        )
    flags = ", ".join(f"{k} {v}" for k, v in sorted(totals["flags"].items())) or "-"
    lines.append(
        f"{'total':<69} {totals['requests']:>8d} {totals['rps']:>8.1f} "
        f"{_num(totals['success_ratio'], '.2%'):>7} {_num(totals['mean_ms'], '.2f'):>8} "
        f"{_num(totals['p50_ms'], '.2f'):>8} {_num(totals['p90_ms'], '.2f'):>8} "
        f"{_num(totals['p99_ms'], '.2f'):>8}  {flags}"
    )
    codes = result.codes()
    codes = codes[codes["t_s"] >= sc.run.warmup_s]  # the time series includes the warm-up
    if not codes.empty:
        by = codes.groupby("status")["count"].sum().sort_index()
        parts = [f"{int(str(k))} × {int(v)}" for k, v in by.items()]
        lines.append("status codes after the warm-up: " + ", ".join(parts))
    if totals.get("retries"):
        lines.append(
            f"retries: {totals['retries']} (upstream requests {totals['upstream_requests']})"
        )
    lines.extend(_accounting_lines(result, sc))
    return "\n".join(lines)


def _num(value: float, spec: str) -> str:
    """*value* formatted, or ``-`` for NaN.

    A run with no request after the warm-up has no ratio or percentile; ``nan%`` read like one.
    """
    return "-" if value != value else format(value, spec)


def explained_warnings(result: Result, sc: Scenario) -> list[dict[str, str]]:
    """The run's warnings, a ``degenerate`` one naming the distributions that explain it.

    A run that completes nothing usually has a time far longer than the run: a service time
    of ``lognormal(40s, …)`` meant as 40 ms, or a 40 s deterministic delay. Every distribution
    whose mean is at least the measured window (duration − warm-up) is named.
    """
    from istiolab.sim.dists import distributions

    window = sc.run.duration_s - sc.run.warmup_s
    out = []
    for w in result.warnings:
        if w["code"] == "degenerate":
            slow = [
                f"{path} = {spec.shorthand()} (mean {spec.build().mean:g} s)"
                for path, spec in distributions(sc)
                if spec.build().mean >= window
            ]
            if slow:
                w = {
                    **w,
                    "message": f"{w['message']}; longer than the {window:g} s measured window: "
                    + "; ".join(slow),
                }
        out.append(w)
    return out


def _accounting_lines(result: Result, sc: Scenario | None = None) -> list[str]:
    """Success latency, unfinished requests, utilisation per tier, warnings, assumptions."""
    from istiolab.sim.accounting import describe

    totals = result.totals()
    lines: list[str] = []
    if "success_p99_ms" in totals:
        lines.append(
            f"successful requests only: p50 {_num(totals['success_p50_ms'], '.2f')} ms, "
            f"p99 {_num(totals['success_p99_ms'], '.2f')} ms, "
            f"p99.9 {_num(totals['success_p999_ms'], '.2f')} ms"
        )
    if "unfinished" in totals:
        lines.append(
            f"unfinished at the end: {totals['unfinished']} "
            f"(a steady state holds about {totals['in_flight_expected']:.0f} in flight; "
            f"{totals['unfinished_excess']} beyond that, {totals['rejected']} refused); "
            f"success counting them: {totals['success_ratio_incl_unfinished']:.2%}"
        )
    lines.extend(_window_lines(result))
    queues = totals.get("queues") or {}
    if queues:
        parts = [
            f"{tier} {q['rho']:.2f}"
            # the fast engine counts no queue waits (NaN): its tiers show ρ alone
            + (
                f" (waits {q['wait_probability']:.0%}, {q['mean_wait_ms']:.2f} ms)"
                if q["wait_probability"] == q["wait_probability"]
                else ""
            )
            for tier, q in queues.items()
            if q["rho"] == q["rho"]  # NaN: a tier with no capacity in the window
        ]
        lines.append("utilisation ρ: " + "; ".join(parts))
    for w in result.warnings if sc is None else explained_warnings(result, sc):
        lines.append(f"warning [{w['code']}]: {w['message']}")
    paragraph = describe(result.assumptions)
    if paragraph:
        lines.append(paragraph)
    return lines


def bare_ms_warnings(path: Path, overrides: dict[str, Any], sc: Scenario) -> list[dict[str, str]]:
    """``bare_ms`` warnings: distribution times the file or ``--set`` wrote as bare numbers.

    Args:
        path: The scenario file *sc* was read from.
        overrides: The ``--set`` overrides applied to it.
        sc: The scenario as run.

    Returns:
        One ``{code, message}`` per bare number, naming the field (empty when the file cannot
        be read again, which the load would already have reported).
    """
    from istiolab.config import codecs
    from istiolab.sim.accounting import warning
    from istiolab.sim.dists import bare_numbers

    try:
        docs = codecs.loads(codecs.read_text(path), str(path))
    except (codecs.InputRefused, OSError):
        return []
    raw = docs[0].data if docs and docs[0].error is None else None
    if not isinstance(raw, dict):
        return []
    for dotted, value in overrides.items():
        _put(raw, dotted.split("."), value)
    return [
        warning(
            "bare_ms",
            f"{where}: {number} taken as {number} ms; write {number}ms "
            f"(or {float(number) / 1000:g}s if seconds were meant)",
        )
        for where, number in bare_numbers(sc, raw)
    ]


def _put(data: Any, parts: list[str], value: Any) -> None:
    """Set a dotted path in raw scenario data (list items by index or name), creating maps."""
    head, rest = parts[0], parts[1:]
    if isinstance(data, list):
        index = int(head) if head.lstrip("-").isdigit() else None
        if index is None:
            index = next(
                (i for i, x in enumerate(data) if isinstance(x, dict) and x.get("name") == head),
                None,
            )
        if index is None or not -len(data) <= index < len(data):
            return  # the override was validated already; a path it cannot reach is no concern
        if rest:
            _put(data[index], rest, value)
        else:
            data[index] = value
    elif isinstance(data, dict):
        if not rest:
            data[head] = value
            return
        if not isinstance(data.get(head), (dict, list)):
            data[head] = {}
        _put(data[head], rest, value)


def _window_lines(result: Result) -> list[str]:
    """The worst metrics window after the warm-up, and the recovery after the first event."""
    w = result.window_totals()
    if not w["windows"]:
        return []
    interval = result.meta["config"]["interval_s"]
    line = (
        f"worst {interval:g} s window after the warm-up: p99 {_num(w['window_p99_ms_max'], '.2f')}"
        f" ms, error rate {_num(w['window_error_rate_max'], '.2%')}"
    )
    ttr = w["time_to_recover_s"]
    if ttr == ttr:
        first = min(float(e["t_s"]) for e in result.events)
        when = "never, within the run" if ttr == float("inf") else f"after {ttr:g} s"
        line += f"; back under 1 % errors per window {when} (first event at {first:g} s)"
    return [line]


def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML (see docs/scenario.md).")],
    duration: Annotated[float | None, typer.Option("--duration", help="Simulated seconds.")] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed, >= 0 (default: the scenario's).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: dotted.path=value (repeatable)."),
    ] = None,
    fmt: FormatOpt = "table",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the result frames and overview.png here.")
    ] = None,
    engine: EngineOpt = "auto",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Run even when more requests are expected than the limit (docs/limits.md).",
        ),
    ] = False,
) -> None:
    """Simulate a scenario: AWS LB → ingress node pool → Envoy routes → backends.

    Prints requests, rps, success ratio, p50/p90/p99 and response flags per route and
    cluster. Bad scenario files get findings with field paths (exit 1).

    Examples:
        istiolab simulate sim/scenarios/canary-90-10.yaml

        istiolab simulate sim/scenarios/capacity-peak.yaml --set ingress.nodes_per_az=3 --seed 7

        istiolab simulate sim/scenarios/retry-storm.yaml --format json --out build/storm

        istiolab simulate sim/scenarios/seed-httpbin.yaml --duration 600 --engine fast
    """
    from istiolab.errors import ConfigError, SimulationError
    from istiolab.sim.engine import simulate as run_simulation
    from istiolab.sim.scenario import load_scenario

    if not scenario.exists():
        raise usage_error(f"{scenario}: no such file")
    if seed is not None and seed < 0:
        raise usage_error(f"--seed must be >= 0, got {seed}")
    overrides = _parse_set(set_ or [])
    if duration is not None:
        overrides["run.duration_s"] = duration
    if out is not None:  # before the run, not after minutes of it
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise usage_error(f"--out {out}: {err.strerror or err}") from None
        if not os.access(out, os.W_OK):
            raise usage_error(f"--out {out}: not writable")
    from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

    from istiolab.analysis.sweep import PlainProgress

    try:
        sc = load_scenario(scenario)
        if overrides:
            sc = sc.with_overrides(overrides)
        notes: list[dict[str, str]] = bare_ms_warnings(scenario, overrides, sc)
        for note in notes:  # once, before the run: a 40 s service time meant as 40 ms is slow
            typer.echo(f"warning [{note['code']}]: {note['message']}", err=True)
        warm_fast_engine(engine, sc)
        # Progress of simulated time on stderr: a bar on a terminal, else a plain line every
        # 10 % (a long run in CI or under nohup shows it is moving, without bar redraws).
        with (
            tqdm(total=100, desc=sc.name, unit="%", disable=None, leave=False, file=sys.stderr)
            if sys.stderr.isatty()
            else nullcontext(PlainProgress(100, f"simulate {sc.name}", step=0.1))
        ) as bar:

            def progress(fraction: float) -> None:
                bar.update(round(fraction * 100) - bar.n)

            result = run_simulation(sc, seed=seed, progress=progress, engine=engine, force=force)
    except ConfigError as err:
        echo_findings(err.findings)
        raise typer.Exit(EXIT_FAILED) from None
    except SimulationError as err:
        raise usage_error(str(err)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    found = list(getattr(result, "findings", ()))
    if found:
        echo_findings(found)
    used_seed = seed if seed is not None else sc.run.seed
    echo_result(
        fmt,
        lambda: _summary_doc(result, sc, used_seed, notes),
        lambda: format_summary(result, sc, used_seed),
        json_default=str,
    )
    if out is not None:
        from istiolab.lab.plots import overview

        out.mkdir(parents=True, exist_ok=True)
        formats = save_both(result, out)
        overview(result).savefig(out / "overview.png", dpi=100)
        write_readme(out, result_files(formats), title=f"Simulation {sc.name}, seed {used_seed}")
        typer.echo(
            f"wrote result frames ({' and '.join(formats)}), overview.png and README.md to {out}",
            err=True,
        )


def parquet_available() -> bool:
    """True when pandas can write Parquet (pyarrow or fastparquet installed)."""
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("pyarrow", "fastparquet"))


def save_both(result: Result, out: Path) -> list[str]:
    """Write the result's frames as CSV, and also as Parquet when a Parquet engine is installed.

    CSV first, Parquet last: ``meta.json`` names the format written last, which is the one
    :meth:`Result.load <istiolab.sim.results.Result.load>` reads back (Parquet keeps dtypes).

    Returns:
        The formats written, e.g. ``["csv", "parquet"]``.
    """
    result.save(out, fmt="csv")
    if not parquet_available():
        return ["csv"]
    result.save(out, fmt="parquet")
    return ["csv", "parquet"]


FRAME_DOCS: dict[str, str] = {
    "summary": "one row per route, cluster and version: requests and latency after the warm-up",
    "timeseries": "per interval and route: rps, success ratio, percentiles, version shares",
    "codes": "per interval, route, status and response flag: completed requests",
    "utilisation": "per interval and component: busy servers and waiting requests at the "
    "interval's end (a sample)",
    "stages": "latency split by pipeline stage per route, cluster and version",
    "upstream": "upstream attempts per cluster, host, status and flag",
    "ingress": "requests per ingress node and zone, and each node's share",
    "trace": "sampled requests as spans (Zipkin-like)",
    "little": "Little's law check per route: λ, W, λW and L",
    "histograms": "HdrHistogram encodings of latency per route, cluster, version and stage",
}
"""One line per frame of a saved result (the column tables come from ``sim.results.SCHEMAS``,
the same data ``docs/outputs.md`` lists)."""


def result_files(formats: list[str]) -> list[tuple[str, str, list[tuple[str, str, str, str]]]]:
    """The files of a saved result as (file name, meaning, [(column, type, unit, meaning)])."""
    from istiolab.sim.results import SCHEMAS

    exts = " / ".join(f"`.{f}`" for f in formats)
    files: list[tuple[str, str, list[tuple[str, str, str, str]]]] = []
    for name, columns in SCHEMAS.items():
        cols = [(c.name, str(c.dtype), c.unit, c.doc) for c in columns]
        files.append((f"{name} ({exts})", FRAME_DOCS.get(name, ""), cols))
    files.append(
        (
            "meta.json",
            "run id, seed, scenario, params, config, totals, warnings, assumptions, events "
            "(fields in docs/outputs.md); `Result.load(DIR)` reads the folder back",
            [],
        )
    )
    files.append(("overview.png", "the overview plot (events marked)", []))
    return files


def write_readme(
    out: Path, files: list[tuple[str, str, list[tuple[str, str, str, str]]]], *, title: str
) -> Path:
    """Write ``out/README.md``: every file of the folder, what it holds, and its columns."""
    lines = [
        f"# {title}",
        "",
        "Written by istiolab. CSV and Parquet files hold the same columns; dict columns are",
        "JSON text. Durations are in the unit each column states; docs/outputs.md has more.",
        "",
    ]
    for name, doc, cols in files:
        lines += [f"## {name}", "", doc, ""]
        if cols:
            lines += ["| column | type | unit | meaning |", "|---|---|---|---|"]
            lines += [f"| `{c}` | {t} | {u or '-'} | {d} |" for c, t, u, d in cols]
            lines.append("")
    path = out / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to *app*."""
    app.command("simulate")(simulate)
