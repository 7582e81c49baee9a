"""The index every check reads, and the findings it writes.

Built once per run (istio's analysis ``Context``, Kiali's precomputed maps): no check walks every
resource for every resource, so the analyzer stays near-linear in the size of the config set.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVar

from istiolab.config.base import Resource
from istiolab.config.configset import ConfigSet
from istiolab.config.hosts import fqdn, host_matches, hosts_intersect, server_host_for
from istiolab.config.k8s import Deployment, Pod, Service
from istiolab.config.model import (
    DestinationRule,
    EnvoyFilter,
    Gateway,
    ServiceEntry,
    VirtualService,
)
from istiolab.findings import Finding, Severity
from istiolab.limits import MESSAGE_CHARS, truncate
from istiolab.profiles import IstioProfile

R = TypeVar("R", bound=Resource)


class Context:
    """A config set indexed for the checks, and the findings they add.

    Attributes:
        cs: The config set.
        profile: The Istio version whose rules apply.
        findings: Findings added so far.
        resources: Every resource, the partial ones (schema errors taken out) included.
    """

    def __init__(self, cs: ConfigSet, profile: IstioProfile) -> None:
        self.cs = cs
        self.profile = profile
        self.findings: list[Finding] = []
        self.resources: list[Resource] = [*cs.resources, *(s.resource for s, _ in cs.partial)]
        self.services = self.kind(Service)
        # workloads: Deployments (their pod template) and bare Pods, both by pod labels
        self.deployments: list[Deployment | Pod] = [*self.kind(Deployment), *self.kind(Pod)]
        self.drs = self.kind(DestinationRule)
        self.gateways = self.kind(Gateway)
        self.virtual_services = self.kind(VirtualService)
        self.service_entries = self.kind(ServiceEntry)
        self.envoy_filters = self.kind(EnvoyFilter)
        self.service_by_host: dict[str, Service] = {}
        for s in self.services:
            self.service_by_host.setdefault(s.fqdn(), s)
        self.entries_by_host: dict[str, list[ServiceEntry]] = defaultdict(list)
        self.wildcard_entries: list[tuple[str, ServiceEntry]] = []
        for se in self.service_entries:
            for h in se.spec.hosts:
                if h.startswith("*"):
                    self.wildcard_entries.append((h, se))
                else:
                    self.entries_by_host[fqdn(h, se.namespace)].append(se)
        self.drs_by_host: dict[str, list[DestinationRule]] = defaultdict(list)
        for dr in self.drs:
            self.drs_by_host[fqdn(dr.spec.host, dr.namespace)].append(dr)
        self.gateway_by_key: dict[tuple[str, str], Gateway] = {}
        for gw in self.gateways:
            self.gateway_by_key.setdefault((gw.namespace, gw.name), gw)
        self._gateway_hosts: dict[tuple[int, str], GatewayHosts] = {}
        self.deployments_by_ns: dict[str, list[Deployment | Pod]] = defaultdict(list)
        # (namespace or None for any, label, value) → workloads whose pods carry that label
        self._by_label: dict[tuple[str | None, str, str], list[Deployment | Pod]] = defaultdict(
            list
        )
        for d in self.deployments:
            self.deployments_by_ns[d.namespace].append(d)
            for k, v in d.pod_labels.items():
                self._by_label[(d.namespace, k, v)].append(d)
                self._by_label[(None, k, v)].append(d)

    def kind(self, cls: type[R]) -> list[R]:
        """Resources of one model class, partial ones included, in input order."""
        return [r for r in self.resources if isinstance(r, cls)]

    # -- findings ---------------------------------------------------------------------------

    def add(
        self,
        code: str,
        res: Resource,
        path: Sequence[str | int],
        message: str,
        fix: str,
        *,
        caused_by: Finding | None = None,
        severity: Severity | None = None,
    ) -> None:
        """Add a finding about a field of *res* (located at its file and line).

        Args:
            code: The finding code.
            res: The resource.
            path: Field path inside *res*.
            message: What is wrong, naming the value.
            fix: What to do.
            caused_by: A finding this one may be a consequence of.
            severity: Instead of the code's default (rare: a check that knows less says less).
        """
        # a message quotes user values (hosts, names); a megabyte-long one stays one bounded line
        bound = 2 * MESSAGE_CHARS
        f = self.cs.finding(code, res, path, truncate(message, bound), truncate(fix, bound))
        if caused_by is not None and f.caused_by is None:
            f = dataclasses.replace(f, caused_by=cause_text(caused_by))
        if severity is not None:
            f = dataclasses.replace(f, severity=severity)
        self.findings.append(f)

    def schema_cause(self, res: Resource) -> Finding | None:
        """The first schema finding of *res* when it is a partial resource, else None."""
        saved = self.cs.salvaged(res)
        return saved.pruned[0][1] if saved is not None and saved.pruned else None

    # -- registry ---------------------------------------------------------------------------

    @property
    def has_registry(self) -> bool:
        """Whether the input says which hosts exist (it has Services or ServiceEntries)."""
        return bool(self.services or self.service_entries)

    def host_known(self, host: str) -> bool:
        """Whether *host* (an FQDN) is a Service or a ServiceEntry host of the input."""
        if host in self.service_by_host or host in self.entries_by_host:
            return True
        return any(host_matches(p, host) for p, _ in self.wildcard_entries)

    def ports_of(self, host: str) -> list[int] | None:
        """The ports a host exposes (Service or ServiceEntry), or None when unknown."""
        svc = self.service_by_host.get(host)
        if svc is not None:
            return [p.port for p in svc.spec.ports]
        entries = self.entries_by_host.get(host)
        if entries:
            return [p.number for se in entries for p in se.spec.ports or []]
        return None

    def subsets_for(self, host: str) -> dict[str, DestinationRule]:
        """Subset name → the DestinationRule that defines it, for an FQDN host."""
        out: dict[str, DestinationRule] = {}
        for dr in self.drs_by_host.get(host, ()):
            for s in dr.spec.subsets or []:
                out.setdefault(s.name, dr)
        return out

    def partial_drs(self, host: str) -> list[DestinationRule]:
        """DestinationRules for *host* that had schema errors (their subsets may be missing)."""
        return [dr for dr in self.drs_by_host.get(host, ()) if self.cs.salvaged(dr) is not None]

    def gateway_hosts(self, gw: Gateway, namespace: str) -> GatewayHosts:
        """The hosts *gw*'s servers offer to VirtualServices of *namespace* (cached)."""
        key = (id(gw), namespace)
        found = self._gateway_hosts.get(key)
        if found is None:
            offered = [
                h
                for srv in gw.spec.servers
                for h in (server_host_for(x, namespace, gw.namespace) for x in srv.hosts)
                if h is not None
            ]
            found = GatewayHosts(offered)
            self._gateway_hosts[key] = found
        return found

    def pods_matching(
        self, namespace: str | None, labels: dict[str, str]
    ) -> list[Deployment | Pod]:
        """Workloads (in *namespace*, or any when None) whose pods carry all *labels*."""
        if labels:
            # candidates from the index of one of the labels, then the full comparison
            key, value = min(labels.items())
            pool = self._by_label.get((namespace, key, value), [])
        else:
            pool = self.deployments if namespace is None else self.deployments_by_ns[namespace]
        want = labels.items()
        return [d for d in pool if want <= d.pod_labels.items()]


class GatewayHosts:
    """Hosts a Gateway accepts, indexed: exact names in a set, wildcard patterns in a list."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts
        self.exact = {h for h in hosts if "*" not in h}
        self.patterns = [h for h in hosts if "*" in h]

    def accepts(self, host: str) -> bool:
        """Whether some accepted host and *host* intersect (``hosts_intersect``)."""
        if "*" in host:
            return any(hosts_intersect(p, host) for p in self.hosts)
        return host in self.exact or any(hosts_intersect(p, host) for p in self.patterns)


def cause_text(f: Finding) -> str:
    """How a finding names its cause: ``code resource path``."""
    return f"{f.code} {f.resource} {f.path}".rstrip()


def shown(value: object, limit: int = 60) -> str:
    """``repr`` of *value* for a message, cut to *limit* characters."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}…({len(value)} characters)"
    return repr(value)
