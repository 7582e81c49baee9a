"""Widgets and workshop helpers, without a browser: they wrap the public API and stay in sync."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

import istiolab
from istiolab import lab
from istiolab.config import dumps
from istiolab.config.validate import validate
from istiolab.envoy.match import Request, explain
from istiolab.sim.engine import simulate
from istiolab.widgets import RuleDesigner, SimulationDashboard, VerifyPanel
from istiolab.widgets.designer import (
    COOKIE_REGEX,
    RouteForm,
    editable_routes,
    parse_headers,
    read_legacy,
    read_modern,
    write_legacy,
    write_modern,
)
from istiolab.widgets.params import DASHBOARD_PARAMS, MISSING, ParamSpec, get_dotted, make_widget


@pytest.fixture(scope="module")
def canary_sc() -> Any:
    return lab.scenario("canary-90-10").with_overrides({"run.duration_s": 3, "run.warmup_s": 1})


# -- lab ----------------------------------------------------------------------------------------


def test_check_says_right_wrong_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    lab.check(0.21, 0.2, why="the weight", tol=0.02)
    lab.check("Public ", "public", why="L4")
    lab.check({"b", "a"}, {"a", "b"}, why="sets")
    lab.check(3, 2, why="two of them")
    lab.check(None, 2, why="secret", hint="count")
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["\u2713 right: the weight", "\u2713 right: L4", "\u2713 right: sets"]
    assert out[3] == "\u2717 wrong: 3 is not it."  # the reason gives the answer away
    assert out[4].startswith("\u2717 not answered yet")
    assert "count" in out[4]
    assert "secret" not in out[4]  # the reason gives the answer away
    assert lab.is_right(1.0, 1.05, rel=0.1)
    assert not lab.is_right(True, 1)
    assert not lab.is_right(None, None)


def test_rich_html_of_model_objects() -> None:
    config = istiolab.load(lab.example("legacy", "cookie-ab.yaml"))
    assert "RouteRule" in lab.show(config)._repr_html_()
    bad = istiolab.loads(
        "apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\nmetadata: {name: x}\n"
        "spec: {destination: {name: a}, route: [{labels: {v: a}, weight: 60}]}\n"
    )
    html = lab.show(validate(bad))._repr_html_()
    assert "IL201" in html
    assert "error" in html
    assert "no findings" in lab.findings_html([])
    from istiolab.envoy.compile import compile

    expl = explain(compile(config), Request(host="webui", headers={"cookie": "user=beta"}))
    html = lab.show(expl)._repr_html_()
    assert "webui-beta-users" in html
    assert "matched" in html
    assert "webui-beta-users" in repr(lab.show(expl))
    with pytest.raises(TypeError, match="does not know"):
        lab.show(42)


def test_scenario_and_example_lookup() -> None:
    assert lab.scenario("cookie-ab").name == "cookie-ab"
    with pytest.raises(FileNotFoundError, match="known"):
        lab.scenario("no-such-scenario")
    assert lab.example("seed", "ingress.yaml").exists()
    rules = lab.rules_of(lab.scenario("deny-route"))  # files, relative to the scenario
    assert {r.kind for r in rules} >= {"RouteRule", "Ingress"}
    assert [r.kind for r in lab.rules_of(lab.scenario("canary-90-10"))] == [
        "Gateway",
        "VirtualService",
        "DestinationRule",
    ]


# -- designer: form <-> YAML ------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts",
    [
        ("legacy", "cookie-ab.yaml"),
        ("legacy", "canary-90-10.yaml"),
        ("legacy", "retries.yaml"),
        ("legacy", "timeout.yaml"),
        ("seed",),
        ("modern", "cookie-ab.yaml"),
        ("modern", "canary-90-10.yaml"),
        ("modern", "retries.yaml"),
        ("modern", "seed.yaml"),
    ],
)
def test_an_untouched_route_is_written_back_unchanged(parts: tuple[str, ...]) -> None:
    config = istiolab.load(lab.example(*parts))
    docs = [r.to_dict() for r in config]
    for ref in editable_routes(docs):
        doc = docs[ref.doc]
        if ref.http is None:
            assert write_legacy(doc, read_legacy(doc)) == doc
        else:
            http = doc["spec"]["http"][ref.http]
            assert write_modern(http, read_modern(http)) == http


def test_cookie_form_round_trip() -> None:
    http = {"route": [{"destination": {"host": "webui", "subset": "v2"}}]}
    form = read_modern(http)
    form.match_kind, form.match_value = "cookie", "user=beta"
    out = write_modern(http, form)
    regex = out["match"][0]["headers"]["cookie"]["regex"]
    assert regex == COOKIE_REGEX.format(pair="user=beta")
    back = read_modern(out)
    assert (back.match_kind, back.match_value) == ("cookie", "user=beta")
    form.match_kind = "any"
    assert "match" not in write_modern(out, form)


def test_legacy_form_writes_every_section() -> None:
    doc = istiolab.load(lab.example("legacy", "canary-90-10.yaml")).resources[0].to_dict()
    form = RouteForm(**{**read_legacy(doc).__dict__})
    form.weights = [70, 30]
    form.match_kind, form.match_type, form.match_value = "uri", "prefix", "/api"
    form.abort_percent, form.abort_status = 10.0, 503
    form.delay_percent, form.delay_s = 50.0, 0.2
    form.retries, form.attempts, form.per_try_timeout_s = True, 2, 0.5
    form.timeout_s = 1.5
    spec = write_legacy(doc, form)["spec"]
    assert [r["weight"] for r in spec["route"]] == [70, 30]
    assert spec["match"]["request"]["headers"]["uri"] == {"prefix": "/api"}
    assert spec["httpFault"]["abort"] == {"percent": 10, "httpStatus": 503}
    assert spec["httpFault"]["delay"] == {"percent": 50, "fixedDelay": "200ms"}
    assert spec["httpReqRetries"] == {"simpleRetry": {"attempts": 2, "perTryTimeout": "500ms"}}
    assert spec["httpReqTimeout"] == {"simpleTimeout": {"timeout": "1500ms"}}
    assert read_legacy(write_legacy(doc, form)) == form


def test_parse_headers() -> None:
    assert parse_headers("Cookie: a=b; user=beta\n\nx-test:1\nnot a header") == {
        "cookie": "a=b; user=beta",
        "x-test": "1",
    }


# -- designer: the widget ---------------------------------------------------------------------


def test_designer_updates_yaml_findings_explain_and_simulation(canary_sc: Any) -> None:
    d = RuleDesigner(lab.rules_of(canary_sc), scenario=canary_sc)
    assert [s.description for s in d.sliders] == ["v1", "v2"]
    assert "weight: 90" in d.preview.value
    assert d.plot.value
    first_plot, updates = d.plot.value, d.updates
    d.sliders[0].value = 60  # what a browser does: the other slider follows
    assert [s.value for s in d.sliders] == [60, 40]
    assert d.updates == updates + 1
    assert "weight: 60" in d.yaml()
    assert "weight: 40" in d.yaml()
    assert d.plot.value != first_plot
    assert d.result is not None
    shares = d.result.summary().groupby("version")["requests"].sum()
    assert abs(shares["v2"] / shares.sum() - 0.4) < 0.06
    assert d.findings == []
    assert "canary" in d.explain_view.value

    d.balance.value = False
    d.sliders[0].value = 0
    d.sliders[1].value = 0  # a zero total is invalid in every Istio version
    assert any(f.severity.value == "error" for f in d.findings)
    assert d.table is None
    assert "does not compile" in d.status.value
    assert "not simulated" in d.share_view.value


def test_designer_on_legacy_rules_previews_both_forms() -> None:
    d = RuleDesigner(istiolab.load(lab.example("legacy", "cookie-ab.yaml")))
    assert d.legacy
    assert [r.label for r in d.routes] == [
        "RouteRule webui-beta-users",
        "RouteRule webui-default",
    ]
    assert d.match_kind.value == "cookie"
    assert d.match_value.value == "user=beta"
    assert "kind: RouteRule" in d.yaml()
    d.flavour.value = "modern (converted)"
    assert "kind: VirtualService" in d.yaml()
    assert "RouteRule" not in d.yaml()
    expl = d.explain("/", "cookie: theme=dark;user=beta", host="webui")
    assert expl is not None
    assert expl.decision.route is not None
    assert expl.decision.route.source.name == "webui-beta-users"
    d.set(match_value="user=tester")
    expl = d.explain("/", "cookie: user=beta")
    assert expl is not None
    assert expl.decision.route is not None
    assert expl.decision.route.source.name == "webui-default"
    # switching routes keeps the edit of the route that was left
    d.route_picker.value = 1
    assert d.match_kind.value == "any"
    assert "user=tester" in dumps(d.config)
    with pytest.raises(KeyError, match="unknown field"):
        d.set(colour="blue")


def test_designer_fault_changes_what_the_simulation_sees() -> None:
    sc = lab.scenario("deny-route").with_overrides({"run.duration_s": 3})
    d = RuleDesigner(lab.rules_of(sc), scenario=sc)
    assert d.abort_percent.value == 100.0
    assert d.abort_status.value == 403
    assert d.result is not None
    assert d.result.totals()["flags"] == {"FI": d.result.totals()["requests"]}
    d.set(abort_percent=0.0)
    assert "httpFault" not in d.yaml()
    assert d.result.totals()["upstream_requests"] == d.result.totals()["requests"]


def test_designer_needs_a_route() -> None:
    with pytest.raises(ValueError, match="no route"):
        RuleDesigner(istiolab.load(lab.example("seed", "httpbin.yaml")))


# -- dashboard --------------------------------------------------------------------------------


def test_params_are_declared_data() -> None:
    sc = lab.scenario("nlb-vs-alb-cross-zone")
    assert get_dotted(sc, "aws.lb") == "nlb"
    assert get_dotted(sc, "services.web.versions.v1.replicas_per_az") == 4
    assert get_dotted(sc, "no.such.path") is MISSING
    w = make_widget(ParamSpec("ingress.nodes_per_az", "nodes", "int", 1, 8), sc)
    assert w.disabled
    assert "not a single value" in w.tooltip
    w = make_widget(ParamSpec("aws.lb", "lb", "choice", options=("nlb", "alb")), sc)
    assert w.value == "nlb"
    assert not w.disabled
    assert {p.path for p in DASHBOARD_PARAMS} >= {"aws.lb", "aws.cross_zone", "az_loss"}


def test_dashboard_run_in_process() -> None:
    dash = SimulationDashboard(lab.scenario("az-loss").with_overrides({"run.duration_s": 6}))
    try:
        assert dash.overrides() == {}
        dash.set(**{"aws.lb": "alb", "traffic.0.arrival.rate_rps": 200, "pod_crash": True})
        ov = dash.overrides()
        assert ov["aws.lb"] == "alb"
        assert ov["traffic.0.arrival.rate_rps"] == 200
        assert ov["events"][-1]["kind"] == "pod_crash"
        result = dash.run()
        assert result.params == {
            "aws.lb": "alb",
            "traffic.0.arrival.rate_rps": 200,
            "pod_crash": True,
        }
        # the tab in view is drawn at once, each other one when it is opened
        assert dash.images[0].value
        assert not any(img.value for img in dash.images[1:])
        for i in range(1, len(dash.images)):
            dash.tabs.selected_index = i
            assert dash.images[i].value
        drawn = [img.value for img in dash.images]
        dash.tabs.selected_index = 0  # going back does not draw again
        assert [img.value for img in dash.images] == drawn
        dash.set(**{"traffic.0.arrival.rate_rps": 300})
        dash.run()  # a new run draws the tab in view and drops the others
        assert dash.images[0].value != drawn[0]
        dash.tabs.selected_index = 1
        assert dash.images[1].value != drawn[1]
        assert "requests" in dash.status.value
        assert "<table" in dash.summary.value
        with pytest.raises(KeyError, match="no knob"):
            dash.set(colour="blue")
    finally:
        dash.close()


def test_dashboard_background_run_and_cancel() -> None:
    dash = SimulationDashboard(lab.scenario("canary-90-10").with_overrides({"run.duration_s": 3}))
    try:
        dash.run_button.click()
        assert dash.wait(60)
        assert dash.result is not None
        assert dash.progress.value == 1.0
        assert not dash.run_button.disabled
        assert dash.cancel_button.disabled
        first = dash.result

        dash.set(**{"run.duration_s": 120.0, "traffic.0.arrival.rate_rps": 4000})
        job = dash.start()
        assert job is not None
        assert dash.cancel_button.disabled is False
        deadline = time.monotonic() + 30
        while job.reported is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.reported is not None, "the worker reported no progress"
        assert 0 < job.reported < 1  # measured simulated time, not an estimate
        while dash.progress.value == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the bar is set from the runner's thread right after
        assert 0 < dash.progress.value < 1
        dash.cancel_button.click()
        assert dash.wait(30)
        assert job.state == "cancelled"
        assert "cancelled" in dash.status.value
        assert dash.result is first  # the plots still show the last finished run
        assert dash.runner._proc is None  # the worker was stopped, not left computing

        dash.set(**{"run.duration_s": 3.0, "traffic.0.arrival.rate_rps": 100})
        job = dash.start()
        assert job is not None
        assert dash.wait(60)
        assert job.state == "done"
    finally:
        dash.close()


# -- verify panel -----------------------------------------------------------------------------


def test_verify_panel_reports_missing_envoy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIOLAB_ENVOY", "/nonexistent/envoy")
    panel = VerifyPanel(istiolab.load(lab.example("seed")))
    assert panel.run() is None
    assert "envoy" in panel.status.value.lower()
    assert panel.error


@pytest.mark.envoy
def test_verify_panel_on_a_real_envoy() -> None:
    pytest.importorskip("envoy")
    designer = RuleDesigner(istiolab.load(lab.example("legacy", "cookie-ab.yaml")))
    panel = VerifyPanel(designer, requests=50)
    panel.button.click()
    assert panel.wait(60)
    assert panel.report is not None
    assert panel.report.ok
    assert "agree with Envoy" in panel.table.value
    designer.set(match_value="user=tester")  # the panel verifies the designer's current rules
    assert panel.config() is designer.config
    report = panel.run()
    assert report is not None
    assert report.ok
    assert report.cases >= 2


# -- apply panel ------------------------------------------------------------------------------


def test_apply_panel_dry_run_confirm_apply_and_rollback(tmp_path: Any) -> None:
    from istiolab.kube import BackupStore, InMemoryCluster
    from istiolab.widgets import ApplyPanel

    designer = RuleDesigner(lab.rules_of(lab.scenario("canary-90-10")))
    cluster = InMemoryCluster()
    panel = ApplyPanel(designer, cluster=cluster, backups=BackupStore(tmp_path))
    assert list(panel.clusters) == ["in-memory"]
    assert panel.apply_button.disabled  # nothing before a dry run

    plan = panel.dry_run()
    assert plan is not None
    assert [s.action for s in plan.steps] == ["create", "create", "create"]
    assert "+      weight: 90" in panel.diff.value
    assert not panel.apply_button.disabled
    assert cluster.get("VirtualService", "default", "webui") is None  # a dry run changes nothing

    assert panel.apply() is None  # no confirmation, no apply
    assert cluster.get("VirtualService", "default", "webui") is None
    panel.apply_button.click()
    assert panel.confirm_box.layout.display == "flex"
    assert "Apply 3 change(s)" in panel.confirm_text.value
    panel.confirm_button.click()
    assert panel.report is not None
    assert panel.report.ok
    assert cluster.get("VirtualService", "default", "webui") is not None

    designer.set_weights(60, 40)
    assert panel.apply(confirm=True) is None  # no plan for these rules yet
    panel.dry_run()
    assert "-      weight: 90" in panel.diff.value
    assert "+      weight: 60" in panel.diff.value
    designer.set_weights(55, 45)  # edited after the dry run: the plan is stale
    assert panel.stale
    assert panel.apply(confirm=True) is None
    assert "dry-run again" in panel.status.value
    panel.dry_run()
    assert panel.apply(confirm=True) is not None
    vs = cluster.get("VirtualService", "default", "webui")
    assert vs is not None
    assert vs["spec"]["http"][0]["route"][0]["weight"] == 55

    panel.rollback_button.click()
    assert panel.rollback_report is not None
    assert panel.rollback_report.ok
    vs = cluster.get("VirtualService", "default", "webui")
    assert vs is not None
    assert vs["spec"]["http"][0]["route"][0]["weight"] == 90


def test_apply_panel_reports_refusals(tmp_path: Any) -> None:
    from istiolab.kube import BackupStore, InMemoryCluster
    from istiolab.widgets import ApplyPanel

    rules = lab.rules_of(lab.scenario("canary-90-10"))
    panel = ApplyPanel(
        rules, cluster=InMemoryCluster(istio_versions=[]), backups=BackupStore(tmp_path)
    )
    assert panel.dry_run() is None
    assert "is Istio installed" in panel.status.value
    assert panel.apply_button.disabled

    bad = istiolab.loads(
        "apiVersion: config.istio.io/v1alpha2\nkind: RouteRule\nmetadata: {name: x}\n"
        "spec: {destination: {name: a}, route: [{labels: {v: a}, weight: 60}]}\n"
    )
    panel = ApplyPanel(bad, cluster=InMemoryCluster(), backups=BackupStore(tmp_path))
    assert panel.dry_run() is None
    assert "refused before any change" in panel.status.value
    assert "IL201" in panel.summary.value

    owned = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "webui", "namespace": "default"},
        "spec": {"hosts": ["*"], "http": [{"route": [{"destination": {"host": "webui"}}]}]},
    }
    panel = ApplyPanel(
        rules, cluster=InMemoryCluster(objects=[owned]), backups=BackupStore(tmp_path)
    )
    plan = panel.dry_run()
    assert plan is not None
    assert not plan.ok
    assert panel.apply_button.disabled
    assert "conflicts" in panel.status.value
    panel.force.value = True  # changing the target makes the plan stale
    assert panel.plan is None
    plan = panel.dry_run()
    assert plan is not None
    assert plan.ok
    assert panel.apply(confirm=True) is not None


def test_available_clusters_without_a_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from istiolab.widgets.apply import IN_MEMORY, available_clusters, diff_html

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert list(available_clusters()) == [IN_MEMORY]
    html = diff_html("--- a\n+++ b\n@@ -1 +1 @@\n-x: 1\n+x: 2\n")
    assert '<span style="color:#b00020">-x: 1</span>' in html
    assert "no differences" in diff_html("")


def test_the_form_reads_unset_fields_as_compile_does() -> None:
    """Unset weights and fault percentages mean what the compiled route table says they mean."""
    from istiolab.envoy.compile import compile as compile_table

    docs = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web]
  http:
  - name: split
    match: [{uri: {prefix: /split}}]
    fault: {abort: {httpStatus: 503}, delay: {fixedDelay: 1s, percentage: {value: 5}}}
    route:
    - destination: {host: web, subset: v1}
    - destination: {host: web, subset: v2}
      weight: 100
  - name: lone
    route: [{destination: {host: web, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""
    config = istiolab.loads(docs)
    table = compile_table(config, "1.24")
    routes = {r.name: r for vh in table.virtual_hosts for r in vh.routes}
    vs = next(r for r in config.resources if r.kind == "VirtualService")
    http = vs.model_dump(by_alias=True, exclude_none=True)["spec"]["http"]
    split, lone = read_modern(http[0]), read_modern(http[1])
    assert split.weights == [0, 100]  # v1 has no weight: istiod drops it
    assert [c.weight for c in routes["split"].clusters] == [100]
    assert split.abort_percent == 0.0  # no percentage: no request is aborted
    fault = routes["split"].fault
    assert fault is not None
    assert fault.abort_per_million == 0
    assert split.delay_percent == 5.0
    assert fault.delay_per_million == 50_000
    assert lone.weights == [100]
    assert [c.weight for c in routes["lone"].clusters] == [100]


# -- stale states, reset buttons, progress ------------------------------------------------------


def test_dashboard_az_loss_box_shows_and_controls_the_scenarios_event() -> None:
    """az-loss already loses an AZ: the box starts checked, and unchecking removes the event."""
    base = lab.scenario("az-loss")
    assert [e.kind for e in base.events] == ["az_loss"]
    dash = SimulationDashboard(base)
    try:
        assert dash.knobs["az_loss"].value is True
        assert dash.knobs["pod_crash"].value is False
        assert dash.overrides() == {}
        assert [e.kind for e in dash.scenario().events] == ["az_loss"]
        dash.set(az_loss=False)
        assert [e.kind for e in dash.scenario().events] == []
        assert dash.params() == {"az_loss": False}
        dash.set(az_loss=True, pod_crash=True)
        assert [e.kind for e in dash.scenario().events] == ["az_loss", "pod_crash"]
        dash.reset_button.click()
        assert dash.knobs["pod_crash"].value is False
        assert dash.overrides() == {}
    finally:
        dash.close()
    # a scenario without the event: the box adds it
    plain = SimulationDashboard(lab.scenario("canary-90-10"))
    try:
        assert plain.knobs["az_loss"].value is False
        assert [e.kind for e in plain.scenario().events] == []
        plain.set(az_loss=True)
        assert [e.kind for e in plain.scenario().events] == ["az_loss"]
    finally:
        plain.close()


def test_dashboard_says_its_plots_are_stale_when_a_knob_moves(canary_sc: Any) -> None:
    dash = SimulationDashboard(canary_sc)
    try:
        seen: list[float] = []
        dash.progress.observe(lambda c: seen.append(c["new"]), names="value")
        dash.run()
        assert len(seen) > 3  # the bar moved during the in-process run
        assert seen[1:] == sorted(seen[1:])  # after the reset to 0, it only moves forward
        assert dash.progress.value == 1.0
        assert "run 1" in dash.status.value
        assert "non-5xx ratio" in dash.status.value  # says which success it means
        dash.set(**{"ingress.concurrency": 3})
        assert "knobs changed: press Run" in dash.status.value
        assert dash.progress.value == 0.0
    finally:
        dash.close()


def test_progress_never_moves_back() -> None:
    from istiolab.widgets.runner import ESTIMATE_CAP, Job

    job = Job(started=time.monotonic() - 100.0, estimate_s=1.0)
    seen = [job.fraction]
    assert seen[0] == ESTIMATE_CAP  # the estimate is capped: the worker has not reported
    for reported in (0.0, 0.01, 0.5, 0.4, 1.0):
        job.reported = reported
        seen.append(job.fraction)
    assert seen == sorted(seen)
    assert seen[1] == ESTIMATE_CAP  # the first report (0 %) does not empty the bar
    assert seen[3] == pytest.approx(ESTIMATE_CAP + 0.5 * (1 - ESTIMATE_CAP))
    assert seen[-1] == 1.0


def test_idle_worker_exits() -> None:
    from istiolab.widgets.runner import Runner

    runner = Runner(idle_s=0.5)
    try:
        job = runner.submit(
            lab.scenario("canary-90-10").with_overrides({"run.duration_s": 1, "run.warmup_s": 0.2}),
            1,
        )
        assert job.wait(60)
        assert job.state == "done"
        proc = runner._proc
        assert proc is not None
        deadline = time.monotonic() + 10
        while runner._proc is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner._proc is None
        assert proc.wait(timeout=5) is not None  # stopped and reaped
    finally:
        runner.close()


def test_designer_shows_updating_resets_and_notifies(canary_sc: Any) -> None:
    designer = RuleDesigner(lab.rules_of(canary_sc), scenario=canary_sc)
    seen: list[str] = []
    designer.on_change(lambda d: seen.append(d.share_view.value))
    statuses: list[str] = []
    designer.share_view.observe(lambda c: statuses.append(c["new"]), names="value")
    designer.set_weights(50, 50)
    assert "updating" in statuses[0]  # shown before the simulation ran
    assert "updating" not in statuses[-1]
    assert len(seen) == 1
    assert [s.value for s in designer.sliders] == [50, 50]
    designer.reset_button.click()
    assert [s.value for s in designer.sliders] == [90, 10]
    assert "weight: 90" in designer.yaml()
    assert len(seen) == 2


def test_apply_panel_clears_a_dry_run_when_the_rules_change(tmp_path: Any) -> None:
    from istiolab.kube import BackupStore, InMemoryCluster
    from istiolab.widgets import ApplyPanel

    designer = RuleDesigner(lab.rules_of(lab.scenario("canary-90-10")))
    panel = ApplyPanel(designer, cluster=InMemoryCluster(), backups=BackupStore(tmp_path))
    panel.dry_run()
    assert "dry run OK" in panel.status.value
    assert panel.diff.value
    designer.set_weights(70, 30)
    assert "dry run OK" not in panel.status.value
    assert "the rules changed" in panel.status.value
    assert panel.diff.value == ""
    assert panel.apply_button.disabled
    panel.dry_run()
    assert "dry run OK" in panel.status.value
    panel.reset_button.click()
    assert panel.plan is None
    assert panel.diff.value == ""
    assert "press Dry run" in panel.status.value


def test_verify_panel_reset_and_stale_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIOLAB_ENVOY", "/nonexistent/envoy")
    designer = RuleDesigner(istiolab.load(lab.example("legacy", "cookie-ab.yaml")))
    panel = VerifyPanel(designer)
    assert panel.run() is None
    assert panel.error
    designer.set(match_value="user=tester")
    assert "rules changed" in panel.status.value
    assert not panel.error
    panel.run()
    panel.reset_button.click()
    assert "press the button" in panel.status.value


def test_widgets_define_the_flags_they_show() -> None:
    from istiolab.lab.display import FLAG_DOCS, flags_text

    assert flags_text({"UF,URX": 3, "FI": 1}) == (
        f"Envoy flags: FI = {FLAG_DOCS['FI']}; UF = {FLAG_DOCS['UF']}; URX = {FLAG_DOCS['URX']}"
    )
    assert flags_text({}) == ""
    # the widgets' definitions and the glossary's name the same flags
    import re
    from pathlib import Path

    glossary = (Path(__file__).resolve().parents[1] / "docs" / "glossary.md").read_text()
    assert set(re.findall(r"^\| `([A-Z]+)` \|", glossary, re.MULTILINE)) == set(FLAG_DOCS)
    sc = lab.scenario("deny-route").with_overrides({"run.duration_s": 2})
    designer = RuleDesigner(lab.rules_of(sc), scenario=sc)
    assert "FI = fault injected" in designer.share_view.value
    assert "denied (401/403) 100.0 %" in designer.share_view.value


def test_rerunning_a_dashboard_cell_leaves_one_worker(canary_sc: Any) -> None:
    """A new dashboard (the cell run again) stops the older one's idle worker, and reaps it."""
    first = SimulationDashboard(canary_sc)
    second = None
    try:
        assert first.start() is not None
        assert first.wait(60)
        proc = first.runner._proc
        assert proc is not None
        assert proc.poll() is None  # kept for the next run
        second = SimulationDashboard(canary_sc)  # what re-running the cell does
        assert first.runner._proc is None
        assert proc.wait(timeout=5) is not None  # stopped and reaped, not a zombie
        assert first.start() is not None  # the old dashboard still works
        assert first.wait(60)
        assert first.runner._proc is None  # ... and does not keep a second worker
    finally:
        first.close()
        if second is not None:
            second.close()


def test_dashboard_runs_on_the_engine_it_is_given() -> None:
    sc = lab.scenario("canary-90-10").with_overrides({"run.duration_s": 3})
    with pytest.raises(ValueError, match="engine must be one of"):
        SimulationDashboard(sc, engine="numba")
    dash = SimulationDashboard(sc, engine="fast")
    try:
        dash.run_button.click()  # in the worker process: the engine travels with the job
        assert dash.wait(600)  # seconds with numba's cache warm (`make test` warms it)
        assert dash.result is not None
        in_worker = dash.result.summary()
        fast = simulate(sc, seed=1, engine="fast").summary()
        simpy = simulate(sc, seed=1, engine="simpy").summary()
        pd.testing.assert_frame_equal(in_worker, fast)
        assert not in_worker.equals(simpy)
        in_process = dash.run().summary()  # and in the kernel
        pd.testing.assert_frame_equal(in_process, fast)
    finally:
        dash.close()
