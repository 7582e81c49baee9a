"""Scenario: everything a simulation run needs, validated before any SimPy object exists.

A scenario is a frozen pydantic model written in YAML with snake_case keys (documented field by
field in ``docs/scenario.md``): traffic, the AWS load balancer, the ingress node pool, services
and their versions, the routing rules (compiled with :mod:`istiolab.envoy.compile`), scheduled
events, and run settings. Times in ``*_s`` fields are seconds; distributions are in milliseconds.
Every cost can be set to zero (``zero``) so one stage can be isolated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from istiolab.config.registry import path_str
from istiolab.errors import ConfigError
from istiolab.findings import Finding, finding
from istiolab.sim._base import SimModel
from istiolab.sim.dists import DistSpec
from istiolab.sim.workload import TrafficSpec


class RunSpec(SimModel):
    """Run settings.

    Attributes:
        duration_s: Simulated time, including warm-up.
        warmup_s: Requests starting before this are left out of the summary.
        seed: Default seed (``simulate(..., seed=)`` overrides it).
        metrics_interval_s: Bucket width of the time series.
        trace_sample: Fraction of requests traced (Zipkin spans); 0 keeps memory constant.
    """

    duration_s: float = Field(60.0, gt=0)
    warmup_s: float = Field(5.0, ge=0)
    seed: int = Field(1, ge=0)
    metrics_interval_s: float = Field(1.0, gt=0)
    trace_sample: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _warmup(self) -> RunSpec:
        if self.warmup_s >= self.duration_s:
            raise ValueError(
                f"warmup_s ({self.warmup_s}) must be shorter than duration_s ({self.duration_s})"
            )
        return self


class HealthCheckSpec(SimModel):
    """LB health checks: a target is taken out ``unhealthy_threshold × interval_s`` after it fails.

    Defaults are the AWS Load Balancer Controller's for NLB (10 s, 3, 3).

    Attributes:
        interval_s: Seconds between two checks of a target.
        healthy_threshold: Passed checks in a row before a failed target takes traffic again
            (the simulator brings it back at the first passed check).
        unhealthy_threshold: Failed checks in a row before a target is taken out of the LB; a
            dead target keeps getting new connections until then (502 ``LBF`` for the
            idealised client; a connect timeout or refusal with ``traffic[].client``). The
            checks tick every ``interval_s`` from t = 0, so a target that dies is out between
            ``(unhealthy_threshold − 1) × interval_s`` and ``unhealthy_threshold ×
            interval_s`` later; the NLB then resets its open connections.
        protocol: ``TCP``, ``HTTP`` or ``HTTPS`` (recorded, not simulated: every check of a
            live target passes, every check of a dead one fails).
        port: Port checked: a number or ``traffic-port`` (recorded, not simulated).
        path: HTTP(S) path checked; the gateway's readiness endpoint is ``/healthz/ready`` on
            15021 (recorded, not simulated; ``lint`` warns on another, IL650).
        timeout_s: Seconds a check may take (recorded, not simulated: checks answer at once).
    """

    interval_s: float = Field(10.0, gt=0)
    healthy_threshold: int = Field(3, ge=1)
    unhealthy_threshold: int = Field(3, ge=1)
    protocol: Literal["TCP", "HTTP", "HTTPS"] = "TCP"
    port: int | Literal["traffic-port"] = "traffic-port"
    path: str | None = None
    timeout_s: float = Field(10.0, gt=0)


class AwsSpec(SimModel):
    """The AWS load balancer in front of the ingress node pool.

    Attributes:
        lb: ``nlb`` (flow hash per TCP connection), ``alb`` (per request) or ``clb``.
        cross_zone: Cross-zone load balancing; None = AWS default (NLB off, ALB on, CLB off).
        alb_algorithm: ALB target-group algorithm.
        target_type: ``instance`` (NodePort + kube-proxy hop) or ``ip`` (straight to pods).
        external_traffic_policy: ``Cluster`` (kube-proxy may forward to another node) or
            ``Local`` (only nodes with a gateway pod pass health checks).
        lb_latency: One LB hop.
        kube_proxy_latency: kube-proxy DNAT (instance targets).
        cross_node_latency: Extra hop to another node in the AZ.
        cross_az_latency: Extra cost of crossing AZs.
        idle_timeout_s: Connection idle timeout; None = AWS default (NLB 350 s, ALB/CLB 60 s).
        surge_queue: CLB surge queue length (requests beyond it get 503 spillover).
        clb_target_capacity: Outstanding requests a CLB sends to one target before queueing.
        health_check: Health check settings.
        scheme: ``internet-facing`` or ``internal`` (recorded, not simulated).
        deregistration_delay_s: Target-group deregistration delay; None = AWS default 300 s
            (recorded, not simulated: a removed target's connections end with its pod).
        proxy_protocol: Proxy protocol v2 on the target group (recorded, not simulated).
        listener_idle_timeouts_s: NLB TCP idle timeout per listener port, as annotated
            (``idle_timeout_s`` is the one the simulator uses: the smallest).
        dns_failover_delay_s: Seconds from a zone turning unhealthy (its LB node down, or no
            healthy target it may use: in its own zone with cross-zone off, in any zone with
            it on) until the load balancer's DNS answer leaves that zone's address out, and
            from its recovery until the address is back; default 0 (AWS publishes no figure;
            the health checks' own delay comes first). Clients see the change when their
            cached answer expires (``traffic[].client.dns_ttl_s``). Acts only on traffic with
            a ``client`` block.
    """

    lb: Literal["nlb", "alb", "clb"] = "nlb"
    cross_zone: bool | None = None
    alb_algorithm: Literal["round_robin", "least_outstanding_requests"] = "round_robin"
    target_type: Literal["instance", "ip"] = "instance"
    external_traffic_policy: Literal["Cluster", "Local"] = "Cluster"
    lb_latency: DistSpec = Field(default_factory=lambda: DistSpec.model_validate("det(0.3ms)"))
    kube_proxy_latency: DistSpec = Field(
        default_factory=lambda: DistSpec.model_validate("det(0.05ms)")
    )
    cross_node_latency: DistSpec = Field(
        default_factory=lambda: DistSpec.model_validate("det(0.1ms)")
    )
    cross_az_latency: DistSpec = Field(
        default_factory=lambda: DistSpec.model_validate("det(0.6ms)")
    )
    idle_timeout_s: float | None = Field(None, gt=0)
    surge_queue: int = Field(1024, ge=0)
    clb_target_capacity: int = Field(1024, ge=1)
    health_check: HealthCheckSpec = Field(default_factory=HealthCheckSpec)
    scheme: Literal["internet-facing", "internal"] | None = None
    deregistration_delay_s: float | None = Field(None, ge=0)
    proxy_protocol: bool = False
    listener_idle_timeouts_s: dict[int, float] = Field(default_factory=dict)
    dns_failover_delay_s: float = Field(0.0, ge=0)

    @property
    def cross_zone_enabled(self) -> bool:
        """Cross-zone with the AWS default filled in."""
        return self.cross_zone if self.cross_zone is not None else self.lb == "alb"


class IngressSpec(SimModel):
    """The dedicated Istio ingress node pool (the seed's architecture).

    Attributes:
        azs: Availability zones, in order.
        nodes_per_az: Ingress nodes in each AZ (an int for all, or a mapping per AZ).
        cores_per_node: vCPUs per node; workers beyond it share cores.
        pods_per_node: Gateway pods per node (a DaemonSet has 1).
        gateway_replicas: Instead of per-node pods, this many gateway pods spread over the
            nodes round-robin (some nodes may have none).
        concurrency: Envoy worker threads per gateway pod; a connection is pinned to one.
        cpu_per_request: CPU time per request on a worker; default from the calibration.
        proxy_latency: Extra latency per gateway hop; default from the calibration.
    """

    azs: list[str] = Field(default_factory=lambda: ["us-east-1a", "us-east-1b"], min_length=1)
    nodes_per_az: int | dict[str, int] = 1
    cores_per_node: int = Field(2, ge=1)
    pods_per_node: int = Field(1, ge=0)
    gateway_replicas: int | None = Field(None, ge=1)
    concurrency: int = Field(2, ge=1)
    cpu_per_request: DistSpec | None = None
    proxy_latency: DistSpec | None = None

    @field_validator("azs")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"azs must be unique, got {v}")
        return v

    @field_validator("nodes_per_az")
    @classmethod
    def _nodes(cls, v: int | dict[str, int]) -> int | dict[str, int]:
        counts = [v] if isinstance(v, int) else list(v.values())
        if any(n < 0 for n in counts):
            raise ValueError(f"nodes_per_az must be >= 0, got {v}")
        return v

    def nodes_in(self, az: str) -> int:
        """Ingress nodes in *az*."""
        if isinstance(self.nodes_per_az, int):
            return self.nodes_per_az
        return self.nodes_per_az.get(az, 0)

    def nodes(self) -> list[tuple[str, str]]:
        """``(name, az)`` of every ingress node, in order.

        Example:
            >>> IngressSpec(azs=["a", "b"], nodes_per_az={"a": 2, "b": 1}).nodes()
            [('ingress-a-0', 'a'), ('ingress-a-1', 'a'), ('ingress-b-0', 'b')]
        """
        return [(f"ingress-{az}-{i}", az) for az in self.azs for i in range(self.nodes_in(az))]

    def gateway_nodes(self) -> list[int]:
        """For each gateway pod, in pod order, the index of its node in :meth:`nodes`.

        One pod per node per ``pods_per_node`` (a DaemonSet), or ``gateway_replicas`` pods
        spread round-robin over the nodes.

        Example:
            >>> IngressSpec(azs=["a", "b"], nodes_per_az=1, gateway_replicas=3).gateway_nodes()
            [0, 1, 0]
        """
        n = len(self.nodes())
        if n == 0:
            return []
        if self.gateway_replicas is not None:
            return [i % n for i in range(self.gateway_replicas)]
        return [i for i in range(n) for _ in range(self.pods_per_node)]


class ErrorSpec(SimModel):
    """A backend error model.

    Attributes:
        probability: Each request fails with this probability.
        status: HTTP status of a failure (503 …); 0 means the connection is reset (Envoy
            reports 503 with flag ``UC``).
        first_n: The first N requests of each pod fail.
        start_s: Window start (None: from the beginning).
        end_s: Window end (None: to the end).
        cost: What a failure costs the pod: ``service_time`` (default: the request queues and
            is served in full, then fails, as an application that errors at the end of its
            work) or ``none`` (it fails at once, without queueing or service time, as one that
            rejects before doing any work, e.g. on a failed dependency check).
    """

    probability: float = Field(0.0, ge=0, le=1)
    status: int = Field(503, ge=0, le=599)
    first_n: int = Field(0, ge=0)
    start_s: float | None = Field(None, ge=0)
    end_s: float | None = Field(None, ge=0)
    cost: Literal["service_time", "none"] = "service_time"


class AutoscaleSpec(SimModel):
    """A HorizontalPodAutoscaler on CPU utilisation (busy servers / servers) of a version.

    Every ``sync_period_s`` the desired count is ⌈current × utilisation / target⌉, unchanged
    while the ratio is within ``tolerance`` of 1, clamped to [min_replicas, max_replicas];
    utilisation is the mean over the last period. New pods are ready after the version's
    ``startup_s``; with a node capacity (``node_capacity``), the pods beyond the room left on
    the current nodes wait ``node_provisioning_s`` more for new nodes (a cluster autoscaler or
    Karpenter adding them). Nodes added stay until the end of the run (scaling nodes down
    takes the cluster autoscaler 10 minutes or more by default).

    Attributes:
        target_utilisation: Target busy fraction (0..1), e.g. 0.75 for 75 %.
        min_replicas: Lower bound.
        max_replicas: Upper bound.
        sync_period_s: Controller period (Kubernetes: 15 s).
        tolerance: No change while |ratio − 1| ≤ tolerance (Kubernetes: 0.1).
        node_capacity: Pods of this version the current nodes hold; default None (room for
            every pod, at once). A scale-up beyond it needs new nodes.
        pods_per_node: Pods of this version one new node holds, ≥ 1; default None (the new
            nodes hold exactly the extra pods). Nodes are added whole, so the room grows by a
            multiple of it.
        node_provisioning_s: Seconds from a scale-up that needs new nodes until they take
            pods (instance launch and kubelet ready: typically 60-120 s on EKS); the pods on
            them are ready ``startup_s`` later. Default 0.
    """

    target_utilisation: float = Field(gt=0, le=1)
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(100, ge=1)
    sync_period_s: float = Field(15.0, gt=0)
    tolerance: float = Field(0.1, ge=0, lt=1)
    node_capacity: int | None = Field(None, ge=0)
    pods_per_node: int | None = Field(None, ge=1)
    node_provisioning_s: float = Field(0.0, ge=0)


class VersionSpec(SimModel):
    """A version (subset) of a service: its pods and how they behave.

    Attributes:
        name: Version name (``v1``); the default pod label is ``version: <name>``.
        labels: Pod labels (added to ``app: <service>``).
        replicas: Pods in total, spread over the AZs round-robin; or use ``replicas_per_az``.
        replicas_per_az: Pods per AZ (an int for all, or a mapping per AZ).
        concurrency: Requests a pod serves at once (one FIFO queue per pod).
        service_time: Service time distribution.
        errors: Error models, applied in order.
        startup_s: Time from creation to ready.
        autoscale: A HorizontalPodAutoscaler for this version, or None.
        on_cancel: What the pod does with a request whose try Envoy cancelled (a per-try or
            route timeout resets the stream): ``finish`` (default: the application does not
            notice and finishes the work, so the pod stays busy, which is what makes a
            per-try timeout below the service time a retry storm) or ``stop`` (it notices and
            drops the work at once, e.g. a gRPC server honouring cancellation; a request still
            queued is dropped when it reaches a server). The sidecar's CPU is spent either way.
    """

    name: str
    labels: dict[str, str] | None = None
    replicas: int | None = Field(None, ge=0)
    replicas_per_az: int | dict[str, int] | None = None
    concurrency: int = Field(1, ge=1)
    service_time: DistSpec = Field(default_factory=lambda: DistSpec.model_validate("exp(10ms)"))
    errors: list[ErrorSpec] = Field(default_factory=list)
    startup_s: float = Field(0.0, ge=0)
    autoscale: AutoscaleSpec | None = None
    on_cancel: Literal["finish", "stop"] = "finish"

    @property
    def pod_labels(self) -> dict[str, str]:
        """Labels of the version's pods (without ``app``)."""
        return dict(self.labels) if self.labels is not None else {"version": self.name}

    def pod_azs(self, azs: list[str]) -> list[str]:
        """The AZ of each of the version's initial pods, in pod order.

        Args:
            azs: The scenario's AZs (``ingress.azs``).

        Example:
            >>> VersionSpec(name="v1", replicas=3).pod_azs(["a", "b"])
            ['a', 'b', 'a']
            >>> VersionSpec(name="v1", replicas_per_az={"b": 2}).pod_azs(["a", "b"])
            ['b', 'b']
        """
        if self.replicas_per_az is not None:
            rpa = self.replicas_per_az
            counts = {az: (rpa if isinstance(rpa, int) else rpa.get(az, 0)) for az in azs}
            return [az for az in azs for _ in range(counts[az])]
        n = self.replicas if self.replicas is not None else len(azs)
        return [azs[i % len(azs)] for i in range(n)]


class ServiceSpec(SimModel):
    """A Kubernetes service behind the ingress.

    Attributes:
        name: Service name; pods carry ``app: <name>``.
        namespace: Namespace.
        port: Service port.
        sidecar: The pods have the Istio sidecar (``istioctl kube-inject``, as the seed does):
            an extra Envoy hop with its own CPU and latency.
        sidecar_concurrency: Sidecar worker threads.
        endpoint_delay_s: Time for a failed pod to leave the endpoints Envoy balances over
            (kubelet, EndpointSlice and EDS push together). Until then Envoy keeps sending
            it tries, which fail with 503 ``UF`` (refused at once, or after the connect timeout
            when the pod's node is gone) unless a retry or outlier detection moves them.
        versions: The versions (subsets).
    """

    name: str
    namespace: str = "default"
    port: int = Field(80, ge=1, le=65535)
    sidecar: bool = False
    sidecar_concurrency: int = Field(2, ge=1)
    endpoint_delay_s: float = Field(5.0, ge=0)
    versions: list[VersionSpec] = Field(min_length=1)

    @property
    def host(self) -> str:
        """The service FQDN."""
        return f"{self.name}.{self.namespace}.svc.cluster.local"


class EventSpec(SimModel):
    """A scheduled event.

    Attributes:
        at_s: When it happens.
        kind: ``pod_crash`` (``count`` pods of ``service``/``version`` die, back after
            ``restart_after_s`` if given), ``node_loss`` (ingress ``node``), ``az_loss`` (the
            zone's load-balancer node, every ingress node and every backend pod in ``az``;
            see ``lb_node_down``, ``pods_down``, ``failure``), ``error_burst``
            (``probability``/``status`` on ``service``/``version`` for ``duration_s``),
            ``deploy`` (``replicas`` new pods of ``version``, ready after the version's
            startup), ``scale`` (set a version's replicas).
            A crashed pod stays in Envoy's endpoints for its service's ``endpoint_delay_s``;
            tries sent to it meanwhile fail with 503 ``UF`` (at once when its node is up, after
            the cluster's connect timeout when its node is gone), unless retries or outlier
            detection take them elsewhere.
        service: Service the event acts on (pod_crash, error_burst, deploy, scale); default the
            first service.
        version: Version of that service (default: every version; deploy and scale take the
            first).
        az: Zone that fails (az_loss).
        node: Ingress node that fails (node_loss; default the first node).
        count: Pods that crash (pod_crash).
        restart_after_s: Seconds until crashed pods run again (pod_crash; default never); they
            take traffic after the version's ``startup_s``.
        duration_s: How long an error burst lasts (default to the end of the run).
        probability: Share of requests that fail during an error burst. The failure is
            decided when the pod has served the request, so it costs the full service time
            (as the version's ``errors`` do; a VirtualService ``fault.abort`` costs none).
        status: Status of those failures (error_burst).
        replicas: Pods to add (deploy) or the version's new replica count (scale).
        lb_node_down: az_loss: whether the zone's load-balancer node dies too; default true
            (a zone outage). False: only the zone's ingress nodes (the LB targets) die, the LB
            node stays up and in DNS until the health checks empty the zone. Acts on traffic
            with a ``client`` block (the idealised client never reaches a dead LB node).
        pods_down: az_loss: whether the zone's backend pods die too (their node is gone, so
            Envoy's tries to them wait for its connect timeout until they leave its
            endpoints); default true.
        failure: az_loss and node_loss: what a client's packets to a dead address meet.
            ``blackhole`` (default: the machine is gone, nothing answers): a new connection
            waits for the client's ``connect_timeout_s``; a request on an open connection
            gets no answer until the client's ``timeout_s``, or until the NLB marks the target
            unhealthy and resets its connections. ``reset`` (the host answers with a TCP RST):
            both fail at once. Requests in flight on a dead gateway lose their answer the same
            way. Acts on traffic with a ``client`` block; the idealised client sees a 502
            ``LBF`` at once.
    """

    at_s: float = Field(ge=0)
    kind: Literal["pod_crash", "node_loss", "az_loss", "error_burst", "deploy", "scale"]
    service: str | None = None
    version: str | None = None
    az: str | None = None
    node: str | None = None
    count: int = Field(1, ge=1)
    restart_after_s: float | None = Field(None, ge=0)
    duration_s: float | None = Field(None, gt=0)
    probability: float = Field(1.0, ge=0, le=1)
    status: int = Field(503, ge=0, le=599)
    replicas: int | None = Field(None, ge=0)
    lb_node_down: bool = True
    pods_down: bool = True
    failure: Literal["blackhole", "reset"] = "blackhole"

    @model_validator(mode="after")
    def _semantics(self) -> EventSpec:
        allowed = {"az_loss": _EVENT_SEMANTICS, "node_loss": frozenset({"failure"})}
        misplaced = sorted(
            self.model_fields_set & (_EVENT_SEMANTICS - allowed.get(self.kind, frozenset()))
        )
        if misplaced:
            raise ValueError(
                f"{', '.join(misplaced)} applies to az_loss (failure also to node_loss), "
                f"not to {self.kind}"
            )
        return self


class RulesSpec(SimModel):
    """Routing rules: files and inline resources, compiled with the routing core.

    Attributes:
        paths: Files or directories (relative to the scenario file).
        inline: Resources written in the scenario itself.
        profile: Istio version (default: 0.2 for legacy input, else the newest).
        gateway: Gateway to compile for (default: all).
        proxy: Proxy cost model (``istio-1.24``, ``istio-1.16``, ``istio-1.4``).
        set: Field overrides on the loaded resources, files and inline alike: the key is
            ``Kind/name`` (or ``Kind/namespace/name``) then a field path under ``spec``
            (``VirtualService/api.http[0].retries.attempts: 3``). ``--set
            rules.VirtualService/api.http[0].retries.attempts=3`` writes here.
    """

    paths: list[str] = Field(default_factory=list)
    inline: list[dict[str, Any]] = Field(default_factory=list)
    set: dict[str, Any] = Field(default_factory=dict)
    profile: str | None = None
    gateway: str | None = None
    proxy: str = "istio-1.24"


class Scenario(SimModel):
    """A simulation scenario.

    Attributes:
        name: Short name.
        description: What it shows.
        run: Run settings.
        traffic: Client populations.
        aws: The AWS load balancer.
        ingress: The ingress node pool.
        services: Backend services.
        rules: Routing rules; with none, every request goes to the first service.
        events: Scheduled events.
        base_dir: Folder that relative paths are resolved against (set by :func:`load_scenario`).
    """

    name: str = "scenario"
    description: str = ""
    run: RunSpec = Field(default_factory=RunSpec)
    traffic: list[TrafficSpec] = Field(min_length=1)
    aws: AwsSpec = Field(default_factory=AwsSpec)
    ingress: IngressSpec = Field(default_factory=IngressSpec)
    services: list[ServiceSpec] = Field(min_length=1)
    rules: RulesSpec = Field(default_factory=RulesSpec)
    events: list[EventSpec] = Field(default_factory=list)
    base_dir: str | None = None

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique, got {names}")
        for i, ev in enumerate(self.events):
            if ev.service is not None and ev.service not in names:
                raise ValueError(f"events[{i}].service {ev.service!r} is not one of {names}")
            if ev.az is not None and ev.az not in self.ingress.azs:
                raise ValueError(f"events[{i}].az {ev.az!r} is not one of {self.ingress.azs}")
        for t in self.traffic:
            for az in t.az_split or {}:
                if az not in self.ingress.azs:
                    raise ValueError(
                        f"traffic {t.name!r} az_split names {az!r}, not one of {self.ingress.azs}"
                    )
        return self

    def simpy_only_features(self) -> list[str]:
        """Features this scenario uses that only the SimPy engine models, in plain words.

        The fast engine (``engine="auto"``) falls back to SimPy when this is not empty and
        names the first one in its finding.
        """
        out: list[str] = []
        for t in self.traffic:
            if getattr(t, "client", None) is not None:
                out.append(f"traffic[{t.name}].client (the client model)")
        for i, ev in enumerate(self.events):
            named = sorted(ev.model_fields_set & _EVENT_SEMANTICS)
            if named:
                out.append(f"events[{i}] failure semantics ({', '.join(named)})")
        return out

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """A copy with dotted-path overrides applied (``{"ingress.nodes_per_az": 3}``).

        List items are addressed by index (``services.0.versions.0.replicas``) or by name
        (``services.httpbin.versions.v1.replicas``). A routing resource's field is addressed by
        kind and name (``rules.VirtualService/api.http[0].retries.attempts``); see
        :attr:`RulesSpec.set`.

        Raises:
            ConfigError: With an ``IL401`` finding naming the path when it does not exist or
                the value is invalid.
        """
        data = self.model_dump(mode="python", exclude_unset=True, exclude_none=True)
        for path, value in overrides.items():
            head, _, rest = path.partition(".")
            if head == "rules" and "/" in rest.partition(".")[0]:
                # a field of a routing resource (Kind/name.field): applied when the rules load
                data.setdefault("rules", {}).setdefault("set", {})[rest] = value
                continue
            _set_dotted(data, path, value)
        return scenario_from_dict(data, source=f"{self.name} (overrides)")


_EVENT_SEMANTICS = frozenset({"lb_node_down", "pods_down", "failure"})
"""Event fields of the failure semantics the fast engine does not model."""


def _set_dotted(data: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(cur, list):
            idx: int | None = None
            if part.lstrip("-").isdigit():
                idx = int(part)
            else:
                idx = next(
                    (
                        k
                        for k, item in enumerate(cur)
                        if isinstance(item, dict) and item.get("name") == part
                    ),
                    None,
                )
            if idx is None or not -len(cur) <= idx < len(cur):
                raise ConfigError(
                    [_bad(path, f"no list item {part!r} at {'.'.join(parts[:i]) or 'top'}")]
                )
            if last:
                cur[idx] = value
            else:
                cur = cur[idx]
        elif isinstance(cur, dict):
            if last:
                cur[part] = value
            else:
                if part not in cur or cur[part] is None:
                    cur[part] = {}
                cur = cur[part]
        else:
            raise ConfigError([_bad(path, f"{'.'.join(parts[:i])} is not an object or list")])


def _bad(path: str, message: str) -> Finding:
    return finding(
        "IL401", "Scenario", path, message, "check the dotted path against docs/scenario.md"
    )


def scenario_findings(
    err: ValidationError, source: str, lines: dict[Any, int] | None = None
) -> list[Finding]:
    """Findings (code IL401) for a scenario that failed validation, with field paths."""
    out = []
    for e in err.errors():
        loc = [
            p
            for p in e["loc"]
            if not (isinstance(p, str) and ("[" in p or p in ("function-after", "function-before")))
        ]
        path = path_str(loc)
        value = e.get("input")
        msg = e["msg"].removeprefix("Value error, ")
        text = (
            f"{msg} (got {value!r})"
            if e["type"] != "missing" and not isinstance(value, dict) and repr(value) not in msg
            else msg
        )
        fix = "see docs/scenario.md for the field's type, unit and default"
        if e["type"] == "extra_forbidden" and loc:
            import difflib

            from istiolab.config.registry import _allowed_fields

            allowed = _allowed_fields(Scenario, tuple(loc[:-1]))
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            text = f"unknown field {loc[-1]!r}" + (
                f" (did you mean {close[0]!r}?)" if close else ""
            )
            fix = (
                f"rename it to {close[0]!r}"
                if close
                else f"fields allowed here: {', '.join(allowed)}"
            )
        elif e["type"] == "missing" and loc:
            text = f"required field {loc[-1]!r} is missing"
        line = None
        if lines is not None:
            key = tuple(loc)
            while key and key not in lines:
                key = key[:-1]
            line = lines.get(key)
        out.append(
            finding(
                "IL401",
                "Scenario",
                path,
                text,
                fix,
                file=source,
                line=line,
            )
        )
    return out


def scenario_from_dict(
    data: Any,
    *,
    source: str = "<scenario>",
    base_dir: str | None = None,
    lines: dict[Any, int] | None = None,
) -> Scenario:
    """Validate plain data into a :class:`Scenario`.

    Raises:
        ConfigError: With one ``IL401`` finding per problem (path, value, fix).
    """
    if not isinstance(data, dict):
        raise ConfigError([_bad("", f"a scenario must be a mapping, got {type(data).__name__}")])
    if base_dir is not None and data.get("base_dir") is None:
        data = {**data, "base_dir": base_dir}
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError(scenario_findings(err, source, lines)) from None


def mmc_scenario(
    rate_rps: float,
    mean_service_ms: float,
    servers: int,
    *,
    duration_s: float = 60.0,
    warmup_s: float = 5.0,
    seed: int = 1,
    name: str = "mmc",
) -> Scenario:
    """An isolated M/M/c: Poisson arrivals to one pod with *servers* concurrency.

    Every other cost (LB, kube-proxy, network, gateway CPU and latency) is zero, so the result
    is the queue alone, comparable with :func:`istiolab.sim.theory.mmc_wait` (Erlang C). Used
    by the benchmarks, the planner's and the sweeps' tests, and handy in notebooks.
    """
    return scenario_from_dict(
        {
            "name": name,
            "run": {"duration_s": duration_s, "warmup_s": warmup_s, "seed": seed},
            "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": rate_rps}}],
            "aws": {
                "lb_latency": "zero",
                "kube_proxy_latency": "zero",
                "cross_node_latency": "zero",
                "cross_az_latency": "zero",
            },
            "ingress": {
                "azs": ["a"],
                "nodes_per_az": 1,
                "cpu_per_request": "zero",
                "proxy_latency": "zero",
            },
            "services": [
                {
                    "name": "svc",
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": 1,
                            "concurrency": servers,
                            "service_time": f"exp({mean_service_ms:g}ms)",
                        }
                    ],
                }
            ],
        }
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario YAML file (relative paths inside resolve against its folder).

    Raises:
        ConfigError: For unreadable files, YAML errors and invalid fields (code IL401 / IL001).
    """
    from istiolab.config import codecs

    p = Path(path)
    try:
        # The config loader's bounded reader: /dev/zero, a FIFO or a huge file is refused.
        text = codecs.read_text(p)
    except codecs.InputRefused as err:
        raise ConfigError(
            [finding(err.code, str(p), "", err.message, err.fix, file=str(p))]
        ) from None
    docs = codecs.loads(text, str(p))
    if not docs:
        raise ConfigError([_bad("", f"{p} is empty")])
    doc = docs[0]
    if doc.error is not None:
        raise ConfigError(
            [
                finding(
                    doc.code or "IL001",
                    str(p),
                    "",
                    doc.error,
                    doc.fix or "fix the YAML syntax",
                    file=str(p),
                    line=doc.line,
                )
            ]
        )
    return scenario_from_dict(
        doc.data, source=str(p), base_dir=str(p.parent.resolve()), lines=dict(doc.lines)
    )


def dump_scenario(scenario: Scenario) -> str:
    """The scenario as YAML (fields that differ from their defaults only)."""
    from istiolab.config import codecs

    data = scenario.model_dump(mode="json", exclude_defaults=True, exclude={"base_dir"})
    return codecs.dumps([data])


def _attribute_docs(cls: type) -> dict[str, str]:
    """Field descriptions from a Google-style ``Attributes:`` docstring section."""
    import inspect
    import re

    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    if "Attributes:" not in doc:
        return out
    body = doc.split("Attributes:", 1)[1]
    current: str | None = None
    for line in body.splitlines():
        m = re.match(r"^    (\w+)(?:, [\w, ]+)?: (.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current and line.startswith("        "):
            out[current] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return out


_SECTION_NAMES = {
    "RunSpec": "`run` section",
    "TrafficSpec": "traffic source",
    "ArrivalSpec": "`arrival` section",
    "ConnectionSpec": "`connections` section",
    "ClientSpec": "`client` section",
    "ClientRetrySpec": "`retries` section",
    "RequestTemplate": "request template",
    "SessionSpec": "`sessions` section",
    "RateStep": "rate step (`at_s`, `rate_rps`)",
    "AwsSpec": "`aws` section",
    "HealthCheckSpec": "`health_check` section",
    "IngressSpec": "`ingress` section",
    "ServiceSpec": "service",
    "VersionSpec": "version",
    "ErrorSpec": "error rule",
    "AutoscaleSpec": "`autoscale` section",
    "RulesSpec": "`rules` section",
    "EventSpec": "event",
}


def _type_name(tp: Any) -> str:
    """A type in plain words: "number > 0", "list of service", "one of `nlb`, `alb`"."""
    import types
    import typing

    import annotated_types

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        base = _type_name(args[0])
        bounds = []
        for meta in args[1:]:
            for item in getattr(meta, "metadata", [meta]):
                for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
                    if isinstance(item, getattr(annotated_types, attr.capitalize())):
                        bounds.append(f"{sign} {getattr(item, attr):g}")
        return f"{base} {', '.join(bounds)}".strip()
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        text = " or ".join(_type_name(a) for a in kinds)
        return f"{text}, or null" if len(kinds) < len(args) else text
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        inner = [a for a in args if a is not Ellipsis]
        return "list of " + (_type_name(inner[0]) if inner else "values")
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if tp is int:
        return "whole number"
    if tp is float:
        return "number"
    if tp is str:
        return "text"
    if tp is bool:
        return "true or false"
    if tp is typing.Any:
        return "any value"
    name = getattr(tp, "__name__", str(tp))
    if name == "DistSpec":
        return "distribution (ms)"
    return _SECTION_NAMES.get(name, name)


def render_docs() -> str:
    """Markdown for ``docs/scenario.md``: every field with its type, default and meaning."""
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    from istiolab.sim.dists import DistSpec
    from istiolab.sim.workload import (
        ArrivalSpec,
        ClientRetrySpec,
        ClientSpec,
        ConnectionSpec,
        RequestTemplate,
        SessionSpec,
        TrafficSpec,
    )

    sections: list[tuple[str, type[BaseModel]]] = [
        ("Scenario (top level)", Scenario),
        ("run", RunSpec),
        ("traffic[]", TrafficSpec),
        ("traffic[].arrival", ArrivalSpec),
        ("traffic[].connections", ConnectionSpec),
        ("traffic[].requests[]", RequestTemplate),
        ("traffic[].sessions", SessionSpec),
        ("traffic[].client", ClientSpec),
        ("traffic[].client.retries", ClientRetrySpec),
        ("aws", AwsSpec),
        ("aws.health_check", HealthCheckSpec),
        ("ingress", IngressSpec),
        ("services[]", ServiceSpec),
        ("services[].versions[]", VersionSpec),
        ("services[].versions[].errors[]", ErrorSpec),
        ("services[].versions[].autoscale", AutoscaleSpec),
        ("rules", RulesSpec),
        ("events[]", EventSpec),
        ("distributions (any field of type DistSpec)", DistSpec),
    ]
    from istiolab.profiles import PROFILES
    from istiolab.sim.calibration import CROSS_AZ_LATENCY_MS, LB_LATENCY_MS, PROXY_COSTS

    out = [
        "# Scenario files",
        "",
        "Generated by `python -m istiolab.sim.scenario > docs/scenario.md` from the models in",
        "`istiolab/sim/scenario.py`, `istiolab/sim/workload.py` and `istiolab/sim/dists.py`.",
        "",
        "A scenario is one YAML file: where the traffic comes from (`traffic`), the AWS load",
        "balancer (`aws`), the Istio ingress gateway pool (`ingress`), the backends",
        "(`services`), the routing rules (`rules`), what happens during the run (`events`) and",
        "how long it runs (`run`). Keys are snake_case. Fields ending in `_s` are seconds;",
        'distributions are in milliseconds (`"exp(10ms)"`, `"det(0.2ms)"`,',
        '`"lognormal(20ms, cv=1.5)"`, `zero`, or a mapping with `kind`); quote them in flow',
        'style (`{service_time: "lognormal(40ms, cv=1)"}`), and write the unit: a bare number',
        "is taken as milliseconds. Every cost can be set to `zero` to isolate one stage.",
        "Override any field from the command line with `--set dotted.path=value` (list items",
        "by index or `name`, e.g. `--set services.0.endpoint_delay_s=0`).",
        "",
        "## Where retries, timeouts and load balancing go",
        "",
        "Not in the scenario: in the Istio resources it routes with (`rules`), as on a cluster.",
        "Retries and timeouts are `VirtualService` `http[].retries` (`attempts`,",
        "`perTryTimeout`, `retryOn`) and `http[].timeout`; the upstream load balancer, circuit",
        "breakers and outlier detection are `DestinationRule` `trafficPolicy` (`loadBalancer`,",
        "`connectionPool`, `outlierDetection`). What is not set comes from the Istio profile",
        "(`rules.profile`, below). `istiolab explain` shows the effective values for a request,",
        "and `istiolab simulate` prints them in its assumptions paragraph (`assumptions` in",
        "`--format json`, see docs/outputs.md). The AWS load balancer's settings are in `aws`",
        "and the gateway's worker threads in `ingress.concurrency`. As in Envoy, the upstream",
        "load balancer's state is per worker thread: each gateway worker runs its own round",
        "robin from a random offset, so W workers interleave W sequences and per-pod counts",
        "vary W times more than under one shared round robin. Least request reads per-pod",
        "active requests, which Envoy shares across workers.",
        "",
        "## Defaults per Istio profile",
        "",
        "| profile | Istio | upstream LB | default retries | route timeout | connect timeout |",
        "|---|---|---|---|---|---|",
    ]
    for name, prof in PROFILES.items():
        retry = prof.default_retry
        retries = "none" if retry is None else f"{retry.num_retries} on {', '.join(retry.retry_on)}"
        timeout = (
            "none"
            if prof.default_route_timeout_s is None
            else f"{prof.default_route_timeout_s:g} s"
        )
        out.append(
            f"| `{name}` | {prof.versions} | {prof.default_lb} | {retries} | {timeout} | "
            f"{prof.connect_timeout_s:g} s |"
        )
    out += [
        "",
        "Calibration costs (`rules.proxy` picks the gateway's; `istiolab/sim/calibration.py`",
        "has the sources):",
        "",
        "| proxy cost model | CPU per request | extra latency per hop | source |",
        "|---|---|---|---|",
    ]
    for name, cost in PROXY_COSTS.items():
        out.append(f"| `{name}` | {cost.cpu_ms:g} ms | {cost.latency_ms:g} ms | {cost.source} |")
    out += [
        "",
        f"The AWS LB hop ({LB_LATENCY_MS:g} ms) and the cross-AZ hop ({CROSS_AZ_LATENCY_MS:g} ms)"
        " are free parameters: AWS publishes no per-hop latency.",
        "",
    ]
    for title, cls in sections:
        docs = _attribute_docs(cls)
        out += [f"## {title}", "", "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, field in cls.model_fields.items():
            if name == "base_dir":
                continue
            ann = _type_name(field.annotation)
            bounds = [
                f"{sign} {getattr(item, attr):g}"
                for item in field.metadata
                for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))
                if isinstance(getattr(item, attr, None), (int, float))
            ]
            if bounds:
                ann = f"{ann} {', '.join(bounds)}"
            ann = ann.replace("|", "\\|")
            if field.default is not PydanticUndefined:
                default = repr(field.default)
            elif field.default_factory is not None:
                try:
                    value = field.default_factory()  # type: ignore[call-arg]
                    default = "(see section)" if isinstance(value, BaseModel) else repr(value)
                except TypeError:
                    default = "-"
            else:
                default = "**required**"
            meaning = docs.get(name, "").replace("|", "\\|")
            default = default.replace("|", "\\|")
            out.append(f"| `{name}` | {ann} | {default} | {meaning or '-'} |")
        out.append("")
    from istiolab.sim.support import render_support

    return "\n".join(out) + "\n" + render_support()


if __name__ == "__main__":
    # Import the module under its own name so the docs show istiolab's classes, not __main__'s.
    import istiolab.sim.scenario as _module

    print(_module.render_docs(), end="")
