"""The fast engine's entry point: support check, state, the kernel's loop, and the Result.

:func:`prepare` takes the scenario and its route table, compiled exactly as for the SimPy
engine (the engine passes what :func:`istiolab.sim.engine.build_table` returned), and lowers
them (:mod:`~istiolab.sim.fast.lower`), or says which feature the fast engine lacks (the
``auto`` engine then runs SimPy and notes the reason in the result's findings).
:func:`simulate_fast` runs the compiled loop (:mod:`~istiolab.sim.fast.kernel`) and hands its
tallies to the same :class:`~istiolab.sim.frames.Reduction` the SimPy engine's metrics use, so
the frames have the same schema, columns and units.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from istiolab.envoy.model import RouteTable
from istiolab.findings import Finding, Severity, finding
from istiolab.rng import SeedLike, as_seed_sequence
from istiolab.sim import accounting
from istiolab.sim.fast import aot
from istiolab.sim.fast import layout as lay
from istiolab.sim.fast.lower import MAX_TRIES, STATIC, Plan, UnsupportedError, lower
from istiolab.sim.frames import Reduction
from istiolab.sim.metrics import _HOST_SERIES_CELLS as HOST_SERIES_CELLS
from istiolab.sim.metrics import STAGES, TRACE_LIMIT, request_spans
from istiolab.sim.results import Result, make_run_id, normalise_params
from istiolab.sim.scenario import Scenario
from istiolab.sim.stages.upstream import ring_layout
from istiolab.sim.tallies import PERCENTILES, IntervalTable, KeyCounters

SPANS_PER_TRACE = 1 + len(STAGES)
"""Spans of one traced request: the client's and one per stage (metrics.request_spans)."""

PROGRESS_STEPS = 100
"""How many times ``progress`` is called (as the SimPy engine)."""

ATTEMPT_CELLS = 4_000_000
"""Most (cluster, pod, interval) cells the kernel counts attempts in (32 MB); beyond it the
result's ``meta["attempt_series"]`` is empty."""

Array = npt.NDArray[Any]


def numba_missing() -> str | None:
    """Why the fast engine cannot run on this interpreter, or None.

    It runs with the ahead-of-time module (:mod:`~istiolab.sim.fast.aot`) or with numba.
    """
    if aot.available():
        return None
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed (pip install numba)"
    return None


def kernel_function() -> Callable[..., int]:
    """The compiled ``run_until``: the ahead-of-time module's when built, else numba's.

    Both are compiled from the same source (:mod:`~istiolab.sim.fast.kernel`) and give
    identical results; the first needs neither numba nor its 120 MiB (``docs/engines.md``).
    ``ISTIOLAB_FAST_KERNEL=jit`` chooses numba's.

    Raises:
        SettingError: When ``ISTIOLAB_FAST_KERNEL`` is neither ``aot`` nor ``jit``.
    """
    built = aot.load()
    if built is not None:
        return built
    from istiolab.sim.fast import kernel as kern

    function: Callable[..., int] = kern.run_until
    return function


def prepare(scenario: Scenario, table: RouteTable, notes: list[Finding]) -> Plan | str:
    """Lower *scenario* with its compiled *table*, or say which feature the fast engine lacks.

    Returns:
        The lowered plan to run with :func:`simulate_fast`, or the reason it cannot run here
        (the ``auto`` engine then runs SimPy and notes the reason in the result's findings).

    Raises:
        SimulationError: When the scenario cannot be built (as the SimPy engine would raise).
    """
    missing = numba_missing()
    if missing is not None:
        return missing
    try:
        return lower(scenario, table, notes)
    except UnsupportedError as err:
        return str(err)


def fallback_note(reason: str) -> Finding:
    """The finding a result carries when ``engine="auto"`` ran SimPy instead of the fast engine."""
    return finding(
        "IL401",
        "Scenario",
        "engine",
        f"engine auto ran the SimPy engine: the fast engine does not support {reason}",
        "run with engine='simpy' to silence this note, or drop the feature to run fast",
        severity=Severity.INFO,
    )


class _State:
    """The kernel's mutable arrays, by name, in the kernel's argument order."""

    ORDER = (
        "st_i", "st_f", "rs", "pod_stream_at", "up_stream_at", "tr_stream_at",
        "h_t", "h_i", "d_t", "d_i", "dr_t", "dr_i",
        "rq_f", "rq_i", "rq_tried", "req_free", "jb_i", "jb_f", "job_free",
        "pd_i", "pd_f", "pd_burst", "bu_f", "ve_count", "wk_i", "nd_alive", "tg_s", "tg_f",
        "cn_i", "cn_f", "tr_next", "cs_i", "cs_f", "cl_avail", "tmp", "od_i", "od_f", "bk_s",
        "hpa_f", "hpa_log", "rr_w", "rg_h", "rg_o", "rg_n", "rg_gen", "pl_i",
        "hist", "row_sum", "row_max", "key_st", "se_i", "se_busy", "vs", "code_of", "codes",
        "code_key", "live", "live_k", "live_rng", "done_idx", "ut_f", "ut_n", "up", "ig",
        "ok_hist", "tries", "ok_tries", "att", "ac_f", "trc",
    )  # fmt: skip

    def __init__(self, plan: Plan, seed: np.random.SeedSequence) -> None:
        a = plan.arrays
        cfg = a["cfg_i"]
        n = int(cfg[lay.CI_INTERVALS])
        n_r, n_c = len(plan.routes), len(plan.clusters) - 1
        n_l, n_s = len(plan.labels), len(plan.statuses)
        n_n, n_g, n_w = len(plan.nodes), int(cfg[lay.CI_GW]), int(cfg[lay.CI_WORKERS])
        n_v = max(1, len(plan.version_names))
        max_pods = plan.max_pods
        counts_len = plan.layout.counts_len
        n_keys = len(plan.keys)
        n_specs = max(1, int(cfg[lay.CI_BUCKET_SPECS]))
        pools = int(a["tr_i"][:, lay.TI_POOL].sum())
        s: dict[str, Any] = {}
        s["st_i"] = np.zeros(lay.SI_SIZE, dtype=np.int64)
        s["st_f"] = np.zeros(lay.SF_SIZE, dtype=np.float64)
        names = [f"fast:{x}" for x in plan.streams]
        names += [f"fast:pod/{k}/{what}" for k in range(max_pods) for what in ("service", "errors")]
        s["rs"] = _streams(seed, names)
        s["pod_stream_at"] = len(plan.streams)
        n_t = int(cfg[lay.CI_TRAFFIC])
        s["tr_stream_at"] = lay.N_FIXED_STREAMS
        s["up_stream_at"] = lay.N_FIXED_STREAMS + 3 * n_t
        heap = 4096 + 2 * (64 + max_pods + int(cfg[lay.CI_TARGETS]))
        # event heap, deadline heap and deadline ring: times, and (sequence, key, aux) per entry
        for name, size in (("h", heap), ("d", 1024), ("dr", 1024)):
            s[f"{name}_t"] = np.zeros(size)
            s[f"{name}_i"] = np.zeros(3 * size, dtype=np.int64)
        cap = 1024
        s["rq_f"] = np.zeros((cap, lay.Q_SIZE))
        s["rq_i"] = np.zeros((cap, lay.R_SIZE), dtype=np.int64)
        s["rq_tried"] = np.zeros((cap, MAX_TRIES), dtype=np.int64)
        s["req_free"] = np.arange(cap, dtype=np.int64)[::-1].copy()
        s["jb_i"] = np.zeros((cap, lay.J_SIZE), dtype=np.int64)
        s["jb_f"] = np.zeros(cap)
        s["job_free"] = np.arange(cap, dtype=np.int64)[::-1].copy()
        s["st_i"][lay.SI_REQ_FREE] = cap
        s["st_i"][lay.SI_JOB_FREE] = cap
        pd_i = np.zeros((max_pods, lay.P_SIZE), dtype=np.int64)
        pd_f = np.zeros((max_pods, 1))
        ve_count = np.zeros(n_v, dtype=np.int64)
        for p, (v, az) in enumerate(a["init_pods"][: plan.initial_pods]):
            pd_i[p] = 0
            pd_i[p, lay.P_VERSION] = v
            pd_i[p, lay.P_AZ] = az
            pd_i[p, lay.P_ALIVE] = pd_i[p, lay.P_NODE_ALIVE] = pd_i[p, lay.P_IN_EP] = 1
            for col in (lay.P_SRV_HEAD, lay.P_SRV_TAIL, lay.P_SC_HEAD, lay.P_SC_TAIL):
                pd_i[p, col] = -1
            pd_i[p, lay.P_ORDINAL] = ve_count[v]
            ve_count[v] += 1
        s["st_i"][lay.SI_PODS] = plan.initial_pods
        s["pd_i"] = pd_i
        s["pd_f"] = pd_f
        n_ev = max(1, int(cfg[lay.CI_EVENTS]))
        s["pd_burst"] = np.zeros((max_pods, n_ev), dtype=np.int64)
        s["bu_f"] = np.zeros((n_ev, 2))
        s["ve_count"] = ve_count
        wk = np.zeros((n_g * n_w, 3), dtype=np.int64)
        wk[:, 1:] = -1
        s["wk_i"] = wk
        s["nd_alive"] = np.ones(n_n, dtype=np.int64)
        s["tg_s"] = np.zeros((int(cfg[lay.CI_TARGETS]), 2), dtype=np.int64)
        s["tg_f"] = np.full(int(cfg[lay.CI_TARGETS]), np.nan)
        s["cn_i"] = np.zeros((max(1, pools), 5), dtype=np.int64)
        s["cn_f"] = np.zeros(max(1, pools))
        s["tr_next"] = np.zeros(max(1, n_t), dtype=np.int64)
        cs = np.zeros((max(1, n_c), lay.CS_ROW), dtype=np.int64)
        cs[:, lay.CS_GEN] = -1
        s["cs_i"] = cs
        s["cs_f"] = np.full(max(1, n_c), -1.0)
        s["cl_avail"] = np.zeros((max(1, n_c), max_pods), dtype=np.int64)
        s["tmp"] = np.zeros(max(max_pods, n_g, int(cfg[lay.CI_TARGETS])) + 1, dtype=np.int64)
        s["od_i"] = np.zeros((max(1, n_c), max_pods, lay.O_N), dtype=np.int64)
        s["od_i"][:, :, lay.O_UNEJ_TICK] = -1
        # each pod's re-admission time, then the cluster's last update and held update's time
        od_f = np.full((max(1, n_c), max_pods + lay.OD_LAST), -1.0)
        od_f[:, -lay.OD_LAST] = -np.inf  # never updated
        od_f[:, -lay.OD_MERGE] = np.inf  # none held
        s["od_f"] = od_f
        bk = np.zeros((n_g * n_specs, 2))
        if int(cfg[lay.CI_BUCKET_SPECS]):
            for g in range(n_g):
                bk[g * n_specs : (g + 1) * n_specs, 0] = a["bk_f"][:, lay.BF_MAX_TOKENS]
        s["bk_s"] = bk  # every bucket starts full at t = 0 (TokenBucket(spec, now=0.0))
        s["hpa_f"] = np.zeros((n_v, 4))  # busy, capacity, sync end, node room (see hpa_tick)
        s["hpa_log"] = np.zeros((64, 4))
        # round-robin index per (cluster, gateway worker); -1: the worker has not picked yet
        s["rr_w"] = np.full((max(1, n_c), max(1, n_g * n_w)), -1, dtype=np.int64)
        # consistent-hash rings per cluster (built by build_rings when the kernel asks): point
        # hashes, their pods, points, and the pod-set generation each was built for
        s["rg_h"] = np.zeros((max(1, n_c), 1), dtype=np.uint64)
        s["rg_o"] = np.zeros((max(1, n_c), 1), dtype=np.int64)
        s["rg_n"] = np.zeros(max(1, n_c), dtype=np.int64)
        s["rg_gen"] = np.full(max(1, n_c), -1, dtype=np.int64)
        # HTTP/1.1 pools: a block of n_g × n_w × max_pods rows per pooled cluster
        pooled = int(np.count_nonzero(a["cl_i"][:, lay.KI_POOLED]))
        pl = np.zeros((max(1, pooled * n_g * n_w * max_pods), lay.PL_ROW), dtype=np.int64)
        pl[:, lay.PL_HEAD :] = -1
        s["pl_i"] = pl
        self.plan = plan
        self.seed = seed
        self._addresses: dict[tuple[int, int], str] = {}
        self._address_rngs: dict[int, np.random.Generator] = {}
        s["hist"] = np.zeros((n_keys * 4, counts_len), dtype=np.int64)
        s["row_sum"] = np.zeros(n_keys * 4)
        s["row_max"] = np.zeros(n_keys * 4)
        s["key_st"] = np.zeros((n_keys, lay.KS_FLAGS + lay.N_FLAGS), dtype=np.int64)
        s["se_i"] = np.zeros((n_r, 4, n), dtype=np.int64)
        s["se_busy"] = np.zeros((n_r, n))
        s["vs"] = np.zeros((n_r, n_l, n), dtype=np.int64)
        s["code_of"] = np.full(n_r * n_s * (1 << lay.N_FLAGS), -1, dtype=np.int64)
        s["codes"] = np.zeros((16, n), dtype=np.int64)
        s["code_key"] = np.zeros((16, 3), dtype=np.int64)
        s["live"] = np.zeros((n_r, lay.RING, counts_len), dtype=np.int64)
        s["live_k"] = np.full((n_r, lay.RING), -1, dtype=np.int64)
        s["live_rng"] = np.zeros((n_r, lay.RING, 2), dtype=np.int64)
        s["done_idx"] = np.full((n_r, len(PERCENTILES), n), -1, dtype=np.int64)
        s["ut_f"] = np.zeros((n_n + max_pods, 2, n))
        s["ut_n"] = np.zeros((n_n + max_pods, n), dtype=np.int64)
        s["up"] = np.zeros((max(1, n_c), max_pods, n_s, len(lay.TRY_FLAGS)), dtype=np.int64)
        s["ig"] = np.zeros((n_n + 1, 2), dtype=np.int64)
        s["ok_hist"] = np.zeros(counts_len, dtype=np.int64)
        # requests by upstream tries, and the successful ones' latency by tries (meta tries)
        s["tries"] = np.zeros(MAX_TRIES + 1, dtype=np.int64)
        s["ok_tries"] = np.zeros((MAX_TRIES + 1, counts_len), dtype=np.int64)
        # attempts per (cluster, pod, interval) (meta attempt_series); a table too large to
        # allocate (shape (1, 0, 1)) is not kept, and the meta has no series
        cells = max(1, n_c) * max_pods * n
        shape = (max(1, n_c), max_pods, n) if cells <= ATTEMPT_CELLS else (1, 0, 1)
        s["att"] = np.zeros(shape, dtype=np.int64)
        # the tiers' accounts in [warm-up, end] per gateway pod (its workers) and per pod (its
        # server, then its sidecar): lay.AC_BUSY's columns; the kernel adds each service, queue
        # and change of servers as it happens, the servers there from the start are counted here
        s["ac_f"] = ac_f = np.zeros((n_g + max_pods, lay.AC_ROW))
        # traced requests: as many as TRACE_LIMIT spans hold (SPANS_PER_TRACE each)
        traced = TRACE_LIMIT // SPANS_PER_TRACE if a["cfg_f"][lay.CF_TRACE_SAMPLE] > 0 else 0
        s["trc"] = np.zeros((traced, lay.TRC_ROW))
        window = max(0.0, float(a["cfg_f"][lay.CF_DURATION] - a["cfg_f"][lay.CF_WARMUP]))
        for row in range(n_g + plan.initial_pods):
            for blk in (0, lay.AC_SIDECAR):
                ac_f[row, blk + lay.AC_CAP] = _servers_up(plan, s, row, blk) * window
        self.s = s

    def args(self) -> list[Any]:
        return [self.s[name] for name in self.ORDER]

    def grow(self, code: int) -> None:
        """Double the table the kernel asked for (its contents are kept)."""
        s = self.s
        if code in (lay.GROW_REQUESTS, lay.GROW_JOBS):
            requests = code == lay.GROW_REQUESTS
            tables = ("rq_f", "rq_i", "rq_tried") if requests else ("jb_i", "jb_f")
            free = "req_free" if code == lay.GROW_REQUESTS else "job_free"
            top = lay.SI_REQ_FREE if code == lay.GROW_REQUESTS else lay.SI_JOB_FREE
            old = len(s[tables[0]])
            for name in tables:
                s[name] = _doubled(s[name])
            n_free = int(s["st_i"][top])
            stack = np.zeros(2 * old, dtype=np.int64)
            stack[:n_free] = s[free][:n_free]
            stack[n_free : n_free + old] = np.arange(2 * old - 1, old - 1, -1)
            s[free] = stack
            s["st_i"][top] = n_free + old
        elif code == lay.GROW_HEAP:
            for name in ("h_t", "h_i", "d_t", "d_i", "dr_t", "dr_i"):
                s[name] = _doubled(s[name])
        elif code == lay.GROW_CODES:
            s["codes"] = _doubled(s["codes"])
            s["code_key"] = _doubled(s["code_key"])
        elif code == lay.GROW_HPA:
            s["hpa_log"] = _doubled(s["hpa_log"])
        elif code == lay.NEED_RING:
            self.build_rings()
        else:  # pragma: no cover - the kernel returns no other code
            raise RuntimeError(f"unknown kernel code {code}")

    def build_rings(self) -> None:
        """Rebuild the ring of every consistent-hash cluster older than the pod set.

        The SimPy engine's ring (``upstream.ring_layout``, Envoy's RingHashLoadBalancer) over
        every pod of the cluster, in creation order, each at its own random address.
        """
        s, plan = self.s, self.plan
        gen = int(s["st_i"][lay.SI_GEN])
        cl_i, ver_in_cl = plan.arrays["cl_i"], plan.arrays["ver_in_cl"]
        versions = s["pd_i"][: int(s["st_i"][lay.SI_PODS]), lay.P_VERSION]
        for c, name in enumerate(plan.clusters[:-1]):
            if cl_i[c, lay.KI_LB] != lay.LB_RING or s["rg_gen"][c] == gen:
                continue
            members = [p for p, v in enumerate(versions.tolist()) if ver_in_cl[c, v]]
            addresses = [self._address(c, p) for p in members]
            hashes, owners = ring_layout(addresses, plan.table.clusters[name].ring_size)
            n = len(hashes)
            if n > s["rg_h"].shape[1]:
                for key in ("rg_h", "rg_o"):
                    wider = np.zeros((s[key].shape[0], n), dtype=s[key].dtype)
                    wider[:, : s[key].shape[1]] = s[key]
                    s[key] = wider
            s["rg_h"][c, :n] = np.array(hashes, dtype=np.uint64)
            s["rg_o"][c, :n] = [members[o] for o in owners]
            s["rg_n"][c] = n
            s["rg_gen"][c] = gen
        s["st_i"][lay.SI_RING_STALE] = 0

    def _address(self, c: int, p: int) -> str:
        """Pod *p*'s random ``10.x.y.z:8080`` in cluster *c* (``UpstreamCluster._address``).

        Drawn once per pod and cluster from a stream of the cluster's own, so the ring varies
        between seeds as it varies between clusters.
        """
        addr = self._addresses.get((c, p))
        if addr is None:
            rng = self._address_rngs.get(c)
            if rng is None:
                name = f"fast:ring/{self.plan.clusters[c]}"
                key = (*self.seed.spawn_key, *name.encode())
                seq = np.random.SeedSequence(self.seed.entropy, spawn_key=key)
                rng = np.random.default_rng(seq)
                self._address_rngs[c] = rng
            a, b, d = (int(u * 256) for u in rng.random(3))
            addr = self._addresses[(c, p)] = f"10.{a}.{b}.{d}:8080"
        return addr


def _doubled(a: Array) -> Array:
    out = np.zeros((2 * a.shape[0], *a.shape[1:]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


def _streams(seed: np.random.SeedSequence, names: list[str]) -> Array:
    """xoshiro256+ states, one per named stream, derived from the seed and the stream's name.

    Each stream depends only on the run's seed and its own name (as :func:`istiolab.rng.spawn`),
    so adding a component does not change the draws of the others.
    """
    out = np.zeros((len(names), 4), dtype=np.uint64)
    for i, name in enumerate(names):
        key = [int(b) for b in name.encode()]
        child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, *key))
        state = child.generate_state(4, np.uint64)
        if not state.any():  # xoshiro's one forbidden state
            state[0] = 1
        out[i] = state
    return out


def simulate_fast(
    plan: Plan,
    scenario: Scenario,
    seed: SeedLike = None,
    *,
    params: dict[str, Any] | None = None,
    progress: Callable[[float], object] | None = None,
) -> Result:
    """Run a lowered scenario (:func:`prepare`) on the fast engine.

    The arguments after *plan* are :func:`~istiolab.sim.engine.simulate`'s; the same scenario
    and seed give identical results, with or without *progress*.
    """
    run_until = kernel_function()
    seq = as_seed_sequence(seed if seed is not None else scenario.run.seed)
    seed_value: int | None = (
        int(seed) if isinstance(seed, int) else scenario.run.seed if seed is None else None
    )
    state = _State(plan, seq)
    static = [plan.arrays[name] for name in STATIC]
    duration = scenario.run.duration_s
    warmup = scenario.run.warmup_s
    # Stopping and resuming between events changes nothing (all state is in the arrays), so the
    # run stops at the quarters of the measured window to count the requests in flight.
    quarters = [warmup + (duration - warmup) * k / 4 for k in (1, 2, 3)]
    steps = [duration * k / PROGRESS_STEPS for k in range(1, PROGRESS_STEPS + 1)]
    marks = sorted({*quarters, *(steps if progress is not None else [duration])})
    in_flight_marks: list[int] = []
    done_steps = 0
    for until in marks:
        while True:
            code = run_until(until, *static, *state.args())
            if code == lay.DONE:
                break
            state.grow(code)
        if until in quarters:
            in_flight_marks.append(_in_flight(state, -math.inf))
        if progress is not None:
            while done_steps < PROGRESS_STEPS and steps[done_steps] <= until:
                done_steps += 1
                progress(done_steps / PROGRESS_STEPS)
    if seed_value is not None:
        seed_out: int | list[int] = int(seed_value)
    else:
        entropy: Any = seq.entropy  # an int or a sequence of ints (fresh entropy: an int)
        seed_out = [int(e) for e in (entropy if isinstance(entropy, list) else [entropy])]
    result = _result(plan, state, scenario, seed_out, params or {})
    result.findings = (*plan.findings, *_check_routes(scenario, plan))
    result.scaling = _scaling(plan, state)
    rejected = int(state.s["st_i"][lay.SI_REJECTED])
    accounting.finish(
        result,
        started=int(result.meta["totals"]["requests"]) + _in_flight(state, warmup) + rejected,
        rejected=rejected,
        in_flight_marks=[*in_flight_marks, _in_flight(state, -math.inf)],
        tiers=_tiers(plan, state),
        warmup_s=warmup,
        assumed=accounting.assumptions(scenario, plan.table, "fast"),
        events=accounting.event_marks(scenario),
    )
    return result


def _in_flight(state: _State, since: float) -> int:
    """Requests in the request table (in flight) that arrived at or after *since*."""
    s = state.s
    used = np.ones(len(s["rq_f"]), dtype=bool)
    used[s["req_free"][: int(s["st_i"][lay.SI_REQ_FREE])]] = False
    used &= s["rq_i"][:, lay.R_MIRROR] == 0  # a mirrored try is no client's request
    return int(np.count_nonzero(s["rq_f"][used, lay.Q_T0] >= since))


def _servers_up(plan: Plan, s: dict[str, Any], row: int, blk: int) -> int:
    """Servers up now in *row* of ``ac_f``: a gateway pod's workers, a pod's server or sidecar.

    *blk* is 0 for a server, ``AC_SIDECAR`` for a sidecar: what the kernel's capacity_from()
    adds and removes as they change.
    """
    a = plan.arrays
    n_gw = int(a["cfg_i"][lay.CI_GW])
    if row < n_gw:
        if int(s["nd_alive"][a["gw_node"][row]]) != 1 or blk != 0:
            return 0
        return int(a["cfg_i"][lay.CI_WORKERS])
    pd_i, ve_i = s["pd_i"], a["ve_i"]
    p = row - n_gw
    if pd_i[p, lay.P_ALIVE] != 1 or pd_i[p, lay.P_NODE_ALIVE] != 1:
        return 0
    v = int(pd_i[p, lay.P_VERSION])
    if blk == 0:
        return int(ve_i[v, lay.VI_CONCURRENCY])
    return int(ve_i[v, lay.VI_SIDECAR_CONC]) if ve_i[v, lay.VI_SIDECAR] == 1 else 0


def _tiers(plan: Plan, state: _State) -> dict[str, accounting.TierAccount]:
    """Per tier: busy and available server-seconds, arrivals and queue waits after the warm-up.

    The kernel counts them exactly (``ac_f``: every service's time inside the window, every
    request that asked for a server, queued and was handed one, and the servers of every
    gateway pod and pod for the part of the window they were up), as the SimPy engine's
    FifoServer keeps them; the ``utilisation`` frame's per-interval samples are for plots.
    """
    s = state.s
    a = plan.arrays
    ac_f = s["ac_f"]
    n_gw = int(a["cfg_i"][lay.CI_GW])
    tiers: dict[str, accounting.TierAccount] = {}
    pd_i, ve_i = s["pd_i"], a["ve_i"]

    def account(rows: list[int], blk: int = 0) -> accounting.TierAccount:
        width = lay.AC_SIDECAR  # one block of columns: a server's, or a sidecar's
        cols = ac_f[rows, blk : blk + width].sum(axis=0) if rows else np.zeros(width)
        return accounting.TierAccount(
            busy_s=float(cols[lay.AC_BUSY]),
            capacity_s=float(cols[lay.AC_CAP]),
            arrivals=int(cols[lay.AC_ARRIVALS]),
            waited=int(cols[lay.AC_WAITED]),
            wait_s=float(cols[lay.AC_WAIT_S]),
            servers=sum(_servers_up(plan, s, r, blk) for r in rows),  # at the end, as SimPy's
        )

    if n_gw:
        tiers["gateway_workers"] = account(list(range(n_gw)))
        # An LB target is a node (instance targets: the gateway pods on it) or a gateway pod
        # (ip targets); the busiest target is the hot spot (as the SimPy engine's tiers()).
        tg_i, node_gw_at, node_gw = a["tg_i"], a["node_gw_at"], a["node_gw"]
        ip = int(a["cfg_i"][lay.CI_TARGET_IP]) == 1
        best: accounting.TierAccount | None = None
        for t in range(len(tg_i)):
            node = int(tg_i[t, 1])
            rows = (
                [int(tg_i[t, 2])]
                if ip
                else [int(g) for g in node_gw[node_gw_at[node] : node_gw_at[node + 1]]]
            )
            acc = account(rows)
            if acc.capacity_s > 0 and (best is None or _rho(acc) > _rho(best)):
                best = acc
        if best is not None:
            tiers["lb_targets_max"] = best
    by_version: dict[str, list[int]] = {}
    sidecars: set[str] = set()
    for p in range(int(s["st_i"][lay.SI_PODS])):
        v = int(pd_i[p, lay.P_VERSION])
        svc, ver = plan.version_names[v]
        by_version.setdefault(f"{svc}/{ver}", []).append(n_gw + p)
        if ve_i[v, lay.VI_SIDECAR] == 1:
            sidecars.add(f"{svc}/{ver}")
    for name, rows in by_version.items():
        tiers[f"backend/{name}"] = account(rows)
    for name, rows in by_version.items():
        if name in sidecars:
            tiers[f"sidecar/{name}"] = account(rows, lay.AC_SIDECAR)
    return tiers


def _rho(acc: accounting.TierAccount) -> float:
    return acc.busy_s / acc.capacity_s if acc.capacity_s > 0 else -1.0


def _check_routes(scenario: Scenario, plan: Plan) -> list[Finding]:
    """The SimPy engine's ``check_routes`` findings, from the lowered tables."""
    from istiolab.envoy.match import select_virtual_host

    table = plan.table
    out: list[Finding] = []
    for t in scenario.traffic:
        if select_virtual_host(table, t.host) is None:
            out.append(
                finding(
                    "IL401",
                    "Scenario",
                    f"traffic.{t.name}.host",
                    f"host {t.host!r} matches no virtual host of {table.name} "
                    f"(domains: {[d for vh in table.virtual_hosts for d in vh.domains]})",
                    "set traffic.host to a host the rules serve, or add a Gateway for it",
                    severity=None,
                )
            )
    init = plan.arrays["init_pods"][: plan.initial_pods]
    versions = {int(v) for v in init[:, 0]}
    ver_in_cl = plan.arrays["ver_in_cl"]
    for c, name in enumerate(plan.clusters[:-1]):
        if not any(ver_in_cl[c, v] for v in versions):
            pol = table.clusters[name]
            out.append(
                finding(
                    "IL401",
                    "Scenario",
                    "services",
                    f"cluster {name} selects no pod (host {pol.host}, "
                    f"labels {dict(pol.labels)}); its requests get 503 UH",
                    "add the service/version to the scenario's services",
                )
            )
    return out


def _pod_names(plan: Plan, state: _State) -> list[tuple[str, str]]:

    pd = state.s["pd_i"]
    n = int(state.s["st_i"][lay.SI_PODS])
    out = []
    for p in range(n):
        svc, ver = plan.version_names[int(pd[p, lay.P_VERSION])]
        out.append((f"{svc}-{ver}-{int(pd[p, lay.P_ORDINAL])}", plan.azs[int(pd[p, lay.P_AZ])]))
    return out


def _scaling(plan: Plan, state: _State) -> list[tuple[float, str, str, int, int]]:

    log = state.s["hpa_log"][: int(state.s["st_i"][lay.SI_HPA_N])]
    return [
        (float(t), *plan.version_names[int(v)], int(before), int(after))
        for t, v, before, after in log
    ]


def _result(
    plan: Plan, state: _State, scenario: Scenario, seed: int | list[int], params: dict[str, Any]
) -> Result:
    """The kernel's tallies as a :class:`Result` (what ``Metrics.result`` does for SimPy)."""
    s = state.s
    run = scenario.run
    layout = plan.layout
    n = int(plan.arrays["cfg_i"][lay.CI_INTERVALS])

    # keys, histogram rows (only keys with requests after the warm-up, as Metrics keeps them)
    keys: dict[tuple[str, str, str], KeyCounters] = {}
    rows: list[tuple[str, str, str, str]] = []
    picked: list[int] = []
    key_st = s["key_st"]
    for k, (r, c, lab) in enumerate(plan.keys):
        if key_st[k, lay.KS_REQUESTS] == 0:
            continue
        names = (plan.routes[r], plan.clusters[c], plan.labels[lab])
        counters = KeyCounters(*names, len(rows))
        counters.requests = int(key_st[k, lay.KS_REQUESTS])
        counters.ok = int(key_st[k, lay.KS_OK])
        counters.retries = int(key_st[k, lay.KS_RETRIES])
        counters.upstream = int(key_st[k, lay.KS_UPSTREAM])
        for b, flag in enumerate(lay.FLAG_NAMES):
            count = int(key_st[k, lay.KS_FLAGS + b])
            if count:
                counters.flags[flag] = count
        for j, stage in enumerate(lay.STAGE_ROWS):
            if j:
                counters.stage_rows[stage] = len(rows)
            rows.append((*names, stage))
            picked.append(k * 4 + j)
        keys[names] = counters
    counts = s["hist"][picked] if picked else np.zeros((0, layout.counts_len), dtype=np.int64)
    row_sum = s["row_sum"][picked]
    row_max = s["row_max"][picked]

    # per-interval tables
    se_i, se_busy, vs = s["se_i"], s["se_busy"], s["vs"]
    series = IntervalTable(n, {"requests": np.int64, "err4": np.int64, "err5": np.int64,
                               "retries": np.int64, "busy": np.float64})  # fmt: skip
    used = [r for r in range(len(plan.routes)) if se_i[r, 0].any()]
    series.ids = {plan.routes[r]: i for i, r in enumerate(used)}
    series.arrays = {
        "requests": se_i[used, 0].copy(),
        "err4": se_i[used, 1].copy(),
        "err5": se_i[used, 2].copy(),
        "retries": se_i[used, 3].copy(),
        "busy": se_busy[used].copy(),
    }
    versions = IntervalTable(n, {"count": np.int64})
    pairs = [(r, lab) for r in used for lab in range(len(plan.labels)) if vs[r, lab].any()]
    versions.ids = {(plan.routes[r], plan.labels[lab]): i for i, (r, lab) in enumerate(pairs)}
    versions.arrays = {"count": np.array([vs[r, lab] for r, lab in pairs], dtype=np.int64)
                       .reshape(len(pairs), n)}  # fmt: skip
    codes = IntervalTable(n, {"count": np.int64})
    n_codes = int(s["st_i"][lay.SI_CODES])
    code_key = s["code_key"][:n_codes]
    codes.ids = {
        (plan.routes[int(r)], int(status), _flag_string(int(f))): i
        for i, (r, status, f) in enumerate(code_key)
    }
    codes.arrays = {"count": s["codes"][:n_codes].copy()}
    done: dict[int, Array] = {}
    hdr = layout.hdr
    done_idx = s["done_idx"]
    for i, r in enumerate(used):
        values = np.full((len(PERCENTILES), n), np.nan)
        seen = done_idx[r] >= 0
        # each distinct counts index once: a long run repeats a few dozen over its intervals
        distinct, inverse = np.unique(done_idx[r][seen], return_inverse=True)
        table = np.array(
            [float(hdr.get_highest_equivalent_value(hdr.get_value_from_index(int(x))))
             for x in distinct.tolist()],
            dtype=np.float64,
        )  # fmt: skip
        values[seen] = table[inverse.reshape(-1)]
        done[i * n] = values

    # utilisation, upstream attempts, ingress nodes
    util: dict[tuple[str, str, str], Any] = {}
    ut_f, ut_n = s["ut_f"], s["ut_n"]
    for i, (name, az) in enumerate(plan.nodes):
        util[("ingress_node", name, az)] = (ut_f[i, 0], ut_f[i, 1], ut_n[i])
    pods = _pod_names(plan, state)
    n_nodes = len(plan.nodes)
    for p, (name, az) in enumerate(pods):
        util[("pod", name, az)] = (ut_f[n_nodes + p, 0], ut_f[n_nodes + p, 1], ut_n[n_nodes + p])
    upstream: dict[tuple[str, str, int, str], int] = {}
    up = s["up"]
    for c, p, si, fi in zip(*np.nonzero(up), strict=True):
        key = (plan.clusters[int(c)], pods[int(p)][0], plan.statuses[int(si)],
               lay.TRY_FLAGS[int(fi)])  # fmt: skip
        upstream[key] = int(up[c, p, si, fi])
    ingress: dict[tuple[str, str], list[int]] = {}
    ig = s["ig"]
    for i, (name, az) in enumerate([*plan.nodes, ("-", "-")]):
        if ig[i, 0]:
            ingress[(name, az)] = [int(ig[i, 0]), int(ig[i, 1])]

    spans, dropped = _spans(plan, state, scenario)
    reduction = Reduction(
        duration_s=run.duration_s,
        warmup_s=run.warmup_s,
        interval_s=run.metrics_interval_s,
        intervals=n,
        layout=layout,
        keys=keys,
        rows=rows,
        counts=counts,
        row_sum=row_sum,
        row_max=row_max,
        series=series,
        versions=versions,
        codes=codes,
        done=done,
        util=util,
        upstream=upstream,
        ingress=ingress,
        spans=spans,
        ok_counts=s["ok_hist"],
    )
    frames = reduction.frames()
    params_json = normalise_params(params)
    run_id = make_run_id(scenario.name, seed, params_json)
    meta = {
        "run_id": run_id,
        "seed": seed,
        "scenario": scenario.name,
        "params": params_json,
        "config": {
            "duration_s": float(run.duration_s),
            "warmup_s": float(run.warmup_s),
            "interval_s": float(run.metrics_interval_s),
            "intervals": n,
            "hdr_lowest_us": layout.lowest_us,
            "hdr_highest_us": layout.highest_us,
            "significant_figures": layout.significant_figures,
            "trace_sample": float(run.trace_sample),
            "trace_limit": 100_000,
            "success": "status < 500",
        },
        "totals": reduction.totals(),
        "tries": _tries_meta(plan, state),
        "attempt_series": _attempt_series(plan, state, pods),
        "counters": {
            "records": int(s["st_i"][lay.SI_RECORDS]),
            "spans": len(spans),
            "spans_dropped": dropped,
            "interval_latency_late": int(s["st_i"][lay.SI_LATE]),
            "latency_clamped": int(s["st_i"][lay.SI_CLAMPED]),
        },
    }
    return Result(frames, meta)


def _spans(
    plan: Plan, state: _State, scenario: Scenario
) -> tuple[list[tuple[int, str, str, float, float, dict[str, str]]], int]:
    """The traced requests' spans, and how many spans the trace limit dropped.

    The kernel keeps a row per traced request while TRACE_LIMIT spans hold them and counts the
    rest; the spans are the SimPy engine's (Engine._trace, metrics.request_spans).
    """
    s = state.s
    rows = s["trc"][: int(s["st_i"][lay.SI_TRACED])]
    nodes = [name for name, _ in plan.nodes] + ["-"]
    spans: list[tuple[int, str, str, float, float, dict[str, str]]] = []
    for row in rows:
        lb_s, ingress_s = float(row[lay.TRC_LB_S]), float(row[lay.TRC_INGRESS_S])
        t0, t_end = float(row[lay.TRC_T0]), float(row[lay.TRC_END])
        seconds = (lb_s, ingress_s, max(0.0, t_end - t0 - lb_s - ingress_s))
        for span, parent, start, end, tags in request_spans(
            path=plan.class_paths[int(row[lay.TRC_CLASS])],
            status=int(row[lay.TRC_STATUS]),
            flags=_flag_string(int(row[lay.TRC_FLAGS])),
            route=plan.routes[int(row[lay.TRC_ROUTE])],
            cluster=plan.clusters[int(row[lay.TRC_CLUSTER])],
            version=plan.labels[int(row[lay.TRC_LABEL])],
            ingress_node=nodes[int(row[lay.TRC_NODE])],
            lb=scenario.aws.lb,
            t0=t0,
            t_end=t_end,
            stages=STAGES,
            seconds=seconds,
        ):
            spans.append((int(row[lay.TRC_ID]), span, parent or "", start, end, tags))
    return spans, SPANS_PER_TRACE * int(s["st_i"][lay.SI_TRACE_DROPPED])


def _tries_meta(plan: Plan, state: _State) -> dict[str, Any]:
    """Requests after the warm-up by upstream tries, and the successful ones' latency by tries.

    The SimPy engine's ``meta["tries"]`` (``Metrics._tries_meta``).
    """
    tries, ok_tries = state.s["tries"], state.s["ok_tries"]
    layout = plan.layout
    success: dict[str, dict[str, float]] = {}
    for k in np.flatnonzero(ok_tries.sum(axis=1)).tolist():
        hist = ok_tries[k]
        p50, p90, p99 = (v / 1e3 for v in layout.percentiles_us(hist, (50.0, 90.0, 99.0)))
        success[str(k)] = {"n": int(hist.sum()), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99}
    requests = {str(k): int(tries[k]) for k in np.flatnonzero(tries).tolist()}
    return {"requests": requests, "success": success}


def _attempt_series(plan: Plan, state: _State, pods: list[tuple[str, str]]) -> dict[str, list[int]]:
    """Upstream attempts per cluster/host and interval, warm-up included.

    The SimPy engine's ``meta["attempt_series"]``: hosts by their first attempt, as many as
    HOST_SERIES_CELLS holds (within one interval the SimPy engine orders by the first try,
    this one by cluster and pod).
    """
    att = state.s["att"]
    if att.shape[1] == 0:
        return {}
    n = att.shape[2]
    firsts = []
    for c, p in zip(*np.nonzero(att.any(axis=2)), strict=True):
        first = int(np.flatnonzero(att[c, p])[0])
        firsts.append((first, int(c), int(p)))
    kept = sorted(firsts)[: HOST_SERIES_CELLS // n]
    series = {(plan.clusters[c], pods[p][0]): att[c, p] for _, c, p in kept}
    return {f"{cl}|{host}": values.tolist() for (cl, host), values in sorted(series.items())}


def _flag_string(mask: int) -> str:
    """The joined flags of a flag bit set, in the order Envoy's stages add them."""
    return ",".join(f for b, f in enumerate(lay.FLAG_NAMES) if mask & (1 << b))
