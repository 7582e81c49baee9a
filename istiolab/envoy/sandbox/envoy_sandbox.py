"""The :class:`EnvoySandbox`: stub backends plus one real Envoy, requests through it, cleanup.

The :mod:`istiolab.envoy.sandbox` docstring states what the render callable must return and
which cleanup is guaranteed.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from istiolab.envoy.accesslog import ACCESS_LOG_FORMAT, REQUEST_ID_HEADER
from istiolab.envoy.sandbox.binary import find_envoy
from istiolab.envoy.sandbox.client import _Http, _http_once
from istiolab.envoy.sandbox.data import BackendBehaviour, BackendSpec, RenderFn, Reply
from istiolab.envoy.sandbox.logtail import _AccessLog
from istiolab.envoy.sandbox.process import sandbox_tempdir, spawn, started, stop, stopped
from istiolab.errors import SandboxError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EnvoySandbox"]

_FLUSH_INTERVAL_MS = 2  # Envoy's file flush interval; send() waits for the access-log line
_SEND_LOG_WAIT_S = 1.0  # how long send() waits for its access-log line
_LOAD_LOG_WAIT_S = 5.0  # how long load() waits for all of its access-log lines
_NO_LOG_FLAGS = "?"  # flags reported when no access-log line arrived in time
_LOAD_KEYS = frozenset({"path", "method", "host", "headers", "case", "timeout_s"})


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "(no output)"
    text = data[-limit:].decode("utf-8", "replace").strip()
    return text or "(no output)"


class EnvoySandbox:
    """Stub backends plus one real Envoy, with guaranteed cleanup.

    Use as a context manager::

        with EnvoySandbox(render, [BackendSpec("a", "httpbin", "v1")]) as sb:
            reply = sb.send("/status")

    Args:
        render: Builds the bootstrap from the listener port (always 0: the real port is
            discovered), the cluster endpoints and the access log path; see :data:`RenderFn`.
        backends: Stub backend clusters to serve; each endpoint gets its own port.
        envoy_path: Explicit Envoy binary (see :func:`find_envoy`).
        concurrency: Envoy worker threads (``--concurrency``).
        log_level: Envoy ``--log-level``.
        startup_timeout_s: Limit for the stubs and Envoy to become ready.
    """

    def __init__(
        self,
        render: RenderFn,
        backends: Sequence[BackendSpec],
        *,
        envoy_path: str | None = None,
        concurrency: int = 1,
        log_level: str = "warn",
        startup_timeout_s: float = 10.0,
    ) -> None:
        names = [b.cluster for b in backends]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate backend clusters: {dupes}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self._render = render
        self._backends = {b.cluster: b for b in backends}
        self._envoy_path = envoy_path
        self._concurrency = concurrency
        self._log_level = log_level
        self._startup_timeout_s = startup_timeout_s

        self._lock = threading.RLock()
        self._started = False
        self._closing = False  # set first thing in close(), read without the lock
        self._closed = False
        self._tmp: Path | None = None
        self._files: list[IO[bytes]] = []
        self._stubs: subprocess.Popen[bytes] | None = None
        self._envoy: subprocess.Popen[bytes] | None = None
        self._control_port: int | None = None
        self._endpoints: dict[str, list[tuple[str, int]]] = {}
        self._admin_port: int | None = None
        self._listener_port: int | None = None
        self._config: dict[str, Any] | None = None
        self._log: _AccessLog | None = None
        self._client: _Http | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> EnvoySandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the stub backends and Envoy; return once Envoy is ready.

        Raises:
            SandboxError: A process failed to start or did not become ready within
                ``startup_timeout_s``; the message includes the process's output.
        """
        with self._lock:
            if self._started:
                raise SandboxError("sandbox already started (a sandbox starts only once)")
            envoy = find_envoy(self._envoy_path)
            self._started = True
            started(self)
            try:
                self._tmp = sandbox_tempdir()
                deadline = time.monotonic() + self._startup_timeout_s
                self._start_stubs(deadline)
                self._start_envoy(envoy, deadline)
            except BaseException:
                self.close()
                raise

    def _start_stubs(self, deadline: float) -> None:
        assert self._tmp is not None
        stderr = open(self._tmp / "stubs.log", "wb")  # noqa: SIM115 - closed in close()
        self._files.append(stderr)
        script = str(Path(__file__).with_name("_stubs.py"))
        self._stubs = spawn(
            [sys.executable, "-s", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            close_fds=True,
        )
        spec = {
            "seed": 0,
            "backends": [
                {
                    "cluster": b.cluster,
                    "service": b.service,
                    "subset": b.subset,
                    "endpoints": b.endpoints,
                    "behaviour": asdict(b.behaviour),
                }
                for b in self._backends.values()
            ],
        }
        assert self._stubs.stdin is not None
        assert self._stubs.stdout is not None
        self._stubs.stdin.write(json.dumps(spec).encode() + b"\n")
        self._stubs.stdin.flush()
        line = self._read_line(self._stubs, deadline)
        try:
            hello = json.loads(line)
            self._control_port = int(hello["control"])
            self._endpoints = {
                cluster: [("127.0.0.1", int(p)) for p in ports]
                for cluster, ports in hello["endpoints"].items()
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise SandboxError(
                f"stub backends sent a bad hello line {line!r}:\n{_tail(self._tmp / 'stubs.log')}"
            ) from exc
        for cluster in self._backends:
            self._endpoints.setdefault(cluster, [])

    def _read_line(self, proc: subprocess.Popen[bytes], deadline: float) -> bytes:
        assert proc.stdout is not None
        assert self._tmp is not None
        fd = proc.stdout.fileno()
        buf = b""
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError(
                    "stub backends did not report their ports in time:\n"
                    + _tail(self._tmp / "stubs.log")
                )
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    proc.wait(timeout=2)
                    raise SandboxError(
                        f"stub backends exited with code {proc.returncode}:\n"
                        + _tail(self._tmp / "stubs.log")
                    )
                buf += chunk
        return buf.split(b"\n", 1)[0]

    def _start_envoy(self, envoy: str, deadline: float) -> None:
        assert self._tmp is not None
        log_path = self._tmp / "access.log"
        log_path.touch()
        rendered = self._render(0, {c: list(e) for c, e in self._endpoints.items()}, str(log_path))
        if not isinstance(rendered, dict):
            raise SandboxError(f"render returned {type(rendered).__name__}, not a dict")
        config = copy.deepcopy(rendered)
        config["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
        text = json.dumps(config)
        if str(log_path) not in text or ACCESS_LOG_FORMAT["req"] not in text:
            raise SandboxError(
                "the rendered bootstrap has no file access log at the path the sandbox gave "
                f"({log_path}) using ACCESS_LOG_FORMAT; use file_access_log(access_log_path)"
            )
        self._config = config
        cfg_path = self._tmp / "bootstrap.json"
        cfg_path.write_text(text)
        admin_path = self._tmp / "admin.address"
        out = open(self._tmp / "envoy.log", "wb")  # noqa: SIM115 - closed in close()
        self._files.append(out)
        argv = [envoy, "-c", str(cfg_path), "--disable-hot-restart"]
        argv += ["--log-level", self._log_level, "--concurrency", str(self._concurrency)]
        argv += ["--admin-address-path", str(admin_path)]
        argv += ["--file-flush-interval-msec", str(_FLUSH_INTERVAL_MS)]
        self._envoy = spawn(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True
        )
        self._wait_ready(admin_path, deadline)
        self._log = _AccessLog(log_path)
        self._listener_port = self._discover_listener()
        self._client = _Http(self._listener_port)

    def _envoy_failure(self, what: str) -> SandboxError:
        assert self._tmp is not None
        return SandboxError(f"{what}; Envoy output:\n{_tail(self._tmp / 'envoy.log')}")

    def _wait_ready(self, admin_path: Path, deadline: float) -> None:
        assert self._envoy is not None
        while True:
            code = self._envoy.poll()
            if code is not None:
                raise self._envoy_failure(f"Envoy exited with code {code} during start-up")
            if self._admin_port is None:
                with contextlib.suppress(OSError, ValueError):
                    text = admin_path.read_text().strip()
                    if text:
                        self._admin_port = int(text.rsplit(":", 1)[1])
            if self._admin_port is not None:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    status, _ = _http_once(self._admin_port, "GET", "/ready", timeout_s=1.0)
                    if status == 200:
                        return
            if time.monotonic() >= deadline:
                raise self._envoy_failure(
                    f"Envoy was not ready within {self._startup_timeout_s:g} s"
                )
            time.sleep(0.01)

    def _discover_listener(self) -> int:
        data = self._admin_json("/listeners?format=json")
        statuses = data.get("listener_statuses") or []
        if not statuses:
            raise self._envoy_failure("the rendered bootstrap has no listener")
        ports = []
        for st in statuses:
            sock = (st.get("local_address") or {}).get("socket_address") or {}
            if sock.get("address") != "127.0.0.1":
                raise SandboxError(
                    f"listener {st.get('name')!r} binds {sock.get('address')!r}; "
                    "the sandbox only allows 127.0.0.1"
                )
            ports.append(int(sock.get("port_value", 0)))
        return ports[0]

    def close(self) -> None:
        """Stop Envoy and the stub backends, reap them and delete the temp dir (idempotent)."""
        # Before the lock: a load() in other threads stops taking new requests at once, so a
        # close from a signal handler does not wait behind (or race with) queued requests.
        self._closing = True
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._envoy is not None:
                if self._envoy.poll() is None and self._admin_port is not None:
                    with contextlib.suppress(OSError, http.client.HTTPException):
                        _http_once(self._admin_port, "POST", "/quitquitquit", timeout_s=1.0)
                stop(self._envoy, grace_s=2.0)
            if self._stubs is not None:
                if self._stubs.stdin is not None:
                    with contextlib.suppress(OSError):
                        self._stubs.stdin.close()  # the stubs exit on EOF
                stop(self._stubs, grace_s=2.0)
                if self._stubs.stdout is not None:
                    self._stubs.stdout.close()
            for fh in self._files:
                with contextlib.suppress(OSError):
                    fh.close()
            self._files = []
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None
            self._closed = True
            stopped(self)

    # -- addresses -----------------------------------------------------------------------

    def _require_running(self) -> None:
        if not self._started or self._closing or self._listener_port is None:
            raise SandboxError("the sandbox is not running (use start() or a with block)")

    @property
    def listener_url(self) -> str:
        """Base URL of Envoy's (first) listener, ``http://127.0.0.1:PORT``."""
        self._require_running()
        return f"http://127.0.0.1:{self._listener_port}"

    @property
    def admin_url(self) -> str:
        """Base URL of Envoy's admin interface, ``http://127.0.0.1:PORT``."""
        self._require_running()
        return f"http://127.0.0.1:{self._admin_port}"

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running children: ``{"envoy": pid, "stubs": pid}``."""
        self._require_running()
        assert self._envoy is not None
        assert self._stubs is not None
        return {"envoy": self._envoy.pid, "stubs": self._stubs.pid}

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """The stub endpoints per cluster, as passed to the render callable."""
        return {c: list(e) for c, e in self._endpoints.items()}

    # -- traffic ---------------------------------------------------------------------------

    def _exchange(
        self,
        req_id: str,
        path: str,
        method: str,
        host: str,
        headers: Mapping[str, str] | None,
        timeout_s: float,
    ) -> tuple[int, dict[str, str], bytes, float]:
        self._require_running()
        assert self._client is not None
        hdrs: dict[str, str] = {"Host": host}
        for name, value in (headers or {}).items():
            if name.lower() == "host":
                hdrs.pop("Host", None)
            hdrs[name] = value
        hdrs[REQUEST_ID_HEADER] = req_id
        start = time.perf_counter()
        try:
            status, raw_headers, data = self._client.request(method, path, hdrs, None, timeout_s)
        except (OSError, http.client.HTTPException) as exc:
            raise self._traffic_failure(f"{method} {path} failed: {exc!r}") from exc
        duration = time.perf_counter() - start
        merged: dict[str, str] = {}
        for name, value in raw_headers:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return status, merged, data, duration

    def _traffic_failure(self, what: str) -> SandboxError:
        if self._envoy is not None and self._envoy.poll() is not None:
            return self._envoy_failure(f"{what} (Envoy exited with code {self._envoy.returncode})")
        return SandboxError(what)

    @staticmethod
    def _parse_body(headers: Mapping[str, str], data: bytes) -> dict[str, Any] | None:
        if not data or "json" not in headers.get("content-type", ""):
            return None
        try:
            body = json.loads(data)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    @staticmethod
    def _flags(entry: Mapping[str, Any] | None) -> str:
        if entry is None:
            return _NO_LOG_FLAGS
        flags = entry.get("flags")
        return str(flags) if flags not in (None, "") else "-"

    def send(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        host: str = "example.com",
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> Reply:
        """Send one request through Envoy and wait (≤ 1 s) for its access-log line.

        Args:
            path: Request path with query string.
            method: HTTP method.
            host: ``Host`` header (a ``host`` entry in ``headers`` wins).
            headers: Extra request headers.
            timeout_s: Client socket timeout (for connecting and for each read).

        Returns:
            The reply, with Envoy's response flags from the access log.

        Raises:
            SandboxError: The sandbox is not running, or the request failed at the transport
                level (connection refused or reset, client timeout).
        """
        req_id = uuid.uuid4().hex
        status, hdrs, data, duration = self._exchange(
            req_id, path, method, host, headers, timeout_s
        )
        assert self._log is not None
        entry = self._log.take([req_id], _SEND_LOG_WAIT_S).get(req_id)
        return Reply(
            status=status,
            body=self._parse_body(hdrs, data),
            headers=hdrs,
            backend=hdrs.get("x-istiolab-cluster"),
            endpoint=hdrs.get("x-istiolab-endpoint"),
            flags=self._flags(entry),
            duration_s=duration,
        )

    def load(
        self,
        requests: Iterable[Mapping[str, Any]],
        *,
        rate: float | None = None,
        concurrency: int = 1,
    ) -> pd.DataFrame:
        """Send many requests and tabulate the outcomes.

        Request ``i`` starts no earlier than ``i / rate`` seconds after the load starts
        (``rate=None``: as fast as possible); with ``concurrency > 1`` a thread pool sends
        them. Access-log lines are collected once at the end.

        Args:
            requests: Mappings with optional keys ``path`` (default ``"/"``), ``method``
                (``"GET"``), ``host`` (``"example.com"``), ``headers`` (``{}``), ``case``
                (a label copied to the output, default None) and ``timeout_s`` (30).
            rate: Target requests per second, or None.
            concurrency: Number of requests in flight at most.

        Returns:
            One row per request, in request order, with columns ``case``, ``path``,
            ``status``, ``backend``, ``endpoint``, ``flags``, ``duration_s`` and ``t_start``
            (seconds since the load started).

        Raises:
            SandboxError: A request failed at the transport level (see :meth:`send`).
            ValueError: A request mapping has an unknown key, or rate/concurrency is invalid.
        """
        import pandas as pd

        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        reqs = list(requests)
        for r in reqs:
            unknown = set(r) - _LOAD_KEYS
            if unknown:
                raise ValueError(
                    f"unknown request keys {sorted(unknown)}; use {sorted(_LOAD_KEYS)}"
                )
        self._require_running()
        ids = [uuid.uuid4().hex for _ in reqs]
        rows: list[dict[str, Any] | None] = [None] * len(reqs)
        t0 = time.perf_counter()

        def run(i: int) -> None:
            r = reqs[i]
            if rate is not None:
                wait = t0 + i / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            t_start = time.perf_counter() - t0
            path = str(r.get("path", "/"))
            status, hdrs, _, duration = self._exchange(
                ids[i],
                path,
                str(r.get("method", "GET")),
                str(r.get("host", "example.com")),
                r.get("headers"),
                float(r.get("timeout_s", 30.0)),
            )
            rows[i] = {
                "case": r.get("case"),
                "path": path,
                "status": status,
                "backend": hdrs.get("x-istiolab-cluster"),
                "endpoint": hdrs.get("x-istiolab-endpoint"),
                "duration_s": duration,
                "t_start": t_start,
            }

        if concurrency == 1:
            for i in range(len(reqs)):
                run(i)
        else:
            self._run_parallel(run, len(reqs), concurrency)
        assert self._log is not None
        entries = self._log.take(ids, _LOAD_LOG_WAIT_S)
        records = []
        for req_id, row in zip(ids, rows, strict=True):
            assert row is not None
            row["flags"] = self._flags(entries.get(req_id))
            records.append(row)
        columns = ["case", "path", "status", "backend", "endpoint", "flags"]
        columns += ["duration_s", "t_start"]
        return pd.DataFrame.from_records(records, columns=columns)

    def _run_parallel(self, run: Callable[[int], None], n: int, concurrency: int) -> None:
        """``run(0) .. run(n - 1)`` on *concurrency* threads; the first error stops them all.

        Each thread takes the next index itself, so nothing is queued: when a request fails,
        the caller is interrupted (Ctrl-C) or the sandbox closes, every thread stops after the
        request it is sending, and no backlog of queued requests (up to ``n``, 10^5 for
        ``verify -n 100000``) has to drain or be cancelled first.
        """
        indices = iter(range(n))
        take = threading.Lock()
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set() and not self._closing:
                with take:
                    i = next(indices, None)
                if i is None:
                    return
                try:
                    run(i)
                except BaseException:
                    stop.set()
                    raise

        with ThreadPoolExecutor(concurrency, thread_name_prefix="istiolab-load") as pool:
            futures = [pool.submit(worker) for _ in range(min(concurrency, n))]
            try:
                for fut in futures:
                    fut.result()
            except BaseException:
                stop.set()
                raise
        if self._closing:
            raise SandboxError("the sandbox was closed while requests were being sent")

    # -- admin and control -----------------------------------------------------------------

    def _admin_json(self, path: str) -> dict[str, Any]:
        if self._admin_port is None:
            raise SandboxError("the sandbox is not running")
        try:
            status, data = _http_once(self._admin_port, "GET", path, timeout_s=5.0)
        except (OSError, http.client.HTTPException) as exc:
            raise self._traffic_failure(f"Envoy admin GET {path} failed: {exc!r}") from exc
        if status != 200:
            raise SandboxError(f"Envoy admin GET {path} answered {status}: {data[:500]!r}")
        result = json.loads(data)
        if not isinstance(result, dict):
            raise SandboxError(f"Envoy admin GET {path} did not return a JSON object")
        return result

    def stats(self) -> dict[str, int]:
        """Envoy's counters and gauges (``/stats?format=json``), name -> value.

        Returns:
            For example ``{"cluster.<name>.upstream_rq_retry": 2, ...}``; histograms and
            text readouts are left out.

        Raises:
            SandboxError: The sandbox is not running or the admin call failed.
        """
        self._require_running()
        out: dict[str, int] = {}
        for item in self._admin_json("/stats?format=json").get("stats", []):
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                out[str(item["name"])] = value
        return out

    def _control(self, path: str, payload: dict[str, Any]) -> None:
        self._require_running()
        assert self._control_port is not None
        try:
            status, data = _http_once(
                self._control_port, "POST", path, json.dumps(payload).encode(), timeout_s=5.0
            )
        except (OSError, http.client.HTTPException) as exc:
            raise SandboxError(f"stub control POST {path} failed: {exc!r}") from exc
        if status != 200:
            raise SandboxError(f"stub control POST {path} answered {status}: {data[:500]!r}")

    def reset_backends(self) -> None:
        """Restart every endpoint's request counter (``fail_first`` counts from zero again).

        Also restarts the endpoints' seeded random draws.

        Raises:
            SandboxError: The sandbox is not running or the stub process did not answer.
        """
        self._control("/reset", {})

    def set_behaviour(self, cluster: str, behaviour: BackendBehaviour) -> None:
        """Change how a cluster's endpoints answer from now on (also resets their counters).

        Args:
            cluster: A cluster name from the sandbox's backends.
            behaviour: The new behaviour.

        Raises:
            SandboxError: Unknown cluster, sandbox not running, or the stubs did not answer.
        """
        if cluster not in self._backends:
            raise SandboxError(f"unknown backend cluster {cluster!r}")
        if self._backends[cluster].endpoints == 0:
            return
        self._control("/behaviour", {"cluster": cluster, "behaviour": asdict(behaviour)})

    def config(self) -> dict[str, Any]:
        """Return a copy of the bootstrap Envoy runs (with the sandbox's admin section).

        Raises:
            SandboxError: The sandbox has not rendered its config yet.
        """
        if self._config is None:
            raise SandboxError("the sandbox has not been started")
        return copy.deepcopy(self._config)
