"""A FIFO multi-server queue cheaper than ``simpy.Resource`` for the hot path.

Acquiring a free server costs no event at all (the caller goes on at once); only a request that
has to wait gets an event, triggered when a server is handed over to it. Same FIFO semantics as
``simpy.Resource`` with one queue, about half its cost per request.
"""

from __future__ import annotations

from collections import deque

import simpy


class FifoServer:
    """*capacity* servers with one FIFO queue."""

    __slots__ = ("_area", "_since", "_waiting", "capacity", "count", "env")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.count = 0
        self._waiting: deque[simpy.Event] = deque()
        # Integral of count over time up to _since: busy server-seconds, for time-averaged
        # utilisation (a sample of count at one instant per interval is much noisier).
        self._area = 0.0
        self._since = env.now

    def acquire(self) -> simpy.Event | None:
        """Take a server: None when one was free (go on now), else an event to yield."""
        if self.count < self.capacity:
            now = self.env.now
            self._area += self.count * (now - self._since)
            self._since = now
            self.count += 1
            return None
        ev = simpy.Event(self.env)
        self._waiting.append(ev)
        return ev

    def release(self) -> None:
        """Give the server to the next waiter, or free it."""
        if self._waiting:
            self._waiting.popleft().succeed()  # handed over: as many servers stay busy
        else:
            now = self.env.now
            self._area += self.count * (now - self._since)
            self._since = now
            self.count -= 1

    def busy_time(self) -> float:
        """Busy server-seconds since the server was created."""
        return self._area + self.count * (self.env.now - self._since)

    @property
    def queued(self) -> int:
        """Requests waiting."""
        return len(self._waiting)
