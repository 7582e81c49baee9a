"""One replication on each side, reduced to the same :class:`Observation`.

Envoy side (:func:`run_envoy`): the scenario's compiled gateway config rendered for a real Envoy
(:mod:`istiolab.envoy.render`, run by :class:`~istiolab.envoy.sandbox.EnvoySandbox` with
``ingress.concurrency`` workers), the scenario's pods as real listeners
(:class:`~istiolab.analysis.conform.upstream.UpstreamPods`) and the open-loop load generator
(:mod:`istiolab.analysis.conform.loadgen`). Envoy's response flags and upstream attempt counts
come from its access log, joined by request id.

Simulator side (:func:`run_sim`): :func:`~istiolab.sim.engine.simulate` on the same scenario,
reduced from its public frames.

Both count requests that *arrive* after the warm-up.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from istiolab.analysis.conform.loadgen import LoadRun, plan_arrivals, run_load
from istiolab.analysis.conform.upstream import PodSpec, UpstreamPods, scenario_pods
from istiolab.envoy.model import RouteTable
from istiolab.envoy.render import render
from istiolab.envoy.sandbox import EnvoySandbox
from istiolab.sim.engine import build_table, engine_fallback, simulate
from istiolab.sim.scenario import Scenario
from istiolab.sim.stages.upstream import ring_layout, ring_lookup

__all__ = [
    "BIN_S",
    "LATE_S",
    "Observation",
    "cluster_endpoints",
    "fill_interval_s",
    "rl_bin_s",
    "run_envoy",
    "run_sim",
]

_START_DELAY_S = 0.3  # time between handing out t0 and the first possible arrival
_LOG_SETTLE_S = 0.15  # Envoy flushes its access log every 2 ms; leave it time to finish
LATE_S = 0.020
"""A request sent later than this after its arrival time is *late*: its latency is not used."""
BIN_S = 0.1
"""Width of the bins of :attr:`Observation.pod_series` on both sides."""


@dataclass
class Observation:
    """What one replication measured, the same on both sides.

    Attributes:
        requests: Requests arriving after the warm-up.
        window_s: Length of the measured window (run length minus warm-up).
        statuses: Requests by HTTP status (0: the client saw no response).
        flags: Requests by response flag (a request with ``UF,URX`` counts for both).
        pod_attempts: Upstream attempts that reached each pod.
        success_ms: Latencies of successful requests (status < 500), ms; None when only
            quantiles are known.
        success_p50_ms: Median latency of successes, ms.
        success_p99_ms: 99th percentile latency of successes, ms.
        mean_ms: Mean latency of all requests, ms.
        lag_p99_ms: The load generator's 99th percentile send lag (0 for the simulator).
        late: Requests the generator sent more than :data:`LATE_S` after their arrival time
            (a stall of the machine); counted in every share, left out of the latencies.
        success_by_tries: Envoy only: latencies (ms) of successful requests by the number of
            upstream tries they took (``%UPSTREAM_REQUEST_ATTEMPT_COUNT%``); where the retry
            back-off shows.
        warmup_s: The run's warm-up (where the measured window starts).
        tries: Requests by upstream tries (0: a local reply); Envoy: from the access log.
        tries_p50_ms: Median latency of the successful requests by upstream tries, with
            :attr:`tries_ok` their number; where the retry back-off shows.
        tries_ok: Successful requests (with a latency) by upstream tries.
        pod_series: Upstream attempts each pod received in each :data:`BIN_S` from the run's
            start (warm-up included): when a pod stopped and started getting traffic.
        rl_series: Under a local rate limit: 429 responses to requests arriving after the
            warm-up, per bin of :attr:`rl_bin_s` from the run's start (Envoy: by arrival;
            the simulator: by completion, the same instant for a local reply).
        rl_bin_s: Width of the :attr:`rl_series` bins (a tenth of the fill interval or less).
        ring_agreement: Under a ring hash on a header: the share of successful requests that
            reached the pod the simulator's ring (:func:`~istiolab.sim.stages.upstream.
            ring_layout`) picks for the request's key over this run's endpoint addresses;
            NaN without a ring. Envoy: Envoy's picks against that ring; the simulator: 1 (it
            picks by that ring).
        counters: Envoy's cluster counters that explain the metrics (ejections, overflows),
            summed over clusters, for the whole run including the warm-up; empty for the
            simulator.
        notes: What the side could not reproduce.
    """

    requests: int
    window_s: float
    statuses: dict[int, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    pod_attempts: dict[str, int] = field(default_factory=dict)
    success_ms: list[float] | None = None
    success_p50_ms: float = float("nan")
    success_p99_ms: float = float("nan")
    mean_ms: float = float("nan")
    lag_p99_ms: float = 0.0
    late: int = 0
    success_by_tries: dict[int, list[float]] = field(default_factory=dict)
    warmup_s: float = 0.0
    tries: dict[int, int] = field(default_factory=dict)
    tries_p50_ms: dict[int, float] = field(default_factory=dict)
    tries_ok: dict[int, int] = field(default_factory=dict)
    pod_series: dict[str, list[int]] = field(default_factory=dict)
    rl_series: list[int] = field(default_factory=list)
    rl_bin_s: float = 0.0
    ring_agreement: float = float("nan")
    counters: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def fill_interval_s(table: RouteTable) -> float | None:
    """The fill interval of the local rate limit (the gateway's, else the first route's)."""
    specs = [table.rate_limit, *(r.rate_limit for r in table.routes())]
    return next((spec.fill_interval_s for spec in specs if spec is not None), None)


def rl_bin_s(fill_s: float | None) -> float:
    """Width of the 429 bins: :data:`BIN_S` divided evenly, no wider than a tenth of *fill_s*."""
    if fill_s is None or fill_s <= 0:
        return BIN_S
    return BIN_S / max(1, math.ceil(BIN_S / (fill_s / 10) - 1e-9))


def _ring_cluster(
    table: RouteTable, members: Mapping[str, list[int]]
) -> tuple[str, list[int]] | None:
    """The hash header and pod indices of the one ring-hash cluster of a header-hashing route.

    None when there is no such cluster, or several (which route a request took is not known
    here).
    """
    found = []
    for r in table.routes():
        if r.hash_policy is None or r.hash_policy[0] != "header":
            continue
        for wc in r.clusters:
            c = table.clusters.get(wc.name)
            if c is not None and c.lb == "RING_HASH" and len(members.get(wc.name, [])) > 1:
                found.append((r.hash_policy[1].lower(), members[wc.name]))
    return found[0] if len(found) == 1 else None


def ring_size(table: RouteTable) -> int:
    """The minimum ring size of the table's ring-hash cluster (Envoy's 1024 without one)."""
    return next((c.ring_size for c in table.clusters.values() if c.lb == "RING_HASH"), 1024)


def cluster_endpoints(table: RouteTable, pods: Sequence[PodSpec]) -> dict[str, list[int]]:
    """For every cluster of the table, the indices of the pods it selects (host and labels)."""
    out: dict[str, list[int]] = {}
    for name, c in table.clusters.items():
        want = set(c.labels)
        out[name] = [i for i, p in enumerate(pods) if p.host == c.host and want <= set(p.labels)]
    return out


def _read_log(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("req"):
            out[str(entry["req"])] = entry
    return out


def run_envoy(
    scenario: Scenario,
    *,
    seed: int,
    seconds: float,
    envoy_path: str | None = None,
    upstream: UpstreamPods | None = None,
) -> Observation:
    """One replication through a real Envoy, real upstream pods and the load generator.

    Args:
        scenario: The (possibly scaled) scenario.
        seed: Seeds arrivals, requests, service times and errors.
        seconds: Measured length after the warm-up.
        envoy_path: Explicit Envoy binary.
        upstream: Running upstream pods of this scenario to reuse (they are re-seeded and
            their counters restart); None starts and stops new ones.

    Returns:
        The replication's observation.

    Raises:
        SandboxError: Envoy or the upstream pods failed.
        ConfigError: The scenario's rules do not compile.
    """
    table, _ = build_table(scenario)
    pods = scenario_pods(scenario)
    members = cluster_endpoints(table, pods)
    warmup = scenario.run.warmup_s
    duration = warmup + seconds
    log_path: list[Path] = []
    own = upstream is None
    up = UpstreamPods(pods, seed=seed, warmup_s=warmup) if upstream is None else upstream
    with contextlib.ExitStack() as stack:
        if own:
            stack.enter_context(up)

        def render_fn(
            port: int, _stubs: Mapping[str, Sequence[tuple[str, int]]], log: str
        ) -> dict[str, Any]:
            log_path.append(Path(log))
            endpoints = {
                name: [("127.0.0.1", up.ports[i]) for i in idx] for name, idx in members.items()
            }
            return render(table, endpoints, listener_port=port, access_log_path=log)

        with EnvoySandbox(
            render_fn, [], envoy_path=envoy_path, concurrency=scenario.ingress.concurrency
        ) as sb:
            port = int(sb.listener_url.rsplit(":", 1)[1])
            plan = plan_arrivals(scenario, seed, duration)
            t0 = time.monotonic() + _START_DELAY_S
            up.go(t0, seed, BIN_S)
            load = run_load(plan, port, scenario, seed, t0)
            received = up.received()
            series = up.series
            time.sleep(_LOG_SETTLE_S)
            log = _read_log(log_path[0])
            counters = _counters(sb.stats())
    obs = _reduce_envoy(load, log, received, pods, warmup, seconds)
    obs.counters = counters
    obs.pod_series = {p.name: list(v) for p, v in zip(pods, series, strict=False)}
    obs.warmup_s = warmup
    ring = _ring_cluster(table, members)
    if ring is not None and len(plan) == len(load.sent):
        header, idx = ring
        hashes, owners = ring_layout([f"127.0.0.1:{up.ports[i]}" for i in idx], ring_size(table))
        agree = total = 0
        for planned, r in zip(plan, load.sent, strict=True):
            key = {k.lower(): v for k, v in planned.headers}.get(header)
            if r.t < warmup or not 0 < r.status < 500 or not r.pod or key is None:
                continue
            total += 1
            agree += r.pod == pods[idx[owners[ring_lookup(hashes, key)]]].name
        obs.ring_agreement = agree / total if total else math.nan
    fill = fill_interval_s(table)
    if fill is not None:
        obs.rl_bin_s = rl_bin_s(fill)
        obs.rl_series = [0] * round((warmup + seconds) / obs.rl_bin_s)
        for r in load.sent:
            if r.status == 429 and r.t >= warmup:
                k = min(int(r.t / obs.rl_bin_s), len(obs.rl_series) - 1)
                obs.rl_series[k] += 1
    return obs


_COUNTERS = (
    "outlier_detection.ejections_enforced_total",
    "upstream_rq_pending_overflow",
    "upstream_cx_overflow",
    "upstream_rq_retry",
    "upstream_rq_per_try_timeout",
)


def _counters(stats: Mapping[str, int]) -> dict[str, int]:
    out = dict.fromkeys(_COUNTERS, 0)
    for name, value in stats.items():
        if name.startswith("cluster."):
            for key in _COUNTERS:
                if name.endswith("." + key):
                    out[key] += value
    return {k: v for k, v in out.items() if v}


def _reduce_envoy(
    load: LoadRun,
    log: Mapping[str, Mapping[str, Any]],
    received: Sequence[int],
    pods: Sequence[PodSpec],
    warmup: float,
    seconds: float,
) -> Observation:
    measured = [r for r in load.sent if r.t >= warmup]
    lags = [r.lag_s for r in measured]
    statuses: Counter[int] = Counter()
    flags: Counter[str] = Counter()
    latencies: list[float] = []
    success: list[float] = []
    by_tries: dict[int, list[float]] = {}
    tries_count: Counter[int] = Counter()
    missing = late = 0
    for r in measured:
        entry = log.get(r.req_id)
        status = r.status
        if entry is None:
            missing += 1
        else:
            for f in str(entry.get("flags") or "-").split(","):
                if f and f != "-":
                    flags[f] += 1
            with contextlib.suppress(ValueError):
                tries_count[int(str(entry.get("attempts") or 0))] += 1
        statuses[status] += 1
        if r.lag_s > LATE_S:
            late += 1
            continue
        ms = r.latency_s * 1000.0
        latencies.append(ms)
        if 0 < status < 500:
            success.append(ms)
            try:
                tries = int(str((entry or {}).get("attempts") or 0))
            except ValueError:
                tries = 0
            if tries > 0:
                by_tries.setdefault(tries, []).append(ms)
    obs = Observation(
        requests=len(measured),
        window_s=seconds,
        statuses=dict(statuses),
        flags=dict(flags),
        pod_attempts={p.name: int(n) for p, n in zip(pods, received, strict=True)},
        success_ms=success,
        success_by_tries=by_tries,
        tries=dict(tries_count),
        tries_p50_ms={k: float(np.quantile(v, 0.5)) for k, v in by_tries.items()},
        tries_ok={k: len(v) for k, v in by_tries.items()},
        lag_p99_ms=float(np.quantile(lags, 0.99)) * 1000.0 if lags else 0.0,
        late=late,
    )
    if success:
        obs.success_p50_ms = float(np.quantile(success, 0.5))
        obs.success_p99_ms = float(np.quantile(success, 0.99))
    if latencies:
        obs.mean_ms = float(np.mean(latencies))
    if missing:
        obs.notes.append(f"{missing} requests had no access-log line (their flags are unknown)")
    return obs


def run_sim(scenario: Scenario, *, seed: int, seconds: float, engine: str = "simpy") -> Observation:
    """One simulator replication of the scenario, reduced to an :class:`Observation`.

    Args:
        scenario: The (possibly scaled) scenario, already adjusted for the comparison.
        seed: The simulation seed.
        seconds: Measured length after the warm-up.
        engine: The simulation engine (see :func:`~istiolab.sim.engine.simulate`); the
            observation's notes name the engine that ran, and why ``auto`` fell back.

    Returns:
        The replication's observation.
    """
    warmup = scenario.run.warmup_s
    table, _ = build_table(scenario)
    fill = fill_interval_s(table)
    interval = rl_bin_s(fill)
    per_bin = round(BIN_S / interval)
    sc = scenario.with_overrides(
        {
            "run.duration_s": warmup + seconds,
            "run.trace_sample": 0.0,
            "run.metrics_interval_s": interval,
        }
    )
    result = simulate(sc, seed, engine=engine)
    totals = result.totals()
    codes = result.codes()
    codes = codes[codes["t_s"] >= warmup]
    statuses: Counter[int] = Counter()
    for status, count in codes.groupby("status")["count"].sum().items():
        statuses[int(str(status))] += int(count)
    flags: Counter[str] = Counter()
    for row_flags in result.summary()["flags"]:
        for key, n in dict(row_flags).items():
            for f in str(key).split(","):
                if f and f != "-":
                    flags[f] += int(n)
    pods: Counter[str] = Counter()
    up = result.upstream()
    for host, flag, attempts in zip(up["host"], up["flag"], up["attempts"], strict=True):
        parts = set(str(flag).split(","))
        if parts & {"UO", "UH", "NR"} or not host:
            continue  # never sent to a pod
        pods[str(host)] += int(attempts)
    requests = int(totals.get("requests", 0))
    obs = Observation(
        requests=requests,
        window_s=seconds,
        statuses=dict(statuses),
        flags=dict(flags),
        pod_attempts=dict(pods),
        success_p50_ms=float(totals.get("success_p50_ms", float("nan"))),
        success_p99_ms=float(totals.get("success_p99_ms", float("nan"))),
        mean_ms=float(totals.get("mean_ms", float("nan"))),
    )
    obs.warmup_s = warmup
    obs.notes.append(f"simulator: the {result.assumptions.get('engine', engine)} engine")
    fallback = engine_fallback(result)
    if fallback is not None:
        obs.notes.append(fallback)
    if _ring_cluster(table, {n: [0, 1] for n in table.clusters}) is not None:
        obs.ring_agreement = 1.0  # the simulator picks by ring_layout's ring
    tries = result.meta.get("tries", {})
    obs.tries = {int(k): int(v) for k, v in tries.get("requests", {}).items()}
    for k, d in tries.get("success", {}).items():
        obs.tries_p50_ms[int(k)] = float(d["p50_ms"])
        obs.tries_ok[int(k)] = int(d["n"])
    for key, fine in result.meta.get("attempt_series", {}).items():
        pod = str(key).rsplit("|", 1)[-1]
        values = [sum(fine[i : i + per_bin]) for i in range(0, len(fine), per_bin)]
        prev = obs.pod_series.get(pod)
        obs.pod_series[pod] = (
            list(values) if prev is None else [a + b for a, b in zip(prev, values, strict=True)]
        )
    if fill is not None:
        obs.rl_bin_s = interval
        obs.rl_series = [0] * round((warmup + seconds) / interval)
        limited = codes[codes["status"] == 429].groupby("t_s")["count"].sum()
        for t, n in limited.items():
            k = min(round(float(str(t)) / interval), len(obs.rl_series) - 1)
            obs.rl_series[k] += int(n)
    # Status shares use the codes frame (binned by completion); scale it to the request count
    # of requests started after the warm-up so both sides divide by the same kind of number.
    total_codes = sum(statuses.values())
    if total_codes and requests:
        obs.statuses = {k: round(v * requests / total_codes) for k, v in statuses.items()}
    return obs
