"""Istio's own translation as the compiler's oracle: our route table against Pilot's.

``peers/bin/gateway-routes`` (built from ``peers/istio/`` with ``make peers``; it needs Go) runs
Istio's Pilot in-process, through ``istio.io/istio/pilot/test/xds``, and prints the Envoy
RouteConfigurations istiod would push to an ingress gateway (or, with ``-proxy sidecar``, to a
sidecar) for a set of configs. This module feeds it the same config that
:func:`istiolab.envoy.compile.compile` compiles, brings both route tables to one comparable
shape and compares them route by route: order, matches, weights and clusters, timeouts, retry
policy, header operations, redirects, direct responses, rewrites, faults, mirrors, hash policies
and route-level rate limits.

What is compared is what Envoy acts on. Istio's own decorations (route metadata, the
``decorator`` operation name, ``maxGrpcTimeout``, ``includeRequestAttemptCount``) carry no
routing meaning and are left out; Envoy's defaults are filled in on both sides (an absent
``retryBackOff`` is 25 ms/250 ms, an absent timeout is ``0s``), and lists whose order Envoy
ignores (header matchers, ``retry_on`` tokens, header operations) are compared as sorted.

Legacy input (RouteRule, Istio Ingress, …) is given to Istio as istiolab converts it: Istio
1.x cannot read Istio 0.2's kinds, so the comparison checks the compiler, not the conversion.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from istiolab.config import codecs
from istiolab.config.base import Resource
from istiolab.config.configset import ConfigSet
from istiolab.config.hosts import fqdn
from istiolab.config.k8s import Service
from istiolab.config.model import DestinationRule, EnvoyFilter, Gateway, VirtualService
from istiolab.envoy.model import MILLION, RouteTable
from istiolab.envoy.render import render_route
from istiolab.errors import IstiolabError
from istiolab.profiles import IstioProfile, get_profile

__all__ = [
    "PEER_ENV",
    "IstioComparison",
    "PeerMissingError",
    "RouteDifference",
    "compare_tables",
    "find_peer",
    "istio_inputs",
    "normalise_istio",
    "normalise_ours",
    "run_peer",
    "verify_against_istio",
]

PEER_ENV = "ISTIOLAB_GATEWAY_ROUTES"
"""Environment variable naming the ``gateway-routes`` binary (overrides the search)."""

PEER_NAME = "gateway-routes"
# The peer answers in about a second; a minute means something is wrong (a hung build lock,
# a swapped-out machine), and the user gets a one-line error instead of a hang.
PEER_TIMEOUT_S = 120.0
# Kinds Istio's config store reads from the config (the rest of networking.istio.io is not
# something istiolab compiles); Services go to the fake Kubernetes registry.
_ISTIO_KINDS = (Gateway, VirtualService, DestinationRule, EnvoyFilter)
_GATEWAY_API_GROUP = "gateway.networking.k8s.io"
_GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
_FAULT = "envoy.filters.http.fault"
_RATELIMIT = "envoy.filters.http.local_ratelimit"
_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": MILLION}
_REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}


class PeerMissingError(IstiolabError):
    """The ``gateway-routes`` peer is not built (or cannot run)."""


@dataclasses.dataclass(frozen=True)
class RouteDifference:
    """One field where our route and Istio's differ.

    Attributes:
        table: The route table (``gateway default/gw:80`` or ``mesh``).
        virtual_host: Virtual host name (``domain:port``).
        index: Position of the route in the virtual host (None: the virtual host itself).
        route: The route's name (ours, else Istio's).
        field: What differs (``match``, ``clusters``, ``timeout``, ``retry``, …).
        ours: Our value, normalised (None: we have no such route or field).
        istio: Istio's value, normalised.
    """

    table: str
    virtual_host: str
    index: int | None
    route: str
    field: str
    ours: Any
    istio: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class IstioComparison:
    """Agreement of our route tables with Istio's translation of the same config.

    Attributes:
        routes: Route positions compared (a route only one side has counts once).
        agree: Positions where every field agrees.
        differ: Every difference, field by field.
        tables: ``{"table", "istio"}``: which of our tables was compared with which of
            Istio's RouteConfigurations.
        notes: What was left out of the comparison, and why.
    """

    routes: int = 0
    agree: int = 0
    differ: list[RouteDifference] = dataclasses.field(default_factory=list)
    tables: list[dict[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing differs."""
        return not self.differ

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"routes", "agree", "differ", "tables", "notes"}``."""
        return {
            "routes": self.routes,
            "agree": self.agree,
            "differ": [d.to_dict() for d in self.differ],
            "tables": list(self.tables),
            "notes": list(self.notes),
        }

    def format(self) -> str:
        """Human form: the counts, then one block per difference."""
        lines = [f"{self.agree}/{self.routes} route(s) agree with Istio's translation"]
        for t in self.tables:
            lines.append(f"  {t['table']}  <->  istio {t['istio']}")
        for d in self.differ:
            where = d.virtual_host if d.index is None else f"{d.virtual_host} #{d.index} {d.route}"
            lines.append(f"  \u2717 {where}: {d.field}")
            lines.append(f"      ours:  {json.dumps(d.ours, sort_keys=True)}")
            lines.append(f"      istio: {json.dumps(d.istio, sort_keys=True)}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        lines.append("OK" if self.ok else f"{len(self.differ)} difference(s)")
        return "\n".join(lines)


# -- the peer ----------------------------------------------------------------------------------


def find_peer() -> Path:
    """Locate ``gateway-routes``: ``$ISTIOLAB_GATEWAY_ROUTES``, ``PATH``, then ``peers/bin``.

    ``peers/bin`` is looked up in the working directory and in the source tree this module
    comes from (an editable install of the repository).

    Raises:
        PeerMissingError: When it is nowhere (the message says how to build it).
    """
    env = os.environ.get(PEER_ENV)
    if env:
        path = Path(env)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise PeerMissingError(
            f"{PEER_ENV}={env} is not an executable file: run `make peers` in istiolab's "
            "repository (needs Go) and point it at peers/bin/gateway-routes"
        )
    found = shutil.which(PEER_NAME)
    if found:
        return Path(found)
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        path = root / "peers" / "bin" / PEER_NAME
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise PeerMissingError(
        f"{PEER_NAME} (Istio's Pilot translation) is not built: run `make peers` in istiolab's "
        f"repository (needs Go), or set {PEER_ENV} to the binary"
    )


def run_peer(
    configs: str,
    objects: str = "",
    *,
    proxy: str = "router",
    labels: Mapping[str, str] | None = None,
    namespace: str = "istio-system",
    peer: Path | None = None,
) -> list[dict[str, Any]]:
    """Run the peer on Istio configs (and Kubernetes objects); return its RouteConfigurations.

    Args:
        configs: Istio configs, multi-document YAML.
        objects: Kubernetes objects (Services), multi-document YAML.
        proxy: ``router`` (an ingress gateway) or ``sidecar``.
        labels: The proxy's pod labels (a gateway's selector).
        namespace: The proxy's namespace.
        peer: The binary (default: :func:`find_peer`).

    Returns:
        The RouteConfigurations, as protobuf JSON (camelCase keys).

    Raises:
        PeerMissingError: No peer, or it could not be started.
        IstiolabError: The peer failed on the config (its error text is in the message).
    """
    binary = peer or find_peer()
    label_text = ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))
    with tempfile.TemporaryDirectory(prefix="istiolab-istio-") as tmp:
        cfg, obj = Path(tmp, "configs.yaml"), Path(tmp, "objects.yaml")
        cfg.write_text(configs, encoding="utf-8")
        obj.write_text(objects, encoding="utf-8")
        cmd = [str(binary), "-config", str(cfg), "-objects", str(obj), "-proxy", proxy]
        cmd += ["-namespace", namespace, "-labels", label_text]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=PEER_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PeerMissingError(f"{binary}: {err}") from None
    if proc.returncode != 0:
        # Pilot logs CRD version complaints at error level that do not matter; the peer's own
        # failure is its "gateway-routes:" line, or a panic of the fake server (a stack follows).
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        cause = [ln for ln in lines if ln.startswith(("panic:", f"{PEER_NAME}:"))] or lines[-1:]
        raise IstiolabError(f"{PEER_NAME} failed (exit {proc.returncode}): {'; '.join(cause)}")
    try:
        data = json.loads(proc.stdout or "null")
    except json.JSONDecodeError as err:
        raise IstiolabError(f"{PEER_NAME} printed no JSON: {err}") from None
    return list(data or [])


def istio_inputs(
    config: ConfigSet,
    services: Iterable[tuple[str, str, int]] = (),
    gateway_services: Iterable[dict[str, Any]] = (),
    crds: Mapping[tuple[str, str, str], Mapping[str, Any]] | None = None,
) -> tuple[str, str]:
    """The config as the peer takes it: ``(istio configs YAML, Kubernetes objects YAML)``.

    Istio's kinds that the compiler reads go to the config store, Services to the registry;
    a resource without a namespace gets ``default``, as ``istiolab`` assumes.

    Args:
        config: The (modern) config.
        services: ``(name, namespace, port)`` of Services to add to the registry.
        gateway_services: Further Kubernetes objects (a Gateway API Gateway's Service).
        crds: ``(group, version, kind) -> openAPIV3Schema``: defaults to fill into Gateway API
            objects, as the API server would.
    """
    crds = crds or {}
    istio: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for res in config:
        if isinstance(res, _ISTIO_KINDS):
            istio.append(_with_namespace(res))
        elif isinstance(res, Service):
            objects.append(_with_namespace(res))
        else:
            doc = _document(res)
            api_version = str(doc.get("apiVersion", ""))
            if api_version.startswith(_GATEWAY_API_GROUP + "/"):
                # istiod reads the Gateway API from Kubernetes, not from its config store
                doc.setdefault("metadata", {}).setdefault("namespace", res.namespace or "default")
                key = (_GATEWAY_API_GROUP, api_version.split("/", 1)[1], str(doc.get("kind")))
                if key in crds:
                    doc = _default(doc, crds[key])
                objects.append(doc)
            elif doc.get("kind") == "Namespace" and doc.get("apiVersion") == "v1":
                objects.append(doc)  # allowedRoutes namespace selectors read their labels
    for name, ns, port in services:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"ports": [{"name": "http", "port": port}]},
            }
        )
    objects.extend(gateway_services)
    return codecs.dumps(istio), codecs.dumps(objects)


def _mesh_hosts(config: ConfigSet, default_port: int) -> dict[str, tuple[int, ...]]:
    """The ports of every mesh VirtualService host: its Service's, else *default_port*."""
    ports = {s.fqdn(): tuple(p.port for p in s.spec.ports) for s in config.kind(Service)}
    out: dict[str, tuple[int, ...]] = {}
    for vs in config.kind(VirtualService):
        if vs.spec.gateways and "mesh" not in vs.spec.gateways:
            continue
        for h in vs.spec.hosts:
            full = fqdn(h, vs.namespace or "default")
            out[full] = ports.get(full) or (default_port,)
    return out


def _compare_mesh(
    config: ConfigSet,
    modern: ConfigSet,
    prof: IstioProfile,
    port: int | None,
    binary: Path,
    res: IstioComparison,
) -> None:
    """The mesh view: each port of each host against a sidecar's RouteConfiguration ``<port>``.

    istiod builds a sidecar virtual host only for a host in its registry, on its Service's
    ports; istiolab's mesh view compiles a VirtualService's hosts for one port whether or not
    the config carries their Services (they are usually in the cluster, not in the routing
    files). So a host without a Service is given one, on the port compiled, and a host is
    compared on the ports its Service has.
    """
    from istiolab.envoy.compile import DEFAULT_PORT
    from istiolab.envoy.compile import compile as do_compile

    hosts = _mesh_hosts(modern, port or DEFAULT_PORT)
    known = {s.fqdn() for s in modern.kind(Service)}
    extra = sorted(
        (h.split(".")[0], h.split(".")[1], ports[0])
        for h, ports in hosts.items()
        if h not in known and h.endswith(".svc.cluster.local") and h.count(".") == 4
    )
    if extra:
        res.notes.append(
            "no Service in the config for "
            + ", ".join(f"{n}.{ns}" for n, ns, _ in extra)
            + f": Istio is given one on port {extra[0][2]} (istiod builds sidecar virtual "
            "hosts only for services it knows)"
        )
    configs, objects = istio_inputs(modern, extra)
    ports = sorted({p for ps in hosts.values() for p in ps if port is None or p == port})
    namespaces = sorted({vs.namespace or "default" for vs in modern.kind(VirtualService)})
    for ns in namespaces or ["default"]:
        rcs = run_peer(configs, objects, proxy="sidecar", namespace=ns, peer=binary)
        by_name = {c.get("name"): c for c in rcs}
        for p in ports:
            table = do_compile(config, prof, None, port=p)
            ours = {
                name: vh
                for name, vh in normalise_ours(table).items()
                if p in hosts.get(name.rsplit(":", 1)[0], ())
                and (len(namespaces) == 1 or _vh_namespace(name) == ns)
            }
            if not ours:
                continue
            res.tables.append({"table": f"{table.name} (sidecar in {ns})", "istio": str(p)})
            compare_tables(
                ours,
                normalise_istio(by_name.get(str(p), {})),
                table=table.name,
                only_ours=True,
                result=res,
            )


def _with_namespace(res: Resource) -> dict[str, Any]:
    doc = _document(res)
    meta = doc.setdefault("metadata", {})
    meta.setdefault("namespace", res.namespace or "default")
    return doc


def _document(res: Resource) -> dict[str, Any]:
    return dict(res.to_dict())


# -- the API server's defaults -----------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _crd_schemas(directory: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``(group, version, kind) -> openAPIV3Schema`` of the CRDs in *directory*'s YAML files."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in codecs.loads(codecs.read_text(path), str(path)):
            crd = doc.data
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd.get("spec") or {}
            for v in spec.get("versions") or []:
                schema = (v.get("schema") or {}).get("openAPIV3Schema")
                if isinstance(schema, dict):
                    key = (spec.get("group", ""), v.get("name", ""), spec["names"]["kind"])
                    out[key] = schema
    return out


def _default(node: Any, schema: Mapping[str, Any]) -> Any:
    """*node* with the schema's ``default`` values filled in, as the API server stores it.

    kube-apiserver applies a CRD's structural defaults on every write (apiextensions-apiserver
    ``structuraldefaulting``); the peer's fake cluster takes objects as written, and istiod's
    Gateway API translation relies on the defaults (a path match without ``type`` is a nil
    pointer to it). So the Gateway API objects get them here, from the CRDs ``make peers``
    copied out of ``sigs.k8s.io/gateway-api``.
    """
    if isinstance(node, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in node and "default" in sub:
                node[key] = json.loads(json.dumps(sub["default"]))
        for key, value in node.items():
            if key in props:
                node[key] = _default(value, props[key])
            elif isinstance(schema.get("additionalProperties"), dict):
                node[key] = _default(value, schema["additionalProperties"])
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [_default(v, schema["items"]) for v in node]
    return node


# -- normal forms ------------------------------------------------------------------------------


def _seconds(text: str | None) -> float:
    """Protobuf JSON duration → seconds (absent: 0)."""
    if not text:
        return 0.0
    return round(float(text.rstrip("s")), 9)


def _per_million(fraction: Mapping[str, Any] | None) -> int:
    if not fraction:
        return 0
    num = int(fraction.get("numerator", 0))
    den = _DENOMINATORS[str(fraction.get("denominator", "HUNDRED"))]
    return num * (MILLION // den)


def _string_match(sm: Mapping[str, Any]) -> list[Any]:
    """``[kind, value, ignore_case]`` of an Envoy StringMatcher (camelCase or snake_case)."""
    ignore = bool(sm.get("ignoreCase", sm.get("ignore_case", False)))
    for kind in ("exact", "prefix", "suffix", "contains"):
        if kind in sm:
            return [kind, sm[kind], ignore]
    regex = sm.get("safeRegex", sm.get("safe_regex"))
    if regex is not None:
        return ["regex", regex.get("regex", ""), False]
    return ["?", json.dumps(sm, sort_keys=True), ignore]


def _header_matcher(h: Mapping[str, Any]) -> list[Any]:
    invert = bool(h.get("invertMatch", h.get("invert_match", False)))
    if h.get("presentMatch", h.get("present_match")):
        kind: list[Any] = ["present", "", False]
    elif "stringMatch" in h or "string_match" in h:
        kind = _string_match(h.get("stringMatch", h.get("string_match", {})))
    elif "exactMatch" in h:
        kind = ["exact", h["exactMatch"], False]
    elif "safeRegexMatch" in h:
        kind = ["regex", h["safeRegexMatch"].get("regex", ""), False]
    elif "prefixMatch" in h:
        kind = ["prefix", h["prefixMatch"], False]
    else:
        kind = ["?", json.dumps(h, sort_keys=True), False]
    return [str(h.get("name", "")).lower(), *kind, invert]


def _route_match(m: Mapping[str, Any]) -> dict[str, Any]:
    if "prefix" in m:
        path: list[Any] = ["prefix", m["prefix"]]
    elif "path" in m:
        path = ["exact", m["path"]]
    elif "safeRegex" in m or "safe_regex" in m:
        path = ["regex", m.get("safeRegex", m.get("safe_regex", {})).get("regex", "")]
    elif "pathSeparatedPrefix" in m or "path_separated_prefix" in m:
        path = [
            "path_separated_prefix",
            m.get("pathSeparatedPrefix", m.get("path_separated_prefix")),
        ]
    else:
        path = ["?", json.dumps(m, sort_keys=True)]
    case = m.get("caseSensitive", m.get("case_sensitive", True))
    if isinstance(case, Mapping):  # protojson wraps BoolValue as a plain bool; be lenient
        case = case.get("value", True)
    if path[0] == "regex":
        case = True  # Envoy ignores case_sensitive for safe_regex
    headers = sorted(_header_matcher(h) for h in m.get("headers", []))
    params = []
    for q in m.get("queryParameters", m.get("query_parameters", [])):
        if q.get("presentMatch", q.get("present_match")):
            qm: list[Any] = ["present", "", False]
        else:
            qm = _string_match(q.get("stringMatch", q.get("string_match", {})))
        params.append([q.get("name", ""), *qm])
    return {
        "path": path,
        "case_sensitive": bool(case),
        "headers": headers,
        "query": sorted(params),
    }


def _header_ops(r: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("request", "response"):
        adds = []
        for h in r.get(f"{side}HeadersToAdd", r.get(f"{side}_headers_to_add", [])):
            hv = h.get("header", {})
            action = h.get("appendAction", h.get("append_action"))
            if action is None:
                # Envoy: a missing append_action is APPEND_IF_EXISTS_OR_ADD, unless the
                # deprecated append is false.
                append = h.get("append", True)
                action = "APPEND_IF_EXISTS_OR_ADD" if append else "OVERWRITE_IF_EXISTS_OR_ADD"
            adds.append([hv.get("key", "").lower(), hv.get("value", ""), action])
        removes = sorted(
            str(x).lower()
            for x in r.get(f"{side}HeadersToRemove", r.get(f"{side}_headers_to_remove", []))
        )
        if adds:
            out[f"{side}_add"] = sorted(adds)
        if removes:
            out[f"{side}_remove"] = removes
    return out


def _retry(rp: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if rp is None:
        return None
    back = rp.get("retryBackOff", rp.get("retry_back_off")) or {}
    base = _seconds(back.get("baseInterval", back.get("base_interval"))) or 0.025
    cap = _seconds(back.get("maxInterval", back.get("max_interval"))) or round(base * 10, 9)
    preds = rp.get("retryHostPredicate", rp.get("retry_host_predicate", []))
    attempts = rp.get("hostSelectionRetryMaxAttempts", rp.get("host_selection_retry_max_attempts"))
    retry_on = {t for t in str(rp.get("retryOn", rp.get("retry_on", ""))).split(",") if t}
    codes = sorted(
        int(c) for c in rp.get("retriableStatusCodes", rp.get("retriable_status_codes", []))
    )
    if not codes:
        # retriable-status-codes with no codes retries nothing (Envoy's RetryStateImpl checks
        # the response code against the list): istiod's default policy writes it so.
        retry_on.discard("retriable-status-codes")
    return {
        "num_retries": int(rp.get("numRetries", rp.get("num_retries", 1))),
        "retry_on": sorted(retry_on),
        "retriable_status_codes": codes,
        "per_try_timeout": _seconds(rp.get("perTryTimeout", rp.get("per_try_timeout"))),
        "previous_hosts": any(
            p.get("name") == "envoy.retry_host_predicates.previous_hosts" for p in preds
        ),
        "host_selection_retry_max_attempts": int(attempts or 0),
        "backoff": [base, cap],
    }


def _fault(cfg: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not cfg:
        return None
    out: dict[str, Any] = {}
    delay = cfg.get("delay")
    if delay:
        out["delay"] = [
            _seconds(delay.get("fixedDelay", delay.get("fixed_delay"))),
            _per_million(delay.get("percentage")),
        ]
    abort = cfg.get("abort")
    if abort:
        out["abort"] = [
            abort.get("httpStatus", abort.get("http_status")),
            _per_million(abort.get("percentage")),
        ]
    return out or None


def _rate_limit(cfg: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not cfg:
        return None
    if str(cfg.get("@type", "")).endswith("TypedStruct"):
        # An EnvoyFilter patch's TypedStruct reaches Envoy as written; the bucket is its value.
        cfg = cfg.get("value") or {}
    tb = cfg.get("tokenBucket", cfg.get("token_bucket")) or {}
    enabled = cfg.get("filterEnabled", cfg.get("filter_enabled")) or {}
    enforced = cfg.get("filterEnforced", cfg.get("filter_enforced")) or {}
    return {
        "max_tokens": int(tb.get("maxTokens", tb.get("max_tokens", 0))),
        "tokens_per_fill": int(tb.get("tokensPerFill", tb.get("tokens_per_fill", 1))),
        "fill_interval": _seconds(tb.get("fillInterval", tb.get("fill_interval"))),
        "enabled": _per_million(enabled.get("defaultValue", enabled.get("default_value"))),
        "enforced": _per_million(enforced.get("defaultValue", enforced.get("default_value"))),
    }


def _hash_policy(policies: Sequence[Mapping[str, Any]] | None) -> list[Any] | None:
    if not policies:
        return None
    p = policies[0]
    if "header" in p:
        return [
            "header",
            str(p["header"].get("headerName", p["header"].get("header_name"))).lower(),
        ]
    if "cookie" in p:
        return ["cookie", p["cookie"].get("name")]
    if "connectionProperties" in p or "connection_properties" in p:
        return ["source_ip", ""]
    if "queryParameter" in p or "query_parameter" in p:
        return ["query", p.get("queryParameter", p.get("query_parameter", {})).get("name")]
    return ["?", json.dumps(p, sort_keys=True)]


def normalise_route(r: Mapping[str, Any]) -> dict[str, Any]:
    """One Envoy route (protobuf JSON, camelCase or snake_case) in the comparable shape.

    Returns:
        ``{"name", "match", "action", …}``: the action is ``{"clusters": [[name, weight]]}``,
        ``{"redirect": …}`` or ``{"direct_response": …}``; route-action policies (timeout,
        retry, mirrors, rewrite, hash policy) and per-filter policies (fault, rate limit) and
        header operations sit beside it.
    """
    out: dict[str, Any] = {"name": r.get("name", ""), "match": _route_match(r.get("match", {}))}
    per_filter = r.get("typedPerFilterConfig", r.get("typed_per_filter_config")) or {}
    if "redirect" in r:
        rd = r["redirect"]
        code = rd.get("responseCode", rd.get("response_code", "MOVED_PERMANENTLY"))
        out["redirect"] = {
            "code": _REDIRECT_CODES.get(str(code), code),
            # an empty path_redirect keeps the path (Envoy's RouteEntryImplBase applies it only
            # when it is not empty; istiod writes "" for a Gateway API redirect without a path)
            "path": rd.get("pathRedirect", rd.get("path_redirect")) or None,
            "host": rd.get("hostRedirect", rd.get("host_redirect")) or None,
            "port": rd.get("portRedirect", rd.get("port_redirect")) or None,
            "scheme": rd.get("schemeRedirect", rd.get("scheme_redirect")) or None,
            "prefix": rd.get("prefixRewrite", rd.get("prefix_rewrite")),
        }
    elif "directResponse" in r or "direct_response" in r:
        dr = r.get("directResponse", r.get("direct_response", {}))
        body = dr.get("body") or {}
        out["direct_response"] = {
            "status": int(dr.get("status", 0)),
            "body": body.get("inlineString", body.get("inline_string", "")),
        }
    else:
        a = r.get("route", {})
        if "cluster" in a:
            clusters = [[a["cluster"], 100]]
        else:
            wc = a.get("weightedClusters", a.get("weighted_clusters", {}))
            clusters = [[c["name"], int(c.get("weight", 0))] for c in wc.get("clusters", [])]
        out["clusters"] = clusters
        out["timeout"] = _seconds(a.get("timeout"))
        out["retry"] = _retry(a.get("retryPolicy", a.get("retry_policy")))
        mirrors = a.get("requestMirrorPolicies", a.get("request_mirror_policies", []))
        out["mirrors"] = [
            [
                m.get("cluster"),
                _per_million(
                    (m.get("runtimeFraction", m.get("runtime_fraction")) or {}).get(
                        "defaultValue",
                        (m.get("runtimeFraction", m.get("runtime_fraction")) or {}).get(
                            "default_value"
                        ),
                    )
                )
                if (m.get("runtimeFraction") or m.get("runtime_fraction"))
                else MILLION,
            ]
            for m in mirrors
        ]
        regex = a.get("regexRewrite", a.get("regex_rewrite")) or None
        out["rewrite"] = {
            "prefix": a.get("prefixRewrite", a.get("prefix_rewrite")),
            "regex": [
                (regex.get("pattern") or {}).get("regex"),
                regex.get("substitution"),
            ]
            if regex
            else None,
            "authority": a.get("hostRewriteLiteral", a.get("host_rewrite_literal")),
        }
        # Envoy's default for a route to a cluster it does not know is 503
        out["cluster_not_found"] = a.get(
            "clusterNotFoundResponseCode",
            a.get("cluster_not_found_response_code", "SERVICE_UNAVAILABLE"),
        )
        out["hash_policy"] = _hash_policy(a.get("hashPolicy", a.get("hash_policy")))
    out["fault"] = _fault(per_filter.get(_FAULT))
    out["rate_limit"] = _rate_limit(per_filter.get(_RATELIMIT))
    out["headers"] = _header_ops(r)
    return out


def normalise_istio(route_config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Istio's RouteConfiguration → ``{virtual host name: {"domains", "routes"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for vh in route_config.get("virtualHosts", route_config.get("virtual_hosts", [])):
        out[vh["name"]] = {
            "domains": sorted(vh.get("domains", [])),
            "routes": [normalise_route(r) for r in vh.get("routes", [])],
        }
    return out


def normalise_ours(table: RouteTable) -> dict[str, dict[str, Any]]:
    """Our route table → the shape of :func:`normalise_istio`, through our own rendering."""
    return {
        vh.name: {
            "domains": sorted(vh.domains),
            "routes": [normalise_route(render_route(r)) for r in vh.routes],
        }
        for vh in table.virtual_hosts
    }


# -- the comparison ----------------------------------------------------------------------------


def _route_fields(r: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(r)
    fields.pop("name", None)
    # Istio omits what is empty; so do we, for an honest field-by-field diff.
    return fields


def compare_tables(
    ours: Mapping[str, Mapping[str, Any]],
    istio: Mapping[str, Mapping[str, Any]],
    *,
    table: str,
    only_ours: bool = False,
    result: IstioComparison | None = None,
) -> IstioComparison:
    """Compare two normalised tables virtual host by virtual host, route by route.

    Args:
        ours: :func:`normalise_ours` of our table.
        istio: :func:`normalise_istio` of Istio's RouteConfiguration.
        table: Our table's name, for the report.
        only_ours: Compare only the virtual hosts we have (a sidecar's RouteConfiguration
            also holds a virtual host for every other Service of the registry).
        result: Accumulate into this comparison (default: a new one).

    Returns:
        The comparison.
    """
    res = result if result is not None else IstioComparison()
    # istiod gives a gateway port with no route a virtual host "blackhole:<port>" without
    # routes; Envoy answers 404 (no route) to it, as to a port without virtual hosts.
    istio = {
        k: v for k, v in istio.items() if k in ours or v["routes"] or not k.startswith("blackhole:")
    }
    names = list(ours) + [n for n in istio if n not in ours and not only_ours]
    for vh in names:
        mine, theirs = ours.get(vh), istio.get(vh)
        if mine is None or theirs is None:
            count = len((mine or theirs or {}).get("routes", []))
            res.routes += count
            res.differ.append(
                RouteDifference(
                    table,
                    vh,
                    None,
                    "",
                    "virtual_host",
                    mine["domains"] if mine else None,
                    theirs["domains"] if theirs else None,
                )
            )
            continue
        if mine["domains"] != theirs["domains"]:
            res.differ.append(
                RouteDifference(table, vh, None, "", "domains", mine["domains"], theirs["domains"])
            )
        a, b = mine["routes"], theirs["routes"]
        for i in range(max(len(a), len(b))):
            res.routes += 1
            ra = a[i] if i < len(a) else None
            rb = b[i] if i < len(b) else None
            name = str((ra or rb or {}).get("name", ""))
            if ra is None or rb is None:
                res.differ.append(
                    RouteDifference(
                        table,
                        vh,
                        i,
                        name,
                        "route",
                        ra and _short(ra),
                        rb and _short(rb),
                    )
                )
                continue
            fa, fb = _route_fields(ra), _route_fields(rb)
            diffs = [
                RouteDifference(table, vh, i, name, k, fa.get(k), fb.get(k))
                for k in dict.fromkeys([*fa, *fb])
                if fa.get(k) != fb.get(k)
            ]
            if diffs:
                res.differ.extend(diffs)
            else:
                res.agree += 1
    return res


def _short(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": r.get("name"), "match": r.get("match")}


def _gateway_groups(gateways: Iterable[Gateway]) -> list[tuple[dict[str, str], list[Gateway]]]:
    groups: dict[tuple[tuple[str, str], ...], list[Gateway]] = {}
    for g in gateways:
        groups.setdefault(tuple(sorted(g.spec.selector.items())), []).append(g)
    return [(dict(k), v) for k, v in groups.items()]


def verify_against_istio(
    config: ConfigSet,
    *,
    gateway: str | None = None,
    port: int | None = None,
    profile: IstioProfile | str | None = None,
    peer: Path | None = None,
) -> IstioComparison:
    """Compile *config* with istiolab and with Istio's Pilot; compare the route tables.

    Every Gateway selector of the config is one ingress gateway proxy (gateways that share a
    selector are merged, as istiod merges them); for each of its plain-HTTP ports our table
    is compared with Istio's RouteConfiguration ``http.<port>``. A config without a Gateway is
    compared as the mesh: Istio's sidecar RouteConfiguration for the port, virtual host by
    virtual host for the hosts we compile.

    Args:
        config: The loaded config (legacy input is converted first, as ``compile`` does).
        gateway: Only this gateway (``namespace/name`` or ``name``).
        port: Only this port.
        profile: istiolab's profile (default: the newest, the Istio the peer is built from).
        peer: The ``gateway-routes`` binary (default: :func:`find_peer`).

    Returns:
        The comparison.

    Raises:
        PeerMissingError: The peer is not built.
        ConfigError: The config has errors (as :func:`~istiolab.envoy.compile.compile`).
        CompileError: The gateway or port asked for is not in the config.
        IstiolabError: The peer failed.
    """
    from istiolab.envoy.compile import compile as do_compile
    from istiolab.envoy.compile import is_legacy

    binary = peer or find_peer()
    prof = get_profile(profile)
    res = IstioComparison()
    modern = config
    if is_legacy(config):
        from istiolab.config.convert import convert

        modern = convert(config, prof, modern_defaults=True).config
        res.notes.append("legacy input: Istio is given istiolab's conversion of it")
    from istiolab.envoy import gatewayapi

    api_gateways = gatewayapi.gateways_for(modern, gateway)
    if api_gateways:
        _compare_gateway_api(config, modern, api_gateways, prof, port, binary, res)
        return res
    gateways = modern.kind(Gateway)
    if gateway is not None:
        # compile() resolves and checks the name; the peer then runs for its selector only.
        table = do_compile(config, prof, gateway, port=port)
        ref = gateway.split("/")[-1]
        gateways = [g for g in gateways if g.name == ref]
    if not gateways:
        _compare_mesh(config, modern, prof, port, binary, res)
        return res
    for labels, group in _gateway_groups(gateways):
        others = {id(g) for g in modern.kind(Gateway)} - {id(g) for g in group}
        sub = ConfigSet.of(r for r in modern if id(r) not in others)
        ports = sorted(
            {
                s.port.number
                for g in group
                for s in g.spec.servers
                if s.port.protocol.upper() in ("HTTP", "HTTP2", "GRPC")
            }
        )
        skipped = sorted(
            {
                s.port.number
                for g in group
                for s in g.spec.servers
                if s.port.protocol.upper() == "HTTPS"
            }
            - set(ports)
        )
        if skipped:
            res.notes.append(
                f"HTTPS port(s) {skipped} of {_names(group)} not compared (Istio names their "
                "routes per server and needs TLS credentials)"
            )
        if port is not None:
            ports = [p for p in ports if p == port]
        if not ports:
            continue
        # The proxy runs in the gateway's namespace: istiod applies an EnvoyFilter to the
        # workloads of its own namespace (and the root namespace's to all), and istiolab applies
        # the config's EnvoyFilters to its gateway.
        gw_ns = sorted({g.namespace or "default" for g in group})
        configs, objects = istio_inputs(modern)
        rcs = run_peer(
            configs,
            objects,
            proxy="router",
            labels=labels,
            namespace=gw_ns[0] if len(gw_ns) == 1 else "istio-system",
            peer=binary,
        )
        by_name = {c.get("name"): c for c in rcs}
        for p in ports:
            table = do_compile(sub, prof, None, port=p)
            istio_name = f"http.{p}"
            res.tables.append({"table": table.name, "istio": istio_name})
            compare_tables(
                normalise_ours(table),
                normalise_istio(by_name.get(istio_name, {})),
                table=table.name,
                result=res,
            )
    return res


def _compare_gateway_api(
    config: ConfigSet,
    modern: ConfigSet,
    gateways: Sequence[Any],
    prof: IstioProfile,
    port: int | None,
    binary: Path,
    res: IstioComparison,
) -> None:
    """Kubernetes Gateway API Gateways: one gateway proxy each, as istiod deploys them.

    Istio's deployment controller gives each Gateway a Deployment labelled
    ``gateway.networking.k8s.io/gateway-name: <name>`` and a Service ``<name>-istio`` in front
    of it; the peer gets that Service and runs a proxy with that label in the Gateway's
    namespace (istiod reads the Gateway's addresses from the Service).
    """
    from istiolab.envoy.compile import compile as do_compile

    crd_dir = binary.parent / "crds" / "gateway-api"
    crds = _crd_schemas(crd_dir) if crd_dir.is_dir() else {}
    if not crds:
        res.notes.append(
            f"no Gateway API CRDs in {crd_dir}: objects go to Istio without the API server's "
            "defaults (run `make peers`)"
        )
    for gw in gateways:
        ns = gw.namespace or "default"
        http = sorted(
            {int(ln.port) for ln in gw.spec.listeners if ln.protocol.upper() in ("HTTP", "HTTPS")}
        )
        ports = [p for p in http if port is None or p == port]
        if not ports:
            continue
        labels = {_GATEWAY_NAME_LABEL: gw.name}
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{gw.name}-istio", "namespace": ns, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": f"port-{p}", "port": p} for p in http],
            },
        }
        configs, objects = istio_inputs(modern, gateway_services=[service], crds=crds)
        rcs = run_peer(configs, objects, proxy="router", labels=labels, namespace=ns, peer=binary)
        for p in ports:
            table = do_compile(config, prof, f"{ns}/{gw.name}", port=p)
            # Istio names a Gateway API listener's RouteConfiguration after the port its
            # Deployment's container listens on; the virtual hosts carry the listener's port.
            rc = next(
                (
                    c
                    for c in rcs
                    if c.get("virtualHosts")
                    and all(v["name"].endswith(f":{p}") for v in c["virtualHosts"])
                ),
                {},
            )
            res.tables.append({"table": table.name, "istio": str(rc.get("name", "none"))})
            compare_tables(normalise_ours(table), normalise_istio(rc), table=table.name, result=res)


def _names(gateways: Iterable[Gateway]) -> str:
    return ", ".join(f"{g.namespace or 'default'}/{g.name}" for g in gateways)


def _vh_namespace(vhost: str) -> str | None:
    # Mesh virtual hosts are <name>.<namespace>.svc.cluster.local:<port>.
    parts = vhost.split(":")[0].split(".")
    return parts[1] if len(parts) > 2 and parts[2] == "svc" else None
