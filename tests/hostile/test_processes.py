"""Killing istiolab leaves nothing behind: pools, Dask workers, the dashboard's worker, temp dirs.

Every test starts the real thing in a child process (the ``istiolab`` command line, or a short
script), waits until its worker processes exist, kills it (SIGTERM, SIGINT or SIGKILL) and then
checks, within a few seconds, that none of the processes it started is still running. The
descendants are listed before the kill: after it they are orphans and no longer anyone's
children. psutil lists them when it is installed, ``/proc`` otherwise. A zombie counts as gone
(it runs no code; who reaps orphans depends on the container's init).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from istiolab import processes
from istiolab.sim.scenario import dump_scenario, mmc_scenario

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 5.0
CONC = "services.0.versions.0.concurrency"


# ---------------------------------------------------------------------------- process tools


def _proc_table() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc."""
    table: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                # The command name (field 2) may hold spaces and parentheses: split after it.
                table[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return table


def descendants(pid: int) -> list[int]:
    """Pids of every process below *pid*."""
    try:
        import psutil
    except ImportError:
        table = _proc_table()
        found: list[int] = []
        frontier = [pid]
        while frontier:
            parent = frontier.pop()
            kids = [p for p, pp in table.items() if pp == parent]
            found += kids
            frontier += kids
        return found
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def running(pid: int) -> bool:
    """Whether *pid* exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return processes.pid_alive(pid)
    return state not in ("Z", "X")


def wait_gone(pids: list[int], timeout_s: float = GONE_WITHIN_S) -> list[int]:
    """The pids still running after *timeout_s*."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in pids if running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if running(p)]
    return left


def wait_for_descendants(
    proc: subprocess.Popen[bytes], n: int, timeout_s: float = 60.0, settle_s: float = 1.5
) -> None:
    """Wait until *proc* has at least *n* descendants, then *settle_s* more (work under way)."""
    deadline = time.monotonic() + timeout_s
    while len(descendants(proc.pid)) < n:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr is not None else ""
            pytest.fail(f"the child exited early with {proc.returncode}: {err[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the child did not start {n} processes in {timeout_s} s")
        time.sleep(0.1)
    time.sleep(settle_s)  # let the workers pick up tasks: kill them busy, not idle


@contextlib.contextmanager
def reaped(pids_of: list[int]) -> Iterator[None]:
    """Kill whatever in *pids_of* still runs at the end, so a failing test leaks nothing."""
    try:
        yield
    finally:
        for pid in pids_of:
            if running(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def long_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An M/M/c scenario whose runs take far longer than any test waits."""
    path = tmp_path_factory.mktemp("hostile") / "long.yaml"
    sc = mmc_scenario(800, 10, 10, duration_s=3600.0, warmup_s=0.5, seed=3, name="hostile-long")
    path.write_text(dump_scenario(sc))
    return path


# ---------------------------------------------------------------------------- sweep and plan


@pytest.mark.parametrize(
    ("executor", "sig", "expected"),
    [
        ("local", signal.SIGTERM, 128 + signal.SIGTERM),
        ("local", signal.SIGINT, 128 + signal.SIGINT),
        ("local", signal.SIGKILL, -signal.SIGKILL),
        ("local:2", signal.SIGTERM, 128 + signal.SIGTERM),
        ("local:2", signal.SIGKILL, -signal.SIGKILL),
    ],
    ids=["pool-sigterm", "pool-sigint", "pool-sigkill", "dask-sigterm", "dask-sigkill"],
)
def test_sweep_workers_die_with_the_command(
    long_scenario: Path, executor: str, sig: signal.Signals, expected: int
) -> None:
    where = ["-j", "2"] if executor == "local" else ["--dask", executor]
    argv = [sys.executable, "-m", "istiolab", "sweep", str(long_scenario)]
    argv += ["--param", f"{CONC}=9,10,11,12", "-q", *where]
    child = subprocess.Popen(
        argv,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a signal for it, not for pytest's process group
    )
    kids: list[int] = []
    with reaped(kids):
        try:
            # Pool: resource tracker, forkserver, 2 workers. Dask: tracker, 2 workers.
            wait_for_descendants(child, 4 if executor == "local" else 3)
            kids += descendants(child.pid)
            child.send_signal(sig)
            code = child.wait(timeout=30)
            err = child.stderr.read().decode() if child.stderr is not None else ""
            assert code == expected, err[-2000:]
            assert wait_gone(kids) == [], f"left running: {wait_gone(kids, 0)}"
            assert "Traceback" not in err, err
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            if child.stderr is not None:
                child.stderr.close()


LIBRARY_SWEEP = """
import sys
from istiolab.analysis.sweep import sweep
from istiolab.sim.scenario import load_scenario

if __name__ == "__main__":  # forkserver and spawn import the main module again
    sweep(load_scenario(sys.argv[1]), {{"{conc}": [9, 10, 11, 12]}}, executor="local",
          max_workers=2, progress=False)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_library_sweep_pool_dies_with_a_killed_program(
    tmp_path: Path, long_scenario: Path, sig: signal.Signals
) -> None:
    # A program that calls sweep() and installs no handler: SIGTERM kills it like SIGKILL, and
    # the forkserver's workers still must not stay behind.
    script = tmp_path / "sweeper.py"
    script.write_text(textwrap.dedent(LIBRARY_SWEEP).format(conc=CONC))
    child = subprocess.Popen(
        [sys.executable, str(script), str(long_scenario)],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    kids: list[int] = []
    with reaped(kids):
        try:
            wait_for_descendants(child, 4)
            kids += descendants(child.pid)
            child.send_signal(sig)
            assert child.wait(timeout=30) == -sig
            assert wait_gone(kids) == [], f"left running: {wait_gone(kids, 0)}"
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            if child.stderr is not None:
                child.stderr.close()


# ---------------------------------------------------------------------------- dashboard runner


def test_new_runner_stops_the_old_idle_worker() -> None:
    from istiolab.widgets.runner import Runner

    sc = mmc_scenario(100, 10, 2, duration_s=1.0, warmup_s=0.1, seed=1, name="runner")
    old = Runner()
    new: Runner | None = None
    try:
        job = old.submit(sc)
        assert job.wait(60)
        assert job.state == "done", job.error
        assert old._proc is not None
        worker = old._proc.pid
        assert running(worker)  # kept between runs
        new = Runner()  # what re-running the dashboard's cell does
        assert wait_gone([worker]) == []
        assert old._proc is None
        job = old.submit(sc)  # the old dashboard still works, with a fresh worker
        assert job.wait(60)
        assert job.state == "done", job.error
        assert old._proc is None  # ... and does not keep it: a newer runner exists
    finally:
        old.close()
        if new is not None:
            new.close()


def test_an_older_runner_lets_its_worker_go_when_its_job_ends() -> None:
    from istiolab.widgets.runner import Runner

    long = mmc_scenario(800, 10, 10, duration_s=4.0, warmup_s=0.1, seed=1, name="runner")
    old = Runner()
    new: Runner | None = None
    try:
        job = old.submit(long)
        assert old._proc is not None
        worker = old._proc.pid
        new = Runner()  # a busy worker is not stopped: its run goes on
        assert running(worker)
        assert job.wait(120)
        assert job.state == "done", job.error
        assert wait_gone([worker]) == []
    finally:
        old.close()
        if new is not None:
            new.close()


KERNEL = """
import sys, time
from istiolab.widgets.runner import Runner
from istiolab.sim.scenario import mmc_scenario

runner = Runner()
runner.submit(mmc_scenario(800, 10, 10, duration_s=3600.0, warmup_s=0.1, seed=1, name="k"))
print(runner._proc.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_runner_worker_dies_with_the_kernel(tmp_path: Path, sig: signal.Signals) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    child = subprocess.Popen(
        [sys.executable, str(script)],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    kids: list[int] = []
    with reaped(kids):
        try:
            assert child.stdout is not None
            worker = int(child.stdout.readline())
            kids.append(worker)
            time.sleep(1.0)  # the worker is simulating now
            assert running(worker)
            child.send_signal(sig)
            child.wait(timeout=30)
            assert wait_gone(kids) == []
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            for pipe in (child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()


# ---------------------------------------------------------------------------- temp dirs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_run_dir(root: Path, owner: int, namespace: str | None = None) -> Path:
    path = root / f"{processes.RUN_DIR_PREFIX}{owner}-test"
    path.mkdir()
    ns = namespace if namespace is not None else os.readlink("/proc/self/ns/pid")
    (path / processes.OWNER_FILE).write_text(f"{owner} {ns}")
    (path / "envoy-x").mkdir()
    return path


def test_stale_run_dirs_are_swept_only_when_their_owner_is_dead(tmp_path: Path) -> None:
    dead = _fake_run_dir(tmp_path, _dead_pid())
    alive = _fake_run_dir(tmp_path, os.getppid())
    foreign = _fake_run_dir(tmp_path, _dead_pid(), namespace="pid:[1]-elsewhere")
    no_owner = tmp_path / f"{processes.RUN_DIR_PREFIX}being-created"
    no_owner.mkdir()
    removed = processes.sweep_stale_run_dirs(tmp_path)
    assert removed == [dead]
    assert not dead.exists()
    assert alive.exists()
    assert foreign.exists()
    assert no_owner.exists()


def test_run_dir_is_per_process_and_holds_the_temp_dirs() -> None:
    run = processes.run_dir()
    assert run.name.startswith(f"{processes.RUN_DIR_PREFIX}{os.getpid()}-")
    assert Path(tempfile.gettempdir()) == run.parent
    assert (run / processes.OWNER_FILE).read_text().split()[0] == str(os.getpid())
    made = processes.make_tempdir("envoy-")
    assert made.parent == run
    assert processes.run_dir() == run  # one per run


@pytest.mark.envoy
@pytest.mark.parametrize(
    ("sig", "settle_s"),
    [(signal.SIGTERM, 1.5), (signal.SIGINT, 1.5), (signal.SIGINT, 0.0)],
    # 1.5 s after Envoy was started, verify sends its 100 000 requests on 16 threads; at 0 s
    # Envoy is still starting.
    ids=["sigterm-sending", "sigint-sending", "sigint-starting"],
)
def test_verify_killed_cleans_up_and_exits_128_plus_signal(
    sig: signal.Signals, settle_s: float
) -> None:
    config = REPO / "tests" / "conformance" / "configs" / "10-weights-90-10.yaml"
    child = subprocess.Popen(
        [sys.executable, "-m", "istiolab", "verify", str(config), "-n", "100000"],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    kids: list[int] = []
    with reaped(kids):
        try:
            wait_for_descendants(child, 2, settle_s=settle_s)  # Envoy and the stub backends
            kids += descendants(child.pid)
            run_dirs = list(Path(tempfile.gettempdir()).glob(f"istiolab-{child.pid}-*"))
            assert len(run_dirs) == 1
            sent = time.monotonic()
            child.send_signal(sig)
            code = child.wait(timeout=30)
            took = time.monotonic() - sent
            err = child.stderr.read().decode() if child.stderr is not None else ""
            assert code == 128 + sig, err[-2000:]
            assert "Traceback" not in err, err
            # The clean path, not the watchdog's: Envoy and the stubs stopped, then exit.
            last = err.strip().splitlines()[-1]
            assert last in ("istiolab: interrupted", "istiolab: terminated by SIGTERM"), err
            assert took < processes.UNWIND_LIMIT_S, f"took {took:.1f} s to unwind"
            assert wait_gone(kids) == []
            assert not run_dirs[0].exists()
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            if child.stderr is not None:
                child.stderr.close()


# A clean-up that runs inside the signal handler must not wait for a lock that the code it
# interrupted holds: close_all() takes _LIVE_LOCK, and a sandbox's close() its HTTP client's
# lock, which the main thread holds for a moment around every request it sends itself.
HELD_LOCK = """
import os, signal, sys, time
from istiolab import processes
from istiolab.envoy.sandbox.client import _Http

client = _Http(1)

class Owner:
    def close(self):
        client.close()

processes.track(Owner())
lock = processes._LIVE_LOCK if sys.argv[1] == "live" else client._lock
try:
    with processes.exit_on_signals():
        with lock:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
except processes.Terminated as ex:
    print("terminated", ex.code, flush=True)
    os._exit(0)
"""

STUCK_CLEANUP = """
import os, signal, sys, time
from istiolab import processes

processes.UNWIND_LIMIT_S = 1.0

class Stuck:
    def close(self):
        time.sleep(3600)  # a clean-up waiting for something that never answers

run = processes.run_dir()
print(run, flush=True)
processes.track(Stuck())
with processes.exit_on_signals():
    time.sleep(3600)
"""


def _script(code: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize("lock", ["live", "http"])
def test_the_signal_handler_does_not_deadlock_on_a_lock_the_interrupted_code_holds(
    lock: str,
) -> None:
    child = _script(HELD_LOCK, lock)
    try:
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
        child.wait()
    # With a plain Lock the handler blocked forever (before the watchdog), or until the
    # watchdog ended the process without this line.
    assert out.decode().split() == ["terminated", "130"], err.decode()[-2000:]


@pytest.mark.parametrize("second", [False, True], ids=["watchdog", "second-signal"])
def test_a_stuck_clean_up_still_ends_the_process(second: bool) -> None:
    child = _script(STUCK_CLEANUP)
    try:
        assert child.stdout is not None
        run = Path(child.stdout.readline().decode().strip())
        assert run.is_dir()
        time.sleep(0.3)  # inside exit_on_signals
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        if second:
            time.sleep(0.2)
            child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        child.kill()
        child.wait()
    text = err.decode()
    assert "Traceback" not in text, text
    if second:
        assert child.returncode == 128 + signal.SIGTERM
        assert text.strip() == "istiolab: stopped after SIGTERM: a second signal during clean-up"
        assert took < 1.0 + 0.5
    else:
        assert child.returncode == 128 + signal.SIGTERM
        assert text.strip() == "istiolab: stopped after SIGTERM: clean-up took over 1 s"
        assert 1.0 <= took < 1.0 + 2.0
    assert not run.exists()


@pytest.mark.envoy
def test_a_sigkilled_runs_dir_is_swept_by_the_next_run() -> None:
    config = REPO / "tests" / "conformance" / "configs" / "10-weights-90-10.yaml"
    child = subprocess.Popen(
        [sys.executable, "-m", "istiolab", "verify", str(config), "-n", "100000"],
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    kids: list[int] = []
    with reaped(kids):
        try:
            wait_for_descendants(child, 2)
            kids += descendants(child.pid)
            run_dirs = list(Path(tempfile.gettempdir()).glob(f"istiolab-{child.pid}-*"))
            assert len(run_dirs) == 1
            child.kill()
            child.wait(timeout=30)
            assert wait_gone(kids) == []  # Envoy and the stubs: PR_SET_PDEATHSIG
            assert run_dirs[0].exists()  # nobody could delete it...
            processes.sweep_stale_run_dirs()
            assert not run_dirs[0].exists()  # ...until the next run looked
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
