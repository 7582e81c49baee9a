"""IL650–IL655: the AWS load balancer in front of the gateway, one broken/clean pair per check.

The clean Service is what the docs recommend: the AWS Load Balancer Controller, IP targets,
cross-zone on, the health check on Envoy's readiness endpoint 15021 ``/healthz/ready``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from istiolab.config import codecs, loads
from istiolab.config.aws_checks import read_load_balancer
from istiolab.config.validate import validate

P = "service.beta.kubernetes.io/"
AWS_CODES = {"IL650", "IL651", "IL652", "IL653", "IL654", "IL655"}
COVERED = frozenset(AWS_CODES)
"""Codes with a broken/clean pair below (tests/analyzer/common.py counts them)."""


def service(**annotations: str | None) -> dict[str, Any]:
    ann = {
        P + "aws-load-balancer-type": "external",
        P + "aws-load-balancer-nlb-target-type": "ip",
        P + "aws-load-balancer-scheme": "internet-facing",
        P + "aws-load-balancer-attributes": "load_balancing.cross_zone.enabled=true",
        P + "aws-load-balancer-healthcheck-protocol": "http",
        P + "aws-load-balancer-healthcheck-port": "15021",
        P + "aws-load-balancer-healthcheck-path": "/healthz/ready",
    }
    for key, value in annotations.items():
        name = P + key.replace("_", "-")
        if value is None:
            ann.pop(name, None)
        else:
            ann[name] = value
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "istio-ingressgateway",
            "namespace": "istio-system",
            "annotations": ann,
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": {"istio": "ingressgateway"},
            "ports": [
                {"name": "status-port", "port": 15021, "targetPort": 15021, "nodePort": 31021},
                {"name": "http2", "port": 80, "targetPort": 8080, "nodePort": 30080},
            ],
        },
    }


def pod(name: str, zone: str, *, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "istio-system",
            "labels": {"istio": "ingressgateway", "topology.kubernetes.io/zone": zone},
        },
        "spec": {"nodeName": f"node-{name}"},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def aws(*docs: dict[str, Any]) -> list[Any]:
    config = loads(codecs.dumps(list(docs)), file="gw.yaml")
    return [f for f in validate(config) if f.code in AWS_CODES]


def test_clean_service_has_no_aws_finding() -> None:
    assert aws(service(), pod("a1", "a"), pod("b1", "b")) == []


def test_a_bare_load_balancer_service_may_be_any_clouds() -> None:
    """No aws-load-balancer-* annotation, no AWS class: not linted (it could be GKE's)."""
    bare = service()
    bare["metadata"]["annotations"] = {}
    assert aws(bare) == []
    bare["metadata"]["annotations"] = {P + "aws-load-balancer-internal": "true"}  # in-tree CLB
    assert {f.code for f in aws(bare)} == {"IL650", "IL652"}


def test_il650_health_check_not_readiness() -> None:
    (f,) = aws(service(aws_load_balancer_healthcheck_port="traffic-port"))
    assert f.code == "IL650"
    assert f.resource == "Service/istio-system/istio-ingressgateway"
    assert "HTTP:traffic-port/healthz/ready" in f.message
    assert f.file == "gw.yaml"
    assert f.line
    # the default health check (TCP on the traffic port) is not readiness either
    tcp = aws(
        service(
            aws_load_balancer_healthcheck_protocol=None,
            aws_load_balancer_healthcheck_port=None,
            aws_load_balancer_healthcheck_path=None,
        )
    )
    assert [f.code for f in tcp] == ["IL650"]
    assert "TCP:traffic-port" in tcp[0].message
    # instance targets may check the status port's nodePort
    assert aws(service(aws_load_balancer_healthcheck_port="31021"), pod("a1", "a")) == []


def test_il651_cross_zone_off_with_uneven_pods() -> None:
    pods = [pod("a1", "a"), pod("b1", "b"), pod("b2", "b"), pod("c1", "c"), pod("c2", "c")]
    pods.append(pod("c3", "c"))
    (f,) = aws(service(aws_load_balancer_attributes=None), *pods)
    assert f.code == "IL651"
    # each AZ gets 1/3; a's one pod 33.3 %, b's two 16.7 % each, c's three 11.1 % each
    assert "a: 1 pod(s), 33.3% each; b: 2 pod(s), 16.7% each; c: 3 pod(s), 11.1% each" in (
        f.message
    )
    # clean: even spread (an unready pod does not count), or cross-zone on
    even = [pod("a1", "a"), pod("b1", "b"), pod("b2", "b", ready=False)]
    assert aws(service(aws_load_balancer_attributes=None), *even) == []
    assert aws(service(), *pods) == []


def test_il652_instance_targets_with_cluster_policy() -> None:
    broken = service(aws_load_balancer_nlb_target_type="instance")
    (f,) = aws(broken)
    assert (f.code, f.path) == ("IL652", "spec.externalTrafficPolicy")
    clean = copy.deepcopy(broken)
    clean["spec"]["externalTrafficPolicy"] = "Local"
    assert aws(clean) == []


def test_il653_interval_not_greater_than_timeout() -> None:
    (f,) = aws(
        service(
            aws_load_balancer_healthcheck_interval="5", aws_load_balancer_healthcheck_timeout="5"
        )
    )
    assert f.code == "IL653"
    assert f.severity.value == "error"
    assert "interval 5 s is not greater than its timeout 5 s" in f.message
    # one set below the other's default: an HTTP check's timeout is 6 s
    (f,) = aws(service(aws_load_balancer_healthcheck_interval="5"))
    assert "interval 5 s is not greater than its timeout 6 s" in f.message
    assert (
        aws(
            service(
                aws_load_balancer_healthcheck_interval="10",
                aws_load_balancer_healthcheck_timeout="5",
            )
        )
        == []
    )


def test_il654_clb_idle_timeout_on_an_nlb() -> None:
    (f,) = aws(service(aws_load_balancer_connection_idle_timeout="400"))
    assert f.code == "IL654"
    assert f.path.endswith("aws-load-balancer-connection-idle-timeout")
    clean = aws(
        service(**{"aws-load-balancer-listener-attributes.TCP-80": "tcp.idle_timeout.seconds=400"})
    )
    assert clean == []


def test_il655_unreadable_value() -> None:
    (f,) = aws(service(aws_load_balancer_healthcheck_interval="10s"))
    assert f.code == "IL655"
    assert "'10s' is not an integer from 5 to 300" in f.message
    assert aws(service(aws_load_balancer_healthcheck_interval="10")) == []


@pytest.mark.parametrize(
    ("annotations", "spec", "want"),
    [
        # the controller (v2.9+): external + ip, internal by default, cross-zone from attributes
        (
            {"aws-load-balancer-type": "external", "aws-load-balancer-nlb-target-type": "ip"},
            {},
            ("nlb", "ip", "internal", None, "TCP", "traffic-port", 10, 10, 3, 3),
        ),
        # deprecated nlb-ip; Local: HTTP on kube-proxy's healthCheckNodePort /healthz
        (
            {"aws-load-balancer-type": "nlb-ip"},
            {"externalTrafficPolicy": "Local"},
            ("nlb", "ip", "internal", None, "HTTP", "healthCheckNodePort", 10, 6, 3, 3),
        ),
        # the in-tree NLB: instance targets, internet-facing unless annotated internal
        (
            {"aws-load-balancer-type": "nlb", "aws-load-balancer-internal": "true"},
            {},
            ("nlb", "instance", "internal", None, "TCP", "traffic-port", 10, 10, 3, 3),
        ),
        # no type: the in-tree Classic ELB with cloud-provider-aws's defaults
        (
            {"aws-load-balancer-cross-zone-load-balancing-enabled": "true"},
            {},
            ("clb", "instance", "internet-facing", True, "TCP", "traffic-port", 10, 5, 2, 6),
        ),
    ],
)
def test_read_load_balancer_defaults(
    annotations: dict[str, str], spec: dict[str, Any], want: tuple[Any, ...]
) -> None:
    svc = {
        "metadata": {"annotations": {P + k: v for k, v in annotations.items()}},
        "spec": {"type": "LoadBalancer", **spec},
    }
    lb = read_load_balancer(svc)
    assert lb is not None
    hc = lb.health_check
    got = (lb.lb, lb.target_type, lb.scheme, lb.cross_zone, hc.protocol, hc.port)
    assert (*got, hc.interval_s, hc.timeout_s, hc.healthy_threshold, hc.unhealthy_threshold) == want


def test_read_load_balancer_attributes() -> None:
    lb = read_load_balancer(
        {
            "metadata": {
                "annotations": {
                    P + "aws-load-balancer-type": "external",
                    P + "aws-load-balancer-target-group-attributes": (
                        "deregistration_delay.timeout_seconds=30,proxy_protocol_v2.enabled=true"
                    ),
                    P + "aws-load-balancer-listener-attributes.TCP-443": (
                        "tcp.idle_timeout.seconds=900"
                    ),
                    # the deprecated annotation loses to the attributes annotation
                    P + "aws-load-balancer-cross-zone-load-balancing-enabled": "true",
                    P + "aws-load-balancer-attributes": "load_balancing.cross_zone.enabled=false",
                }
            },
            "spec": {"type": "LoadBalancer"},
        }
    )
    assert lb is not None
    assert (lb.deregistration_delay_s, lb.proxy_protocol, dict(lb.tcp_idle_timeout_s)) == (
        30,
        True,
        {443: 900},
    )
    assert lb.cross_zone is False
    assert read_load_balancer({"spec": {"type": "ClusterIP"}}) is None
    other = {"spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb"}}
    assert read_load_balancer(other) is None
