"""Reading Envoy's JSON access log back, line by line, indexed by request id."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class _AccessLog:
    """Tails Envoy's JSON access log and indexes lines by request id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            req = entry.get("req") if isinstance(entry, dict) else None
            if isinstance(req, str) and req not in ("", "-"):
                self._entries[req] = entry

    def take(self, ids: Iterable[str], timeout_s: float) -> dict[str, dict[str, Any]]:
        """Wait up to ``timeout_s`` for the lines of ``ids``; return (and forget) those found."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                self._poll()
                if wanted.issubset(self._entries) or time.monotonic() >= deadline:
                    return {i: self._entries.pop(i) for i in wanted if i in self._entries}
            time.sleep(0.001)
