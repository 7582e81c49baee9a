"""Import a cluster into a :class:`~istiolab.sim.scenario.Scenario` and a config set.

The topology becomes the scenario; the routing resources a :class:`~istiolab.config.ConfigSet`.

What is read, and what it becomes:

* **Nodes** — the zone (``topology.kubernetes.io/zone``) and allocatable CPU of each node: the
  scenario's AZs and ``ingress.cores_per_node``.
* **The ingress gateway** (in ``istio-system`` by default, selected by the Gateways'
  ``selector`` or ``istio: ingressgateway``) — its ready pods and their nodes give
  ``ingress.nodes_per_az`` and ``pods_per_node`` (or ``gateway_replicas``); its container's
  ``--concurrency`` gives ``ingress.concurrency``; its image tag the Istio version.
* **The gateway's Service** (type LoadBalancer) — its AWS annotations, read by
  :func:`istiolab.config.aws_checks.read_load_balancer`, give the load balancer (``nlb``/``clb``;
  an ALB Ingress in front of the gateway gives ``alb``), the target type, cross-zone load
  balancing, the health check's interval and thresholds and the TCP idle timeout; the scheme,
  the health check's protocol, port, path and timeout, the deregistration delay and proxy
  protocol go into the notes; ``spec.externalTrafficPolicy`` is copied. The load balancer is
  linted (IL65x, :attr:`ClusterImport.findings`) with the gateway pods' AZs from their Nodes.
* **Services, Deployments and Pods** of the namespace — every Service with a selector that
  selects a Deployment becomes a scenario service; each Deployment a version (its pod labels
  are the subset labels), with its *ready* pods per AZ.
* **VirtualService, DestinationRule, Gateway, EnvoyFilter** (of the namespace and the gateway
  namespace), legacy **RouteRule** and **DestinationPolicy** and the Gateway API's
  **GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant** (when served), and
  **Ingress** — the config set, also inlined as the scenario's rules.

A scenario needs traffic, which no cluster object describes: the import adds a placeholder
population (Poisson, 100 requests/s, to the gateway's first host) and says so in the YAML.
Service times and backend concurrency are defaults too; measure and set them.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from istiolab.config import codecs
from istiolab.config.aws_checks import (
    AwsLoadBalancer,
    aws_findings,
    pod_zone_from_label,
    read_load_balancer,
)
from istiolab.config.codecs import RawDocument
from istiolab.config.configset import ConfigSet, from_documents
from istiolab.config.k8s import Pod
from istiolab.errors import ClusterError
from istiolab.findings import Finding
from istiolab.kube.adapter import ClusterAdapter, ObjList, require_istio
from istiolab.kube.errors import ForbiddenError, NotFoundError
from istiolab.kube.kinds import APPLY_ORDER, KINDS, kind_key
from istiolab.kube.objects import Obj, strip
from istiolab.sim.scenario import Scenario, scenario_from_dict

__all__ = ["ClusterImport", "import_cluster", "inspect_cluster"]

DEFAULT_GATEWAY_SELECTOR = {"istio": "ingressgateway"}
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
UNKNOWN_ZONE = "unknown-zone"
_ROUTING = ("GatewayClass", *(k for k in APPLY_ORDER if KINDS[k].discovered))
"""The Istio and Gateway API kinds read, in apply order (Ingress, a core kind, is read on its
own; GatewayClass, cluster-scoped and never written, first)."""


@dataclasses.dataclass(frozen=True)
class ClusterImport:
    """What :func:`inspect_cluster` found.

    Attributes:
        scenario: The scenario (topology, services, AZ layout, placeholder traffic, rules).
        config: The routing resources.
        notes: What was assumed, defaulted or could not be read.
        context: The context imported from.
        namespace: The namespace imported.
        findings: The lint of the gateway's load balancer (IL65x: its Service's annotations,
            with the gateway pods' AZs from their Nodes).
    """

    scenario: Scenario
    config: ConfigSet
    notes: tuple[str, ...]
    context: str
    namespace: str
    findings: tuple[Finding, ...] = ()

    def scenario_yaml(self) -> str:
        """The scenario as YAML, headed by comments on the placeholder traffic and the notes."""
        host = self.scenario.traffic[0].host
        rate = self.scenario.traffic[0].arrival.rate_rps
        head = [
            f'# Imported by `istiolab cluster import` from context "{self.context}", '
            f'namespace "{self.namespace}".',
            f"# PLACEHOLDER TRAFFIC: the `traffic` below (Poisson, {rate:g} requests/s to {host}) "
            "is not measured;",
            "# replace it with your real client populations before drawing conclusions.",
            "# Service times and backend concurrency are defaults too: measure and set them.",
        ]
        if self.notes:
            head.append("# Notes from the import:")
            head.extend(f"#   - {n}" for n in self.notes)
        # every value the import found is written out, even where it equals a default
        data = self.scenario.model_dump(mode="json", exclude_unset=True, exclude={"base_dir"})
        return "\n".join(head) + "\n" + codecs.dumps([data])


def import_cluster(
    cluster: ClusterAdapter,
    namespace: str | None = None,
    *,
    gateway_namespace: str = "istio-system",
    gateway_selector: Mapping[str, str] | None = None,
) -> tuple[Scenario, ConfigSet]:
    """Read a namespace of a cluster into a scenario and a config set.

    See :func:`inspect_cluster` (which also returns the notes).
    """
    result = inspect_cluster(
        cluster, namespace, gateway_namespace=gateway_namespace, gateway_selector=gateway_selector
    )
    return result.scenario, result.config


def inspect_cluster(
    cluster: ClusterAdapter,
    namespace: str | None = None,
    *,
    gateway_namespace: str = "istio-system",
    gateway_selector: Mapping[str, str] | None = None,
    rate_rps: float = 100.0,
    sources: Mapping[str, RawDocument] | None = None,
) -> ClusterImport:
    """Read a namespace of a cluster (see the module docstring for what becomes what).

    Args:
        cluster: The cluster.
        namespace: The application namespace; default the cluster's.
        gateway_namespace: Where the ingress gateway runs.
        gateway_selector: Labels of the gateway pods; default the Gateways' selector, else
            ``istio: ingressgateway``.
        rate_rps: Rate of the placeholder traffic.
        sources: Where each object was read from, by ``Kind/namespace/name`` (kind as
            :func:`~istiolab.kube.kinds.kind_key` spells it): findings then name that file and
            line instead of ``cluster:...`` (``cluster import --from-files``).

    Returns:
        The scenario, the config set and notes.

    Raises:
        IstioNotServedError: When the cluster serves no Istio API.
        ClusterError: When the namespace has no Service that selects a Deployment.
        ApiError: When reading the namespace is refused (reading nodes or the gateway
            namespace may be refused: that only becomes a note).
    """
    served = require_istio(cluster)
    ns = namespace or cluster.namespace
    notes: list[str] = []
    reader = _Reader(cluster, notes)

    # -- routing resources
    objects: list[Obj] = []
    for kind in _ROUTING:
        if kind not in served:
            continue
        if not KINDS[kind].namespaced:
            objects.extend(reader.list(kind, None, optional=True))
            continue
        for where in dict.fromkeys([ns, gateway_namespace]):
            objects.extend(reader.list(kind, where, optional=where != ns))
    objects.extend(reader.list("Ingress", ns, optional=True))
    origin = _Origins(sources or {})
    docs = [
        origin.document(o)
        for o in sorted(objects, key=lambda o: (_KIND_ORDER.get(_key(o), 99), _ref(o)))
    ]
    config = from_documents(docs)
    if config.findings:
        notes.append(
            f"{len(config.findings)} problem(s) reading the routing resources; run "
            "`istiolab lint` on the exported config (--config-out) to see them"
        )

    # -- topology
    selector = dict(gateway_selector or _gateway_selector(config) or DEFAULT_GATEWAY_SELECTOR)
    nodes = {str(_meta(n).get("name")): n for n in reader.list("Node", None, optional=True)}
    if not nodes:
        notes.append("no nodes could be read: zones and CPU are unknown, defaults are used")
    zone_of = {name: _zone(node) for name, node in nodes.items()}
    gw_deps = [
        d
        for d in reader.list("Deployment", gateway_namespace, optional=True)
        if _subset(selector, _template_labels(d))
    ]
    gw_pods = [
        p
        for p in reader.list("Pod", gateway_namespace, optional=True)
        if _subset(selector, _meta(p).get("labels") or {}) and _ready(p)
    ]
    gw_labels = (
        _template_labels(gw_deps[0])
        if gw_deps
        else dict(_meta(gw_pods[0]).get("labels") or {})
        if gw_pods
        else selector
    )
    gw_svcs = [
        s
        for s in reader.list("Service", gateway_namespace, optional=True)
        if _subset(_spec(s).get("selector") or {}, gw_labels)
    ]
    gw_ingresses = reader.list("Ingress", gateway_namespace, optional=True)
    app_services = reader.list("Service", ns)
    app_deployments = reader.list("Deployment", ns)
    app_pods = reader.list("Pod", ns)

    services, pod_zones = _services(app_services, app_deployments, app_pods, zone_of, ns, notes)
    if not services:
        raise ClusterError(
            f'no Service in namespace "{ns}" of context "{cluster.context}" selects a '
            "Deployment: there is nothing to simulate (is it the right namespace? use -n)"
        )
    gw_zones = [zone_of.get(_node_of(p)) or UNKNOWN_ZONE for p in gw_pods]
    azs = sorted(set(gw_zones) | pod_zones) or sorted({z or UNKNOWN_ZONE for z in zone_of.values()})
    if not azs:
        azs = [UNKNOWN_ZONE]
    if UNKNOWN_ZONE in azs:
        notes.append(
            f"some nodes have no {ZONE_LABELS[0]} label (or could not be read): their pods are "
            f"placed in an AZ called {UNKNOWN_ZONE!r}"
        )
    ingress = _ingress(gw_deps, gw_pods, nodes, zone_of, azs, selector, gateway_namespace, notes)
    svc = _pick_gateway_service(gw_svcs)
    aws = _aws(svc, gw_ingresses, gateway_namespace, notes)
    lb_findings = _lb_findings(svc, gw_pods, zone_of, origin)
    profile = _istio_version(gw_deps, notes)

    host = _traffic_host(config)
    data: dict[str, Any] = {
        "name": _slug(f"imported-{ns}"),
        "description": f'Imported from context "{cluster.context}", namespace "{ns}" '
        f'(ingress gateway in "{gateway_namespace}"); the traffic is a placeholder.',
        "traffic": [
            {
                "name": "placeholder",
                "arrival": {"kind": "poisson", "rate_rps": rate_rps},
                "host": host,
                "requests": [{"path": "/"}],
            }
        ],
        "aws": aws,
        "ingress": ingress,
        "services": services,
        "rules": {"inline": [r.to_dict() for r in config]},
    }
    if profile is not None:
        data["rules"]["profile"] = profile
    scenario = scenario_from_dict(data, source=f"cluster:{cluster.context}/{ns}")
    return ClusterImport(scenario, config, tuple(notes), cluster.context, ns, lb_findings)


class _Origins:
    """Raw documents for objects read: at their source file and lines when known."""

    def __init__(self, sources: Mapping[str, RawDocument]) -> None:
        self.sources = sources

    def document(self, obj: Obj) -> RawDocument:
        src = self.sources.get(_ref(obj))
        if src is None:
            return RawDocument(strip(obj), f"cluster:{_ref(obj)}", 0, 1)
        # the object as read (newest served version, namespace filled in), located where it
        # was written: the paths of its fields did not change
        return RawDocument(
            strip(obj), src.file, src.index, src.line, src.lines, columns=src.columns
        )


def _lb_findings(
    svc: Obj | None, gw_pods: ObjList, zone_of: Mapping[str, str | None], origin: _Origins
) -> tuple[Finding, ...]:
    """IL65x for the gateway's Service, the ready gateway pods placed in their Nodes' AZs."""
    if svc is None:
        return ()
    config = from_documents([origin.document(o) for o in [svc, *gw_pods]])
    node_of = {(p.get("metadata") or {}).get("name"): _node_of(p) for p in gw_pods}

    def zone(pod: Pod) -> str | None:
        return zone_of.get(node_of.get(pod.name, "")) or pod_zone_from_label(pod)

    return tuple(aws_findings(config, zone))


# -- reading ----------------------------------------------------------------------------------


class _Reader:
    """Lists objects; for optional reads a refusal or a missing API becomes a note."""

    def __init__(self, cluster: ClusterAdapter, notes: list[str]) -> None:
        self.cluster = cluster
        self.notes = notes

    def list(self, kind: str, namespace: str | None, *, optional: bool = False) -> ObjList:
        try:
            return self.cluster.list(kind, namespace)
        except (ForbiddenError, NotFoundError) as err:
            if not optional:
                raise
            where = f' in namespace "{namespace}"' if namespace else ""
            why = "not allowed" if isinstance(err, ForbiddenError) else "not served"
            self.notes.append(f"could not list {kind} objects{where} ({why}); left out")
            return []


_KIND_ORDER = {k: i for i, k in enumerate(_ROUTING)}


def _key(obj: Mapping[str, Any]) -> str:
    return kind_key(str(obj.get("kind")), str(obj.get("apiVersion") or ""))


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _ref(obj: Mapping[str, Any]) -> str:
    meta = _meta(obj)
    return f"{_key(obj)}/{meta.get('namespace', '-')}/{meta.get('name')}"


def _subset(small: Mapping[str, Any], big: Mapping[str, Any]) -> bool:
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def _template_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    tmpl = _spec(deployment).get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def _deployment_selector(deployment: Mapping[str, Any]) -> dict[str, str]:
    sel = (_spec(deployment).get("selector") or {}).get("matchLabels")
    return dict(sel) if isinstance(sel, dict) and sel else _template_labels(deployment)


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return str(cond.get("status")) == "True"
    return False


def _node_of(pod: Mapping[str, Any]) -> str:
    return str(_spec(pod).get("nodeName") or "")


def _zone(node: Mapping[str, Any]) -> str | None:
    labels = _meta(node).get("labels") or {}
    for key in ZONE_LABELS:
        if labels.get(key):
            return str(labels[key])
    return None


def cpu_millis(quantity: Any) -> int | None:
    """A Kubernetes CPU quantity in millicores (``"2"`` → 2000, ``"1930m"`` → 1930)."""
    text = str(quantity).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", text)
    if m is None:
        return None
    value = float(m.group(1))
    return int(value if m.group(2) else value * 1000)


def _gateway_selector(config: ConfigSet) -> dict[str, str] | None:
    for res in config:
        if res.kind == "Gateway":
            sel = res.to_dict().get("spec", {}).get("selector")
            if isinstance(sel, dict) and sel:
                return {str(k): str(v) for k, v in sel.items()}
    return None


def _traffic_host(config: ConfigSet) -> str:
    hosts: list[str] = []
    for kind, key in (("Gateway", "servers"), ("VirtualService", None)):
        for res in config:
            if res.kind != kind:
                continue
            spec = res.to_dict().get("spec", {})
            if key is None:
                hosts.extend(str(h) for h in spec.get("hosts") or [])
            else:
                for server in spec.get(key) or []:
                    hosts.extend(str(h).split("/", 1)[-1] for h in server.get("hosts") or [])
    for res in config:
        if res.kind == "HTTPRoute":
            hosts.extend(str(h) for h in res.to_dict().get("spec", {}).get("hostnames") or [])
    for h in hosts:
        if "*" not in h and "." in h:
            return h
    return "example.com"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "imported"


# -- building the scenario ----------------------------------------------------------------------


def _services(
    services: ObjList,
    deployments: ObjList,
    pods: ObjList,
    zone_of: Mapping[str, str | None],
    namespace: str,
    notes: list[str],
) -> tuple[list[dict[str, Any]], set[str]]:
    out: list[dict[str, Any]] = []
    zones: set[str] = set()
    for svc in sorted(services, key=lambda s: str(_meta(s).get("name"))):
        name = str(_meta(svc).get("name"))
        selector = _spec(svc).get("selector") or {}
        if not selector:
            continue
        deps = [d for d in deployments if _subset(selector, _template_labels(d))]
        if not deps:
            notes.append(f"Service {name} selects no Deployment; left out")
            continue
        versions: list[dict[str, Any]] = []
        sidecar = False
        for dep in sorted(deps, key=lambda d: str(_meta(d).get("name"))):
            dep_name = str(_meta(dep).get("name"))
            labels = _template_labels(dep)
            vname = labels.get("version") or dep_name
            if any(v["name"] == vname for v in versions):
                vname = dep_name
            desired = int(_spec(dep).get("replicas", 1) or 0)
            dsel = _deployment_selector(dep)
            mine = [p for p in pods if _subset(dsel, _meta(p).get("labels") or {})]
            sidecar = sidecar or any(_has_sidecar(p) for p in mine)
            ready = [p for p in mine if _ready(p)]
            version: dict[str, Any] = {"name": vname, "labels": labels}
            if mine:
                pod_zones = [zone_of.get(_node_of(p)) or UNKNOWN_ZONE for p in ready]
                version["replicas_per_az"] = dict(sorted(collections.Counter(pod_zones).items()))
                zones.update(pod_zones)
                if len(ready) != desired:
                    notes.append(
                        f"{name}/{vname}: {desired} replica(s) desired, {len(ready)} ready; the "
                        "scenario has the ready ones"
                    )
            else:
                version["replicas"] = desired
                notes.append(
                    f"{name}/{vname}: no pods found; {desired} replica(s) spread over the AZs"
                )
            versions.append(version)
        ports = _spec(svc).get("ports") or [{}]
        port = int((ports[0] or {}).get("port", 80))
        out.append(
            {
                "name": name,
                "namespace": namespace,
                "port": port,
                "sidecar": sidecar,
                "versions": versions,
            }
        )
    return out, zones


def _has_sidecar(pod: Mapping[str, Any]) -> bool:
    if "sidecar.istio.io/status" in (_meta(pod).get("annotations") or {}):
        return True
    return any(
        isinstance(c, dict) and c.get("name") == "istio-proxy"
        for c in (_spec(pod).get("containers") or [])
    )


def _ingress(
    gw_deps: ObjList,
    gw_pods: ObjList,
    nodes: Mapping[str, Obj],
    zone_of: Mapping[str, str | None],
    azs: Sequence[str],
    selector: Mapping[str, str],
    gateway_namespace: str,
    notes: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {"azs": list(azs)}
    sel = ",".join(f"{k}={v}" for k, v in selector.items())
    per_node = collections.Counter(_node_of(p) for p in gw_pods)
    if per_node:
        by_az = collections.Counter(zone_of.get(n) or UNKNOWN_ZONE for n in per_node)
        out["nodes_per_az"] = {az: by_az.get(az, 0) for az in azs}
        counts = set(per_node.values())
        if len(counts) == 1:
            out["pods_per_node"] = counts.pop()
        else:
            out["gateway_replicas"] = sum(per_node.values())
            notes.append(
                "gateway pods are spread unevenly over their nodes; the scenario places "
                f"{sum(per_node.values())} pods round-robin"
            )
        cpus = [cpu_millis(_allocatable_cpu(nodes.get(n))) for n in per_node]
        known = [c for c in cpus if c]
        if known:
            out["cores_per_node"] = max(1, min(known) // 1000)
    elif gw_deps:
        replicas = int(_spec(gw_deps[0]).get("replicas", 1) or 1)
        out["gateway_replicas"] = replicas
        by_az = collections.Counter(z or UNKNOWN_ZONE for z in zone_of.values())
        out["nodes_per_az"] = {az: max(1, by_az.get(az, 0)) for az in azs}
        notes.append(
            f"no ready gateway pods ({sel}) in {gateway_namespace}: {replicas} replica(s) "
            "placed over every node"
        )
    else:
        out["nodes_per_az"] = 1
        notes.append(
            f"no ingress gateway ({sel}) found in namespace {gateway_namespace}: one gateway "
            "node per AZ assumed (use --gateway-namespace)"
        )
    concurrency = _concurrency(gw_deps)
    if concurrency is not None:
        out["concurrency"] = concurrency
    else:
        notes.append("gateway concurrency (Envoy worker threads) not set explicitly; 2 assumed")
    return out


def _allocatable_cpu(node: Mapping[str, Any] | None) -> Any:
    if not node:
        return None
    status = node.get("status") or {}
    return (status.get("allocatable") or {}).get("cpu")


def _containers(deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    tmpl = _spec(deployment).get("template") or {}
    return [c for c in ((tmpl.get("spec") or {}).get("containers") or []) if isinstance(c, dict)]


def _concurrency(gw_deps: ObjList) -> int | None:
    for dep in gw_deps:
        for c in _containers(dep):
            args = [str(a) for a in (c.get("args") or [])]
            for i, a in enumerate(args):
                if a == "--concurrency" and i + 1 < len(args) and args[i + 1].isdigit():
                    return max(1, int(args[i + 1]))
                if a.startswith("--concurrency=") and a.split("=", 1)[1].isdigit():
                    return max(1, int(a.split("=", 1)[1]))
    return None


def _istio_version(gw_deps: ObjList, notes: list[str]) -> str | None:
    for dep in gw_deps:
        for c in _containers(dep):
            image = str(c.get("image") or "")
            m = re.search(r"proxyv2:(\d+)\.(\d+)", image)
            if m:
                notes.append(
                    f"ingress gateway image {image}: Istio {m.group(1)}.{m.group(2)} profile"
                )
                return f"{m.group(1)}.{m.group(2)}"
    return None


def _pick_gateway_service(services: ObjList) -> Obj | None:
    lbs = [s for s in services if _spec(s).get("type") == "LoadBalancer"]
    found = lbs or services
    return found[0] if found else None


def _aws(
    svc: Obj | None, ingresses: Iterable[Obj], gateway_namespace: str, notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    name = str(_meta(svc).get("name")) if svc else None
    alb = [
        i
        for i in ingresses
        if (
            _spec(i).get("ingressClassName")
            or (_meta(i).get("annotations") or {}).get("kubernetes.io/ingress.class")
        )
        == "alb"
        and name is not None
        and name in _ingress_backends(i)
    ]
    if alb:
        ann = _meta(alb[0]).get("annotations") or {}
        out["lb"] = "alb"
        out["target_type"] = (
            "ip" if ann.get("alb.ingress.kubernetes.io/target-type") == "ip" else "instance"
        )
        scheme = ann.get("alb.ingress.kubernetes.io/scheme", "internal")
        notes.append(
            f"ALB from Ingress {_meta(alb[0]).get('name')} ({scheme}, target type "
            f"{out['target_type']}); cross-zone load balancing is always on for ALBs"
        )
    elif svc is None:
        notes.append(
            f"no Service selects the ingress gateway in {gateway_namespace}: AWS defaults (NLB)"
        )
        return out
    if svc is not None:
        spec = _spec(svc)
        out["external_traffic_policy"] = spec.get("externalTrafficPolicy") or "Cluster"
    if alb or svc is None:
        return out
    spec = _spec(svc)
    lb = read_load_balancer(svc)
    if lb is None:
        notes.append(
            f"gateway Service {name} is of type {spec.get('type') or 'ClusterIP'}, not "
            "LoadBalancer (or another class provisions it): AWS defaults (NLB) assumed"
        )
        return out
    out.update(aws_block(lb))
    notes.extend(aws_notes(lb, str(name)))
    return out


def aws_block(lb: AwsLoadBalancer) -> dict[str, Any]:
    """The scenario's ``aws`` block for what the gateway Service's annotations build.

    Every value read is kept; :class:`~istiolab.sim.scenario.AwsSpec` says which ones the
    simulator acts on and which are recorded only.
    """
    hc = lb.health_check
    out: dict[str, Any] = {
        "lb": lb.lb,
        "target_type": lb.target_type,
        "external_traffic_policy": lb.external_traffic_policy,
        "health_check": {
            "interval_s": hc.interval_s,
            "healthy_threshold": hc.healthy_threshold,
            "unhealthy_threshold": hc.unhealthy_threshold,
            "timeout_s": hc.timeout_s,
        },
        "proxy_protocol": lb.proxy_protocol,
    }
    # only values the scenario can hold: a misspelt annotation stays a note (aws_notes)
    if hc.protocol.upper() in ("TCP", "HTTP", "HTTPS"):
        out["health_check"]["protocol"] = hc.protocol.upper()
    if isinstance(hc.port, int) or hc.port == "traffic-port":
        out["health_check"]["port"] = hc.port
    if lb.scheme in ("internal", "internet-facing"):
        out["scheme"] = lb.scheme
    if hc.path:
        out["health_check"]["path"] = hc.path
    if lb.deregistration_delay_s is not None:
        out["deregistration_delay_s"] = lb.deregistration_delay_s
    if lb.tcp_idle_timeout_s:
        out["listener_idle_timeouts_s"] = dict(lb.tcp_idle_timeout_s)
    if lb.cross_zone is not None:
        out["cross_zone"] = lb.cross_zone
    if lb.tcp_idle_timeout_s:
        # the simulator has one idle timeout: the smallest listener's (the first to cut)
        out["idle_timeout_s"] = min(lb.tcp_idle_timeout_s.values())
    elif lb.lb == "clb" and lb.clb_idle_timeout_s is not None:
        out["idle_timeout_s"] = lb.clb_idle_timeout_s
    return out


def aws_notes(lb: AwsLoadBalancer, name: str) -> list[str]:
    """What the scenario's ``aws`` block cannot hold yet, said as notes (one line each)."""
    hc = lb.health_check
    kind = lb.lb_type or "none (in-tree Classic ELB)"
    who = "AWS Load Balancer Controller" if lb.controller else "in-tree provider"
    notes = [
        f"gateway Service {name}: {lb.lb.upper()} by the {who} (aws-load-balancer-type: "
        f"{kind}), {lb.scheme}, target type {lb.target_type}, externalTrafficPolicy "
        f"{lb.external_traffic_policy}, cross-zone "
        + ("on" if lb.cross_zone else "off" if lb.cross_zone is False else "off (AWS default)"),
        f"health check {hc.protocol}:{hc.port}{hc.path or ''} every {hc.interval_s} s, timeout "
        f"{hc.timeout_s} s, healthy {hc.healthy_threshold}, unhealthy {hc.unhealthy_threshold}"
        " (the scenario models the interval and thresholds; protocol, port, path and timeout "
        "are not simulated)",
    ]
    extra = []
    if lb.deregistration_delay_s is not None:
        extra.append(f"deregistration delay {lb.deregistration_delay_s} s")
    if lb.proxy_protocol:
        extra.append("proxy protocol v2 on")
    if len(lb.tcp_idle_timeout_s) > 1:
        extra.append(
            "TCP idle timeouts "
            + ", ".join(f"{p}: {t} s" for p, t in sorted(lb.tcp_idle_timeout_s.items()))
        )
    if extra:
        notes.append(
            "recorded in the aws block, not simulated: "
            + "; ".join(extra)
            + (
                " (AWS default deregistration delay 300 s)"
                if lb.deregistration_delay_s is None
                else ""
            )
        )
    return notes


def _ingress_backends(ingress: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            svc = value.get("service")
            if isinstance(svc, dict) and svc.get("name"):
                names.add(str(svc["name"]))
            if value.get("serviceName"):
                names.add(str(value["serviceName"]))
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(_spec(ingress))
    return names
