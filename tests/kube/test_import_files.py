"""``cluster import --from-files``: the same import as a live cluster's, from YAML files, and the
gateway Service's AWS annotations mapped into the scenario's ``aws`` block and linted.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from istiolab.config import codecs
from istiolab.kube import inspect_cluster
from istiolab.kube.files import import_files
from istiolab.kube.memory import InMemoryCluster

from . import _seed as seed
from .test_cli import _app

P = "service.beta.kubernetes.io/"


def _objects() -> list[dict[str, Any]]:
    return [*seed.topology(), seed.gateway(), seed.virtual_service(), seed.destination_rule()]


def _dump(tmp_path: Path) -> Path:
    """The objects as a CI job has them: a directory of files, one a kubectl List."""
    root = tmp_path / "dump"
    (root / "istio").mkdir(parents=True)
    objs = _objects()
    topo = objs[: len(seed.topology())]
    (root / "topology.yaml").write_text(
        codecs.dumps([{"apiVersion": "v1", "kind": "List", "items": topo}]), encoding="utf-8"
    )
    (root / "istio" / "routing.yaml").write_text(
        codecs.dumps(
            [*objs[len(topo) :], {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}]
        ),
        encoding="utf-8",
    )
    return root


def test_same_scenario_as_the_live_import(tmp_path: Path) -> None:
    live = InMemoryCluster(context="files", namespace="shop")
    for obj in _objects():
        live.seed(copy.deepcopy(obj))
    want = inspect_cluster(live, "shop")
    got, files = import_files([_dump(tmp_path)])
    assert files.cluster.namespace == "shop"  # the namespace of most Services/Deployments
    assert got.scenario.model_dump(exclude={"source"}) == want.scenario.model_dump(
        exclude={"source"}
    )
    assert [r.key for r in got.config] == [r.key for r in want.config]
    assert "kinds istiolab does not read, left out: ConfigMap (1)" in got.notes
    # findings and origins name the file and line the object was written at
    origin = got.config.origin(next(r for r in got.config if r.kind == "VirtualService"))
    assert origin is not None
    assert str(origin.file).endswith("routing.yaml")


def _gateway_service(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    svc = copy.deepcopy(next(o for o in seed.topology() if o["kind"] == "Service"))
    svc["metadata"]["annotations"] = {P + k: v for k, v in annotations.items()}
    svc["spec"].update(spec)
    return svc


def _with_service(
    svc: dict[str, Any], extra: tuple[dict[str, Any], ...] = ()
) -> list[dict[str, Any]]:
    objs = [
        o
        for o in _objects()
        if not (o["kind"] == "Service" and o["metadata"]["name"] == "istio-ingressgateway")
    ]
    return [*objs, svc, *extra]


def test_aws_block_from_controller_annotations(tmp_path: Path) -> None:
    svc = _gateway_service(
        {
            "aws-load-balancer-type": "external",
            "aws-load-balancer-nlb-target-type": "ip",
            "aws-load-balancer-scheme": "internet-facing",
            "aws-load-balancer-attributes": "load_balancing.cross_zone.enabled=false",
            "aws-load-balancer-healthcheck-protocol": "http",
            "aws-load-balancer-healthcheck-port": "15021",
            "aws-load-balancer-healthcheck-path": "/healthz/ready",
            "aws-load-balancer-healthcheck-interval": "5",
            "aws-load-balancer-healthcheck-timeout": "2",
            "aws-load-balancer-healthcheck-healthy-threshold": "2",
            "aws-load-balancer-healthcheck-unhealthy-threshold": "2",
            "aws-load-balancer-target-group-attributes": "deregistration_delay.timeout_seconds=30",
            "aws-load-balancer-listener-attributes.TCP-80": "tcp.idle_timeout.seconds=120",
            "aws-load-balancer-proxy-protocol": "*",
        },
        externalTrafficPolicy="Cluster",
    )
    path = tmp_path / "all.yaml"
    path.write_text(codecs.dumps(_with_service(svc)), encoding="utf-8")
    result, _ = import_files([path], "shop")
    aws = result.scenario.aws
    assert (aws.lb, aws.target_type, aws.cross_zone, aws.external_traffic_policy) == (
        "nlb",
        "ip",
        False,
        "Cluster",
    )
    assert aws.idle_timeout_s == 120
    hc = aws.health_check
    assert (hc.interval_s, hc.healthy_threshold, hc.unhealthy_threshold) == (5, 2, 2)
    text = "\n".join(result.notes)
    assert "NLB by the AWS Load Balancer Controller (aws-load-balancer-type: external)" in text
    assert "internet-facing" in text
    assert "health check HTTP:15021/healthz/ready every 5 s, timeout 2 s" in text
    assert "deregistration delay 30 s; proxy protocol v2 on" in text
    # every value read is in the block, recorded where the simulator does not act on it
    assert (hc.protocol, hc.port, hc.path, hc.timeout_s) == ("HTTP", 15021, "/healthz/ready", 2)
    assert (aws.scheme, aws.deregistration_delay_s, aws.proxy_protocol) == (
        "internet-facing",
        30,
        True,
    )
    assert aws.listener_idle_timeouts_s == {80: 120}
    # the YAML written out carries the block (and the notes as comments)
    data = codecs.load_data(result.scenario_yaml())
    assert data["aws"]["health_check"]["interval_s"] == 5
    assert result.findings == ()  # readiness check, ip targets: nothing hurts


def test_uneven_azs_with_cross_zone_off_found_from_nodes(tmp_path: Path) -> None:
    """1/2/3 gateway pods in three AZs, zones from the Nodes: IL651 with each pod's share."""
    nodes = [seed.node(f"gw-node-{z}", f"us-east-1{z}", "3920m") for z in "abc"]
    gw_pods = [
        seed.pod(f"gw-{z}{i}", seed.GW_NS, seed.GW_LABELS, f"gw-node-{z}", True, sidecar=False)
        for z, n in zip("abc", (1, 2, 3), strict=True)
        for i in range(n)
    ]
    svc = _gateway_service(
        {"aws-load-balancer-type": "external", "aws-load-balancer-nlb-target-type": "ip"},
        externalTrafficPolicy="Local",
    )
    objs = [
        o
        for o in _with_service(svc, (*nodes, *gw_pods))
        if not (o["kind"] == "Pod" and o["metadata"]["name"] in ("gw-a", "gw-b"))
    ]
    path = tmp_path / "uneven.yaml"
    path.write_text(codecs.dumps(objs), encoding="utf-8")
    result, _ = import_files([path], "shop")
    (f,) = [f for f in result.findings if f.code == "IL651"]
    assert "us-east-1a: 1 pod(s), 33.3% each" in f.message
    assert "us-east-1c: 3 pod(s), 11.1% each" in f.message
    assert f.file == str(path)
    doc = codecs.loads(path.read_text(), str(path))[objs.index(svc)]
    assert f.line == doc.line_of(("metadata", "annotations")) > doc.line


def test_cli_from_files(tmp_path: Path) -> None:
    root = _dump(tmp_path)
    out = tmp_path / "sc.yaml"
    runner = CliRunner()
    stdin = codecs.dumps([seed.virtual_service(80, 20)])
    result = runner.invoke(
        _app(),
        [
            "cluster",
            "import",
            "--from-files",
            str(root / "topology.yaml"),
            "-",
            "--output-file",
            str(out),
        ],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    data = codecs.load_data(out.read_text())
    assert data["aws"]["lb"] == "nlb"
    assert [s["name"] for s in data["services"]] == ["web"]
    assert any(r["kind"] == "VirtualService" for r in data["rules"]["inline"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cluster", "import", "x.yaml"], "without --from-files"),
        (["cluster", "import", "--from-files"], "--from-files needs PATHS"),
        (["cluster", "import", "--from-files", "x.yaml", "--context", "prod"], "reads no cluster"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_missing_file_is_a_finding(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["cluster", "import", "--from-files", str(tmp_path / "nope.yaml")]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "IL005" in result.output
    assert "nope.yaml" in result.output
    assert "cannot read" in result.output


MALFORMED = """\
apiVersion: v1
kind: Service
metadata: {name: gw, namespace: 7, annotations: {a: x}}
spec: {type: LoadBalancer, selector: {istio: ingressgateway}}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: istio-system, labels: {istio: ingressgateway}}
spec: []
---
just a string
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: [x]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: shop}
spec: {replicas: REPLICAS, template: {metadata: {labels: {app: web}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 80}]}
"""


def test_cli_malformed_objects_are_left_out_with_notes(tmp_path: Path) -> None:
    """Objects no API server would store are left out, each with a note; a schema error in a
    workload is a finding (exit 1); never a traceback.
    """
    path = tmp_path / "bad.yaml"
    path.write_text(MALFORMED.replace("REPLICAS", "3"), encoding="utf-8")
    result = CliRunner().invoke(_app(), ["cluster", "import", "--from-files", str(path)])
    assert result.exit_code == 0, result.output
    for note in (
        "bad.yaml:1: Service gw: metadata.namespace is not a string; left out",
        "bad.yaml:6: Pod p: spec is not a mapping; left out",
        "bad.yaml:11: not a Kubernetes object; left out",
        "bad.yaml:13: Gateway without metadata.name; left out",
    ):
        assert note in result.output
    path.write_text(MALFORMED.replace("REPLICAS", '"three"'), encoding="utf-8")
    result = CliRunner().invoke(_app(), ["cluster", "import", "--from-files", str(path)])
    assert result.exit_code == 1
    assert "bad.yaml:20: error IL103 Deployment/shop/d spec.replicas" in result.output
    assert "Traceback" not in result.output
