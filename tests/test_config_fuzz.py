"""Fuzzing the loader, the validator and ``istiolab lint`` with arbitrary YAML-like input.

Properties: ``validate(loads(text))`` never raises, whatever the text; every result is a located
:class:`Finding` with a documented code; ``istiolab lint`` answers 0 or 1 (never a traceback),
and 1 exactly when there is an error finding.

The inputs mix (a) valid resources with one subtree replaced, deleted or added, so the semantic
checks run on nearly valid configs, (b) documents built from real field names and the registry's
real ``(apiVersion, kind)`` pairs, so the schema paths get exercised, and (c) raw text made of
YAML punctuation, so the syntax error paths get exercised. ``ISTIOLAB_FUZZ_EXAMPLES`` sets the
number of examples of the main property (default 2000).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from istiolab.cli import main
from istiolab.config import loads
from istiolab.config.registry import REGISTRY
from istiolab.config.validate import validate
from istiolab.findings import CODES, Finding, Severity, has_errors

EXAMPLES = int(os.environ.get("ISTIOLAB_FUZZ_EXAMPLES", "2000"))
CLI_EXAMPLES = max(1, min(200, EXAMPLES // 10))
FILE = "fuzz.yaml"
YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as a new line

# Codes that only other stages (file access, converter, compiler, scenarios) emit.
NOT_FROM_TEXT = {"IL005", "IL305", "IL311", "IL312", "IL313", "IL314", "IL401"}

FIELD_NAMES = [
    "apiVersion", "kind", "metadata", "name", "namespace", "annotations", "labels", "spec",
    "hosts", "gateways", "http", "route", "match", "uri", "prefix", "exact", "regex", "weight",
    "destination", "host", "subset", "subsets", "port", "number", "fault", "abort", "delay",
    "percentage", "percent", "value", "httpStatus", "grpcStatus", "fixedDelay",
    "exponentialDelay", "timeout", "retries", "attempts", "perTryTimeout", "retryOn",
    "mirror", "mirrors", "mirrorPercentage", "headers", "withoutHeaders", "queryParams",
    "ignoreUriCase", "redirect", "rewrite", "directResponse", "delegate", "status", "body",
    "trafficPolicy", "loadBalancer", "simple", "consistentHash", "httpHeaderName",
    "connectionPool", "outlierDetection", "servers", "selector", "protocol", "configPatches",
    "applyTo", "patch", "operation", "typed_per_filter_config", "precedence", "httpFault",
    "httpReqTimeout", "simpleTimeout", "httpReqRetries", "simpleRetry", "request", "source",
    "tcp", "l4Fault", "corsPolicy", "appendHeaders", "loadBalancing", "circuitBreaker",
    "simpleCb", "rules", "paths", "path", "pathType", "backend", "serviceName", "servicePort",
    "ingressClassName", "defaultBackend", "service", "ports", "template", "replicas", "quotas",
    "maxAmount", "validDuration", "items", "istiolab.io/suppress", "kubernetes.io/ingress.class",
]  # fmt: skip
INTERESTING = [
    "", "/", "/api", "/api/v1", ".*", "/.*", "/a.b/.*", "(?=x)", "(a)\\1", "[", "1s", "250ms",
    "5 seconds", "0s", "1ns", "v1", "v2", "httpbin", "httpbin.default.svc.cluster.local",
    "istio", "nginx", "mesh", "*", "*.example.com", "HTTP_FILTER", "HTTP_ROUTE",
    "envoy.filters.http.local_ratelimit", "ROUND_ROBIN", "LEAST_CONN", "UNAVAILABLE", "IL207",
    "il207, IL209", "List", "VirtualService", "RouteRule", "default", "istio-system",
]  # fmt: skip
PAIRS = sorted(REGISTRY)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.sampled_from([0, 1, 50, 100, 101, 403, 503, 600, 700, -1, 0.5, 1e-05, 99.9]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(INTERESTING),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=25,
)


@st.composite
def random_resource(draw: st.DrawFn) -> Any:
    """A document shaped like a resource, usually with a real apiVersion and kind."""
    doc: dict[Any, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        api_version, kind = draw(st.sampled_from(PAIRS))
        if draw(st.integers(0, 9)) == 0:
            api_version = draw(st.one_of(st.sampled_from(INTERESTING), values))
        doc["apiVersion"] = api_version
        doc["kind"] = kind
    if draw(st.integers(0, 9)) > 0:
        doc["metadata"] = {"name": draw(st.sampled_from(["a", "b", "httpbin", "vs"]))}
        if draw(st.booleans()):
            doc["metadata"]["namespace"] = draw(st.sampled_from(["default", "web"]))
        if draw(st.integers(0, 4)) == 0:
            doc["metadata"]["annotations"] = draw(
                st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=2)
            )
    else:
        doc["metadata"] = draw(values)
    doc["spec"] = draw(st.dictionaries(keys, values, max_size=6))
    return doc


# Valid resources to mutate (one per family; the seed's two among them).
VALID_TEXT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, annotations: {istiolab.io/suppress: IL208}}
spec:
  hosts: [httpbin, www.example.com]
  gateways: [mesh, public]
  http:
  - name: api
    match:
    - uri: {prefix: /api}
      headers: {cookie: {regex: "^(.*?;)?(user=jason)(;.*)?"}}
      withoutHeaders: {x-debug: {}}
    route:
    - destination: {host: httpbin, subset: v1}
      weight: 90
    - destination: {host: httpbin, subset: v2}
      weight: 10
    timeout: 3s
    retries: {attempts: 2, perTryTimeout: 1s, retryOn: "5xx,reset"}
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 10}}
      abort: {httpStatus: 503, percentage: {value: 0.5}}
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 5}
  - route:
    - destination: {host: httpbin}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {http: {http1MaxPendingRequests: 10}, tcp: {maxConnections: 5}}
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 60s}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ratelimit}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          stat_prefix: http_local_rate_limiter
          token_bucket: {max_tokens: 100, tokens_per_fill: 100, fill_interval: 1s}
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: simple-ingress
  annotations:
    kubernetes.io/ingress.class: istio
spec:
  rules:
  - http:
      paths:
      - path: /.*
        backend:
          serviceName: httpbin
          servicePort: 8000
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, annotations: {kubernetes.io/ingress.class: istio}}
spec:
  rules:
  - host: www.example.com
    http:
      paths:
      - path: /status/.*
        pathType: ImplementationSpecific
        backend: {service: {name: httpbin, port: {number: 8000}}}
---
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata:
  name: deny-route
spec:
  destination:
    name: httpbin
  match:
    source:
      name: istio-ingress
      labels:
        istio: ingress
  precedence: 1
  route:
  - weight: 100
  httpFault:
    abort:
      percent: 100
      httpStatus: 403
---
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata: {name: canary}
spec:
  destination: {name: httpbin}
  match:
    request:
      headers:
        cookie: {regex: "^(.*?;)?(user=jason)(;.*)?"}
        uri: {prefix: /api}
  route:
  - {labels: {version: v1}, weight: 75}
  - {labels: {version: v2}, weight: 25}
  httpReqTimeout: {simpleTimeout: {timeout: 5s}}
  httpReqRetries: {simpleRetry: {attempts: 3, perTryTimeout: 1s}}
---
apiVersion: config.istio.io/v1alpha2
kind: DestinationPolicy
metadata: {name: httpbin-lb}
spec:
  destination: {name: httpbin, labels: {version: v1}}
  loadBalancing: {name: LEAST_CONN}
  circuitBreaker: {simpleCb: {maxConnections: 10, sleepWindow: 15s}}
---
apiVersion: config.istio.io/v1alpha2
kind: memquota
metadata: {name: handler}
spec:
  quotas:
  - {name: requestcount.quota.istio-system, maxAmount: 100, validDuration: 1s}
---
apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  selector: {app: httpbin}
  ports: [{port: 8000, name: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin-v1}
spec:
  replicas: 2
  selector: {matchLabels: {app: httpbin, version: v1}}
  template:
    metadata: {labels: {app: httpbin, version: v1}}
    spec: {containers: [{name: httpbin, image: kennethreitz/httpbin}]}
"""
VALID = [d for d in yaml.safe_load_all(textwrap.dedent(VALID_TEXT)) if d]


def _bad_configs() -> list[list[Any]]:
    """The bad inputs of test_findings (one per code), as further configs to mutate."""
    from test_findings import CASES, EXTRA_CASES, case_of

    out = []
    for param in CASES + EXTRA_CASES:
        try:
            docs = [d for d in yaml.safe_load_all(case_of(param).text) if d is not None]
        except yaml.YAMLError:
            continue
        out.append(docs)
    return out


CONFIGS = [VALID, *_bad_configs()]


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, (dict, list)):
        out.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, out)
    return out


# Mostly small scalar changes (which keep the document nearly valid and reach the semantic
# checks), sometimes whole random subtrees.
replacements = st.one_of(scalars, scalars, scalars, values)


@st.composite
def mutated_config(draw: st.DrawFn) -> list[Any]:
    """A known config (valid, or one bad-input case) with a few subtrees replaced, deleted,
    duplicated or added."""
    doc: list[Any] = copy.deepcopy(draw(st.sampled_from(CONFIGS)))
    if len(doc) > 1 and draw(st.booleans()):
        doc = draw(st.lists(st.sampled_from(doc), min_size=1, max_size=len(doc) + 1))
        doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(_containers(doc, [])))
        if isinstance(target, dict):
            op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            if op == "add" or not target:
                target[draw(keys)] = draw(replacements)
            elif op == "replace":
                target[draw(st.sampled_from(sorted(target, key=str)))] = draw(replacements)
            else:
                del target[draw(st.sampled_from(sorted(target, key=str)))]
        elif target:
            i = draw(st.integers(0, len(target) - 1))
            if draw(st.booleans()):
                target[i] = draw(replacements)
            else:
                target.append(copy.deepcopy(target[i]))
        else:
            target.append(draw(replacements))
    return doc


def dump(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


yaml_docs = st.one_of(
    mutated_config(),
    mutated_config(),
    st.lists(st.one_of(random_resource(), values), min_size=1, max_size=4),
).map(dump)
yaml_punctuation = st.lists(
    st.sampled_from([*":-[]{}#&*!|>'\"%@`?,\n\t  abc01", "---\n", "...\n", "&a ", "*a", "<<: "]),
    max_size=40,
).map("".join)
raw_text = st.one_of(yaml_punctuation, st.text(max_size=80))


@st.composite
def spliced(draw: st.DrawFn) -> str:
    """Valid-looking YAML with random text inserted somewhere (indentation, quotes, aliases)."""
    text = draw(yaml_docs)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(yaml_punctuation) + text[at:]


any_text = st.one_of(yaml_docs, yaml_docs, raw_text, spliced())


def check_findings(text: str, findings: list[Finding]) -> None:
    n_lines = len(YAML_BREAK.findall(text)) + 1
    for f in findings:
        assert isinstance(f, Finding)
        assert f.code in CODES, f
        assert f.code not in NOT_FROM_TEXT, f
        assert isinstance(f.severity, Severity)
        assert isinstance(f.path, str)
        assert f.message
        assert f.fix
        assert f.file == FILE
        assert f.line is not None
        assert 1 <= f.line <= n_lines, (f.line, n_lines, f)
        f.format()
        json.dumps(f.to_dict())
    keys_ = [(f.file or "", f.line or 0) for f in findings]
    assert keys_ == sorted(keys_)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=any_text, profile=st.sampled_from([None, "0.2", "1.0", "1.14", "1.24"]))
def test_validate_never_raises(text: str, profile: str | None) -> None:
    cs = loads(text, file=FILE)
    findings = validate(cs, profile)
    check_findings(text, findings)
    # load findings are kept by validate, and suppression only removes
    assert {id(f) for f in cs.findings} <= {id(f) for f in findings}
    assert set(validate(cs, profile, suppress=list(CODES))) == set()


@settings(max_examples=CLI_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=any_text)
def test_cli_lint_answers_0_or_1(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FILE
        path.write_text(text, encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            rc = main(["lint", str(path), "--format", "json"])
        assert rc in (0, 1)
        found = json.loads(out.getvalue())["findings"]
        assert (rc == 1) is any(f["severity"] == "error" for f in found)
        assert all(f["code"] in CODES and f["file"] == str(path) for f in found)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["lint", str(path)]) == rc
            assert main(["lint", str(path), "--strict"]) in (0, 1)


def test_fuzz_inputs_reach_deep_checks() -> None:
    """The mutation corpus itself is valid and exercises the semantic checks."""
    cs = loads(dump(VALID), file=FILE)
    assert cs.findings == ()
    assert len(cs) == len(VALID)
    findings = validate(cs, "0.2")
    assert not has_errors(findings), [f.format() for f in findings]
    # the only findings: the v2 subset/route labels without a v2 Deployment, the memquota, the
    # Gateway whose selector no Deployment of the corpus carries (IST0101), and the rate-limit
    # filter inserted relative to another without a priority (IST0151)
    assert sorted((f.code, f.path) for f in findings) == [
        ("IL204", "spec.route[1].labels"),
        ("IL204", "spec.subsets[1].labels"),
        ("IL216", "spec.selector.istio"),
        ("IL236", "spec.configPatches[0].patch.operation"),
        ("IL308", "spec.quotas"),
    ]
