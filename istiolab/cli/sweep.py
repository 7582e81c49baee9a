"""``istiolab sweep`` and ``istiolab plan``: parameter sweeps and capacity planning from the shell.

:func:`register` adds both commands to the ``istiolab`` Typer app. Exit codes follow
the rest of the CLI: 0 success; 1 the scenario has errors, a run failed (``sweep``) or no value
meets the objectives (``plan``); 2 usage errors (bad ``--param``, ``--slo``, executor, output
file) and unreadable inputs. User input never produces a traceback.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    EngineOpt,
    FormatOpt,
    echo_findings,
    echo_result,
    say,
    usage_error,
    warm_fast_engine,
)

if TYPE_CHECKING:
    import pandas as pd

    from istiolab.sim.scenario import Scenario

__all__ = ["parse_param", "register"]

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file (see docs/scenario.md).")]
SeedsOpt = Annotated[
    int, typer.Option("--seeds", "-k", min=1, help="Replications per grid point / knob value.")
]
BaseSeedOpt = Annotated[
    int | None,
    typer.Option("--seed", min=0, help="Root seed of the replications; default run.seed."),
]
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        "-e",
        help="auto (default: serial when every run is on the fast engine and the whole sweep "
        "is under 2 M requests, else local), local (process pool), serial (this process) or "
        "dask (see --dask).",
    ),
]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask",
        help="Dask scheduler ADDRESS (tcp://host:8786) or local:N for a LocalCluster of N "
        "processes on 127.0.0.1 without dashboard; implies --executor dask "
        "(default local:<cpu count>).",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", "-j", min=1, help="Processes for --executor local; default: CPUs."),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Also write every run to FILE.csv or FILE.parquet."),
]
SweepOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Write every run to FILE.csv or FILE.parquet; or, for a path without a "
        "suffix, a folder with runs and points as CSV (and Parquet with pyarrow) and a "
        "README.md describing every column.",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar (it shows only on a terminal).")
]

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def _split_top(text: str) -> list[str]:
    """Split at commas that are not inside (), [] or {} (``lognormal(5ms, cv=0.8)`` stays)."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _scalar(text: str) -> Any:
    """A command-line value: int, float, bool, null, YAML list/mapping, else the string."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
        if math.isfinite(value):
            return value
    except ValueError:
        pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "~"):
        return None
    if text[:1] in "[{":
        import yaml

        from istiolab.config.codecs import load_data

        try:
            return load_data(text)  # YAML is read only through the bounded loader
        except yaml.YAMLError:
            return text
    return text


def parse_param(text: str) -> tuple[str, list[Any]]:
    """Parse ``--param dotted.path=v1,v2,...`` into the path and its values.

    Values are ints, floats, booleans, ``null``, YAML lists/mappings or strings; ``a..b`` is the
    integer range a, a+1, …, b. Commas inside brackets do not split (``exp(5ms)``,
    ``lognormal(5ms, cv=0.8)``).

    Raises:
        ValueError: When there is no ``=``, no path or no value.

    Example:
        >>> parse_param("ingress.nodes_per_az=1..3")
        ('ingress.nodes_per_az', [1, 2, 3])
    """
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path or not rest.strip():
        raise ValueError(f"--param expects dotted.path=v1,v2,..., got {text!r}")
    values: list[Any] = []
    for item in _split_top(rest):
        if not item:
            raise ValueError(f"--param {path}: empty value in {rest!r}")
        m = _RANGE.match(item)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ValueError(f"--param {path}: empty range {item!r}")
            values.extend(range(a, b + 1))
        else:
            values.append(_scalar(item))
    return path, values


def _executor(executor: str, dask: str | None) -> str:
    if dask is not None:
        if executor not in ("auto", "local", "dask"):
            raise usage_error(f"--dask cannot be combined with --executor {executor}")
        return dask
    if executor == "dask":
        from istiolab.analysis.sweep import available_cpus

        return f"local:{available_cpus()}"
    if executor not in ("auto", "local", "serial"):
        raise usage_error(f"--executor must be auto, local, serial or dask, not {executor!r}")
    return executor


def _check_out(out: Path | None) -> None:
    if out is None:
        return
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise usage_error(f"--out must end in .csv or .parquet, got {out}")
    if suffix == ".parquet" and not any(
        importlib.util.find_spec(m) is not None for m in ("pyarrow", "fastparquet")
    ):
        raise usage_error(
            "writing .parquet needs pyarrow: pip install 'istiolab[parquet]' "
            "(or use --out FILE.csv)"
        )
    if not out.parent.exists():
        raise usage_error(f"--out: folder {out.parent} does not exist")


def _write(frame: pd.DataFrame, out: Path) -> None:
    # Written beside the target, then renamed over it: a killed or failed sweep never leaves
    # a half-written file where a complete one was expected.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, out)
    except OSError as err:
        raise usage_error(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"wrote {len(frame)} row(s) to {out}", err=True)


def _check_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise usage_error(f"--out {out}: {err.strerror or err}") from None
    if not os.access(out, os.W_OK):
        raise usage_error(f"--out {out}: not writable")


_POINT_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("metric", "str", "", "the run column summarised (runs.csv), e.g. p99_ms or rho_max"),
    ("n", "int64", "", "runs of the point with a value"),
    ("errors", "int64", "", "failed runs of the point"),
    ("mean", "float64", "per metric", "mean over seeds"),
    ("std", "float64", "per metric", "sample standard deviation over seeds"),
    ("ci_low", "float64", "per metric", "lower end of the two-sided Student-t interval"),
    ("ci_high", "float64", "per metric", "upper end of the interval (NaN with one seed)"),
    ("min", "float64", "per metric", "smallest value over seeds"),
    ("max", "float64", "per metric", "largest value over seeds (the worst seed for rho_max)"),
    ("warnings", "str", "", "warning codes any run of the point raised, comma-separated"),
)
"""Columns of ``points.csv`` after the grid columns (see ``analysis.compare.aggregate``)."""

_RUN_DOCS: dict[str, tuple[str, str]] = {
    "seed": ("", "the run's seed: simulate --seed SEED with the row's parameters reproduces it"),
    "run_id": ("", "the Result's run id (hash of scenario name, seed and parameters)"),
    "requests": ("", "client requests started after the warm-up"),
    "rps": ("1/s", "requests / (duration - warm-up)"),
    "success_ratio": ("", "share of completed requests with status < 500"),
    "p50_ms": ("ms", "median latency of all completed requests"),
    "p90_ms": ("ms", "90th percentile latency"),
    "p99_ms": ("ms", "99th percentile latency"),
    "mean_ms": ("ms", "mean latency"),
    "retries": ("", "retries made"),
    "upstream_requests": ("", "upstream attempts made"),
    "p999_ms": ("ms", "99.9th percentile latency"),
    "success_p99_ms": ("ms", "99th percentile latency of successful requests only"),
    "success_p999_ms": ("ms", "99.9th percentile latency of successful requests only"),
    "unfinished": ("", "arrivals after the warm-up still in flight at the end"),
    "success_ratio_incl_unfinished": ("", "success ratio counting excess unfinished as failed"),
    "error_rate": ("", "1 - success_ratio_incl_unfinished"),
    "rho_max": ("", "time-integrated utilisation of the busiest tier"),
    "warnings": ("", "the run's warning codes, comma-separated (docs/outputs.md)"),
    "error": ("", "why the run failed; empty when it did not"),
}


def _write_folder(frame: pd.DataFrame, points: pd.DataFrame, out: Path, name: str) -> None:
    """``runs`` and ``points`` as CSV (and Parquet when possible) and a README.md."""
    from istiolab.analysis.sweep import METRICS
    from istiolab.cli.simulate import parquet_available, write_readme

    formats = ["csv", "parquet"] if parquet_available() else ["csv"]
    for stem, data in (("runs", frame), ("points", points)):
        plain = data.copy()
        plain.attrs = {}  # attrs hold the grid as a dict, which Parquet metadata cannot take
        for fmt in formats:
            _write(plain, out / f"{stem}.{fmt}")
    grid = list(frame.columns[: list(frame.columns).index("seed")])
    dtypes = dict(METRICS)
    runs_cols = [(g, "as given", "", "grid parameter (dotted scenario path)") for g in grid]
    for col in frame.columns[len(grid) :]:
        unit, doc = _RUN_DOCS.get(col, ("", ""))
        runs_cols.append((col, dtypes.get(col, str(frame[col].dtype)), unit, doc))
    point_cols = [(g, "as given", "", "grid parameter") for g in grid] + list(_POINT_COLUMNS)
    exts = " / ".join(f"`.{f}`" for f in formats)
    write_readme(
        out,
        [
            (f"runs ({exts})", "one row per run (grid point x seed)", runs_cols),
            (f"points ({exts})", "one row per grid point and metric, over seeds", point_cols),
        ],
        title=f"Sweep {name}",
    )
    typer.echo(f"wrote README.md to {out}", err=True)


def _load(path: Path) -> Scenario:
    """Load a scenario: unreadable → exit 2, invalid → findings and exit 1."""
    from istiolab.errors import ConfigError
    from istiolab.sim.scenario import load_scenario

    try:
        return load_scenario(path)
    except ConfigError as err:
        if any(f.code == "IL005" for f in err.findings):
            raise usage_error(err.findings[0].message) from None
        echo_findings(err.findings)
        raise typer.Exit(EXIT_FAILED) from None


def _say_bare_ms(path: Path, overrides: dict[str, Any], sc: Scenario) -> None:
    """Print the scenario's ``bare_ms`` warnings on stderr, once, before any run."""
    from istiolab.cli.simulate import bare_ms_warnings

    for note in bare_ms_warnings(path, overrides, sc):
        typer.echo(f"warning [{note['code']}]: {note['message']}", err=True)


def _say_engine_notes(frame: pd.DataFrame) -> None:
    """Say on stderr, once each, why ``--engine auto`` ran SimPy instead of the compiled engine."""
    for note in frame.attrs.get("engine_notes", []):
        typer.echo(f"note [IL401]: {note}", err=True)


def _usage_findings(err: Any) -> typer.Exit:
    echo_findings(err.findings)
    return typer.Exit(EXIT_USAGE)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return out


def _table(frame: pd.DataFrame) -> str:
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 200):
        return frame.to_string(index=False, float_format=lambda x: f"{x:.5g}", na_rep="-")


def sweep_cmd(
    scenario: ScenarioArg,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="dotted.path=v1,v2,... (repeatable; the grid is their product; a..b is a "
            "range of integers).",
        ),
    ] = None,
    seeds: SeedsOpt = 1,
    seed: BaseSeedOpt = None,
    executor: ExecutorOpt = "auto",
    dask: DaskOpt = None,
    workers: WorkersOpt = None,
    out: SweepOutOpt = None,
    fmt: FormatOpt = "table",
    quiet: QuietOpt = False,
    engine: EngineOpt = "auto",
    per_run: Annotated[
        bool, typer.Option("--per-run", help="Print one row per run instead of per grid point.")
    ] = False,
    confidence: Annotated[
        float, typer.Option("--confidence", help="Two-sided level of the intervals.")
    ] = 0.95,
) -> None:
    """Run a scenario over a grid of parameters and seeds; one row per grid point.

    By default each grid point and metric gets the mean over seeds, its
    --confidence Student-t interval, the worst seed (max; for rho_max the
    busiest tier of the worst seed), failed runs and warning codes.
    --per-run prints one row per run instead: the parameters, the seed
    (reproduce a row alone with it), the run id, the run's totals and an
    error column. Seeds come from SeedSequence(--seed).spawn(--seeds); the
    same seeds give the same table on any executor. Exit 1 if any run failed.

    Examples:

        istiolab sweep seed-httpbin.yaml -p ingress.nodes_per_az=1,2,3 -k 5

        istiolab sweep sc.yaml -p services.web.versions.v1.replicas=1..4

        istiolab sweep sc.yaml -p traffic.0.arrival.rate_rps=200,400,800
            -p ingress.concurrency=2,4 --dask local:2 -o runs.csv
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.analysis.sweep import sweep
    from istiolab.errors import ConfigError, MissingDependencyError

    grid: dict[str, list[Any]] = {}
    for text in param or []:
        try:
            path, values = parse_param(text)
        except ValueError as err:
            raise usage_error(str(err)) from None
        if path in grid:
            raise usage_error(f"--param {path} given twice; list all its values in one --param")
        grid[path] = values
    target = _executor(executor, dask)
    if not 0 < confidence < 1:
        raise usage_error(f"--confidence must be between 0 and 1, got {confidence}")
    # A path without a suffix (or an existing folder) is a folder; FILE.csv/.parquet a file.
    folder = out is not None and (out.is_dir() or not out.suffix)
    if folder and out is not None:
        _check_folder(out)
    else:
        _check_out(out)
    sc = _load(scenario)
    _say_bare_ms(scenario, {}, sc)
    warm_fast_engine(engine, sc)
    try:
        frame = sweep(
            sc,
            grid,
            seeds,
            target,
            base_seed=seed,
            max_workers=workers,
            progress=False if quiet else None,
            engine=engine,
        )
    except ConfigError as err:
        raise _usage_findings(err) from None
    except (ValueError, TypeError, OSError, MissingDependencyError) as err:
        raise usage_error(str(err)) from None
    from istiolab.analysis.compare import aggregate, side_by_side

    _say_engine_notes(frame)
    if target == "auto" and not quiet:
        where = {"serial": "one after another in this process", "local": "on a process pool"}
        chosen = str(frame.attrs.get("executor", ""))
        say(f"--executor auto ran the {len(frame)} runs {where.get(chosen, chosen)}")
    points = aggregate(frame, list(grid), confidence=confidence)
    if out is not None and folder:
        _write_folder(frame, points, out, sc.name)
    elif out is not None:
        _write(frame, out)
    if per_run:
        echo_result(
            fmt,
            lambda: _records(frame),
            lambda: _table(frame.assign(error=frame["error"].fillna(""))),
        )
    else:
        echo_result(fmt, lambda: _records(points), lambda: _table(side_by_side(points)))
    failed = int(frame["error"].notna().sum())
    if failed:
        say(f"{failed} of {len(frame)} run(s) failed (see the error column)")
        raise typer.Exit(EXIT_FAILED)


def plan_cmd(
    scenario: ScenarioArg,
    knob: Annotated[
        list[str],
        typer.Option(
            "--knob",
            help="Dotted path of an integer field (ingress.nodes_per_az, replicas, ...), "
            "optionally PATH:COST (cost per unit, default 1) and =LOW..HIGH; repeat it to "
            "size several knobs jointly at the smallest total cost.",
        ),
    ],
    slo: Annotated[
        list[str],
        typer.Option(
            "--slo",
            help="Objective METRIC OP NUMBER, e.g. p99_ms<=100 or success_ratio>=0.999 "
            "(repeatable; all must hold).",
        ),
    ],
    seeds: SeedsOpt = 5,
    seed: BaseSeedOpt = None,
    confidence: Annotated[
        float, typer.Option("--confidence", help="One-sided confidence level of the bounds.")
    ] = 0.95,
    start: Annotated[
        int | None,
        typer.Option("--start", help="First value tried; default the scenario's current value."),
    ] = None,
    low: Annotated[int, typer.Option("--low", help="Never answer below this.")] = 1,
    high: Annotated[int, typer.Option("--high", help="Largest value tried.")] = 256,
    executor: ExecutorOpt = "auto",
    dask: DaskOpt = None,
    workers: WorkersOpt = None,
    out: OutOpt = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Save the evidence plot (PNG, SVG, PDF).")
    ] = None,
    fmt: FormatOpt = "table",
    quiet: QuietOpt = False,
    engine: EngineOpt = "auto",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field first: dotted.path=value (repeatable)."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Simulated seconds of every run.")
    ] = None,
    unfinished_ok: Annotated[
        bool,
        typer.Option(
            "--unfinished-ok",
            help="Hold success_ratio/error_rate against completed requests only (by default "
            "requests still in flight beyond a steady state's count as failures).",
        ),
    ] = False,
    must_survive: Annotated[
        list[str] | None,
        typer.Option(
            "--must-survive",
            help="An event the answer must also meet every objective under (N-1), added to "
            "the scenario at the middle of the window after the warm-up or at @SECONDS: "
            "az_loss:AZ, node_loss[:NODE], pod_crash:SERVICE[/VERSION][:COUNT], "
            "error_burst[:SERVICE[/VERSION]][:PROBABILITY[:SECONDS]] (repeatable).",
        ),
    ] = None,
) -> None:
    """Find the smallest value of a knob that meets service-level objectives.

    Every value tried runs --seeds replications (the same seeds for every
    value). A value meets an objective when no run failed and the one-sided
    --confidence t bound of the metric's mean over seeds is on the right side
    of the threshold (upper bound for <=, lower bound for >=). The search
    doubles the value until the objectives hold, then bisects; it assumes
    more of the knob never hurts. Exit 1 when no value up to --high meets
    the objectives.

    Examples:

        istiolab plan capacity-peak.yaml --knob ingress.nodes_per_az
            --slo p99_ms<=50

        istiolab plan sc.yaml --knob services.httpbin.versions.v1.replicas
            --slo p99_ms<=100 --slo success_ratio>=0.999 -k 8 --plot plan.png

        istiolab plan capacity-peak.yaml --knob ingress.nodes_per_az:4
            --knob services.0.versions.0.replicas:1 --slo p99_ms<=250
            --slo rho<=0.8 --set traffic.0.arrival.rate_rps=4000 --duration 30

        istiolab plan capacity-peak.yaml --knob ingress.nodes_per_az
            --slo success_p99_ms<=250 --slo time_to_recover_s<=15
            --must-survive az_loss:us-east-1a

    Objectives: p50_ms, p90_ms, p99_ms, p999_ms, success_p99_ms, mean_ms,
    success_ratio, error_rate, rho (the busiest tier's utilisation), unfinished, rps,
    window_p99_ms and window_error_rate (the worst metrics window after the
    warm-up), time_to_recover_s (seconds from an event until every window
    meets the p99 and error objectives again, to the end of the run).
    Several --knob values are searched jointly: the answer is the cheapest
    point (sum of cost x value) meeting every objective.
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.analysis.planner import SLO, Knob, SLONotMetError, Survive, describe_checks, plan
    from istiolab.cli.simulate import _parse_set
    from istiolab.errors import ConfigError, MissingDependencyError

    try:
        slos = [SLO.parse(s) for s in slo]
        knobs = [Knob.parse(k) for k in knob]
        survive = [Survive.parse(e) for e in must_survive or []]
    except ValueError as err:
        raise usage_error(str(err)) from None
    if plot is not None and len(knobs) > 1:
        raise usage_error("--plot draws one knob; drop --plot or search one --knob")
    if plot is not None and survive:
        raise usage_error("--plot draws the base scenario only; drop --plot or --must-survive")
    overrides = _parse_set(set_ or [])
    if duration is not None:
        if not duration > 0:
            raise usage_error(f"--duration must be > 0, got {duration}")
        overrides["run.duration_s"] = duration
    if seeds < 2:
        raise usage_error("--seeds must be at least 2 for a confidence bound")
    if not 0.5 < confidence < 1:
        raise usage_error(f"--confidence must be between 0.5 and 1, got {confidence}")
    if low > high:
        raise usage_error(f"--low ({low}) must not exceed --high ({high})")
    if plot is not None and not plot.parent.exists():
        raise usage_error(f"--plot: folder {plot.parent} does not exist")
    target = _executor(executor, dask)
    _check_out(out)
    sc = _load(scenario)
    if overrides:
        try:
            sc = sc.with_overrides(overrides)
        except ConfigError as err:
            raise _usage_findings(err) from None
    _say_bare_ms(scenario, overrides, sc)
    warm_fast_engine(engine, sc)
    label = " + ".join(k.path for k in knobs)
    try:
        result = plan(
            sc,
            knobs,
            slos,
            seeds=seeds,
            confidence=confidence,
            start=start,
            low=low,
            high=high,
            executor=target,
            base_seed=seed,
            max_workers=workers,
            progress=False if quiet else None,
            engine=engine,
            unfinished_ok=unfinished_ok,
            must_survive=survive,
        )
    except SLONotMetError as err:
        _say_engine_notes(err.evidence)
        if out is not None:
            _write(err.evidence, out)
        checks = err.checks
        echo_result(
            fmt,
            lambda: {"knob": label, "value": None, "checks": _records(checks)},
            lambda: describe_checks(label, None, checks, confidence),
        )
        say(str(err))
        raise typer.Exit(EXIT_FAILED) from None
    except ConfigError as err:
        raise _usage_findings(err) from None
    except (ValueError, TypeError, OSError, MissingDependencyError) as err:
        raise usage_error(str(err)) from None
    _say_engine_notes(result.evidence)
    if out is not None:
        _write(result.evidence, out)
    if plot is not None:
        from matplotlib.figure import Figure

        from istiolab.lab.plots import plan_frontier

        figure = plan_frontier(result).figure
        try:
            if isinstance(figure, Figure):  # plot() made its own Figure (not a SubFigure)
                figure.savefig(plot)
        except (OSError, ValueError) as err:
            raise usage_error(f"cannot write {plot}: {err}") from None
        typer.echo(f"wrote {plot}", err=True)
    echo_result(
        fmt,
        lambda: {
            "knob": label,
            "value": result.value,
            "values": result.values,
            "costs": {k.path: k.cost for k in result.knobs},
            "cost": result.cost,
            "warnings": list(result.warnings),
            "unfinished_ok": result.unfinished_ok,
            "must_survive": list(result.must_survive),
            "slos": [str(s) for s in result.slos],
            "confidence": result.confidence,
            "seeds": list(result.seeds),
            "tried": list(result.tried),
            "checks": _records(result.checks),
        },
        result.describe,
    )


def register(app: typer.Typer) -> None:
    """Add ``sweep`` and ``plan`` to *app*."""
    app.command("sweep")(sweep_cmd)
    app.command("plan")(plan_cmd)
