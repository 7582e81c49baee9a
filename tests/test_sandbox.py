"""Process layer of the real-Envoy sandbox: traffic, failure attribution and cleanup."""

from __future__ import annotations

import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from istiolab.envoy.sandbox import (
    ACCESS_LOG_FORMAT,
    BackendBehaviour,
    BackendSpec,
    EnvoySandbox,
    RenderFn,
    file_access_log,
    find_envoy,
    validate_config,
)
from istiolab.errors import SandboxError

pytestmark = [pytest.mark.envoy, pytest.mark.xdist_group("envoy")]

REPO = Path(__file__).resolve().parents[1]
A = "outbound|8000|v1|httpbin.default.svc.cluster.local"
B = "outbound|8000|v2|httpbin.default.svc.cluster.local"
DEAD = "outbound|8000|dead|httpbin.default.svc.cluster.local"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def _cluster(name: str, endpoints: Sequence[tuple[str, int]]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": h, "port_value": p}}
                            }
                        }
                        for h, p in endpoints
                    ]
                }
            ],
        },
    }


def make_render(*, retries: bool = False, dead_port: int | None = None) -> RenderFn:
    """A hand-made bootstrap: /a -> A, /v2 -> B, /dead -> DEAD, / -> 50/50 A/B."""

    def render(
        port: int, clusters: Mapping[str, Sequence[tuple[str, int]]], log_path: str
    ) -> dict[str, Any]:
        v2_route: dict[str, Any] = {"cluster": B}
        if retries:
            v2_route["retry_policy"] = {"retry_on": "5xx", "num_retries": 3}
        routes: list[dict[str, Any]] = [
            {"name": "a", "match": {"prefix": "/a"}, "route": {"cluster": A}},
            {"name": "v2", "match": {"prefix": "/v2"}, "route": v2_route},
        ]
        all_clusters = [_cluster(name, eps) for name, eps in clusters.items()]
        if dead_port is not None:
            routes.append(
                {"name": "dead", "match": {"prefix": "/dead"}, "route": {"cluster": DEAD}}
            )
            all_clusters.append(_cluster(DEAD, [("127.0.0.1", dead_port)]))
        routes.append(
            {
                "name": "split",
                "match": {"prefix": "/"},
                "route": {
                    "weighted_clusters": {
                        "clusters": [{"name": A, "weight": 50}, {"name": B, "weight": 50}]
                    }
                },
            }
        )
        hcm = {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress",
            "route_config": {
                "name": "local",
                "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}],
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": ROUTER_TYPE},
                }
            ],
            "access_log": [file_access_log(log_path)],
        }
        return {
            "static_resources": {
                "listeners": [
                    {
                        "name": "ingress",
                        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                        "filter_chains": [
                            {
                                "filters": [
                                    {
                                        "name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm,
                                    }
                                ]
                            }
                        ],
                    }
                ],
                "clusters": all_clusters,
            }
        }

    return render


def backends(
    a: BackendBehaviour | None = None, b: BackendBehaviour | None = None
) -> list[BackendSpec]:
    return [
        BackendSpec(A, "httpbin", "v1", behaviour=a or BackendBehaviour()),
        BackendSpec(B, "httpbin", "v2", behaviour=b or BackendBehaviour()),
    ]


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def _wait_gone(pids: Sequence[int], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(_gone(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not _gone(p)]}"
        time.sleep(0.02)


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


def _wait_refused(ports: Sequence[int], timeout_s: float = 5.0) -> None:
    # A killed multi-threaded process shows as a zombie as soon as its main thread has exited,
    # but its sockets close only when the last thread is gone: poll the ports too.
    deadline = time.monotonic() + timeout_s
    while not all(_refused(p) for p in ports):
        assert time.monotonic() < deadline, (
            f"still accepting: {[p for p in ports if not _refused(p)]}"
        )
        time.sleep(0.02)


def _ports(sb: EnvoySandbox) -> list[int]:
    ports = [int(sb.listener_url.rsplit(":", 1)[1]), int(sb.admin_url.rsplit(":", 1)[1])]
    ports += [p for eps in sb.endpoints.values() for _, p in eps]
    return ports


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listening: connections to it are refused, and nobody reuses it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


# --------------------------------------------------------------------------- traffic


def test_send_reaches_backend_by_path() -> None:
    with EnvoySandbox(make_render(), backends()) as sb:
        assert sb.listener_url.startswith("http://127.0.0.1:")
        reply = sb.send("/v2/anything?x=1", headers={"x-user": "beta"}, host="httpbin.example")
        assert reply.status == 200
        assert reply.backend == B
        assert reply.endpoint == f"127.0.0.1:{sb.endpoints[B][0][1]}"
        assert reply.flags == "-"
        assert reply.body is not None
        assert reply.body["cluster"] == B
        assert reply.body["subset"] == "v2"
        assert reply.body["service"] == "httpbin"
        assert reply.body["path"] == "/v2/anything?x=1"
        assert reply.body["headers"]["x-user"] == "beta"
        assert reply.body["headers"]["host"] == "httpbin.example"
        assert reply.headers["x-istiolab-cluster"] == B
        assert 0 < reply.duration_s < 1.0
        assert sb.send("/a").backend == A
        assert sb.config()["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_retries_hide_first_failures() -> None:
    behaviour = BackendBehaviour(fail_first=2, fail_status=503)
    with EnvoySandbox(make_render(retries=True), backends(b=behaviour)) as sb:
        reply = sb.send("/v2")
        assert reply.status == 200
        assert reply.flags == "-"
        assert reply.body is not None
        assert reply.body["request_index"] == 2
        assert sb.stats()[f"cluster.{B}.upstream_rq_retry"] == 2
        # the counters restart on reset_backends()
        sb.reset_backends()
        assert sb.send("/v2").status == 200
        assert sb.stats()[f"cluster.{B}.upstream_rq_retry"] == 4


def test_failures_backend_and_local(closed_port: int) -> None:
    always = BackendBehaviour(fail_probability=1.0, fail_status=503)
    with EnvoySandbox(make_render(dead_port=closed_port), backends(a=always)) as sb:
        reply = sb.send("/a")
        assert reply.status == 503
        assert reply.backend == A  # the stub answered; Envoy passed the 503 through
        assert reply.flags == "-"
        assert reply.body is not None
        assert reply.body["failed"] is True

        dead = sb.send("/dead")
        assert dead.status == 503
        assert dead.backend is None
        assert dead.endpoint is None
        assert dead.body is None
        assert dead.flags in ("UF", "UF,URX")

        # behaviour changes at runtime
        sb.set_behaviour(A, BackendBehaviour())
        assert sb.send("/a").status == 200
        sb.set_behaviour(A, BackendBehaviour(fail_first=1, fail_status=502))
        assert [sb.send("/a").status for _ in range(2)] == [502, 200]


def _binomial_interval(n: int, p: float, level: float) -> tuple[int, int]:
    """Smallest central interval [lo, hi] with P(lo <= X <= hi) >= level for X ~ Bin(n, p)."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    tail = (1 - level) / 2
    lo, acc = 0, 0.0
    while acc + pmf[lo] <= tail:
        acc += pmf[lo]
        lo += 1
    hi, acc = n, 0.0
    while acc + pmf[hi] <= tail:
        acc += pmf[hi]
        hi -= 1
    return lo, hi


def test_load_weighted_split() -> None:
    n = 400
    requests = [{"path": f"/split/{i}", "case": i} for i in range(n)]
    with EnvoySandbox(make_render(), backends()) as sb:
        df = sb.load(requests, concurrency=4)
    assert list(df.columns) == [
        "case",
        "path",
        "status",
        "backend",
        "endpoint",
        "flags",
        "duration_s",
        "t_start",
    ]
    assert len(df) == n
    assert list(df["case"]) == list(range(n))
    assert list(df["path"]) == [r["path"] for r in requests]
    assert set(df["status"]) == {200}
    assert set(df["flags"]) == {"-"}
    assert set(df["backend"]) == {A, B}
    lo, hi = _binomial_interval(n, 0.5, 0.999)
    hits_a = int((df["backend"] == A).sum())
    assert lo <= hits_a <= hi, (hits_a, lo, hi)
    assert (df["t_start"] >= 0).all()
    assert (df["duration_s"] > 0).all()


def test_load_rate_paces_requests() -> None:
    with EnvoySandbox(make_render(), backends()) as sb:
        df = sb.load([{"path": "/a"}] * 10, rate=50.0)
    # request i starts no earlier than i / rate
    assert (df["t_start"] >= [i / 50.0 for i in range(10)]).all()
    assert df["t_start"].iloc[-1] < 0.18 + 0.5


# --------------------------------------------------------------------------- cleanup

CHILD = """
import json, sys, threading, time
sys.path[:0] = [{repo!r}, {tests!r}]
from istiolab.envoy.sandbox import EnvoySandbox
from test_sandbox import backends, make_render

holder = []
def start():
    sb = EnvoySandbox(make_render(), backends())
    sb.start()
    holder.append(sb)

if {in_thread!r}:
    t = threading.Thread(target=start)
    t.start()
    t.join()          # the starting thread is gone now; the children must live on
    time.sleep(0.2)
else:
    start()
sb = holder[0]
assert sb.send("/a").status == 200
ports = [int(sb.listener_url.rsplit(":", 1)[1]), int(sb.admin_url.rsplit(":", 1)[1])]
ports += [p for eps in sb.endpoints.values() for _, p in eps]
print(json.dumps({{"pids": sb.pids, "ports": ports, "tmp": str(sb._tmp)}}), flush=True)
sys.stdin.read()  # until the test closes our stdin (then exit normally: atexit) or signals us
"""


@pytest.mark.parametrize(
    ("how", "in_thread", "expected_code"),
    [
        ("sigterm", False, 128 + signal.SIGTERM),
        ("sigkill", False, -signal.SIGKILL),
        ("sigkill", True, -signal.SIGKILL),
        ("sigint", False, -signal.SIGINT),  # KeyboardInterrupt outside any with: atexit
        ("exit", False, 0),  # normal interpreter exit without close(): atexit
    ],
    ids=["sigterm", "sigkill", "sigkill-started-in-thread", "sigint", "exit"],
)
def test_children_die_with_parent(
    tmp_path: Path, how: str, in_thread: bool, expected_code: int
) -> None:
    script = tmp_path / "child.py"
    tests_dir = str(Path(__file__).resolve().parent)
    script.write_text(
        textwrap.dedent(CHILD).format(repo=str(REPO), tests=tests_dir, in_thread=in_thread)
    )
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        ready, _, _ = select.select([child.stdout], [], [], 15.0)
        assert ready, "child did not start a sandbox"
        line = child.stdout.readline()
        assert line, f"child failed: {child.stderr.read() if child.stderr else ''}"
        info = json.loads(line)
        pids = list(info["pids"].values())
        assert not any(_gone(p) for p in pids)
        if how == "exit":
            child.stdin.close()
        else:
            child.send_signal(getattr(signal, how.upper()))
        code = child.wait(timeout=5)
        assert code == expected_code
        _wait_gone(pids)
        _wait_refused(info["ports"])
        if how != "sigkill":
            assert not Path(info["tmp"]).exists()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for pid in pids:  # never leak processes, even when the test fails
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()


CTRL_C_CHILD = """
import sys
sys.path[:0] = [{repo!r}, {tests!r}]
from istiolab.envoy.sandbox import EnvoySandbox
from test_sandbox import backends, make_render

with EnvoySandbox(make_render(), backends()) as sb:
    try:
        print("ready", flush=True)
        sys.stdin.read()
    except KeyboardInterrupt:
        print("interrupted", sb.send("/a").status, flush=True)
"""


def test_ctrl_c_to_the_process_group_spares_the_sandbox(tmp_path: Path) -> None:
    # A terminal's Ctrl-C signals the whole foreground process group; a program that catches
    # KeyboardInterrupt must still have a working sandbox.
    script = tmp_path / "child.py"
    tests_dir = str(Path(__file__).resolve().parent)
    script.write_text(textwrap.dedent(CTRL_C_CHILD).format(repo=str(REPO), tests=tests_dir))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a shell job
    )
    try:
        out, err = "", ""
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 15.0)
        assert ready
        assert child.stdout.readline().strip() == "ready"
        os.killpg(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=10)
        assert child.returncode == 0, err
        assert out.strip() == "interrupted 200"
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_exception_in_with_block_cleans_up(exc_type: type[BaseException]) -> None:
    with pytest.raises(exc_type), EnvoySandbox(make_render(), backends()) as sb:  # noqa: PT012
        pids = list(sb.pids.values())
        ports = _ports(sb)
        tmp = sb._tmp
        raise exc_type("boom")
    _wait_gone(pids, timeout_s=0.5)  # close() reaped them already
    assert all(_refused(p) for p in ports)
    assert tmp is not None
    assert not tmp.exists()
    sb.close()  # idempotent
    with pytest.raises(SandboxError, match="not running"):
        sb.send("/")


def test_start_failure_reports_envoy_output_and_cleans_up() -> None:
    def bad_render(port: int, clusters: Any, log_path: str) -> dict[str, Any]:
        config = make_render()(port, clusters, log_path)
        config["static_resources"]["clusters"][0]["connect_timeout"] = "soon"
        return config

    sb = EnvoySandbox(bad_render, backends())
    with pytest.raises(SandboxError, match="Envoy exited") as info:
        sb.start()
    assert "connect_timeout" in str(info.value) or "Duration" in str(info.value)
    assert sb._stubs is not None
    assert sb._stubs.returncode is not None  # stubs stopped and reaped too


def test_render_without_access_log_is_rejected() -> None:
    def no_log(port: int, clusters: Any, log_path: str) -> dict[str, Any]:
        config = make_render()(port, clusters, log_path)
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        del hcm["typed_config"]["access_log"]
        return config

    with pytest.raises(SandboxError, match="file_access_log"):
        EnvoySandbox(no_log, backends()).start()


# --------------------------------------------------------------------------- binary & config


def test_find_envoy_bad_env_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIOLAB_ENVOY", "/nonexistent/envoy")
    with pytest.raises(SandboxError, match="pip install") as info:
        find_envoy()
    assert "/nonexistent/envoy" in str(info.value)


def test_find_envoy_missing_everywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ISTIOLAB_ENVOY", raising=False)
    monkeypatch.setitem(sys.modules, "envoy", None)  # the wheel is "not installed"
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError, match=r"pip install 'istiolab\[envoy\]'"):
        find_envoy()


def test_find_envoy_default() -> None:
    path = find_envoy()
    assert os.access(path, os.X_OK)


def test_validate_config() -> None:
    good = make_render()(0, {A: [("127.0.0.1", 1)], B: [("127.0.0.1", 2)]}, "/dev/null")
    validate_config(good)
    bad = json.loads(json.dumps(good))
    bad["static_resources"]["clusters"][0]["bogus_field"] = 1
    with pytest.raises(SandboxError, match="bogus_field"):
        validate_config(bad)


def test_access_log_format_has_required_keys() -> None:
    assert ACCESS_LOG_FORMAT["req"] == "%REQ(X-ISTIOLAB-REQ)%"
    assert ACCESS_LOG_FORMAT["flags"] == "%RESPONSE_FLAGS%"


def test_sandbox_from_worker_thread_survives_thread_exit() -> None:
    sb = EnvoySandbox(make_render(), backends())
    starter = threading.Thread(target=sb.start)
    starter.start()
    starter.join()
    try:
        time.sleep(0.1)  # PDEATHSIG would have fired when `starter` ended
        assert sb.send("/a").status == 200
    finally:
        sb.close()
