"""The conformance suite: every scenario in ``sim/scenarios/conform`` on a real Envoy and in the
simulator, compared metric by metric.

CI runs the short version (``-m conform``: 2 replications of 2.5 s per side, wide intervals, so
it catches gross breaks in the Envoy side, the simulator or their plumbing). ``make conform``
sets ``ISTIOLAB_CONFORM=full`` (3 replications of 12 s) and writes ``docs/conformance.md``.

A metric that differs for a reason found in Envoy's source, and that is the simulator's to fix
(``istiolab/sim`` is not changed from here), goes in :data:`KNOWN_DIFFERENCES` with the source
reference and the cause; it is reported as *known* instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from istiolab.analysis.conform import ConformReport, conform, markdown
from istiolab.envoy.sandbox import find_envoy
from istiolab.errors import SandboxError
from istiolab.sim.engine import fast_unsupported
from istiolab.sim.scenario import load_scenario

pytestmark = [pytest.mark.conform, pytest.mark.envoy, pytest.mark.xdist_group("envoy")]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "sim" / "scenarios" / "conform").glob("*.yaml"))
FULL = os.environ.get("ISTIOLAB_CONFORM", "") == "full"
SECONDS, REPS = (12.0, 3) if FULL else (2.5, 2)
DOC = ROOT / "docs" / "conformance.md"

KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}
"""``(scenario name, metric name) -> cause``: where the simulator differs from Envoy, why, and
the Envoy source that says so. The one list of what the simulator has to fix."""

_REPORTS: dict[str, ConformReport] = {}


def _envoy_or_skip() -> None:
    try:
        find_envoy()
    except SandboxError as err:
        pytest.skip(str(err))


def test_suite_covers_the_features() -> None:
    names = {p.stem for p in SCENARIOS}
    assert len(SCENARIOS) >= 8
    for feature in (
        "retry-backoff",
        "per-try-timeout",
        "http1-pool",
        "max-requests",
        "outlier-detection",
        "local-rate-limit",
        "round-robin-workers",
        "least-request-workers",
        "consistent-hash-header",
    ):
        assert any(feature in n for n in names), feature


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_agrees_with_envoy(path: Path) -> None:
    _envoy_or_skip()
    sc = load_scenario(path)
    known = {m: why for (s, m), why in KNOWN_DIFFERENCES.items() if s == sc.name}
    report = conform(sc, seconds=SECONDS, reps=REPS, known=known)
    _REPORTS[path.stem] = report
    assert len(report.metrics) >= 3, report.table()
    assert report.reps[0] >= 2, report.table()
    differing = [m.name for m in report.metrics if not m.ok and not m.known]
    assert not differing, report.table()


FAST = [p for p in SCENARIOS if fast_unsupported(load_scenario(p)) is None]


@pytest.mark.parametrize("path", FAST, ids=[p.stem for p in FAST])
def test_scenario_agrees_with_envoy_on_the_fast_engine(path: Path) -> None:
    """The same comparison with the compiled engine on the simulator side (every scenario)."""
    _envoy_or_skip()
    sc = load_scenario(path)
    known = {m: why for (s, m), why in KNOWN_DIFFERENCES.items() if s == sc.name}
    report = conform(sc, seconds=SECONDS, reps=REPS, known=known, engine="fast")
    assert "simulator: the fast engine" in report.notes
    assert len(report.metrics) >= 3, report.table()
    assert report.reps[0] >= 2, report.table()
    differing = [m.name for m in report.metrics if not m.ok and not m.known]
    assert not differing, report.table()


def test_the_fast_engine_runs_the_whole_suite() -> None:
    assert FAST == SCENARIOS, sorted({p.stem for p in SCENARIOS} - {p.stem for p in FAST})


def test_write_conformance_doc() -> None:
    """With the full suite, the page is regenerated from the reports (after the scenarios)."""
    if not FULL or len(_REPORTS) != len(SCENARIOS):
        pytest.skip("only after the full suite ran every scenario (make conform)")
    reports = [_REPORTS[p.stem] for p in SCENARIOS]
    DOC.write_text(markdown(reports, f"make conform ({REPS} × {SECONDS:g} s per side)"))
