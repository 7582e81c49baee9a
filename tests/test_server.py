"""FifoServer: FIFO hand-over and the busy-time integral behind time-averaged utilisation."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from istiolab.sim.stages._server import FifoServer


def test_busy_time_integrates_busy_servers_over_time() -> None:
    env = simpy.Environment()
    server = FifoServer(env, 2)
    order: list[tuple[str, float]] = []

    def job(name: str, arrive: float, work: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(arrive)
        ev = server.acquire()
        if ev is not None:
            yield ev
        order.append((name, env.now))
        yield env.timeout(work)
        server.release()

    # a: [0, 3]; b: [1, 4]; c arrives at 2, waits for a, runs [3, 5]; d arrives at 2.5, [4, 6]
    for name, arrive, work in (("a", 0, 3), ("b", 1, 3), ("c", 2, 2), ("d", 2.5, 2)):
        env.process(job(name, arrive, work))
    env.run(until=2.0)
    assert server.busy_time() == 2 + 1  # a for 2 s, b for 1 s
    env.run()
    assert order == [("a", 0), ("b", 1), ("c", 3), ("d", 4)]  # FIFO hand-over
    assert server.busy_time() == 3 + 3 + 2 + 2  # every job's service time, nothing else
    assert server.count == 0
    env.run(until=10.0)
    assert server.busy_time() == 10  # idle time adds nothing
