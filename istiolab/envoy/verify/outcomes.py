"""What the model says a client sees, and where a case's own expectations differ from it."""

from __future__ import annotations

import dataclasses

from istiolab.envoy.match import Decision, Request, route, strip_port
from istiolab.envoy.model import MILLION, Redirect, Route, RouteTable
from istiolab.envoy.verify.cases import Case

__all__ = ["Outcome", "check_case", "model_outcomes", "redirect_url", "route_location"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the client sees: status, answering cluster, Envoy flags, redirect location."""

    status: int
    cluster: str | None = None
    flags: str = ""
    location: str | None = None

    def text(self) -> str:
        """Short human form, e.g. ``200 outbound|8000|v1|httpbin...`` or ``404 NR``."""
        parts = [str(self.status)]
        if self.cluster:
            parts.append(self.cluster)
        if self.flags and self.flags != "-":
            parts.append(self.flags)
        if self.location:
            parts.append(f"-> {self.location}")
        return " ".join(parts)

    def satisfied_by(self, observed: Outcome) -> bool:
        """Whether an observed outcome is this expected one (flags: expected ⊆ observed)."""
        if observed.status != self.status:
            return False
        if self.cluster is not None and observed.cluster != self.cluster:
            return False
        if self.location is not None and observed.location != self.location:
            return False
        want = {f for f in self.flags.split(",") if f and f != "-"}
        got = {f for f in observed.flags.split(",") if f and f != "-"}
        return want <= got


def redirect_url(redirect: Redirect, request: Request, matched_prefix: str | None = None) -> str:
    """The ``Location`` Envoy sends for *redirect* (scheme, host and port swapped as set).

    The path is replaced when the redirect sets one; the request's query string is kept
    unless the new path carries its own (Envoy's ``path_redirect`` rule). A ``prefix_rewrite``
    swaps the route's matched prefix (*matched_prefix*) for the new one, the rest and the
    query kept.
    """
    scheme = redirect.scheme or request.scheme
    host = redirect.host or strip_port(request.host)
    port = f":{redirect.port}" if redirect.port else ""
    path = request.path
    if redirect.prefix is not None:
        matched = matched_prefix or ""
        path = redirect.prefix + path[len(matched) :]
    elif redirect.path is not None:
        _, sep, query = request.path.partition("?")
        path = redirect.path if "?" in redirect.path or not sep else f"{redirect.path}?{query}"
    return f"{scheme}://{host}{port}{path}"


def route_location(r: Route, request: Request) -> str:
    """The ``Location`` of route *r*'s redirect for *request* (its matched prefix known)."""
    assert r.redirect is not None
    kind = r.match.path_kind
    prefix = r.match.path if kind in ("prefix", "path_separated_prefix") else None
    return redirect_url(r.redirect, request, prefix)


def _effective_random(table: RouteTable, case: Case) -> tuple[Decision, int | None]:
    """The model's decision; a case naming a cluster of a split gets router_check's 0."""
    decision = route(table, case.request, case.random_value)
    rv = case.random_value
    r = decision.route
    if rv is None and case.cluster and r is not None and len(r.clusters) > 1:
        rv = 0  # router_check_tool's default random_value
        decision = route(table, case.request, rv)
    return decision, rv


def model_outcomes(decision: Decision, request: Request) -> tuple[Outcome, ...]:
    """Every outcome the model allows for one request (more than one for Envoy's random draws).

    A split without a random value may answer from any destination; a fractional abort may
    answer with the abort status.
    """
    r = decision.route
    if r is None:
        return (Outcome(404, flags="NR"),)
    if r.redirect is not None:
        return (Outcome(r.redirect.code, location=route_location(r, request)),)
    if r.direct_response is not None:
        return (Outcome(r.direct_response.status),)
    fault = r.fault
    abort = fault is not None and fault.abort_status is not None and fault.abort_per_million > 0
    if abort and fault is not None and fault.abort_per_million >= MILLION:
        assert fault.abort_status is not None
        return (Outcome(fault.abort_status, flags="FI"),)
    clusters = [decision.cluster] if decision.cluster is not None else list(r.clusters)
    out = [Outcome(200, cluster=c.name) for c in clusters]
    if abort and fault is not None and fault.abort_status is not None:
        out.append(Outcome(fault.abort_status, flags="FI"))
    return tuple(out)


def _model_vs_case(case: Case, decision: Decision) -> list[str]:
    """Where the case file's own expectations differ from the model's."""
    out = []
    r = decision.route
    if case.cluster is not None:
        got = decision.cluster.name if decision.cluster is not None else ""
        if got != case.cluster:
            out.append(f"cluster_name {case.cluster!r}, model {got!r}")
    if case.virtual_host is not None:
        vh = decision.virtual_host.name if decision.virtual_host is not None else ""
        if vh != case.virtual_host:
            out.append(f"virtual_host_name {case.virtual_host!r}, model {vh!r}")
    if case.code_redirect is not None:
        code = r.redirect.code if r is not None and r.redirect is not None else None
        if code != case.code_redirect:
            out.append(f"code_redirect {case.code_redirect}, model {code}")
    if case.path_redirect is not None:
        url = route_location(r, case.request) if r is not None and r.redirect is not None else ""
        if url != case.path_redirect:
            out.append(f"path_redirect {case.path_redirect!r}, model {url!r}")
    if case.status is not None:
        status = model_outcomes(decision, case.request)[0].status
        if status != case.status:
            out.append(f"status {case.status}, model {status}")
    return out


def check_case(table: RouteTable, case: Case) -> list[str]:
    """Where *case*'s own expectations (its ``validate``) differ from the model; [] if nowhere.

    As router_check_tool, a case naming a cluster of a weighted route without a random value
    is decided with random value 0.
    """
    decision, _ = _effective_random(table, case)
    return _model_vs_case(case, decision)
