"""Provenance of routing findings: a request that shows the problem, and how to replay it.

``lint`` says that a route is shadowed, unreachable, or that a host is served twice or not at
all. istioctl analyze stops there; here each such finding gets a concrete request, routed
through the compiled table by :func:`istiolab.envoy.match.route` (so the claim is checked, not
assumed), and the ``istiolab explain`` command that shows the same trace::

    a request to http://shop.example.com/api/v2 takes route `catch-all` (VirtualService/
    default/shop http[0]) instead of http[2]; see `istiolab explain shop.yaml --host
    shop.example.com --path /api/v2`

Requests come from :func:`istiolab.envoy.verify.generate.requests_for`, the generator ``verify``
uses. When no generated request demonstrates the finding, it gets no ``explain``: the text is
only ever written from a routing decision that was observed.

This is a pass over the analyzer's findings that needs the compiler, so it lives in the envoy
layer, above the config layer's analyzer, and the command line calls it.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterator, Sequence

from istiolab.config.configset import ConfigSet
from istiolab.config.hosts import gateway_ref
from istiolab.config.model import Gateway, HTTPMatchRequest, VirtualService
from istiolab.envoy.compile import route_match
from istiolab.envoy.explain import compile_validated, for_authority, serves
from istiolab.envoy.match import Decision, Request, route, strip_port
from istiolab.envoy.model import RouteMatch, RouteTable
from istiolab.findings import Finding, Severity
from istiolab.profiles import IstioProfile

__all__ = ["ROUTING_CODES", "add_provenance", "explain_command"]

# shadowed or unreachable route (IL207, IL208); a host served by several VirtualServices
# (IL225); a host its gateway does not accept (IL206)
ROUTE_CODES = frozenset({"IL207", "IL208"})
HOST_CODES = frozenset({"IL206", "IL225"})
ROUTING_CODES = ROUTE_CODES | HOST_CODES
_HTTP = re.compile(r"spec\.http\[(\d+)\](?:\.match\[(\d+)\])?")
_HOST = re.compile(r"spec\.hosts\[(\d+)\]")
_MAX_ROUTES_TRIED = 20  # routes of one VirtualService tried for a host finding


def explain_command(
    files: Sequence[str],
    request: Request,
    gateway: str | None = None,
    suppress: Sequence[str] = (),
    live_args: Sequence[str] = (),
) -> str:
    """The ``istiolab explain`` command line that routes *request* (shell-quoted).

    *live_args* (``--context prod -n shop``) are the flags that laid the files over a live
    cluster: the command must read the same objects the finding was made from.
    """
    parts = ["istiolab", "explain", *files, *live_args, "--host", request.host]
    parts += ["--path", request.path]
    if request.method != "GET":
        parts += ["-X", request.method]
    if request.scheme != "http":
        parts += ["--scheme", request.scheme]
    for name, value in request.headers.items():
        parts += ["-H", f"{name}: {value}"]
    if gateway is not None:
        parts += ["--gateway", gateway]
    if suppress:
        parts += ["--suppress", ",".join(suppress)]
    return " ".join(shlex.quote(p) for p in parts)


def requests_for(m: RouteMatch, host: str) -> list[Request]:
    """:func:`istiolab.envoy.verify.generate.requests_for`, imported when first needed.

    The verify package pulls in the sandbox; lint without a routing finding never needs it.
    """
    from istiolab.envoy.verify.generate import requests_for as generate

    return generate(m, host)


def _example_host(pattern: str) -> str:
    pattern = pattern.split("/", 1)[-1]
    if pattern == "*":
        return "istiolab.test"
    if pattern.startswith("*."):
        return "a" + pattern[1:]
    return pattern


def _shown(request: Request) -> str:
    hdrs = "".join(f" with {n}: {v}" for n, v in request.headers.items())
    method = "" if request.method == "GET" else f"{request.method} "
    return f"a {method}request to {request.scheme}://{request.host}{request.path}{hdrs}"


def _where(d: Decision) -> str:
    r = d.route
    if r is None:
        return "no route"
    src = r.source
    at = "" if src is None else f" ({src.resource} http[{src.http_index}])"
    return f"route `{r.name}`{at}"


class _Prover:
    def __init__(
        self,
        config: ConfigSet,
        findings: Sequence[Finding],
        files: Sequence[str],
        profile: IstioProfile | str | None,
        live_args: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.live_args = list(live_args)
        self.findings = findings
        self.kept: dict[str, set[str]] = {}  # per request host, the resources compiled for it
        self.files = list(files)
        self.profile = profile
        self.vs = {v.key: v for v in config.kind(VirtualService)}
        self.gateways = {(g.namespace, g.name) for g in config.kind(Gateway)}
        self.tables: dict[tuple[str, str | None], RouteTable | None] = {}

    def gateway_of(self, vs: VirtualService) -> tuple[bool, str | None]:
        """(can be compiled, the --gateway to pass) for *vs*'s routes."""
        refs = [gateway_ref(g, vs.namespace) for g in vs.spec.gateways or [] if g != "mesh"]
        known = [r for r in refs if r in self.gateways]
        if not self.gateways:  # no Gateway in the input: the mesh view is compiled
            return (not refs or "mesh" in (vs.spec.gateways or [])), None
        if not known:
            return False, None
        ns, name = known[0]
        return True, (f"{ns}/{name}" if len(self.gateways) > 1 else None)

    def table(self, host: str, gateway: str | None) -> RouteTable | None:
        key = (host, gateway)
        if key not in self.tables:
            try:
                reduced = for_authority(self.config, host)
                self.kept[host] = {r.key for r in reduced}
                self.tables[key] = compile_validated(reduced, self.profile, gateway)
            except Exception:  # provenance is advice: a failure leaves it out
                self.tables[key] = None
        return self.tables[key]

    def text(self, request: Request, d: Decision, tail: str, gateway: str | None) -> str:
        # explain refuses errors in what it compiles for the host; the table here was compiled
        # without that check, so the command suppresses the same errors to show the same thing
        kept = self.kept.get(strip_port(request.host), set())
        codes = sorted(
            {g.code for g in self.findings if g.severity is Severity.ERROR and g.resource in kept}
        )
        command = explain_command(
            self.files, request, gateway, suppress=codes, live_args=self.live_args
        )
        return f"{_shown(request)} {tail}; see `{command}`"

    def route_finding(self, f: Finding, vs: VirtualService) -> str | None:
        m = _HTTP.match(f.path)
        http = vs.spec.http or []
        if m is None or int(m.group(1)) >= len(http):
            return None
        i = int(m.group(1))
        written = http[i].match
        blocks: list[HTTPMatchRequest | None] = [*written] if written else [None]
        if m.group(2) is not None and int(m.group(2)) < len(blocks):
            blocks = [blocks[int(m.group(2))]]
        ok, gateway = self.gateway_of(vs)
        if not ok:
            return None
        for host in vs.spec.hosts:
            req_host = _example_host(host)
            table = self.table(req_host, gateway)
            if table is None:
                continue
            for block in blocks:
                for req in requests_for(route_match(block), req_host):
                    d = route(table, req)
                    src = d.route.source if d.route is not None else None
                    if d.route is None or src is None:
                        continue
                    if src.resource == vs.key and src.http_index == i:
                        continue  # this request does reach the route: no evidence
                    tail = f"takes {_where(d)} instead of http[{i}]"
                    return self.text(req, d, tail, gateway)
        return None

    def host_finding(self, f: Finding, vs: VirtualService) -> str | None:
        m = _HOST.match(f.path)
        hosts = vs.spec.hosts
        idx = int(m.group(1)) if m is not None else 0
        if idx >= len(hosts):
            return None
        req_host = _example_host(hosts[idx])
        ok, gateway = self.gateway_of(vs)
        if not ok and f.code != "IL206":
            return None
        table = self.table(req_host, gateway if ok else None)
        if table is None:
            return None
        if f.code == "IL206":  # the gateway does not accept the host: a request gets no route
            for req in self.requests(vs, req_host):
                d = route(table, req)
                if d.virtual_host is None:
                    return self.text(req, d, "matches no virtual host (404)", gateway)
            return None
        # IL225: a request for this VirtualService's routes that another one takes, else a
        # request that the other VirtualService for the host takes
        for req in self.requests(vs, req_host):
            d = route(table, req)
            src = d.route.source if d.route is not None else None
            if src is not None and src.resource != vs.key:
                return self.text(req, d, f"takes {_where(d)}, not a route of {vs.key}", gateway)
        for other in self.vs.values():
            if other is vs or not serves(other, req_host):
                continue
            for req in self.requests(other, req_host):
                d = route(table, req)
                src = d.route.source if d.route is not None else None
                if src is not None and src.resource == other.key:
                    tail = f"takes {_where(d)}, not a route of {vs.key}"
                    return self.text(req, d, tail, gateway)
        return None

    @staticmethod
    def requests(vs: VirtualService, host: str) -> Iterator[Request]:
        """Requests to *host* for the first routes of *vs*, route by route."""
        for h in (vs.spec.http or [])[:_MAX_ROUTES_TRIED]:
            written = h.match
            blocks: list[HTTPMatchRequest | None] = [*written] if written else [None]
            for block in blocks:
                yield from requests_for(route_match(block), host)

    def explain(self, f: Finding) -> str | None:
        vs = self.vs.get(f.resource)
        if vs is None:
            return None
        if f.code in ROUTE_CODES:
            return self.route_finding(f, vs) or None
        return self.host_finding(f, vs) or None


def add_provenance(
    config: ConfigSet,
    findings: Sequence[Finding],
    files: Sequence[str],
    profile: IstioProfile | str | None = None,
    live_args: Sequence[str] = (),
) -> list[Finding]:
    """*findings*, each routing finding with ``explain`` set when a request demonstrates it.

    Args:
        config: The config set the findings are about (suppress annotations need not be gone).
        findings: The analyzer's findings.
        files: The inputs as the user named them, for the ``istiolab explain`` command.
        profile: The Istio profile the findings were made with.
        live_args: The ``--kubeconfig``/``--context``/``-n`` flags that laid the files over a
            live cluster, repeated in the ``explain`` command.

    Returns:
        The findings in their order; only routing findings (:data:`ROUTING_CODES`) about a
        VirtualService can change, and only when a routed request shows the problem.
    """
    if not any(f.code in ROUTING_CODES for f in findings):
        return list(findings)
    prover = _Prover(config, findings, files, profile, live_args)
    out = []
    for f in findings:
        if f.code in ROUTING_CODES and f.explain is None:
            text = prover.explain(f)
            if text:
                f = dataclasses.replace(f, explain=text)
        out.append(f)
    return out
