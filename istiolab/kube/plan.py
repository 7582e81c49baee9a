"""Plan: what applying a config set would change, checked by the API server itself.

:func:`plan` validates the config set (and refuses on error findings), chooses for every
resource the newest apiVersion the cluster serves, reads the live object, and asks the API
server for a **server-side dry run** of the apply (``dryRun=All``), so admission webhooks,
schema checks and field-manager conflicts are all found before anything changes. Each
:class:`PlanStep` carries a unified YAML diff between the live object and the dry-run result,
with server-managed fields stripped.

Steps come in dependency order (:data:`~istiolab.kube.kinds.APPLY_ORDER`): Gateways and
DestinationRules before the VirtualServices that name them. Services and Deployments in a
config set are read-only context (validation uses them); they are never applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Literal

from istiolab.config.base import Resource
from istiolab.config.configset import ConfigSet
from istiolab.errors import ConfigError
from istiolab.findings import Finding, Severity
from istiolab.kube.adapter import ClusterAdapter, require_istio
from istiolab.kube.errors import ConflictError, FieldConflict, InvalidError
from istiolab.kube.gitops import Manager, managed_by
from istiolab.kube.kinds import (
    APPLY_ORDER,
    GATEWAY_API_GATEWAY,
    KINDS,
    kind_key,
    newest_served,
)
from istiolab.kube.objects import (
    Obj,
    canonical,
    content_digest,
    ownership_digest,
    strip,
    unified_diff,
)

__all__ = [
    "OWN_ANNOTATIONS",
    "Action",
    "Plan",
    "PlanStep",
    "desired_object",
    "drift",
    "plan",
    "recheck",
]

OWN_ANNOTATIONS = ("istiolab.io/backup-id", "istiolab.io/change-cause")
"""Annotations apply adds to the objects it writes (which backup set, why): not diffed."""

Action = Literal["create", "update", "unchanged", "conflict", "rejected"]


@dataclasses.dataclass(frozen=True)
class PlanStep:
    """What happens to one object.

    Attributes:
        kind: Kind.
        namespace: Namespace.
        name: Name.
        api_version: apiVersion it is written with (the newest the cluster serves).
        action: ``create``, ``update``, ``unchanged``, ``conflict`` (fields owned by another
            field manager) or ``rejected`` (the API server, or istiolab, refused it).
        desired: The object sent to server-side apply.
        live: The live object (stripped), None when it does not exist.
        result: The dry-run result (stripped), None when the dry run failed.
        diff: Unified YAML diff, live → result ("" when unchanged).
        conflicts: Per-field conflicts (action ``conflict``).
        error: Why it was rejected (action ``rejected``).
        live_version: The live object's resourceVersion when planned (None: it did not exist).
        live_digest: Digest of the live object's content when planned (labels, annotations,
            spec; :func:`~istiolab.kube.objects.content_digest`).
        live_owners: Digest of its field ownership when planned
            (:func:`~istiolab.kube.objects.ownership_digest`).
        takeover: Conflicts the apply takes over (forced): those the plan showed, and only
            those. Fields istiolab's own rollback wrote are taken over without asking.
        managed: The GitOps controller or Helm release that manages the live object.
    """

    kind: str
    namespace: str
    name: str
    api_version: str
    action: Action
    desired: Obj
    live: Obj | None = None
    result: Obj | None = None
    diff: str = ""
    conflicts: tuple[FieldConflict, ...] = ()
    error: str | None = None
    live_version: str | None = None
    live_digest: str | None = None
    live_owners: str | None = None
    takeover: tuple[FieldConflict, ...] = ()
    managed: Manager | None = None

    @property
    def ref(self) -> str:
        """``Kind/namespace/name``."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def changes(self) -> bool:
        """Whether applying it changes the cluster."""
        return self.action in ("create", "update")


@dataclasses.dataclass(frozen=True)
class Plan:
    """The ordered steps of an apply, checked by a server-side dry run.

    Attributes:
        context: The kubeconfig context.
        namespace: The default namespace (objects may name their own).
        steps: Steps in apply order.
        findings: Validation findings (warnings and infos; errors refuse the plan).
        skipped: Resources of the config set that are not applied, with the reason.
        force: Whether the conflicts the plan shows are taken over (``--force-conflicts``).
        field_manager: The field manager the plan was made with.
    """

    context: str
    namespace: str
    steps: tuple[PlanStep, ...]
    findings: tuple[Finding, ...] = ()
    skipped: tuple[str, ...] = ()
    force: bool = False
    field_manager: str = "istiolab"

    @property
    def changes(self) -> tuple[PlanStep, ...]:
        """Steps that create or update an object."""
        return tuple(s for s in self.steps if s.changes)

    @property
    def conflicts(self) -> tuple[tuple[str, FieldConflict], ...]:
        """``(resource, conflict)`` for every field conflict."""
        return tuple((s.ref, c) for s in self.steps for c in s.conflicts)

    @property
    def rejected(self) -> tuple[PlanStep, ...]:
        """Steps the API server (or istiolab) refused."""
        return tuple(s for s in self.steps if s.action == "rejected")

    @property
    def ok(self) -> bool:
        """No conflict and no rejected step: apply may proceed."""
        return not any(s.action in ("conflict", "rejected") for s in self.steps)

    @property
    def managed(self) -> tuple[PlanStep, ...]:
        """Steps that change an object a GitOps controller or Helm manages."""
        return tuple(s for s in self.steps if s.managed is not None and s.changes)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Namespaces the plan changes, sorted."""
        return tuple(sorted({s.namespace for s in self.changes}))

    def diff(self) -> str:
        """Every step's diff, concatenated."""
        return "".join(s.diff for s in self.steps)

    def format(self, *, diffs: bool = True) -> str:
        """Human summary: one line per step, conflicts and errors, then the diffs."""
        lines = [f'context "{self.context}", namespace "{self.namespace}"']
        width = max((len(s.action) for s in self.steps), default=6)
        for s in self.steps:
            lines.append(f"  {s.action:<{width}}  {s.ref}  ({s.api_version})")
            for c in s.conflicts:
                lines.append(f"      conflict: {c.format()}")
            for c in s.takeover:
                lines.append(f'      taking over {c.field} from "{c.manager}"')
            if s.managed is not None:
                lines.append(f"      warning: {s.managed.format()}")
            if s.error:
                lines.append(f"      {s.error}")
        for note in self.skipped:
            lines.append(f"  skipped  {note}")
        counts = {a: sum(1 for s in self.steps if s.action == a) for a in _ACTIONS}
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing to do"
        lines.append(summary)
        text = "\n".join(lines) + "\n"
        if diffs and self.diff():
            text += "\n" + self.diff()
        return text


_ACTIONS: tuple[Action, ...] = ("create", "update", "unchanged", "conflict", "rejected")


def desired_object(resource: Resource, api_version: str, namespace: str) -> Obj:
    """The object server-side apply is given for *resource*.

    The apiVersion is replaced (the networking versions share one schema), the namespace is
    filled in, and ``status`` and server-managed metadata (from ``kubectl get -o yaml``
    output) are dropped.
    """
    data = resource.to_dict()
    data["apiVersion"] = api_version
    obj = strip(data)
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = namespace
    head: dict[str, Any] = {"apiVersion": api_version, "kind": resource.kind, "metadata": meta}
    head.update({k: v for k, v in obj.items() if k not in head})
    return head


def plan(
    config: ConfigSet,
    cluster: ClusterAdapter,
    *,
    namespace: str | None = None,
    profile: str | None = None,
    force: bool = False,
    suppress: Iterable[str] = (),
) -> Plan:
    """Validate *config*, then dry-run every object against *cluster*.

    Args:
        config: The config set (files loaded with :func:`istiolab.config.load`).
        cluster: The cluster.
        namespace: Namespace for resources without one; default the cluster's.
        profile: Istio profile for validation; default 0.2 for legacy input, else the newest.
        force: Take over the fields other field managers own (``--force-conflicts``). The
            plan lists each of them ("taking over .spec.http from helm"), and the apply takes
            over only those: it is refused if the object changed since.
        suppress: Finding codes to ignore.

    Returns:
        The plan; conflicts and rejections are in its steps, not raised.

    Raises:
        ConfigError: When validation finds errors (nothing is sent to the cluster).
        IstioNotServedError: When the cluster serves no Istio API.
        ApiError: When the cluster refuses to be read or dry-run (403, 401, 5xx).
    """
    from istiolab.config.validate import validate
    from istiolab.envoy.compile import default_profile

    prof = profile if profile is not None else default_profile(config)
    codes = list(suppress)
    findings = validate(config, prof, suppress=codes)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    alone = [f for f in errors if f.code not in CONTEXT_CODES]
    if alone:
        # wrong in itself: refused before any request. Errors about other objects (a subset,
        # a gateway host) are left out: the live cluster may hold those objects.
        raise ConfigError(alone)
    served = require_istio(cluster)
    default_ns = namespace or cluster.namespace
    findings = _validate_with_live_context(config, cluster, served, default_ns, prof, codes)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        raise ConfigError(errors)
    order = {k: i for i, k in enumerate(APPLY_ORDER)}
    writable = [r for r in config if _key(r) in order and KINDS[_key(r)].writable]
    skipped = [
        f"{r.kind}/{r.metadata.namespace or default_ns}/{r.name}: not applied "
        + ("(read-only context)" if _key(r) in KINDS else "(istiolab does not apply this kind)")
        for r in config
        if r not in writable
    ]
    writable.sort(key=lambda r: order[_key(r)])  # stable: input order within a kind
    steps = [_step(r, cluster, served, r.metadata.namespace or default_ns, force) for r in writable]
    return Plan(
        context=cluster.context,
        namespace=default_ns,
        steps=tuple(steps),
        findings=tuple(findings),
        skipped=tuple(skipped),
        force=force,
        field_manager=cluster.field_manager,
    )


CONTEXT_CODES = frozenset({"IL203", "IL206", "IL601", "IL608"})
"""Finding codes that depend on other objects (subsets, gateway hosts, a route's parent
Gateway, a ReferenceGrant), which may be live."""

_LIVE_CONTEXT = ("DestinationRule", "Gateway", GATEWAY_API_GATEWAY, "ReferenceGrant")
"""Kinds read from the cluster as validation context (when served)."""


def _key(resource: Resource) -> str:
    """The kind key of a config resource (:func:`~istiolab.kube.kinds.kind_key`)."""
    return kind_key(resource.kind, resource.api_version)


def _validate_with_live_context(
    config: ConfigSet,
    cluster: ClusterAdapter,
    served: dict[str, tuple[str, ...]],
    default_ns: str,
    profile: str | None,
    suppress: list[str],
) -> list[Finding]:
    """Validate *config* together with the live DestinationRules and Gateways it may name.

    A VirtualService may name subsets of a DestinationRule, or a Gateway, that is already in
    the cluster rather than in the files: those live objects are read (from the namespaces of
    the config and of the gateways it names) and added as context. Only findings about the
    config's own resources are kept.
    """
    from istiolab.config.codecs import RawDocument
    from istiolab.config.configset import from_documents
    from istiolab.config.validate import validate

    namespaces = {r.metadata.namespace or default_ns for r in config}
    for vs in config:
        if vs.kind == "VirtualService":
            for ref in vs.to_dict().get("spec", {}).get("gateways") or []:
                if "/" in str(ref):
                    namespaces.add(str(ref).split("/", 1)[0])
        elif vs.kind in ("HTTPRoute", "GRPCRoute"):
            # a parentRef or backendRef into another namespace: its Gateway or its grant
            spec = vs.to_dict().get("spec", {})
            for ref in [*(spec.get("parentRefs") or []), *_backend_refs(spec)]:
                if isinstance(ref, dict) and ref.get("namespace"):
                    namespaces.add(str(ref["namespace"]))
    own = {(_key(r), r.metadata.namespace or default_ns, r.name) for r in config}
    docs = []
    for kind in _LIVE_CONTEXT:
        if kind not in served:
            continue
        for ns in sorted(namespaces):
            for obj in cluster.list(kind, ns):
                meta = obj.get("metadata") or {}
                if (kind, meta.get("namespace"), meta.get("name")) not in own:
                    docs.append(
                        RawDocument(strip(obj), f"cluster:{kind}/{ns}/{meta.get('name')}", 0, 1)
                    )
    live = from_documents(docs)
    keys = {r.key for r in config} | {f.resource for f in config.findings}
    with_ns = ConfigSet(
        tuple(_with_namespace(r, default_ns) for r in config), config.origins, config.findings
    )
    findings = validate(with_ns + live, profile, suppress=suppress)
    keys |= {r.key for r in with_ns}
    return [f for f in findings if f.resource in keys or f.file not in {d.file for d in docs}]


def _backend_refs(spec: dict[str, Any]) -> list[Any]:
    return [b for rule in spec.get("rules") or [] for b in rule.get("backendRefs") or []]


def _with_namespace(resource: Resource, namespace: str) -> Resource:
    """The resource with its namespace filled in (validation resolves short hosts with it)."""
    if resource.metadata.namespace:
        return resource
    meta = resource.metadata.model_copy(update={"namespace": namespace})
    return resource.model_copy(update={"metadata": meta})


def _step(
    resource: Resource,
    cluster: ClusterAdapter,
    served: dict[str, tuple[str, ...]],
    namespace: str,
    force: bool,
) -> PlanStep:
    kind, name = _key(resource), resource.name
    version = newest_served(kind, served)
    info = KINDS[kind]
    if info.gateway_api and version is not None and resource.api_version not in served[kind]:
        # the Gateway API's versions differ in schema (GRPCRoute v1alpha2/v1, fields added per
        # release): written only in a version the cluster serves, never converted
        desired = desired_object(resource, resource.api_version, namespace)
        return PlanStep(
            kind,
            namespace,
            name,
            resource.api_version,
            "rejected",
            desired,
            error=f"the cluster serves {resource.kind} only as {', '.join(served[kind])}, "
            f"not {resource.api_version}: write it in a served version, or upgrade the "
            "Gateway API CRDs (https://gateway-api.sigs.k8s.io/guides/#installing-gateway-api)",
        )
    if version is None:
        version = resource.api_version
        desired = desired_object(resource, version, namespace)
        hint = (
            "convert it with `istiolab convert` first"
            if kind in ("RouteRule", "DestinationPolicy")
            else "install the Gateway API CRDs first (kubectl apply -f https://github.com/"
            "kubernetes-sigs/gateway-api/releases/download/v1.3.0/standard-install.yaml), or "
            "convert the routes to VirtualServices with `istiolab convert`"
            if info.gateway_api
            else "install or upgrade Istio first"
        )
        return PlanStep(
            kind,
            namespace,
            name,
            version,
            "rejected",
            desired,
            error=f"the cluster serves no version of {info.k8s_kind} "
            f"({', '.join(info.api_versions)}); {hint}",
        )
    if not info.discovered:
        version = resource.api_version  # Ingress: written as given
    desired = desired_object(resource, version, namespace)
    raw_live = cluster.get(kind, namespace, name, api_version=version)
    live = strip(raw_live) if raw_live is not None else None
    seen: dict[str, Any] = {}
    if raw_live is not None:
        seen = {
            "live_version": str((raw_live.get("metadata") or {}).get("resourceVersion") or "")
            or None,
            "live_digest": content_digest(raw_live),
            "live_owners": ownership_digest(raw_live),
            "managed": managed_by(raw_live),
        }
    takeover: tuple[FieldConflict, ...] = ()
    try:
        try:
            # never forced first: the conflicts a forced apply takes over are shown in the plan
            result = strip(cluster.dry_run_apply(desired, force=False))
        except ConflictError as err:
            own = [c for c in err.conflicts if c.manager == cluster.field_manager]
            others = [c for c in err.conflicts if c.manager != cluster.field_manager]
            if not err.conflicts or (others and not force):
                return PlanStep(
                    kind,
                    namespace,
                    name,
                    version,
                    "conflict",
                    desired,
                    live,
                    conflicts=tuple(others) or err.conflicts,
                    error=None if err.conflicts else str(err),
                    **seen,
                )
            # Fields istiolab's own rollback wrote (a merge patch, an Update by the same field
            # manager: kube-apiserver keeps it apart from istiolab's Apply) are istiolab's to
            # take back; other managers' fields only with force.
            takeover = tuple(own) + tuple(others)
            result = strip(cluster.dry_run_apply(desired, force=True))
    except ConflictError as err:
        return PlanStep(
            kind,
            namespace,
            name,
            version,
            "conflict",
            desired,
            live,
            conflicts=err.conflicts,
            error=None if err.conflicts else str(err),
            **seen,
        )
    except InvalidError as err:
        return PlanStep(
            kind, namespace, name, version, "rejected", desired, live, error=str(err), **seen
        )
    label = f"{kind}/{namespace}/{name}"
    # istiolab's own bookkeeping annotations change with every apply: not a difference
    live, result = _without_own(live), _without_own(result) or result
    if live is None:
        action: Action = "create"
    elif canonical(live) == canonical(result):
        action = "unchanged"
    else:
        action = "update"
    return PlanStep(
        kind,
        namespace,
        name,
        version,
        action,
        desired,
        live,
        result,
        unified_diff(live, result, label),
        takeover=takeover,
        **seen,
    )


def _without_own(obj: Obj | None) -> Obj | None:
    """*obj* without :data:`OWN_ANNOTATIONS` (a copy; None stays None)."""
    if obj is None:
        return None
    ann = (obj.get("metadata") or {}).get("annotations")
    if not isinstance(ann, dict) or not any(k in ann for k in OWN_ANNOTATIONS):
        return obj
    out = dict(obj)
    meta = dict(out["metadata"])
    kept = {k: v for k, v in ann.items() if k not in OWN_ANNOTATIONS}
    if kept:
        meta["annotations"] = kept
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def drift(step: PlanStep, now: Obj | None) -> str | None:
    """What changed in the object since *step* was planned, or None when nothing did.

    The object counts as unchanged when its resourceVersion is the same, or when only its
    ``status`` moved (a controller such as istiod writes it): same content digest and same
    field ownership, so the apply means what the plan showed and conflicts as it did.
    """
    if step.action not in ("create", "update", "unchanged"):
        return None
    if now is None:
        return None if step.live_digest is None else "deleted since the plan"
    if step.live_digest is None:
        return "created by someone else since the plan"
    rv = str((now.get("metadata") or {}).get("resourceVersion") or "") or None
    if rv is not None and rv == step.live_version:
        return None
    if content_digest(now) != step.live_digest:
        return f"its content changed since the plan (resourceVersion {step.live_version} → {rv})"
    if ownership_digest(now) != step.live_owners:
        return (
            f"its field owners changed since the plan (resourceVersion {step.live_version} → {rv})"
        )
    return None


def recheck(p: Plan, cluster: ClusterAdapter) -> tuple[tuple[str, str], ...]:
    """Read every object the plan changes again; ``(ref, what changed)`` for those that drifted.

    Call it after the plan was approved and before anything is written: an edit made while the
    confirmation was open must not be overwritten by the approved diff.

    Raises:
        ApiError: When an object cannot be read.
    """
    out: list[tuple[str, str]] = []
    for step in p.changes:
        now = cluster.get(step.kind, step.namespace, step.name, api_version=step.api_version)
        what = drift(step, now)
        if what is not None:
            out.append((step.ref, what))
    return tuple(out)
