"""The sandbox's public data: stub backend specs and behaviours, replies, the render contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BackendBehaviour", "BackendSpec", "RenderFn", "Reply"]

RenderFn = Callable[[int, Mapping[str, Sequence[tuple[str, int]]], str], dict[str, Any]]
"""``render(listener_port, {cluster: [(host, port), ...]}, access_log_path) -> bootstrap``.

See the :mod:`istiolab.envoy.sandbox` docstring for what the bootstrap must contain.
"""


@dataclass(frozen=True)
class BackendBehaviour:
    """How a stub backend endpoint answers.

    Attributes:
        fail_status: HTTP status of a failed answer.
        fail_probability: Each request fails with this probability (seeded per endpoint).
        fail_first: The first N requests to *each endpoint* fail (counted since start, the
            last :meth:`EnvoySandbox.reset_backends` or :meth:`EnvoySandbox.set_behaviour`).
        delay_s: Delay added before every answer, failed or not.
    """

    fail_status: int = 503
    fail_probability: float = 0.0
    fail_first: int = 0
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not 100 <= self.fail_status <= 599:
            raise ValueError(f"fail_status must be 100..599, got {self.fail_status}")
        if not 0.0 <= self.fail_probability <= 1.0:
            raise ValueError(f"fail_probability must be in [0, 1], got {self.fail_probability}")
        if self.fail_first < 0:
            raise ValueError(f"fail_first must be >= 0, got {self.fail_first}")
        if self.delay_s < 0.0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s}")


@dataclass(frozen=True)
class BackendSpec:
    """One upstream cluster's stub backends.

    Attributes:
        cluster: Envoy cluster name, e.g.
            ``"outbound|8000|v1|httpbin.default.svc.cluster.local"``.
        service: Service name reported by the stub, e.g. ``"httpbin"``.
        subset: Subset name reported by the stub, e.g. ``"v1"``, or None.
        endpoints: Number of stub endpoints, each on its own port (0 gives an empty cluster).
        behaviour: How every endpoint of the cluster answers.
    """

    cluster: str
    service: str
    subset: str | None
    endpoints: int = 1
    behaviour: BackendBehaviour = field(default_factory=BackendBehaviour)

    def __post_init__(self) -> None:
        if self.endpoints < 0:
            raise ValueError(f"endpoints must be >= 0, got {self.endpoints}")


@dataclass(frozen=True)
class Reply:
    """One response received through Envoy.

    Attributes:
        status: HTTP status code.
        body: Parsed JSON body (a stub backend's answer), None if the body is not a JSON object.
        headers: Response headers, names lower-cased (repeated headers joined with ", ").
        backend: Cluster name of the stub backend that answered (``x-istiolab-cluster``),
            None for replies Envoy generated itself.
        endpoint: ``"127.0.0.1:PORT"`` of the answering stub endpoint, or None.
        flags: Envoy's ``%RESPONSE_FLAGS%`` for the request (``"-"`` if none), or ``"?"`` if
            its access-log line did not arrive in time.
        duration_s: Client-measured time from sending the request to reading the whole body.
    """

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str]
    backend: str | None
    endpoint: str | None
    flags: str
    duration_s: float
