"""Stub HTTP backends for the Envoy sandbox (private; runs as a child process).

Run as ``python _stubs.py`` (by file path, so only the standard library is imported and
start-up stays fast). Protocol with the parent:

* stdin, first line: a JSON object ``{"seed": int, "backends": [{"cluster", "service",
  "subset", "endpoints", "behaviour": {"fail_status", "fail_probability", "fail_first",
  "delay_s"}}, ...]}``.
* stdout, one line once every port is bound: ``{"pid": int, "control": port,
  "endpoints": {cluster: [port, ...]}}``.
* The process exits when stdin reaches EOF, i.e. when the parent closes the pipe or dies
  (a second safety net next to ``PR_SET_PDEATHSIG``).

Every endpoint is a ``ThreadingHTTPServer`` on its own ``127.0.0.1`` port answering every
method with a JSON body ``{"service", "subset", "cluster", "endpoint", "path", "method",
"headers", "request_index", "failed"}`` and the headers ``x-istiolab-cluster`` and
``x-istiolab-endpoint``.

The control server (own port) accepts:

* ``POST /reset`` with an optional JSON body ``{"cluster": name}``: restart the per-endpoint
  request counters (``fail_first`` counts from zero again) and re-seed the random draws.
* ``POST /behaviour`` with ``{"cluster": name, "behaviour": {...}}``: replace the behaviour
  of a cluster's endpoints and reset their counters.
* ``GET /counts``: ``{cluster: {endpoint: requests_since_reset}}``.
"""

from __future__ import annotations

import json
import os
import random
import socketserver
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn


@dataclass
class Behaviour:
    """How an endpoint answers (mirror of ``sandbox.BackendBehaviour``)."""

    fail_status: int = 503
    fail_probability: float = 0.0
    fail_first: int = 0
    delay_s: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        """Build from the JSON mapping sent by the parent."""
        return cls(
            fail_status=int(data.get("fail_status", 503)),
            fail_probability=float(data.get("fail_probability", 0.0)),
            fail_first=int(data.get("fail_first", 0)),
            delay_s=float(data.get("delay_s", 0.0)),
        )


@dataclass
class Endpoint:
    """One stub backend endpoint: its identity, behaviour and request counter."""

    cluster: str
    service: str
    subset: str | None
    index: int
    seed: int
    behaviour: Behaviour
    address: str = ""
    count: int = 0
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Restart the request counter and the random stream."""
        with self.lock:
            self.count = 0
            self.rng = random.Random(f"{self.seed}|{self.cluster}|{self.index}")

    def next_request(self) -> tuple[int, Behaviour, bool]:
        """Count one request; return its index, the behaviour in force and whether it fails."""
        with self.lock:
            index = self.count
            self.count += 1
            b = self.behaviour
            fails = index < b.fail_first or (
                b.fail_probability > 0.0 and self.rng.random() < b.fail_probability
            )
        return index, b, fails


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])


class _EndpointServer(_Server):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        super().__init__(_EndpointHandler)


class _ControlServer(_Server):
    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.endpoints = endpoints
        super().__init__(_ControlHandler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every response stalls ~44 ms (Nagle + delayed ACK)
    server_version = "istiolab-stub"
    sys_version = ""

    def version_string(self) -> str:
        """Server header value."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Keep quiet: the parent does not read our stderr per request."""

    def read_body(self) -> bytes:
        """Read the request body (Content-Length or chunked) so keep-alive stays in sync."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status: int, payload: object, extra: dict[str, str] | None = None) -> None:
        """Send a JSON reply with Content-Length (keep-alive friendly)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _EndpointHandler(_Handler):
    server: _EndpointServer

    def handle_any(self) -> None:
        """Answer one request according to the endpoint's behaviour."""
        self.read_body()
        ep = self.server.endpoint
        index, behaviour, fails = ep.next_request()
        if behaviour.delay_s > 0.0:
            threading.Event().wait(behaviour.delay_s)
        payload = {
            "service": ep.service,
            "subset": ep.subset,
            "cluster": ep.cluster,
            "endpoint": ep.address,
            "path": self.path,
            "method": self.command,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "request_index": index,
            "failed": fails,
        }
        status = behaviour.fail_status if fails else 200
        self.reply(
            status,
            payload,
            {"x-istiolab-cluster": ep.cluster, "x-istiolab-endpoint": ep.address},
        )

    def do_GET(self) -> None:
        """Answer GET."""
        self.handle_any()

    def do_POST(self) -> None:
        """Answer POST."""
        self.handle_any()

    def do_PUT(self) -> None:
        """Answer PUT."""
        self.handle_any()

    def do_DELETE(self) -> None:
        """Answer DELETE."""
        self.handle_any()

    def do_PATCH(self) -> None:
        """Answer PATCH."""
        self.handle_any()

    def do_HEAD(self) -> None:
        """Answer HEAD."""
        self.handle_any()

    def do_OPTIONS(self) -> None:
        """Answer OPTIONS."""
        self.handle_any()


class _ControlHandler(_Handler):
    server: _ControlServer

    def _body_json(self) -> dict[str, Any]:
        raw = self.read_body()
        if not raw:
            return {}
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}

    def _select(self, cluster: str | None) -> list[Endpoint]:
        return [e for e in self.server.endpoints if cluster is None or e.cluster == cluster]

    def do_POST(self) -> None:
        """Handle ``/reset`` and ``/behaviour``."""
        try:
            data = self._body_json()
        except ValueError as exc:
            self.reply(400, {"error": f"bad JSON: {exc}"})
            return
        cluster = data.get("cluster")
        selected = self._select(cluster)
        if cluster is not None and not selected:
            self.reply(404, {"error": f"unknown cluster {cluster!r}"})
            return
        if self.path == "/reset":
            for ep in selected:
                ep.reset()
            self.reply(200, {"reset": len(selected)})
        elif self.path == "/behaviour":
            if cluster is None:
                self.reply(400, {"error": "cluster is required"})
                return
            behaviour = Behaviour.from_json(data.get("behaviour") or {})
            for ep in selected:
                with ep.lock:
                    ep.behaviour = behaviour
                ep.reset()
            self.reply(200, {"updated": len(selected)})
        else:
            self.reply(404, {"error": f"no such control path {self.path!r}"})

    def do_GET(self) -> None:
        """Handle ``/counts``."""
        self.read_body()
        if self.path != "/counts":
            self.reply(404, {"error": f"no such control path {self.path!r}"})
            return
        counts: dict[str, dict[str, int]] = {}
        for ep in self.server.endpoints:
            counts.setdefault(ep.cluster, {})[ep.address] = ep.count
        self.reply(200, counts)


def main() -> NoReturn:
    """Serve the backends described on stdin until stdin closes."""
    spec = json.loads(sys.stdin.readline())
    seed = int(spec.get("seed", 0))
    endpoints: list[Endpoint] = []
    servers: list[_Server] = []
    ports: dict[str, list[int]] = {}
    for backend in spec["backends"]:
        behaviour = Behaviour.from_json(backend.get("behaviour") or {})
        for i in range(int(backend.get("endpoints", 1))):
            ep = Endpoint(
                cluster=backend["cluster"],
                service=backend["service"],
                subset=backend.get("subset"),
                index=i,
                seed=seed,
                behaviour=behaviour,
            )
            ep.reset()
            ep_server = _EndpointServer(ep)
            ep.address = f"127.0.0.1:{ep_server.server_port}"
            endpoints.append(ep)
            servers.append(ep_server)
            ports.setdefault(ep.cluster, []).append(ep_server.server_port)
    control = _ControlServer(endpoints)
    servers.append(control)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write(
        json.dumps({"pid": os.getpid(), "control": control.server_port, "endpoints": ports})
    )
    sys.stdout.write("\n")
    sys.stdout.flush()
    # Block until the parent closes stdin (or dies); then stop.
    while sys.stdin.buffer.read(65536):
        pass
    # Nothing to flush or persist: exit at once and let the kernel close every socket
    # (server.shutdown() would wait up to 0.5 s per server for serve_forever's poll loop).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
