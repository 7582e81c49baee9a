"""Mixer quota → local rate limit EnvoyFilter on the ingress gateway.

The Mixer objects of a 2017 rate limit (``memquota``, ``quota``, ``rule``, ``QuotaSpec``,
``QuotaSpecBinding``) become an Envoy token bucket on each gateway pod; what Mixer did that a
local bucket cannot is reported (IL308).
"""

from __future__ import annotations

from typing import Any

from istiolab.config.convert.names import ROOT_NAMESPACE, _dns_label, _service_fqdn
from istiolab.config.convert.state import _ConverterState
from istiolab.config.legacy import MemQuota, MemQuotaLimit, MixerRule, QuotaSpec, QuotaSpecBinding
from istiolab.findings import Severity

ENVOY_FILTER_VERSION = "networking.istio.io/v1alpha3"
"""EnvoyFilter exists only in v1alpha3."""
RATELIMIT_FILTER = "envoy.filters.http.local_ratelimit"
RATELIMIT_TYPE_URL = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
TYPED_STRUCT = "type.googleapis.com/udpa.type.v1.TypedStruct"
_ALL = 100  # percent


class _MixerQuotaConverter(_ConverterState):
    # -- Mixer quota → local rate limit -----------------------------------------------------

    def rate_limits(self) -> list[dict[str, Any]]:
        memquotas = self.config.kind(MemQuota)
        out: list[dict[str, Any]] = []
        names: set[str] = set()
        specs = {(s.namespace, s.name): s for s in self.config.kind(QuotaSpec)}
        rules = self.config.kind(MixerRule)
        handlers = {mq.name for mq in memquotas}
        for rule in rules:
            if not any(a.handler.split(".")[0] in handlers for a in rule.spec.actions):
                self.note(
                    "IL306",
                    rule,
                    ("spec", "actions"),
                    "Mixer rule dropped: only memquota rate limits are converted (Mixer was "
                    "removed in Istio 1.8)",
                    "use Istio telemetry or an EnvoyFilter for what this rule did",
                    Severity.INFO,
                )
        for mq in memquotas:
            used = any(a.handler.split(".")[0] == mq.name for r in rules for a in r.spec.actions)
            conditional = [
                r.name
                for r in rules
                if r.spec.match and any(a.handler.split(".")[0] == mq.name for a in r.spec.actions)
            ]
            for i, q in enumerate(mq.spec.quotas):
                path: tuple[str | int, ...] = ("spec", "quotas", i)
                if not used:
                    self.note(
                        "IL308",
                        mq,
                        path,
                        f"no Mixer rule uses handler {mq.name!r}, so quota {q.name!r} limited "
                        "nothing and is not converted",
                        "add a rule with this handler, or remove the memquota",
                    )
                    continue
                if q.valid_duration is None:
                    self.note(
                        "IL308",
                        mq,
                        path,
                        f"quota {q.name!r} has no validDuration: an allocation quota, not a "
                        "rate; not converted",
                        "give validDuration to make it a rate limit",
                    )
                    continue
                targets = self.quota_targets(q, specs)
                if not targets:
                    self.note(
                        "IL308",
                        mq,
                        path,
                        f"no QuotaSpecBinding charges quota {q.name!r}, so it limited nothing "
                        "and is not converted",
                        "bind a QuotaSpec that charges it to a service",
                    )
                    continue
                for svc, ns, charge in targets:
                    ef = self.rate_limit(mq, path, q, svc, ns, charge, conditional)
                    if ef is None:
                        continue
                    base = name = ef["metadata"]["name"]
                    n = 2
                    while name in names:
                        name = f"{base}-{n}"
                        n += 1
                    names.add(name)
                    ef["metadata"]["name"] = name
                    out.append(ef)
        return out

    def quota_targets(
        self, q: MemQuotaLimit, specs: dict[tuple[str, str], QuotaSpec]
    ) -> list[tuple[str, str, int]]:
        """``(service, namespace, charge)`` for every service a QuotaSpecBinding charges *q* to."""
        instance = q.name.split(".")[0]
        out: list[tuple[str, str, int]] = []
        for binding in self.config.kind(QuotaSpecBinding):
            for ref in binding.spec.quota_specs:
                spec = specs.get((ref.namespace or binding.namespace, ref.name))
                if spec is None:
                    continue
                charge = next(
                    (
                        qr.charge
                        for rule in spec.spec.rules
                        for qr in rule.quotas
                        if qr.quota.split(".")[0] == instance
                    ),
                    None,
                )
                if charge is None:
                    continue
                for svc in binding.spec.services:
                    out.append((svc.name, svc.namespace or binding.namespace, max(charge, 1)))
        return out

    def rate_limit(
        self,
        mq: MemQuota,
        path: tuple[str | int, ...],
        q: MemQuotaLimit,
        svc: str,
        ns: str,
        charge: int,
        conditional: list[str],
    ) -> dict[str, Any] | None:
        amount, window = q.max_amount, q.valid_duration
        assert window is not None
        ignored: list[str] = []
        for ov in q.overrides or []:
            if ov.dimensions == {"destination": svc}:
                amount, window = ov.max_amount, ov.valid_duration or window
                break
            if ov.dimensions.get("destination") in (None, svc):
                ignored.append(str(ov.dimensions))
        tokens = amount // charge
        fqdn = _service_fqdn(svc, ns)
        ingress_routes = [p for vs in self.ingress_vss for p in vs.routes]
        to_svc = [p for p in ingress_routes if any(k[0] == fqdn for k in p.dests)]
        others = [p for p in ingress_routes if any(k[0] != fqdn for k in p.dests)]
        notes: list[str] = []
        if ingress_routes and not to_svc:
            self.note(
                "IL308",
                mq,
                path,
                f"quota {q.name!r} limited calls to {svc!r}, but no Istio Ingress route reaches "
                f"{svc!r}; the limit applied only inside the mesh, which the gateway does not "
                "see, so it is not converted",
                "route the service through the Ingress, or limit it on its sidecars",
            )
            return None
        bucket = {
            "stat_prefix": "http_local_rate_limiter",
            "token_bucket": {
                "max_tokens": tokens,
                "tokens_per_fill": tokens,
                "fill_interval": window,
            },
            "filter_enabled": _fraction("local_rate_limit_enabled"),
            "filter_enforced": _fraction("local_rate_limit_enforced"),
        }
        http_filter: dict[str, Any] = {
            "applyTo": "HTTP_FILTER",
            "match": {
                "context": "GATEWAY",
                "listener": {
                    "filterChain": {
                        "filter": {"name": "envoy.filters.network.http_connection_manager"}
                    }
                },
            },
            "patch": {
                "operation": "INSERT_BEFORE",
                "value": {"name": RATELIMIT_FILTER, "typed_config": _typed(bucket)},
            },
        }
        patches: list[dict[str, Any]] = [http_filter]
        if others and to_svc:
            # The gateway also serves other services: one bucket per route to this service
            # (Istio docs' per-route form); the HTTP filter is then only switched on.
            http_filter["patch"]["value"]["typed_config"] = _typed(
                {"stat_prefix": "http_local_rate_limiter"}
            )
            route_names = sorted({p.data["name"] for p in to_svc})
            for name in route_names:
                patches.append(
                    {
                        "applyTo": "HTTP_ROUTE",
                        "match": {
                            "context": "GATEWAY",
                            "routeConfiguration": {"vhost": {"route": {"name": name}}},
                        },
                        "patch": {
                            "operation": "MERGE",
                            "value": {
                                "typed_per_filter_config": {RATELIMIT_FILTER: _typed(bucket)}
                            },
                        },
                    }
                )
            if len(route_names) > 1:
                notes.append(
                    f"each of the {len(route_names)} gateway routes to {svc!r} gets its own "
                    "bucket, so together they pass more"
                )
            if any(any(k[0] != fqdn for k in p.dests) for p in to_svc):
                notes.append("a route that also sends to other services is limited as a whole")
        elif not ingress_routes:
            notes.append(
                "the bucket counts every request through the gateway, which is exact only if "
                f"the gateway serves nothing but {svc!r}"
            )
        if charge > 1:
            notes.append(f"charge {charge} per request gives {tokens} requests per window")
        if ignored:
            notes.append(f"overrides with other dimensions are ignored: {', '.join(ignored)}")
        if conditional:
            notes.append(f"the match of Mixer rule(s) {', '.join(conditional)} is ignored")
        self.note(
            "IL308",
            mq,
            path,
            f"quota {q.name!r}: {amount} requests per {window} to {svc!r}, counted by Mixer for "
            f"the whole cluster, becomes a token bucket of {tokens} tokens refilled every "
            f"{window} on each ingress gateway pod; Mixer's rolling window, its fail-open and the "
            "limit on calls inside the mesh are not kept"
            + ("; " + "; ".join(notes) if notes else ""),
            "with N gateway pods, divide max_tokens by N for the same total, or use Envoy's "
            "global rate limit service",
        )
        return {
            "apiVersion": ENVOY_FILTER_VERSION,
            "kind": "EnvoyFilter",
            "metadata": {"name": f"ratelimit-{_dns_label(svc)}", "namespace": ROOT_NAMESPACE},
            "spec": {
                "workloadSelector": {"labels": dict(self.gateway_selector)},
                "configPatches": patches,
            },
        }


def _fraction(runtime_key: str) -> dict[str, Any]:
    return {
        "runtime_key": runtime_key,
        "default_value": {"numerator": _ALL, "denominator": "HUNDRED"},
    }


def _typed(value: dict[str, Any]) -> dict[str, Any]:
    return {"@type": TYPED_STRUCT, "type_url": RATELIMIT_TYPE_URL, "value": value}
