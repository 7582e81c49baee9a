"""``istiolab compare``: variants of a scenario, or several scenarios, side by side.

Every variant runs on the same seeds; the table shows each variant's totals with their
Student-t interval over seeds and the paired difference to the first variant. Exit codes: 0
success, 1 a scenario has errors or a run failed, 2 usage errors (bad ``--variant``, unreadable
files).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EngineOpt,
    FormatOpt,
    echo_result,
    say,
    usage_error,
    warm_fast_engine,
)

if TYPE_CHECKING:
    import pandas as pd

    from istiolab.sim.scenario import Scenario

__all__ = ["parse_variant", "register"]


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """Parse ``NAME:path=value[,path=value]`` (``NAME:--set path=value`` is accepted too).

    Values are read as in ``--set`` (YAML scalars); commas inside brackets do not split
    (``lognormal(40ms, cv=1)``). ``NAME:`` alone is the scenario as it is.

    Raises:
        ValueError: Without a name, or with an item that is not ``path=value``.

    Example:
        >>> parse_variant("on:aws.cross_zone=true,ingress.nodes_per_az=2")
        ('on', {'aws.cross_zone': True, 'ingress.nodes_per_az': 2})
    """
    from istiolab.cli.simulate import _parse_set
    from istiolab.cli.sweep import _split_top

    name, sep, rest = text.partition(":")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"--variant expects NAME:path=value[,path=value], got {text!r}")
    rest = rest.strip()
    if rest.startswith("--set"):
        rest = rest[len("--set") :].lstrip(" =")
    items = [i for i in _split_top(rest) if i] if rest else []
    for item in items:
        if "=" not in item or not item.partition("=")[0].strip():
            raise ValueError(f"--variant {name}: {item!r} is not path=value")
    try:
        return name, _parse_set(items)
    except typer.Exit:
        raise ValueError(f"--variant {name}: cannot read {rest!r}") from None


def _variants(
    scenarios: list[Path], variant: list[str], duration: float | None
) -> dict[str, Scenario]:
    from istiolab.cli.sweep import _load, _usage_findings
    from istiolab.errors import ConfigError

    for path in scenarios:
        if not path.exists():
            raise usage_error(f"{path}: no such file")
    extra: dict[str, Any] = {} if duration is None else {"run.duration_s": duration}
    out: dict[str, Scenario] = {}
    if len(scenarios) > 1:
        if variant:
            raise usage_error("give either several scenario files or --variant, not both")
        for path in scenarios:
            sc = _load(path)
            name = path.stem if path.stem not in out else str(path)
            out[name] = sc.with_overrides(extra) if extra else sc
        return out
    base = _load(scenarios[0])
    parsed: list[tuple[str, dict[str, Any]]] = []
    for text in variant:
        try:
            parsed.append(parse_variant(text))
        except ValueError as err:
            raise usage_error(str(err)) from None
    if len({n for n, _ in parsed}) < len(parsed):
        raise usage_error("--variant names must differ")
    if len(parsed) < 2:  # one variant is compared against the scenario as it is
        parsed.insert(0, ("base", {}))
    for name, overrides in parsed:
        try:
            out[name] = base.with_overrides({**overrides, **extra}) if overrides or extra else base
        except ConfigError as err:
            raise _usage_findings(err) from None
    return out


def _doc(table: pd.DataFrame) -> dict[str, Any]:
    import json

    from istiolab.analysis.compare import variant_warnings

    runs = table.attrs["runs"]
    return {
        "baseline": table.attrs["baseline"],
        "confidence": table.attrs["confidence"],
        "seeds": list(table.attrs["seeds"]),
        "metrics": json.loads(table.to_json(orient="records")),
        "warnings": variant_warnings(runs),
        "runs": json.loads(runs.to_json(orient="records")),
    }


def _text(table: pd.DataFrame) -> str:
    from istiolab.analysis.compare import side_by_side, variant_warnings
    from istiolab.cli.sweep import _table

    runs = table.attrs["runs"]
    conf = table.attrs["confidence"]
    lines = [
        f"{len(table.attrs['seeds'])} seed(s) per variant, the same for every variant; "
        f"[low, high]: {conf:.0%} t interval of the mean; Δ: paired difference to "
        f"{table.attrs['baseline']}",
        "",
        _table(side_by_side(table)),
        "",
    ]
    for name, codes in variant_warnings(runs).items():
        lines.append(f"warnings {name}: {', '.join(codes) if codes else '-'}")
    return "\n".join(lines)


def compare_cmd(
    scenarios: Annotated[
        list[Path], typer.Argument(help="Scenario YAML, or several to compare with each other.")
    ],
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            "-V",
            help="NAME:path=value[,path=value] (repeatable); the first is the baseline.",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", "-k", min=1, help="Seeds per variant.")] = 5,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Root seed of the seeds.")] = 0,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Simulated seconds of every run.")
    ] = None,
    confidence: Annotated[
        float, typer.Option("--confidence", help="Two-sided level of the intervals.")
    ] = 0.95,
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="local (process pool) or serial.")
    ] = "local",
    workers: Annotated[
        int | None, typer.Option("--workers", "-j", min=1, help="Processes for --executor local.")
    ] = None,
    fmt: FormatOpt = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
    engine: EngineOpt = "auto",
) -> None:
    """Run variants of a scenario on the same seeds and show their totals side by side.

    Each variant's totals (rps, success ratio counting unfinished requests,
    p50/p99, success-only p99, unfinished, busiest-tier rho, ...) with a
    Student-t interval over seeds, and the seed-by-seed difference to the
    first variant with its interval. Exit 1 if any run failed.

    Examples:

        istiolab compare nlb.yaml -V off:aws.cross_zone=false -V on:aws.cross_zone=true

        istiolab compare before.yaml after.yaml -k 10 --duration 60
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.analysis.compare import compare
    from istiolab.errors import ConfigError

    if not 0 < confidence < 1:
        raise usage_error(f"--confidence must be between 0 and 1, got {confidence}")
    if duration is not None and not duration > 0:
        raise usage_error(f"--duration must be > 0, got {duration}")
    if executor not in ("local", "serial"):
        raise usage_error(f"--executor must be local or serial, not {executor!r}")
    variants = _variants(scenarios, variant or [], duration)
    warm_fast_engine(engine, next(iter(variants.values()), None))
    try:
        table = compare(
            variants,
            seeds,
            executor,
            base_seed=seed,
            confidence=confidence,
            max_workers=workers,
            progress=False if quiet else None,
            engine=engine,
        )
    except ConfigError as err:
        from istiolab.cli.sweep import _usage_findings

        raise _usage_findings(err) from None
    except (ValueError, TypeError, OSError) as err:
        raise usage_error(str(err)) from None
    echo_result(fmt, lambda: _doc(table), lambda: _text(table))
    runs = table.attrs["runs"]
    failed = int(runs["error"].notna().sum())
    if failed:
        say(f"{failed} of {len(runs)} run(s) failed: {runs['error'].dropna().iloc[0]}")
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``compare`` to *app*."""
    app.command("compare")(compare_cmd)
