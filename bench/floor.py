"""The seed pipeline as the smallest compiled event loop that simulates it: a floor for (b).

bench (b) compares the fast engine with bare SimPy. This is the same comparison's other end:
how fast *any* compiled event loop of the seed pipeline runs on this machine, with the fast
engine's own random number generator (xoshiro256+, the ziggurat normal and exponential), event
heap and HdrHistogram index, so that the two differ only in what the loop does and how it is
laid out.

It runs the lowered seed scenario's costs (:func:`floor_params` reads them from the same plan the
fast engine runs, and refuses a scenario of another shape): Poisson arrivals; each request from
one of the AZs over a keep-alive connection to one of the NLB's targets (the LB's latency and
kube-proxy's, plus the AZ hop when the target is in the other AZ); the target node's gateway
pod (``externalTrafficPolicy: Local``), one of its workers picked at random, a FIFO per worker
for the gateway's CPU time, then its latency; a round robin over the pods (the network hop when
the pod is in another AZ than the gateway); the pod's sidecar (a FIFO of its concurrency), its
server (a FIFO of the version's concurrency, lognormal service times), the sidecar's latency on
the way back. Per request it counts what every engine must: the interval's requests and time in
system, the latency in its interval's histogram, and four stage histograms (count, sum, max).
Six events a request through the engine's event heap (its layout and its ``_pop``; the push
written out in the loop, as the kernel writes it), flat arrays, one function, the rest written
out: the FIFOs' appends and pops as inlined helpers made it 5 % slower.

What it leaves out, each of which the fast engine does for every request of the same run: the
route's timeout (a deadline per try), the HTTP/1.1 connection pools, the checks that its tables
have room (they grow), the per-route, per-code, per-host and per-tier counters and utilisation,
the reduction of each interval's histogram to percentiles, the requests in flight, the frames.
So its rate is an upper bound for a loop that answers all the engine's questions, not a target:
it tells how far the fast engine is from the floor of the technique, and bench checks that its
mean latency agrees with the engine's, so that it is the same pipeline.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from istiolab.sim.fast import layout as lay

# The engine's generator, heap and histogram index (private to the kernel; the floor must draw,
# order and count exactly as it does, or the comparison would measure different parts).
from istiolab.sim.fast.kernel import _exponential, _hdr_index, _normal, _pop, _uniform
from istiolab.sim.scenario import Scenario

K_ARRIVAL, K_GATEWAY, K_CPU_DONE, K_AT_POD, K_SIDECAR_DONE, K_SERVICE_DONE = range(6)
K_BITS = 3
STREAMS = 8  # xoshiro256+ streams: AZ, target, worker, gaps, and one service stream per pod

# P: the lowered costs, in seconds, as floats (see floor_params)
P_RATE, P_LB, P_KP, P_AZ, P_CPU, P_LAT, P_NET, P_SC_CPU, P_SC_LAT, P_MU, P_SIGMA = range(11)
# I: the shape and the HDR layout, as ints
I_WORKERS, I_SC_CONC, I_CONC, I_HIGHEST, I_UNIT, I_HALF_MAG, I_HALF_COUNT, I_MASK, I_BINS = range(9)


class FloorShapeError(ValueError):
    """The scenario is not shaped as the floor's loop (two AZs, one node and pod per AZ...)."""


def floor_params(scenario: Scenario) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The costs and shape of *scenario* as the fast engine lowers them, for :func:`floor_run`.

    Raises:
        FloorShapeError: When the scenario is not shaped as the seed pipeline (the floor's loop
            is written for that shape only).
    """
    from istiolab.sim.engine import build_table
    from istiolab.sim.fast.lower import lower

    table, notes = build_table(scenario)
    a = lower(scenario, table, list(notes)).arrays
    cfg_i, dists, ve_i = a["cfg_i"], a["dists"], a["ve_i"]
    shape = {
        "gateways": int(cfg_i[lay.CI_GW]),
        "nodes": int(cfg_i[lay.CI_NODES]),
        "azs": int(cfg_i[lay.CI_AZS]),
        "pods": int(cfg_i[lay.CI_MAX_PODS]),
        "versions": int(cfg_i[lay.CI_VERSIONS]),
        "traffic": int(cfg_i[lay.CI_TRAFFIC]),
        "local": int(cfg_i[lay.CI_LOCAL]),
        "cross_zone": int(cfg_i[lay.CI_CROSS_ZONE]),
        "alb": int(cfg_i[lay.CI_LB_ALB]),
        "sidecar": int(ve_i[0, lay.VI_SIDECAR]),
    }
    want = {"gateways": 2, "nodes": 2, "azs": 2, "pods": 2, "versions": 1, "traffic": 1}
    want |= {"local": 1, "cross_zone": 0, "alb": 0, "sidecar": 1}
    if shape != want:
        raise FloorShapeError(f"the floor's loop is the seed pipeline's shape {want}, not {shape}")
    kinds = {
        name: int(dists[int(cfg_i[idx]), 0])
        for name, idx in (
            ("lb", lay.CI_D_LB),
            ("kube-proxy", lay.CI_D_KP),
            ("az", lay.CI_D_AZ),
            ("cpu", lay.CI_D_CPU),
            ("latency", lay.CI_D_LAT),
            ("net", lay.CI_D_NET),
            ("sidecar cpu", lay.CI_D_SC_CPU),
            ("sidecar latency", lay.CI_D_SC_LAT),
        )
    }
    service = dists[int(ve_i[0, lay.VI_DIST])]
    arrival = scenario.traffic[0].arrival
    if set(kinds.values()) != {lay.D_DET} or int(service[0]) != lay.D_LOGNORMAL:
        raise FloorShapeError("the floor's loop has fixed costs and a lognormal service time")
    if arrival.kind != "poisson" or arrival.rate_rps is None:
        raise FloorShapeError("the floor's loop has Poisson arrivals")

    def cost(idx: int) -> float:
        row = dists[int(cfg_i[idx])]
        return float(row[1] + row[3])

    params = np.array(
        [
            float(arrival.rate_rps),
            cost(lay.CI_D_LB),
            cost(lay.CI_D_KP),
            cost(lay.CI_D_AZ),
            cost(lay.CI_D_CPU),
            cost(lay.CI_D_LAT),
            cost(lay.CI_D_NET),
            cost(lay.CI_D_SC_CPU),
            cost(lay.CI_D_SC_LAT),
            float(service[1]),
            float(service[2]),
        ]
    )
    ints = np.array(
        [
            int(cfg_i[lay.CI_WORKERS]),
            int(ve_i[0, lay.VI_SIDECAR_CONC]),
            int(ve_i[0, lay.VI_CONCURRENCY]),
            int(cfg_i[lay.CI_HDR_HIGHEST]),
            int(cfg_i[lay.CI_HDR_UNIT]),
            int(cfg_i[lay.CI_HDR_HALFMAG]),
            int(cfg_i[lay.CI_HDR_HALFCOUNT]),
            int(cfg_i[lay.CI_HDR_MASK]),
            int(cfg_i[lay.CI_COUNTS_LEN]),
        ],
        dtype=np.int64,
    )
    return params, ints


@njit(cache=True)
def floor_run(
    n_requests: int,
    duration_s: float,
    rs: npt.NDArray[np.uint64],
    pf: npt.NDArray[np.float64],
    pi: npt.NDArray[np.int64],
) -> tuple[int, npt.NDArray[np.float64], int]:
    """Simulate *n_requests* arrivals.

    Returns:
        The requests recorded, the mean of each stage histogram in seconds (the latency, the
        LB, the ingress, the route) and the events run.
    """
    n_workers = pi[I_WORKERS]
    bins = pi[I_BINS]
    cap = 1 << 12  # requests in flight (the seed has about three); more stops the run
    # the event heap: time, sequence, key (kind + request << K_BITS); a request has at most
    # one event in it, and the arrivals one
    h_t = np.empty(cap + 1)
    h_i = np.empty(3 * (cap + 1), np.int64)  # the kernel's layout: sequence, key, aux
    size = np.zeros(1, np.int64)  # the heap's size, where the kernel's _pop reads it
    # requests: t0, lb_s, ingress_s, tail, gateway start | gateway, worker row, pod, next
    rq_f = np.zeros((cap, 5))
    rq_i = np.zeros((cap, 4), np.int64)
    free = np.arange(cap)[::-1].copy()
    n_free = cap
    # FIFO servers: gateway workers, then sidecars, then servers; busy count, head, tail
    n_rows = 2 * n_workers + 4
    busy = np.zeros(n_rows, np.int64)
    head = -np.ones(n_rows, np.int64)
    tail = -np.ones(n_rows, np.int64)
    sc_conc = pi[I_SC_CONC]
    conc = pi[I_CONC]
    mu = pf[P_MU]
    sigma = pf[P_SIGMA]
    rr = 0
    n_int = int(duration_s) + 2
    counts = np.zeros(n_int, np.int64)
    in_system = np.zeros(n_int)
    live = np.zeros((8, bins), np.int64)
    hist = np.zeros((4, bins), np.int64)
    h_sum = np.zeros(4)
    h_max = np.zeros(4)
    highest, unit, half_mag = pi[I_HIGHEST], pi[I_UNIT], pi[I_HALF_MAG]
    half_count, mask = pi[I_HALF_COUNT], pi[I_MASK]
    recorded = 0
    started = 0
    h_t[0] = 0.0
    h_i[0] = 0
    h_i[1] = K_ARRIVAL
    h_i[2] = 0
    size[0] = 1
    seq = 1
    events = 0
    while size[0] > 0:
        t = h_t[0]
        key = h_i[1]
        _pop(h_t, h_i, size, 0)
        events += 1
        kind = key & ((1 << K_BITS) - 1)
        q = key >> K_BITS
        # at most two new events: this request's next step, and the next one a server takes
        t1 = -1.0
        k1 = 0
        t2 = -1.0
        k2 = 0
        if kind == K_ARRIVAL:
            if started < n_requests:
                if n_free == 0:
                    raise RuntimeError("over 4096 requests in flight: the floor is for light load")
                started += 1
                n_free -= 1
                q = free[n_free]
                rq_f[q, 0] = t
                az = np.int64(_uniform(rs, 0) * 2)
                g = np.int64(_uniform(rs, 1) * 2)  # the connection's target, and its gateway
                lat = pf[P_LB] + pf[P_KP] + (pf[P_AZ] if g != az else 0.0)
                rq_f[q, 1] = lat
                rq_i[q, 0] = g
                rq_i[q, 1] = g * n_workers + np.int64(_uniform(rs, 2) * n_workers)
                t1 = t + lat
                k1 = K_GATEWAY + (q << K_BITS)
                t2 = t + _exponential(rs, 3) / pf[P_RATE]
                k2 = K_ARRIVAL
        elif kind == K_GATEWAY:
            row = rq_i[q, 1]
            rq_f[q, 4] = t
            if busy[row] == 0:
                busy[row] = 1
                t1 = t + pf[P_CPU]
                k1 = K_CPU_DONE + (q << K_BITS)
            else:
                rq_i[q, 3] = -1
                if tail[row] >= 0:
                    rq_i[tail[row], 3] = q
                else:
                    head[row] = q
                tail[row] = q
        elif kind == K_AT_POD:
            row = 2 * n_workers + rq_i[q, 2]
            if busy[row] < sc_conc:
                busy[row] += 1
                t1 = t + pf[P_SC_CPU]
                k1 = K_SIDECAR_DONE + (q << K_BITS)
            else:
                rq_i[q, 3] = -1
                if tail[row] >= 0:
                    rq_i[tail[row], 3] = q
                else:
                    head[row] = q
                tail[row] = q
        elif kind == K_SIDECAR_DONE:  # the sidecar takes its next job, this one the server
            p = rq_i[q, 2]
            row = 2 * n_workers + p
            nxt = head[row]
            if nxt >= 0:
                head[row] = rq_i[nxt, 3]
                if head[row] < 0:
                    tail[row] = -1
                t2 = t + pf[P_SC_CPU]
                k2 = K_SIDECAR_DONE + (nxt << K_BITS)
            else:
                busy[row] -= 1
            row += 2
            if busy[row] < conc:
                busy[row] += 1
                t1 = t + math.exp(mu + sigma * _normal(rs, 4 + p))
                k1 = K_SERVICE_DONE + (q << K_BITS)
            else:
                rq_i[q, 3] = -1
                if tail[row] >= 0:
                    rq_i[tail[row], 3] = q
                else:
                    head[row] = q
                tail[row] = q
        elif kind == K_CPU_DONE:
            row = rq_i[q, 1]
            nxt = head[row]
            if nxt >= 0:
                head[row] = rq_i[nxt, 3]
                if head[row] < 0:
                    tail[row] = -1
                t2 = t + pf[P_CPU]
                k2 = K_CPU_DONE + (nxt << K_BITS)
            else:
                busy[row] -= 1
            rq_f[q, 2] = t - rq_f[q, 4] + pf[P_LAT]
            rq_f[q, 3] = pf[P_LAT]
            p = rr & 1
            rr += 1
            rq_i[q, 2] = p
            t1 = t + (pf[P_NET] if p != rq_i[q, 0] else 0.0)
            k1 = K_AT_POD + (q << K_BITS)
        else:  # K_SERVICE_DONE: the server takes its next job; this one's answer is counted
            row = 2 * n_workers + 2 + rq_i[q, 2]
            nxt = head[row]
            if nxt >= 0:
                head[row] = rq_i[nxt, 3]
                if head[row] < 0:
                    tail[row] = -1
                t2 = t + math.exp(mu + sigma * _normal(rs, 4 + rq_i[nxt, 2]))
                k2 = K_SERVICE_DONE + (nxt << K_BITS)
            else:
                busy[row] -= 1
            t0 = rq_f[q, 0]
            t_end = t + rq_f[q, 3] + pf[P_SC_LAT]
            latency = t_end - t0
            lb_s = rq_f[q, 1]
            ingress_s = rq_f[q, 2]
            k = int(t_end)
            if k > n_int - 1:
                k = n_int - 1
            counts[k] += 1
            in_system[k] += latency
            for j, x in ((0, latency), (1, lb_s), (2, ingress_s), (3, latency - lb_s - ingress_s)):
                idx = _hdr_index(x, highest, unit, half_mag, half_count, mask)
                if j == 0:
                    live[k & 7, idx] += 1
                hist[j, idx] += 1
                h_sum[j] += x
                if x > h_max[j]:
                    h_max[j] = x
            recorded += 1
            free[n_free] = q
            n_free += 1
        for which in range(2):  # push, sifting up
            et = t1 if which == 0 else t2
            if et < 0.0:
                continue
            ek = k1 if which == 0 else k2
            es = seq
            seq += 1
            i = size[0]
            while i > 0:  # the kernel's push, written out as it writes it
                up = (i - 1) >> 1
                if h_t[up] < et or (h_t[up] == et and h_i[3 * up] < es):
                    break
                h_t[i] = h_t[up]
                h_i[3 * i] = h_i[3 * up]
                h_i[3 * i + 1] = h_i[3 * up + 1]
                h_i[3 * i + 2] = h_i[3 * up + 2]
                i = up
            h_t[i] = et
            h_i[3 * i] = es
            h_i[3 * i + 1] = ek
            h_i[3 * i + 2] = 0  # the kernel's aux; nothing here needs one
            size[0] += 1
    return recorded, h_sum / max(recorded, 1), events


def floor_rate(scenario: Scenario, n_requests: int, seed: int = 1) -> dict[str, Any]:
    """Time :func:`floor_run` on *scenario*'s costs: requests per wall-second, mean latencies.

    The first call in a process compiles the loop (seconds; numba caches it), untimed.
    """
    pf, pi = floor_params(scenario)
    streams = np.random.default_rng(seed).integers(1, 2**62, size=(STREAMS, lay.RS_ROW))
    rs = streams.astype(np.uint64)
    floor_run(1000, 10.0, rs.copy(), pf, pi)
    start = time.perf_counter()
    recorded, means, events = floor_run(n_requests, n_requests / pf[P_RATE], rs.copy(), pf, pi)
    wall = time.perf_counter() - start
    return {
        "requests_per_s": recorded / wall,
        "mean_ms": float(means[0]) * 1e3,
        "stage_mean_ms": {
            stage: float(m) * 1e3
            for stage, m in zip(("lb", "ingress", "route"), means[1:], strict=True)
        },
        "events_per_request": events / max(recorded, 1),
    }
