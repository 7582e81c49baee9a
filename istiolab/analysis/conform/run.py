"""The conform run: one scenario through a real Envoy and through the simulator, compared.

:func:`conform` prepares the scenario once for both sides (so they run the *same* scenario):

* **What the Envoy side cannot reproduce is taken out of the simulator's copy too**, and said in
  the report's notes: the AWS load balancer and kube-proxy hops (the load generator talks to
  Envoy directly), gateway pods beyond one (one Envoy runs), pod sidecars, scheduled events and
  autoscaling. Config the compiled gateway does not express (upstream HTTP/2 from
  ``h2UpgradePolicy``) is noted as well; both sides then use HTTP/1.1 upstream.
* **Scaling**: when the scenario offers more than ``max_rps`` in total, every arrival rate is
  multiplied by ``f = max_rps / offered`` and every service time divided by it, which keeps each
  pod's utilisation (λ·S/c) and every ratio between rates; timeouts, back-off, rate limits and
  outlier detection keep their configured times. Both sides run the scaled scenario.

The load generator can fall behind when the machine stalls it (a shared, busy machine
deschedules it for a few hundred milliseconds now and then). A request it sent more than
:data:`~istiolab.analysis.conform.sides.LATE_S` late keeps counting in every share but not in
the latencies; a replication with more than :data:`MAX_LATE_SHARE` of its requests late is
excluded and replaced, up to two extra attempts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from istiolab.analysis.conform.compare import Metric, compare, metric_defs
from istiolab.analysis.conform.report import ConformReport
from istiolab.analysis.conform.sides import (
    LATE_S,
    Observation,
    cluster_endpoints,
    run_envoy,
    run_sim,
)
from istiolab.analysis.conform.upstream import UpstreamPods, scenario_pods
from istiolab.sim.engine import (
    ENGINES,
    build_table,
    fast_refused,
    fast_unsupported,
    scenario_config,
)
from istiolab.sim.scenario import Scenario

__all__ = ["DEFAULT_MAX_RPS", "MAX_LATE_SHARE", "conform", "offered_rps", "prepare"]

DEFAULT_MAX_RPS = 250.0
"""Total request rate the load generator is trusted to send on a small, shared machine."""
MAX_LATE_SHARE = 0.03
"""An Envoy run with more than this share of late requests is excluded."""
_EXTRA_ATTEMPTS = 2
_SIM_SEED_OFFSET = 1000


def offered_rps(scenario: Scenario) -> float:
    """The scenario's peak total arrival rate (schedules: their largest step)."""
    total = 0.0
    for t in scenario.traffic:
        a = t.arrival
        if a.kind in ("poisson", "constant"):
            total += a.rate_rps or 0.0
        elif a.kind == "diurnal":
            total += (a.rate_rps or 0.0) * (1.0 + (a.amplitude or 0.0))
        elif a.kind == "schedule":
            total += max((s.rate_rps for s in a.steps or ()), default=0.0)
        else:  # replay: its mean rate over its span
            ts = a.timestamps_s or ()
            if len(ts) > 1 and ts[-1] > ts[0]:
                total += len(ts) / (ts[-1] - ts[0])
    return total


def _scaled_dist(spec: dict[str, Any], factor: float) -> dict[str, Any]:
    out = dict(spec)
    for key, value in spec.items():
        if key.endswith("_ms") and value is not None:
            out[key] = [v * factor for v in value] if isinstance(value, list) else value * factor
    return out


def _scale(sc: Scenario, f: float) -> tuple[Scenario, dict[str, Any]]:
    overrides: dict[str, Any] = {}
    rates: dict[str, float] = {}
    for i, t in enumerate(sc.traffic):
        a = t.arrival
        if a.rate_rps is not None:
            overrides[f"traffic.{i}.arrival.rate_rps"] = a.rate_rps * f
            rates[t.name] = a.rate_rps * f
        if a.steps is not None:
            overrides[f"traffic.{i}.arrival.steps"] = [
                {"at_s": s.at_s, "rate_rps": s.rate_rps * f} for s in a.steps
            ]
    for i, svc in enumerate(sc.services):
        for j, ver in enumerate(svc.versions):
            spec = ver.service_time.model_dump(mode="json", exclude_none=True)
            overrides[f"services.{i}.versions.{j}.service_time"] = _scaled_dist(spec, 1.0 / f)
    return sc.with_overrides(overrides), {
        "factor": f,
        "rates_rps": rates,
        "service_time_factor": 1.0 / f,
        "reason": "the offered load is more than the load generator is trusted with here",
    }


def _h2_notes(sc: Scenario) -> list[str]:
    try:
        config = scenario_config(sc)
        text = json.dumps(
            [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in config.resources],
            default=str,
        )
    except Exception:
        return []
    notes = []
    if '"h2UpgradePolicy": "UPGRADE"' in text:
        notes.append(
            "h2UpgradePolicy UPGRADE is not expressed by the compiled gateway (no upstream "
            "http2_protocol_options); both sides use HTTP/1.1 to the pods"
        )
    if '"http2MaxRequests"' in text:
        notes.append(
            "http2MaxRequests is compiled as the cluster's max_requests circuit breaker, which "
            "Envoy also enforces on HTTP/1.1 upstreams; that is what is compared"
        )
    return notes


def prepare(
    scenario: Scenario, max_rps: float = DEFAULT_MAX_RPS
) -> tuple[Scenario, dict[str, Any] | None, list[str]]:
    """The scenario both sides run, the scaling applied (or None), and notes.

    Args:
        scenario: The scenario as written.
        max_rps: Total rate the load generator is trusted with.

    Returns:
        ``(scenario, scaled, notes)``.
    """
    notes: list[str] = []
    overrides: dict[str, Any] = {
        "aws.lb_latency": "zero",
        "aws.kube_proxy_latency": "zero",
        "aws.cross_node_latency": "zero",
        "aws.cross_az_latency": "zero",
        "aws.cross_zone": True,
    }
    ing = scenario.ingress
    if len(ing.gateway_nodes()) != 1:
        notes.append(
            f"{len(ing.gateway_nodes())} gateway pods in the scenario; one Envoy runs, so both "
            "sides use one gateway pod"
        )
        overrides["ingress.gateway_replicas"] = 1
    if scenario.events:
        notes.append(
            f"{len(scenario.events)} scheduled events are not reproduced; both sides run without"
        )
        overrides["events"] = []
    for i, svc in enumerate(scenario.services):
        if svc.sidecar:
            notes.append(f"service {svc.name}: the sidecar hop is not reproduced; left out")
            overrides[f"services.{i}.sidecar"] = False
        for j, ver in enumerate(svc.versions):
            if ver.autoscale is not None:
                notes.append(f"{svc.name}/{ver.name}: autoscaling is not reproduced; left out")
                overrides[f"services.{i}.versions.{j}.autoscale"] = None
    sc = scenario.with_overrides(overrides)
    notes += _h2_notes(sc)
    scaled = None
    offered = offered_rps(sc)
    if offered > max_rps > 0:
        sc, scaled = _scale(sc, max_rps / offered)
        scaled["offered_rps"] = offered
        notes.append(
            f"scaled: {offered:g} req/s offered is more than {max_rps:g}; rates × "
            f"{scaled['factor']:.3f} and service times × {scaled['service_time_factor']:.3f} "
            "(utilisations kept)"
        )
    return sc, scaled, notes


def conform(
    scenario: Scenario,
    *,
    seconds: float = 20.0,
    reps: int = 3,
    max_rps: float = DEFAULT_MAX_RPS,
    envoy_path: str | None = None,
    known: dict[str, str] | None = None,
    progress: Callable[[str], object] | None = None,
    engine: str = "simpy",
) -> ConformReport:
    """Run *scenario* through a real Envoy and through the simulator and compare them.

    Args:
        scenario: The scenario.
        seconds: Measured seconds per replication (after the scenario's warm-up).
        reps: Replications per side (>= 2: the interval needs a variance).
        max_rps: Scale the scenario down when it offers more than this.
        envoy_path: Explicit Envoy binary.
        known: Metric name -> known cause of a difference, carried into the report.
        progress: Called with a short line before each replication.
        engine: The simulator's engine (``simpy``, the reference, by default; ``fast`` or
            ``auto``); the report's notes name the engine that ran.

    Returns:
        The report.

    Raises:
        ValueError: ``reps < 2`` or ``seconds <= 0``, or an unknown *engine*.
        SimulationError: ``engine="fast"`` and the fast engine cannot run the scenario.
        SandboxError: Envoy or the upstream pods failed.
        ConfigError: The scenario's rules do not compile.
    """
    if reps < 2:
        raise ValueError(f"reps must be >= 2 (the interval needs a variance), got {reps}")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    say = progress or (lambda _line: None)
    sc, scaled, notes = prepare(scenario, max_rps)
    table, findings = build_table(sc)
    if engine == "fast" and (reason := fast_unsupported(sc)) is not None:
        raise fast_refused(reason)  # before minutes of Envoy runs, not after them
    notes += [f"{f.code}: {f.message}" for f in findings if f.severity.value != "info"]
    pods = scenario_pods(sc)
    members = cluster_endpoints(table, pods)
    groups = [
        (table.clusters[name].lb, [pods[i].name for i in idx])
        for name, idx in members.items()
        if idx
    ]
    base = sc.run.seed
    envoy_obs: list[Observation] = []
    excluded: list[dict[str, Any]] = []
    attempt = 0
    # One upstream server for every replication (re-seeded each time): its start-up (Python
    # imports) costs more than a replication's Envoy.
    with UpstreamPods(pods, seed=base, warmup_s=sc.run.warmup_s) as upstream:
        while len(envoy_obs) < reps and attempt < reps + _EXTRA_ATTEMPTS:
            say(f"{sc.name}: Envoy replication {attempt + 1}")
            seed = base + attempt
            obs = run_envoy(
                sc, seed=seed, seconds=seconds, envoy_path=envoy_path, upstream=upstream
            )
            attempt += 1
            late_share = obs.late / obs.requests if obs.requests else 1.0
            if late_share > MAX_LATE_SHARE:
                excluded.append(
                    {
                        "seed": seed,
                        "late_share": round(late_share, 4),
                        "lag_p99_ms": round(obs.lag_p99_ms, 2),
                    }
                )
                continue
            envoy_obs.append(obs)
            notes += [n for n in obs.notes if n not in notes]
    envoy_only: dict[str, Any] = {}
    by_tries: dict[int, list[float]] = {}
    for o in envoy_obs:
        for k, values in o.success_by_tries.items():
            by_tries.setdefault(k, []).extend(values)
    if len(by_tries) > 1:
        envoy_only["success_ms_by_tries"] = {
            str(k): {
                "n": len(v),
                "p50": round(float(np.quantile(v, 0.5)), 2),
                "p90": round(float(np.quantile(v, 0.9)), 2),
            }
            for k, v in sorted(by_tries.items())
        }
        notes.append(
            "Envoy's successes by upstream tries (the medians are compared above as "
            "success_p50_ms.tries_<k>): "
            + "; ".join(
                f"{k} {'try' if k == '1' else 'tries'}: n={d['n']}, p50 {d['p50']:g} ms, "
                f"p90 {d['p90']:g} ms"
                for k, d in envoy_only["success_ms_by_tries"].items()
            )
        )
    late = sum(o.late for o in envoy_obs)
    if late:
        notes.append(
            f"{late} of {sum(o.requests for o in envoy_obs)} Envoy-side requests were sent over "
            f"{LATE_S * 1000:g} ms late (the machine stalled the generator): counted in the "
            "shares, left out of the latencies"
        )
    if envoy_obs:
        keys = sorted({k for o in envoy_obs for k in o.counters})
        if keys:
            mean = {k: sum(o.counters.get(k, 0) for o in envoy_obs) / len(envoy_obs) for k in keys}
            notes.append(
                "Envoy counters per run: " + ", ".join(f"{k} {v:.1f}" for k, v in mean.items())
            )
    if excluded:
        notes.append(
            f"{len(excluded)} Envoy run(s) excluded: the load generator fell behind "
            f"(more than {MAX_LATE_SHARE:.0%} of requests sent over "
            f"{LATE_S * 1000:g} ms late)"
        )
    sim_obs = []
    for k in range(reps):
        say(f"{sc.name}: simulator replication {k + 1}")
        obs = run_sim(sc, seed=base + _SIM_SEED_OFFSET + k, seconds=seconds, engine=engine)
        notes += [n for n in obs.notes if n not in notes]
        sim_obs.append(obs)
    outlier_groups = [
        [pods[i].name for i in idx]
        for name, idx in members.items()
        if idx and table.clusters[name].outlier is not None
    ]
    cycle = max(
        (
            od.interval_s + od.base_ejection_s
            for c in table.clusters.values()
            if (od := c.outlier) is not None
        ),
        default=0.0,
    )
    defs = metric_defs(table, groups, envoy_obs, sim_obs, outlier_groups, cycle)
    metrics: list[Metric] = compare(defs, envoy_obs, sim_obs, known)
    if len(envoy_obs) < 2:
        notes.append("fewer than 2 usable Envoy runs: no verdict")
        metrics = [
            Metric(m.name, m.sim, m.envoy, math.nan, math.nan, False, m.known) for m in metrics
        ]
    return ConformReport(
        scenario=scenario.name,
        scaled=scaled,
        metrics=metrics,
        notes=notes,
        excluded=excluded,
        envoy_only=envoy_only,
        reps=(len(envoy_obs), len(sim_obs)),
        seconds=seconds,
        requests=(
            sum(o.requests for o in envoy_obs) // max(len(envoy_obs), 1),
            sum(o.requests for o in sim_obs) // max(len(sim_obs), 1),
        ),
    )
