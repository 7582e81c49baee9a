"""References between resources: destinations, mirrors, subsets, ports, gateways, selectors.

Anchors: istio/istio ``pkg/config/analysis/analyzers/virtualservice/destinationhosts.go``
(``DestinationHostAnalyzer``: hosts, mirror hosts, ``host:port``, IST0112),
``virtualservice/destinationrules.go`` (subsets), ``virtualservice/gateways.go``,
``gateway/gateway.go`` (selector), ``destinationrule/`` and the IST0174 message;
kiali/kiali ``business/checkers/virtualservices/no_host_checker.go``,
``subset_presence_checker.go``, ``no_gateway_checker.go``,
``destinationrules/no_dest_checker.go``, ``services/port_mapping_checker.go``.
"""

from __future__ import annotations

from collections.abc import Iterator

from istiolab.config.checks.context import Context, shown
from istiolab.config.hosts import fqdn, gateway_ref
from istiolab.config.k8s import Deployment, Pod, Service
from istiolab.config.model import Destination, DestinationRule, Gateway, VirtualService
from istiolab.findings import Severity
from istiolab.limits import truncate

Path = tuple[str | int, ...]


def check(ctx: Context) -> None:
    """Run the reference checks."""
    for vs in ctx.virtual_services:
        for path, dest, mirror in destinations(vs):
            destination(ctx, vs, path, dest, mirror=mirror)
        match_gateways(ctx, vs)
    if ctx.deployments:
        for gw in ctx.gateways:
            gateway_selector(ctx, gw)
    routed = {
        fqdn(d.host, vs.namespace) for vs in ctx.virtual_services for _, d, _ in destinations(vs)
    }
    for dr in ctx.drs:
        destination_rule_host(ctx, dr, routed)
    for svc in ctx.services:
        target_ports(ctx, svc)


def destinations(vs: VirtualService) -> Iterator[tuple[Path, Destination, bool]]:
    """Every destination of a VirtualService's HTTP routes: (path, destination, is a mirror)."""
    for i, route in enumerate(vs.spec.http or []):
        for j, d in enumerate(route.route or []):
            yield ("spec", "http", i, "route", j, "destination"), d.destination, False
        if route.mirror is not None:
            yield ("spec", "http", i, "mirror"), route.mirror, True
        for k, m in enumerate(route.mirrors or []):
            yield ("spec", "http", i, "mirrors", k, "destination"), m.destination, True


def destination(
    ctx: Context, vs: VirtualService, path: Path, d: Destination, *, mirror: bool
) -> None:
    """Subset, host and port of one destination (or mirror)."""
    host = fqdn(d.host, vs.namespace)
    what = "mirror" if mirror else "destination"
    if d.subset:
        subsets = ctx.subsets_for(host)
        if d.subset not in subsets:
            known = sorted(subsets)
            partial = ctx.partial_drs(host)
            ctx.add(
                "IL203",
                vs,
                (*path, "subset"),
                f"subset {d.subset!r} of {what} host {d.host!r} is not defined by any "
                "DestinationRule" + (f" (defined: {', '.join(known)})" if known else ""),
                f"add a DestinationRule for {d.host!r} with subset {d.subset!r}, or fix the name",
                caused_by=ctx.schema_cause(partial[0]) if partial else None,
            )
    if "*" in host:
        return
    if ctx.has_registry and not ctx.host_known(host):
        ctx.add(
            "IL211",
            vs,
            (*path, "host"),
            f"{what} host {d.host!r} ({host}) is not a Service or ServiceEntry of the config set",
            "add the Service (or a ServiceEntry), or fix the host name",
        )
        return
    ports = ctx.ports_of(host)
    if ports is None:
        return
    svc = ctx.service_by_host.get(host)
    # a Service whose ports had schema errors lost them: the port findings may follow from that
    cause = ctx.schema_cause(svc) if svc is not None else None
    if d.port is not None and d.port.number not in ports:
        ctx.add(
            "IL214",
            vs,
            (*path, "port", "number"),
            f"port {d.port.number} of {what} {d.host!r} is not a port of {host} "
            f"(ports: {', '.join(map(str, ports)) or 'none'})",
            "use one of the Service's ports, or add the port to the Service",
            caused_by=cause,
        )
    elif d.port is None and len(set(ports)) > 1:
        ctx.add(
            "IL215",
            vs,
            (*path, "host"),
            f"{what} {d.host!r} has no port, and {host} exposes several "
            f"({', '.join(map(str, ports))}); Istio cannot tell which one is meant",
            f"add port: {{number: {ports[0]}}} (or the port meant) to the {what}",
            caused_by=cause,
        )


def match_gateways(ctx: Context, vs: VirtualService) -> None:
    """``http[].match[].gateways`` name Gateways of the input (or ``mesh``)."""
    for i, route in enumerate(vs.spec.http or []):
        for j, m in enumerate(route.match or []):
            for k, ref in enumerate(m.gateways or []):
                if ref == "mesh":
                    continue
                ns, name = gateway_ref(ref, vs.namespace)
                if (ns, name) not in ctx.gateway_by_key:
                    ctx.add(
                        "IL210",
                        vs,
                        ("spec", "http", i, "match", j, "gateways", k),
                        f"gateway {ref!r} ({ns}/{name}) in a match is not in the config set, so "
                        "this match block never applies",
                        "add the Gateway, or correct the reference as 'namespace/name'",
                    )


def gateway_selector(ctx: Context, gw: Gateway) -> None:
    """A Gateway's selector matches some Deployment's pods (istio ``gateway.go``, KIA0302)."""
    selector = gw.spec.selector
    if not selector:
        return
    # Gateways select pods in every namespace unless PILOT_SCOPE_GATEWAY_TO_NAMESPACE is set.
    if ctx.pods_matching(None, selector):
        return
    label = sorted(selector)[0]
    ctx.add(
        "IL216",
        gw,
        ("spec", "selector", label if len(label) <= 63 else shown(label)),
        f"selector {truncate(str(selector), 200)} matches the pods of no Deployment in the config "
        "set, so no gateway proxy serves this Gateway",
        "fix the selector (e.g. istio: ingressgateway), or add the gateway Deployment",
    )


def destination_rule_host(ctx: Context, dr: DestinationRule, routed: set[str]) -> None:
    """A DestinationRule's host is a Service or ServiceEntry (IST0174, KIA0202)."""
    host = fqdn(dr.spec.host, dr.namespace)
    if "*" in host or ctx.host_known(host):
        return
    if ctx.has_registry:
        ctx.add(
            "IL217",
            dr,
            ("spec", "host"),
            f"host {dr.spec.host!r} ({host}) is not a Service or ServiceEntry of the config set, "
            "so this DestinationRule applies to nothing",
            "fix the host (short names resolve in the DestinationRule's namespace), or add the "
            "Service",
        )
        return
    if host not in routed:
        ctx.add(
            "IL217",
            dr,
            ("spec", "host"),
            f"host {dr.spec.host!r} ({host}) is not routed to by any VirtualService of the "
            "config set, and the input has no Services to check it against",
            "check the host name, or give the Services with the config",
            severity=Severity.INFO,
        )


def _container_ports(d: Deployment | Pod) -> list[dict[str, object]]:
    spec = (d.spec.template.spec if isinstance(d, Deployment) else d.spec) or {}
    out: list[dict[str, object]] = []
    containers = spec.get("containers")
    for c in containers if isinstance(containers, list) else []:
        ports = c.get("ports") if isinstance(c, dict) else None
        for p in ports if isinstance(ports, list) else []:
            if isinstance(p, dict):
                out.append(p)
    return out


def target_ports(ctx: Context, svc: Service) -> None:
    """Each port's targetPort is a container port of the Deployment it selects (KIA0701)."""
    selector = svc.spec.selector
    if not selector:
        return
    pods = ctx.pods_matching(svc.namespace, selector)
    if not pods:
        return
    declared = [p for d in pods for p in _container_ports(d)]
    if not declared:
        return  # containers that declare no ports still accept traffic: nothing to compare
    numbers = {p.get("containerPort") for p in declared}
    names = {p.get("name") for p in declared}
    for i, port in enumerate(svc.spec.ports):
        target = port.target_port if port.target_port is not None else port.port
        ok = target in names if isinstance(target, str) else target in numbers
        if not ok:
            exposed = ", ".join(
                str(p.get("containerPort")) + (f" ({p['name']})" if p.get("name") else "")
                for p in declared
            )
            ctx.add(
                "IL218",
                svc,
                ("spec", "ports", i, "targetPort" if port.target_port is not None else "port"),
                f"targetPort {shown(target)} is not a container port of "
                f"{', '.join(d.name for d in pods)} (ports: {exposed})",
                "set targetPort to the port the container listens on",
            )
