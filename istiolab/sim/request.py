"""Per-request records of the simulator (plain slotted classes: the hot path reads them)."""

from __future__ import annotations


class SimRequest:
    """One client request as it travels through the pipeline.

    Attributes:
        id: Sequence number (the trace id when it is traced).
        path, method, host, headers: What the router matches on.
        source_ip: Client address id (flow hash, source-IP hashing).
        client_az: The AZ DNS sent the client to.
        worker: The gateway worker thread that carries it (``pod ordinal × 4096 + worker``,
            set by the ingress stage): Envoy keeps load-balancer state per worker.
        zonal: The client has a client model (``traffic[].client``): the load balancer's
            node keeps to the zonal rules AWS documents instead of failing over at once.
    """

    __slots__ = (
        "client_az",
        "headers",
        "host",
        "id",
        "method",
        "path",
        "source_ip",
        "worker",
        "zonal",
    )

    def __init__(
        self,
        id: int,
        path: str,
        method: str,
        host: str,
        headers: dict[str, str],
        source_ip: int,
        client_az: str,
    ) -> None:
        self.id = id
        self.path = path
        self.method = method
        self.host = host
        self.headers = headers
        self.source_ip = source_ip
        self.client_az = client_az
        self.worker = 0
        self.zonal = False


class Outcome:
    """What happened to a request: filled in by the stages, read by the metrics."""

    __slots__ = (
        "cluster",
        "flags",
        "ingress_az",
        "ingress_node",
        "ingress_s",
        "lb_s",
        "pending",
        "retries",
        "route",
        "status",
        "tail",
        "upstream_requests",
        "version",
    )

    def __init__(self) -> None:
        self.status = 0
        self.flags: list[str] = []
        self.route = "-"
        self.cluster = "-"
        self.version = "-"
        self.retries = 0
        self.upstream_requests = 0
        self.ingress_node = "-"
        self.ingress_az = "-"
        self.lb_s = 0.0
        self.ingress_s = 0.0
        # Latency not yet waited for: stages add fixed hop latencies here and the next stage
        # that yields a timeout waits for them in the same event (fewer events per request).
        self.pending = 0.0
        # Latency on the response path (proxy hops): it delays the client but no resource, so
        # it is added to the end time without an event.
        self.tail = 0.0

    def flag(self, f: str) -> None:
        """Add a response flag once."""
        if f not in self.flags:
            self.flags.append(f)
