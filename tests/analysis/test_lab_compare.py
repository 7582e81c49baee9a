"""The notebook helper ``istiolab.lab.compare``: a DataFrame and its HTML view."""

from __future__ import annotations

from istiolab.lab.compare import Comparison, compare
from istiolab.sim.scenario import mmc_scenario

CONC = "services.0.versions.0.concurrency"


def test_lab_compare_returns_table_and_html() -> None:
    sc = mmc_scenario(800, 10, 9, duration_s=1.0, warmup_s=0.3, seed=3, name="lab-mmc")
    result = compare(sc, {"wider": {CONC: 12}}, seeds=2)  # one variant: 'base' comes first
    assert isinstance(result, Comparison)
    table = result.table
    assert list(dict.fromkeys(table["variant"])) == ["base", "wider"]
    assert table.attrs["baseline"] == "base"
    html = result._repr_html_()
    assert "<table" in html
    assert "Δ wider" in html
    assert "95% t interval" in html
    assert list(result.wide.columns) == ["metric", "base", "wider", "Δ wider"]
