"""The CRD schemas as an oracle for ``lint``: what the real API server refuses, lint must refuse.

Every document of the suite's fixtures and hostile inputs (``tests/data``, the conformance
configs, ``examples/``, the bad-input cases of ``tests/test_findings.py``, the refused and
nearest-valid values of ``tests/hostile/test_lint_values.py``, and both configs of every
analyzer pair in ``tests/analyzer`` and ``tests/gatewayapi/test_lint.py``), plus a bounded number of
Hypothesis mutations of valid configs, is sent to the session's kube-apiserver as a
server-side dry-run create (``dryRun=All``, ``fieldValidation=Strict`` as ``kubectl apply``
sends it) against the real Istio and Gateway API CRDs (OpenAPI v3 schemas and CEL rules), and
linted by istiolab. Refused by the server must mean an error finding of ``lint`` on that
resource with the same field path; every exception is in :data:`KNOWN_DIFFERENCES` with its
reason. The other direction (lint errors the server accepts) is counted and reported: those
are the findings istiolab adds to what the schema can say.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import textwrap
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from istiolab.config import loads
from istiolab.config.validate import validate
from istiolab.findings import Finding, Severity

from .apiserver import ApiServer, Peers

pytestmark = [pytest.mark.peers, pytest.mark.xdist_group("peers")]

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
MUTATIONS = 200  # Hypothesis examples (fixed seed): about 15 s on the project's machine


def _pattern(path: str) -> str:
    """A field path with list indices generalised (``spec.http[0]`` → ``spec.http[]``)."""
    return re.sub(r"\[\d+\]", "[]", path)


# (kind, field path pattern) -> why the server refuses it and lint does not, or lint's error is
# at another path. Empty: every such difference the corpus and the mutations showed was fixed in
# lint (Service and Deployment rules of the API server, Gateway port names, Gateway API
# hostnames and duplicate listeners, uint64 read as int64, durations over CEL's int64
# nanoseconds). A new one must be listed here with its reason, and fixed in lint.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


# The entries only the Hypothesis mutations show (the corpus has no such document).
FOUND_BY_MUTATIONS: set[tuple[str, str]] = set()


@dataclasses.dataclass
class Outcome:
    """One document: what the server said and what lint said."""

    source: str
    kind: str
    refused: bool
    server_fields: list[str]
    server_message: str
    errors: list[Finding]

    @property
    def same_path(self) -> bool:
        ours = {f.path for f in self.errors}
        return any(_related(s, o) for s in self.server_fields for o in ours)

    @property
    def disagrees(self) -> bool:
        """Refused, and lint has no error there (or only at an unrelated path)."""
        if not self.refused:
            return False
        return not self.errors or bool(self.server_fields and not self.same_path)

    def key(self) -> tuple[str, str]:
        field = self.server_fields[0] if self.server_fields else ""
        return (self.kind, _pattern(field))


def _related(server: str, ours: str) -> bool:
    """Same field: equal, or one names a field inside the other (``spec.x`` and ``spec.x.y``)."""
    if server == ours:
        return True
    for a, b in ((server, ours), (ours, server)):
        if a and b.startswith(a) and b[len(a)] in ".[":
            return True
    return False


# -- the server side -----------------------------------------------------------------------------


_CONSEQUENCE = "some validation rules were not checked"
_FIELD_IN_MESSAGE = re.compile(r'(?:\bin |")((?:spec|metadata)\b[^\s"]*)')


class Server:
    """Dry-run creates through one API server, with its discovery cached."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}
        self._namespaces: set[str] = {NAMESPACE}

    def resource(self, api_version: str, kind: str) -> tuple[str, bool] | None:
        """``(plural, namespaced)`` of a kind the server serves, else None."""
        if api_version not in self._resources:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            status, body = self.api.request("GET", path)
            found: dict[str, tuple[str, bool]] = {}
            if status == 200 and isinstance(body, dict):
                for r in body.get("resources", []):
                    if "/" not in r["name"]:
                        found[r["kind"]] = (r["name"], bool(r["namespaced"]))
            self._resources[api_version] = found
        return self._resources[api_version].get(kind)

    def dry_run(self, doc: dict[str, Any]) -> tuple[bool, list[str], str] | None:
        """``(refused, field paths, message)`` of a dry-run create; None if not served."""
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return None
        found = self.resource(api_version, kind)
        if found is None:
            return None
        plural, namespaced = found
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        body = copy.deepcopy(doc)
        meta = body.get("metadata")
        ns = NAMESPACE
        if isinstance(meta, dict) and isinstance(meta.get("namespace"), str):
            ns = meta["namespace"] or NAMESPACE  # "" is no namespace, as kubectl reads it
        if namespaced:
            self._namespace(ns)
            url = f"{base}/namespaces/{urllib.parse.quote(ns, safe='')}/{plural}"
        else:
            url = f"{base}/{plural}"
        status, answer = self.api.request("POST", f"{url}?dryRun=All&fieldValidation=Strict", body)
        if status in (200, 201):
            return False, [], ""
        if status == 409:  # AlreadyExists can only come from a name another document used
            return False, [], ""
        message = answer.get("message", "") if isinstance(answer, dict) else str(answer)
        if status == 404 and namespaced:
            # The namespace does not exist: not a name Kubernetes takes (we create the others)
            return True, ["metadata.namespace"], message[:600]
        causes = (answer.get("details") or {}).get("causes", []) if isinstance(answer, dict) else []
        fields = []
        for c in causes:
            text = str(c.get("message", ""))
            if _CONSEQUENCE in text:
                continue  # "some validation rules were not checked": another cause's echo
            field = str(c.get("field", ""))
            if field in ("", "<nil>"):
                # A CEL rule or a format check on the whole object names its field in the
                # message: 'must be of type integer with format int32 in spec.priority'.
                named = _FIELD_IN_MESSAGE.search(text)
                field = named.group(1).rstrip(".") if named else ""
            if field:
                fields.append(field)
        fields += [m.lstrip(".") for m in re.findall(r'unknown field "([^"]+)"', message)]
        fields += [m.lstrip(".") for m in re.findall(r'duplicate field "([^"]+)"', message)]
        return True, sorted(set(fields)), message[:600]

    def _namespace(self, ns: str) -> None:
        if ns in self._namespaces or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", ns):
            return
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        self.api.request("POST", "/api/v1/namespaces", body)
        self._namespaces.add(ns)


# -- the corpus ----------------------------------------------------------------------------------


def _files() -> Iterator[tuple[str, str]]:
    roots = [REPO / "tests" / "data", REPO / "tests" / "conformance" / "configs", REPO / "examples"]
    for root in roots:
        for path in sorted(root.rglob("*.yaml")):
            if path.name.endswith(".cases.yaml") or "envoy" in path.parts[-2:]:
                continue
            yield str(path.relative_to(REPO)), path.read_text(encoding="utf-8")


def _suite_inputs() -> Iterator[tuple[str, str]]:
    import test_findings  # tests/ is on sys.path (tests/peers is a package under it)
    from hostile import test_lint_values as hostile

    for param in test_findings.CASES + test_findings.EXTRA_CASES:
        c = test_findings.case_of(param)
        yield f"test_findings[{param.id}]", c.text
    for rule in hostile.RULES:
        for which in ("bad", "good"):
            yield f"hostile[{rule.id}-{which}]", hostile.text_of(rule, which)
    # the broken and correct config of every analyzer check, Istio's and the Gateway API's
    from analyzer import common

    for family in common.FAMILIES:
        module = __import__(f"analyzer.test_{family}", fromlist=["PAIRS"])
        for param in module.PAIRS:
            p: Any = param.values[0]
            yield f"analyzer/{family}[{param.id}]-bad", p.bad
            yield f"analyzer/{family}[{param.id}]-good", p.good
    from gatewayapi import test_lint as gateway_api

    for param in gateway_api.PAIRS:
        g: Any = param.values[0]
        yield f"gatewayapi[{param.id}]-bad", textwrap.dedent(g.bad).lstrip("\n")
        yield f"gatewayapi[{param.id}]-good", textwrap.dedent(g.good).lstrip("\n")


def _documents(text: str) -> list[dict[str, Any]]:
    """The text's documents as plain data (what kubectl would send); [] when it is not YAML."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []
    except RecursionError:
        return []
    out: list[dict[str, Any]] = []
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "List" and isinstance(d.get("items"), list):
            out.extend(i for i in d["items"] if isinstance(i, dict))
        elif isinstance(d, dict):
            out.append(d)
    return out


def _json_safe(doc: Any) -> bool:
    try:
        json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _resource_of(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return f"{doc.get('kind')}/{meta.get('namespace') or NAMESPACE}/{meta.get('name')}"


def judge(server: Server, source: str, text: str) -> list[Outcome]:
    """Each served document of *text*: the server's verdict and lint's errors on it."""
    docs = [d for d in _documents(text) if _json_safe(d)]
    if not docs:
        return []
    try:
        findings = validate(loads(text, file="corpus.yaml"))
    except RecursionError:
        return []
    errors = [f for f in findings if f.severity is Severity.ERROR]
    out = []
    for doc in docs:
        verdict = server.dry_run(doc)
        if verdict is None:
            continue
        refused, fields, message = verdict
        resource = _resource_of(doc)
        # Errors on this resource, or on no resource (a document lint could not read at all).
        mine = [f for f in errors if f.resource in (resource, "", "corpus.yaml") or len(docs) == 1]
        out.append(Outcome(source, str(doc.get("kind")), refused, fields, message, mine))
    return out


@dataclasses.dataclass
class Tally:
    """The agreement, both ways."""

    documents: int = 0
    refused: int = 0
    refused_with_error_same_path: int = 0
    refused_with_error_other_path: int = 0
    refused_without_error: int = 0
    accepted: int = 0
    accepted_with_error: int = 0
    accepted_clean: int = 0
    codes_server_accepts: Counter[str] = dataclasses.field(default_factory=Counter)
    disagreements: list[Outcome] = dataclasses.field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.documents += 1
        if o.refused:
            self.refused += 1
            if not o.errors:
                self.refused_without_error += 1
                self.disagreements.append(o)
            elif o.same_path or not o.server_fields:
                self.refused_with_error_same_path += 1
            else:
                self.refused_with_error_other_path += 1
                self.disagreements.append(o)
        else:
            self.accepted += 1
            if o.errors:
                self.accepted_with_error += 1
                self.codes_server_accepts.update({f.code for f in o.errors})
            else:
                self.accepted_clean += 1

    def report(self, title: str) -> str:
        lines = [
            f"{title}: {self.documents} document(s) sent to kube-apiserver",
            f"  refused by the server: {self.refused}",
            f"    lint error, same field path:  {self.refused_with_error_same_path}",
            f"    lint error, other field path: {self.refused_with_error_other_path}",
            f"    no lint error:                {self.refused_without_error}",
            f"  accepted by the server: {self.accepted}",
            f"    lint clean:                   {self.accepted_clean}",
            f"    lint error (istiolab's own):  {self.accepted_with_error}"
            + (
                "  ["
                + ", ".join(f"{c}x{n}" for c, n in sorted(self.codes_server_accepts.items()))
                + "]"
                if self.codes_server_accepts
                else ""
            ),
        ]
        for o in self.disagreements:
            ours = "; ".join(f"{f.code} {f.path}" for f in o.errors) or "no error"
            lines.append(
                f"  ! {o.source} {o.kind} {o.server_fields or ['-']}: {o.server_message[:160]}"
                f" | lint: {ours}"
            )
        return "\n".join(lines)


def _unexplained(tally: Tally) -> list[str]:
    return [
        f"{o.source}: {o.kind} {o.server_fields} refused ({o.server_message[:200]}); lint: "
        + ("; ".join(f"{f.code} {f.path}" for f in o.errors) or "no error")
        for o in tally.disagreements
        if o.key() not in KNOWN_DIFFERENCES
    ]


@pytest.fixture(scope="module")
def server(peers: Peers) -> Server:
    return Server(peers.apiserver)


def test_every_document_the_server_refuses_is_a_lint_error_at_its_path(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = Tally()
    for source, text in [*_files(), *_suite_inputs()]:
        for o in judge(server, source, text):
            tally.add(o)
    with capsys.disabled():
        print("\n" + tally.report("CRD oracle, corpus"))
    # Not vacuous: the corpus has documents the server refuses and documents it accepts.
    assert tally.refused > 20
    assert tally.accepted > 50
    unexplained = _unexplained(tally)
    assert not unexplained, "\n".join(unexplained)
    seen = {o.key() for o in tally.disagreements}
    stale = [k for k in KNOWN_DIFFERENCES if k not in seen and k not in FOUND_BY_MUTATIONS]
    assert not stale, f"KNOWN_DIFFERENCES entries the corpus no longer shows: {stale}"


# -- Hypothesis mutations of valid configs ---------------------------------------------------------

BASES = [
    textwrap.dedent(t)
    for t in (
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: default}
        spec:
          hosts: [web]
          gateways: [gw]
          http:
          - name: canary
            match:
            - uri: {prefix: /api}
              headers: {x-user: {exact: alice}}
            route:
            - destination: {host: web, subset: v1, port: {number: 8080}}
              weight: 90
            - destination: {host: web, subset: v2, port: {number: 8080}}
              weight: 10
            timeout: 5s
            retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
            fault:
              abort: {httpStatus: 503, percentage: {value: 10}}
          - redirect: {uri: /new, redirectCode: 301}
        """,
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: web, namespace: default}
        spec:
          host: web
          trafficPolicy:
            loadBalancer: {simple: LEAST_REQUEST}
            connectionPool:
              tcp: {maxConnections: 100, connectTimeout: 1s}
              http: {http1MaxPendingRequests: 10, maxRetries: 3}
            outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
          subsets:
          - name: v1
            labels: {version: v1}
        """,
        """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw, namespace: default}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: ["*.example.com"]
        """,
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: edge, namespace: default}
        spec:
          gatewayClassName: istio
          listeners:
          - name: http
            port: 80
            protocol: HTTP
            hostname: "*.example.com"
            allowedRoutes: {namespaces: {from: Same}}
        """,
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: web, namespace: default}
        spec:
          parentRefs: [{name: edge, sectionName: http}]
          hostnames: [shop.example.com]
          rules:
          - matches:
            - path: {type: PathPrefix, value: /api}
              headers: [{name: x-user, value: alice}]
            filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {set: [{name: x-env, value: prod}]}
            backendRefs:
            - {name: web, port: 8080, weight: 90}
            - {name: web-v2, port: 8080, weight: 10}
            timeouts: {request: 5s}
        """,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: default}
        spec:
          selector: {app: web}
          ports:
          - {name: http, port: 8080, targetPort: 8080}
        """,
    )
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into *node* below the top level (metadata and spec subtrees)."""
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            if prefix or k in ("metadata", "spec"):
                yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


HOSTILE_VALUES: list[Any] = [
    -1, 0, 2**31, 2**32, 2**63, -(2**31) - 1, 1.5, "", "x" * 300, "UPPER", "a b", "-x-", "1s",
    "-1s", "abc", "*", "/", True, None, [], {}, ["a"], {"k": "v"}, 101, 600, 99.5,
]  # fmt: skip
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_VALUES), st.integers(-(2**33), 2**33), st.text(max_size=8)
)


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, str]:
    """A valid document with one field replaced by a hostile value: ``(description, YAML)``."""
    base = draw(st.sampled_from(BASES))
    doc = yaml.safe_load(base)
    path = draw(st.sampled_from(sorted(_paths(doc), key=str)))
    value = draw(HOSTILE)
    _put(doc, path, value)
    where = ".".join(str(p) for p in path)
    return f"{doc['kind']} {where}={value!r:.40}", yaml.safe_dump(doc, sort_keys=False)


def test_mutations_the_server_refuses_are_lint_errors(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = Tally()

    @settings(
        max_examples=MUTATIONS,
        derandomize=True,  # a fixed sequence: the same mutations on every run
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(m=mutation())
    def run(m: tuple[str, str]) -> None:
        source, text = m
        for o in judge(server, source, text):
            tally.add(o)

    run()
    with capsys.disabled():
        print("\n" + tally.report("CRD oracle, Hypothesis mutations"))
    assert tally.refused > 10  # not vacuous: the mutations reach the schema's checks
    unexplained = _unexplained(tally)
    assert not unexplained, "\n".join(unexplained)
    stale = FOUND_BY_MUTATIONS - {o.key() for o in tally.disagreements}
    assert not stale, f"KNOWN_DIFFERENCES entries the mutations no longer show: {stale}"
