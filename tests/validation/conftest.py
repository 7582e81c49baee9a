"""The validation suite runs every theory case on both engines (``engine`` fixture).

A test module opts in with ``pytestmark = pytest.mark.usefixtures("engine")``; its tests then
run once per engine, with the same tolerances. On the fast engine, a test whose scenario uses a
feature the fast engine does not implement is skipped with that feature named (the SimPy run of
the same test still checks it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import _harness


@pytest.fixture(params=["simpy", "fast"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine :func:`_harness.run` simulates with, for the duration of one test."""
    name = str(request.param)
    _harness.ENGINE = name
    try:
        yield name
    finally:
        _harness.ENGINE = "simpy"
