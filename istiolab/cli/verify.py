"""``istiolab verify``: the same requests through the model and a real Envoy, compared.

Exit codes: 0 everything agrees, 1 any disagreement or invalid config, 2 usage errors,
unreadable inputs, an unwritable ``--write-cases`` or no Envoy; 143/130 on SIGTERM/Ctrl-C,
after Envoy, the stubs and the temp dir are gone (``docs/exit-codes.md``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FormatOpt,
    GatewayOpt,
    PathsArg,
    PortOpt,
    ProfileOpt,
    check_writable,
    compile_or_exit,
    echo_result,
    load_config,
    say,
    usage_error,
    write_text,
)

if TYPE_CHECKING:
    from istiolab.envoy.verify import VerifyReport

__all__ = ["format_report", "register"]

SECOND_SAMPLE = " (a second sample: the first fell outside its interval or tolerance)"
"""Marks a check decided by its confirmation sample (``verify``'s ``CONFIRM_FACTOR``)."""


def format_report(report: VerifyReport) -> str:
    """Human form of a verify report: per-case agreement, then the measured checks."""
    ok, bad = "\u2713", "\u2717"
    lines = [f"{report.agree}/{report.cases} case(s) agree with Envoy"]
    for r in report.results:
        if r["agree"]:
            lines.append(f"  {ok} {r['case']}: {r['envoy']}")
        else:
            lines.append(f"  {bad} {r['case']}")
            lines.append(f"      model: {r['expected']}")
            lines.append(f"      envoy: {r['envoy']}")
    for d in report.disagree:
        if d["expected"] != d.get("model", d["expected"]):
            lines.append(f"  {bad} {d['case']}: the case file expects {d['expected']}")
    for d in report.disagree:
        if not any(r["case"] == d["case"] for r in report.results):
            lines.append(f"  {bad} {d['case']}: expected {d['expected']}, envoy {d['envoy']}")
    if report.stochastic:
        lines.append(f"fractions ({report.confidence:.4g} Wilson intervals)")
        for e in report.stochastic:
            lo, hi = e["interval"]
            lines.append(
                f"  {ok if e['ok'] else bad} {e['case']}  {e['metric']}: expected "
                f"{e['expected_fraction']:.4f}, envoy {e['envoy_fraction']:.4f} "
                f"[{lo:.4f}, {hi:.4f}] n={e['n']}"
                + (SECOND_SAMPLE if e.get("confirmation") else "")
            )
    if report.timing:
        lines.append("timings")
        for e in report.timing:
            lines.append(
                f"  {ok if e['ok'] else bad} {e['case']}  {e['metric']}: expected "
                f"{e['expected_s']} s, envoy {e['envoy_s']} s (tolerance {e['tolerance_s']} s)"
                + (SECOND_SAMPLE if e.get("confirmation") else "")
            )
    if report.counts:
        lines.append("counts")
        for e in report.counts:
            lines.append(
                f"  {ok if e['ok'] else bad} {e['case']}  {e['metric']}: expected "
                f"{e['expected']}, envoy {e['envoy']}"
                + (SECOND_SAMPLE if e.get("confirmation") else "")
            )
            if e.get("detail"):
                lines.append(f"      {e['detail']}")
    for s in report.skipped:
        lines.append(f"  - skipped {s['case']}: {s['reason']}")
    for n in report.notes:
        lines.append(f"  note: {n}")
    lines.append(f"{report.requests_sent} request(s) through Envoy in {report.envoy_seconds:.1f} s")
    failures = len(report.failures())
    lines.append("OK" if not failures else f"{failures} disagreement(s)")
    return "\n".join(lines)


def verify_cmd(
    paths: PathsArg,
    cases: Annotated[
        Path | None,
        typer.Option(
            "--cases", "-c", help="router_check_tool cases (JSON/YAML); default: generated."
        ),
    ] = None,
    requests: Annotated[
        int, typer.Option("--requests", "-n", min=1, help="Requests per stochastic check.")
    ] = 400,
    gateway: GatewayOpt = None,
    port: PortOpt = None,
    profile: ProfileOpt = None,
    fmt: FormatOpt = "table",
    write_cases: Annotated[
        Path | None,
        typer.Option("--write-cases", help="Also write the cases used (router_check_tool JSON)."),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Compare the compiled route table with Istio's own translation instead "
            "(istio: peers/bin/gateway-routes, built by `make peers`).",
        ),
    ] = None,
) -> None:
    """Send the same requests through the model and a real Envoy; compare.

    Deterministic outcomes (cluster, 404, redirect, direct response, 100 %
    abort) must be equal; weighted splits and fault fractions must sit in
    99 % binomial intervals; retries, timeouts and local rate limits are
    measured against failing, slow and bursty stub backends. A check
    outside its interval or tolerance is measured again on 4x the requests
    (stderr says so), and that sample decides. Without --cases, one request
    per route is generated (plus split boundaries and a no-route request).
    Exit 0 when everything agrees, 1 on any disagreement, 2 when Envoy is
    missing.

    Examples:

        istiolab verify examples/seed/

        istiolab verify ab.yaml --cases ab.cases.yaml -n 1000 -f json

        istiolab verify examples/modern/ --against istio -f json
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    if against is not None:
        if cases is not None or write_cases is not None:
            raise usage_error("--against compares route tables: --cases/--write-cases do not apply")
        _against_istio(against, paths, gateway, port, profile, fmt)
    from istiolab.envoy.sandbox import find_envoy
    from istiolab.envoy.verify import dump_cases, generate_cases, load_cases, verify
    from istiolab.errors import IstiolabError, SandboxError

    check_writable(write_cases, "--write-cases")
    table = compile_or_exit(paths, profile, gateway, port)
    try:
        find_envoy()
    except SandboxError as err:
        raise usage_error(str(err)) from None
    notes: list[str] = []
    if cases is None:
        case_list = generate_cases(table, notes=notes)
    else:
        try:
            case_list = load_cases(cases)
        except IstiolabError as err:
            raise usage_error(str(err)) from None
    if write_cases is not None:
        text = json.dumps(dump_cases(case_list), indent=2) + "\n"
        write_text(write_cases, text, "--write-cases")
    try:
        report = verify(table, case_list, requests=requests, progress=say)
    except SandboxError as err:
        raise usage_error(str(err)) from None
    report.notes.extend(notes)
    echo_result(fmt, report.to_dict, lambda: format_report(report))
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def _against_istio(
    against: str,
    paths: list[str],
    gateway: str | None,
    port: int | None,
    profile: str | None,
    fmt: str,
) -> None:
    """``--against istio``: our route table against Istio's Pilot (exit 0 same, 1 differs)."""
    from istiolab.envoy.verify.istio import PeerMissingError, find_peer, verify_against_istio
    from istiolab.errors import IstiolabError
    from istiolab.profiles import get_profile

    if against != "istio":
        raise usage_error(f"--against must be istio, not {against!r}")
    try:
        peer = find_peer()
    except PeerMissingError as err:
        raise usage_error(str(err)) from None
    # Istio's translation is today's: compare with the newest profile unless one is asked for.
    prof = profile or get_profile(None).name
    compile_or_exit(paths, prof, gateway, port)  # invalid config: its findings, exit 1
    try:
        result = verify_against_istio(
            load_config(paths), gateway=gateway, port=port, profile=prof, peer=peer
        )
    except PeerMissingError as err:
        raise usage_error(str(err)) from None
    except IstiolabError as err:
        say(str(err))
        raise typer.Exit(EXIT_FAILED) from None
    echo_result(fmt, result.to_dict, result.format)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``verify`` to *app*."""
    app.command("verify")(verify_cmd)
