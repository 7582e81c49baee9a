"""The AWS load balancer in front of the ingress gateway, read from its Service's annotations.

:func:`read_load_balancer` turns a ``type: LoadBalancer`` Service into :class:`AwsLoadBalancer`
(what the AWS Load Balancer Controller v2.9+, or the in-tree provider, would build);
:func:`aws_findings` lints the combinations that hurt (IL650–IL655). ``cluster import`` maps
the same reading into a scenario's ``aws`` block, so lint and import never disagree.

Names and defaults follow the controller's annotation reference,
kubernetes-sigs/aws-load-balancer-controller ``docs/guide/service/annotations.md``: type
(``external``, deprecated ``nlb-ip``; ``nlb`` is the in-tree provider's), ``nlb-target-type``
(``instance`` by default with ``loadBalancerClass``), ``scheme`` (``internal`` by default),
``aws-load-balancer-attributes`` (``load_balancing.cross_zone.enabled``, which wins over the
deprecated ``cross-zone-load-balancing-enabled``), ``target-group-attributes``
(``deregistration_delay.timeout_seconds``, ``proxy_protocol_v2.enabled``), ``proxy-protocol:
"*"`` (wins over the attribute), and the health check: protocol ``TCP`` (``HTTP`` when
``externalTrafficPolicy: Local``), port ``traffic-port`` (``healthCheckNodePort`` when
``Local``), path ``/`` for HTTP(S), interval 10 s, timeout 10 s for TCP and 6 s for HTTP (the
note under ``healthcheck-timeout``), thresholds 3 and 3. The NLB TCP idle timeout is a listener
attribute (``aws-load-balancer-listener-attributes.TCP-<port>: tcp.idle_timeout.seconds=<n>``,
v2.9+).
A Service without ``aws-load-balancer-type`` gets the in-tree provider's Classic ELB, whose
health-check defaults are those of cloud-provider-aws ``pkg/providers/v1/aws.go``
(``defaultHC*``: interval 10 s, timeout 5 s, healthy 2, unhealthy 6).
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from istiolab.config.configset import ConfigSet
from istiolab.config.k8s import Pod, Service
from istiolab.findings import Finding

__all__ = [
    "READINESS_PATH",
    "READINESS_PORT",
    "ZONE_LABEL",
    "AwsLoadBalancer",
    "HealthCheck",
    "aws_findings",
    "read_load_balancer",
]

P = "service.beta.kubernetes.io/"
READINESS_PORT = 15021
READINESS_PATH = "/healthz/ready"
ZONE_LABEL = "topology.kubernetes.io/zone"
"""A Pod's zone: the label Kubernetes copies from its Node (PodTopologyLabelsAdmission, 1.33+)."""
_MAX_VALUE = 80


@dataclasses.dataclass(frozen=True)
class HealthCheck:
    """A target group's health check, defaults filled in.

    Attributes:
        protocol: ``TCP``, ``HTTP`` or ``HTTPS``.
        port: A port number, or ``traffic-port``.
        path: The HTTP(S) path; None for TCP.
        interval_s: Seconds between checks.
        timeout_s: Seconds a check may take.
        healthy_threshold: Successes in a row before a target takes traffic.
        unhealthy_threshold: Failures in a row before a target is taken out.
        explicit: The annotations (without the prefix) that set these values.
    """

    protocol: str
    port: int | str
    path: str | None
    interval_s: int
    timeout_s: int
    healthy_threshold: int
    unhealthy_threshold: int
    explicit: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class AwsLoadBalancer:
    """What the AWS provider builds for a ``type: LoadBalancer`` Service.

    Attributes:
        lb: ``nlb`` or ``clb``.
        lb_type: The ``aws-load-balancer-type`` annotation (``external``, ``nlb-ip``, ``nlb``)
            or ``""``.
        controller: Built by the AWS Load Balancer Controller (else the in-tree provider).
        target_type: ``instance`` or ``ip``.
        scheme: ``internal`` or ``internet-facing``.
        cross_zone: Cross-zone load balancing as annotated; None: the AWS default (off).
        health_check: The target group's health check.
        deregistration_delay_s: ``deregistration_delay.timeout_seconds``; None: AWS's 300 s.
        tcp_idle_timeout_s: NLB TCP idle timeout per listener port (``TCP-<port>``).
        proxy_protocol: Proxy protocol v2 on the target group.
        external_traffic_policy: ``Cluster`` or ``Local``.
        clb_idle_timeout_s: ``aws-load-balancer-connection-idle-timeout`` (Classic ELB only).
        problems: ``(annotation, value, why)`` for values that could not be read.
    """

    lb: Literal["nlb", "clb"]
    lb_type: str
    controller: bool
    target_type: Literal["instance", "ip"]
    scheme: str
    cross_zone: bool | None
    health_check: HealthCheck
    deregistration_delay_s: int | None
    tcp_idle_timeout_s: Mapping[int, int]
    proxy_protocol: bool
    external_traffic_policy: Literal["Cluster", "Local"]
    clb_idle_timeout_s: int | None
    problems: tuple[tuple[str, str, str], ...] = ()

    @property
    def cross_zone_enabled(self) -> bool:
        """Cross-zone with the AWS default (off for NLB and in-tree CLB) filled in."""
        return bool(self.cross_zone)


def _truthy(text: str) -> bool | None:
    value = text.strip().lower()
    return True if value == "true" else False if value == "false" else None


def _pairs(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` (the controller's stringMap) as a dict."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def read_load_balancer(service: Mapping[str, Any]) -> AwsLoadBalancer | None:
    """What the AWS provider builds for *service* (a Service as a dict).

    Returns:
        None when the Service is not of type LoadBalancer, or another class provisions it.
    """
    spec = service.get("spec") or {}
    if not isinstance(spec, dict) or spec.get("type") != "LoadBalancer":
        return None
    meta = service.get("metadata") or {}
    ann = {str(k): str(v) for k, v in ((meta.get("annotations") or {}).items())}
    lb_class = spec.get("loadBalancerClass")
    if lb_class not in (None, "service.k8s.aws/nlb"):
        return None  # another provisioner (a MetalLB, a cloud's own class): not ours to read
    problems: list[tuple[str, str, str]] = []

    def integer(name: str, low: int, high: int) -> int | None:
        raw = ann.get(P + name)
        if raw is None:
            return None
        text = raw.strip()
        if not text.isdigit() or not low <= int(text) <= high:
            problems.append((name, raw, f"an integer from {low} to {high}"))
            return None
        return int(text)

    lb_type = ann.get(P + "aws-load-balancer-type", "").strip().lower()
    controller = lb_class == "service.k8s.aws/nlb" or lb_type in ("external", "nlb-ip")
    etp: Literal["Cluster", "Local"] = (
        "Local" if spec.get("externalTrafficPolicy") == "Local" else "Cluster"
    )
    target: Literal["instance", "ip"] = "instance"
    if lb_type == "nlb-ip":
        target = "ip"
    elif controller:
        raw_target = ann.get(P + "aws-load-balancer-nlb-target-type", "instance").strip()
        if raw_target not in ("instance", "ip"):
            problems.append(("aws-load-balancer-nlb-target-type", raw_target, "instance or ip"))
        target = "ip" if raw_target == "ip" else "instance"
    lb: Literal["nlb", "clb"] = "nlb" if controller or lb_type == "nlb" else "clb"

    internal = _truthy(ann.get(P + "aws-load-balancer-internal", ""))
    if controller:
        scheme = ann.get(P + "aws-load-balancer-scheme") or (
            "internal" if internal in (True, None) else "internet-facing"
        )
    else:  # the in-tree provider: internet-facing unless annotated internal
        scheme = "internal" if internal else "internet-facing"

    cross: bool | None = None
    old = ann.get(P + "aws-load-balancer-cross-zone-load-balancing-enabled")
    if old is not None:
        cross = _truthy(old)
        if cross is None:
            problems.append(
                ("aws-load-balancer-cross-zone-load-balancing-enabled", old, "true/false")
            )
    attrs = _pairs(ann.get(P + "aws-load-balancer-attributes", ""))
    if "load_balancing.cross_zone.enabled" in attrs:
        value = _truthy(attrs["load_balancing.cross_zone.enabled"])
        if value is None:
            problems.append(
                (
                    "aws-load-balancer-attributes",
                    attrs["load_balancing.cross_zone.enabled"],
                    "true/false",
                )
            )
        else:
            cross = value

    tg = _pairs(ann.get(P + "aws-load-balancer-target-group-attributes", ""))
    dereg: int | None = None
    if "deregistration_delay.timeout_seconds" in tg:
        raw = tg["deregistration_delay.timeout_seconds"]
        if raw.isdigit() and int(raw) <= 3600:
            dereg = int(raw)
        else:
            problems.append(("aws-load-balancer-target-group-attributes", raw, "0 to 3600 seconds"))
    proxy = _truthy(tg.get("proxy_protocol_v2.enabled", "")) is True
    if P + "aws-load-balancer-proxy-protocol" in ann:
        proxy = ann[P + "aws-load-balancer-proxy-protocol"].strip() == "*"

    idle: dict[int, int] = {}
    prefix = P + "aws-load-balancer-listener-attributes."
    for key, text in ann.items():
        m = re.fullmatch(re.escape(prefix) + r"TCP-(\d+)", key)
        if m is None:
            continue
        raw = _pairs(text).get("tcp.idle_timeout.seconds", "")
        if raw.isdigit() and 60 <= int(raw) <= 6000:
            idle[int(m.group(1))] = int(raw)
        else:
            problems.append((key[len(P) :], text, "tcp.idle_timeout.seconds=<60 to 6000>"))

    return AwsLoadBalancer(
        lb=lb,
        lb_type=lb_type,
        controller=controller,
        target_type=target,
        scheme=scheme,
        cross_zone=cross,
        health_check=_health_check(ann, lb, etp, integer),
        deregistration_delay_s=dereg,
        tcp_idle_timeout_s=idle,
        proxy_protocol=proxy,
        external_traffic_policy=etp,
        clb_idle_timeout_s=integer("aws-load-balancer-connection-idle-timeout", 1, 4000),
        problems=tuple(problems),
    )


def _health_check(
    ann: Mapping[str, str],
    lb: str,
    etp: str,
    integer: Callable[[str, int, int], int | None],
) -> HealthCheck:
    explicit = frozenset(
        k[len(P) :] for k in ann if k.startswith(P + "aws-load-balancer-healthcheck-")
    )
    local = etp == "Local"
    protocol = ann.get(P + "aws-load-balancer-healthcheck-protocol", "HTTP" if local else "TCP")
    protocol = protocol.strip().upper()
    raw_port = ann.get(P + "aws-load-balancer-healthcheck-port", "").strip()
    # with Local, the default is kube-proxy's healthCheckNodePort, which answers /healthz
    port: int | str = (
        int(raw_port)
        if raw_port.isdigit()
        else raw_port or ("healthCheckNodePort" if local else "traffic-port")
    )
    default_path = "/healthz" if local and not raw_port else "/"
    path = ann.get(P + "aws-load-balancer-healthcheck-path", default_path).strip()
    clb = lb == "clb"
    http = protocol in ("HTTP", "HTTPS")
    interval = integer("aws-load-balancer-healthcheck-interval", 5, 300)
    timeout = integer("aws-load-balancer-healthcheck-timeout", 2, 120)
    healthy = integer("aws-load-balancer-healthcheck-healthy-threshold", 2, 10)
    unhealthy = integer("aws-load-balancer-healthcheck-unhealthy-threshold", 2, 10)
    return HealthCheck(
        protocol=protocol,
        port=port,
        path=path if protocol in ("HTTP", "HTTPS") else None,
        interval_s=interval if interval is not None else 10,
        timeout_s=timeout if timeout is not None else 5 if clb else 6 if http else 10,
        healthy_threshold=healthy if healthy is not None else (2 if clb else 3),
        unhealthy_threshold=unhealthy if unhealthy is not None else (6 if clb else 3),
        explicit=explicit,
    )


# -- lint ---------------------------------------------------------------------------------------


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _readiness_ports(svc: Service) -> set[int]:
    """15021 and, for instance targets, the nodePort of the Service port that leads to it."""
    ports = {READINESS_PORT}
    for p in svc.spec.ports:
        if READINESS_PORT in (p.port, p.target_port) and p.node_port:
            ports.add(int(p.node_port))
    return ports


def _ready(pod: Pod) -> bool:
    status = pod.status if isinstance(pod.status, dict) else {}
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return str(cond.get("status")) == "True"
    return not status  # a hand-written Pod without status counts as ready


def pod_zone_from_label(pod: Pod) -> str | None:
    """The zone a Pod's ``topology.kubernetes.io/zone`` label gives, if any."""
    return pod.metadata.labels.get(ZONE_LABEL)


def aws_findings(
    config: ConfigSet,
    zone_of: Callable[[Pod], str | None] = pod_zone_from_label,
) -> list[Finding]:
    """Lint every ``type: LoadBalancer`` Service of *config* that says it is AWS's.

    A Service says so with an ``aws-load-balancer-*`` annotation or the controller's
    ``loadBalancerClass`` (:func:`on_aws`); a bare LoadBalancer Service may be any cloud's and
    is left alone.

    Args:
        config: The config set (Services and, for IL651, the Pods they select).
        zone_of: The AZ of a Pod; default its ``topology.kubernetes.io/zone`` label
            (``cluster import`` passes its Node's zone).

    Returns:
        IL650–IL655 findings.
    """
    out: list[Finding] = []
    pods = config.kind(Pod)
    for svc in config.kind(Service):
        if not on_aws(svc.to_dict()):
            continue  # a LoadBalancer Service on another cloud: nothing says it is AWS's
        lb = read_load_balancer(svc.to_dict())
        if lb is None:
            continue

        def add(code: str, path: tuple[str | int, ...], message: str, fix: str) -> None:
            out.append(config.finding(code, svc, path, message, fix))  # noqa: B023

        ann_path = ("metadata", "annotations")
        for name, value, want in lb.problems:
            add(
                "IL655",
                (*ann_path, P + name),
                f"{name}: {_short(value)!r} is not {want}",
                f"write {want} (controller docs: annotations.md)",
            )
        hc = lb.health_check
        readiness = hc.protocol in ("HTTP", "HTTPS") and (
            hc.port in _readiness_ports(svc) and hc.path == READINESS_PATH
        )
        # with Local and the default port, kube-proxy's /healthz answers 200 only while the
        # node has a ready gateway pod: it follows readiness, so it is not flagged
        kube_proxy = lb.external_traffic_policy == "Local" and hc.port == "healthCheckNodePort"
        if not readiness and not kube_proxy and selects_gateway(svc):
            where = f"{hc.protocol}:{hc.port}" + (hc.path or "")
            add(
                "IL650",
                (*ann_path,),
                f"the {lb.lb.upper()} health check is {where}, not the gateway's readiness "
                f"endpoint HTTP:{READINESS_PORT}{READINESS_PATH}: a draining or unready "
                "gateway pod keeps getting new connections until it stops listening",
                f"annotate healthcheck-protocol: http, healthcheck-port: "
                f'"{READINESS_PORT}" (its nodePort for instance targets), '
                f"healthcheck-path: {READINESS_PATH}",
            )
        # both set, or one set past the other's default: the defaults alone (10 s and 10 s for
        # TCP) are what the controller itself sends, so they are not flagged
        timing = {"aws-load-balancer-healthcheck-interval", "aws-load-balancer-healthcheck-timeout"}
        unreadable = {name for name, _, _ in lb.problems}
        given = (hc.explicit & timing) - unreadable
        if not timing & unreadable and (
            (len(given) == 2 and hc.interval_s <= hc.timeout_s)
            or (len(given) == 1 and hc.interval_s < hc.timeout_s)
        ):
            add(
                "IL653",
                (*ann_path, P + "aws-load-balancer-healthcheck-interval"),
                f"health-check interval {hc.interval_s} s is not greater than its timeout "
                f"{hc.timeout_s} s: the ELB API rejects the target group (ValidationError) "
                "and the controller cannot reconcile the load balancer",
                "make the interval greater than the timeout (e.g. interval 10, timeout 5)",
            )
        if lb.target_type == "instance" and lb.external_traffic_policy == "Cluster":
            add(
                "IL652",
                ("spec", "externalTrafficPolicy"),
                f"{lb.lb.upper()} instance targets with externalTrafficPolicy Cluster: every "
                "node is a target and kube-proxy forwards to a gateway pod, often on another "
                "node or AZ (an extra hop), and the gateway sees a node's IP, not the client's",
                "use IP targets (aws-load-balancer-nlb-target-type: ip), or "
                "externalTrafficPolicy: Local",
            )
        if lb.lb == "nlb" and lb.clb_idle_timeout_s is not None:
            add(
                "IL654",
                (*ann_path, P + "aws-load-balancer-connection-idle-timeout"),
                f"aws-load-balancer-connection-idle-timeout ({lb.clb_idle_timeout_s} s) sets a "
                "Classic ELB's idle timeout; this NLB ignores it and keeps its TCP idle "
                "timeout (350 s by default)",
                "set aws-load-balancer-listener-attributes.TCP-<port>: "
                "tcp.idle_timeout.seconds=<n> (controller v2.9+), or drop the annotation",
            )
        per_pod_lb = lb.target_type == "ip" or lb.external_traffic_policy == "Local"
        if not lb.cross_zone_enabled and per_pod_lb:
            shares = az_shares(_selected_ready(svc, pods), zone_of)
            if shares is not None:
                add(
                    "IL651",
                    (*ann_path,),
                    "cross-zone load balancing is off and the gateway pods are spread unevenly "
                    "over the AZs: each AZ gets the same share, so "
                    + "; ".join(
                        f"{az}: {n} pod(s), {share:.1%} each" for az, (n, share) in shares.items()
                    ),
                    "turn cross-zone on (aws-load-balancer-attributes: "
                    "load_balancing.cross_zone.enabled=true) or spread the gateway evenly "
                    "(topologySpreadConstraints on topology.kubernetes.io/zone)",
                )
    return out


def on_aws(service: Mapping[str, Any]) -> bool:
    """Whether a Service says it is for AWS (a bare ``type: LoadBalancer`` may be any cloud's).

    It does with an ``aws-load-balancer-*`` annotation, or the controller's
    ``loadBalancerClass``.
    """
    spec = service.get("spec") or {}
    if isinstance(spec, dict) and spec.get("loadBalancerClass") == "service.k8s.aws/nlb":
        return True
    ann = (service.get("metadata") or {}).get("annotations") or {}
    return any(str(k).startswith(P + "aws-load-balancer-") for k in ann)


def selects_gateway(svc: Service) -> bool:
    """Whether *svc* selects an Istio gateway (``istio: ...`` label, or a status port 15021)."""
    selector = svc.spec.selector or {}
    return (
        "istio" in selector
        or any(READINESS_PORT in (p.port, p.target_port) for p in svc.spec.ports)
        or "gateway.networking.k8s.io/gateway-name" in selector
    )


def _selected_ready(svc: Service, pods: Iterable[Pod]) -> list[Pod]:
    selector = svc.spec.selector or {}
    if not selector:
        return []
    return [
        p
        for p in pods
        if p.namespace == svc.namespace
        and all(p.metadata.labels.get(k) == v for k, v in selector.items())
        and _ready(p)
    ]


def az_shares(
    pods: Iterable[Pod], zone_of: Callable[[Pod], str | None]
) -> dict[str, tuple[int, float]] | None:
    """Per AZ: its pod count and each of its pods' share of connections with cross-zone off.

    Every AZ that has a pod gets 1/AZs of the connections (the NLB's node in each AZ gets an
    equal share through DNS), split over its pods.

    Returns:
        None when the spread is even, or a pod's zone is unknown.
    """
    zones = [zone_of(p) for p in pods]
    if not zones or any(z is None for z in zones):
        return None
    counts = collections.Counter(str(z) for z in zones)
    if len(set(counts.values())) <= 1:
        return None
    n = len(counts)
    return {az: (c, 1 / n / c) for az, c in sorted(counts.items())}
