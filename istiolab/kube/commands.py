"""Real-cluster steps for a config: kubectl, istioctl, helm and aws, as task pages write them.

Istio's task pages give each step as a command, the output to expect, and a cleanup at the end.
:func:`real_commands` writes those steps for one :class:`~istiolab.config.ConfigSet` and one
Istio profile: ``"0.2"`` (the seed's 2017 cluster: Helm 2, ``config.istio.io/v1alpha2``
RouteRules, the ``istio-ingress`` controller, the in-tree AWS provider) or ``"current"`` (the
``istio/base``, ``istio/istiod`` and ``istio/gateway`` charts, ``networking.istio.io``
resources, ``istioctl analyze``, the AWS Load Balancer Controller). Every name in a command
comes from the config: its files, namespaces, kinds (the CRDs to check), Deployments (what to
inject), Gateways (the gateway chart's release and namespace), hosts (the Route53 records) and
routes (the requests to send, with the status and split the route model predicts). Legacy
resources are converted (:func:`istiolab.config.convert.convert`) for the current profile, so
the commands apply what ``istiolab convert`` prints.

Nothing here talks to a cluster. Values only the user knows (the ACM certificate's ARN, the
hosted zone, the nodes' security group) are shell variables set in the first step.

Sources, cited where they are used: the seed talk (``../shared/seed``, the 0.2 Helm flow and the
``istio`` ConfigMap), ``istio/old_pilot_repo`` (istioctl 0.2), Istio's Helm install and task
pages (istio.io/latest/docs/setup/install/helm, .../tasks/traffic-management/*), the Helm
gateway chart (``istio/istio:manifests/charts/gateway/templates/_helpers.tpl``), the AWS Load
Balancer Controller's Service annotations (``kubernetes-sigs/aws-load-balancer-controller:
docs/guide/service/annotations.md``) and the AWS CLI reference.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import os
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeGuard

from istiolab.config import ConfigSet, dumps
from istiolab.config.aws_checks import read_load_balancer
from istiolab.config.base import Resource
from istiolab.errors import IstiolabError
from istiolab.kube.kinds import KINDS, kind_key, split_api_version

__all__ = [
    "PROFILES",
    "TOPICS",
    "RealCommands",
    "Section",
    "Step",
    "real_commands",
]

Profile = Literal["0.2", "current"]
PROFILES: tuple[Profile, ...] = ("0.2", "current")
"""The two Istio profiles the commands are written for."""

TOPICS: dict[str, str] = {
    "install": "Install Istio: Helm, the CRDs, tracing",
    "aws": "The AWS side: load balancer, TLS with ACM, security groups, Route53",
    "ingress": "The seed's Ingress: a sidecar-injected backend and the deny-route rule",
    "canary": "A weighted canary",
    "cookie-ab": "A cookie A/B test",
    "fault": "Fault injection",
    "retries": "Retries and timeouts",
    "rate-limit": "A rate limit",
    "capacity": "Size the ingress pool",
    "verify": "Check what the gateway's Envoy runs",
    "apply": "Dry run, diff, apply, roll back",
    "gateway-api": "The Kubernetes Gateway API",
    "all": "Every step for these files",
}
"""The seed points a notebook shows, and ``all`` (what ``apply --print-commands`` prints)."""

_SECTIONS: dict[str, tuple[str, ...]] = {
    "install": ("before", "install", "crds", "tracing", "cleanup"),
    "aws": ("before", "loadbalancer", "securitygroups", "route53", "cleanup"),
    "ingress": ("before", "crds", "workloads", "rules", "check", "cleanup"),
    "canary": ("before", "crds", "workloads", "rules", "check", "cleanup"),
    "cookie-ab": ("before", "crds", "workloads", "rules", "check", "cleanup"),
    "fault": ("before", "crds", "workloads", "rules", "check", "cleanup"),
    "retries": ("before", "crds", "workloads", "rules", "check", "cleanup"),
    "rate-limit": ("before", "crds", "workloads", "rules", "check", "cleanup"),
    "capacity": ("before", "capacity", "cleanup"),
    "verify": ("before", "rules", "check", "proxyconfig", "cleanup"),
    "apply": ("before", "crds", "rbac", "plan", "rules", "check", "rollback", "cleanup"),
    "gateway-api": ("before", "gatewayapi", "check", "cleanup"),
    "all": (
        "before",
        "install",
        "crds",
        "tracing",
        "workloads",
        "rules",
        "check",
        "loadbalancer",
        "securitygroups",
        "route53",
        "cleanup",
    ),
}

_SECTION_TITLES = {
    "before": "Before you begin",
    "install": "Install Istio",
    "crds": "Check the CRDs",
    "tracing": "Send traces to your Zipkin",
    "workloads": "Deploy the backends with a sidecar",
    "rbac": "Check your permissions",
    "plan": "Dry run and diff",
    "rules": "Apply the rules",
    "check": "Send requests",
    "proxyconfig": "Read the gateway's routes",
    "rollback": "Roll back",
    "capacity": "Size the ingress pool",
    "gatewayapi": "Apply the Gateway API resources",
    "loadbalancer": "The load balancer, with TLS from ACM",
    "securitygroups": "Security groups",
    "route53": "A Route53 record for the load balancer",
    "cleanup": "Cleanup",
}

# The seed's Helm 2 chart and release (seed talk: `helm install incubator/istio ...`, then
# `helm upgrade eponymous-billygoat incubator/istio --reuse-values --set istio.install=true`;
# Helm 2 names a release at random when --name is not given, so the talk's name is an example).
_SEED_CHART = "incubator/istio"
_SEED_RELEASE = "eponymous-billygoat"
# Istio's Helm repository and charts (istio.io/latest/docs/setup/install/helm).
_HELM_REPO = "https://istio-release.storage.googleapis.com/charts"
# The standard channel's CRDs of the newest Gateway API release (Istio's Gateway API task
# installs them the same way; pin a release in production).
_GATEWAY_API_CRDS = (
    "https://github.com/kubernetes-sigs/gateway-api/releases/latest/download/standard-install.yaml"
)
_LEGACY_GROUP = "config.istio.io"
_ROUTING_LEGACY = ("RouteRule", "DestinationPolicy", "EgressRule")
_ROUTING_CURRENT = (
    "Gateway",
    "DestinationRule",
    "VirtualService",
    "ServiceEntry",
    "EnvoyFilter",
    "Sidecar",
)
_GATEWAY_API = "gateway.networking.k8s.io"
_WORKLOAD_KINDS = ("Service", "Deployment")


class CommandsError(IstiolabError):
    """The commands cannot be written: an unknown topic or profile."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One step: what it does, the commands, the output to expect.

    Attributes:
        title: What the step does, in a few words.
        commands: Shell lines (a here-document is one item, with its lines).
        expected: The output to expect (empty when a command prints nothing useful).
        note: Why, or what to watch for.
        source: Where the command and its output are documented.
    """

    title: str
    commands: tuple[str, ...]
    expected: str = ""
    note: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The step as plain data."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Section:
    """Steps under one heading (``Before you begin``, ``Apply the rules``, ``Cleanup``, ...).

    Attributes:
        key: The section's key (``rules``, ``cleanup``, ...).
        title: Its heading.
        steps: Its steps, in order.
    """

    key: str
    title: str
    steps: tuple[Step, ...]


@dataclasses.dataclass(frozen=True)
class RealCommands:
    """The real-cluster steps of one topic for one config and one Istio profile.

    Attributes:
        topic: A key of :data:`TOPICS`.
        profile: ``"0.2"`` or ``"current"``.
        title: The topic's title.
        sections: The sections, cleanup last.
        notes: What the commands cannot do for this config, or what differs from it.
        resources: Keys of the resources the commands apply (``Kind/namespace/name``).
    """

    topic: str
    profile: Profile
    title: str
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()

    @property
    def steps(self) -> list[Step]:
        """Every step, in order."""
        return [s for sec in self.sections for s in sec.steps]

    @property
    def commands(self) -> list[str]:
        """Every command, in order (the lines a person would paste)."""
        return [c for s in self.steps for c in s.commands]

    def section(self, key: str) -> Section | None:
        """The section with this key, or None."""
        return next((s for s in self.sections if s.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: topic, profile, title, notes, resources and the sections' steps."""
        return {
            "topic": self.topic,
            "profile": self.profile,
            "title": self.title,
            "notes": list(self.notes),
            "resources": list(self.resources),
            "sections": [
                {"key": s.key, "title": s.title, "steps": [st.to_dict() for st in s.steps]}
                for s in self.sections
            ],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self, *, heading_level: int = 2) -> str:
        """Markdown as a task page: a heading per section, each command fenced, its output after."""
        h = "#" * heading_level
        out = [f"{h} {self.title} (Istio {_profile_name(self.profile)})", ""]
        out += [f"> {n}" for n in self.notes]
        if self.notes:
            out.append("")
        for sec in self.sections:
            out += [f"{h}# {sec.title}", ""]
            for st in sec.steps:
                out += [f"**{st.title}.**" + (f" {st.note}" if st.note else ""), ""]
                out += ["```bash", *st.commands, "```", ""]
                if st.expected:
                    out += ["Expected output:", "", "```text", st.expected, "```", ""]
                if st.source:
                    out += [f"Source: {st.source}", ""]
        return "\n".join(out).rstrip() + "\n"

    def to_text(self) -> str:
        """Plain text for a terminal: commands with ``$``, expected output indented."""
        out = [f"# {self.title} (Istio {_profile_name(self.profile)})"]
        out += [f"# note: {n}" for n in self.notes]
        for sec in self.sections:
            out += ["", f"## {sec.title}"]
            for st in sec.steps:
                out += ["", f"# {st.title}" + (f": {st.note}" if st.note else "")]
                for c in st.commands:
                    lines = c.splitlines()
                    out.append(f"$ {lines[0]}")
                    out += lines[1:]
                if st.expected:
                    out.append("# expected output:")
                    out += [f"#   {line}" for line in st.expected.splitlines()]
        return "\n".join(out) + "\n"

    def format(self, fmt: str = "text") -> str:
        """``text``, ``markdown`` or ``json``."""
        if fmt in ("text", "table"):
            return self.to_text()
        if fmt in ("markdown", "md"):
            return self.to_markdown()
        if fmt == "json":
            return self.to_json() + "\n"
        raise CommandsError(f"unknown format {fmt!r}: text, markdown or json")


def _profile_name(profile: Profile) -> str:
    return "0.2" if profile == "0.2" else "current"


def normalize_profile(profile: str | None) -> Profile:
    """``0.2`` (also ``0.2.x``) or ``current`` (None, ``current``, ``latest`` or any 1.x).

    Raises:
        CommandsError: For anything else.
    """
    p = (profile or "current").strip().lower()
    if p == "0.2" or p.startswith("0.2."):
        return "0.2"
    if p in ("current", "latest", "now") or p.startswith("1."):
        return "current"
    raise CommandsError(f"profile {profile!r}: the commands are written for 0.2 or current")


# -- what the commands are rendered from -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Group:
    """Resources applied together: from one file, or (no file) as one here-document."""

    file: str | None
    resources: tuple[Resource, ...]

    @property
    def namespace(self) -> str | None:
        spaces = {_ns(r) for r in self.resources}
        return spaces.pop() if len(spaces) == 1 else None


@dataclasses.dataclass(frozen=True)
class _Gateway:
    """Where the ingress gateway runs and how its Service is called."""

    namespace: str
    service: str
    selector: str  # label selector of its pods, kubectl's -l syntax
    release: str  # the Helm release (current) that makes it
    hosts: tuple[str, ...]
    ports: tuple[int, ...]
    http_ports: tuple[int, ...] = ()  # ports of plain-HTTP servers (where TLS-ended traffic goes)


@dataclasses.dataclass
class _Ctx:
    profile: Profile
    config: ConfigSet  # in the profile's form (converted for current)
    original: ConfigSet
    converted: bool
    display: Callable[[str], str]
    zipkin: str
    notes: list[str] = dataclasses.field(default_factory=list)
    topic: str = "all"
    client_pod: bool = False  # the check section deployed a client pod (cleanup removes it)

    def kinds(self, names: Iterable[str]) -> list[Resource]:
        wanted = set(names)
        return [r for r in self.config if _kind(r) in wanted]

    def groups(self, resources: Sequence[Resource], *, original: bool = False) -> list[_Group]:
        """Resources by source file (input order); those without one form one group.

        Converted resources have no file: they are applied from a here-document. *original*:
        the resources are the input's own (workloads), whose files are kept.
        """
        by_file: dict[tuple[str | None, str | None], list[Resource]] = {}
        for r in resources:
            if original:
                origin = self.original.origin(r)
            else:
                origin = None if self.converted else self.config.origin(r)
            file = origin.file if origin is not None and origin.file else None
            if not _real_file(file):
                file = None
            # a here-document gets one namespace (its -n); a file keeps its own grouping
            by_file.setdefault((file, None if file else _ns(r)), []).append(r)
        return [_Group(f, tuple(rs)) for (f, _), rs in by_file.items()]

    @property
    def routing(self) -> list[Resource]:
        if self.profile == "0.2":
            return [r for r in self.config if _legacy(r) and _kind(r) != "Ingress"] + self.kinds(
                ["Ingress"]
            )
        return [r for r in self.config if _kind(r) in _ROUTING_CURRENT and not _gw_api(r)] + [
            r for r in self.config if _gw_api(r)
        ]

    @property
    def gateway(self) -> _Gateway:
        return _gateway_of(self)


def _real_file(file: str | None) -> TypeGuard[str]:
    """A file on disk: not None, ``<stdin>`` or a label such as ``<scenario rules.inline>``."""
    return bool(file) and not str(file).startswith("<")


def _kind(r: Resource) -> str:
    return str(getattr(r, "kind", type(r).__name__))


def _api(r: Resource) -> str:
    return str(getattr(r, "api_version", "") or "")


def _legacy(r: Resource) -> bool:
    return split_api_version(_api(r))[0] == _LEGACY_GROUP


def _gw_api(r: Resource) -> bool:
    return split_api_version(_api(r))[0] == _GATEWAY_API


_DEFAULT_NAMESPACE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "default_namespace", default="default"
)
"""Namespace of resources that name none (kubectl's ``-n``), while commands are rendered."""


def _ns(r: Resource) -> str:
    meta = getattr(r, "metadata", None)
    explicit = getattr(meta, "namespace", None)
    if explicit:
        return str(explicit)
    if meta is not None:
        return _DEFAULT_NAMESPACE.get()
    return r.key.split("/")[1] if r.key.count("/") >= 2 else _DEFAULT_NAMESPACE.get()


def _name(r: Resource) -> str:
    return r.key.rsplit("/", 1)[-1]


def _crd(r: Resource) -> str | None:
    """``plural.group`` of a CRD-backed kind, None for core kinds."""
    group, _ = split_api_version(_api(r))
    if not group or group in ("apps", "extensions", "networking.k8s.io"):
        return None
    info = KINDS.get(kind_key(_kind(r), _api(r)))
    # Mixer's kinds (memquota, rule, QuotaSpec, ...) are not in KINDS: their plurals are regular
    plural = info.plural if info is not None else _kind(r).lower() + "s"
    return f"{plural}.{group}"


def _kubectl(r: Resource) -> str:
    """How kubectl names an object's kind in its output: ``virtualservice.networking.istio.io``."""
    group, _ = split_api_version(_api(r))
    kind = _kind(r).lower()
    if not group or group in ("apps", "extensions"):
        return {"deployment": "deployment.apps", "ingress": "ingress.networking.k8s.io"}.get(
            kind, kind
        )
    return f"{kind}.{group}"


# Istio 0.2's config types, as istioctl names them (`istioctl get route-rules`, keys
# route-rule/<namespace>/<name>; istio/old_pilot_repo@release-0.2 model/config.go and
# cmd/istioctl/main.go).
_LEGACY_TYPES = {
    "RouteRule": ("route-rule", "route-rules"),
    "DestinationPolicy": ("destination-policy", "destination-policies"),
    "EgressRule": ("egress-rule", "egress-rules"),
}


def _legacy_key(r: Resource) -> str:
    return f"{_LEGACY_TYPES[_kind(r)][0]}/{_ns(r)}/{_name(r)}"


def _q(text: str) -> str:
    return shlex.quote(text)


def _here(
    command: str, resources: Sequence[Resource], source: str | None = None, then: str = ""
) -> str:
    """``command -f - <<'EOF'`` with the resources' YAML (quoted EOF: no shell expansion).

    *source*: the file they were read from (the here-document holds only part of it), said in
    a comment line first. *then*: a pipe after the command (``| kubectl apply -f -``); the
    here-document feeds *command*, not the end of the pipe.
    """
    head = f"# {', '.join(dict.fromkeys(_kind(r) for r in resources))} of {source}\n"
    return (head if source else "") + (
        f"{command} -f - <<'EOF'{then}\n{dumps(list(resources)).rstrip()}\nEOF"
    )


def _src(ctx: _Ctx, group: _Group) -> str | None:
    return ctx.display(group.file) if group.file else None


def _f(ctx: _Ctx, group: _Group, subset: Sequence[Resource] | None = None) -> str | None:
    """The file to pass with ``-f``, when it holds exactly these resources; else None.

    A file that also holds other resources (a Service beside the rules, Mixer objects beside
    the workloads) is not passed whole: the step writes its part as a here-document instead.
    """
    if not group.file:
        return None
    members = {id(r) for r in (group.resources if subset is None else subset)}
    in_file = {
        id(r)
        for r in ctx.original
        if (o := ctx.original.origin(r)) is not None and o.file == group.file
    }
    return ctx.display(group.file) if members == in_file else None


def _ns_flag(group: _Group) -> str:
    ns = group.namespace
    return f" -n {_q(ns)}" if ns else ""


def _gateway_of(ctx: _Ctx) -> _Gateway:
    """The gateway the config's routes go through: from its Gateway, else the profile's default."""
    ports: list[int] = []
    hosts: list[str] = []
    http_ports: list[int] = []
    if ctx.profile == "0.2":
        # Istio 0.2's ingress controller: the istio-ingress Service in istio-system, pods
        # labelled istio=ingress (seed talk: `kubectl --namespace istio get svc` shows it;
        # the deny-route rule's source labels).
        for r in ctx.kinds(["Ingress"]):
            d = r.to_dict()
            for rule in d.get("spec", {}).get("rules", []) or []:
                if rule.get("host"):
                    hosts.append(str(rule["host"]))
            ports.append(443 if d.get("spec", {}).get("tls") else 80)
        return _Gateway(
            "istio-system",
            "istio-ingress",
            "istio=ingress",
            _SEED_RELEASE,
            tuple(dict.fromkeys(hosts)),
            tuple(sorted(set(ports or [80]))),
        )
    gws = [r for r in ctx.kinds(["Gateway"]) if not _gw_api(r)]
    if gws:
        d = gws[0].to_dict()
        selector = d.get("spec", {}).get("selector", {}) or {"istio": "ingressgateway"}
        for s in d.get("spec", {}).get("servers", []) or []:
            hosts += [str(h).split("/")[-1] for h in s.get("hosts", []) or []]
            number = (s.get("port") or {}).get("number")
            if isinstance(number, int):
                ports.append(number)
                if str((s.get("port") or {}).get("protocol", "")).upper() in ("HTTP", "HTTP2"):
                    http_ports.append(number)
        label = str(selector.get("istio", "ingressgateway"))
        # The istio/gateway chart labels its pods `istio: <release minus "istio-">`
        # (istio/istio manifests/charts/gateway/templates/_helpers.tpl, gateway.selectorLabels),
        # so the release that serves `istio: ingressgateway` is istio-ingressgateway; its
        # Service carries the release's name.
        release = f"istio-{label}"
        sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        # A Gateway selects gateway pods in any namespace (istiod's default); Istio's Helm
        # guide puts them in istio-ingress, so that is where they go unless the Gateway sits
        # in an Istio namespace itself.
        namespace = _ns(gws[0]) if _ns(gws[0]).startswith("istio-") else "istio-ingress"
    else:
        release, sel, namespace = "istio-ingressgateway", "istio=ingressgateway", "istio-ingress"
    for r in ctx.kinds(["VirtualService"]):
        hosts += [str(h) for h in r.to_dict().get("spec", {}).get("hosts", []) or []]
    for r in (r for r in ctx.config if _gw_api(r) and _kind(r) == "HTTPRoute"):
        hosts += [str(h) for h in r.to_dict().get("spec", {}).get("hostnames", []) or []]
    return _Gateway(
        namespace,
        release,
        sel,
        release,
        tuple(dict.fromkeys(hosts)),
        tuple(sorted(set(ports or [80]))),
        tuple(sorted(set(http_ports))),
    )


def _public_hosts(gw: _Gateway) -> list[str]:
    """Host names a DNS record can be made for (no wildcards, not cluster-internal)."""
    return [
        h
        for h in gw.hosts
        if "*" not in h and "." in h and not h.endswith((".svc.cluster.local", ".local"))
    ]


# -- sections ---------------------------------------------------------------------------------


def _before(ctx: _Ctx) -> list[Step]:
    if ctx.profile == "0.2":
        steps = [
            Step(
                "Check the tools",
                ("kubectl version --short", "helm version --short", "istioctl version"),
                "Client Version: v1.8.x\nServer Version: v1.8.x\n"
                "Client: v2.7.x\nServer: v2.7.x\n"
                "Version: 0.2.12",
                "The seed's cluster: Kubernetes 1.7/1.8 with RBAC, Helm 2 with Tiller, istioctl "
                "from the Istio 0.2 release archive.",
                "seed talk; istio.io/v0.2/docs/setup/kubernetes/quick-start.html",
            )
        ]
    else:
        steps = [
            Step(
                "Check the tools",
                ("kubectl version", "helm version --short", "istioctl version --remote=false"),
                "Client Version: v1.3x.x\nServer Version: v1.3x.x\nv3.x.x\nclient version: 1.2x.x",
                "Helm 3.6 or later; istioctl of the same minor version as the control plane.",
                "istio.io/latest/docs/setup/install/helm (Prerequisites)",
            )
        ]
    needs_aws = {"aws", "all"}
    return (
        steps
        + (
            [
                Step(
                    "Set what only you know",
                    (
                        "export ACM_CERT_ARN=arn:aws:acm:us-east-1:111122223333:certificate/...",
                        "export HOSTED_ZONE_ID=Z0123456789ABCDEFGHIJ",
                        "export NODE_SG=sg-0123456789abcdef0   # the ingress node pool's group",
                        *(
                            []
                            if _public_hosts(ctx.gateway)
                            else [
                                "export DOMAIN=www.example.com   # the config's hosts are wildcards"
                            ]
                        ),
                    ),
                    note="The commands below read these shell variables; the config does not hold "
                    "them.",
                )
            ]
            if ctx.topic in needs_aws
            else []
        )
        + (
            [
                Step(
                    "Set the size you planned",
                    (
                        "export CLUSTER=my-cluster   # the EKS cluster"
                        if ctx.profile == "current"
                        else "export NAME=my-cluster.k8s.local   # the kops cluster",
                        "export NODES=6      # ingress nodes in all: nodes per AZ x AZs",
                        "export REPLICAS=6   # gateway pods: one per ingress node",
                    ),
                    note="From a sweep or plan (notebook 08): the smallest pool that meets the "
                    "objective, with its confidence bound.",
                )
            ]
            if ctx.topic == "capacity"
            else []
        )
    )


def _install(ctx: _Ctx) -> list[Step]:
    if ctx.profile == "0.2":
        return [
            Step(
                "Create the CRDs (helm install)",
                (
                    f"helm install {_SEED_CHART} --set rbac.install=true "
                    "--namespace istio-system --devel",
                ),
                f"NAME:   {_SEED_RELEASE}\nNAMESPACE: istio-system\nSTATUS: DEPLOYED",
                "The first install creates only the CustomResourceDefinitions; Helm 2 picks the "
                "release name (the talk got eponymous-billygoat). Note it for the upgrade.",
                "seed talk (helm install, then helm upgrade)",
            ),
            Step(
                "Create everything else (helm upgrade)",
                (
                    f"helm upgrade {_SEED_RELEASE} {_SEED_CHART} --reuse-values "
                    "--set istio.install=true --devel",
                ),
                f'Release "{_SEED_RELEASE}" has been upgraded. Happy Helming!',
                "The confusing part of the talk: right after the install, an upgrade with "
                "istio.install=true creates Pilot, Mixer, the CA and the istio-ingress "
                "controller.",
                "seed talk",
            ),
            Step(
                "Work in istio-system",
                ("kubens istio-system",),
                'Context "..." modified.\nActive namespace is "istio-system".',
                "The talk switches namespace with kubens (alias kn) instead of typing -n.",
                "seed talk",
            ),
            Step(
                "Check the pods",
                ("kubectl -n istio-system get pods",),
                "NAME                             READY     STATUS    RESTARTS   AGE\n"
                "istio-ca-...                     1/1       Running   0          1m\n"
                "istio-ingress-...                1/1       Running   0          1m\n"
                "istio-mixer-...                  2/2       Running   0          1m\n"
                "istio-pilot-...                  2/2       Running   0          1m",
                source="istio.io/v0.2/docs/setup/kubernetes/quick-start.html (Verifying)",
            ),
        ]
    gw = ctx.gateway
    return [
        Step(
            "Add Istio's Helm repository",
            (f"helm repo add istio {_HELM_REPO}", "helm repo update"),
            '"istio" has been added to your repositories',
            source="istio.io/latest/docs/setup/install/helm",
        ),
        Step(
            "Install the CRDs (istio/base)",
            ("helm install istio-base istio/base -n istio-system --create-namespace --wait",),
            "NAME: istio-base\nNAMESPACE: istio-system\nSTATUS: deployed",
            "The base chart holds the cluster-wide CRDs, as the seed's first `helm install` "
            "did; today it is a chart of its own instead of an install-then-upgrade.",
            "istio.io/latest/docs/setup/install/helm",
        ),
        Step(
            "Install the control plane (istio/istiod)",
            ("helm install istiod istio/istiod -n istio-system --wait",),
            "NAME: istiod\nNAMESPACE: istio-system\nSTATUS: deployed",
            source="istio.io/latest/docs/setup/install/helm",
        ),
        Step(
            f"Install the ingress gateway ({gw.release} in {gw.namespace})",
            (
                f"helm install {gw.release} istio/gateway -n {gw.namespace} --create-namespace "
                "--wait",
            ),
            f"NAME: {gw.release}\nNAMESPACE: {gw.namespace}\nSTATUS: deployed",
            f"The chart labels its pods istio={gw.release.removeprefix('istio-')}, which the "
            f"config's Gateway selects ({gw.selector}).",
            "istio.io/latest/docs/setup/additional-setup/gateway (Helm); "
            "istio/istio manifests/charts/gateway/templates/_helpers.tpl",
        ),
        Step(
            "Check the releases",
            ("helm ls -n istio-system", f"kubectl -n {gw.namespace} get pods -l {gw.selector}"),
            "NAME        NAMESPACE     REVISION  STATUS    CHART\n"
            "istio-base  istio-system  1         deployed  base-1.x.x\n"
            "istiod      istio-system  1         deployed  istiod-1.x.x",
            source="istio.io/latest/docs/setup/install/helm (Verifying)",
        ),
    ]


def _crds(ctx: _Ctx) -> list[Step]:
    names = sorted({c for r in ctx.config if (c := _crd(r)) is not None})
    if ctx.profile == "0.2":
        expected = "\n".join(f"{n:<42} 1m" for n in names)
        return [
            Step(
                "The CRDs these rules need",
                ("kubectl get crd | grep istio.io",),
                expected or "routerules.config.istio.io                 1m",
                "The lines for these rules' kinds, among Istio's other CRDs. "
                "If they are missing, the helm install step did not run (or the upgrade ran "
                "first): istioctl create then fails with 'the server could not find the "
                "requested resource'. Istio 0.2 keeps its rules in config.istio.io/v1alpha2 "
                "CRDs.",
                "seed talk; istio/old_pilot_repo@release-0.2 model/config.go (config.istio.io)",
            )
        ]
    gw_api = [n for n in names if n.endswith(_GATEWAY_API)]
    steps = [
        Step(
            "The CRDs these rules need",
            ("kubectl get crd | grep 'istio.io'",),
            "\n".join(f"{n:<44} <created>" for n in names if not n.endswith(_GATEWAY_API))
            or "virtualservices.networking.istio.io          <created>",
            "Missing CRDs mean istio/base is not installed: kubectl apply then says "
            "'no matches for kind'.",
            "istio.io/latest/docs/setup/install/helm",
        )
    ]
    if gw_api:
        steps.append(
            Step(
                "The Gateway API CRDs",
                ("kubectl get crd " + " ".join(gw_api),),
                "\n".join(f"{n:<44} <created>" for n in gw_api),
                "Istio does not install them; see the Gateway API section.",
                "istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api",
            )
        )
    return steps


def _tracing(ctx: _Ctx) -> list[Step]:
    if ctx.profile == "0.2":
        # The seed: `k edit configmap istio`, default `zipkinAddress: zipkin:9411`; Stackdriver
        # via stackdriver-zipkin.kube-system:9411, Datadog through an iptables redirect.
        return [
            Step(
                "Where traces go now",
                ("kubectl -n istio-system get configmap istio -o yaml | grep zipkinAddress",),
                "    zipkinAddress: zipkin:9411",
                source="seed talk (the istio ConfigMap)",
            ),
            Step(
                "Point them at your collector",
                (
                    "kubectl -n istio-system get configmap istio -o yaml | "
                    f"sed 's|zipkinAddress: zipkin:9411|zipkinAddress: {ctx.zipkin}|' | "
                    "kubectl replace -f -",
                ),
                "configmap/istio replaced",
                "The talk edits it by hand (`kubectl edit configmap istio`). Sidecars get the "
                "address when they are injected: re-run the kube-inject step (or restart the "
                "pods) after the change. Stackdriver: stackdriver-zipkin.kube-system:9411.",
                "seed talk",
            ),
        ]
    host, _, port = ctx.zipkin.rpartition(":")
    return [
        Step(
            "Declare the Zipkin collector in the mesh config",
            (
                "helm upgrade istiod istio/istiod -n istio-system --reuse-values "
                "--set meshConfig.extensionProviders[0].name=zipkin "
                f"--set meshConfig.extensionProviders[0].zipkin.service={host or ctx.zipkin} "
                f"--set meshConfig.extensionProviders[0].zipkin.port={port or 9411}",
            ),
            'Release "istiod" has been upgraded. Happy Helming!',
            "The mesh config still lives in the istio ConfigMap of istio-system (key mesh), "
            "but the old zipkinAddress is gone: a provider is declared and the Telemetry API "
            "turns it on.",
            "istio.io/latest/docs/tasks/observability/distributed-tracing/zipkin",
        ),
        Step(
            "Turn tracing on for the mesh",
            (
                "kubectl apply -f - <<'EOF'\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\n"
                "metadata:\n  name: mesh-default\n  namespace: istio-system\nspec:\n  tracing:\n"
                "  - providers:\n    - name: zipkin\n    randomSamplingPercentage: 1.0\nEOF",
            ),
            "telemetry.telemetry.istio.io/mesh-default created",
            source="istio.io/latest/docs/tasks/observability/telemetry",
        ),
        Step(
            "Check the mesh config",
            ("kubectl -n istio-system get configmap istio -o jsonpath='{.data.mesh}'",),
            f"extensionProviders:\n- name: zipkin\n  zipkin:\n    port: {port or 9411}\n"
            f"    service: {host or ctx.zipkin}",
        ),
    ]


def _workloads(ctx: _Ctx) -> list[Step]:
    deps = [r for r in ctx.original if _kind(r) == "Deployment"]
    if not deps:
        return []
    steps: list[Step] = []
    for group in ctx.groups(
        [r for r in ctx.original if _kind(r) in _WORKLOAD_KINDS], original=True
    ):
        names = [_name(r) for r in group.resources if _kind(r) == "Deployment"]
        if not names:
            continue
        f = _f(ctx, group)
        ns = group.namespace or "default"
        created = "\n".join(
            f"{'service' if _kind(r) == 'Service' else 'deployment.apps'}/{_name(r)} created"
            for r in group.resources
        )
        if ctx.profile == "0.2":
            # The seed: `k apply -f <(istioctl kube-inject -f samples/httpbin/httpbin.yaml)`.
            cmd = (
                f"kubectl apply -n {ns} -f <(istioctl kube-inject -f {_q(f)})"
                if f
                else _here(
                    "istioctl kube-inject",
                    group.resources,
                    _src(ctx, group),
                    then=f" | kubectl apply -n {ns} -f -",
                )
            )
            # kubectl of 2017 printed `service "httpbin" created`
            expected = "\n".join(
                f'{"service" if _kind(r) == "Service" else "deployment"} "{_name(r)}" created'
                for r in group.resources
            )
            steps.append(
                Step(
                    f"Deploy {', '.join(names)} with the sidecar injected",
                    (cmd,),
                    expected,
                    "istioctl kube-inject adds the istio-proxy container to the manifest; "
                    "kubectl applies the result (seed talk).",
                    "seed talk; istio.io/v0.2/docs/setup/kubernetes/sidecar-injection.html",
                )
            )
        else:
            old = [
                r
                for r in group.resources
                if _kind(r) == "Deployment" and _api(r) in ("extensions/v1beta1", "apps/v1beta1")
            ]
            if old:
                ctx.notes.append(
                    f"{', '.join(_name(r) for r in old)}: apiVersion {_api(old[0])} Deployments "
                    "are not served since Kubernetes 1.16: write them as apps/v1 (with "
                    "spec.selector), as Istio's samples are today."
                )
            apply = (
                f"kubectl apply -n {ns} -f {_q(f)}"
                if f
                else _here(f"kubectl apply -n {ns}", group.resources, _src(ctx, group))
            )
            steps += [
                Step(
                    f"Let istiod inject the sidecar in {ns}",
                    (f"kubectl label namespace {ns} istio-injection=enabled --overwrite",),
                    f"namespace/{ns} labeled",
                    "Automatic injection replaced `istioctl kube-inject` (which still works: "
                    f"kubectl apply -f <(istioctl kube-inject -f {f or 'FILE'})).",
                    "istio.io/latest/docs/setup/additional-setup/sidecar-injection",
                ),
                Step(
                    f"Deploy {', '.join(names)}",
                    (apply, f"kubectl -n {ns} get pods -l app={_q(names[0])}"),
                    created + f"\nNAME   READY   STATUS    RESTARTS   AGE\n{names[0]}-...   2/2   "
                    "Running   0   30s",
                    "2/2: the application container and istio-proxy.",
                ),
            ]
    return steps


def _apply_rules(ctx: _Ctx) -> list[Step]:
    routing = ctx.routing
    if not routing:
        ctx.notes.append(
            "The config has no routing resources for this Istio version: nothing to apply."
        )
        return []
    steps: list[Step] = []
    if ctx.converted:
        files = sorted(
            {
                ctx.display(o.file)
                for r in ctx.original
                if (o := ctx.original.origin(r)) and _real_file(o.file)
            }
        )
        steps.append(
            Step(
                "Convert the 0.2 rules",
                (f"istiolab convert {' '.join(_q(f) for f in files) or 'FILES'}",),
                "YAML: " + ", ".join(f"{_kind(r)} {_name(r)}" for r in routing) + ", ...",
                "The next step applies exactly what this prints (the routing part of it); "
                "findings about lossy parts go to stderr.",
                "docs/cluster.md; istiolab convert --help",
            )
        )
    for group in ctx.groups(routing):
        f = _f(ctx, group)
        if ctx.profile == "0.2":
            rules = [r for r in group.resources if _kind(r) in _ROUTING_LEGACY]
            other = [r for r in group.resources if r not in rules]
            if rules:
                # istioctl create prints "Created config <type>/<ns>/<name> at revision <rev>"
                # (istio/old_pilot_repo@release-0.2 cmd/istioctl/main.go); 0.2 keys a RouteRule
                # as route-rule/<namespace>/<name>.
                steps.append(
                    Step(
                        "Create the rules with istioctl",
                        (
                            f"istioctl create{_ns_flag(group)} -f {_q(fr)}"
                            if (fr := _f(ctx, group, rules))
                            else _here(
                                f"istioctl create{_ns_flag(group)}", rules, _src(ctx, group)
                            ),
                        ),
                        "\n".join(f"Created config {_legacy_key(r)} at revision N" for r in rules),
                        "As in the seed (`cat <<EOF | istioctl create -f -`). The rules are CRDs, "
                        "so `kubectl apply -f` works too; change them later with `istioctl "
                        "replace -f`.",
                        "seed talk; istio/old_pilot_repo@release-0.2 cmd/istioctl/main.go",
                    )
                )
            if other:
                ingresses = [r for r in other if _kind(r) == "Ingress"]
                mixer = [r for r in other if r not in ingresses]
                if ingresses:
                    steps.append(
                        Step(
                            "Create the Ingress (class istio)",
                            (
                                f"kubectl create{_ns_flag(group)} -f {_q(fi)}"
                                if (fi := _f(ctx, group, ingresses))
                                else _here(
                                    f"kubectl create{_ns_flag(group)}", ingresses, _src(ctx, group)
                                ),
                            ),
                            "\n".join(f'ingress "{_name(r)}" created' for r in ingresses),
                            "The istio-ingress controller picks it up by its "
                            "kubernetes.io/ingress.class: istio annotation and reconfigures "
                            "Envoy.",
                            "seed talk; istio/old_pilot_repo@release-0.2 "
                            "adapter/config/ingress/conversion.go",
                        )
                    )
                if mixer:
                    steps.append(
                        Step(
                            "Create the Mixer configuration",
                            (
                                f"kubectl apply -f {_q(fm)}"
                                if (fm := _f(ctx, group, mixer))
                                else _here("kubectl apply", mixer, _src(ctx, group)),
                            ),
                            "\n".join(f'{_kind(r).lower()} "{_name(r)}" created' for r in mixer),
                            "Mixer's handler, instance and rule are config.istio.io CRDs in "
                            "istio-system.",
                            "istio.io/v0.2/docs/tasks/policy-enforcement/rate-limiting.html",
                        )
                    )
        else:
            cmd = (
                f"kubectl apply{_ns_flag(group)} -f {_q(f)}"
                if f
                else _here(f"kubectl apply{_ns_flag(group)}", group.resources, _src(ctx, group))
            )
            created = "\n".join(f"{_kubectl(r)}/{_name(r)} created" for r in group.resources)
            analyze = (
                f"istioctl analyze{_ns_flag(group)} {_q(f)}"
                if f
                else f"istioctl analyze -n {group.namespace or 'default'}"
            )
            steps.append(
                Step(
                    "Apply the rules",
                    (cmd,),
                    created,
                    "kubectl applies "
                    + (
                        "the Gateway API's resources"
                        if all(_gw_api(r) for r in group.resources)
                        else "Istio's networking.istio.io resources"
                    )
                    + " like any other.",
                    "istio.io/latest/docs/tasks/traffic-management/request-routing",
                )
            )
            steps.append(
                Step(
                    "Let istioctl analyze them with the cluster",
                    (analyze,),
                    "✔ No validation issues found when analyzing namespace: "
                    f"{group.namespace or 'default'}.",
                    "What `istiolab lint` says before the cluster, istioctl says with it "
                    "(missing Services, subsets without pods, a Gateway selecting no pod).",
                    "istio.io/latest/docs/reference/commands/istioctl/#istioctl-analyze",
                )
            )
    return steps


def _client(ctx: _Ctx) -> tuple[list[Step], Callable[[str], str], bool]:
    """How requests are sent: through the load balancer, or from a pod in the mesh."""
    gw = ctx.gateway
    through_gateway = bool(
        ctx.kinds(["Ingress"])
        if ctx.profile == "0.2"
        else [r for r in ctx.kinds(["Gateway"]) if not _gw_api(r)]
    )
    api_gateways = [r for r in ctx.config if _gw_api(r) and _kind(r) == "Gateway"]
    if ctx.profile == "current" and api_gateways and not through_gateway:
        # istiod deploys a gateway for a Gateway API Gateway and writes its load balancer's
        # address in the Gateway's status (Istio's Gateway API task: status.addresses).
        g = api_gateways[0]
        step = Step(
            "The load balancer's name",
            (
                f"export INGRESS_HOST=$(kubectl -n {_ns(g)} get gateways.gateway.networking.k8s.io "
                f"{_name(g)} -o jsonpath='{{.status.addresses[0].value}}')",
                "echo $INGRESS_HOST",
            ),
            "a1b2c3...elb.us-east-1.amazonaws.com",
            "The Gateway's status holds its address once istiod has deployed it.",
            "istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api",
        )
        return [step], lambda path: f'"http://$INGRESS_HOST{path}"', True
    if through_gateway:
        step = Step(
            "The load balancer's name",
            (
                f"export INGRESS_HOST=$(kubectl -n {gw.namespace} get service {gw.service} "
                "-o jsonpath='{.status.loadBalancer.ingress[0].hostname}')",
                "echo $INGRESS_HOST",
            ),
            "a1b2c3...elb.us-east-1.amazonaws.com",
            "On AWS the Service's load balancer has a DNS name, not an IP (Istio's ingress "
            "task: use .hostname instead of .ip).",
            "istio.io/latest/docs/tasks/traffic-management/ingress/ingress-control "
            "(Determining the ingress IP and ports)",
        )
        return [step], lambda path: f'"http://$INGRESS_HOST{path}"', True
    ctx.client_pod = True
    if ctx.profile == "0.2":
        step = Step(
            "A client pod in the mesh",
            (
                "kubectl apply -f <(istioctl kube-inject -f samples/sleep/sleep.yaml)",
                "export SOURCE_POD=$(kubectl get pod -l app=sleep "
                "-o jsonpath='{.items[0].metadata.name}')",
            ),
            'deployment "sleep" created',
            "These rules are for traffic inside the mesh (no Ingress in the config): send "
            "the requests from a pod with a sidecar.",
            "istio.io/v0.2/docs/tasks/traffic-management/egress.html (the sleep sample)",
        )
        return [step], lambda url: url, False
    step = Step(
        "A client pod in the mesh",
        (
            "kubectl apply -f https://raw.githubusercontent.com/istio/istio/master/samples/"
            "curl/curl.yaml",
        ),
        "serviceaccount/curl created\nservice/curl created\ndeployment.apps/curl created",
        "No Gateway in the config: these routes are for traffic inside the mesh, so the "
        "requests come from a pod with a sidecar.",
        "istio.io/latest/docs/tasks/traffic-management/request-timeouts (the curl sample)",
    )
    return [step], lambda url: url, False


def _check(ctx: _Ctx) -> list[Step]:
    from istiolab.envoy.compile import compile
    from istiolab.envoy.match import explain
    from istiolab.envoy.verify.generate import generate_cases

    if not ctx.routing:
        return []
    try:
        table = compile(ctx.config, "0.2" if ctx.profile == "0.2" else None)
        cases = [c for c in generate_cases(table) if c.random_value is None and c.cluster != ""]
    except IstiolabError as err:  # a config the compiler refuses: say so, send nothing
        ctx.notes.append(f"no requests to suggest: {err}")
        return []
    if not cases:
        return []
    first, url_of, through = _client(ctx)
    steps = list(first)
    sourced = [
        _name(r)
        for r in ctx.kinds(["RouteRule"])
        if ((r.to_dict().get("spec") or {}).get("match") or {}).get("source")
    ]
    if ctx.profile == "0.2" and through and sourced:
        # Pilot 0.2.7 built the ingress's routes with no proxy instances, so rules scoped to a
        # source never applied there; release-0.2 (0.2.12) passes the ingress pod's instances
        # (istio/old_pilot_repo, git diff 0.2.7 release-0.2 -- proxy/envoy/ingress.go).
        ctx.notes.append(
            f"{', '.join(sourced)}: scoped to a source (match.source); Istio 0.2.12 applies it "
            "at the ingress, 0.2.7 and earlier did not (their ingress ignored source-scoped "
            "rules): check `istioctl version` before trusting the expected status."
        )
    for case in cases[:6]:
        req = case.request
        host = req.host
        wildcard = host in ("istiolab.test",) or host.endswith(".istiolab.test")
        headers = [f"-H {_q(f'{k}: {v}')}" for k, v in sorted(req.headers.items())]
        if through:
            if not wildcard:
                headers.insert(0, f"-H {_q('Host: ' + host)}")
            url = url_of(req.path)
        else:
            url = _q(f"http://{host.split('.')[0]}{req.path}")
        ex = explain(table, req).to_dict()
        dests = ex.get("destinations") or []
        route = (ex.get("route") or {}).get("name") or case.name
        curl = f"curl -s -o /dev/null -w '%{{http_code}}\\n' {' '.join([*headers, url])}".replace(
            "  ", " "
        )
        if not through:
            curl = (
                f'kubectl exec "$SOURCE_POD" -c sleep -- {curl}'
                if ctx.profile == "0.2"
                else f"kubectl exec deploy/curl -- {curl}"
            )
        fault = ex.get("fault") or {}
        status = case.status
        if fault.get("abort_status") and 0 < float(fault.get("abort_percent") or 0) < 100:
            expected = (
                f"{fault['abort_status']} for about {fault['abort_percent']:g} % of the "
                f"requests, {status} otherwise"
            )
        else:
            expected = str(status)
        steps.append(
            Step(
                f"A request for route {route}",
                (curl,),
                expected,
                _dest_note(dests, fault),
                "istiolab explain (the route model); istio.io/latest/docs/tasks/traffic-management",
            )
        )
        limit = ex.get("rate_limit") or {}
        if limit.get("max_tokens"):
            burst = 3 * int(limit["max_tokens"])
            steps.append(
                Step(
                    f"A burst of {burst} requests on route {route}",
                    (f"for i in $(seq 1 {burst}); do {curl}; done | sort | uniq -c",),
                    f"about {limit['max_tokens']} 200 per gateway pod (the bucket: "
                    f"{limit['max_tokens']} tokens, {limit.get('tokens_per_fill')} more every "
                    f"{limit.get('fill_interval_s', 1):g} s)\nthe rest 429",
                    "Envoy's local rate limit counts in each gateway pod: with several pods "
                    "behind the load balancer, more requests pass.",
                    "istio.io/latest/docs/tasks/policy-enforcement/rate-limit (local rate limit)",
                )
            )
        if len(dests) > 1:
            steps.append(_split_step(ctx, route, curl, dests, through))
    return steps


def _split_step(
    ctx: _Ctx, route: str, curl: str, dests: Sequence[Mapping[str, Any]], through: bool
) -> Step:
    """100 requests, then the proxy's access log says where each one went."""
    send = f"for i in $(seq 1 100); do {curl}; done > /dev/null"
    wobble = (
        "Each request is an independent draw: expect a binomial wobble (about ±6 requests "
        "for a 10 % share of 100)."
    )
    if ctx.profile == "0.2":
        # Envoy v1's default access log ends with the upstream host (%UPSTREAM_HOST%); the
        # clusters are named out.<hash>, so the pods' IPs tell the versions apart.
        logs = (
            "kubectl -n istio-system logs -l istio=ingress --since=2m"
            if through
            else 'kubectl logs "$SOURCE_POD" -c istio-proxy --since=2m'
        )
        service = str(dests[0].get("host", "")).split(".")[0]
        return Step(
            f"The split of route {route}, over 100 requests",
            (
                send,
                f"{logs} | awk '{{print $NF}}' | sort | uniq -c",
                f"kubectl get pods -l app={_q(service)} -L version -o wide",
            ),
            "\n".join(
                f"about {d['percent']:g} requests to the {d.get('subset') or 'v?'} pods' IP:port"
                for d in dests
            ),
            wobble + " The proxy's access log ends with the upstream pod's address; the "
            "last command maps addresses to versions.",
            "istio.io/v0.2/docs/tasks/traffic-management/traffic-shifting.html",
        )
    gw = ctx.gateway
    logs = (
        f"kubectl -n {gw.namespace} logs deploy/{gw.release} --since=2m"
        if through
        else "kubectl logs deploy/curl -c istio-proxy --since=2m"
    )
    host = str(dests[0].get("host", ""))
    return Step(
        f"The split of route {route}, over 100 requests",
        (send, f"{logs} | grep -o 'outbound|[0-9]*|[^|]*|{host}' | sort | uniq -c"),
        "\n".join(f"  ~{d['percent']:g} {d.get('cluster')}" for d in dests),
        wobble + " Istio's access log names the upstream cluster, subset included; it must be "
        "on (meshConfig.accessLogFile: /dev/stdout, or a Telemetry resource with the envoy "
        "provider).",
        "istio.io/latest/docs/tasks/observability/logs/access-log; "
        "istio.io/latest/docs/tasks/traffic-management/traffic-shifting",
    )


def _dest_note(dests: Sequence[Mapping[str, Any]], fault: Mapping[str, Any]) -> str:
    parts = [
        f"{d.get('subset') or str(d.get('host', '')).split('.')[0]} {d.get('percent', 100):g} %"
        for d in dests
    ]
    out = "to " + ", ".join(parts) if parts else ""
    if fault.get("abort_status"):
        out += (
            f"; Envoy answers {fault['abort_status']} itself for "
            f"{fault.get('abort_percent', 100):g} % (the backend never sees them)"
        )
    if fault.get("delay_s"):
        out += f"; {fault.get('delay_percent', 100):g} % delayed by {fault['delay_s']:g} s"
    return out.lstrip("; ")


def _proxyconfig(ctx: _Ctx) -> list[Step]:
    gw = ctx.gateway
    if ctx.profile == "0.2":
        return [
            Step(
                "Envoy's routes on the ingress pod",
                (
                    "export INGRESS_POD=$(kubectl -n istio-system get pod -l istio=ingress "
                    "-o jsonpath='{.items[0].metadata.name}')",
                    'kubectl -n istio-system exec "$INGRESS_POD" -- curl -s localhost:15000/routes',
                ),
                "the Envoy v1 route table Pilot sent (virtual hosts, routes, weighted clusters)",
                "Istio 0.2 has no istioctl proxy-config; Envoy's admin port 15000 answers on "
                "the pod itself.",
                "Envoy v1 admin docs (/routes)",
            )
        ]
    return [
        Step(
            "The routes istiod sent to the gateway",
            (
                f"istioctl proxy-config routes deploy/{gw.release} -n {gw.namespace}",
                f"istioctl proxy-config routes deploy/{gw.release} -n {gw.namespace} -o json "
                "> routes.json",
            ),
            "NAME          VHOST NAME     DOMAINS     MATCH     VIRTUAL SERVICE\n"
            "http.8080     *:80           *           /*        <vs>.<namespace>",
            "Compare with `istiolab envoy-config` on the same files: the route model is what "
            "istiolab simulates.",
            "istio.io/latest/docs/reference/commands/istioctl/#istioctl-proxy-config-route",
        )
    ]


def _rbac(ctx: _Ctx) -> list[Step]:
    pairs = sorted({(c, _ns(r)) for r in ctx.routing if (c := _crd(r))})
    if not pairs:
        return []
    return [
        Step(
            "May you write these kinds?",
            tuple(f"kubectl auth can-i patch {c} -n {ns}" for c, ns in pairs),
            "\n".join("yes" for _ in pairs),
            "RBAC is on (the seed installs with rbac.install=true): a 'no' stops the apply "
            "at its first object.",
            "kubernetes.io/docs/reference/access-authn-authz/authorization (kubectl auth can-i)",
        )
    ]


def _plan(ctx: _Ctx) -> list[Step]:
    if ctx.profile == "0.2":
        types = sorted(
            {_LEGACY_TYPES[_kind(r)][1] for r in ctx.routing if _kind(r) in _LEGACY_TYPES}
        )
        return [
            Step(
                "What is there now",
                tuple(
                    f"istioctl get {t} -o yaml {'>' if i == 0 else '>>'} before.yaml"
                    for i, t in enumerate(types or ["route-rules"])
                ),
                note="Istio 0.2 has no server-side dry run: save the live rules, so that you "
                "can put them back.",
                source="istio.io/v0.2/docs/reference/commands/istioctl.html",
            )
        ]
    steps = []
    for i, group in enumerate(ctx.groups(ctx.routing)):
        f = _f(ctx, group)
        ns = _ns_flag(group)
        objects = " ".join(f"{_crd(r) or _kind(r).lower()}/{_name(r)}" for r in group.resources)
        dry = f"kubectl apply --server-side --dry-run=server{ns}"
        diff = f"kubectl diff --server-side{ns}"
        steps += [
            Step(
                "Save what is live",
                (
                    f"kubectl get{ns} {objects} --ignore-not-found -o yaml "
                    f"{'>' if i == 0 else '>>'} before.yaml",
                ),
                note="Exactly the objects the apply writes; those that do not exist yet are "
                "skipped.",
            ),
            Step(
                "Dry run on the API server, then the diff",
                (
                    f"{dry} -f {_q(f)}" if f else _here(dry, group.resources, _src(ctx, group)),
                    f"{diff} -f {_q(f)}" if f else _here(diff, group.resources, _src(ctx, group)),
                ),
                "\n".join(
                    f"{_kubectl(r)}/{_name(r)} serverside-applied (server dry run)"
                    for r in group.resources
                ),
                "kubectl diff exits 1 when something would change.",
                "kubernetes.io/docs/reference/kubectl/generated/kubectl_diff",
            ),
        ]
    return steps


def _rollback(ctx: _Ctx) -> list[Step]:
    if ctx.profile == "0.2":
        rules = [r for r in ctx.routing if _kind(r) in _LEGACY_TYPES]
        return [
            Step(
                "Put the saved rules back",
                ("istioctl replace -f before.yaml",),
                "\n".join(f"Updated config {_legacy_key(r)} to revision N" for r in rules),
                "Rules the create added are not in before.yaml: delete them (Cleanup).",
                "istio/old_pilot_repo@release-0.2 cmd/istioctl/main.go (replace)",
            )
        ]
    return [
        Step(
            "Put the saved objects back",
            ("kubectl apply --server-side --force-conflicts -f before.yaml",),
            note="Objects the apply created are not in before.yaml: delete them (Cleanup). "
            "`istiolab rollback` does both from its backup.",
        )
    ]


def _capacity(ctx: _Ctx) -> list[Step]:
    gw = ctx.gateway
    if ctx.profile == "0.2":
        return [
            Step(
                "More ingress nodes",
                (
                    "kops edit ig --name $NAME ingress-nodes   # set minSize and maxSize to $NODES",
                    "kops update cluster --name $NAME --yes",
                ),
                note="The seed's dedicated ingress node pool is an instance group (kops, "
                "kube-aws) or an Auto Scaling group you resize; istio-ingress runs on it.",
                source="seed talk (a dedicated Istio Ingress node pool)",
            ),
            Step(
                "More istio-ingress pods",
                ("kubectl -n istio-system scale deployment istio-ingress --replicas=$REPLICAS",),
                'deployment "istio-ingress" scaled',
            ),
        ]
    return [
        Step(
            "More ingress nodes",
            ("eksctl scale nodegroup --cluster $CLUSTER --name ingress --nodes $NODES",),
            note="Nodes per AZ times the AZs of the node group.",
            source="eksctl.io/usage/nodegroup-managed",
        ),
        Step(
            "At least that many gateway pods",
            (
                f"helm upgrade {gw.release} istio/gateway -n {gw.namespace} --reuse-values "
                "--set autoscaling.minReplicas=$REPLICAS",
                f"kubectl -n {gw.namespace} get hpa {gw.release}",
            ),
            f"NAME   REFERENCE   TARGETS   MINPODS   MAXPODS\n{gw.release}   "
            f"Deployment/{gw.release}   cpu: 12%/80%   $REPLICAS   5",
            "The gateway chart runs an HorizontalPodAutoscaler on CPU (autoscaling.*).",
            "istio/istio manifests/charts/gateway/values.yaml (autoscaling)",
        ),
        Step(
            "Watch the gateway's CPU under load",
            (f"kubectl -n {gw.namespace} top pods -l {gw.selector}",),
        ),
    ]


def _gatewayapi(ctx: _Ctx) -> list[Step]:
    if ctx.profile == "0.2":
        ctx.notes.append(
            "The Gateway API did not exist in 2017 (its first release is from 2020): Istio 0.2 "
            "has only the Ingress and RouteRules."
        )
        return []
    routes = [r for r in ctx.config if _gw_api(r)]
    steps = [
        Step(
            "Install the Gateway API CRDs",
            (
                "kubectl get crd gateways.gateway.networking.k8s.io &> /dev/null || "
                f"kubectl apply -f {_GATEWAY_API_CRDS}",
            ),
            "customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io "
            "created\n...",
            "Istio does not install them.",
            "istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api",
        )
    ]
    if not routes:
        istio = [r for r in ctx.config if _kind(r) in ("Gateway", "VirtualService")]
        files = sorted(
            {
                ctx.display(o.file)
                for r in istio
                if (o := ctx.config.origin(r)) and _real_file(o.file)
            }
        )
        steps.append(
            Step(
                "Convert the rules",
                (
                    f"istiolab convert --to gateway-api {' '.join(files) or 'FILES'} "
                    "-o gateway-api.yaml",
                    "kubectl apply -f gateway-api.yaml",
                ),
                "gateway.gateway.networking.k8s.io/... created\n"
                "httproute.gateway.networking.k8s.io/... created",
                "Read the conversion's findings: a fault or a string prefix has no Gateway API "
                "form.",
            )
        )
        return steps
    steps += _apply_rules(ctx)
    for r in routes:
        if _kind(r) == "Gateway":
            steps.append(
                Step(
                    f"Wait until Gateway {_name(r)} is programmed",
                    (
                        f"kubectl wait -n {_ns(r)} --for=condition=programmed "
                        f"gateways.gateway.networking.k8s.io/{_name(r)}",
                    ),
                    f"gateway.gateway.networking.k8s.io/{_name(r)} condition met",
                    "istiod deploys a gateway Deployment and Service for it.",
                    "istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api",
                )
            )
        elif _kind(r) == "HTTPRoute":
            steps.append(
                Step(
                    f"HTTPRoute {_name(r)} accepted by its parent",
                    (
                        f"kubectl get httproute -n {_ns(r)} {_name(r)} -o "
                        "jsonpath='{.status.parents[*].conditions[*].type}'",
                    ),
                    "Accepted ResolvedRefs",
                )
            )
    return steps


def _load_balancer(ctx: _Ctx) -> list[Step]:
    gw = ctx.gateway
    svc = _gateway_service(ctx)
    lb = read_load_balancer(svc.to_dict()) if svc is not None else None
    if ctx.profile == "0.2":
        # The in-tree AWS provider of 2017 (Kubernetes 1.7/1.8) makes a Classic ELB for a
        # LoadBalancer Service; TLS with an ACM certificate on its listener via the
        # aws-load-balancer-ssl-cert/-ssl-ports/-backend-protocol annotations
        # (kubernetes/kubernetes pkg/cloudprovider/providers/aws/aws.go, ServiceAnnotation*).
        return [
            Step(
                "TLS on the ELB's listener, with the ACM certificate",
                (
                    f"kubectl -n {gw.namespace} annotate service {gw.service} --overwrite \\\n"
                    "  service.beta.kubernetes.io/aws-load-balancer-ssl-cert=$ACM_CERT_ARN \\\n"
                    "  service.beta.kubernetes.io/aws-load-balancer-ssl-ports=443 \\\n"
                    "  service.beta.kubernetes.io/aws-load-balancer-backend-protocol=http",
                    f"kubectl -n {gw.namespace} get service {gw.service}",
                ),
                f'service "{gw.service}" annotated\n'
                "NAME            TYPE           EXTERNAL-IP                       PORT(S)\n"
                f"{gw.service}   LoadBalancer   a1b2...elb.us-east-1.amazonaws.com   "
                "80:3xxxx/TCP,443:3xxxx/TCP",
                "The talk keeps TLS on AWS (ACM) rather than in Istio Ingress (no SNI in Envoy "
                "then, and certificates are easier in ACM): the ELB terminates TLS on 443 and "
                "speaks plain HTTP to the nodes.",
                "seed talk; kubernetes/kubernetes@release-1.8 "
                "pkg/cloudprovider/providers/aws/aws.go",
            ),
            Step(
                "Send the decrypted 443 traffic to the HTTP port",
                (
                    f"kubectl -n {gw.namespace} patch service {gw.service} "
                    '-p \'{"spec":{"ports":[{"port":443,"targetPort":80}]}}\'',
                ),
                f'service "{gw.service}" patched',
                "istio-ingress listens on 443 only for an Ingress with TLS; with TLS ended at "
                "the ELB, its 443 listener must reach Envoy's port 80 (a strategic merge "
                "patch: Service ports merge by port).",
                "istio/old_pilot_repo@release-0.2 proxy/envoy/ingress.go (listeners)",
            ),
        ]
    ports = ",".join(str(p) for p in gw.ports if p == 443) or "443"
    values = [
        "service:",
        "  annotations:",
        "    service.beta.kubernetes.io/aws-load-balancer-type: external",
        f"    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: "
        f"{lb.target_type if lb else 'instance'}",
        f"    service.beta.kubernetes.io/aws-load-balancer-scheme: "
        f"{lb.scheme if lb and lb.scheme != 'internal' else 'internet-facing'}",
        "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: ${ACM_CERT_ARN}",
        f'    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: "{ports}"',
        "    service.beta.kubernetes.io/aws-load-balancer-backend-protocol: tcp",
    ]
    if lb is not None and lb.cross_zone is not None:
        values.append(
            "    service.beta.kubernetes.io/aws-load-balancer-attributes: "
            f"load_balancing.cross_zone.enabled={str(lb.cross_zone).lower()}"
        )
    # TLS ends at the NLB: its 443 listener sends plain HTTP, so the Service's 443 port must
    # reach a plain-HTTP server of the Gateway (443 when the Gateway has one, else 80).
    http = gw.http_ports
    target = 443 if 443 in http else 80 if (80 in http or not http) else http[0]
    values += [
        "  ports:",
        "  - {name: status-port, port: 15021, targetPort: 15021, protocol: TCP}",
        "  - {name: http2, port: 80, targetPort: 80, protocol: TCP}",
        f"  - {{name: https, port: 443, targetPort: {target}, protocol: TCP}}",
    ]
    if not http:
        ctx.notes.append(
            "The Gateway has no plain-HTTP server: with TLS ended at the NLB, give it one "
            "(port 80 or 443, protocol HTTP) for the decrypted traffic."
        )
    return [
        Step(
            "An NLB with TLS from ACM on its 443 listener",
            (
                "envsubst > gateway-values.yaml <<'EOF'\n" + "\n".join(values) + "\nEOF",
                f"helm upgrade {gw.release} istio/gateway -n {gw.namespace} --reuse-values "
                "-f gateway-values.yaml",
                f"kubectl -n {gw.namespace} get service {gw.release}",
            ),
            f'Release "{gw.release}" has been upgraded. Happy Helming!\n'
            "NAME   TYPE           EXTERNAL-IP                                   PORT(S)\n"
            f"{gw.release}   LoadBalancer   k8s-...elb.us-east-1.amazonaws.com   "
            "15021:3xxxx/TCP,80:3xxxx/TCP,443:3xxxx/TCP",
            "The AWS Load Balancer Controller builds the NLB from the Service's annotations: "
            "the TLS listener on 443 uses the ACM certificate and forwards plain TCP to the "
            f"gateway, whose Service sends it to the Gateway's HTTP server on {target}. The talk's "
            "alternative, a Classic ELB or an ALB to nodes in private "
            "subnets, puts the certificate on that load balancer's listener instead.",
            "kubernetes-sigs/aws-load-balancer-controller docs/guide/service/annotations.md "
            "(ssl-cert, ssl-ports, backend-protocol, nlb-target-type, scheme); "
            "docs/guide/use_cases/nlb_tls_termination",
        )
    ]


def _gateway_service(ctx: _Ctx) -> Resource | None:
    for r in ctx.original:
        if _kind(r) == "Service":
            d = r.to_dict()
            if (d.get("spec") or {}).get("type") == "LoadBalancer":
                return r
    return None


def _security_groups(ctx: _Ctx) -> list[Step]:
    gw = ctx.gateway
    svc = gw.service if ctx.profile == "0.2" else gw.release
    ports = sorted(set(gw.ports) | {443})
    node_ports = " ".join(
        f"$(kubectl -n {gw.namespace} get service {svc} "
        f"-o jsonpath='{{.spec.ports[?(@.port=={p})].nodePort}}')"
        for p in ports
    )
    who = (
        "The Classic ELB has its own security group (the provider makes it, open on the "
        "listener ports); the nodes must let the ELB's group in on the NodePorts."
        if ctx.profile == "0.2"
        else "With instance targets and client IP preservation the NLB passes the client's "
        "address through, so the nodes' group must allow the clients (0.0.0.0/0 for an "
        "internet-facing NLB) on the NodePorts, and the VPC on the health-check port. The "
        "controller manages these rules itself unless "
        "aws-load-balancer-manage-backend-security-group-rules is false."
    )
    return [
        Step(
            "Let the load balancer reach the ingress nodes",
            (
                f'export NODE_PORTS="{node_ports}"',
                "for port in $NODE_PORTS; do\n"
                "  aws ec2 authorize-security-group-ingress --group-id $NODE_SG "
                "--protocol tcp --port $port --cidr 0.0.0.0/0\n"
                "done",
                "aws ec2 describe-security-groups --group-ids $NODE_SG "
                "--query 'SecurityGroups[0].IpPermissions[].[FromPort,IpRanges[0].CidrIp]' "
                "--output text",
            ),
            '{\n    "Return": true,\n    "SecurityGroupRules": [ ... ]\n}\n3xxxx  0.0.0.0/0',
            who + " Istio does not manage security groups (seed talk).",
            "seed talk; docs.aws.amazon.com/cli/latest/reference/ec2/"
            "authorize-security-group-ingress.html; kubernetes-sigs/aws-load-balancer-controller "
            "docs/deploy/security_groups.md",
        )
    ]


def _route53(ctx: _Ctx) -> list[Step]:
    gw = ctx.gateway
    hosts = _public_hosts(gw)
    if not hosts:
        ctx.notes.append(
            "The config's hosts are all wildcards or cluster-internal: the Route53 step uses "
            "$DOMAIN (export DOMAIN=www.example.com)."
        )
        hosts = ["$DOMAIN"]
    svc = gw.service if ctx.profile == "0.2" else gw.release
    zone_query = (
        "aws elb describe-load-balancers --query \"LoadBalancerDescriptions[?DNSName=='$LB']"
        '.CanonicalHostedZoneNameID" --output text'
        if ctx.profile == "0.2"
        else "aws elbv2 describe-load-balancers --query \"LoadBalancers[?DNSName=='$LB']"
        '.CanonicalHostedZoneId" --output text'
    )
    changes = ",".join(_rrset("UPSERT", h) for h in hosts)
    return [
        Step(
            f"Alias {', '.join(hosts)} to the load balancer",
            (
                f"export LB=$(kubectl -n {gw.namespace} get service {svc} "
                "-o jsonpath='{.status.loadBalancer.ingress[0].hostname}')",
                f"export LB_ZONE=$({zone_query})",
                "aws route53 change-resource-record-sets --hosted-zone-id $HOSTED_ZONE_ID "
                f"--change-batch '{{\"Changes\":[{changes}]}}'",
            ),
            '{\n    "ChangeInfo": {\n        "Id": "/change/C...",\n        "Status": "PENDING"'
            "\n    }\n}",
            "An alias A record follows the load balancer's changing addresses (its own DNS TTL "
            "is 60 s). Istio does not create DNS records (seed talk).",
            "docs.aws.amazon.com/Route53/latest/DeveloperGuide/routing-to-elb-load-balancer.html",
        ),
        Step(
            "Check the name",
            tuple(f"dig +short {h}" for h in hosts),
            "\n".join("203.0.113.10" for _ in hosts[:1]),
        ),
        *_over_tls(ctx, hosts[0]),
    ]


def _over_tls(ctx: _Ctx, host: str) -> list[Step]:
    """The first route's request, by name and over TLS: DNS, certificate and routes together."""
    from istiolab.envoy.compile import compile
    from istiolab.envoy.verify.generate import generate_cases

    try:
        table = compile(ctx.config, "0.2" if ctx.profile == "0.2" else None)
        cases = [c for c in generate_cases(table) if c.random_value is None and c.cluster != ""]
    except IstiolabError:
        return []
    # a request for this host's routes, else for a wildcard host's (generate_cases writes
    # istiolab.test for `*`)
    mine = [c for c in cases if c.request.host == host] or [
        c for c in cases if c.request.host.endswith("istiolab.test")
    ]
    if not mine:
        return []
    req = mine[0].request
    headers = " ".join(f"-H {_q(f'{k}: {v}')}" for k, v in sorted(req.headers.items()))
    url = f'"https://{host}{req.path}"' if host.startswith("$") else _q(f"https://{host}{req.path}")
    return [
        Step(
            "The same request by name, over TLS",
            (f"curl -s -o /dev/null -w '%{{http_code}}\\n' {headers} {url}".replace("  ", " "),),
            str(mine[0].status),
            "DNS, the ACM certificate on the load balancer's 443 listener and the routes, "
            "together: curl checks the certificate against the name.",
        )
    ]


def _rrset(action: str, host: str) -> str:
    """One Route53 change: an alias A record for *host* to ``$LB`` (in ``$LB_ZONE``).

    The change batch is single-quoted for the shell; shell variables are spliced in by closing
    and reopening the quotes (``'"$LB"'``).
    """
    name = f"'\"{host}\"'" if host.startswith("$") else host
    return (
        f'{{"Action":"{action}","ResourceRecordSet":{{"Name":"{name}","Type":"A",'
        '"AliasTarget":{"HostedZoneId":"\'"$LB_ZONE"\'","DNSName":"\'"$LB"\'",'
        '"EvaluateTargetHealth":true}}}'
    )


def _cleanup(ctx: _Ctx, sections: Sequence[str]) -> list[Step]:
    steps: list[Step] = []
    gw = ctx.gateway
    if "route53" in sections:
        hosts = _public_hosts(gw) or ["$DOMAIN"]
        steps.append(
            Step(
                "Delete the DNS record",
                (
                    "aws route53 change-resource-record-sets --hosted-zone-id $HOSTED_ZONE_ID "
                    '--change-batch \'{"Changes":['
                    + ",".join(_rrset("DELETE", h) for h in hosts)
                    + "]}'",
                ),
                '{\n    "ChangeInfo": {\n        "Status": "PENDING"\n    }\n}',
            )
        )
    if "securitygroups" in sections:
        steps.append(
            Step(
                "Remove the security group rules",
                (
                    "for port in $NODE_PORTS; do\n"
                    "  aws ec2 revoke-security-group-ingress --group-id $NODE_SG --protocol tcp "
                    "--port $port --cidr 0.0.0.0/0\n"
                    "done",
                ),
            )
        )
    if "rules" in sections or "gatewayapi" in sections:
        for group in reversed(ctx.groups(ctx.routing)):
            f = _f(ctx, group)
            if ctx.profile == "0.2":
                rules = [r for r in group.resources if _kind(r) in _ROUTING_LEGACY]
                rest = [r for r in group.resources if r not in rules]
                if rules:
                    steps.append(
                        Step(
                            "Delete the rules",
                            (
                                f"istioctl delete{_ns_flag(group)} -f {_q(fr)}"
                                if (fr := _f(ctx, group, rules))
                                else _here(
                                    f"istioctl delete{_ns_flag(group)}", rules, _src(ctx, group)
                                ),
                            ),
                            "\n".join(f"Deleted config: {_legacy_key(r)}" for r in rules),
                        )
                    )
                if rest:
                    steps.append(
                        Step(
                            "Delete the "
                            + " and ".join(
                                dict.fromkeys(
                                    "Ingress" if _kind(r) == "Ingress" else "Mixer objects"
                                    for r in rest
                                )
                            ),
                            tuple(
                                f"kubectl delete -n {_ns(r)} {(_crd(r) or _kind(r).lower())} "
                                f"{_name(r)}"
                                for r in rest
                            ),
                        )
                    )
            else:
                steps.append(
                    Step(
                        "Delete the rules",
                        (
                            f"kubectl delete{_ns_flag(group)} -f {_q(f)}"
                            if f
                            else f"kubectl delete{_ns_flag(group)} "
                            + " ".join(
                                f"{(_crd(r) or _kind(r).lower())}/{_name(r)}"
                                for r in group.resources
                            ),
                        ),
                        "\n".join(f'{_kubectl(r)} "{_name(r)}" deleted' for r in group.resources),
                    )
                )
    if "workloads" in sections:
        deps = [r for r in ctx.original if _kind(r) in _WORKLOAD_KINDS]
        if deps:
            steps.append(
                Step(
                    "Delete the backends",
                    tuple(
                        f"kubectl delete -n {_ns(r)} {_kind(r).lower()} {_name(r)}" for r in deps
                    ),
                )
            )
    if ctx.client_pod:
        steps.append(
            Step(
                "Delete the client pod",
                (
                    "kubectl delete -f <(istioctl kube-inject -f samples/sleep/sleep.yaml)"
                    if ctx.profile == "0.2"
                    else "kubectl delete deployment,service,serviceaccount curl",
                ),
            )
        )
    if "tracing" in sections and ctx.profile == "current":
        steps.append(
            Step("Stop tracing", ("kubectl -n istio-system delete telemetry mesh-default",))
        )
    if "install" in sections:
        if ctx.profile == "0.2":
            steps.append(
                Step(
                    "Uninstall Istio",
                    (
                        f"helm delete --purge {_SEED_RELEASE}",
                        "kubectl get crd -o name | grep istio.io | xargs kubectl delete",
                    ),
                    f'release "{_SEED_RELEASE}" deleted',
                    "Helm 2 leaves CRDs behind: delete them, or the next install's first step "
                    "finds them already there.",
                )
            )
        else:
            steps.append(
                Step(
                    "Uninstall Istio",
                    (
                        f"helm delete {gw.release} -n {gw.namespace}",
                        "helm delete istiod -n istio-system",
                        "helm delete istio-base -n istio-system",
                        "kubectl get crd -oname | grep --color=never 'istio.io' | "
                        "xargs kubectl delete",
                    ),
                    'release "istiod" uninstalled',
                    "Helm does not delete the CRDs of istio/base: the last line does, and with "
                    "them every Istio resource in the cluster.",
                    "istio.io/latest/docs/setup/install/helm (Uninstall)",
                )
            )
    if "loadbalancer" in sections and not steps:
        steps.append(
            Step("Nothing to undo", (), note="The annotations stay until you remove them.")
        )
    if "capacity" in sections:
        steps.append(
            Step(
                "Back to the old size",
                ("# run the same commands with the previous $NODES and $REPLICAS",),
            )
        )
    return steps


_BUILDERS: dict[str, Callable[[_Ctx], list[Step]]] = {
    "before": _before,
    "install": _install,
    "crds": _crds,
    "tracing": _tracing,
    "workloads": _workloads,
    "rbac": _rbac,
    "plan": _plan,
    "rules": _apply_rules,
    "check": _check,
    "proxyconfig": _proxyconfig,
    "rollback": _rollback,
    "capacity": _capacity,
    "gatewayapi": _gatewayapi,
    "loadbalancer": _load_balancer,
    "securitygroups": _security_groups,
    "route53": _route53,
}


def _display_path(relative_to: str | Path | None) -> Callable[[str], str]:
    base = Path(relative_to) if relative_to is not None else Path.cwd()

    def display(file: str) -> str:
        try:
            rel = os.path.relpath(file, base)
        except ValueError:  # another drive
            return file
        return file if rel.startswith("../../") else rel

    return display


def real_commands(
    config: ConfigSet,
    profile: str | None = "current",
    topic: str = "all",
    *,
    relative_to: str | Path | None = None,
    zipkin_address: str = "stackdriver-zipkin.kube-system:9411",
    namespace: str | None = None,
) -> RealCommands:
    """The real-cluster steps of a topic for a config, as Istio's task pages write them.

    Args:
        config: The resources (loaded from files, or built in code: then the commands carry
            their YAML in a here-document).
        profile: ``"0.2"`` (the seed's Istio) or ``"current"`` (also None, ``latest``, any
            ``1.x``). Legacy resources are converted for ``current``; modern ones have no 0.2
            form, and the result says so in its notes.
        topic: A key of :data:`TOPICS`; ``all`` gives every section.
        relative_to: File names in commands are relative to this folder (default: the
            working directory).
        zipkin_address: Where traces go (default: the seed's Stackdriver collector).
        namespace: The namespace of resources that name none (kubectl's ``-n``; default
            ``default``).

    Returns:
        The steps, by section, cleanup last.

    Raises:
        CommandsError: For an unknown topic or profile.
    """
    token = _DEFAULT_NAMESPACE.set(namespace or "default")
    try:
        return _render(config, profile, topic, relative_to, zipkin_address)
    finally:
        _DEFAULT_NAMESPACE.reset(token)


def _render(
    config: ConfigSet,
    profile: str | None,
    topic: str,
    relative_to: str | Path | None,
    zipkin_address: str,
) -> RealCommands:
    prof = normalize_profile(profile)
    if topic not in _SECTIONS:
        raise CommandsError(f"unknown topic {topic!r}: {', '.join(TOPICS)}")
    legacy = [r for r in config if _legacy(r) or (_kind(r) == "Ingress" and _ingress_istio(r))]
    modern = [r for r in config if _kind(r) in _ROUTING_CURRENT or _gw_api(r)]
    converted = False
    form = config
    notes: list[str] = []
    if prof == "current" and legacy and not modern:
        from istiolab.config.convert import convert

        form = convert(config).config
        converted = True
        notes.append(
            "These are the 0.2 resources converted for a current Istio (what `istiolab convert` "
            "prints)."
        )
    elif prof == "0.2" and modern and not legacy:
        notes.append(
            "Istio 0.2 had no VirtualService, DestinationRule or Gateway (they came with 0.8): "
            "write these rules as RouteRules and an Ingress for a 0.2 cluster."
        )
        form = ConfigSet.of(r for r in config if not (_kind(r) in _ROUTING_CURRENT or _gw_api(r)))
    ctx = _Ctx(
        prof, form, config, converted, _display_path(relative_to), zipkin_address, notes, topic
    )
    keys = _SECTIONS[topic]
    sections: list[Section] = []
    for key in keys:
        steps = _cleanup(ctx, keys) if key == "cleanup" else _BUILDERS[key](ctx)
        if steps:
            sections.append(Section(key, _SECTION_TITLES[key], tuple(steps)))
    applied = ctx.routing if any(k in keys for k in ("rules", "gatewayapi", "plan")) else []
    return RealCommands(
        topic,
        prof,
        TOPICS[topic],
        tuple(sections),
        tuple(dict.fromkeys(ctx.notes)),
        tuple(r.key for r in applied),
    )


def _ingress_istio(r: Resource) -> bool:
    ann = (r.to_dict().get("metadata") or {}).get("annotations") or {}
    return bool(ann.get("kubernetes.io/ingress.class") == "istio")
