"""HTTP plumbing: requests to Envoy's listener and admin port and to the stubs' control port."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping


class _Http:
    """A tiny keep-alive HTTP/1.1 client pool for one ``127.0.0.1`` port (no proxies)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._idle: list[http.client.HTTPConnection] = []
        # Reentrant: close() may run in a signal handler (istiolab.processes closes live
        # sandboxes on SIGTERM and Ctrl-C) that interrupted this thread inside _get or _put;
        # a plain Lock would deadlock there. The handler raises, so the interrupted code
        # never carries on with the list the handler emptied.
        self._lock = threading.RLock()
        self._closed = False

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(2):
            conn, reused = self._get(timeout_s)
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(timeout_s)
                conn.request(method, path, body=body, headers=dict(headers))
                resp = conn.getresponse()
                data = resp.read()
                status, hdrs = resp.status, resp.getheaders()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection; retry once
                raise
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                self._put(conn)
            return status, hdrs, data
        raise AssertionError("unreachable")

    def _get(self, timeout_s: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s), False

    def _put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _http_once(
    port: int, method: str, path: str, body: bytes | None = None, timeout_s: float = 2.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()
