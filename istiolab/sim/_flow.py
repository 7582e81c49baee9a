"""Fire-and-forget flows: ``env.process`` for generators nobody waits for, two events cheaper.

A ``simpy.Process`` is itself an event: it costs an ``Initialize`` event to start and one more
event when the generator returns, so that other processes can wait for it. A request's journey
through the pipeline is started by its client and never waited for, interrupted or inspected, so
those two events (about a quarter of all events of a pipeline run) buy nothing. :func:`start`
drives such a generator from the callbacks of the events it yields, exactly as
``Process._resume`` does, and starts it at once instead of through an urgent event at the same
simulated time.

What is not supported, on purpose: interrupts, waiting for the flow, ``env.active_process``.
A generator that raises makes ``env.run`` raise, as an unhandled failed process does.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy


class _Flow:
    __slots__ = ("_generator", "_resume_cb")

    def __init__(self, generator: Generator[simpy.Event, Any, Any]) -> None:
        self._generator = generator
        self._resume_cb = self._step  # bound once: appended to every awaited event

    def _step(self, event: simpy.Event | None) -> None:
        generator = self._generator
        while True:
            try:
                if event is None:
                    target = next(generator)
                elif event._ok:
                    target = generator.send(event._value)
                else:
                    event._defused = True  # the flow handles (or re-raises) the failure
                    target = generator.throw(event._value)
            except StopIteration:
                return
            callbacks = target.callbacks
            if callbacks is not None:  # not processed yet: resume when it is
                callbacks.append(self._resume_cb)
                return
            event = target  # already processed: go on with its value at once


def start(generator: Generator[simpy.Event, Any, Any]) -> None:
    """Run *generator* now, resuming it whenever the event it yields is processed.

    Args:
        generator: Yields SimPy events; its return value is discarded.

    Example:
        >>> import simpy
        >>> env = simpy.Environment()
        >>> seen = []
        >>> def flow():
        ...     yield env.timeout(2)
        ...     seen.append(env.now)
        >>> start(flow())
        >>> env.run()
        >>> seen
        [2]
    """
    _Flow(generator)._step(None)


__all__ = ["start"]
