"""The scenario topology graph, its flows after a run, and its drawing."""

from __future__ import annotations

import networkx as nx
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from istiolab.lab import scenario, topology
from istiolab.sim.engine import simulate
from istiolab.sim.results import Result
from istiolab.sim.scenario import Scenario


def kinds(g: nx.DiGraph, kind: str) -> list[str]:
    return [d["name"] for _, d in g.nodes(data=True) if d["kind"] == kind]


@pytest.fixture(scope="module")
def canary() -> Scenario:
    return scenario("canary-90-10").with_overrides({"run.duration_s": 4, "run.warmup_s": 1})


@pytest.fixture(scope="module")
def canary_result(canary: Scenario) -> Result:
    return simulate(canary, 1)


def test_layers_and_names_follow_the_engine(canary: Scenario) -> None:
    g = topology.graph(canary)
    assert nx.is_directed_acyclic_graph(g)
    assert kinds(g, "client") == ["users"]
    assert kinds(g, "lb") == ["us-east-1a", "us-east-1b"]
    assert kinds(g, "ingress_node") == ["ingress-us-east-1a-0", "ingress-us-east-1b-0"]
    assert kinds(g, "gateway_pod") == ["istio-ingressgateway-0", "istio-ingressgateway-1"]
    assert kinds(g, "route") == ["canary"]
    assert sorted(kinds(g, "cluster")) == [
        "outbound|80|v1|webui.default.svc.cluster.local",
        "outbound|80|v2|webui.default.svc.cluster.local",
    ]
    assert sorted(kinds(g, "pod")) == [f"webui-v1-{i}" for i in range(4)] + [
        "webui-v2-0",
        "webui-v2-1",
    ]
    for u, v in g.edges:
        assert g.nodes[v]["layer"] == g.nodes[u]["layer"] + 1 or g.edges[u, v]["kind"] == "hosts"


def test_weights_and_endpoints(canary: Scenario) -> None:
    g = topology.graph(canary)
    v1 = "cluster:outbound|80|v1|webui.default.svc.cluster.local"
    v2 = "cluster:outbound|80|v2|webui.default.svc.cluster.local"
    assert g.edges["route:canary", v1]["percent"] == pytest.approx(90.0)
    assert g.edges["route:canary", v2]["weight"] == 10
    assert sorted(g.successors(v2)) == ["pod:webui-v2-0", "pod:webui-v2-1"]
    assert {g.nodes[p]["az"] for p in g.successors(v2)} == {"us-east-1a", "us-east-1b"}


def test_cross_zone_and_traffic_policy_edges() -> None:
    sc = scenario("nlb-vs-alb-cross-zone")  # NLB, cross-zone off, externalTrafficPolicy Local
    g = topology.graph(sc)
    targets = [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == "target"]
    assert all(g.nodes[u]["az"] == g.nodes[v]["az"] for u, v in targets)
    assert len(targets) == 10
    proxies = [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == "kube_proxy"]
    assert not any(g.edges[e]["cross_node"] for e in proxies)  # Local: own pod only
    g = topology.graph(sc.with_overrides({"aws.lb": "alb"}))  # ALB: cross-zone on
    targets = [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == "target"]
    assert len(targets) == 2 * 10
    assert any(g.edges[e]["cross_zone"] for e in targets)
    g = topology.graph(sc.with_overrides({"aws.target_type": "ip"}))
    assert all(
        v.startswith("gateway_pod:") for _, v, d in g.edges(data=True) if d["kind"] == "target"
    )


def test_flows_after_a_run(canary: Scenario, canary_result: Result) -> None:
    g = topology.graph(canary, canary_result)
    summary = canary_result.summary()
    v2 = "cluster:outbound|80|v2|webui.default.svc.cluster.local"
    edge = g.edges["route:canary", v2]
    assert edge["rps"] == pytest.approx(float(summary.loc[summary["version"] == "v2", "rps"].sum()))
    assert edge["error_share"] == 0.0
    # every upstream attempt lands on one cluster -> pod edge
    pods = sum(d.get("rps", 0.0) for u, v, d in g.edges(data=True) if d["kind"] == "endpoint")
    assert pods == pytest.approx(canary_result.totals()["rps"], rel=0.02)
    assert g.nodes["ingress_node:ingress-us-east-1a-0"]["rps"] > 0
    dns = [d for _, _, d in g.edges(data=True) if d["kind"] == "dns"]
    assert sum(d["rps"] for d in dns) == pytest.approx(canary_result.totals()["rps"])


def test_error_share_of_a_flaky_backend() -> None:
    sc = scenario("retry-storm").with_overrides({"run.duration_s": 4, "events": []})
    g = topology.graph(sc, simulate(sc, 1))
    shares = [d["error_share"] for _, _, d in g.edges(data=True) if d["kind"] == "endpoint"]
    assert shares
    assert all(0.2 < s < 0.4 for s in shares)


def test_draw(canary: Scenario, canary_result: Result) -> None:
    ax = topology.draw(canary)
    assert isinstance(ax, Axes)
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [c.get_label() for c in collections] == [k.replace("_", " ") for k in topology.LAYERS]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == topology.graph(canary).number_of_edges()
    assert all(a.get_arrowstyle().__class__.__name__ == "CurveFilledB" for a in arrows)
    texts = [t.get_text() for t in ax.texts]
    assert "webui/v1" in texts
    assert "90 %" in texts
    assert next(t.get_text() for t in ax.get_xticklabels()) == "client"

    own = Figure().add_subplot()
    ax = topology.draw(canary, canary_result, ax=own)
    assert ax is own
    texts = [t.get_text() for t in ax.texts]
    assert any(t.endswith("/s") for t in texts)  # measured flows on the edges
    assert "(flows measured)" in ax.get_title()


def test_draw_can_be_projected(canary: Scenario, canary_result: Result) -> None:
    """Labels of 12 pt or more, above the edges; a legend; widths follow the request rates."""
    ax = topology.draw(canary, canary_result)
    names = [t for t in ax.texts if t.get_text().split("\n")[0] in ("webui/v1", "users", "canary")]
    assert names
    assert all(float(t.get_fontsize()) >= 12 for t in names)
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert all(t.get_zorder() > a.get_zorder() for t in names for a in arrows)
    legend = ax.get_legend()
    assert legend is not None
    entries = [t.get_text() for t in legend.get_texts()]
    assert {"client", "lb", "route", "pod"} <= set(entries)
    assert any(e.startswith("width") for e in entries)
    assert any("failed" in e for e in entries)
    g = topology.graph(canary)
    edges = list(g.edges)
    width = {edges[i]: a.get_linewidth() for i, a in enumerate(arrows)}
    v1 = next(
        e
        for e in edges
        if e[0] == "route:canary" and e[1].endswith("v1|webui.default.svc.cluster.local")
    )
    v2 = next(
        e
        for e in edges
        if e[0] == "route:canary" and e[1].endswith("v2|webui.default.svc.cluster.local")
    )
    assert width[v1] > 3 * width[v2]  # 90 % against 10 %


def test_draw_colours_failures() -> None:
    sc = scenario("retry-storm").with_overrides({"run.duration_s": 3, "events": []})
    ax = topology.draw(sc, simulate(sc, 1))
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    red = to_rgba(topology.ERROR_LEVELS[0][1])
    assert any(a.get_edgecolor()[:3] == red[:3] for a in arrows)  # the failing pods' edges
