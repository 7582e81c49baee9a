"""DestinationRules: subsets, several rules for one host, TLS origination, deprecated fields.

Anchors: istio/istio ``pkg/config/validation/validation.go`` (``ValidateDestinationRule``:
"duplicate subset names"), ``pkg/config/analysis/analyzers/destinationrule/ca-certificates.go``
(IST0128, IST0129), ``analyzers/deprecation/deprecation.go`` (IST0002), istiod's merge of
DestinationRules for one host (``pilot/pkg/model/destination_rule.go``, ``mergeDestinationRule``:
the first rule by creation time keeps its traffic policy, later subsets are added unless their
name is taken); kiali/kiali ``business/checkers/destinationrules/multi_match_checker.go``
(KIA0201), ``no_dest_checker.go`` (KIA0209 subset without labels).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from istiolab.config.checks.context import Context
from istiolab.config.hosts import fqdn
from istiolab.config.model import DestinationRule, TrafficPolicy

Path = tuple[str | int, ...]


def check(ctx: Context) -> None:
    """Run the DestinationRule checks."""
    groups: dict[tuple[str, str], list[DestinationRule]] = defaultdict(list)
    for dr in ctx.drs:
        subsets(ctx, dr)
        for path, policy in policies(dr):
            tls(ctx, dr, path, policy)
            deprecated(ctx, dr, path, policy)
        if not dr.spec.workload_selector:
            groups[(dr.namespace, fqdn(dr.spec.host, dr.namespace))].append(dr)
    for (_, host), drs in groups.items():
        for dr in drs[1:]:
            first = drs[0]
            ctx.add(
                "IL230",
                dr,
                ("spec", "host"),
                f"host {host} also has DestinationRule {first.namespace}/{first.name}; istiod "
                "merges them: the older one's trafficPolicy applies, and a subset whose name "
                "the older one already has is dropped",
                "keep one DestinationRule per host (move the subsets and policy into it)",
            )


def policies(dr: DestinationRule) -> Iterator[tuple[Path, TrafficPolicy]]:
    """The traffic policies of a rule: top level and per subset."""
    if dr.spec.traffic_policy is not None:
        yield ("spec", "trafficPolicy"), dr.spec.traffic_policy
    for i, s in enumerate(dr.spec.subsets or []):
        if s.traffic_policy is not None:
            yield ("spec", "subsets", i, "trafficPolicy"), s.traffic_policy


def subsets(ctx: Context, dr: DestinationRule) -> None:
    """Unique subset names; subsets with labels."""
    names: dict[str, int] = {}
    for i, s in enumerate(dr.spec.subsets or []):
        if s.name in names:
            ctx.add(
                "IL229",
                dr,
                ("spec", "subsets", i, "name"),
                f"subset name {s.name!r} is also subsets[{names[s.name]}]; Istio rejects it "
                "('duplicate subset names')",
                "rename one of the subsets, or merge them",
            )
        else:
            names[s.name] = i
        if not s.labels:
            ctx.add(
                "IL231",
                dr,
                ("spec", "subsets", i),
                f"subset {s.name!r} has no labels, so it selects every endpoint of "
                f"{dr.spec.host!r}: routing to it splits nothing",
                "add labels (e.g. version: v1) that pick the pods of this subset",
            )


def _tls_settings(policy: TrafficPolicy, path: Path) -> Iterator[tuple[Path, dict[str, Any], str]]:
    if policy.tls:
        yield (*path, "tls"), policy.tls, ""
    for j, pl in enumerate(policy.port_level_settings or []):
        if pl.tls:
            port = f" at port {pl.port.number}" if pl.port else ""
            yield (*path, "portLevelSettings", j, "tls"), pl.tls, port


def tls(ctx: Context, dr: DestinationRule, path: Path, policy: TrafficPolicy) -> None:
    """TLS origination that does not verify the server (IST0128/IST0129), or that replaces mTLS."""
    host = fqdn(dr.spec.host, dr.namespace)
    in_mesh = host in ctx.service_by_host
    for where, settings, port in _tls_settings(policy, path):
        mode = settings.get("mode")
        verified = settings.get("caCertificates") or settings.get("credentialName")
        skip = settings.get("insecureSkipVerify")
        if mode in ("SIMPLE", "MUTUAL") and not verified and not skip:
            ctx.add(
                "IL232",
                dr,
                (*where, "mode"),
                f"TLS mode {mode}{port} for {dr.spec.host!r} has no caCertificates (nor "
                "credentialName), so the server's certificate is not verified",
                "set caCertificates (or credentialName), or insecureSkipVerify: true to say so",
            )
        if in_mesh and mode in ("DISABLE", "SIMPLE", "MUTUAL"):
            ctx.add(
                "IL233",
                dr,
                (*where, "mode"),
                f"TLS mode {mode}{port} for {host}, a Service of the mesh, replaces Istio's "
                "automatic mTLS; a STRICT PeerAuthentication on it then refuses the traffic",
                "use mode: ISTIO_MUTUAL (or leave tls out) for Services in the mesh",
            )


def deprecated(ctx: Context, dr: DestinationRule, path: Path, policy: TrafficPolicy) -> None:
    """``outlierDetection.consecutiveErrors`` (IST0002)."""
    od = policy.outlier_detection
    if od is not None and od.consecutive_errors is not None:
        ctx.add(
            "IL228",
            dr,
            (*path, "outlierDetection", "consecutiveErrors"),
            f"outlierDetection.consecutiveErrors ({od.consecutive_errors}) is deprecated (it "
            "counted only 502, 503 and 504)",
            f"write consecutive5xxErrors: {od.consecutive_errors} (or consecutiveGatewayErrors)",
        )
