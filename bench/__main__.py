"""``python -m bench``: istiolab against baselines, each comparison in one run.

(a) the same M/M/c (λ=800/s, μ=100/s, c=10) in bare SimPy, in Ciw and in istiolab with every
    cost but the backend set to zero: customers per wall-second, the ratio to bare SimPy, and
    each one's mean time in system W against Erlang C;
(b) the full seed pipeline (NLB → ingress pool → sidecar → httpbin) on the SimPy engine and on
    the fast (numba) engine: requests per wall-second and the ratio to bare SimPy
    (``fast_vs_simpy``: fast requests per wall-second over bare SimPy's customers per
    wall-second, measured in the same run: the best of three fast runs over the best of the
    bare SimPy runs around them), with the kernel the engine runs by default (the one compiled
    ahead of time when it is built) and with numba's just-in-time kernel, interleaved; and the
    same pipeline as the smallest compiled event loop that simulates it (:mod:`bench.floor`,
    the engine's generator and histogram index, none of its other work): the floor of the
    technique on this machine, with the share of it the fast engine reaches;
(c) peak memory (max RSS of a fresh process, and its growth over the imports) at 10⁵ and 10⁶
    requests on the SimPy engine and at 10⁵, 10⁶ and 10⁷ on the fast engine, trace sampling off;
(f) the fast engine's compile cost: a cold compile (a fresh process with an empty numba cache)
    and the first call in a fresh process with a warm cache (imports, cache load, a tiny run),
    for the kernel compiled ahead of time and for numba's just-in-time kernel;
(e) the metrics' share of that: Metrics.record_row for the same number of requests (three
    stages, a few routes and flags), against appending the same rows to a list;
(d) a 16-run sweep of the seed pipeline: serial, a local process pool of 2 and a Dask
    LocalCluster(2) (loopback, no dashboard): wall time, speed-up against the mean of a serial
    run before and after, and whether the frames are identical; plus the speed-up pure-Python
    work gets on 2 processes, the ceiling on this machine at that moment.

(g) the widgets' answer to a change: notebook 02's RuleDesigner re-run on a weight move (its
    scenario, 6 s simulated) and notebook 07's SimulationDashboard run (AZ loss, 20 s simulated),
    median of several, on the fast engine and on SimPy.

Results are printed as one table and written to ``bench/results.json``.

``python -m bench analyzer`` runs the analyzer's scale cases instead (:mod:`bench.analyzer`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import simpy

from istiolab.sim import theory
from istiolab.sim.engine import simulate
from istiolab.sim.fast import aot as aot_kernel
from istiolab.sim.results import Result
from istiolab.sim.scenario import Scenario, load_scenario
from istiolab.sim.scenario import mmc_scenario as isolated_mmc

ROOT = Path(__file__).resolve().parent.parent
LAM, MU, C = 800.0, 100.0, 10
SWEEP_GRID = {"ingress.nodes_per_az": [1, 2], "services.httpbin.versions.v1.concurrency": [4, 8]}
SWEEP_SEEDS = 4  # 2 × 2 grid points × 4 seeds = 16 runs
FAST_ROUNDS = 3  # (b): fast runs, each between two bare SimPy runs


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


def ciw_mmc(n: int, seed: int = 1) -> tuple[float, float]:
    """Ciw M/M/c until *n* customers finished: (customers per wall-second, mean time in system)."""
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=LAM)],
        service_distributions=[ciw.dists.Exponential(rate=MU)],
        number_of_servers=[C],
    )
    ciw.seed(seed)  # Ciw draws from the global random module
    sim = ciw.Simulation(network)
    t = time.perf_counter()
    sim.simulate_until_max_customers(n, method="Finish")
    wall = time.perf_counter() - t
    records = sim.get_all_records()
    w = sum(r.waiting_time + r.service_time for r in records) / len(records)
    return len(records) / wall, w


def mmc_scenario(duration_s: float) -> Any:
    return isolated_mmc(
        LAM,
        1000 / MU,
        C,
        duration_s=duration_s,
        warmup_s=min(5.0, duration_s / 10),
        name="bench-mmc",
    )


def seed_scenario(duration_s: float) -> Scenario:
    sc = load_scenario(ROOT / "sim/scenarios/seed-httpbin.yaml")
    return sc.with_overrides({"run.duration_s": duration_s})


def timed(scenario: Scenario, engine: str = "simpy") -> tuple[float, Result]:
    t = time.perf_counter()
    result = simulate(scenario, seed=1, engine=engine)
    return time.perf_counter() - t, result


def simulated_requests(scenario: Scenario, result: Result) -> float:
    """Requests generated over the whole run, warm-up included (the summary drops warm-up)."""
    tot = result.totals()
    run = scenario.run
    return float(tot["requests"]) * run.duration_s / (run.duration_s - run.warmup_s)


def metrics_cost(n: int) -> dict[str, float]:
    """µs per request of Metrics.record_row (flushes included) and of a bare list append."""
    from istiolab.sim.metrics import Metrics

    stages = ("lb", "ingress", "route")
    rows = [
        (
            i / 400.0,
            i / 400.0 + 0.005 + (i % 97) * 1e-5,
            ("r1", "r2")[i & 1],
            ("c-v1", "c-v2")[i % 3 == 0],
            ("v1", "v2")[i % 3 == 0],
            503 if i % 101 == 0 else 200,
            "UF,URX" if i % 101 == 0 else "",
            2 if i % 101 == 0 else 0,
            3 if i % 101 == 0 else 1,
            ("n1", "n2")[i % 2],
            ("a", "b")[i % 2],
            stages,
            (1e-4, 2e-4, 0.005),
        )
        for i in range(n)
    ]
    m = Metrics(duration_s=n / 400.0 + 1, warmup_s=1.0, interval_s=1.0)
    t = time.perf_counter()
    for row in rows:
        m.record_row(row)
    m.result(seed=1, scenario_name="bench", params={})
    record = time.perf_counter() - t
    sink: list[Any] = []
    t = time.perf_counter()
    for row in rows:
        sink.append(row)
    append = time.perf_counter() - t
    return {"record_us": record / n * 1e6, "append_us": append / n * 1e6}


def _peak_rss_mib() -> float:
    """High-water resident set size of this process.

    Linux: VmHWM from /proc (ru_maxrss would also count the parent's pages at fork time).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def memory_child(count: int, engine: str = "simpy") -> None:
    """Run in a fresh process: peak RSS before and after simulating *count* requests.

    The fast engine's baseline is taken after a tiny warm-up run, so it includes the compiled
    code loaded from numba's cache (a constant), and the growth is what the run itself costs.
    """
    sc = mmc_scenario(count / LAM)
    if engine == "fast":
        simulate(mmc_scenario(1.0), seed=1, engine="fast")
    base = _peak_rss_mib()
    t = time.perf_counter()
    result = simulate(sc, seed=1, engine=engine)
    wall = time.perf_counter() - t
    peak = _peak_rss_mib()
    print(
        json.dumps(
            {
                "baseline_mib": base,
                "peak_mib": peak,
                "requests": result.totals()["requests"],
                "wall_s": wall,
            }
        )
    )


def measure_memory(count: int, engine: str = "simpy") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--memory-child", str(count), "--engine", engine],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


FIRST_CALL = """
import time
t = time.perf_counter()
from istiolab.sim.engine import simulate
from istiolab.sim.fast import aot as aot_kernel
from istiolab.sim.scenario import mmc_scenario
simulate(mmc_scenario(100.0, 10.0, 1, duration_s=2.0, warmup_s=0.0), seed=1, engine="fast")
print(time.perf_counter() - t)
"""


def first_call_s(cache_dir: str | None = None, kernel: str = "") -> float:
    """Seconds from a fresh interpreter to the end of a tiny fast run (imports included).

    With *cache_dir* (an empty folder given to numba as ``NUMBA_CACHE_DIR``) nothing is cached
    and numba's kernel compiles from scratch; without it, numba's cache next to the package is
    used. *kernel* ``jit`` runs numba's kernel even when the ahead-of-time one is built.
    """
    env = dict(os.environ)
    env["ISTIOLAB_FAST_KERNEL"] = "jit" if cache_dir is not None else kernel
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure_compile(cold: bool) -> dict[str, float]:
    """(f): cold compile (optional: minutes) and the first call with a warm cache."""
    import tempfile

    from istiolab.sim.fast import aot

    first_call_s(kernel="jit")  # make sure numba's cache is warm
    out = {
        "first_call_warm_s": min(first_call_s() for _ in range(3)),
        "first_call_warm_jit_s": min(first_call_s(kernel="jit") for _ in range(3)),
        "aot": float(aot.available()),
    }
    if cold:
        with tempfile.TemporaryDirectory() as empty:
            out["first_call_cold_s"] = first_call_s(empty)
    return out


def parallel_ceiling(tasks: int = 4, n: int = 5_000_000) -> float:
    """Speed-up of pure-Python CPU work on 2 warm processes: the most any 2-worker sweep gets
    on this machine right now (shared or hyper-threaded CPUs give less than 2)."""
    import concurrent.futures as cf
    import multiprocessing

    from bench.cpu import burn as _burn  # workers cannot import functions of `python -m` mains

    t = time.perf_counter()
    for _ in range(tasks):
        _burn(n)
    serial = time.perf_counter() - t
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        list(pool.map(_burn, [1, 1]))  # start both workers first
        t = time.perf_counter()
        list(pool.map(_burn, [n] * tasks))
        parallel = time.perf_counter() - t
    return serial / parallel


def measure_sweep(duration_s: float) -> dict[str, Any]:
    import pandas as pd
    from distributed import Client, LocalCluster

    from istiolab.analysis.sweep import sweep

    sc = seed_scenario(duration_s)
    t = time.perf_counter()
    serial = sweep(sc, SWEEP_GRID, SWEEP_SEEDS, "serial", progress=False)
    t_serial = time.perf_counter() - t

    t = time.perf_counter()
    local = sweep(sc, SWEEP_GRID, SWEEP_SEEDS, "local", max_workers=2, progress=False)
    t_local = time.perf_counter() - t

    t0 = time.perf_counter()
    with (
        LocalCluster(  # type: ignore[no-untyped-call]  # distributed ships partial types
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        t1 = time.perf_counter()
        dask = sweep(sc, SWEEP_GRID, SWEEP_SEEDS, client, progress=False)
        t2 = time.perf_counter()
    t3 = time.perf_counter()

    # serial again: other load on a shared machine drifts, so the baseline brackets the rest
    t = time.perf_counter()
    sweep(sc, SWEEP_GRID, SWEEP_SEEDS, "serial", progress=False)
    t_serial = (t_serial + time.perf_counter() - t) / 2

    def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
        try:
            pd.testing.assert_frame_equal(a, b)
        except AssertionError:
            return False
        return True

    return {
        "cpu_ceiling_2": parallel_ceiling(),
        "runs": len(serial),
        "requests_per_run": float(serial["requests"].mean()),
        "serial_s": t_serial,
        "local2_s": t_local,
        "dask2_total_s": t3 - t0,
        "dask2_startup_s": t1 - t0,
        "dask2_compute_s": t2 - t1,
        "speedup_local2": t_serial / t_local,
        "speedup_dask2": t_serial / (t3 - t0),
        "speedup_dask2_compute": t_serial / (t2 - t1),
        "identical_local": same(serial, local),
        "identical_dask": same(serial, dask),
    }


def _table(rows: list[list[str]], header: list[str]) -> str:
    """Text columns: names and notes left-aligned, numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    last = len(header) - 1

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if i in (0, last) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def measure_widgets(rounds: int = 7) -> dict[str, float]:
    """(g): milliseconds a widget takes to answer a change, median of *rounds*, per engine."""
    import statistics

    from istiolab import lab
    from istiolab.widgets import RuleDesigner, SimulationDashboard

    canary = lab.scenario("canary-90-10").with_overrides(
        {"run.duration_s": 6.0, "run.warmup_s": 1.0}  # notebook 02's designer
    )
    az_loss = lab.scenario("az-loss").with_overrides({"run.duration_s": 20.0})  # notebook 07
    out: dict[str, float] = {}
    for engine in ("fast", "simpy"):
        designer = RuleDesigner(lab.rules_of(canary), scenario=canary, engine=engine)
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            designer.scenario = canary
            designer.refresh()
            times.append(time.perf_counter() - t)
        out[f"designer_{engine}_ms"] = 1000 * statistics.median(times)
        dashboard = SimulationDashboard(az_loss, engine=engine)
        times = []
        for _ in range(max(3, rounds // 2)):
            t = time.perf_counter()
            dashboard.run()
            times.append(time.perf_counter() - t)
        out[f"dashboard_{engine}_ms"] = 1000 * statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=200_000, help="customers per speed run (a), (b)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip (c)")
    parser.add_argument(
        "--no-cold-compile", action="store_true", help="skip (f)'s cold compile (minutes)"
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip (d)")
    parser.add_argument("--no-widgets", action="store_true", help="skip (g)")
    parser.add_argument(
        "--sweep-duration", type=float, default=60.0, help="simulated seconds per sweep run"
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="simpy", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.engine)
        return
    n = args.requests
    load_start = os.getloadavg()[0]  # other work on the machine skews every rate below
    _, w_theory = theory.mmc_wait(LAM, MU, C)
    w_ms = w_theory * 1e3

    # (a) the same M/M/c three ways
    mmc: list[dict[str, Any]] = []
    rate, w = bare_simpy_mmc(n)
    mmc.append({"name": "bare SimPy", "customers_per_s": rate, "mean_ms": w * 1e3})
    rate, w = ciw_mmc(n)
    mmc.append({"name": "Ciw", "customers_per_s": rate, "mean_ms": w * 1e3})
    sc = mmc_scenario(n / LAM)
    wall, res = timed(sc)
    mmc.append(
        {
            "name": "istiolab (isolated stage)",
            "customers_per_s": simulated_requests(sc, res) / wall,
            "mean_ms": res.totals()["mean_ms"],
        }
    )
    bare_rate = mmc[0]["customers_per_s"]
    for r in mmc:
        r["ratio_to_bare"] = r["customers_per_s"] / bare_rate
        r["erlang_c_ms"] = w_ms
        r["error_pct"] = 100 * (r["mean_ms"] - w_ms) / w_ms

    # (b) the full seed pipeline, on both engines
    sc = seed_scenario(n / 400.0)
    wall, res = timed(sc)
    pipeline = {
        "name": "istiolab full seed pipeline",
        "requests_per_s": simulated_requests(sc, res) / wall,
        "mean_ms": res.totals()["mean_ms"],
    }
    pipeline["ratio_to_bare"] = pipeline["requests_per_s"] / bare_rate
    # The fast engine is timed after one small run, so compiling (or loading the compiled
    # kernel from numba's cache) is not counted here; (f) measures it. It runs 10x the requests,
    # so its fixed costs (rules, lowering, frames) weigh as little as in the SimPy run.
    # fast_vs_simpy pairs it with bare SimPy timed right before and after each fast run, and
    # takes the best of FAST_ROUNDS of each: on a machine others load, a ratio of rates
    # measured minutes apart says more about the load than about the engines.
    # numba only here: the memory children and first-call probes measure without it
    from bench.floor import floor_rate

    timed(seed_scenario(5.0), engine="fast")
    fast_sc = seed_scenario(10 * n / 400.0)
    fast_rates: list[float] = []
    jit_rates: list[float] = []
    floors: list[dict[str, Any]] = []
    bare_rates = [bare_simpy_mmc(n)[0]]
    for _ in range(FAST_ROUNDS):
        wall, res = timed(fast_sc, engine="fast")
        fast_rates.append(simulated_requests(fast_sc, res) / wall)
        bare_rates.append(bare_simpy_mmc(n)[0])
        with mock.patch.dict(os.environ, {aot_kernel.KERNEL_ENV: "jit"}):  # restored after
            wall, jit_res = timed(fast_sc, engine="fast")
        jit_rates.append(simulated_requests(fast_sc, jit_res) / wall)
        # the same pipeline as the smallest compiled loop (bench/floor.py), as many requests
        floors.append(floor_rate(fast_sc, round(simulated_requests(fast_sc, res))))
        bare_rates.append(bare_simpy_mmc(n)[0])
    fast = {
        "name": "istiolab full seed pipeline, fast engine",
        "requests_per_s": max(fast_rates),
        "mean_ms": res.totals()["mean_ms"],
        "bare_simpy_customers_per_s": max(bare_rates),
        "rounds": FAST_ROUNDS,
    }
    fast["ratio_to_bare"] = fast["requests_per_s"] / fast["bare_simpy_customers_per_s"]
    fast["jit_requests_per_s"] = max(jit_rates)
    fast["jit_ratio_to_bare"] = fast["jit_requests_per_s"] / fast["bare_simpy_customers_per_s"]
    fast["kernel"] = "aot" if aot_kernel.available() else "jit"
    fast["ratio_to_simpy_engine"] = fast["requests_per_s"] / pipeline["requests_per_s"]
    floor = max(floors, key=lambda f: float(f["requests_per_s"]))
    floor["name"] = "the seed pipeline as the smallest compiled loop (bench/floor.py)"
    floor["ratio_to_bare"] = floor["requests_per_s"] / fast["bare_simpy_customers_per_s"]
    floor["fast_share"] = fast["requests_per_s"] / floor["requests_per_s"]
    # the floor must be the same pipeline: its mean latency within 1 % of the engine's
    floor["same_mean"] = abs(floor["mean_ms"] / fast["mean_ms"] - 1) < 0.01
    metrics = metrics_cost(n)
    metrics["pipeline_us"] = 1e6 / pipeline["requests_per_s"]

    # (c) memory
    memory: dict[str, dict[str, float]] = {}
    memory_fast: dict[str, dict[str, float]] = {}
    if not args.no_memory:
        for count in (100_000, 1_000_000):
            memory[str(count)] = measure_memory(count)
        for count in (100_000, 1_000_000, 10_000_000):
            memory_fast[str(count)] = measure_memory(count, "fast")

    # (f) compile and first call
    compile_times = measure_compile(cold=not args.no_cold_compile)

    # (d) sweep
    sweep_res: dict[str, Any] = {}
    if not args.no_sweep:
        sweep_res = measure_sweep(args.sweep_duration)

    # (g) widgets
    widgets: dict[str, float] = {}
    if not args.no_widgets:
        widgets = measure_widgets()

    rows: list[list[str]] = []
    for r in mmc:
        rows.append(
            [
                f"(a) M/M/{C} {r['name']}",
                f"{r['customers_per_s']:,.0f} cust/s",
                f"{r['ratio_to_bare']:.2f}",
                f"W {r['mean_ms']:.3f} ms vs Erlang C {w_ms:.3f} ({r['error_pct']:+.2f} %)",
            ]
        )
    rows.append(
        [
            "(b) full seed pipeline",
            f"{pipeline['requests_per_s']:,.0f} req/s",
            f"{pipeline['ratio_to_bare']:.2f}",
            f"mean {pipeline['mean_ms']:.3f} ms",
        ]
    )
    rows.append(
        [
            "(b) full seed pipeline, fast engine",
            f"{fast['requests_per_s']:,.0f} req/s",
            f"{fast['ratio_to_bare']:.2f}",
            f"mean {fast['mean_ms']:.3f} ms; "
            f"{fast['ratio_to_simpy_engine']:.1f}x the SimPy engine's rate; "
            f"kernel {fast['kernel']}",
        ]
    )
    rows.append(
        [
            "(b) full seed pipeline, fast, numba JIT",
            f"{fast['jit_requests_per_s']:,.0f} req/s",
            f"{fast['jit_ratio_to_bare']:.2f}",
            "the just-in-time kernel, in the same rounds",
        ]
    )
    rows.append(
        [
            "(b) seed pipeline, smallest compiled loop",
            f"{floor['requests_per_s']:,.0f} req/s",
            f"{floor['ratio_to_bare']:.2f}",
            f"the floor (bench/floor.py): the fast engine runs at {floor['fast_share']:.2f} of "
            f"it; mean {floor['mean_ms']:.3f} ms, same as the engine's: {floor['same_mean']}",
        ]
    )
    rows.append(
        [
            "(e) metrics per request",
            f"{metrics['record_us']:.2f} µs",
            f"{metrics['record_us'] / metrics['pipeline_us']:.2f}",
            f"share of a pipeline request ({metrics['pipeline_us']:.1f} µs); a bare list append "
            f"takes {metrics['append_us']:.2f} µs",
        ]
    )
    for n_requests, m in memory.items():
        rows.append(
            [
                f"(c) peak memory, {int(n_requests):.0e} requests",
                f"{m['peak_mib']:,.0f} MiB",
                "",
                f"max RSS; +{m['peak_mib'] - m['baseline_mib']:,.0f} MiB over the imports "
                f"({m['baseline_mib']:.0f} MiB)",
            ]
        )
    for n_requests, m in memory_fast.items():
        rows.append(
            [
                f"(c) peak memory, {int(n_requests):.0e} requests, fast",
                f"{m['peak_mib']:,.0f} MiB",
                "",
                f"max RSS; +{m['peak_mib'] - m['baseline_mib']:,.0f} MiB over the imports and "
                f"the loaded kernel ({m['baseline_mib']:.0f} MiB); {m['wall_s']:.1f} s",
            ]
        )
    rows.append(
        [
            "(f) fast engine, first call, warm cache",
            f"{compile_times['first_call_warm_s']:.2f} s",
            "",
            "fresh interpreter: imports, the kernel loaded, a tiny run"
            + (" (ahead of time)" if compile_times["aot"] else " (numba's cache)"),
        ]
    )
    rows.append(
        [
            "(f) fast engine, first call, numba JIT",
            f"{compile_times['first_call_warm_jit_s']:.2f} s",
            "",
            "the same, numba's just-in-time kernel loaded from its cache",
        ]
    )
    if "first_call_cold_s" in compile_times:
        rows.append(
            [
                "(f) fast engine, first call, cold",
                f"{compile_times['first_call_cold_s']:.1f} s",
                "",
                "the same with an empty numba cache: the kernel compiles (once per install)",
            ]
        )
    if sweep_res:
        s = sweep_res
        rows.append(
            [
                "(d) CPU ceiling, 2 processes",
                "",
                f"{s['cpu_ceiling_2']:.2f}",
                "pure-Python work on 2 warm processes: the best any 2-worker speed-up can be",
            ]
        )
        rows.append(
            [
                "(d) 16-run sweep, serial",
                f"{s['serial_s']:.1f} s",
                "1.00",
                f"{s['requests_per_run']:,.0f} req per run; mean of a pass before and after",
            ]
        )
        rows.append(
            [
                "(d) 16-run sweep, local processes (2)",
                f"{s['local2_s']:.1f} s",
                f"{s['speedup_local2']:.2f}",
                f"speed-up; identical frame: {s['identical_local']}",
            ]
        )
        rows.append(
            [
                "(d) 16-run sweep, Dask LocalCluster(2)",
                f"{s['dask2_total_s']:.1f} s",
                f"{s['speedup_dask2']:.2f}",
                f"speed-up incl. {s['dask2_startup_s']:.1f} s start-up "
                f"({s['speedup_dask2_compute']:.2f} without); "
                f"identical frame: {s['identical_dask']}",
            ]
        )
    if widgets:
        for name, what in (
            ("designer", "notebook 02's RuleDesigner, a weight move (6 s simulated)"),
            ("dashboard", "notebook 07's dashboard, a run (AZ loss, 20 s simulated)"),
        ):
            fast_ms, simpy_ms = widgets[f"{name}_fast_ms"], widgets[f"{name}_simpy_ms"]
            rows.append(
                [
                    f"(g) {name}, fast engine",
                    f"{fast_ms:.0f} ms",
                    f"{simpy_ms / fast_ms:.2f}",
                    f"{what}; SimPy {simpy_ms:.0f} ms (ratio: SimPy over fast)",
                ]
            )
    print(
        f"M/M/{C} λ={LAM:g}/s μ={MU:g}/s: Erlang C mean time in system W = {w_ms:.3f} ms; "
        f"{n:,} customers per run"
    )
    print(_table(rows, ["benchmark", "result", "ratio", "notes"]))

    out = {
        "python": platform.python_version(),
        "load_average_1m": {"start": load_start, "end": os.getloadavg()[0]},
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "requests": n,
        "erlang_c_w_ms": w_ms,
        "mmc": mmc,
        "pipeline": pipeline,
        "pipeline_fast": fast,
        "fast_vs_simpy": fast["ratio_to_bare"],
        "pipeline_floor": floor,
        "floor_vs_simpy": floor["ratio_to_bare"],
        "compile": compile_times,
        "widgets_ms": widgets,
        "metrics": metrics,
        # the earlier flat rows, kept so old readers of results.json still work
        "rows": [
            {
                "name": f"{r['name']} M/M/{C}",
                "req_per_s": r["customers_per_s"],
                "mean_ms": r["mean_ms"],
                "ratio_to_bare": r["ratio_to_bare"],
            }
            for r in mmc
        ]
        + [
            {
                "name": p["name"],
                "req_per_s": p["requests_per_s"],
                "mean_ms": p["mean_ms"],
                "ratio_to_bare": p["ratio_to_bare"],
            }
            for p in (pipeline, fast)
        ],
        "peak_memory_mib": memory,
        "peak_memory_mib_fast": memory_fast,
        "sweep": sweep_res,
    }
    (ROOT / "bench/results.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["analyzer"]:  # python -m bench analyzer: lint/explain/verify at scale
        from bench.analyzer import main as analyzer_main

        raise SystemExit(analyzer_main(sys.argv[2:]))
    main()
