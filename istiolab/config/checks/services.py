"""Services: port names and appProtocol, as Istio selects a port's protocol.

Anchors: istio/istio ``pkg/config/analysis/analyzers/service/portname.go`` (IST0118) and
``pkg/config/kube/conversion.go`` (``ConvertProtocol``: ``appProtocol`` first, then the name's
prefix before ``-``); kiali/kiali ``business/checkers/services/port_mapping_checker.go`` with
``kubernetes/istio.go`` (``MatchPortNameWithValidProtocols``, KIA0601;
``MatchPortAppProtocolWithValidProtocols``, KIA0602). Istio 0.2 (``pilot/platform/kube``
``convertProtocol``) treated a port without a known name prefix as TCP, so HTTP route rules did
not apply to it.
"""

from __future__ import annotations

from istiolab.config.checks.context import Context
from istiolab.config.k8s import Service
from istiolab.findings import Severity

# pkg/config/protocol/instance.go Parse (case-insensitive)
PROTOCOLS = frozenset(
    {
        "tcp",
        "udp",
        "grpc",
        "grpc-web",
        "http",
        "http_proxy",
        "http2",
        "https",
        "tls",
        "mongo",
        "redis",
        "mysql",
    }
)
# Kubernetes-standard appProtocol values Istio reads (pkg/config/kube/conversion.go)
K8S_APP_PROTOCOLS = frozenset({"kubernetes.io/h2c", "kubernetes.io/ws", "kubernetes.io/wss"})


def protocol_of_name(name: str) -> str | None:
    """The protocol a port name selects (``http-api`` → ``http``), or None."""
    low = name.lower()
    if low in PROTOCOLS:
        return low
    # 'grpc-web-x' is grpc-web; otherwise the part before the first '-'
    if low.startswith("grpc-web-"):
        return "grpc-web"
    head = low.split("-", 1)[0]
    return head if head in PROTOCOLS and "-" in low else None


def check(ctx: Context) -> None:
    """Run the Service checks."""
    for svc in ctx.services:
        # util/config.go IsIstioControlPlane: Istio's own Services (label 'istio', or release
        # 'istio') are skipped; their status ports are not named by protocol
        labels = svc.metadata.labels
        if "istio" in labels or labels.get("release") == "istio":
            continue
        ports(ctx, svc)


def ports(ctx: Context, svc: Service) -> None:
    """Port names and appProtocols Istio can read a protocol from."""
    if svc.spec.type == "ExternalName":
        return  # IST0150 territory: ExternalName ports are not checked here
    legacy = ctx.profile.legacy
    for i, port in enumerate(svc.spec.ports):
        if (port.protocol or "TCP").upper() == "UDP":
            continue
        app = (port.model_extra or {}).get("appProtocol")
        if isinstance(app, str) and not legacy:
            if app.lower() not in PROTOCOLS and app not in K8S_APP_PROTOCOLS:
                ctx.add(
                    "IL235",
                    svc,
                    ("spec", "ports", i, "appProtocol"),
                    f"appProtocol {app!r} is not a protocol Istio knows, so it sniffs the "
                    "protocol instead",
                    "use one of http, http2, https, grpc, grpc-web, tcp, tls, mongo, mysql, "
                    "redis (or kubernetes.io/h2c)",
                )
            continue
        name = port.name or ""
        if protocol_of_name(name) is not None:
            continue
        shown = f"port name {name!r}" if name else "an unnamed port"
        if legacy:
            ctx.add(
                "IL234",
                svc,
                ("spec", "ports", i, "name" if name else "port"),
                f"{shown} ({port.port}): Istio 0.2 treats it as TCP, so HTTP route rules do not "
                "apply to this port",
                f"name it 'http' or 'http-<suffix>' (e.g. 'http-{svc.name}')",
                severity=Severity.WARNING,
            )
        else:
            ctx.add(
                "IL234",
                svc,
                ("spec", "ports", i, "name" if name else "port"),
                f"{shown} ({port.port}) does not say its protocol ('<protocol>[-suffix]'), and "
                "it has no appProtocol: Istio sniffs the protocol",
                "name it e.g. 'http' or 'http-web', or set appProtocol: http",
            )
