"""The sandbox as verify sets it up: its backends and rendering, requests on the wire, replies.

Envoy's per-request random value cannot be set from outside -- unless the weighted clusters
name a header to read it from (``weighted_clusters.header_name``). The sandbox's rendering
therefore adds ``header_name: x-istiolab-random`` to every weighted route (and nothing else), so
a case with a ``random_value`` checks Envoy's pick *exactly*; requests without that header use
Envoy's own random draws, whose fractions are compared with the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from istiolab.envoy.match import Request
from istiolab.envoy.model import RouteTable
from istiolab.envoy.render import render
from istiolab.envoy.sandbox import BackendSpec, EnvoySandbox, RenderFn, Reply
from istiolab.envoy.verify.outcomes import Outcome

__all__ = ["RANDOM_HEADER", "SandboxFactory", "backend_specs", "sandbox_render"]

RANDOM_HEADER = "x-istiolab-random"
"""Request header the sandbox's Envoy reads the weighted-cluster random value from."""

SandboxFactory = Callable[[RenderFn, Sequence[BackendSpec]], EnvoySandbox]
"""Builds an (unstarted) sandbox from a render callable and the backend specs."""


def backend_specs(table: RouteTable) -> list[BackendSpec]:
    """One stub backend (one endpoint) per cluster of the table."""
    return [
        BackendSpec(cluster=c.name, service=c.host.split(".")[0], subset=c.subset or None)
        for c in table.clusters.values()
    ]


def _add_random_header(node: Any) -> None:
    if isinstance(node, dict):
        wc = node.get("weighted_clusters")
        if isinstance(wc, dict):
            wc["header_name"] = RANDOM_HEADER
        for v in node.values():
            _add_random_header(v)
    elif isinstance(node, list):
        for v in node:
            _add_random_header(v)


def sandbox_render(table: RouteTable) -> RenderFn:
    """The render callable for the sandbox: :func:`render` plus ``header_name`` on splits."""

    def fn(
        port: int, endpoints: Mapping[str, Sequence[tuple[str, int]]], log: str
    ) -> dict[str, Any]:
        boot = render(table, endpoints, listener_port=port, access_log_path=log)
        _add_random_header(boot["static_resources"]["listeners"])
        return boot

    return fn


def _default_factory(render_fn: RenderFn, specs: Sequence[BackendSpec]) -> EnvoySandbox:
    return EnvoySandbox(render_fn, specs)


def _wire(req: Request, rv: int | None) -> dict[str, Any]:
    headers = dict(req.headers)
    if req.scheme == "https":
        headers["x-forwarded-proto"] = "https"
    if rv is not None:
        headers[RANDOM_HEADER] = str(rv)
    return {"path": req.path, "method": req.method, "host": req.host, "headers": headers}


def _observed(reply: Reply) -> Outcome:
    return Outcome(
        status=reply.status,
        cluster=reply.backend,
        flags=reply.flags,
        location=reply.headers.get("location"),
    )
