"""``python -m bench``: simulated requests per wall-second, against bare SimPy, in one run.

(a) the same M/M/c (λ=800/s, μ=100/s, c=10) in bare SimPy and in istiolab with every cost but
the backend set to zero; (b) the full seed pipeline (NLB → ingress pool → sidecar → httpbin);
(c) peak memory of istiolab at 10⁵ and 10⁶ requests (tracemalloc, trace sampling off).
Results are printed as a table and written to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import simpy

from istiolab.sim import theory
from istiolab.sim.engine import simulate
from istiolab.sim.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
LAM, MU, C = 800.0, 100.0, 10


def bare_simpy_mmc(n: int, seed: int = 1) -> tuple[float, float]:
    """Bare SimPy M/M/c: returns (customers per wall-second, mean time in system)."""
    rnd = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=C)
    total = [0.0, 0]

    def customer() -> Any:
        t0 = env.now
        with server.request() as req:
            yield req
            yield env.timeout(rnd.expovariate(MU))
        total[0] += env.now - t0
        total[1] += 1

    def source() -> Any:
        for _ in range(n):
            yield env.timeout(rnd.expovariate(LAM))
            env.process(customer())

    env.process(source())
    t = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t
    return total[1] / wall, total[0] / total[1]


def mmc_scenario(duration_s: float) -> Any:
    return scenario_from_dict(
        {
            "name": "bench-mmc",
            "run": {"duration_s": duration_s, "warmup_s": min(5.0, duration_s / 10)},
            "traffic": [{"name": "c", "arrival": {"kind": "poisson", "rate_rps": LAM}}],
            "aws": {
                "lb_latency": "zero",
                "kube_proxy_latency": "zero",
                "cross_node_latency": "zero",
                "cross_az_latency": "zero",
            },
            "ingress": {"azs": ["a"], "nodes_per_az": 1, "cpu_per_request": "zero", "proxy_latency": "zero"},
            "services": [
                {
                    "name": "svc",
                    "versions": [{"name": "v1", "replicas": 1, "concurrency": C, "service_time": f"exp({1000 / MU}ms)"}],
                }
            ],
        }
    )


def timed(scenario: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    result = simulate(scenario, seed=1)
    return time.perf_counter() - t, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000, help="requests per speed run")
    parser.add_argument("--memory", action="store_true", help="also measure memory at 1e5 and 1e6")
    args = parser.parse_args()
    n = args.requests
    rows: list[dict[str, Any]] = []

    bare_rate, bare_w = bare_simpy_mmc(n)
    rows.append({"name": "bare SimPy M/M/10", "req_per_s": bare_rate, "mean_ms": bare_w * 1e3})
    wall, res = timed(mmc_scenario(n / LAM))
    tot = res.totals()
    rows.append({"name": "istiolab M/M/10 (isolated backend)", "req_per_s": tot["requests"] / wall, "mean_ms": tot["mean_ms"]})
    seed = load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml")
    seed = seed.with_overrides({"run.duration_s": n / 400.0})
    wall, res = timed(seed)
    tot = res.totals()
    rows.append({"name": "istiolab full seed pipeline", "req_per_s": tot["requests"] / wall, "mean_ms": tot["mean_ms"]})
    _, w_theory = theory.mmc_wait(LAM, MU, C)
    print(f"M/M/{C} λ={LAM:g}/s μ={MU:g}/s: Erlang C mean time in system {w_theory * 1e3:.3f} ms")
    print(f"{'benchmark':40s} {'req/s':>10s} {'ratio':>7s} {'mean ms':>9s}")
    for r in rows:
        r["ratio_to_bare"] = r["req_per_s"] / bare_rate
        print(f"{r['name']:40s} {r['req_per_s']:10.0f} {r['ratio_to_bare']:7.2f} {r['mean_ms']:9.3f}")
    memory: dict[str, float] = {}
    if args.memory:
        for count in (100_000, 1_000_000):
            sc = mmc_scenario(count / LAM)
            tracemalloc.start()
            simulate(sc, seed=1)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            memory[str(count)] = peak / 2**20
            print(f"peak memory at {count:>9,d} requests: {peak / 2**20:8.1f} MiB")
    out = {"python": platform.python_version(), "requests": n, "rows": rows, "peak_memory_mib": memory, "erlang_c_w_ms": w_theory * 1e3}
    (ROOT / "bench/results.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
