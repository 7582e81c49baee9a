"""Services: port names and appProtocol, as Istio selects a port's protocol.

Anchors: istio/istio ``pkg/config/analysis/analyzers/service/portname.go`` (IST0118) and
``pkg/config/kube/conversion.go`` (``ConvertProtocol``: ``appProtocol`` first, then the name's
prefix before ``-``); kiali/kiali ``business/checkers/services/port_mapping_checker.go`` with
``kubernetes/istio.go`` (``MatchPortNameWithValidProtocols``, KIA0601;
``MatchPortAppProtocolWithValidProtocols``, KIA0602). Istio 0.2 (``pilot/platform/kube``
``convertProtocol``) treated a port without a known name prefix as TCP, so HTTP route rules did
not apply to it.

What the Kubernetes API server refuses in a Service is checked too (``api_rules``), after
kubernetes/kubernetes ``pkg/apis/core/validation/validation.go`` (``ValidateService``,
``validateServicePort``, ``ValidatePortNumOrName``) and ``k8s.io/apimachinery/pkg/util/validation``
(``IsDNS1123Label``, ``IsValidPortName``, ``IsQualifiedName``, ``IsValidLabelValue``).
"""

from __future__ import annotations

import re

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


# k8s.io/apimachinery/pkg/util/validation/validation.go
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_IANA_SVC_NAME = re.compile(r"[-a-z0-9]+")  # plus: a letter, no '-' at an end, no '--'
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check(ctx: Context) -> None:
    """Run the Service checks."""
    for svc in ctx.services:
        api_rules(ctx, svc)
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


def iana_service_name_problem(name: str) -> str | None:
    """Why *name* is not an IANA service name (``IsValidPortName``), or None."""
    if len(name) > 15:
        return f"{len(name)} characters, more than 15"
    if not _IANA_SVC_NAME.fullmatch(name):
        return "it may only have lower-case letters, digits and '-'"
    if not any(c.isalpha() for c in name):
        return "it needs at least one letter"
    if name.startswith("-") or name.endswith("-"):
        return "it may not start or end with '-'"
    if "--" in name:
        return "it may not have two '-' in a row"
    return None


def dns_label_problem(name: str) -> str | None:
    """Why *name* is not an RFC 1123 label (``IsDNS1123Label``), or None."""
    if len(name) > 63:
        return f"{len(name)} characters, more than 63"
    if not _DNS1123_LABEL.fullmatch(name):
        return "it may only have lower-case letters, digits and '-', a letter or digit at each end"
    return None


def label_key_problem(key: str) -> str | None:
    """Why *key* is not a label key (``IsQualifiedName``: ``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "its prefix before '/' is empty"
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"its prefix {prefix[:60]!r} is not an RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return (
            "its name part must be 1 to 63 letters, digits, '-', '_' or '.', a letter or digit "
            "at each end"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why *value* is not a label value (``IsValidLabelValue``), or None."""
    if len(value) > 63:
        return f"{len(value)} characters, more than 63"
    if not _LABEL_VALUE.fullmatch(value):
        return "it may only have letters, digits, '-', '_' and '.', a letter or digit at each end"
    return None


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else f"{value[:60]!r}…({len(value)} characters)"


def api_rules(ctx: Context, svc: Service) -> None:
    """What the Kubernetes API server refuses in a Service (``ValidateService``)."""
    spec = svc.spec
    kind = spec.type or "ClusterIP"
    headless = (spec.model_extra or {}).get("clusterIP") == "None"
    if not spec.ports and kind != "ExternalName" and not headless:
        ctx.add(
            "IL102",
            svc,
            ("spec", "ports"),
            f"Service {svc.name!r} has no ports; Kubernetes requires at least one (only a "
            "headless or ExternalName Service may have none)",
            "add a port, e.g. ports: [{name: http, port: 80, targetPort: 8080}]",
        )
    seen: dict[str, int] = {}
    for i, port in enumerate(spec.ports):
        base = ("spec", "ports", i)
        name = port.name or ""
        if not name and len(spec.ports) > 1:
            ctx.add(
                "IL102",
                svc,
                (*base, "name"),
                f"port {port.port} has no name; a Service with several ports must name each",
                f"name it, e.g. name: http-{port.port}",
            )
        elif name:
            problem = dns_label_problem(name)
            if problem:
                ctx.add(
                    "IL108",
                    svc,
                    (*base, "name"),
                    f"port name {_shown(name)} is not an RFC 1123 label: {problem}",
                    "use lower-case letters, digits and '-', e.g. 'http-web'",
                )
            elif name in seen:
                ctx.add(
                    "IL108",
                    svc,
                    (*base, "name"),
                    f"port name {name!r} is also the name of ports[{seen[name]}]; Kubernetes "
                    "requires unique port names",
                    "give each port its own name",
                )
            else:
                seen[name] = i
        target = port.target_port
        if isinstance(target, str):
            problem = iana_service_name_problem(target)
            if problem:
                ctx.add(
                    "IL108",
                    svc,
                    (*base, "targetPort"),
                    f"targetPort {_shown(target)} is not a port number nor a container port "
                    f"name (an IANA service name): {problem}",
                    "use the container port's number, or its name (at most 15 lower-case "
                    "letters, digits and '-', with a letter)",
                )
        if port.node_port and kind == "ClusterIP":
            ctx.add(
                "IL108",
                svc,
                (*base, "nodePort"),
                f"nodePort {port.node_port} on a ClusterIP Service; Kubernetes allows a "
                "nodePort only with type NodePort or LoadBalancer",
                "remove nodePort, or set type: NodePort",
            )
    for key, value in (spec.selector or {}).items():
        problem = label_key_problem(key)
        what = f"selector key {_shown(key)}"
        if problem is None:
            problem = label_value_problem(value)
            what = f"selector value {_shown(value)} (of {_shown(key)})"
        if problem:
            plain = 0 < len(key) <= 60 and key.isprintable() and " " not in key
            ctx.add(
                "IL108",
                svc,
                ("spec", "selector", key) if plain else ("spec", "selector"),
                f"{what} is not a Kubernetes label: {problem}",
                "use a label the pods carry, e.g. app: web (at most 63 letters, digits, '-', "
                "'_' and '.')",
            )
