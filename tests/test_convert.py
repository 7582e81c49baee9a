"""Legacy (Istio 0.2) → modern conversion: golden files, modern equivalents, and each rule.

Golden files live in ``tests/data/convert``; regenerate them with
``ISTIOLAB_UPDATE_GOLDENS=1 pytest tests/test_convert.py`` and review the diff.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from istiolab.config import ConfigSet, Deployment, dumps, load, loads
from istiolab.config.convert import (
    combine_path_prefix,
    convert,
    ingress_path_match,
    is_regular_expression,
    routes_by_path_key,
    subset_name,
)
from istiolab.config.validate import validate
from istiolab.findings import Finding, Severity

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "data" / "convert"
UPDATE = os.environ.get("ISTIOLAB_UPDATE_GOLDENS") == "1"
NETWORKING = ("networking.istio.io/",)

CASES = [("seed", EXAMPLES / "seed")] + [
    (p.stem, p) for p in sorted((EXAMPLES / "legacy").glob("*.yaml"))
]


def case_ids() -> list[str]:
    return [name for name, _ in CASES]


# -- helpers ---------------------------------------------------------------------------------

INGRESS = """
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: {name}
  annotations:
    kubernetes.io/ingress.class: istio
spec:
  rules:
  - http:
      paths:
{paths}
"""


def ingress(*paths: tuple[str, str, int], name: str = "ing") -> str:
    lines = []
    for path, svc, port in paths:
        lines.append(f"      - path: {path}")
        lines.append(f"        backend: {{serviceName: {svc}, servicePort: {port}}}")
    return INGRESS.format(name=name, paths="\n".join(lines))


def rule(name: str, dest: str = "httpbin", precedence: int | None = None, **spec: Any) -> str:
    import yaml

    body: dict[str, Any] = {"destination": {"name": dest}}
    if precedence is not None:
        body["precedence"] = precedence
    body.update(spec)
    doc = {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "RouteRule",
        "metadata": {"name": name},
        "spec": body,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def run(*docs: str, **kw: Any) -> tuple[dict[str, dict[str, Any]], list[Finding]]:
    text = "\n---\n".join(textwrap.dedent(d).strip("\n") for d in docs)
    result = convert(loads(text, file="x.yaml"), **kw)
    return {r.key: r.to_dict() for r in result.config}, list(result.findings)


def http(out: dict[str, dict[str, Any]], key: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = out[key]["spec"]["http"]
    return routes


def headers(**conditions: dict[str, str]) -> dict[str, Any]:
    """A legacy ``match`` on request headers (``uri``, ``cookie`` ...)."""
    return {"request": {"headers": conditions}}


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


INGRESS_SOURCE = {"source": {"name": "istio-ingress", "labels": {"istio": "ingress"}}}


# -- golden files and modern equivalents -----------------------------------------------------


@pytest.mark.parametrize(("name", "path"), CASES, ids=case_ids())
def test_golden(name: str, path: Path) -> None:
    text = dumps(convert(load(path)).config)
    golden = GOLDEN / f"{name}.yaml"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"missing {golden}; run with ISTIOLAB_UPDATE_GOLDENS=1"
    assert text == golden.read_text(encoding="utf-8")


def _semantic(config: ConfigSet) -> list[tuple[str, Any]]:
    """Istio resources as data; Kubernetes objects by what routing sees (ports, pod labels)."""
    out: list[tuple[str, Any]] = []
    for r in config:
        data = r.to_dict()
        if r.api_version.startswith(NETWORKING):
            out.append((f"{r.kind}/{r.namespace}/{r.name}", {k: data[k] for k in ("kind", "spec")}))
        elif r.kind == "Service":
            out.append((r.key, data["spec"]))
        elif r.kind == "Deployment":
            assert isinstance(r, Deployment)
            out.append((r.key, (data["spec"].get("replicas"), r.pod_labels)))
    return sorted(out, key=lambda item: item[0])


@pytest.mark.parametrize(("name", "path"), CASES, ids=case_ids())
def test_modern_equivalent(name: str, path: Path) -> None:
    # The hand-written files use modern Istio's defaults (no 15 s timeouts, default retries).
    converted = convert(load(path), modern_defaults=True).config
    modern = load(EXAMPLES / "modern" / f"{name}.yaml")
    assert not modern.findings
    assert _semantic(converted) == _semantic(modern)


@pytest.mark.parametrize(("name", "path"), CASES, ids=case_ids())
def test_examples_are_valid(name: str, path: Path) -> None:
    legacy = load(path)
    assert not [f for f in validate(legacy, "0.2") if f.severity is Severity.ERROR]
    converted = convert(legacy).config
    assert not [f for f in validate(converted, "0.2") if f.severity is Severity.ERROR]
    modern = load(EXAMPLES / "modern" / f"{name}.yaml")
    assert not [f for f in validate(modern) if f.severity is Severity.ERROR]


def test_seed_output_exactly() -> None:
    out, findings = run(*(p.read_text() for p in sorted((EXAMPLES / "seed").glob("*.yaml"))))
    assert sorted(out) == [
        "Deployment/default/httpbin",
        "Gateway/default/istio-ingress",
        "Service/default/httpbin",
        "VirtualService/default/simple-ingress",
    ]
    assert out["Gateway/default/istio-ingress"]["spec"] == {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 80, "protocol": "HTTP", "name": "http"}, "hosts": ["*"]}],
    }
    assert out["VirtualService/default/simple-ingress"]["spec"] == {
        "hosts": ["*"],
        "gateways": ["istio-ingress"],
        "http": [
            {
                "name": "deny-route",
                "match": [{"uri": {"prefix": "/"}}],
                "route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}],
                "timeout": "15s",
                "retries": {"attempts": 0},
                "fault": {"abort": {"httpStatus": 403, "percentage": {"value": 100}}},
            }
        ],
    }
    assert codes(findings) == ["IL311"]
    assert findings[0].file == "x.yaml" or findings[0].file is None


def test_seed_findings_locate_the_ingress() -> None:
    findings = convert(load(EXAMPLES / "seed")).findings
    assert [(f.code, Path(f.file or "").name, f.line) for f in findings] == [
        ("IL311", "ingress.yaml", 8)
    ]


# -- Pilot 0.2 helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "path_type", "expected"),
    [
        ("/.*", None, ("prefix", "/")),
        ("/status/.*", None, ("prefix", "/status/")),
        ("/x", None, ("exact", "/x")),
        ("/", None, ("exact", "/")),
        ("", None, ("prefix", "/")),
        ("/a.b/.*", None, None),
        ("/items/[0-9]+", None, None),
        ("/api", "Prefix", ("prefix", "/api")),
        ("/api", "Exact", ("exact", "/api")),
        ("/v1/.*", "ImplementationSpecific", ("prefix", "/v1/")),
    ],
)
def test_ingress_path_match(path: str, path_type: str | None, expected: Any) -> None:
    assert ingress_path_match(path, path_type) == expected


def test_is_regular_expression_is_go_quotemeta() -> None:
    assert not is_regular_expression("/status/418")
    assert all(is_regular_expression(f"/a{c}") for c in "\\.+*?()|[]{}^$")


@pytest.mark.parametrize(
    ("ingress_uri", "route_uri", "expected"),
    [
        (("prefix", "/"), None, ("prefix", "/")),
        (("prefix", "/"), ("prefix", "/status/"), ("prefix", "/status/")),  # longer wins
        (("prefix", "/status/"), ("prefix", "/"), ("prefix", "/status/")),
        (("prefix", "/status/"), ("prefix", "/ip"), None),
        (("prefix", "/status/"), ("exact", "/status/418"), ("exact", "/status/418")),
        (("prefix", "/status/"), ("exact", "/ip"), None),
        (("exact", "/x"), ("prefix", "/"), ("exact", "/x")),
        (("exact", "/x"), ("exact", "/x"), ("exact", "/x")),
        (("exact", "/x"), ("exact", "/y"), None),
        (("exact", "/x"), ("prefix", "/y"), None),
    ],
)
def test_combine_path_prefix(ingress_uri: Any, route_uri: Any, expected: Any) -> None:
    assert combine_path_prefix(ingress_uri, route_uri) == expected


def test_routes_by_path_order() -> None:
    uris = [("prefix", "/"), ("exact", "/b"), ("prefix", "/api/"), ("prefix", "/api/v2/")]
    uris += [("exact", "/a"), ("prefix", "/ap")]
    assert sorted(uris, key=routes_by_path_key) == [
        ("exact", "/a"),
        ("exact", "/b"),
        ("prefix", "/api/v2/"),
        ("prefix", "/api/"),
        ("prefix", "/ap"),
        ("prefix", "/"),
    ]


def test_subset_names() -> None:
    assert subset_name({"version": "v1"}) == "v1"
    assert subset_name({"version": "v1", "app": "web"}) == "app-web-version-v1"
    assert subset_name({"track": "Canary.1"}) == "track-canary-1"


# -- rule ordering -----------------------------------------------------------------------------


def test_precedence_descending_then_key() -> None:
    hdr = {"request": {"headers": {"x-n": {"exact": "1"}}}}
    out, _ = run(
        rule("low", precedence=1, match=hdr),
        rule("high", precedence=3, match=hdr),
        rule("mid-b", precedence=2, match=hdr),
        rule("mid-a", precedence=2, match=hdr),
    )
    names = [r["name"] for r in http(out, "VirtualService/default/httpbin")]
    assert names == ["high", "mid-a", "mid-b", "low", "default"]


def test_stop_at_first_catch_all() -> None:
    out, _ = run(
        rule(
            "cookie", precedence=3, match={"request": {"headers": {"cookie": {"regex": ".*b.*"}}}}
        ),
        rule("all-v1", precedence=2, route=[{"labels": {"version": "v1"}}]),
        rule("never", precedence=1, route=[{"labels": {"version": "v2"}}]),
    )
    routes = http(out, "VirtualService/default/httpbin")
    assert [r["name"] for r in routes] == ["cookie", "all-v1"]
    # no default route after a catch-all, and no subset for the unreachable rule
    assert [s["name"] for s in out["DestinationRule/default/httpbin"]["spec"]["subsets"]] == ["v1"]


def test_uri_prefix_slash_is_a_catch_all() -> None:
    out, _ = run(rule("root", match={"request": {"headers": {"uri": {"prefix": "/"}}}}))
    assert [r["name"] for r in http(out, "VirtualService/default/httpbin")] == ["root"]


def test_default_route_appended() -> None:
    out, _ = run(rule("status", match={"request": {"headers": {"uri": {"prefix": "/status/"}}}}))
    routes = http(out, "VirtualService/default/httpbin")
    assert routes[-1] == {
        "name": "default",
        "route": [{"destination": {"host": "httpbin"}}],
        "timeout": "15s",
        "retries": {"attempts": 0},
    }
    assert routes[0]["match"] == [{"uri": {"prefix": "/status/"}}]


def test_modern_defaults_leave_out_legacy_defaults() -> None:
    out, findings = run(rule("r", route=[{"labels": {"version": "v1"}}]), modern_defaults=True)
    assert http(out, "VirtualService/default/httpbin") == [
        {"name": "r", "route": [{"destination": {"host": "httpbin", "subset": "v1"}}]}
    ]
    assert "trafficPolicy" not in out["DestinationRule/default/httpbin"]["spec"]
    assert "IL311" not in codes(findings)


# -- where rules apply ---------------------------------------------------------------------------


def test_ingress_only_rule_without_ingress() -> None:
    out, findings = run(rule("deny", match=INGRESS_SOURCE))
    assert not [k for k in out if k.startswith("VirtualService")]
    assert codes(findings) == ["IL312"]
    assert findings[0].path == "spec.match.source"
    assert "no Istio Ingress routes to httpbin.default.svc.cluster.local" in findings[0].message


def test_rule_without_source_applies_in_mesh_and_at_ingress() -> None:
    out, _ = run(
        ingress(("/.*", "httpbin", 8000)),
        rule("v1", route=[{"labels": {"version": "v1"}}]),
    )
    mesh = http(out, "VirtualService/default/httpbin")
    edge = http(out, "VirtualService/default/ing")
    assert mesh[0]["route"] == [{"destination": {"host": "httpbin", "subset": "v1"}}]
    assert edge[0]["route"] == [
        {"destination": {"host": "httpbin", "subset": "v1", "port": {"number": 8000}}}
    ]
    assert out["VirtualService/default/httpbin"]["spec"].get("gateways") is None


def test_ingress_rule_not_in_mesh() -> None:
    out, _ = run(ingress(("/.*", "httpbin", 8000)), rule("deny", match=INGRESS_SOURCE))
    assert "VirtualService/default/httpbin" not in out
    assert [r["name"] for r in http(out, "VirtualService/default/ing")] == ["deny"]


def test_other_source_becomes_source_labels() -> None:
    service = """
    apiVersion: v1
    kind: Service
    metadata: {name: reviews}
    spec:
      selector: {app: reviews}
      ports: [{name: http, port: 9080}]
    """
    src = {"source": {"name": "reviews", "labels": {"version": "v2"}}}
    out, findings = run(
        service,
        ingress(("/.*", "httpbin", 8000)),
        rule("from-reviews", precedence=2, match=src, route=[{"labels": {"version": "v2"}}]),
    )
    mesh = http(out, "VirtualService/default/httpbin")
    assert mesh[0]["match"] == [{"sourceLabels": {"app": "reviews", "version": "v2"}}]
    # a source-scoped catch-all does not end the list for other callers
    assert [r["name"] for r in mesh] == ["from-reviews", "default"]
    assert [r["name"] for r in http(out, "VirtualService/default/ing")] == ["default"]
    il305 = [f for f in findings if f.code == "IL305"]
    assert len(il305) == 1
    assert "'reviews'" in il305[0].message


def test_source_without_selector_is_not_converted() -> None:
    src = {"source": {"name": "reviews"}}
    out, findings = run(rule("from-reviews", match=src))
    assert "VirtualService/default/httpbin" not in out
    assert codes(findings) == ["IL305"]


def test_source_ingress_with_other_labels_is_not_ingress() -> None:
    src = {"source": {"name": "istio-ingress", "labels": {"istio": "egress"}}}
    out, findings = run(ingress(("/.*", "httpbin", 8000)), rule("x", match=src))
    assert [r["name"] for r in http(out, "VirtualService/default/ing")] == ["default"]
    assert http(out, "VirtualService/default/httpbin")[0]["match"] == [
        {"sourceLabels": {"istio": "egress"}}
    ]
    assert "IL305" in codes(findings)


# -- match and actions -----------------------------------------------------------------------


def test_special_headers_and_cookie() -> None:
    headers = {
        "uri": {"prefix": "/api"},
        "method": {"exact": "GET"},
        "authority": {"exact": "example.com"},
        "scheme": {"exact": "https"},
        "cookie": {"regex": "^(.*?;)?(user=beta)(;.*)?$"},
        "x-canary": {"prefix": "yes"},
    }
    out, _ = run(rule("m", match={"request": {"headers": headers}}))
    assert http(out, "VirtualService/default/httpbin")[0]["match"] == [
        {
            "uri": {"prefix": "/api"},
            "scheme": {"exact": "https"},
            "method": {"exact": "GET"},
            "authority": {"exact": "example.com"},
            "headers": {
                "cookie": {"regex": "^(.*?;)?(user=beta)(;.*)?$"},
                "x-canary": {"prefix": "yes"},
            },
        }
    ]


def test_l4_match_and_l4_fault_dropped() -> None:
    out, findings = run(
        rule(
            "l4",
            match={"tcp": {"sourceSubnet": ["10.0.0.0/8"]}},
            l4Fault={"terminate": {"percent": 10}},
        )
    )
    assert sorted(f.path for f in findings if f.code == "IL306") == [
        "spec.l4Fault",
        "spec.match.tcp",
    ]
    # without header conditions the rule is a catch-all for HTTP
    assert [r["name"] for r in http(out, "VirtualService/default/httpbin")] == ["l4"]


def test_weights_and_destination_override() -> None:
    out, _ = run(
        rule(
            "split",
            route=[
                {"labels": {"version": "v1"}, "weight": 75},
                {"destination": {"name": "other", "namespace": "prod"}, "weight": 25},
            ],
        ),
        rule("one", precedence=5, dest="solo", route=[{"weight": 100}]),
    )
    assert http(out, "VirtualService/default/httpbin")[0]["route"] == [
        {"destination": {"host": "httpbin", "subset": "v1"}, "weight": 75},
        {"destination": {"host": "other.prod.svc.cluster.local"}, "weight": 25},
    ]
    assert http(out, "VirtualService/default/solo")[0]["route"] == [
        {"destination": {"host": "solo"}}
    ]


def test_subset_name_from_several_labels() -> None:
    out, _ = run(rule("r", route=[{"labels": {"version": "v2", "track": "beta"}}]))
    dr = out["DestinationRule/default/httpbin"]["spec"]
    assert dr["subsets"] == [
        {"name": "track-beta-version-v2", "labels": {"version": "v2", "track": "beta"}}
    ]


def test_timeout_and_retries() -> None:
    out, findings = run(
        rule("t", precedence=3, match={"request": {"headers": {"x": {"exact": "1"}}}},
             httpReqTimeout={"simpleTimeout": {"timeout": "1s"}}),
        rule("r", precedence=2, match={"request": {"headers": {"x": {"exact": "2"}}}},
             httpReqRetries={"simpleRetry": {"attempts": 3, "perTryTimeout": "2s"}}),
        rule("z", precedence=1, match={"request": {"headers": {"x": {"exact": "3"}}}},
             httpReqRetries={"simpleRetry": {"attempts": 0}}),
    )  # fmt: skip
    t, r, z, d = http(out, "VirtualService/default/httpbin")
    assert (t["timeout"], t["retries"]) == ("1s", {"attempts": 0})
    assert (r["timeout"], r["retries"]) == (
        "15s",
        {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,connect-failure,refused-stream"},
    )
    assert z["retries"] == {"attempts": 0}
    assert d["name"] == "default"
    il311 = [f for f in findings if f.code == "IL311"]
    assert len(il311) == 1  # one per VirtualService, not per route
    assert "timeout: 15s on 3 route(s)" in il311[0].message
    assert "retries: {attempts: 0} on 2 route(s)" in il311[0].message


def test_retries_with_modern_defaults_omit_retry_on() -> None:
    out, _ = run(rule("r", httpReqRetries={"simpleRetry": {"attempts": 2}}), modern_defaults=True)
    assert http(out, "VirtualService/default/httpbin")[0]["retries"] == {"attempts": 2}


@pytest.mark.parametrize(
    ("percent", "expected", "message"),
    [
        (100, 100, None),
        (50.5, 50, "abort percent 50.5 truncates to 50"),
        (0.5, None, "abort percent 0.5 truncates to 0: Pilot 0.2 injects no abort"),
        (None, None, "abort percent unset: Pilot 0.2 treats it as 0"),
    ],
)
def test_abort_percent_truncation(
    percent: float | None, expected: int | None, message: str | None
) -> None:
    abort: dict[str, Any] = {"httpStatus": 503}
    if percent is not None:
        abort["percent"] = percent
    out, findings = run(rule("f", httpFault={"abort": abort}))
    route = http(out, "VirtualService/default/httpbin")[0]
    if expected is None:
        assert "fault" not in route
    else:
        assert route["fault"] == {"abort": {"httpStatus": 503, "percentage": {"value": expected}}}
    il301 = [f for f in findings if f.code == "IL301"]
    if message is None:
        assert not il301
    else:
        assert len(il301) == 1
        assert message in il301[0].message
        assert il301[0].path == "spec.httpFault.abort.percent"
        assert il301[0].severity is Severity.WARNING


def test_delay_and_unsupported_faults() -> None:
    out, findings = run(
        rule("d", precedence=3, match={"request": {"headers": {"x": {"exact": "1"}}}},
             httpFault={"delay": {"percent": 10, "fixedDelay": "5s"}}),
        rule("e", precedence=2, match={"request": {"headers": {"x": {"exact": "2"}}}},
             httpFault={"delay": {"percent": 10, "exponentialDelay": {"meanDelay": "1s"}}}),
        rule("g", precedence=1, match={"request": {"headers": {"x": {"exact": "3"}}}},
             httpFault={"abort": {"percent": 10, "grpcStatus": "UNAVAILABLE"}}),
    )  # fmt: skip
    d, e, g = http(out, "VirtualService/default/httpbin")[:3]
    assert d["fault"] == {"delay": {"fixedDelay": "5s", "percentage": {"value": 10}}}
    assert "fault" not in e
    assert "fault" not in g
    assert [f.path for f in findings if f.code == "IL302"] == [
        "spec.httpFault.delay.exponentialDelay",
        "spec.httpFault.abort.grpcStatus",
    ]


def test_abort_status_zero_dropped() -> None:
    out, findings = run(rule("f", httpFault={"abort": {"percent": 100, "httpStatus": 0}}))
    assert "fault" not in http(out, "VirtualService/default/httpbin")[0]
    assert "httpStatus 0" in next(f.message for f in findings if f.code == "IL301")


def test_redirect_rewrite_and_03_fields() -> None:
    out, findings = run(
        rule("moved", precedence=4, match={"request": {"headers": {"uri": {"exact": "/old"}}}},
             redirect={"uri": "/new", "authority": "new.example.com"}),
        rule("rw", precedence=3, match={"request": {"headers": {"uri": {"prefix": "/v1/"}}}},
             rewrite={"uri": "/"}, websocketUpgrade=True,
             mirror={"name": "shadow"}, appendHeaders={"x-env": "prod"},
             corsPolicy={"allowOrigin": ["https://a.example"], "allowMethods": ["GET"],
                         "maxAge": "1h"}),
    )  # fmt: skip
    moved, rw, _ = http(out, "VirtualService/default/httpbin")
    assert moved == {
        "name": "moved",
        "match": [{"uri": {"exact": "/old"}}],
        "redirect": {"uri": "/new", "authority": "new.example.com", "redirectCode": 302},
    }
    assert rw["rewrite"] == {"uri": "/"}
    assert rw["mirror"] == {"host": "shadow"}
    assert rw["headers"] == {"request": {"add": {"x-env": "prod"}}}
    assert rw["corsPolicy"] == {
        "allowOrigins": [{"exact": "https://a.example"}],
        "allowMethods": ["GET"],
        "maxAge": "1h",
    }
    ws = [f for f in findings if f.path == "spec.websocketUpgrade"]
    assert ws[0].code == "IL306"
    assert ws[0].severity is Severity.INFO


# -- Kubernetes Ingress ------------------------------------------------------------------------


def test_ingress_paths() -> None:
    out, findings = run(
        ingress(
            ("/.*", "web", 80),
            ("/status/.*", "httpbin", 8000),
            ("/x", "httpbin", 8000),
            ("/a.b/.*", "httpbin", 8000),
        )
    )
    routes = http(out, "VirtualService/default/ing")
    assert [(r["name"], r["match"][0]["uri"]) for r in routes] == [
        ("default-httpbin", {"exact": "/x"}),
        ("default-httpbin", {"prefix": "/status/"}),
        ("default-web", {"prefix": "/"}),
    ]
    il304 = [f for f in findings if f.code == "IL304"]
    assert len(il304) == 1
    assert il304[0].path == "spec.rules[0].http.paths[3].path"
    assert "'/a.b/.*'" in il304[0].message
    assert il304[0].severity is Severity.ERROR


def test_ingress_intersects_rule_paths() -> None:
    out, _ = run(
        ingress(("/status/.*", "httpbin", 8000), ("/ip", "httpbin", 8000)),
        rule("teapot", precedence=2, match=headers(uri={"exact": "/status/418"})),
        rule("root", precedence=1, match=headers(uri={"prefix": "/"}, **{"x-a": {"exact": "1"}})),
    )
    routes = http(out, "VirtualService/default/ing")
    assert [(r["name"], r["match"][0]) for r in routes] == [
        ("root", {"uri": {"exact": "/ip"}, "headers": {"x-a": {"exact": "1"}}}),
        ("default", {"uri": {"exact": "/ip"}}),
        ("teapot", {"uri": {"exact": "/status/418"}}),
        ("root", {"uri": {"prefix": "/status/"}, "headers": {"x-a": {"exact": "1"}}}),
        ("default", {"uri": {"prefix": "/status/"}}),
    ]


def test_non_istio_ingress_kept() -> None:
    nginx = ingress(("/.*", "web", 80)).replace("class: istio", "class: nginx")
    out, findings = run(nginx)
    assert sorted(out) == ["Ingress/default/ing"]
    assert codes(findings) == ["IL307"]


def test_ingress_v1_path_types() -> None:
    v1 = """
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: v1ing}
    spec:
      ingressClassName: istio
      rules:
      - host: web.example.com
        http:
          paths:
          - {path: /app, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
          - {path: /exact, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
    """
    out, _ = run(v1)
    vs = out["VirtualService/default/v1ing"]["spec"]
    assert vs["hosts"] == ["web.example.com"]
    assert [r["match"][0]["uri"] for r in vs["http"]] == [{"exact": "/exact"}, {"prefix": "/app"}]
    assert out["Gateway/default/istio-ingress"]["spec"]["servers"][0]["hosts"] == [
        "web.example.com"
    ]


def test_ingress_hosts_tls_and_gateway_namespace() -> None:
    text = """
    apiVersion: extensions/v1beta1
    kind: Ingress
    metadata:
      name: shop
      namespace: prod
      annotations: {kubernetes.io/ingress.class: istio}
    spec:
      tls:
      - secretName: shop-cert
      rules:
      - host: a.example.com
        http: {paths: [{path: /.*, backend: {serviceName: web, servicePort: 80}}]}
      - host: b.example.com
        http: {paths: [{path: /.*, backend: {serviceName: web, servicePort: 80}}]}
    """
    out, findings = run(text, gateway_namespace="istio-system")
    gw = out["Gateway/istio-system/istio-ingress"]["spec"]
    # Istio 0.2 served the hosts of an Ingress with TLS on port 443 only
    assert gw["servers"] == [
        {
            "port": {"number": 443, "protocol": "HTTPS", "name": "https"},
            "hosts": ["a.example.com", "b.example.com"],
            "tls": {"mode": "SIMPLE", "credentialName": "shop-cert"},
        }
    ]
    a = out["VirtualService/prod/shop-a-example-com"]
    assert a["metadata"] == {"name": "shop-a-example-com", "namespace": "prod"}
    assert a["spec"]["gateways"] == ["istio-system/istio-ingress"]
    assert "VirtualService/prod/shop-b-example-com" in out
    assert any(f.code == "IL306" and f.path == "spec.tls" for f in findings)


def test_ingress_named_port_and_tcp_port() -> None:
    services = """
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec: {ports: [{name: http-web, port: 8080}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: db}
    spec: {ports: [{name: mysql, port: 3306}]}
    """
    text = ingress(("/.*", "web", "http-web"), ("/db", "db", 3306))  # type: ignore[arg-type]
    out, findings = run(services, text)
    routes = http(out, "VirtualService/default/ing")
    assert [r["route"][0]["destination"] for r in routes] == [
        {"host": "web", "port": {"number": 8080}}
    ]
    assert [f.code for f in findings if f.code == "IL312"] == ["IL312"]


def test_ingresses_sharing_a_host_are_merged() -> None:
    out, _ = run(ingress(("/.*", "web", 80), name="a"), ingress(("/api/.*", "api", 80), name="b"))
    routes = http(out, "VirtualService/default/a")
    assert [r["match"][0]["uri"]["prefix"] for r in routes] == ["/api/", "/"]
    assert "VirtualService/default/b" not in out


def test_uri_regex_at_the_ingress() -> None:
    regex = {"request": {"headers": {"uri": {"regex": "/status/4[0-9]+"}}}}
    out, findings = run(
        ingress(("/.*", "httpbin", 8000), ("/status/418", "httpbin", 8000), name="a"),
        ingress(("/status/.*", "other", 80), name="b"),
        rule("re", match=regex),
        rule("re2", dest="other", match=regex),
    )
    routes = http(out, "VirtualService/default/a")
    assert [(r["name"], r["match"][0]["uri"]) for r in routes] == [
        ("re", {"exact": "/status/418"}),
        ("default-httpbin", {"exact": "/status/418"}),
        ("default-other", {"prefix": "/status/"}),
        ("re", {"regex": "/status/4[0-9]+"}),
        ("default-httpbin", {"prefix": "/"}),
    ]
    assert any("cannot be written as one match" in f.message for f in findings)


# -- faults on shared clusters ----------------------------------------------------------------


def test_fault_filter_hits_other_routes_to_the_same_cluster() -> None:
    out, findings = run(
        ingress(("/.*", "httpbin", 8000)),
        rule("slow-status", match={"request": {"headers": {"uri": {"prefix": "/status/"}}},
                                   **INGRESS_SOURCE},
             httpFault={"delay": {"percent": 100, "fixedDelay": "2s"}}),
    )  # fmt: skip
    routes = http(out, "VirtualService/default/ing")
    assert [r["name"] for r in routes] == ["slow-status", "default"]
    # Pilot 0.2's fault filter matched the cluster, not the path: the default route gets it too
    assert routes[1]["fault"] == routes[0]["fault"]
    assert any(f.code == "IL306" and "upstream cluster" in f.message for f in findings)


def test_fault_with_headers_splits_the_other_route() -> None:
    out, _ = run(
        rule("beta-abort", precedence=2,
             match={"request": {"headers": {"uri": {"prefix": "/x/"}, "x-user": {"exact": "b"}}}},
             httpFault={"abort": {"percent": 100, "httpStatus": 500}}),
    )  # fmt: skip
    routes = http(out, "VirtualService/default/httpbin")
    assert [(r["name"], r.get("match"), "fault" in r) for r in routes] == [
        ("beta-abort", [{"uri": {"prefix": "/x/"}, "headers": {"x-user": {"exact": "b"}}}], True),
        ("default", [{"headers": {"x-user": {"exact": "b"}}}], True),
        ("default", None, False),
    ]


# -- DestinationPolicy ----------------------------------------------------------------------------


def policy(name: str, **spec: Any) -> str:
    import yaml

    body = {"destination": {"name": "api"}, **spec}
    return yaml.safe_dump(
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "DestinationPolicy",
            "metadata": {"name": name},
            "spec": body,
        },
        sort_keys=False,
    )


def test_destination_policy_mapping() -> None:
    cb = {
        "simpleCb": {
            "maxConnections": 10,
            "httpMaxPendingRequests": 20,
            "httpMaxRequests": 30,
            "httpMaxRequestsPerConnection": 1,
            "httpMaxRetries": 4,
            "httpConsecutiveErrors": 7,
            "httpDetectionInterval": "5m",
            "sleepWindow": "15m",
            "httpMaxEjectionPercent": 100,
        }
    }
    out, findings = run(policy("p", loadBalancing={"name": "RANDOM"}, circuitBreaker=cb))
    assert out["DestinationRule/default/api"]["spec"] == {
        "host": "api",
        "trafficPolicy": {
            "loadBalancer": {"simple": "RANDOM"},
            "connectionPool": {
                "tcp": {"maxConnections": 10},
                "http": {
                    "http1MaxPendingRequests": 20,
                    "http2MaxRequests": 30,
                    "maxRequestsPerConnection": 1,
                    "maxRetries": 4,
                },
            },
            "outlierDetection": {
                "consecutive5xxErrors": 7,
                "interval": "5m",
                "baseEjectionTime": "15m",
                "maxEjectionPercent": 100,
            },
        },
    }
    assert not findings


@pytest.mark.parametrize("modern", [False, True])
def test_destination_policy_defaults(modern: bool) -> None:
    cb = {"simpleCb": {"maxConnections": 1, "sleepWindow": "500ms"}}
    out, findings = run(policy("p", loadBalancing={"name": "LEAST_CONN"}, circuitBreaker=cb),
                        modern_defaults=modern)  # fmt: skip
    tp = out["DestinationRule/default/api"]["spec"]["trafficPolicy"]
    assert tp["loadBalancer"] == {"simple": "LEAST_REQUEST"}
    if modern:
        assert "outlierDetection" not in tp
    else:
        assert tp["outlierDetection"] == {
            "consecutive5xxErrors": 5,
            "interval": "10s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 10,
        }
        assert "IL311" in codes(findings)
    sleep = [f for f in findings if f.path == "spec.circuitBreaker.simpleCb.sleepWindow"]
    assert sleep
    assert "500ms is under 1s" in sleep[0].message


def test_destination_policy_with_labels_and_route_subsets() -> None:
    out, findings = run(
        rule("r", dest="api", route=[{"labels": {"version": "v1"}, "weight": 50},
                                     {"labels": {"version": "v2"}, "weight": 50}]),
        policy("v2-random", destination={"name": "api", "labels": {"version": "v2"}},
               loadBalancing={"name": "RANDOM"}),
        policy("all-cb", loadBalancing={"name": "LEAST_CONN"},
               circuitBreaker={"simpleCb": {"maxConnections": 5}}),
        policy("zz-dup", destination={"name": "api", "labels": {"version": "v2"}},
               loadBalancing={"name": "LEAST_CONN"}, source={"name": "web"}),
    )  # fmt: skip
    spec = out["DestinationRule/default/api"]["spec"]
    assert spec["trafficPolicy"]["loadBalancer"] == {"simple": "LEAST_REQUEST"}
    assert spec["subsets"] == [
        # 0.2's unlabelled policy did not reach labelled clusters: keep their default LB
        {"name": "v1", "labels": {"version": "v1"},
         "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
        {"name": "v2", "labels": {"version": "v2"},
         "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
    ]  # fmt: skip
    il306 = {f.resource: f.message for f in findings if f.code == "IL306"}
    assert "'v2-random'" in il306["DestinationPolicy/default/zz-dup"]
    assert "modern subsets inherit its connectionPool" in il306["DestinationPolicy/default/all-cb"]


# -- Mixer quota → local rate limit -------------------------------------------------------------


def _quota_objects() -> str:
    text = (EXAMPLES / "legacy" / "ratelimit-100rps.yaml").read_text()
    return text.split("\n---\napiVersion: v1\n")[0]


def test_ratelimit_gateway_wide_when_alone() -> None:
    out, findings = run(_quota_objects())
    ef = out["EnvoyFilter/istio-system/ratelimit-api"]["spec"]
    assert ef["workloadSelector"] == {"labels": {"istio": "ingressgateway"}}
    (patch,) = ef["configPatches"]
    assert patch["applyTo"] == "HTTP_FILTER"
    assert patch["match"]["context"] == "GATEWAY"
    value = patch["patch"]["value"]["typed_config"]["value"]
    assert value["token_bucket"] == {
        "max_tokens": 100,
        "tokens_per_fill": 100,
        "fill_interval": "1s",
    }
    assert value["filter_enabled"]["default_value"] == {"numerator": 100, "denominator": "HUNDRED"}
    assert codes(findings) == ["IL308"]
    # the Mixer objects are consumed
    assert not [k for k in out if k.split("/")[0] in ("memquota", "quota", "rule", "QuotaSpec")]


def test_ratelimit_per_route_when_gateway_serves_more() -> None:
    out, findings = run(_quota_objects(), ingress(("/.*", "webui", 80), ("/api/.*", "api", 8080)))
    patches = out["EnvoyFilter/istio-system/ratelimit-api"]["spec"]["configPatches"]
    assert [p["applyTo"] for p in patches] == ["HTTP_FILTER", "HTTP_ROUTE"]
    assert "token_bucket" not in patches[0]["patch"]["value"]["typed_config"]["value"]
    assert patches[1]["match"]["routeConfiguration"] == {
        "vhost": {"route": {"name": "default-api"}}
    }
    per_route = patches[1]["patch"]["value"]["typed_per_filter_config"]
    bucket = per_route["envoy.filters.http.local_ratelimit"]["value"]["token_bucket"]
    assert bucket["max_tokens"] == 100
    assert "IL308" in codes(findings)


def test_ratelimit_readable_by_the_rate_limit_reader() -> None:
    from istiolab.config.model import EnvoyFilter
    from istiolab.config.ratelimit import local_rate_limits

    config = convert(loads(_quota_objects())).config
    (ef,) = config.kind(EnvoyFilter)
    (spec,) = local_rate_limits(ef)
    assert (spec.max_tokens, spec.tokens_per_fill, spec.fill_interval_s) == (100, 100, 1.0)
    assert spec.enabled_per_million == spec.enforced_per_million == 1_000_000


def test_unbound_quota_not_converted() -> None:
    text = _quota_objects().split(
        "\n---\napiVersion: config.istio.io/v1alpha2\nkind: QuotaSpecBinding"
    )[0]
    out, findings = run(text)
    assert not [k for k in out if k.startswith("EnvoyFilter")]
    assert codes(findings) == ["IL308"]
    assert "no QuotaSpecBinding" in findings[0].message


# -- pass-through and namespaces ------------------------------------------------------------------


def test_modern_resources_pass_through() -> None:
    modern = (EXAMPLES / "modern" / "cookie-ab.yaml").read_text()
    config = loads(modern, file="m.yaml")
    result = convert(config)
    assert [r.key for r in result.config] == [r.key for r in config]
    assert not result.findings
    assert result.config.origin(result.config.resources[0]) is not None


def test_namespaces_are_kept() -> None:
    text = rule("r", route=[{"labels": {"version": "v1"}}]).replace(
        "name: r\n", "name: r\n  namespace: prod\n"
    )
    out, _ = run(text)
    assert out["VirtualService/prod/httpbin"]["metadata"] == {
        "name": "httpbin",
        "namespace": "prod",
    }
    assert out["DestinationRule/prod/httpbin"]["spec"]["host"] == "httpbin"


def test_profile_none_means_legacy() -> None:
    out, _ = run(rule("r"), profile=None)
    assert http(out, "VirtualService/default/httpbin")[0]["timeout"] == "15s"


def test_fault_of_a_source_rule_stays_with_that_source() -> None:
    src = {"source": {"name": "reviews", "labels": {"app": "reviews"}}}
    out, _ = run(
        rule("slow", match=src, httpFault={"delay": {"percent": 100, "fixedDelay": "1s"}}),
    )
    routes = http(out, "VirtualService/default/httpbin")
    # the source-scoped rule is a catch-all for its callers only, so the default route follows;
    # its copy for the same callers would never be reached, and other callers get no fault
    assert [(r["name"], r.get("match"), "fault" in r) for r in routes] == [
        ("slow", [{"sourceLabels": {"app": "reviews"}}], True),
        ("default", [{"sourceLabels": {"app": "reviews"}}], True),
        ("default", None, False),
    ]


def test_gateway_virtual_service_does_not_replace_the_mesh_one() -> None:
    out, _ = run(ingress(("/.*", "httpbin", 8000), name="httpbin"), rule("r"))
    assert out["VirtualService/default/httpbin"]["spec"]["hosts"] == ["httpbin"]
    assert out["VirtualService/default/httpbin-ingress"]["spec"]["gateways"] == ["istio-ingress"]


def test_ingress_source_recognised_with_a_modern_profile() -> None:
    # istiolab.envoy.compile converts legacy input with the profile it compiles for
    out, _ = run(ingress(("/.*", "httpbin", 8000)), rule("deny", match=INGRESS_SOURCE),
                 profile="1.24", modern_defaults=True)  # fmt: skip
    assert "VirtualService/default/httpbin" not in out
    assert http(out, "VirtualService/default/ing")[0]["name"] == "deny"
