"""The compiled engine (``engine="fast"``) against the SimPy engine.

* determinism: the same seed gives identical frames, with or without progress reports;
* the same Result: every frame has the SimPy engine's columns and dtypes;
* ``auto``: runs fast when every feature is supported, else SimPy with a finding that names the
  feature (also when numba cannot be imported); ``fast`` refuses what it does not support;
* the same answers: for every bundled scenario that ``auto`` runs fast, per-route, per-version,
  per-flag and per-pod shares and latency quantiles agree across engines within intervals
  derived from independent replications (see :func:`_compare`);
* the kernel's HDR arithmetic equals :class:`~istiolab.sim.tallies.HdrLayout`'s.

The closed-form checks of both engines are in ``tests/validation`` (parametrised over engines).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from istiolab.analysis.planner import t_quantile
from istiolab.errors import SimulationError
from istiolab.sim import theory
from istiolab.sim.engine import fast_unsupported, simulate
from istiolab.sim.fast import run as fast_run
from istiolab.sim.results import SCHEMAS, Result
from istiolab.sim.scenario import Scenario, load_scenario, scenario_from_dict
from istiolab.sim.tallies import HdrLayout

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted(
    [
        *(ROOT / "sim" / "scenarios").glob("*.yaml"),
        *(ROOT / "sim" / "scenarios" / "gateway-api").glob("*.yaml"),
    ]
)
REPLICATIONS = 5
"""Independent replications per engine and scenario in the cross-engine comparison."""
FAMILY_ALPHA = 0.01
"""False-alarm rate of one scenario's whole comparison (Bonferroni over its metrics)."""
TS_METRICS = ("rps", "success_ratio")
"""Per-interval metrics of the time series compared across engines (per route and interval)."""
HDR_RESOLUTION = 1e-3
"""Relative width of one HDR bucket at 3 significant figures: quantiles are only known to it."""
COUNT_RESOLUTION = 1.0
"""The least half-width of an interval's request count: one request. Under constant arrivals
an interval's count was 100 in most replications of one engine and 101 in most of the other's
(by which side of the interval's edge a request completes); five replications then gave both
engines a variance of 0 and a Welch interval of width 0. Over more seeds the means agree: at
t = 2 s of random scenario 501, 100.03 and 99.93 (seeds 200-259), 99.91 and 100.06 (300-379)."""

# Long bundled scenarios run shorter here; the comparison is between engines on the same
# (shortened) scenario, so it loses nothing but time. Events stay inside the window.
SHORTER = {
    "az-loss": 16.0,
    "canary-90-10": 10.0,
    "capacity-peak": 8.0,
    "cookie-ab": 10.0,
    "nlb-vs-alb-cross-zone": 8.0,
    "retry-storm": 14.0,
    "seed-httpbin": 10.0,
    "timeouts": 20.0,
}


def _scenario(path: Path) -> Scenario:
    sc = load_scenario(path)
    if sc.name in SHORTER:
        sc = sc.with_overrides({"run.duration_s": SHORTER[sc.name]})
    return sc


def _fast_supported(sc: Scenario) -> bool:
    return fast_unsupported(sc) is None


def _frames(result: Result) -> dict[str, pd.DataFrame]:
    return {name: getattr(result, name)() for name in SCHEMAS}


# -- determinism and shape --------------------------------------------------------------------


def test_same_seed_same_frames() -> None:
    sc = load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml")
    a, b = simulate(sc, 5, engine="fast"), simulate(sc, 5, engine="fast")
    for name, frame in _frames(a).items():
        pd.testing.assert_frame_equal(frame, getattr(b, name)())
    assert a.totals() == b.totals()
    c = simulate(sc, 6, engine="fast")
    assert a.totals()["requests"] != c.totals()["requests"]


def test_progress_does_not_change_the_result() -> None:
    sc = load_scenario(ROOT / "sim/scenarios/retry-storm.yaml").with_overrides(
        {"run.duration_s": 12.0}
    )
    seen: list[float] = []
    a = simulate(sc, 3, engine="fast")
    b = simulate(sc, 3, engine="fast", progress=seen.append)
    for name, frame in _frames(a).items():
        pd.testing.assert_frame_equal(frame, getattr(b, name)())
    assert len(seen) == 100
    assert seen[-1] == 1.0


def test_same_columns_and_dtypes_as_simpy() -> None:
    sc = load_scenario(ROOT / "sim/scenarios/canary-90-10.yaml").with_overrides(
        {"run.duration_s": 6.0}
    )
    fast, slow = simulate(sc, 1, engine="fast"), simulate(sc, 1, engine="simpy")
    for name, frame in _frames(fast).items():
        other = getattr(slow, name)()
        assert list(frame.columns) == list(other.columns), name
        assert list(frame.dtypes) == list(other.dtypes), name
    assert set(fast.meta) == set(slow.meta)
    assert set(fast.meta["counters"]) == set(slow.meta["counters"])
    assert fast.meta["config"] == slow.meta["config"]


def test_tables_grow_without_changing_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Request, job and heap tables start small and double on demand mid-run; growing them
    between events changes nothing (the run with 100 progress stops grows at other moments)."""
    # M/D/1 at twice its capacity: the queue (and the requests in flight) grows to ~2000
    sc = load_scenario(ROOT / "sim/scenarios/validation/05-mg1-pollaczek-khinchine.yaml")
    sc = sc.with_overrides({"traffic.0.arrival.rate_rps": 200, "run.duration_s": 22.0})
    grown: list[int] = []
    original = fast_run._State.grow

    def grow(self: fast_run._State, code: int) -> None:
        grown.append(code)
        original(self, code)

    monkeypatch.setattr(fast_run._State, "grow", grow)
    a = simulate(sc, 2, engine="fast")
    b = simulate(sc, 2, engine="fast", progress=lambda _f: None)
    pd.testing.assert_frame_equal(a.summary(), b.summary())
    pd.testing.assert_frame_equal(a.timeseries(), b.timeseries())
    assert grown  # more requests in flight than the first table holds


# -- engine choice -------------------------------------------------------------------------------


def test_auto_runs_fast_when_supported() -> None:
    sc = load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml").with_overrides(
        {"run.duration_s": 4.0}
    )
    auto, fast = simulate(sc, 9, engine="auto"), simulate(sc, 9, engine="fast")
    pd.testing.assert_frame_equal(auto.summary(), fast.summary())
    assert not any("engine auto" in f.message for f in auto.findings)


@pytest.mark.parametrize(
    ("overrides", "feature"),
    [
        ({"aws.lb": "clb"}, "clb"),
        ({"traffic.0.client": {"timeout_s": 10}}, "client model"),
    ],
)
def test_auto_falls_back_and_says_why(overrides: dict[str, object], feature: str) -> None:
    sc = load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml").with_overrides(
        {"run.duration_s": 3.0, **overrides}
    )
    auto = simulate(sc, 1, engine="auto")
    notes = [f for f in auto.findings if "engine auto ran the SimPy engine" in f.message]
    assert len(notes) == 1
    assert feature in notes[0].message
    pd.testing.assert_frame_equal(auto.summary(), simulate(sc, 1, engine="simpy").summary())
    with pytest.raises(SimulationError, match=feature):
        simulate(sc, 1, engine="fast")


def test_auto_falls_back_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_run, "numba_missing", lambda: "numba is not installed")
    sc = load_scenario(ROOT / "sim/scenarios/deny-route.yaml").with_overrides(
        {"run.duration_s": 2.0}
    )
    auto = simulate(sc, 1, engine="auto")
    assert any("numba is not installed" in f.message for f in auto.findings)


_UNRESOLVED: dict[str, object] = {
    "name": "gatewayapi-unresolved",
    "run": {"duration_s": 4.0, "warmup_s": 0.5, "seed": 3},
    "rules": {
        "inline": [
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "public", "namespace": "istio-ingress"},
                "spec": {
                    "gatewayClassName": "istio",
                    "listeners": [
                        {
                            "name": "http",
                            "port": 80,
                            "protocol": "HTTP",
                            "allowedRoutes": {"namespaces": {"from": "All"}},
                        }
                    ],
                },
            },
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "api", "namespace": "default"},
                "spec": {
                    "parentRefs": [{"name": "public", "namespace": "istio-ingress"}],
                    "rules": [
                        {
                            "backendRefs": [
                                {"name": "api", "port": 8080, "weight": 3},
                                {"name": "missing", "port": 8080, "weight": 1},
                            ]
                        }
                    ],
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "api", "namespace": "default"},
                "spec": {"selector": {"app": "api"}, "ports": [{"name": "http", "port": 8080}]},
            },
        ]
    },
    "traffic": [{"name": "clients", "arrival": {"kind": "poisson", "rate_rps": 200}}],
    "services": [
        {
            "name": "api",
            "versions": [
                {"name": "v1", "replicas": 2, "concurrency": 8, "service_time": "exp(5ms)"}
            ],
        }
    ],
}


@pytest.mark.parametrize("engine", ["simpy", "fast", "auto"])
def test_unresolved_backend_answers_the_routes_status(engine: str) -> None:
    """A Gateway API backendRef that does not resolve (cluster UnknownService) gets 500 NC.

    Envoy answers a pick of a cluster it does not have with the route's
    cluster_not_found_response_code and the NC flag (router.cc, Filter::decodeHeaders), on
    both engines; ``auto`` runs it on the fast engine.
    """
    sc = scenario_from_dict(_UNRESOLVED)
    result = simulate(sc, 1, engine=engine)
    assert not any("does not resolve" in f.message for f in result.findings)
    assert result.meta["assumptions"]["engine"] == ("simpy" if engine == "simpy" else "fast")
    codes = result.codes()
    nc = codes[codes["flag"] == "NC"]
    assert set(nc["status"]) == {500}
    share = nc["count"].sum() / codes["count"].sum()
    # weight 1 of 4; 4 binomial standard deviations at about 700 requests
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 700), share
    ok = codes[codes["flag"] != "NC"]
    assert set(ok["status"]) == {200}
    summary = result.summary()
    assert summary.loc[summary["cluster"] == "-", "upstream_requests"].sum() == 0


def test_unknown_engine() -> None:
    sc = load_scenario(ROOT / "sim/scenarios/deny-route.yaml")
    with pytest.raises(ValueError, match="engine must be one of"):
        simulate(sc, 1, engine="turbo")


def _cli() -> typer.Typer:
    from istiolab.cli import simulate as simulate_cli
    from istiolab.cli import sweep as sweep_cli

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app."""

    simulate_cli.register(app)
    sweep_cli.register(app)
    return app


def test_cli_engine_option(tmp_path: Path) -> None:
    """``--engine`` on simulate, sweep and plan; a bad value or an unsupported scenario exits 2."""
    runner = CliRunner()
    path = str(ROOT / "sim/scenarios/deny-route.yaml")
    for engine in ("fast", "simpy", "auto"):
        res = runner.invoke(_cli(), ["simulate", path, "--duration", "2", "--engine", engine])
        assert res.exit_code == 0, res.output
    res = runner.invoke(_cli(), ["simulate", path, "--engine", "turbo"])
    assert res.exit_code == 2
    assert "--engine must be one of" in res.output
    args = ["simulate", path, "--duration", "2", "--set", "aws.lb=clb"]
    res = runner.invoke(_cli(), [*args, "--engine", "fast"])
    assert res.exit_code == 2
    assert "clb" in res.output
    out = tmp_path / "runs.csv"
    args = ["sweep", path, "-p", "run.seed=1,2", "-e", "serial", "-o", str(out), "-q"]
    res = runner.invoke(_cli(), [*args, "--engine", "fast"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == 2
    args = ["plan", path, "--knob", "services.0.versions.0.concurrency", "--slo",
            "success_ratio>=0.5", "-k", "2", "-e", "serial", "-q", "--high", "8"]  # fmt: skip
    res = runner.invoke(_cli(), [*args, "--engine", "fast"])
    assert res.exit_code == 0, res.output


def test_sweep_and_plan_pass_the_engine_on() -> None:
    from istiolab.analysis.planner import plan
    from istiolab.analysis.sweep import sweep

    sc = load_scenario(ROOT / "sim/scenarios/deny-route.yaml").with_overrides(
        {"run.duration_s": 2.0}
    )
    frames = {
        engine: sweep(sc, {"run.seed": [1]}, [4], "serial", progress=False, engine=engine)
        for engine in ("fast", "simpy")
    }
    alone = simulate(sc.with_overrides({"run.seed": 1}), 4, engine="fast", params={"run.seed": 1})
    assert frames["fast"]["run_id"].iloc[0] == alone.run_id
    assert frames["fast"]["requests"].iloc[0] == alone.totals()["requests"]
    assert frames["simpy"]["requests"].iloc[0] != frames["fast"]["requests"].iloc[0]
    with pytest.raises(ValueError, match="engine must be one of"):
        sweep(sc, {}, 1, "serial", progress=False, engine="turbo")
    with pytest.raises(ValueError, match="engine must be one of"):
        plan(sc, "services.0.versions.0.concurrency", "p99_ms<=100", seeds=2, engine="turbo")


# -- the same answers ----------------------------------------------------------------------------


def _metrics(result: Result) -> dict[str, float]:
    """Shares and latency quantiles that both engines must agree on (in distribution)."""
    out: dict[str, float] = {}
    s = result.summary()
    total = float(s["requests"].sum())
    for route, n in s.groupby("route")["requests"].sum().items():
        out[f"route share {route}"] = n / total
    for row in s.groupby(["route", "version"], as_index=False)["requests"].sum().itertuples():
        out[f"version share {row.route}/{row.version}"] = float(row.requests) / total
    flags: dict[str, int] = {}
    for row in s["flags"]:
        for flag, n in row.items():
            flags[flag] = flags.get(flag, 0) + n
    for flag, n in flags.items():
        out[f"flag share {flag}"] = n / total
    up = result.upstream()
    if len(up):
        attempts = up.groupby("host")["attempts"].sum()
        for host, n in attempts.items():
            out[f"pod share {host}"] = float(n) / float(attempts.sum())
    tot = result.totals()
    for q in ("p50_ms", "p90_ms", "p99_ms", "mean_ms"):
        out[f"latency {q}"] = float(tot[q])
    out["success ratio"] = float(tot["success_ratio"])
    # utilisation per tier: busy over available server-seconds after the warm-up
    for tier, rho in tot["rho"].items():
        out[f"rho {tier}"] = float(rho)
    # the time series: requests per second and the non-5xx ratio of each route in each
    # interval after the warm-up (when an event's spike of errors happens, and how deep)
    # (the rate as the count of requests in the interval: see COUNT_RESOLUTION)
    ts = result.timeseries()
    warmup = float(result.meta["config"]["warmup_s"])
    interval = float(result.meta["config"]["interval_s"])
    ts = ts[(ts["t_s"] >= warmup) & (ts["version"] == "") & ts["metric"].isin(TS_METRICS)]
    for metric, route, t_s, value in zip(
        ts["metric"], ts["route"], ts["t_s"], ts["value"].astype("float64"), strict=True
    ):
        if math.isnan(value):
            continue
        if metric == "rps":
            out[f"ts requests {route} t={t_s:g}"] = round(float(value) * interval)
        else:
            out[f"ts {metric} {route} t={t_s:g}"] = float(value)
    # and its queues: the share of arrivals that waited, and the mean wait in queue (NaN where
    # a tier saw no arrival: left out, as a tier one engine did not report)
    for tier, q in tot["queues"].items():
        for key in ("wait_probability", "mean_wait_ms"):
            if not math.isnan(q[key]):
                out[f"{key} {tier}"] = float(q[key])
    return out


def _compare(
    runs: Callable[[str], list[dict[str, float]]], alpha: float = FAMILY_ALPHA
) -> list[str]:
    """Metrics whose engine means differ by more than a Welch interval allows.

    For each metric, R replications per engine give two means and two sample variances; the
    difference of the means has a Welch t interval (Welch–Satterthwaite degrees of freedom) at
    confidence 1 − α/m, m the number of metrics (Bonferroni: the whole comparison of one
    scenario falsely fails with probability ≤ α, 1 % unless *alpha* says). A metric missing
    from a run counts as 0 (a flag that did not occur). Latency quantiles are read from HDR
    buckets, so their half-width never goes below one bucket (0.1 % of the value), and an
    interval's request count never below one request: two engines that agree up to the
    instrument's resolution pass.
    """
    fast, slow = runs("fast"), runs("simpy")
    names = sorted({k for r in fast + slow for k in r})
    confidence = 1 - alpha / len(names)
    failures = []
    for name in names:
        a = np.array([r.get(name, 0.0) for r in fast])
        b = np.array([r.get(name, 0.0) for r in slow])
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        if se > 0:
            df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
            half = t_quantile(0.5 + confidence / 2, max(1, int(df))) * se
        else:
            half = 0.0
        if name.startswith("latency"):
            half = max(half, HDR_RESOLUTION * max(abs(a.mean()), abs(b.mean())))
        elif name.startswith("ts requests"):
            half = max(half, COUNT_RESOLUTION)
        diff = a.mean() - b.mean()
        if abs(diff) > half + 1e-12:
            failures.append(
                f"{name}: fast {a.mean():.6g} vs simpy {b.mean():.6g}, |Δ| {abs(diff):.3g} > "
                f"{half:.3g} ({confidence:.4%} Welch interval, {len(a)}+{len(b)} replications)"
            )
    return failures


def _assert_engines_agree(sc: Scenario, alpha: float = FAMILY_ALPHA, label: str = "") -> None:
    """REPLICATIONS runs of *sc* on each engine agree (:func:`_compare` at *alpha*)."""

    def runs(engine: str) -> list[dict[str, float]]:
        return [_metrics(simulate(sc, 100 + i, engine=engine)) for i in range(REPLICATIONS)]

    failures = _compare(runs, alpha)
    assert not failures, label + "\n".join(failures)


FAST_BUNDLED = [p for p in BUNDLED if _fast_supported(_scenario(p))]


def test_every_bundled_scenario_runs_fast() -> None:
    """The bundled scenarios use only supported features (so ``auto`` runs all of them fast)."""
    assert [p.stem for p in FAST_BUNDLED] == [p.stem for p in BUNDLED]


@pytest.mark.parametrize("path", FAST_BUNDLED, ids=[p.stem for p in FAST_BUNDLED])
def test_bundled_scenario_agrees_across_engines(path: Path) -> None:
    sc = _scenario(path)
    _assert_engines_agree(sc)


CONFORM = sorted((ROOT / "sim" / "scenarios" / "conform").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFORM, ids=[p.stem for p in CONFORM])
def test_conformance_scenario_agrees_across_engines(path: Path) -> None:
    """The scenarios ``istiolab conform`` runs against a real Envoy, on both engines."""
    sc = load_scenario(path)
    _assert_engines_agree(sc)


EJECT_QUICKLY = {
    "rules.DestinationRule/api.trafficPolicy.outlierDetection.consecutive5xxErrors": 1,
    "rules.DestinationRule/api.trafficPolicy.outlierDetection.interval": "0.5s",
    "traffic.0.arrival.rate_rps": 300,
}
"""conform 05 with an ejection at every 5xx, re-admissions every 0.5 s, three times the rate."""


def test_outlier_ejections_reach_the_workers_as_envoy_delivers_them_on_both_engines() -> None:
    """An ejection reaches the workers' load balancers at once only when their last update
    from the cluster manager is over update_merge_window (1 s) old; else it waits for it
    (``UpstreamCluster._changed``), and the flaky host keeps its traffic meanwhile.

    The fast engine once took every ejection to the load balancers at once: conform 05's
    flaky pod got 2.8 % of the tries there (8.4 % on SimPy, 7.6 % on Envoy 1.40), 0.3 % here
    (6.2 % on SimPy). The conform comparison alone, with its many metrics, did not see it.
    """
    sc = load_scenario(ROOT / "sim/scenarios/conform/05-outlier-detection.yaml")
    sc = sc.with_overrides(EJECT_QUICKLY)

    def flaky_share(result: Result) -> float:
        attempts = result.upstream().groupby("host")["attempts"].sum()
        return float(attempts[[h for h in attempts.index if "flaky" in h]].sum() / attempts.sum())

    shares = [flaky_share(simulate(sc, 100 + i, engine="fast")) for i in range(REPLICATIONS)]
    # a floor halfway between the old kernel's 0.003 and SimPy's 0.062 (sd 0.0045, 8 seeds);
    # the comparison below is the verdict
    assert min(shares) > 0.03, shares

    _assert_engines_agree(sc)


@pytest.mark.parametrize("timeout", [None, "0.05s"], ids=["pool", "pool-timeout"])
def test_http1_pools_agree_across_engines(timeout: str | None) -> None:
    """maxConnections 3 and 2 pending requests (conform 03): queueing, 503 UO on overflow, and
    with a 50 ms route timeout 504 UT for requests still pending when it fires.
    """
    sc = load_scenario(ROOT / "sim/scenarios/conform/03-http1-pool.yaml")
    if timeout is not None:
        sc = sc.with_overrides({"rules.VirtualService/api.http[0].timeout": timeout})
    fast = simulate(sc, 1, engine="fast").totals()
    assert fast["flags"]["UO"] > 0
    if timeout is not None:
        assert fast["flags"]["UT"] > 0

    _assert_engines_agree(sc)


POOLS_AT_1024 = {
    "run.duration_s": 3.0,
    "ingress.nodes_per_az": 4,
    "ingress.concurrency": 8,
    "rules.DestinationRule/api.trafficPolicy.connectionPool.tcp.maxConnections": 1024,
    "traffic.0.arrival.rate_rps": 4000,
    "traffic.0.connections.pool_size": 256,
    "services.0.versions.0.replicas": 40,
    "services.0.versions.0.concurrency": 4,
}
"""conform 03 at Envoy's default 1024 connections, with 32 gateway workers and 40 pods."""


def test_pools_bind_far_below_the_limit_in_flight_on_both_engines() -> None:
    """maxConnections 1024 binds with about 80 requests in flight: 32 workers x 40 pods are
    1280 pools, each keeps the connections it opened (idle ones count), and an empty pool may
    always open one (ConnPoolImplBase), so the cluster holds over 1024 and a request whose own
    pool is busy waits; with 2 pending allowed, some get 503 UO.

    The fast engine once ran pools only below a limit of 1024 and bounded the rest by requests
    in flight: it answered every request here with 200 while the SimPy engine and Envoy's pool
    model answer about 6 % with 503 UO.
    """
    sc = load_scenario(ROOT / "sim/scenarios/conform/03-http1-pool.yaml").with_overrides(
        POOLS_AT_1024
    )
    fast = simulate(sc, 1, engine="fast").totals()
    assert fast["flags"].get("UO", 0) > 0.02 * fast["requests"]

    _assert_engines_agree(sc)


def test_comparison_detects_a_real_difference() -> None:
    """Power: the same comparison flags a 20 % slower backend (so passing means something)."""
    sc = load_scenario(ROOT / "sim/scenarios/canary-90-10.yaml").with_overrides(
        {"run.duration_s": 8.0}
    )
    slower = sc.with_overrides({"services.0.versions.0.service_time": "exp(9.6ms)"})

    def runs(engine: str) -> list[dict[str, float]]:
        chosen = sc if engine == "fast" else slower
        return [_metrics(simulate(chosen, 200 + i, engine="fast")) for i in range(REPLICATIONS)]

    failures = _compare(runs)
    assert any(f.startswith("latency mean_ms") for f in failures), failures


def test_comparison_sees_when_an_event_happens() -> None:
    """Power of the time series: the same AZ loss 3 s later is flagged in the intervals between.

    Whole-run shares barely move with the event's time; the per-interval request rate does.
    """
    sc = _scenario(ROOT / "sim/scenarios/az-loss.yaml")
    later = sc.with_overrides({"events.0.at_s": sc.events[0].at_s + 3})

    def runs(engine: str) -> list[dict[str, float]]:
        chosen = sc if engine == "fast" else later
        return [_metrics(simulate(chosen, 200 + i, engine="fast")) for i in range(REPLICATIONS)]

    failures = _compare(runs)
    assert any(f.startswith("ts ") for f in failures), failures


def test_a_server_handed_over_in_the_instant_it_was_asked_for_is_no_wait() -> None:
    """Three requests at each instant, one gateway worker and one sidecar worker, both with
    deterministic CPU (0.2 ms): the gateway hands each request on 0.2 ms after the one before,
    in the very instant the sidecar frees from it. Which of those two events runs first is an
    accident of each engine's event order: the fast engine queued each request at the sidecar
    and counted a wait, where SimPy freed the sidecar first and counted none (random scenario
    2132 found it, with tied replayed arrivals). A wait of no time is none, on both.
    """
    triples = [k / 100 for k in range(600) for _ in range(3)]
    sc = load_scenario(ROOT / "sim/scenarios/conform/03-http1-pool.yaml").with_overrides(
        {
            "run.duration_s": 6.0,
            "run.warmup_s": 1.0,
            "ingress.concurrency": 1,
            "services.0.sidecar": True,
            "services.0.sidecar_concurrency": 1,
            "traffic.0.arrival": {"kind": "replay", "timestamps_s": triples},
            "rules.DestinationRule/api.trafficPolicy.connectionPool": {
                "tcp": {"maxConnections": 1024}
            },
        }
    )
    for engine in ("fast", "simpy"):
        queues = simulate(sc, 1, engine=engine).totals()["queues"]
        gateway, sidecar = queues["gateway_workers"], queues["sidecar/api/v1"]
        # the second and third of each three wait 0.2 and 0.4 ms for the gateway's worker
        assert gateway["wait_probability"] == pytest.approx(2 / 3), (engine, gateway)
        assert gateway["mean_wait_ms"] == pytest.approx(0.2), (engine, gateway)
        assert sidecar["arrivals"] == gateway["arrivals"] == 1500, (engine, queues)
        assert sidecar["wait_probability"] == 0.0, (engine, sidecar)
        assert sidecar["mean_wait_ms"] == 0.0, (engine, sidecar)


# -- random scenarios ----------------------------------------------------------------------------

RANDOM_SCENARIOS = 24
"""Random variations of the bundled and conformance scenarios compared across engines."""
RANDOM_ALPHA = 1e-3
"""False-alarm rate of one random scenario's comparison (24 of them: about 2.4 % in all)."""


def _random_overrides(sc: Scenario, r: random.Random) -> dict[str, Any]:
    """Each knob of the pipeline, the rules and the events changed with probability 0.4.

    Among them: the arrival process (replayed times with ties among them too), consistent
    hashing on a per-user header, the gateway's local rate limit (an EnvoyFilter), the first
    version's autoscaler, the LB's health checks, and an HTTPRoute's timeouts and weights.

    Rules' fields are changed where the scenario has the resource inline. The scenarios are
    short (6 or 10 s) and their rates at least the original's, so one comparison takes seconds.
    """
    o: dict[str, Any] = {"run.duration_s": r.choice([6.0, 10.0]), "run.warmup_s": 1.0}

    def pick() -> bool:
        return r.random() < 0.4

    def dist() -> str:
        m = r.choice([2, 5, 10, 20])
        return r.choice(
            [
                f"exp({m}ms)",
                f"lognormal({m}ms, cv=0.8)",
                f"det({m}ms)",
                f"uniform({m / 2}ms, {m * 1.5}ms)",
                f"gamma({m}ms, cv=2)",
            ]
        )

    knobs: list[tuple[str, list[Any]]] = [
        ("aws.lb", ["nlb", "alb"]),
        ("aws.cross_zone", [True, False]),
        ("aws.target_type", ["instance", "ip"]),
        ("aws.external_traffic_policy", ["Cluster", "Local"]),
        ("aws.alb_algorithm", ["round_robin", "least_outstanding_requests"]),
        ("ingress.nodes_per_az", [1, 2, 3]),
        ("ingress.concurrency", [1, 2, 4]),
        ("ingress.pods_per_node", [1, 2]),
        ("ingress.cpu_per_request", ["exp(0.2ms)", "det(0.5ms)", "lognormal(1ms, cv=1)"]),
    ]
    for path, values in knobs:
        if pick():
            o[path] = r.choice(values)
    for i, s in enumerate(sc.services):
        if pick():
            o[f"services.{i}.sidecar"] = r.choice([True, False])
        for j, _ in enumerate(s.versions):
            at = f"services.{i}.versions.{j}"
            if pick():
                o[f"{at}.concurrency"] = r.choice([1, 2, 4, 8])
            if pick():
                o[f"{at}.service_time"] = dist()
            if pick():
                o[f"{at}.on_cancel"] = r.choice(["finish", "stop"])
            if pick():
                errors = {"probability": r.choice([0.05, 0.2, 0.5]), "status": r.choice([500, 503])}
                o[f"{at}.errors"] = [errors]
    for k, t in enumerate(sc.traffic):
        if pick() and t.arrival.rate_rps:
            o[f"traffic.{k}.arrival.rate_rps"] = t.arrival.rate_rps * r.choice([1.0, 2.0, 3.0])
        if pick() and t.arrival.rate_rps:
            rate = o.get(f"traffic.{k}.arrival.rate_rps", t.arrival.rate_rps)
            o[f"traffic.{k}.arrival"] = r.choice(
                [
                    {"kind": "constant", "rate_rps": rate},
                    {"kind": "diurnal", "rate_rps": rate, "amplitude": 0.5, "period_s": 4.0},
                    {
                        "kind": "schedule",
                        "ramp": r.choice([True, False]),
                        "steps": [
                            {"at_s": 0, "rate_rps": rate / 2},
                            {"at_s": 3, "rate_rps": rate * 2},
                        ],
                    },
                ]
            )
        if pick():
            o[f"traffic.{k}.connections"] = r.choice(
                [
                    {"mode": "per_request"},
                    {"mode": "keepalive", "pool_size": r.choice([2, 16, 64])},
                    {"mode": "keepalive", "pool_size": 8, "requests_per_connection": 5},
                ]
            )
    if pick():  # one more event, 2 or 3.5 s in
        svc = r.choice(sc.services)
        target: dict[str, Any] = {"service": svc.name, "version": r.choice(svc.versions).name}
        events: list[dict[str, Any]] = [
            {"kind": "pod_crash", **target, "restart_after_s": r.choice([2.0, None])},
            {"kind": "error_burst", **target, "probability": 0.5, "duration_s": 2.0},
            {"kind": "scale", **target, "replicas": r.choice([0, 1, 4])},
            {"kind": "deploy", **target, "replicas": 2},
            {"kind": "az_loss", "az": sc.ingress.azs[-1]},
            {"kind": "node_loss", "node": f"ingress-{sc.ingress.azs[0]}-0"},
        ]
        event: dict[str, Any] = {"at_s": r.choice([2.0, 3.5]), **r.choice(events)}
        kept = [e.model_dump(exclude_unset=True) for e in sc.events]
        o["events"] = [*kept, {k: v for k, v in event.items() if v is not None}]
    kinds = [(d.get("kind"), d["metadata"]["name"]) for d in sc.rules.inline]
    for name in [n for kind, n in kinds if kind == "VirtualService"]:
        at = f"rules.VirtualService/{name}.http[0]"
        if pick():
            o[f"{at}.timeout"] = r.choice(["0.05s", "0.2s", "1s"])
        if pick():
            retries: dict[str, Any] = {
                "attempts": r.choice([1, 2, 3]),
                "retryOn": r.choice(["5xx", "gateway-error", "connect-failure,refused-stream"]),
            }
            if r.random() < 0.5:
                retries["perTryTimeout"] = r.choice(["0.02s", "0.1s"])
            o[f"{at}.retries"] = retries
        if pick():
            o[f"{at}.fault"] = r.choice(
                [
                    {"abort": {"percentage": {"value": 10}, "httpStatus": 503}},
                    {"delay": {"percentage": {"value": 20}, "fixedDelay": "0.05s"}},
                ]
            )
    for name in [n for kind, n in kinds if kind == "DestinationRule"]:
        at = f"rules.DestinationRule/{name}.trafficPolicy"
        if pick():
            o[f"{at}.connectionPool"] = r.choice(
                [
                    {
                        "tcp": {"maxConnections": r.choice([2, 8, 64, 1024])},
                        "http": {"http1MaxPendingRequests": r.choice([1, 4, 100])},
                    },
                    {
                        "http": {
                            "http2MaxRequests": r.choice([4, 16]),
                            "maxRequestsPerConnection": r.choice([0, 1, 10]),
                        }
                    },
                ]
            )
        if pick():
            o[f"{at}.outlierDetection"] = {
                "consecutive5xxErrors": r.choice([1, 3, 5]),
                "interval": r.choice(["0.5s", "1s"]),
                "baseEjectionTime": "2s",
                "maxEjectionPercent": r.choice([50, 100]),
            }
        if pick():
            lb = r.choice(["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "consistentHash"])
            if lb == "consistentHash":  # on a header each of the users sends its own value of
                o[f"{at}.loadBalancer"] = {"consistentHash": {"httpHeaderName": "x-user"}}
                o["traffic.0.sessions"] = {
                    "users": r.choice([5, 40]),
                    "sticky_hash_header": "x-user",
                }
            else:
                o[f"{at}.loadBalancer"] = {"simple": lb}
    present = {kind for kind, _ in kinds}
    # the gateway's local rate limit
    if "VirtualService" in present and "EnvoyFilter" not in present and pick():
        o["rules.inline"] = [*sc.rules.inline, _rate_limit(r.choice([20, 100]))]
    if pick():
        o["services.0.versions.0.autoscale"] = {
            "target_utilisation": 0.5,
            "max_replicas": 6,
            "sync_period_s": 1.0,
        }
    # (drawn after the knobs above, so that the scenarios numbered before these were added
    # keep the knobs they had)
    if pick():  # the LB's health checks, which act when an event takes a node or a zone
        o["aws.health_check"] = {
            "interval_s": r.choice([0.5, 1.0]),
            "unhealthy_threshold": r.choice([1, 2, 3]),
            "healthy_threshold": r.choice([1, 2]),
        }
    for k, t in enumerate(sc.traffic):
        if pick() and t.arrival.rate_rps:  # replayed times, many of them the same (ties)
            rate = o.get(f"traffic.{k}.arrival.rate_rps", t.arrival.rate_rps)
            n = int(rate * o["run.duration_s"])
            times = sorted(round(r.uniform(0.0, o["run.duration_s"]), 2) for _ in range(n))
            o[f"traffic.{k}.arrival"] = {"kind": "replay", "timestamps_s": times}
    for doc in sc.rules.inline:
        if doc.get("kind") != "HTTPRoute":
            continue
        for i, rule in enumerate(doc["spec"].get("rules", [])):
            at = f"rules.HTTPRoute/{doc['metadata']['name']}.rules[{i}]"
            refs = rule.get("backendRefs", [])
            if refs and pick():
                o[f"{at}.timeouts"] = {"request": r.choice(["20ms", "50ms", "200ms"])}
            if len(refs) > 1 and pick():
                o[f"{at}.backendRefs[0].weight"] = r.choice([0, 50, 100])
    return o


def _rate_limit(tokens: int) -> dict[str, Any]:
    """An EnvoyFilter giving the ingress gateway a local rate limit of *tokens* a second."""
    percent = {"numerator": 100, "denominator": "HUNDRED"}
    limit = {
        "stat_prefix": "random",
        "token_bucket": {"max_tokens": tokens, "tokens_per_fill": tokens, "fill_interval": "1s"},
        "filter_enabled": {"runtime_key": "enabled", "default_value": percent},
        "filter_enforced": {"runtime_key": "enforced", "default_value": percent},
    }
    router = {"name": "envoy.filters.http.router"}
    hcm = {"name": "envoy.filters.network.http_connection_manager", "subFilter": router}
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "random-ratelimit", "namespace": "istio-system"},
        "spec": {
            "workloadSelector": {"labels": {"istio": "ingressgateway"}},
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {"context": "GATEWAY", "listener": {"filterChain": {"filter": hcm}}},
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {
                            "name": "envoy.filters.http.local_ratelimit",
                            "typed_config": {
                                "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                                "type_url": "type.googleapis.com/envoy.extensions.filters.http."
                                "local_ratelimit.v3.LocalRateLimit",
                                "value": limit,
                            },
                        },
                    },
                }
            ],
        },
    }


def _random_scenario(n: int) -> Scenario:
    r = random.Random(n)
    sc = load_scenario(r.choice([*BUNDLED, *CONFORM]))
    return sc.with_overrides(_random_overrides(sc, r))


@pytest.mark.parametrize("n", range(RANDOM_SCENARIOS))
def test_random_scenario_agrees_across_engines(n: int) -> None:
    """Random combinations of the features, which no curated scenario holds, on both engines.

    This generator found two differences the curated scenarios had not shown, and numbers 17
    and 18 fail without their fixes: outlier ejections reaching the load balancers at once on
    the fast engine (17, and its own test above), and upstream attempts counted by when they
    ended instead of when they were sent (18: a mirror overloading web-v2, whose tries ending
    after the warm-up were mostly sent before).
    """
    sc = _random_scenario(n)
    assert _fast_supported(sc), fast_unsupported(sc)

    _assert_engines_agree(sc, RANDOM_ALPHA, f"{sc.name} with {n}: ")


# -- workers sharing cores (notebook 08's capacity question) ------------------------------------

SHARED_CORES = {
    "run.duration_s": 8.0,
    "run.warmup_s": 1.0,
    "traffic.0.arrival": {"kind": "poisson", "rate_rps": 1600},
    "ingress.nodes_per_az": 2,
    "ingress.cores_per_node": 2,
    "ingress.concurrency": 4,
}
"""capacity-peak with four Envoy workers on two-core nodes: each worker's CPU time is stretched
by workers/cores = 2 (``GatewayPod``'s processor-sharing approximation), keep-alive connections
stay pinned to one worker."""


def _shared_cores(**more: object) -> Scenario:
    sc = load_scenario(ROOT / "sim/scenarios/capacity-peak.yaml")
    return sc.with_overrides({**SHARED_CORES, **more})


def _ingress_mean_ms(result: Result) -> float:
    stages = result.stages()
    rows = stages[stages["stage"] == "ingress"]
    return float((rows["mean_ms"] * rows["requests"]).sum() / rows["requests"].sum())


def test_workers_sharing_cores_agree_across_engines() -> None:
    """Both engines stretch the CPU time of workers that outnumber the node's cores alike.

    Shares, latency quantiles and the ingress stage's mean, compared as every bundled scenario
    is (:func:`_compare`); the next test shows the comparison sees a missing stretch.
    """
    sc = _shared_cores()

    def runs(engine: str) -> list[dict[str, float]]:
        out = []
        for i in range(REPLICATIONS):
            result = simulate(sc, 300 + i, engine=engine)
            metrics = _metrics(result)
            metrics["latency ingress stage mean_ms"] = _ingress_mean_ms(result)
            out.append(metrics)
        return out

    failures = _compare(runs)
    assert not failures, "\n".join(failures)


def test_comparison_detects_workers_that_do_not_share_cores() -> None:
    """Power: the same runs with four cores per node (no stretch) are told apart."""
    sc = _shared_cores()
    roomy = _shared_cores(**{"ingress.cores_per_node": 4})

    def runs(engine: str) -> list[dict[str, float]]:
        chosen = sc if engine == "fast" else roomy
        out = []
        for i in range(REPLICATIONS):
            result = simulate(chosen, 300 + i, engine="fast")
            metrics = _metrics(result)
            metrics["latency ingress stage mean_ms"] = _ingress_mean_ms(result)
            out.append(metrics)
        return out

    failures = _compare(runs)
    assert any(f.startswith("latency ingress stage mean_ms") for f in failures), failures


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_workers_sharing_cores_against_mm1(engine: str) -> None:
    """Per-request connections: each worker is an M/M/1 with its CPU time stretched.

    1600 req/s over 2 AZs × 2 nodes × 4 workers is λ = 100/s per worker (the NLB and the
    worker are uniform picks per connection); CPU exp(1.5 ms) × 4 workers / 2 cores has mean
    3 ms, so the ingress stage (wait + CPU, no proxy latency) has mean 1 / (1/3 ms − 100/s)
    = 4.29 ms. Without the stretch it would be 1.76 ms. The replications' means give a 99 %
    t interval that must hold the closed form.
    """
    sc = _shared_cores(
        **{
            "traffic.0.connections": {"mode": "per_request"},
            "ingress.proxy_latency": "zero",
        }
    )
    service = 2 * 1.5e-3
    expected_ms = 1e3 / (1 / service - 1600 / 16)
    means = np.array([_ingress_mean_ms(simulate(sc, 400 + i, engine=engine)) for i in range(6)])
    half = t_quantile(0.995, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means))
    assert abs(means.mean() - expected_ms) <= half + HDR_RESOLUTION * expected_ms, (
        means.mean(),
        expected_ms,
        half,
    )


def test_tries_and_attempt_series_meta() -> None:
    """meta["tries"] and meta["attempt_series"] (what conform reads) hold on the fast engine.

    Every request after the warm-up is counted once by its number of tries; the tries after
    the warm-up equal the upstream attempts of those requests; every attempt, warm-up
    included, is in one host's series; each retry waits a back-off, so the successful
    requests' median latency grows with the tries; and the share of requests that needed a
    retry agrees with the SimPy engine's within 4 binomial standard deviations of the pooled
    share.
    """
    sc = load_scenario(ROOT / "sim/scenarios/conform/01-retry-backoff.yaml").with_overrides(
        {"run.duration_s": 6.0, "run.warmup_s": 1.0}
    )
    shares: dict[str, tuple[int, int]] = {}
    for engine in ("fast", "simpy"):
        result = simulate(sc, 3, engine=engine)
        tries = {int(k): n for k, n in result.meta["tries"]["requests"].items()}
        summary = result.summary()
        assert sum(tries.values()) == int(summary["requests"].sum()), engine
        assert sum(k * n for k, n in tries.items()) == int(summary["upstream_requests"].sum())
        series = result.meta["attempt_series"]
        intervals = result.meta["config"]["intervals"]
        assert series
        assert all(len(v) == intervals for v in series.values())
        up = result.upstream()
        assert sum(sum(v) for v in series.values()) >= int(up["attempts"].sum())
        success = result.meta["tries"]["success"]
        p50 = [success[k]["p50_ms"] for k in sorted(success, key=int)]
        assert len(p50) >= 2
        assert p50 == sorted(p50), engine
        shares[engine] = (sum(n for k, n in tries.items() if k > 1), sum(tries.values()))
    (a, n_a), (b, n_b) = shares["fast"], shares["simpy"]
    pooled = (a + b) / (n_a + n_b)
    sd = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    assert abs(a / n_a - b / n_b) <= 4 * sd, shares


# -- kernel arithmetic ---------------------------------------------------------------------------


def test_hdr_index_matches_the_layout() -> None:
    from istiolab.sim.fast.kernel import _hdr_index

    layout = HdrLayout(1, int(3600 * 1e6), 3)
    rng = np.random.default_rng(0)
    seconds = np.concatenate([rng.lognormal(-6, 3, 2000), [0.0, 1e-7, 3600.0, 5000.0]])
    expected = layout.index(layout.to_us(seconds))
    got = [
        _hdr_index(
            float(x),
            layout.highest_us,
            layout._unit,
            layout._half_mag,
            layout._half_count,
            layout._mask,
        )
        for x in seconds
    ]
    assert got == expected.tolist()


# -- the accounting of #20 on the fast engine ---------------------------------------------------


def test_fast_engine_gives_the_accounting_fields() -> None:
    """λ = 520/s on 4 servers of 10 ms (ρ = 1.3): both engines count the queue that builds up.

    About (520 − 400) × 18 s = 2 160 requests are unfinished at the end; the count is a sum of
    Poisson arrivals and service completions, sd ≈ √(520·18 + 400·18) ≈ 129 per engine, so two
    independent runs differ by less than 4·√2·129 ≈ 730 (a 0.01 % false alarm).
    """
    from istiolab.sim.scenario import mmc_scenario

    sc = mmc_scenario(520, 10, 4, duration_s=20, warmup_s=2)
    fast = simulate(sc, seed=1, engine="fast")
    slow = simulate(sc, seed=1, engine="simpy")
    ft, st = fast.totals(), slow.totals()
    for key in ("unfinished", "rho", "success_p99_ms", "success_ratio_incl_unfinished"):
        assert key in ft
    assert abs(ft["unfinished"] - st["unfinished"]) < 730
    assert ft["unfinished"] > 1500
    assert ft["rho"]["backend/svc/v1"] > 0.98
    assert ft["success_ratio_incl_unfinished"] < 0.95
    assert {"unstable", "unfinished"} <= {w["code"] for w in fast.warnings}
    assert fast.assumptions["engine"] == "fast"


def test_fast_engine_endpoint_delay_and_in_flight_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from capacity._scenarios import crash_scenario

    quick = simulate(crash_scenario(0.0), engine="fast").totals()
    slow = simulate(crash_scenario(5.0), engine="fast").totals()
    assert quick["flags"].get("UF", 0) == 0
    assert 250 <= slow["flags"]["UF"] <= 1000  # as tests/capacity derives for SimPy

    from istiolab.sim import budget
    from istiolab.sim.scenario import mmc_scenario

    monkeypatch.setattr(budget, "SIM_MAX_IN_FLIGHT", 50)
    result = simulate(mmc_scenario(520, 10, 4, duration_s=10, warmup_s=1), seed=2, engine="fast")
    totals = result.totals()
    assert totals["rejected"] > 0
    assert "in_flight_limit" in {w["code"] for w in result.warnings}
    assert totals["unfinished"] - totals["rejected"] <= 50


def test_fast_engine_counts_utilisation_over_time_not_by_samples() -> None:
    """ρ = busy / available server-seconds after the warm-up, counted as they happen.

    M/M/12 at λ = 800/s, μ = 100/s: ρ = 2/3. Over 38 measured seconds (~30 000 services) the
    busy time's relative sd is about √2/√30 000 ≈ 0.8 %, so ±4 % is five sd. A run with a
    1.5 s window (once NaN: no per-interval sample fell in it) has ~1 200 services, sd ≈ 4 %:
    five sd is ±20 %. One of two pods crashing halfway through the window, with no restart,
    leaves 24 servers for 20 s and 12 for 20 s: the same 8 busy servers give
    ρ = 8·40 / (24·20 + 12·20) = 4/9 (±4 %, five sd again), and two engines, each ~0.8 %, differ
    by under 6 % (five sd of the difference).
    """
    from istiolab.sim.scenario import mmc_scenario

    long = simulate(mmc_scenario(800, 10, 12, duration_s=40, warmup_s=2), 5, engine="fast")
    assert long.totals()["rho"]["backend/svc/v1"] == pytest.approx(2 / 3, rel=0.04)
    short = simulate(mmc_scenario(800, 10, 12, duration_s=2, warmup_s=0.5), 5, engine="fast")
    assert short.totals()["rho"]["backend/svc/v1"] == pytest.approx(2 / 3, rel=0.2)
    crash = mmc_scenario(800, 10, 12, duration_s=42, warmup_s=2).with_overrides(
        {
            "services.0.versions.0.replicas": 2,
            "events": [{"at_s": 22, "kind": "pod_crash", "count": 1}],
        }
    )
    rho = {
        e: simulate(crash, 5, engine=e).totals()["rho"]["backend/svc/v1"] for e in ("fast", "simpy")
    }
    assert rho["fast"] == pytest.approx(4 / 9, rel=0.04)
    assert rho["fast"] == pytest.approx(rho["simpy"], rel=0.06)
    assert long.totals()["queues"]["backend/svc/v1"]["servers"] == 12


def test_fast_engine_counts_queue_waits_as_erlang_c() -> None:
    """The share of arrivals that queue and the mean wait in queue of M/M/c, per tier.

    M/M/12 at λ = 800/s, μ = 100/s: Erlang C gives P(wait) = 0.1398 and Wq = 0.3496 ms. Over
    38 measured seconds, 5 seeds per engine gave a per-run sd of 0.006–0.008 for P(wait) and
    0.044–0.056 ms for Wq; the mean of 8 runs has sd ≤ 0.0029 and ≤ 0.020 ms, and the bounds
    are five of those. Counting a wait twice, or not at all, is far outside them.
    """
    from istiolab.sim.scenario import mmc_scenario

    c_wait = theory.erlang_c(12, 8.0)
    wq_ms = theory.mmc_wait(800.0, 100.0, 12)[0] * 1e3
    sc = mmc_scenario(800, 10, 12, duration_s=40, warmup_s=2)
    queues = [simulate(sc, seed, engine="fast").totals()["queues"] for seed in range(8)]
    backend = [q["backend/svc/v1"] for q in queues]
    assert np.mean([q["wait_probability"] for q in backend]) == pytest.approx(c_wait, abs=0.0145)
    assert np.mean([q["mean_wait_ms"] for q in backend]) == pytest.approx(wq_ms, abs=0.1)
    assert all(q["arrivals"] > 28_000 for q in backend)  # ~800/s over 38 s


@pytest.mark.parametrize(("target_type", "pods"), [("ip", 1), ("instance", 2)])
def test_lb_target_is_a_gateway_pod_or_a_node_on_both_engines(target_type: str, pods: int) -> None:
    """``lb_targets_max``: the workers behind one LB target, a pod (ip) or a node (instance).

    Two gateway pods a node, 3 workers each, two nodes: an ip target has 3 workers, an
    instance target (its node) 6, on both engines (the fast engine once counted a node for
    both). The busiest target took some, not all, of the gateway tier's arrivals.
    """
    sc = load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml").with_overrides(
        {
            "run.duration_s": 4.0,
            "run.warmup_s": 1.0,
            "aws.target_type": target_type,
            "ingress.pods_per_node": 2,
            "ingress.concurrency": 3,
        }
    )
    for engine in ("fast", "simpy"):
        queues = simulate(sc, 3, engine=engine).totals()["queues"]
        hot, tier = queues["lb_targets_max"], queues["gateway_workers"]
        assert tier["servers"] == 12, engine
        assert hot["servers"] == 3 * pods, engine
        assert 0 < hot["arrivals"] < tier["arrivals"], engine
