"""``simulate --out DIR``: CSV and Parquet frames with a README.md naming every column."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import typer
from typer.testing import CliRunner

from istiolab.sim.results import SCHEMAS, Result
from istiolab.sim.scenario import dump_scenario, mmc_scenario


def _app() -> typer.Typer:
    from istiolab.cli import simulate

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app."""

    simulate.register(app)
    return app


def test_simulate_out_writes_both_formats_and_a_readme(tmp_path: Path) -> None:
    from istiolab.cli.simulate import parquet_available

    scenario = tmp_path / "mmc.yaml"
    scenario.write_text(
        dump_scenario(mmc_scenario(400, 10, 6, duration_s=1.0, warmup_s=0.2, seed=2, name="m"))
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(_app(), ["simulate", str(scenario), "--out", str(out)])
    assert res.exit_code == 0, res.output
    # off a terminal the progress is plain lines, one per 10 % of simulated time
    assert re.search(r"simulate m: 50% \(50/100\)", res.output)
    readme = (out / "README.md").read_text()
    for name, columns in SCHEMAS.items():
        frame = pd.read_csv(out / f"{name}.csv")
        assert list(frame.columns) == [c.name for c in columns]
        assert f"## {name} (" in readme
        for column in columns:
            assert f"| `{column.name}` | {column.dtype} |" in readme, (name, column.name)
        if parquet_available():
            assert (out / f"{name}.parquet").exists()
    assert "## meta.json" in readme
    assert "## overview.png" in readme
    back = Result.load(out)  # the folder still reads back as a Result
    assert back.totals()["requests"] == pd.read_csv(out / "summary.csv")["requests"].sum()


def test_a_degenerate_run_prints_no_nan_figures(tmp_path: Path) -> None:
    """lognormal(40s, ...) where 40ms was meant: nothing completes; the table says '-', the
    degenerate warning says why, and no 'nan%' reads like a measured figure."""
    sc = mmc_scenario(50, 10, 2, duration_s=1.0, warmup_s=0.2, seed=2, name="slow")
    sc = sc.with_overrides({"services.0.versions.0.service_time": "lognormal(40s, cv=1)"})
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(dump_scenario(sc))
    res = CliRunner().invoke(_app(), ["simulate", str(scenario)])
    assert res.exit_code == 0, res.output
    total = next(line for line in res.output.splitlines() if line.startswith("total"))
    assert "nan" not in total
    assert total.split()[1:4] == ["0", "0.0", "-"]
    assert "warning [degenerate]" in res.output
