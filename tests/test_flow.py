"""Fire-and-forget flows (``istiolab.sim._flow.start``) behave as SimPy processes do."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import simpy

from istiolab.sim._flow import start


def _trace(env: simpy.Environment, use_flow: bool) -> list[tuple[float, str]]:
    """The same three concurrent journeys, run as processes or as flows."""
    log: list[tuple[float, str]] = []
    server = simpy.Resource(env, capacity=1)
    done = env.event()

    def journey(name: str, delay: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(delay)
        with server.request() as req:
            yield req
            log.append((env.now, f"{name} got the server"))
            yield env.timeout(1.0)
        value = yield done  # triggered long ago for the late ones: resumed at once
        log.append((env.now, f"{name} saw {value}"))

    def trigger() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(1.5)
        done.succeed("done")

    env.process(trigger())
    for name, delay in (("a", 0.0), ("b", 0.5), ("c", 0.5)):
        if use_flow:
            start(journey(name, delay))
        else:
            env.process(journey(name, delay))
    env.run()
    return log


def test_a_flow_runs_like_a_process() -> None:
    as_process = _trace(simpy.Environment(), use_flow=False)
    as_flow = _trace(simpy.Environment(), use_flow=True)
    assert as_flow == as_process
    assert as_flow[0] == (0.0, "a got the server")
    assert as_flow[-1] == (3.0, "c saw done")


def test_a_failed_event_is_thrown_into_the_flow() -> None:
    env = simpy.Environment()
    caught: list[str] = []

    def flow() -> Generator[simpy.Event, Any, None]:
        ev = env.event()
        ev.fail(ValueError("reset"))
        try:
            yield ev
        except ValueError as e:
            caught.append(str(e))
        yield env.timeout(1)
        caught.append(f"went on at {env.now}")

    start(flow())
    env.run()
    assert caught == ["reset", "went on at 1"]


def test_an_exception_in_a_flow_stops_the_run() -> None:
    env = simpy.Environment()

    def flow() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(2)
        raise RuntimeError("model bug")

    start(flow())
    with pytest.raises(RuntimeError, match="model bug"):
        env.run()
    assert env.now == 2
