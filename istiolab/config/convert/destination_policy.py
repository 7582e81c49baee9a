"""DestinationPolicy → DestinationRule: load balancer, circuit breaker, subsets.

A circuit breaker becomes a connection pool plus the outlier detection Pilot 0.2 emitted with
every ``simpleCb``; 0.2's default load balancer is written out unless ``modern_defaults``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from istiolab.config.convert.names import API_VERSION, _dns_label, _labels_key, _ref, _split_fqdn
from istiolab.config.convert.state import _DR, _ConverterState
from istiolab.config.legacy import DestinationPolicy, SimpleCircuitBreakerPolicy
from istiolab.units import parse_duration

_LB = {"ROUND_ROBIN": "ROUND_ROBIN", "LEAST_CONN": "LEAST_REQUEST", "RANDOM": "RANDOM"}
# Envoy's outlier-detection defaults, which Pilot 0.2 relied on for every simpleCb field left unset
# (``max_ejection_percent`` it set to 10 itself). Modern Istio uses the same values.
_OUTLIER_DEFAULTS: tuple[tuple[str, str, Any], ...] = (
    ("httpConsecutiveErrors", "consecutive5xxErrors", 5),
    ("httpDetectionInterval", "interval", "10s"),
    ("sleepWindow", "baseEjectionTime", "30s"),
    ("httpMaxEjectionPercent", "maxEjectionPercent", 10),
)


class _DestinationPolicyConverter(_ConverterState):
    # -- DestinationPolicy -----------------------------------------------------------------

    def destination_policies(self) -> None:
        policies = sorted(
            self.config.kind(DestinationPolicy),
            key=lambda p: f"destination-policy/{p.namespace}/{p.name}",
        )
        seen: dict[tuple[str, tuple[tuple[str, str], ...]], DestinationPolicy] = {}
        for dp in policies:
            spec = dp.spec
            fqdn = spec.destination.fqdn(dp.namespace)
            labels = dict(spec.destination.labels or {})
            key = (fqdn, _labels_key(labels))
            if key in seen:
                # Pilot 0.2 applied only the policy with the lexicographically smallest key.
                self.note(
                    "IL306",
                    dp,
                    ("spec", "destination"),
                    f"ignored: DestinationPolicy {seen[key].name!r} has the same destination and "
                    "labels and a smaller key, and Pilot 0.2 applied only that one",
                    "merge the two policies",
                )
                continue
            seen[key] = dp
            if spec.source is not None:
                self.note(
                    "IL306",
                    dp,
                    ("spec", "source"),
                    "source is dropped: a DestinationRule applies to every caller",
                    "remove source, or accept that the policy applies to all callers",
                )
            if spec.custom is not None:
                self.note("IL306", dp, ("spec", "custom"), "custom is dropped", "remove it")
            dr = self.dr_for(fqdn, dp)
            policy = self.traffic_policy(dp, dr)
            if labels:
                dr.subset_policy[self.subset(fqdn, labels, dp)] = policy
            else:
                dr.top = policy
                dr.top_source = dp

    def traffic_policy(self, dp: DestinationPolicy, dr: _DR) -> dict[str, Any]:
        spec = dp.spec
        out: dict[str, Any] = {}
        lb = spec.load_balancing
        if lb is not None:
            if lb.name is not None:
                out["loadBalancer"] = {"simple": _LB[lb.name]}
            if lb.custom is not None:
                self.note(
                    "IL306",
                    dp,
                    ("spec", "loadBalancing", "custom"),
                    "loadBalancing.custom is dropped",
                    "use loadBalancing.name",
                )
        cb = spec.circuit_breaker
        if cb is not None and cb.custom is not None:
            self.note(
                "IL306",
                dp,
                ("spec", "circuitBreaker", "custom"),
                "circuitBreaker.custom is dropped",
                "use simpleCb",
            )
        if cb is not None and cb.simple_cb is not None:
            self.circuit_breaker(dp, cb.simple_cb, out, dr)
        return out

    def circuit_breaker(
        self, dp: DestinationPolicy, cb: SimpleCircuitBreakerPolicy, out: dict[str, Any], dr: _DR
    ) -> None:
        # Pilot 0.2 set each threshold only when it was > 0 (0 meant Envoy's default).
        tcp: dict[str, Any] = {}
        http: dict[str, Any] = {}
        if cb.max_connections:
            tcp["maxConnections"] = cb.max_connections
        if cb.http_max_pending_requests:
            http["http1MaxPendingRequests"] = cb.http_max_pending_requests
        if cb.http_max_requests:
            http["http2MaxRequests"] = cb.http_max_requests
        if cb.http_max_requests_per_connection:
            http["maxRequestsPerConnection"] = cb.http_max_requests_per_connection
        if cb.http_max_retries:
            http["maxRetries"] = cb.http_max_retries
        pool: dict[str, Any] = {}
        if tcp:
            pool["tcp"] = tcp
        if http:
            pool["http"] = http
        if pool:
            out["connectionPool"] = pool
        # Pilot 0.2 emitted outlier detection whenever simpleCb was present.
        outlier: dict[str, Any] = {}
        for legacy_name, name, default in _OUTLIER_DEFAULTS:
            attr = re.sub(r"(?<!^)([A-Z])", r"_\1", legacy_name).lower()
            value = getattr(cb, attr)
            if isinstance(value, str) and parse_duration(value) < 1.0:
                # 0.2 used a duration only when its whole seconds were > 0.
                self.note(
                    "IL306",
                    dp,
                    ("spec", "circuitBreaker", "simpleCb", legacy_name),
                    f"{legacy_name} {value} is under 1s, which Pilot 0.2 ignored (Envoy's "
                    f"{default} applied); written as {default}",
                    "use at least 1s",
                )
                value = None
            if value:
                outlier[name] = value
            elif not self.modern:
                outlier[name] = default
                dr.outlier_defaults.append(f"{name} {default}")
        if outlier:
            out["outlierDetection"] = outlier

    # -- output ----------------------------------------------------------------------------

    def destination_rule(self, dr: _DR) -> dict[str, Any]:
        parts = _split_fqdn(dr.host)
        ns = parts[1] if parts else dr.source.namespace
        name = parts[0] if parts else _dns_label(dr.host)
        default_lb = self.profile.default_lb
        top = copy.deepcopy(dr.top) if dr.top else {}
        written: list[str] = []
        if not self.modern and "loadBalancer" not in top:
            top = {"loadBalancer": {"simple": default_lb}, **top}
            written.append(f"loadBalancer.simple {default_lb} (0.2's default load balancer)")
        if dr.outlier_defaults:
            written.append(
                f"outlierDetection {', '.join(dr.outlier_defaults)} (Envoy's defaults, which "
                "Pilot 0.2 relied on whenever simpleCb was set)"
            )
        if written:
            self.note(
                "IL311",
                dr.source,
                ("spec",),
                f"DestinationRule {ns}/{name}: wrote {' and '.join(written)}",
                "keep them to preserve 0.2 behaviour, or convert with --modern-defaults for "
                "modern Istio's defaults",
            )
        subsets = []
        inherited: set[str] = set()
        top_lb = (dr.top or {}).get("loadBalancer", {}).get("simple")
        for sname in sorted(dr.subsets):
            subset: dict[str, Any] = {"name": sname, "labels": dict(dr.subsets[sname])}
            own = copy.deepcopy(dr.subset_policy.get(sname, {}))
            # A 0.2 policy applied only to the cluster with exactly its labels; modern subsets
            # inherit the host-level policy, so a subset keeps 0.2's default load balancer.
            if (
                not self.modern
                and top_lb is not None
                and top_lb != default_lb
                and "loadBalancer" not in own
            ):
                own = {"loadBalancer": {"simple": default_lb}, **own}
            for k in ("connectionPool", "outlierDetection"):
                if dr.top and k in dr.top and k not in own:
                    inherited.add(k)
            if own:
                subset["trafficPolicy"] = own
            subsets.append(subset)
        if inherited and dr.top_source is not None:
            self.note(
                "IL306",
                dr.top_source,
                ("spec", "circuitBreaker"),
                f"in Istio 0.2 this policy applied only to traffic sent to all instances of "
                f"{name}, not to the subsets {', '.join(sorted(dr.subsets))}; modern subsets "
                f"inherit its {' and '.join(sorted(inherited))}",
                "repeat the settings you want per subset, or accept the wider effect",
            )
        spec: dict[str, Any] = {"host": _ref(dr.host, ns)}
        if top:
            spec["trafficPolicy"] = top
        if subsets:
            spec["subsets"] = subsets
        return {
            "apiVersion": API_VERSION,
            "kind": "DestinationRule",
            "metadata": self.meta(name, ns),
            "spec": spec,
        }
