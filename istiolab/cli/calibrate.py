"""``istiolab calibrate``: scenario overrides from production Prometheus data.

Reads Istio's request-duration histograms (and optionally the gateway's CPU and request rates)
from Prometheus API JSON answers or text exposition files and prints a scenario patch: ``--set``
lines, a YAML fragment or JSON, with a report of what was derived. Exit codes: 0 success, 1
nothing could be derived or the patch does not validate against ``--scenario``, 2 usage errors
(unreadable or malformed files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab.cli.common import EXIT_FAILED, say, usage_error

if TYPE_CHECKING:
    from istiolab.analysis.calibrate import Calibration, Sample

__all__ = ["register"]


def _read(path: Path, option: str) -> list[Sample]:
    from istiolab.analysis.calibrate import parse_prometheus
    from istiolab.limits import FILE_BYTES

    try:
        if path.stat().st_size > FILE_BYTES:  # the same bound as any file istiolab reads
            raise usage_error(f"{option} {path}: larger than {FILE_BYTES:,} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise usage_error(f"{option} {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise usage_error(f"{option} {path}: not UTF-8 text") from None
    try:
        return parse_prometheus(text)
    except ValueError as err:
        raise usage_error(f"{option} {path}: {err}") from None


def _yaml(cal: Calibration) -> str:
    from istiolab.config.codecs import dumps

    lines = ["# istiolab calibrate: apply with --set PATH=VALUE per key (or a sweep grid)"]
    lines += [f"# {line}" for line in cal.report]
    lines += [f"# note: {line}" for line in cal.notes]
    return "\n".join(lines) + "\n" + dumps([cal.overrides])


def calibrate_cmd(
    durations: Annotated[
        Path | None,
        typer.Option(
            "--durations",
            "-d",
            help="istio_request_duration_milliseconds_bucket per destination_service_name and "
            "destination_version: Prometheus /api/v1/query JSON or text exposition.",
        ),
    ] = None,
    cpu: Annotated[
        Path | None,
        typer.Option(
            "--cpu",
            help="The gateway's sum(rate(container_cpu_usage_seconds_total{...}[5m])) answer.",
        ),
    ] = None,
    requests: Annotated[
        Path | None,
        typer.Option(
            "--requests", help="The gateway's sum(rate(istio_requests_total{...}[5m])) answer."
        ),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", "-s", help="Check the patch against this scenario's services."),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", min=10, max=5000, help="Values per empirical dist.")
    ] = 200,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="set (--set lines), yaml or json.")
    ] = "set",
) -> None:
    """Derive service times and gateway CPU per request from Prometheus data.

    Each service and version's latency buckets become an empirical service
    time whose quantiles reproduce the buckets (linear inside a bucket, as
    histogram_quantile). --cpu and --requests together give
    ingress.cpu_per_request. Prints a patch and, on stderr, what was derived.

    Examples:

        istiolab calibrate -d durations.json -s sim/scenarios/canary-90-10.yaml

        istiolab calibrate --cpu cpu.json --requests rps.json -f yaml
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.analysis.calibrate import calibrate
    from istiolab.errors import ConfigError

    if fmt not in ("set", "yaml", "json"):
        raise usage_error(f"--format must be set, yaml or json, not {fmt!r}")
    if durations is None and cpu is None and requests is None:
        raise usage_error("give --durations, or --cpu with --requests")
    known: dict[str, list[str]] | None = None
    sc = None
    if scenario is not None:
        from istiolab.cli.sweep import _load

        if not scenario.exists():
            raise usage_error(f"{scenario}: no such file")
        sc = _load(scenario)
        known = {s.name: [v.name for v in s.versions] for s in sc.services}
    cal = calibrate(
        _read(durations, "--durations") if durations else (),
        cpu=_read(cpu, "--cpu") if cpu else None,
        requests=_read(requests, "--requests") if requests else None,
        samples=samples,
        known=known,
    )
    for line in cal.report:
        say(line)
    for line in cal.notes:
        say(f"note: {line}")
    if not cal.overrides:
        say("nothing derived: no histogram with observations, and no CPU and request rate")
        raise typer.Exit(EXIT_FAILED)
    if sc is not None:
        try:
            sc.with_overrides(cal.overrides)
        except ConfigError as err:
            from istiolab.cli.common import echo_findings

            echo_findings(err.findings)
            raise typer.Exit(EXIT_FAILED) from None
    doc: dict[str, Any] = {"overrides": cal.overrides, "report": cal.report, "notes": cal.notes}
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=2))
    elif fmt == "yaml":
        typer.echo(_yaml(cal), nl=False)
    else:
        typer.echo(" \\\n".join(cal.set_lines()))


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to *app*."""
    app.command("calibrate")(calibrate_cmd)
