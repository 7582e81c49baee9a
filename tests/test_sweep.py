"""Sweeps: schema, seeds, determinism across executors, error rows, up-front validation, CLI."""

from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process as cfp
import logging
import multiprocessing
import os
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import istiolab.analysis.sweep as sweep_mod
from istiolab.analysis.sweep import METRICS, sweep, sweep_seeds
from istiolab.errors import ConfigError
from istiolab.sim.engine import simulate
from istiolab.sim.scenario import Scenario, mmc_scenario

CONC = "services.0.versions.0.concurrency"
PODS = "ingress.pods_per_node"


def mmc(duration_s: float = 2.0, c: int = 10) -> Scenario:
    """M/M/c with every cost but the backend zero (λ = 800/s, μ = 100/s)."""
    return mmc_scenario(800, 10, c, duration_s=duration_s, warmup_s=0.5, seed=3, name="sweep-mmc")


GRID = {CONC: [9, 12], PODS: [1, 0]}  # pods_per_node=0 validates but cannot be simulated


def test_seeds_come_from_seed_sequence_children() -> None:
    seeds = sweep_seeds(7, 4)
    children = np.random.SeedSequence(7).spawn(4)
    assert seeds == [int(c.generate_state(1)[0]) for c in children]
    assert len(set(seeds)) == 4
    assert sweep_seeds(7, 2) == seeds[:2]  # more replications extend, never reshuffle
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        sweep_seeds(7, 0)


def test_schema_order_and_reproducible_rows() -> None:
    sc = mmc()
    frame = sweep(sc, {CONC: [9, 12]}, seeds=2, executor="serial", progress=False)
    metric_names = [m for m, _ in METRICS]
    assert list(frame.columns) == [CONC, "seed", "run_id", "engine", *metric_names, "error"]
    assert frame["engine"].tolist() == ["fast"] * 4  # auto, and the fast engine runs M/M/c
    assert frame.attrs["engine_notes"] == []
    assert frame.attrs["scenario"] == "sweep-mmc"
    assert frame.attrs["base_seed"] == 3  # run.seed by default
    seeds = sweep_seeds(3, 2)
    # grid order × seed order
    assert frame[CONC].tolist() == [9, 9, 12, 12]
    assert frame["seed"].tolist() == seeds * 2
    assert frame["seed"].dtype == "int64"
    assert frame["requests"].dtype == "Int64"
    assert frame["p99_ms"].dtype == "float64"
    assert frame["error"].isna().all()
    assert frame["run_id"].is_unique
    # any row can be reproduced alone from its params and seed
    row = frame.iloc[3]
    alone = simulate(
        sc.with_overrides({CONC: 12}), seed=int(row["seed"]), params={CONC: 12}, engine="fast"
    )
    assert alone.run_id == row["run_id"]
    totals = {**alone.totals(), **alone.window_totals()}
    derived = {"error_rate", "rho_max", "warnings"}
    for name in metric_names:
        if name not in derived:
            assert totals[name] == row[name] or (
                totals[name] != totals[name] and row[name] != row[name]
            ), name
    assert row["error_rate"] == 1 - totals["success_ratio_incl_unfinished"]
    assert row["rho_max"] == max(totals["rho"].values())
    assert row["warnings"] == ",".join(w["code"] for w in alone.warnings)
    # common random numbers: the same seeds at every grid point, and more capacity helps
    assert (
        frame[frame[CONC] == 12]["mean_ms"].to_numpy() < frame[frame[CONC] == 9]["mean_ms"]
    ).all()


def test_engine_column_says_which_engine_ran_and_why_auto_fell_back() -> None:
    sc = mmc(1.0)
    # a classic load balancer's surge queue is modelled by SimPy only: auto runs SimPy there
    mixed = sweep(sc, {"aws.lb": ["nlb", "clb"]}, seeds=1, executor="serial", progress=False)
    assert mixed["engine"].tolist() == ["fast", "simpy"]
    (note,) = mixed.attrs["engine_notes"]
    assert "engine auto ran the SimPy engine" in note
    assert "clb" in note
    reference = sweep(sc, None, seeds=1, executor="serial", progress=False, engine="simpy")
    assert reference["engine"].tolist() == ["simpy"]
    assert reference.attrs["engine_notes"] == []  # asked for SimPy: nothing fell back
    # the engines draw different random numbers: the auto row is the fast engine's run
    fast_alone = simulate(sc, seed=int(mixed["seed"][0]), engine="fast")
    assert fast_alone.totals()["requests"] == mixed["requests"][0]


def test_explicit_seeds_and_scalar_axis() -> None:
    frame = sweep(mmc(1.0), {CONC: 10}, seeds=[5, 6], executor="serial", progress=False)
    assert frame["seed"].tolist() == [5, 6]
    assert frame[CONC].tolist() == [10, 10]
    empty = sweep(mmc(1.0), None, seeds=1, executor="serial", progress=False)
    assert list(empty.columns)[:2] == ["seed", "run_id"]
    assert len(empty) == 1


def test_error_rows_do_not_stop_the_sweep() -> None:
    frame = sweep(
        mmc(),
        {**GRID, "rules.paths": [[], ["does-not-exist.yaml"]]},
        seeds=1,
        executor="serial",
        progress=False,
    )
    assert len(frame) == 8
    bad_pods = frame[PODS] == 0
    bad_rules = frame["rules.paths"].map(len) > 0
    ok = ~bad_pods & ~bad_rules
    assert frame.loc[ok, "error"].isna().all()
    assert (frame.loc[ok, "requests"] > 0).all()
    assert frame.loc[ok, "success_ratio"].eq(1.0).all()
    failed = frame[~ok]
    assert failed["error"].notna().all()
    assert failed["requests"].isna().all()
    assert failed["p99_ms"].isna().all()
    assert failed.loc[bad_pods & ~bad_rules, "error"].str.startswith("SimulationError").all()
    assert failed.loc[bad_pods & ~bad_rules, "error"].str.contains("pods_per_node").all()
    assert failed.loc[bad_rules, "error"].str.startswith("ConfigError").all()
    assert failed["run_id"].str.len().eq(12).all()  # error rows keep a stable id


class _DyingExecutor(cf.Executor):
    """An executor whose workers die: every future fails (as with a BrokenProcessPool)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        fut: cf.Future[Any] = cf.Future()
        fut.set_exception(BrokenProcessPool("a worker died"))
        return fut


def test_failed_tasks_become_error_rows() -> None:
    frame = sweep(mmc(1.0), {CONC: [9, 10]}, seeds=2, executor=_DyingExecutor(), progress=False)
    assert len(frame) == 4
    assert frame["error"].str.startswith("BrokenProcessPool: a worker died").all()
    assert frame["seed"].tolist() == sweep_seeds(3, 2) * 2


def test_invalid_grid_fails_before_any_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(sweep_mod, "run_point", lambda *a: calls.append(a))
    with pytest.raises(ConfigError) as err:
        sweep(mmc(), {CONC: [9, 10], "ingress.no_such_field": [1, 2]}, executor="serial")
    assert [f.path for f in err.value.findings] == ["ingress.no_such_field"]  # said once
    assert "no_such_field" in str(err.value)
    with pytest.raises(ConfigError) as err:
        sweep(mmc(), {"services.9.versions.0.concurrency": [1]}, executor="serial")
    assert "no list item '9'" in str(err.value)
    with pytest.raises(ConfigError) as err:  # a valid path with one invalid value
        sweep(mmc(), {CONC: [10, 0]}, executor="serial")
    assert "greater than or equal to 1" in str(err.value)
    with pytest.raises(ConfigError, match="has no values"):
        sweep(mmc(), {CONC: []}, executor="serial")
    assert calls == []


def test_thread_pool_executor_is_used_and_left_open() -> None:
    with cf.ThreadPoolExecutor(2) as pool:
        a = sweep(mmc(1.0), {CONC: [9, 10]}, seeds=2, executor=pool, progress=False)
        b = sweep(mmc(1.0), {CONC: [9, 10]}, seeds=2, executor=pool, progress=False)
    pd.testing.assert_frame_equal(a, b)


def test_bad_executor_strings() -> None:
    with pytest.raises(ValueError, match="unknown executor"):
        sweep(mmc(1.0), {}, executor="processes")
    with pytest.raises(ValueError, match="positive number of workers"):
        sweep(mmc(1.0), {}, executor="local:0")
    with pytest.raises(TypeError, match="executor must be"):
        sweep(mmc(1.0), {}, executor=42)


def test_auto_executor_runs_short_fast_sweeps_in_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """executor=None: serial when the fast engine runs everything briefly, else a pool."""
    from istiolab.analysis.sweep import SERIAL_REQUESTS, auto_executor

    short = mmc(2.0)  # 1 600 requests
    assert auto_executor([short] * 8, "auto") == "serial"
    assert auto_executor([short] * 8, "fast") == "serial"
    assert auto_executor([short] * 8, "simpy") == "local"  # SimPy runs gain from the pool
    clb = short.with_overrides({"aws.lb": "clb"})  # a feature the fast engine lacks
    assert auto_executor([short, clb], "auto") == "local"
    assert auto_executor([clb], "fast") == "serial"  # fast refuses it in the run: an error row
    long = mmc(SERIAL_REQUESTS / 800 + 10)  # one run over the whole budget
    assert auto_executor([long], "auto") == "local"
    assert auto_executor([short] * (SERIAL_REQUESTS // 1_600 + 1), "auto") == "local"

    def no_pool(workers: int) -> Any:
        raise AssertionError("a short fast sweep started a process pool")

    monkeypatch.setattr(sweep_mod, "_local_pool", no_pool)
    frame = sweep(short, {CONC: [9, 12]}, seeds=2, progress=False)
    assert frame.attrs["executor"] == "serial"
    with pytest.raises(AssertionError, match="started a process pool"):  # workers: the pool
        sweep(short, {CONC: [9, 12]}, seeds=2, progress=False, max_workers=2)
    assert frame["error"].isna().all()
    assert set(frame["engine"]) == {"fast"}


def test_cli_sweep_says_where_auto_ran_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--executor auto (the default) says on stderr which executor it chose; -q says nothing."""
    path = _write_scenario(tmp_path)
    monkeypatch.setattr(sweep_mod, "_local_pool", lambda workers: cf.ThreadPoolExecutor(workers))
    runner = CliRunner()
    base = ["sweep", str(path), "-p", f"{CONC}=9,12"]
    res = runner.invoke(_app(), base)
    assert res.exit_code == 0, res.output
    assert "--executor auto ran the 2 runs one after another in this process" in res.stderr
    res = runner.invoke(_app(), [*base, "-j", "2"])
    assert res.exit_code == 0, res.output
    assert "--executor auto ran the 2 runs on a process pool" in res.stderr
    for quiet in (["-e", "serial"], ["-q"]):
        res = runner.invoke(_app(), [*base, *quiet])
        assert res.exit_code == 0, res.output
        assert "--executor auto" not in res.stderr


def test_an_interrupted_pool_leaves_the_exit_hook_no_pipe_to_write() -> None:
    """After Ctrl-C stops a pool, its manager thread has ended and closed its wake-up pipe.

    CPython 3.11's exit hook (``concurrent.futures.process._python_exit``) writes to the
    wake-up pipe of every pool still registered; a manager thread closing that pipe at the
    same moment made the hook print an EBADF traceback after "istiolab: interrupted".
    """
    pool = sweep_mod._local_pool(2)
    running = [pool.submit(time.sleep, 60) for _ in range(2)]
    deadline = time.monotonic() + 60
    while not all(f.running() for f in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    manager: Any = pool._executor_manager_thread  # typeshed types it as its wake-up
    assert manager is not None
    assert all(f.running() for f in running)
    sweep_mod._close_pool(pool, finished=False)
    assert not manager.is_alive()
    wakeup = cfp._threads_wakeups.get(manager)
    assert wakeup is None or wakeup._closed  # the hook skips a closed wake-up


class _FakeCluster:
    kwargs: ClassVar[dict[str, Any]] = {}
    closed = False

    def __init__(self, **kwargs: Any) -> None:
        type(self).kwargs = kwargs

    def __enter__(self) -> _FakeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        type(self).closed = True


class _FakeClient:
    closed = False

    def __init__(self, cluster: Any) -> None:
        self.pool = cf.ThreadPoolExecutor(1)

    def __enter__(self) -> _FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        type(self).closed = True
        self.pool.shutdown()

    def get_executor(self, **kwargs: Any) -> cf.Executor:
        return self.pool


def test_local_cluster_is_loopback_without_dashboard_and_always_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweep_mod, "_dask", lambda: (_FakeClient, _FakeCluster))

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_mod, "run_tasks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep(mmc(1.0), {CONC: [10]}, executor="local:3")
    assert _FakeCluster.kwargs == {
        "n_workers": 3,
        "processes": True,
        "threads_per_worker": 1,
        "dashboard_address": None,
        "host": "127.0.0.1",
        "silence_logs": logging.CRITICAL,
    }
    assert _FakeCluster.closed
    assert _FakeClient.closed


def test_process_pool_uses_an_explicit_start_method(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = multiprocessing.get_context

    def spy(method: str | None = None) -> Any:
        seen.append(str(method))
        return real(method)

    monkeypatch.setattr(multiprocessing, "get_context", spy)
    with sweep_mod.open_executor("local", max_workers=1):
        pass
    assert seen
    assert seen[0] in ("forkserver", "spawn")


@pytest.mark.xdist_group("dask")
def test_same_frame_on_every_executor() -> None:
    sc = mmc()
    frames = {
        ex: sweep(sc, GRID, seeds=2, executor=ex, max_workers=2, progress=False)
        for ex in ("serial", "local", "local:2")
    }
    assert frames["serial"]["error"].notna().sum() == 4  # error rows are part of the contract
    pd.testing.assert_frame_equal(frames["serial"], frames["local"])
    pd.testing.assert_frame_equal(frames["serial"], frames["local:2"])
    assert multiprocessing.active_children() == []  # the pool and the cluster are gone


# ---------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    from istiolab.cli.sweep import register

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app."""

    register(app)
    return app


def _write_scenario(tmp_path: Path) -> Path:
    from istiolab.sim.scenario import dump_scenario

    path = tmp_path / "mmc.yaml"
    path.write_text(dump_scenario(mmc(1.5)))
    return path


def test_parse_param() -> None:
    from istiolab.cli.sweep import parse_param

    assert parse_param("a.b=1,2.5,true,x") == ("a.b", [1, 2.5, True, "x"])
    assert parse_param("n=2..4,8") == ("n", [2, 3, 4, 8])
    assert parse_param("s=lognormal(5ms, cv=0.8),exp(2ms)") == (
        "s",
        ["lognormal(5ms, cv=0.8)", "exp(2ms)"],
    )
    assert parse_param("p=[a.yaml],[]") == ("p", [["a.yaml"], []])
    for bad in ("novalue", "=1", "a=", "a=1,,2", "a=5..2"):
        with pytest.raises(ValueError, match="--param"):
            parse_param(bad)


def test_cli_sweep(tmp_path: Path) -> None:
    path = _write_scenario(tmp_path)
    runner = CliRunner()
    out = tmp_path / "runs.csv"
    args = ["sweep", str(path), "-p", f"{CONC}=9,12", "-k", "2", "-e", "serial", "-o", str(out)]
    res = runner.invoke(_app(), args)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out)
    assert len(frame) == 4
    assert frame[CONC].tolist() == [9, 9, 12, 12]
    assert frame["seed"].tolist() == sweep_seeds(3, 2) * 2
    res = runner.invoke(_app(), ["sweep", str(path), "-p", f"{PODS}=0,1", "-e", "serial"])
    assert res.exit_code == 1
    assert "1 of 2 run(s) failed" in res.output
    # usage errors: exit 2, a message, no traceback
    for bad in (
        ["-p", "ingress.nope=1"],
        ["-p", "nope"],
        ["-p", f"{CONC}=1", "-p", f"{CONC}=2"],
        ["-e", "threads"],
        ["--dask", "nohost"],
        ["-o", str(tmp_path / "x.txt")],
    ):
        executor = [] if {"-e", "--dask"} & set(bad) else ["-e", "serial"]
        res = runner.invoke(_app(), ["sweep", str(path), *executor, *bad])
        assert res.exit_code == 2, (bad, res.output)
        assert "Traceback" not in res.output
    res = runner.invoke(_app(), ["sweep", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2
    assert "cannot read" in res.output


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_quota(tmp_path: Path, files: dict[str, str], expected: float | None) -> None:
    """Binder and containers limit CPUs by quota while os.cpu_count() reports the host's."""
    from istiolab.analysis.sweep import _cgroup_cpu_quota

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _cgroup_cpu_quota(tmp_path) == expected


def test_available_cpus_respects_the_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    import istiolab.analysis.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "_cgroup_cpu_quota", lambda: 1.5)
    assert sweep_module.available_cpus() == min(2, len(os.sched_getaffinity(0)))
    monkeypatch.setattr(sweep_module, "_cgroup_cpu_quota", lambda: None)
    assert sweep_module.available_cpus() == len(os.sched_getaffinity(0))
