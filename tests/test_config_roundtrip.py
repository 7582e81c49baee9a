"""YAML round trips for every resource kind the registry knows (Hypothesis).

For each kind a strategy builds valid resource documents (plain dicts, as in a YAML file); the
properties: the model accepts the document and keeps every field (``to_dict()`` gives the
document back), ``loads(dumps([res]))`` gives one resource equal to ``res`` with no findings,
and ``dumps`` is deterministic.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from istiolab.config import dumps, loads
from istiolab.config.base import Resource
from istiolab.config.registry import KINDS, REGISTRY

# -- building blocks ------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
label_keys = st.from_regex(r"[a-z]([a-z0-9.-]{0,8}/)?[a-z0-9-]{1,8}", fullmatch=True)
# Free text: any characters YAML can carry (no surrogates), including ones that need quoting.
text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["yes", "no", "on", "null", "~", "1e3", "0x1F", "2001-12-14", "'", "- a", "a: b"]
    ),
    st.sampled_from(["", " lead", "trail ", "multi\nline", "tab\there", "#hash", "*star", "&a"]),
)
labels = st.dictionaries(label_keys, text, max_size=3)
hosts = st.one_of(
    names,
    names.map(lambda n: f"{n}.default.svc.cluster.local"),
    names.map(lambda n: f"{n}.example.com"),
    st.just("*"),
    names.map(lambda n: f"*.{n}.com"),
)
durations = st.one_of(
    st.integers(1, 10**6).map(lambda n: f"{n}ms"),
    st.integers(1, 10**5).map(lambda n: f"{n}s"),
    st.integers(1, 600).map(lambda n: f"{n}m"),
    st.integers(1, 48).map(lambda n: f"{n}h"),
    st.sampled_from(["1.5s", "0.25s", "1h30m", "2m30s", "1000us", "0.001s"]),
)
percents = st.one_of(
    st.floats(0, 100, allow_nan=False),
    st.integers(0, 100),
    st.sampled_from([0.0001, 0.5, 99.9999]),
)
statuses = st.integers(200, 599)
re2_patterns = st.sampled_from(
    [".*", "/api/.*", "^(.*?;)?(user=jason)(;.*)?", "[a-z]+", "v[0-9]+\\.[0-9]+", "a|b", ""]
)
small = st.integers(0, 10_000)
ports = st.integers(1, 65535)


def opt(
    required: dict[str, Any] | None = None, **optional: Any
) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with the *required* keys and any subset of the *optional* ones (camelCase)."""
    return st.fixed_dictionaries(required or {}, optional=optional)


def one(**choices: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with exactly one of the keys (a protobuf oneof)."""

    def keyed(k: str, v: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return v.map(lambda x: {k: x})

    return st.one_of(*(keyed(k, v) for k, v in choices.items()))


def at_most_one(**choices: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), one(**choices))


metadata = opt(
    {"name": names},
    namespace=names,
    labels=labels,
    annotations=st.dictionaries(label_keys, text, max_size=2),
    uid=names,
    resourceVersion=st.integers(1, 10**6).map(str),
)


def resource(
    api_versions: tuple[str, ...], kind: str, spec: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "apiVersion": st.sampled_from(api_versions),
            "kind": st.just(kind),
            "metadata": metadata,
            "spec": spec,
        }
    )


# -- networking.istio.io ---------------------------------------------------------------------

string_match = one(exact=text, prefix=text, regex=re2_patterns)
header_match = st.one_of(string_match, st.just({}))
destination = opt({"host": hosts}, subset=names, port=opt({"number": st.integers(0, 65535)}))
header_ops = opt(
    set=st.dictionaries(names, text, max_size=2),
    add=st.dictionaries(names, text, max_size=2),
    remove=st.lists(names, max_size=2),
)
headers = opt(request=header_ops, response=header_ops)
match_request = opt(
    name=names,
    uri=string_match,
    scheme=string_match,
    method=one(exact=st.sampled_from(["GET", "POST", "PUT"])),
    authority=string_match,
    headers=st.dictionaries(names, header_match, max_size=3),
    withoutHeaders=st.dictionaries(names, header_match, max_size=2),
    queryParams=st.dictionaries(names, string_match, max_size=2),
    port=st.integers(0, 65535),
    sourceLabels=labels,
    gateways=st.lists(names, max_size=2),
    ignoreUriCase=st.booleans(),
    sourceNamespace=names,
    statPrefix=names,
)
percentage = opt(value=percents)
fault = opt(
    delay=opt(
        fixedDelay=durations,
        percentage=percentage,
        percent=st.integers(0, 100),
    ),
    abort=st.tuples(
        one(
            httpStatus=statuses,
            grpcStatus=st.sampled_from(["UNAVAILABLE", "DEADLINE_EXCEEDED"]),
            http2Error=st.just("REFUSED_STREAM"),
        ),
        opt(percentage=percentage),
    ).map(lambda t: {**t[0], **t[1]}),
)
retries = opt(
    attempts=small,
    perTryTimeout=durations,
    retryOn=st.sampled_from(["5xx", "gateway-error,connect-failure", "503,reset"]),
    retryRemoteLocalities=st.booleans(),
    retryIgnorePreviousHosts=st.booleans(),
    backoff=durations,
)
route_destination = opt({"destination": destination}, weight=st.integers(0, 100), headers=headers)
http_route = opt(
    name=names,
    match=st.lists(match_request, max_size=3),
    route=st.lists(route_destination, min_size=1, max_size=3),
    rewrite=opt(uri=text, authority=hosts, uriRegexRewrite=opt(match=re2_patterns, rewrite=text)),
    timeout=durations,
    retries=retries,
    fault=fault,
    mirror=destination,
    mirrors=st.lists(opt({"destination": destination}, percentage=percentage), max_size=2),
    mirrorPercentage=percentage,
    headers=headers,
    corsPolicy=opt(
        allowOrigins=st.lists(string_match, max_size=2),
        allowMethods=st.lists(st.sampled_from(["GET", "POST"]), max_size=2),
        maxAge=durations,
        allowCredentials=st.booleans(),
    ),
)
http_action = st.one_of(
    http_route,
    opt(
        {"redirect": opt(uri=text, authority=hosts, redirectCode=st.integers(300, 399))},
        name=names,
        match=st.lists(match_request, max_size=2),
    ),
    opt({"directResponse": opt({"status": statuses}, body=one(string=text))}),
    opt({"delegate": opt(name=names, namespace=names)}),
)
virtual_service_spec = opt(
    {"hosts": st.lists(hosts, min_size=1, max_size=3)},
    gateways=st.lists(st.one_of(st.just("mesh"), names, names.map(lambda n: f"edge/{n}"))),
    http=st.lists(http_action, max_size=4),
    exportTo=st.lists(st.sampled_from([".", "*"]), max_size=1),
)

consistent_hash = st.tuples(
    one(
        httpHeaderName=names,
        httpCookie=opt({"name": names}, path=text, ttl=durations),
        useSourceIp=st.booleans(),
        httpQueryParameterName=names,
    ),
    at_most_one(
        ringHash=opt(minimumRingSize=st.integers(1, 10**6)),
        maglev=opt(tableSize=st.integers(1, 65537)),
    ),
).map(lambda t: {**t[0], **t[1]})
load_balancer = st.tuples(
    at_most_one(
        simple=st.sampled_from(
            ["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"]
        ),
        consistentHash=consistent_hash,
    ),
    opt(
        warmup=opt(
            {"duration": durations},
            minimumPercent=st.floats(0, 100),
            aggression=st.floats(1, 10),
        ),
        warmupDurationSecs=durations,
    ),
).map(lambda t: {**t[0], **t[1]})
connection_pool = opt(
    tcp=opt(
        maxConnections=small,
        connectTimeout=durations,
        maxConnectionDuration=durations,
        idleTimeout=durations,
    ),
    http=opt(
        http1MaxPendingRequests=small,
        http2MaxRequests=small,
        maxRequestsPerConnection=small,
        maxRetries=small,
        idleTimeout=durations,
        h2UpgradePolicy=st.sampled_from(["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]),
        useClientProtocol=st.booleans(),
        maxConcurrentStreams=small,
    ),
)
outlier_detection = opt(
    consecutive5xxErrors=small,
    consecutiveGatewayErrors=small,
    consecutiveLocalOriginFailures=small,
    splitExternalLocalOriginErrors=st.booleans(),
    interval=durations,
    baseEjectionTime=durations,
    maxEjectionPercent=st.integers(0, 100),
    minHealthPercent=st.integers(0, 100),
)
traffic_policy = opt(
    loadBalancer=load_balancer,
    connectionPool=connection_pool,
    outlierDetection=outlier_detection,
    retryBudget=opt(percent=percentage, minRetryConcurrency=small),
)
destination_rule_spec = opt(
    {"host": hosts},
    trafficPolicy=traffic_policy,
    subsets=st.lists(opt({"name": names}, labels=labels, trafficPolicy=traffic_policy), max_size=3),
    exportTo=st.lists(st.sampled_from([".", "*"]), max_size=1),
)
gateway_spec = opt(
    selector=st.just({"istio": "ingressgateway"}) | labels,
    servers=st.lists(
        opt(
            {
                "port": opt(
                    {"number": ports, "protocol": st.sampled_from(["HTTP", "HTTPS", "HTTP2"])},
                    name=names,
                    targetPort=ports,
                ),
                "hosts": st.lists(hosts, min_size=1, max_size=3),
            },
            name=names,
            tls=opt(
                httpsRedirect=st.booleans(),
                mode=st.sampled_from(["SIMPLE", "MUTUAL", "PASSTHROUGH"]),
                credentialName=names,
            ),
        ),
        max_size=3,
    ),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
envoy_filter_spec = opt(
    workloadSelector=opt(labels=labels),
    configPatches=st.lists(
        opt(
            applyTo=st.sampled_from(["HTTP_FILTER", "HTTP_ROUTE", "CLUSTER", "LISTENER"]),
            match=st.dictionaries(names, json_values, max_size=2),
            patch=opt(
                operation=st.sampled_from(["INSERT_BEFORE", "MERGE", "ADD"]),
                value=st.one_of(
                    st.just({"name": "envoy.filters.http.local_ratelimit"}),
                    st.dictionaries(names, json_values, max_size=3),
                ),
            ),
        ),
        max_size=3,
    ),
    priority=st.integers(-10, 10),
)

# -- config.istio.io/v1alpha2 -----------------------------------------------------------------

istio_service = opt(name=names, namespace=names, domain=hosts, labels=labels)
legacy_match = one(exact=text, prefix=text, regex=re2_patterns)
route_rule_spec = opt(
    {"destination": st.one_of(istio_service, opt({"service": hosts}))},
    precedence=st.integers(-(2**31), 2**31 - 1),
    match=opt(
        source=istio_service,
        request=opt(
            headers=st.dictionaries(st.sampled_from(["uri", "cookie", "x-a"]), legacy_match)
        ),
    ),
    route=st.lists(
        opt(destination=istio_service, labels=labels, weight=st.integers(0, 100)), max_size=3
    ),
    rewrite=opt(uri=text, authority=hosts),
    websocketUpgrade=st.booleans(),
    httpReqTimeout=opt(simpleTimeout=opt(timeout=durations, overrideHeaderName=names)),
    httpReqRetries=opt(
        simpleRetry=opt({"attempts": small}, perTryTimeout=durations, overrideHeaderName=names)
    ),
    httpFault=opt(
        delay=st.tuples(
            one(fixedDelay=durations, exponentialDelay=opt(meanDelay=durations)),
            opt(percent=percents, overrideHeaderName=names),
        ).map(lambda t: {**t[0], **t[1]}),
        abort=st.tuples(
            one(
                httpStatus=st.integers(0, 600),
                grpcStatus=st.just("UNAVAILABLE"),
                http2Error=st.just("REFUSED_STREAM"),
            ),
            opt(percent=percents),
        ).map(lambda t: {**t[0], **t[1]}),
    ),
    mirror=istio_service,
    appendHeaders=st.dictionaries(names, text, max_size=2),
    corsPolicy=opt(allowOrigin=st.lists(text, max_size=2), maxAge=durations),
)
redirect_rule_spec = opt(
    {"destination": istio_service, "redirect": opt(uri=text, authority=hosts)},
    precedence=st.integers(0, 10),
)
destination_policy_spec = opt(
    {"destination": istio_service},
    source=istio_service,
    loadBalancing=opt(name=st.sampled_from(["ROUND_ROBIN", "LEAST_CONN", "RANDOM"])),
    circuitBreaker=opt(
        simpleCb=opt(
            maxConnections=small,
            httpMaxPendingRequests=small,
            httpMaxRequests=small,
            sleepWindow=durations,
            httpConsecutiveErrors=small,
            httpDetectionInterval=durations,
            httpMaxRequestsPerConnection=small,
            httpMaxEjectionPercent=st.integers(0, 100),
            httpMaxRetries=small,
        )
    ),
)
memquota_spec = opt(
    quotas=st.lists(
        opt(
            {"name": names, "maxAmount": small},
            validDuration=durations,
            overrides=st.lists(
                opt({"maxAmount": small}, dimensions=labels, validDuration=durations),
                max_size=2,
            ),
        ),
        max_size=3,
    ),
    minDeduplicationDuration=durations,
)
quota_spec = opt(dimensions=st.dictionaries(names, text, max_size=3))
mixer_rule_spec = opt(
    match=text,
    actions=st.lists(
        opt({"handler": names}, instances=st.lists(names, max_size=2), name=names), max_size=2
    ),
)
quota_spec_spec = opt(
    rules=st.lists(
        opt(
            match=st.lists(st.dictionaries(names, json_values, max_size=2), max_size=2),
            quotas=st.lists(opt({"quota": names}, charge=st.integers(0, 10)), max_size=2),
        ),
        max_size=2,
    )
)
quota_spec_binding_spec = opt(
    quotaSpecs=st.lists(opt({"name": names}, namespace=names), max_size=2),
    services=st.lists(opt({"name": names}, namespace=names, service=hosts), max_size=2),
)

# -- Kubernetes --------------------------------------------------------------------------------

ingress_paths = st.sampled_from(["/.*", "/status/.*", "/x", "/", "/api", ""])
path_types = st.sampled_from(["Exact", "Prefix", "ImplementationSpecific"])
beta_backend = opt({"serviceName": names, "servicePort": st.one_of(ports, names, ports.map(str))})
ingress_beta_spec = opt(
    ingressClassName=names,
    backend=beta_backend,
    rules=st.lists(
        opt(
            host=hosts,
            http=opt(
                {
                    "paths": st.lists(
                        opt({"backend": beta_backend}, path=ingress_paths, pathType=path_types),
                        min_size=1,
                        max_size=3,
                    )
                }
            ),
        ),
        max_size=2,
    ),
    tls=st.lists(opt(hosts=st.lists(hosts, max_size=2), secretName=names), max_size=1),
)
v1_backend = one(
    service=opt({"name": names}, port=one(number=ports, name=names)),
    resource=st.just({"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}),
)
ingress_v1_spec = opt(
    ingressClassName=names,
    defaultBackend=v1_backend,
    rules=st.lists(
        opt(
            host=hosts,
            http=opt(
                {
                    "paths": st.lists(
                        opt({"backend": v1_backend}, path=ingress_paths, pathType=path_types),
                        min_size=1,
                        max_size=3,
                    )
                }
            ),
        ),
        max_size=2,
    ),
)
service_spec = opt(
    ports=st.lists(
        opt(
            {"port": ports},
            name=names,
            protocol=st.sampled_from(["TCP", "UDP"]),
            targetPort=st.one_of(ports, names),
            nodePort=st.integers(30000, 32767),
            appProtocol=st.just("http"),
        ),
        max_size=3,
    ),
    selector=st.dictionaries(label_keys, names, max_size=2),
    type=st.sampled_from(["ClusterIP", "LoadBalancer", "NodePort"]),
    externalTrafficPolicy=st.sampled_from(["Cluster", "Local"]),
    loadBalancerClass=names,
    clusterIP=st.just("10.0.0.1"),
    sessionAffinity=st.just("None"),
)
deployment_spec = opt(
    replicas=st.integers(0, 50),
    selector=opt(matchLabels=st.dictionaries(label_keys, names, max_size=2)),
    template=opt(
        metadata=opt(labels=st.dictionaries(label_keys, names, max_size=3), annotations=labels),
        spec=st.just({"containers": [{"name": "httpbin", "image": "kennethreitz/httpbin"}]})
        | st.dictionaries(names, json_values, max_size=2),
    ),
    strategy=st.just({"type": "RollingUpdate"}),
)
pod_spec = st.just({"containers": [{"name": "istio-proxy", "image": "auto"}]})

# -- gateway.networking.k8s.io (istiolab.config.gatewayapi) ---------------------------------

gw_durations = st.sampled_from(["0s", "10s", "500ms", "1h30m", "2m", "1h2m3s4ms"])
gw_backend = opt(
    {"name": names}, namespace=names, port=ports, group=st.just(""), kind=st.just("Service")
)
gw_header_filter = opt(
    set=st.lists(opt({"name": names, "value": text}), max_size=2),
    add=st.lists(opt({"name": names, "value": text}), max_size=2),
    remove=st.lists(names, max_size=2),
)
gw_path_modifier = st.one_of(
    st.fixed_dictionaries({"type": st.just("ReplaceFullPath"), "replaceFullPath": text}),
    st.fixed_dictionaries({"type": st.just("ReplacePrefixMatch"), "replacePrefixMatch": text}),
)
gw_filter = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("RequestHeaderModifier"), "requestHeaderModifier": gw_header_filter}
    ),
    st.fixed_dictionaries(
        {"type": st.just("ResponseHeaderModifier"), "responseHeaderModifier": gw_header_filter}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("RequestMirror"),
            "requestMirror": opt({"backendRef": gw_backend}, percent=st.integers(0, 100)),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("RequestRedirect"),
            "requestRedirect": opt(
                scheme=st.sampled_from(["http", "https"]),
                hostname=hosts,
                port=ports,
                statusCode=st.sampled_from([301, 302]),
                path=gw_path_modifier,
            ),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("URLRewrite"), "urlRewrite": opt(hostname=hosts, path=gw_path_modifier)}
    ),
)
gw_match = opt(
    path=opt(type=st.sampled_from(["Exact", "PathPrefix"]), value=names.map(lambda n: "/" + n)),
    headers=st.lists(
        opt({"name": names, "value": names}, type=st.sampled_from(["Exact", "RegularExpression"])),
        max_size=2,
    ),
    queryParams=st.lists(opt({"name": names, "value": names}), max_size=2),
    method=st.sampled_from(["GET", "POST"]),
)
gw_parent = opt({"name": names}, namespace=names, sectionName=names, port=ports)
http_route_spec = opt(
    parentRefs=st.lists(gw_parent, max_size=2),
    hostnames=st.lists(hosts, max_size=2),
    rules=st.lists(
        opt(
            name=names,
            matches=st.lists(gw_match, max_size=2),
            filters=st.lists(gw_filter, max_size=2),
            backendRefs=st.lists(
                gw_backend.map(lambda b: {**b}) | opt({"name": names}, weight=st.integers(0, 100)),
                max_size=2,
            ),
            timeouts=opt(request=gw_durations, backendRequest=gw_durations),
        ),
        max_size=2,
    ),
)
grpc_route_spec = opt(
    parentRefs=st.lists(gw_parent, max_size=2),
    hostnames=st.lists(hosts, max_size=2),
    rules=st.lists(
        opt(
            matches=st.lists(opt(method=opt(service=names, method=names)), max_size=2),
            backendRefs=st.lists(
                opt({"name": names}, port=ports, weight=st.integers(0, 9)), max_size=2
            ),
        ),
        max_size=2,
    ),
)
k8s_gateway_spec = opt(
    {
        "gatewayClassName": names,
        "listeners": st.lists(
            opt(
                {"name": names, "port": ports, "protocol": st.sampled_from(["HTTP", "HTTPS"])},
                hostname=hosts,
                allowedRoutes=opt(
                    namespaces=st.fixed_dictionaries(
                        {},
                        optional={
                            "from": st.sampled_from(["All", "Same", "Selector"]),
                            "selector": opt(
                                matchLabels=st.dictionaries(label_keys, names, max_size=2)
                            ),
                        },
                    ),
                    kinds=st.lists(opt({"kind": st.just("HTTPRoute")}), max_size=1),
                ),
            ),
            min_size=1,
            max_size=3,
        ),
    }
)
gateway_class_spec = opt(
    {"controllerName": st.just("istio.io/gateway-controller")}, description=text
)
reference_grant_spec = st.fixed_dictionaries(
    {
        "from": st.lists(
            st.fixed_dictionaries(
                {
                    "group": st.just("gateway.networking.k8s.io"),
                    "kind": st.just("HTTPRoute"),
                    "namespace": names,
                }
            ),
            min_size=1,
            max_size=2,
        ),
        "to": st.lists(
            opt({"group": st.just(""), "kind": st.just("Service")}, name=names),
            min_size=1,
            max_size=2,
        ),
    }
)
namespace_spec = st.just({"finalizers": ["kubernetes"]})
service_entry_spec = opt(
    {"hosts": st.lists(hosts, min_size=1, max_size=3)},
    ports=st.lists(
        opt({"number": ports}, name=names, protocol=st.sampled_from(["HTTP", "HTTPS", "TLS"])),
        max_size=2,
    ),
    location=st.sampled_from(["MESH_EXTERNAL", "MESH_INTERNAL"]),
    resolution=st.sampled_from(["NONE", "STATIC", "DNS"]),
)

SPECS: dict[str, st.SearchStrategy[Any]] = {
    "VirtualService": virtual_service_spec,
    "DestinationRule": destination_rule_spec,
    "Gateway": gateway_spec,
    "EnvoyFilter": envoy_filter_spec,
    "ServiceEntry": service_entry_spec,
    "RouteRule": st.one_of(route_rule_spec, route_rule_spec, redirect_rule_spec),
    "DestinationPolicy": destination_policy_spec,
    "memquota": memquota_spec,
    "quota": quota_spec,
    "rule": mixer_rule_spec,
    "QuotaSpec": quota_spec_spec,
    "QuotaSpecBinding": quota_spec_binding_spec,
    "IngressV1Beta1": ingress_beta_spec,
    "IngressV1": ingress_v1_spec,
    "Service": service_spec,
    "Deployment": deployment_spec,
    "Pod": pod_spec,
    "gatewayapi.GatewayClass": gateway_class_spec,
    "gatewayapi.Gateway": k8s_gateway_spec,
    "gatewayapi.HTTPRoute": http_route_spec,
    "gatewayapi.GRPCRoute": grpc_route_spec,
    "gatewayapi.ReferenceGrant": reference_grant_spec,
    "gatewayapi.Namespace": namespace_spec,
}


def _spec_key(cls: type[Resource]) -> str:
    """The SPECS key of a kind: Ingress versions and the Gateway API kinds by class."""
    if cls.__module__.endswith(".gatewayapi"):
        return f"gatewayapi.{cls.__name__}"
    return cls.__name__ if cls.KIND == "Ingress" else cls.KIND


def strategy_for(cls: type[Resource]) -> st.SearchStrategy[dict[str, Any]]:
    return resource(cls.API_VERSIONS, cls.KIND, SPECS[_spec_key(cls)])


def test_every_kind_has_a_strategy() -> None:
    keys = {_spec_key(c) for c in KINDS}
    assert keys == set(SPECS)
    assert {REGISTRY[(v, c.KIND)] for c in KINDS for v in c.API_VERSIONS} == set(KINDS)


def _check_round_trip(cls: type[Resource], data: dict[str, Any]) -> None:
    res = cls.model_validate(data)
    # the model keeps every field it was given (nothing dropped or renamed)
    assert res.to_dict() == data
    text = dumps([res])
    assert dumps([res]) == text  # deterministic
    cs = loads(text, file="rt.yaml")
    assert cs.findings == ()
    assert len(cs) == 1
    back = cs.resources[0]
    assert type(back) is cls
    assert back == res
    assert back.to_dict() == data
    assert dumps(cs) == text
    origin = cs.origin(back)
    assert origin is not None
    assert origin.line == 1


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: f"{c.KIND}-{c.__name__}")
def test_round_trip(cls: type[Resource]) -> None:
    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=strategy_for(cls))
    def prop(data: dict[str, Any]) -> None:
        _check_round_trip(cls, data)

    prop()


def test_several_resources_round_trip_in_order() -> None:
    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(docs=st.lists(st.sampled_from(KINDS).flatmap(strategy_for), min_size=2, max_size=5))
    def prop(docs: list[dict[str, Any]]) -> None:
        resources = [REGISTRY[(d["apiVersion"], d["kind"])].model_validate(d) for d in docs]
        text = dumps(resources)
        cs = loads(text, file="rt.yaml")
        assert cs.findings == ()
        assert list(cs) == resources
        assert all(o is not None for o in cs.origins)
        assert [o.index for o in cs.origins if o is not None] == list(range(len(docs)))
        assert dumps(cs) == text

    prop()


def test_dumps_is_block_style_in_field_order() -> None:
    res = loads(
        "kind: Service\napiVersion: v1\nspec: {ports: [{port: 80}]}\nmetadata: {name: a}\n"
    ).resources[0]
    assert dumps([res]) == (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - port: 80\n"
    )
