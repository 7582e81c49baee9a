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

    __slots__ = ("_waiting", "capacity", "count", "env")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.count = 0
        self._waiting: deque[simpy.Event] = deque()

    def acquire(self) -> simpy.Event | None:
        """Take a server: None when one was free (go on now), else an event to yield."""
        if self.count < self.capacity:
            self.count += 1
            return None
        ev = simpy.Event(self.env)
        self._waiting.append(ev)
        return ev

    def release(self) -> None:
        """Give the server to the next waiter, or free it."""
        if self._waiting:
            self._waiting.popleft().succeed()
        else:
            self.count -= 1

    @property
    def queued(self) -> int:
        """Requests waiting."""
        return len(self._waiting)
