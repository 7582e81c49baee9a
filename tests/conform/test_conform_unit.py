"""The parts of ``istiolab conform`` that can be checked without Envoy: the comparison, the
scenario preparation and scaling, the load plan, the upstream pods and their reaping, the CLI."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import xxhash
import yaml
from typer.testing import CliRunner

from istiolab.analysis.conform import ConformReport, Metric
from istiolab.analysis.conform.compare import (
    MetricDef,
    _ejected_share,
    _ejections,
    _evenness,
    _gaps,
    _rl_phase,
    compare,
    metric_defs,
    t_quantile,
)
from istiolab.analysis.conform.loadgen import plan_arrivals
from istiolab.analysis.conform.run import offered_rps, prepare
from istiolab.analysis.conform.sides import (
    BIN_S,
    Observation,
    _ring_cluster,
    cluster_endpoints,
    fill_interval_s,
    rl_bin_s,
    run_sim,
)
from istiolab.analysis.conform.upstream import UpstreamPods, scenario_pods
from istiolab.cli.app import app
from istiolab.sim.engine import build_table
from istiolab.sim.scenario import load_scenario, scenario_from_dict
from istiolab.sim.stages.upstream import ring_layout, ring_lookup

ROOT = Path(__file__).resolve().parents[2]
CONFORM = ROOT / "sim" / "scenarios" / "conform"


def _obs(share: float, n: int = 1000, p50: float = 10.0) -> Observation:
    return Observation(
        requests=n,
        window_s=10.0,
        statuses={200: n - round(share * n), 503: round(share * n)},
        flags={"URX": round(share * n)},
        pod_attempts={"a": n // 2, "b": n - n // 2},
        success_p50_ms=p50,
        success_p99_ms=p50 * 5,
        mean_ms=p50 * 1.5,
    )


def test_t_quantile_matches_the_table_and_the_normal_limit() -> None:
    assert t_quantile(1) == pytest.approx(12.706)
    assert t_quantile(10) == pytest.approx(2.228)
    assert t_quantile(2.5) == pytest.approx((4.303 + 3.182) / 2)
    assert t_quantile(1000) == pytest.approx(1.96)


def test_compare_accepts_equal_sides_and_rejects_a_shift() -> None:
    share = MetricDef("share", lambda o: o.statuses.get(503, 0) / o.requests, 0.0, 0.0)
    envoy = [_obs(0.10), _obs(0.11), _obs(0.09)]
    same = compare([share], envoy, [_obs(0.095), _obs(0.105), _obs(0.10)])[0]
    assert same.ok
    assert same.low < same.envoy < same.high
    assert same.envoy == pytest.approx(0.10)
    shifted = compare([share], envoy, [_obs(0.30), _obs(0.31), _obs(0.29)])[0]
    assert not shifted.ok
    assert shifted.sim == pytest.approx(0.30)


def test_compare_tolerance_widens_the_band_and_known_is_kept() -> None:
    p50 = MetricDef("p50", lambda o: o.success_p50_ms, 2.0, 0.1)
    envoy = [_obs(0.1, p50=20.0)] * 3  # no variance: the band is the tolerance alone
    m = compare([p50], envoy, [_obs(0.1, p50=23.5)] * 3, {"p50": "why"})[0]
    assert m.low == pytest.approx(16.0)
    assert m.high == pytest.approx(24.0)
    assert m.ok
    assert m.known == "why"
    assert not compare([p50], envoy, [_obs(0.1, p50=24.5)] * 3)[0].ok


def test_metric_defs_follow_the_features() -> None:
    table, _ = build_table(load_scenario(CONFORM / "01-retry-backoff.yaml"))
    obs = [_obs(0.03)]
    names = [d.name for d in metric_defs(table, [("ROUND_ROBIN", ["a", "b"])], obs, obs)]
    assert "tries_per_request" in names
    assert {"share.status.503", "share.flag.URX", "pod_share.a", "pod_share.b"} <= set(names)
    assert "accepted_rps" not in names
    rl, _ = build_table(load_scenario(CONFORM / "06-local-rate-limit.yaml"))
    rl_names = [d.name for d in metric_defs(rl, [("RING_HASH", ["a", "b"])], obs, obs)]
    assert "accepted_rps" in rl_names
    # Istio's default retry policy (2 attempts) applies where the route sets none.
    assert "tries_per_request" in rl_names
    no_retry, _ = build_table(load_scenario(CONFORM / "03-http1-pool.yaml"))
    assert "tries_per_request" not in [d.name for d in metric_defs(no_retry, [], obs, obs)]
    assert {"pod_share.max", "pod_share.min"} <= set(rl_names)
    rare = [_obs(0.001)]
    assert "share.status.503" not in [d.name for d in metric_defs(rl, [], rare, rare)]


def _big() -> dict[str, object]:
    return {
        "name": "big",
        "run": {"duration_s": 10, "warmup_s": 1},
        "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": 1000}}],
        "ingress": {"azs": ["a", "b"], "nodes_per_az": 2},
        "services": [
            {
                "name": "api",
                "sidecar": True,
                "versions": [{"name": "v1", "replicas": 2, "service_time": "exp(4ms)"}],
            }
        ],
        "events": [{"at_s": 3, "kind": "pod_crash", "service": "api", "version": "v1"}],
    }


def test_prepare_scales_keeping_utilisation_and_says_what_is_left_out() -> None:
    sc = scenario_from_dict(_big())
    prepared, scaled, notes = prepare(sc, max_rps=200)
    assert scaled is not None
    assert scaled["factor"] == pytest.approx(0.2)
    assert offered_rps(prepared) == pytest.approx(200)
    before = 1000 * sc.services[0].versions[0].service_time.build().mean
    after = 200 * prepared.services[0].versions[0].service_time.build().mean
    assert after == pytest.approx(before)  # λ·S per pod unchanged
    assert prepared.events == []
    assert not prepared.services[0].sidecar
    assert len(prepared.ingress.gateway_nodes()) == 1
    assert prepared.aws.lb_latency.build().mean == 0
    text = " ".join(notes)
    assert "scaled" in text
    assert "events" in text
    assert "sidecar" in text
    assert "gateway pods" in text
    unscaled, none, _ = prepare(sc, max_rps=5000)
    assert none is None
    assert offered_rps(unscaled) == pytest.approx(1000)


def test_prepare_notes_http2_config_the_gateway_does_not_express() -> None:
    _, _, notes = prepare(load_scenario(CONFORM / "04-max-requests.yaml"))
    assert any("h2UpgradePolicy" in n for n in notes)
    _, _, plain = prepare(load_scenario(CONFORM / "01-retry-backoff.yaml"))
    assert not any("http2" in n.lower() or "h2" in n for n in plain)


def test_plan_reproduces_the_arrival_process_and_headers() -> None:
    sc = load_scenario(CONFORM / "09-consistent-hash-header.yaml")
    plan = plan_arrivals(sc, seed=3, duration_s=50.0)
    rate = sc.traffic[0].arrival.rate_rps
    assert rate is not None
    # Poisson count: mean λT, sd sqrt(λT) ≈ 71 at 5000; 4 sd.
    assert abs(len(plan) - rate * 50) < 4 * math.sqrt(rate * 50)
    times = [p.t for p in plan]
    assert times == sorted(times)
    assert times[0] >= 0
    assert times[-1] < 50
    users = {dict(p.headers)["x-user"] for p in plan}
    assert 30 <= len(users) <= 40
    assert plan_arrivals(sc, seed=3, duration_s=5.0) == [p for p in plan if p.t < 5.0]


def test_cluster_endpoints_select_pods_by_host_and_labels() -> None:
    sc = load_scenario(CONFORM / "05-outlier-detection.yaml")
    table, _ = build_table(sc)
    pods = scenario_pods(sc)
    assert [p.name for p in pods] == ["api-good-0", "api-good-1", "api-flaky-0"]
    (members,) = cluster_endpoints(table, pods).values()
    assert members == [0, 1, 2]


def _get(port: int, out: list[tuple[int, float]], t0: float) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        out.append((int(data.split(b" ")[1]), time.monotonic() - t0))


def test_upstream_pod_honours_concurrency_errors_restarts_and_is_reaped() -> None:
    sc = scenario_from_dict(
        {
            "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": 1}}],
            "ingress": {"azs": ["a"]},
            "services": [
                {
                    "name": "api",
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": 1,
                            "concurrency": 1,
                            "service_time": "det(150ms)",
                            "errors": [{"first_n": 1, "status": 503}],
                        }
                    ],
                }
            ],
        }
    )
    up = UpstreamPods(scenario_pods(sc), seed=1, warmup_s=0.0)
    with up:
        proc = up._proc
        assert proc is not None
        t0 = time.monotonic()
        up.go(t0, 1)
        out: list[tuple[int, float]] = []
        threads = [threading.Thread(target=_get, args=(up.ports[0], out, t0)) for _ in range(2)]
        for th in threads:
            th.start()
            time.sleep(0.02)
        for th in threads:
            th.join(10)
        assert up.received() == [2]
        # A new replication: counters restart, so the first request fails again.
        again: list[tuple[int, float]] = []
        up.go(time.monotonic(), 2)
        _get(up.ports[0], again, time.monotonic())
        assert [s for s, _ in again] == [503]
        assert up.received() == [1]
    assert proc.poll() is not None  # reaped
    out.sort(key=lambda x: x[1])
    assert [s for s, _ in out] == [503, 200]  # first_n counts served requests, in order
    # One server: the second request waits for the first (≥ 2 × 150 ms).
    assert out[1][1] >= 0.29


def test_upstream_child_is_reaped_when_the_body_raises() -> None:
    sc = load_scenario(CONFORM / "01-retry-backoff.yaml")
    holder: list[UpstreamPods] = []

    def body() -> None:
        with UpstreamPods(scenario_pods(sc), seed=1, warmup_s=0) as up:
            holder.append(up)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        body()
    assert holder[0]._proc is None
    assert len(holder[0].ports) == 3


def test_cli_usage_errors_exit_2() -> None:
    runner = CliRunner()
    scenario = str(CONFORM / "01-retry-backoff.yaml")
    assert runner.invoke(app, ["conform", scenario, "--reps", "1"]).exit_code == 2
    assert runner.invoke(app, ["conform", "no-such.yaml"]).exit_code == 2
    assert runner.invoke(app, ["conform"]).exit_code == 2
    assert runner.invoke(app, ["conform", scenario, "--seconds", "0"]).exit_code == 2


def _report(ok: bool) -> ConformReport:
    metric = Metric("share.status.503", 0.1, 0.1 if ok else 0.5, 0.05, 0.15, ok)
    return ConformReport("s", None, [metric], notes=["a note"], reps=(3, 3), seconds=5.0)


@pytest.mark.parametrize("ok", [True, False])
def test_cli_json_markdown_and_exit_code(
    ok: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import istiolab.analysis.conform as package

    seen: dict[str, object] = {}

    def fake(sc: object, **kwargs: object) -> ConformReport:
        seen.update(kwargs)
        return _report(ok)

    monkeypatch.setattr(package, "conform", fake)
    md = tmp_path / "conformance.md"
    args = ["conform", str(CONFORM / "01-retry-backoff.yaml"), "--format", "json"]
    args += ["--seconds", "4", "--reps", "2", "--markdown", str(md)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == (0 if ok else 1), result.output
    doc = json.loads(result.stdout)
    assert set(doc) >= {"scenario", "scaled", "metrics", "ok"}
    assert doc["ok"] is ok
    assert doc["metrics"][0] == {
        "name": "share.status.503",
        "sim": 0.1,
        "envoy": 0.1 if ok else 0.5,
        "low": 0.05,
        "high": 0.15,
        "ok": ok,
    }
    assert (seen["seconds"], seen["reps"]) == (4.0, 2)
    text = md.read_text()
    assert "| `share.status.503` |" in text
    assert "--seconds 4 --reps 2" in text


def test_late_requests_count_in_shares_but_not_in_latencies() -> None:
    from istiolab.analysis.conform.loadgen import LoadRun, Sent
    from istiolab.analysis.conform.sides import _reduce_envoy

    sent = [Sent(f"r{i}", 1.0 + i * 0.01, 0.001, 200, 0.010, "p") for i in range(99)]
    sent.append(Sent("late", 2.0, 0.300, 503, 0.500, ""))
    sent.append(Sent("warm", 0.1, 0.0, 503, 0.001, ""))  # before the warm-up: not counted
    log = {r.req_id: {"req": r.req_id, "flags": "-", "attempts": "1"} for r in sent}
    log["late"]["flags"] = "UO"
    pods = scenario_pods(load_scenario(CONFORM / "03-http1-pool.yaml"))
    obs = _reduce_envoy(LoadRun(sent=sent), log, [99], pods, warmup=0.5, seconds=2.0)
    assert obs.requests == 100
    assert obs.statuses == {200: 99, 503: 1}
    assert obs.flags == {"UO": 1}
    assert obs.late == 1
    assert obs.mean_ms == pytest.approx(10.0)
    assert obs.success_by_tries == {1: [pytest.approx(10.0)] * 99}


def test_markdown_names_each_known_cause_once() -> None:
    from istiolab.analysis.conform import markdown

    metrics = [
        Metric("a", 1.0, 2.0, 1.5, 2.5, False, "cause X"),
        Metric("b", 1.0, 2.0, 1.5, 2.5, False, "cause X"),
        Metric("c", 2.0, 2.0, 1.5, 2.5, True, "cause Y"),  # agrees: its cause is not listed
    ]
    report = ConformReport("s", None, metrics, reps=(3, 3), seconds=5.0)
    assert report.ok
    assert report.verdict == "agrees apart from known differences"
    page = markdown([report], "cmd")
    assert page.count("cause X") == 1
    assert "known difference (`a`, `b`): cause X" in page
    assert "cause Y" not in page
    unknown = ConformReport("s", None, [Metric("a", 1.0, 2.0, 1.5, 2.5, False)], seconds=5.0)
    assert not unknown.ok
    assert unknown.verdict == "differs"


def _series_obs(series: dict[str, list[int]], warmup_s: float = 0.0) -> Observation:
    n = sum(sum(v) for v in series.values())
    return Observation(requests=n, window_s=10.0, warmup_s=warmup_s, pod_series=series)


def test_ejections_are_runs_without_traffic_long_enough_not_to_be_chance() -> None:
    flaky = [3] * 100
    flaky[20:40] = [0] * 20  # 2 s without traffic: an ejection
    flaky[70:75] = [0] * 5  # 0.5 s: the shortest run that counts at this rate
    flaky[90:93] = [0] * 3  # 0.3 s: chance
    o = _series_obs({"a": [3] * 100, "b": [3] * 100, "c": flaky})
    pods = ["a", "b", "c"]
    assert _gaps(o, "c", pods) == [20, 5]
    assert _ejected_share("c", pods)(o) == pytest.approx(2.5 / 10)
    assert _ejections("c", pods)(o) == 2
    assert _ejected_share("a", pods)(o) == 0
    # At a ninth of the rate, 2 s without traffic is chance (8 requests take ~2.7 s); 4 s is not.
    sparse = [1 if i % 3 == 0 else 0 for i in range(100)]
    slow_c = [0 if 20 <= i < 60 or 70 <= i < 90 else v for i, v in enumerate(sparse)]
    slow = _series_obs({"a": sparse, "b": sparse, "c": slow_c})
    assert _gaps(slow, "c", pods) == [41]  # bins 19-59 (bin 19 has no request anyway)
    # The warm-up is not measured: a run inside it does not count.
    early = [0] * 10 + [3] * 100
    o2 = Observation(
        requests=1, window_s=10.0, warmup_s=1.0, pod_series={"a": [3] * 110, "b": early}
    )
    assert _gaps(o2, "b", ["a", "b"]) == []


def test_round_robin_evenness_is_the_spread_of_per_pod_counts() -> None:
    even = _series_obs({"a": [3] * 100, "b": [3] * 100, "c": [3] * 100})
    assert _evenness(["a", "b", "c"])(even) == 0
    skewed = _series_obs({"a": [12] * 100, "b": [10] * 100, "c": [8] * 100})
    # per 0.2-s window: 24, 20, 16 -> population std 3.266 over mean 20
    assert _evenness(["a", "b", "c"])(skewed) == pytest.approx(0.16330, abs=1e-4)


def test_metric_defs_add_tries_evenness_and_ejections_when_measured() -> None:
    table, _ = build_table(load_scenario(CONFORM / "01-retry-backoff.yaml"))
    o = _obs(0.03)
    o.tries = {1: 700, 2: 250, 3: 50}
    o.tries_ok = {1: 700, 2: 250, 3: 10}
    o.tries_p50_ms = {1: 10.0, 2: 40.0, 3: 90.0}
    o.pod_series = {"a": [1] * 120, "b": [1] * 120}
    names = [d.name for d in metric_defs(table, [("ROUND_ROBIN", ["a", "b"])], [o], [o])]
    assert {"tries.share.1", "tries.share.2", "tries.share.3", "rr_evenness"} <= set(names)
    assert {"success_p50_ms.tries_1", "success_p50_ms.tries_2"} <= set(names)
    assert "success_p50_ms.tries_3" not in names  # too few successes after 3 tries
    with_od = [
        d.name for d in metric_defs(table, [("ROUND_ROBIN", ["a", "b"])], [o], [o], [["a", "b"]])
    ]
    assert {"ejected_share.a", "ejections.b"} <= set(with_od)
    # a 10 s window is shorter than two 6 s ejection cycles: the timer's phase would decide
    short = metric_defs(table, [("ROUND_ROBIN", ["a", "b"])], [o], [o], [["a", "b"]], 6.0)
    assert "ejected_share.a" not in [d.name for d in short]
    # ... and the pods' shares too (conform-outlier-detection in 2.5 s windows: whether the
    # flaky pod was back before the window ended), kept over a long enough window
    assert not [d.name for d in short if d.name.startswith("pod_share")]
    assert {"pod_share.a", "pod_share.b"} <= set(with_od)
    assert "rr_evenness" not in with_od  # ejections, not the balancer, decide the spread
    bare = _obs(0.03)
    assert "rr_evenness" not in [
        d.name for d in metric_defs(table, [("ROUND_ROBIN", ["a", "b"])], [bare], [bare])
    ]


def test_simulator_side_reports_tries_and_attempt_series() -> None:
    sc = load_scenario(CONFORM / "01-retry-backoff.yaml")
    o = run_sim(sc.with_overrides({"run.warmup_s": 0.5}), seed=3, seconds=4.0)
    # The same attempts up to the edges: retries after the warm-up of requests started in it,
    # and tries of requests still in flight at the end, count only in pod_attempts.
    tries = sum(k * n for k, n in o.tries.items())
    assert tries == pytest.approx(sum(o.pod_attempts.values()), rel=0.03)
    assert sum(o.tries.values()) == o.requests
    # every retry waits a back-off: the median grows with the tries
    p50 = [o.tries_p50_ms[k] for k in sorted(o.tries_p50_ms)]
    assert len(p50) >= 2
    assert p50 == sorted(p50)
    assert set(o.pod_series) == set(o.pod_attempts)
    assert all(len(v) == round(4.5 / BIN_S) for v in o.pod_series.values())
    measured = sum(sum(v[5:]) for v in o.pod_series.values())
    assert measured == pytest.approx(sum(o.pod_attempts.values()), abs=3)


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_simulator_side_runs_on_either_engine_and_says_which(engine: str) -> None:
    sc = load_scenario(CONFORM / "01-retry-backoff.yaml").with_overrides({"run.warmup_s": 0.5})
    o = run_sim(sc, seed=3, seconds=4.0, engine=engine)
    assert o.notes == [f"simulator: the {engine} engine"]
    assert sum(o.tries.values()) == o.requests > 100
    assert len(o.tries_p50_ms) >= 2  # the fast engine reports latency by tries too
    assert set(o.pod_series) == set(o.pod_attempts)
    # a classic load balancer is not lowered: auto runs SimPy and says why
    clb = load_scenario(CONFORM / "03-http1-pool.yaml").with_overrides(
        {"run.warmup_s": 0.5, "aws.lb": "clb"}
    )
    auto = run_sim(clb, seed=3, seconds=2.0, engine="auto")
    assert auto.notes[0] == "simulator: the simpy engine"
    assert "the fast engine does not support" in auto.notes[1]


def test_conform_refuses_an_unsupported_fast_engine_before_any_envoy_run(tmp_path: Path) -> None:
    from istiolab.analysis.conform import conform
    from istiolab.errors import SimulationError

    # the client model runs on SimPy only
    data = yaml.safe_load((CONFORM / "03-http1-pool.yaml").read_text(encoding="utf-8"))
    data["traffic"][0]["client"] = {"timeout_s": 10}
    path = tmp_path / "03-client.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    sc = load_scenario(path)
    started = time.monotonic()
    with pytest.raises(SimulationError, match="fast engine does not support"):
        conform(sc, seconds=1.0, reps=2, engine="fast")
    assert time.monotonic() - started < 5  # no Envoy replication ran (each takes seconds)
    with pytest.raises(ValueError, match="engine must be one of"):
        conform(sc, seconds=1.0, reps=2, engine="turbo")
    res = CliRunner().invoke(app, ["conform", str(path), "--engine", "fast"])
    assert res.exit_code == 2
    assert "03-client.yaml: the fast engine does not support" in res.output


def test_rate_limit_phase_is_near_zero_when_spread_and_one_when_bunched() -> None:
    fill = 0.1
    bin_s = rl_bin_s(fill)
    assert bin_s == pytest.approx(0.01)
    assert rl_bin_s(1.0) == pytest.approx(BIN_S)
    assert rl_bin_s(None) == BIN_S
    n = round(10 / bin_s)
    spread = Observation(requests=1, window_s=10.0, rl_series=[1] * n, rl_bin_s=bin_s)
    assert _rl_phase(fill)(spread) == pytest.approx(0.0, abs=1e-9)
    # a timer bucket: every 429 in the last tenth of each interval, whatever the offset
    for offset in (0, 3, 7):
        bunched = [1 if (k - offset) % 10 == 9 else 0 for k in range(n)]
        o = Observation(requests=1, window_s=10.0, rl_series=bunched, rl_bin_s=bin_s)
        assert _rl_phase(fill)(o) == pytest.approx(1.0)
    table, _ = build_table(load_scenario(CONFORM / "06-local-rate-limit.yaml"))
    assert fill_interval_s(table) == pytest.approx(0.1)


def test_ring_agreement_uses_envoy_ring_over_the_run_addresses() -> None:
    sc = load_scenario(CONFORM / "09-consistent-hash-header.yaml")
    table, _ = build_table(sc)
    members = cluster_endpoints(table, scenario_pods(sc))
    found = _ring_cluster(table, members)
    assert found is not None
    assert found[0] == "x-user"
    assert len(found[1]) == 3
    hashes, owners = ring_layout(["127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"], 1024)
    assert hashes == sorted(hashes)
    assert sorted(Counter(owners).values()) == [342, 342, 342]  # ceil(1024 / 3) points each
    for user in ("user-0", "user-7", "zz"):
        k = ring_lookup(hashes, user)
        h = xxhash.xxh64_intdigest(user.encode())
        assert hashes[k - 1] < h <= hashes[k] or (k == 0 and (h <= hashes[0] or h > hashes[-1]))
    # No ring on a round-robin scenario.
    rr, _ = build_table(load_scenario(CONFORM / "07-round-robin-workers.yaml"))
    assert _ring_cluster(rr, cluster_endpoints(rr, scenario_pods(sc))) is None


def test_ring_agreement_replaces_the_layout_dependent_extremes() -> None:
    table, _ = build_table(load_scenario(CONFORM / "09-consistent-hash-header.yaml"))
    o = _obs(0.0)
    o.ring_agreement = 1.0
    names = [d.name for d in metric_defs(table, [("RING_HASH", ["a", "b"])], [o], [o])]
    assert "ring_agreement" in names
    assert "pod_share.min" not in names
    bare = _obs(0.0)
    names = [d.name for d in metric_defs(table, [("RING_HASH", ["a", "b"])], [bare], [bare])]
    assert {"pod_share.min", "pod_share.max"} <= set(names)
    assert "ring_agreement" not in names
