"""The ``istiolab`` command line.

Every command reads files, directories or ``-`` (stdin). Exit codes: 0 success, 1 the input has
errors (or a check disagreed), 2 usage errors or inputs that cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from istiolab import __version__
from istiolab.config import ConfigSet, dumps, load
from istiolab.config.validate import validate
from istiolab.errors import IstiolabError
from istiolab.findings import Finding, Severity, has_errors
from istiolab.profiles import PROFILES, get_profile

app = typer.Typer(
    name="istiolab",
    help=(
        "Design, simulate, verify and apply Istio ingress routing (RouteRule, Ingress, "
        "VirtualService/DestinationRule/Gateway) on Kubernetes on AWS."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PathsArg = Annotated[
    list[str],
    typer.Argument(help="YAML files, directories (searched recursively) or '-' for stdin."),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help=f"Istio version whose defaults apply ({', '.join(PROFILES)}; any 1.x works). "
        "Default: 0.2 when the input is legacy, else the newest.",
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"istiolab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Istio ingress lab: lint, convert, explain, verify on Envoy, simulate, apply."""


def _fail_usage(message: str) -> typer.Exit:
    typer.echo(f"istiolab: {message}", err=True)
    return typer.Exit(2)


def _profile_for(config: ConfigSet, name: str | None) -> str:
    if name is not None:
        try:
            return get_profile(name).name
        except ValueError as err:
            raise _fail_usage(str(err)) from None
    from istiolab.config.legacy import RouteRule

    return "0.2" if config.kind(RouteRule) else get_profile(None).name


def _load(paths: list[str], strict: bool = False) -> ConfigSet:
    config = load(paths, strict=strict)
    unreadable = [f for f in config.findings if f.code == "IL005"]
    if unreadable:
        for f in unreadable:
            typer.echo(f"istiolab: {f.message}", err=True)
        raise typer.Exit(2)
    return config


def format_findings(findings: list[Finding]) -> str:
    """Human table of findings: location, severity, code, resource and path, then message and fix."""
    if not findings:
        return "no findings"
    lines = []
    for f in findings:
        head = f"{f.location}  {f.severity.value:<7} {f.code}  {f.resource}"
        if f.path:
            head += f"  {f.path}"
        lines.append(head)
        lines.append(f"    {f.message}")
        lines.append(f"    fix: {f.fix}")
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    lines.append(
        f"{len(findings)} finding(s): {counts[Severity.ERROR]} error(s), "
        f"{counts[Severity.WARNING]} warning(s), {counts[Severity.INFO]} info"
    )
    return "\n".join(lines)


@app.command()
def lint(
    paths: PathsArg,
    profile: ProfileOpt = None,
    fmt: FormatOpt = "table",
    suppress: Annotated[
        list[str] | None,
        typer.Option("--suppress", "-s", help="Finding codes to ignore (repeat or comma-separate)."),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Unknown kinds are errors.")] = False,
) -> None:
    """Validate Istio and Kubernetes resources and print every finding.

    Exit 0 when there is no error-severity finding, 1 when there is one.

    Examples:

        istiolab lint examples/seed/

        istiolab lint rules.yaml --format json --suppress IL207,IL209

        kubectl get virtualservices -A -o yaml | istiolab lint -
    """
    if fmt not in ("table", "json"):
        raise _fail_usage(f"--format must be table or json, not {fmt!r}")
    config = _load(paths, strict)
    codes = [c for s in suppress or [] for c in s.split(",")]
    findings = validate(config, _profile_for(config, profile), suppress=codes)
    if fmt == "json":
        typer.echo(json.dumps({"findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        typer.echo(format_findings(findings))
    raise typer.Exit(1 if has_errors(findings) else 0)


@app.command()
def convert(
    paths: PathsArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the YAML here instead of stdout.")
    ] = None,
    profile: ProfileOpt = None,
    modern_defaults: Annotated[
        bool,
        typer.Option(
            "--modern-defaults",
            help="Do not write out Istio 0.2's 15 s timeout, retry policy and ROUND_ROBIN.",
        ),
    ] = False,
) -> None:
    """Convert legacy RouteRules, DestinationPolicies and Istio Ingresses to modern Istio.

    Prints VirtualServices, DestinationRules and Gateways (networking.istio.io/v1) that keep the
    0.2 behaviour; findings (lossy parts, truncations) go to stderr. Exit 1 if the input has
    errors (nothing is converted then).

    Examples:

        istiolab convert examples/seed/

        istiolab convert old-rules/ -o modern.yaml --modern-defaults
    """
    from istiolab.config.convert import convert as do_convert

    config = _load(paths)
    prof = _profile_for(config, profile)
    findings = validate(config, "0.2" if prof == "0.2" else prof)
    if has_errors(findings):
        typer.echo(format_findings(findings), err=True)
        raise typer.Exit(1)
    result = do_convert(config, modern_defaults=modern_defaults)
    notes = [*findings, *result.findings]
    if notes:
        typer.echo(format_findings(notes), err=True)
    text = dumps(result.config)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(result.config)} resource(s) to {output}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``istiolab`` console script; returns the exit code."""
    try:
        app(args=argv, prog_name="istiolab", standalone_mode=True)
    except SystemExit as ex:
        code = ex.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except IstiolabError as err:
        typer.echo(f"istiolab: {err}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("istiolab: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
