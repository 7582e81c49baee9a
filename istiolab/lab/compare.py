"""Variants of a scenario side by side in a notebook: a DataFrame and its HTML view.

``compare("nlb-cross-zone-off-uneven", {"off": {"aws.cross_zone": False}, "on": {...}})``
runs every variant on the same seeds (:func:`istiolab.analysis.compare.compare`) and returns a
:class:`Comparison`: ``.table`` is the tidy frame, ``.wide`` the printable one, and Jupyter
renders it as an HTML table with the intervals, the paired differences and each variant's
warnings.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from istiolab.sim.scenario import Scenario

__all__ = ["Comparison", "compare", "comparison_html"]


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`.

    Attributes:
        table: Tidy frame: ``variant``, ``metric``, ``n``, ``errors``, ``mean``, ``std``,
            ``ci_low``, ``ci_high``, ``min``, ``max``, ``warnings``, ``diff``, ``diff_low``,
            ``diff_high`` (docs/outputs.md, "Comparisons"); ``table.attrs["runs"]`` has the
            per-run rows.
    """

    table: pd.DataFrame

    @property
    def wide(self) -> pd.DataFrame:
        """One row per metric, one column per variant and one per difference (strings)."""
        from istiolab.analysis.compare import side_by_side

        return side_by_side(self.table)

    def _repr_html_(self) -> str:
        return comparison_html(self.table)


def _scenario(source: Scenario | str | Path) -> Scenario:
    from istiolab.lab.data import scenario as ready
    from istiolab.sim.scenario import Scenario

    # A ready scenario's name or a YAML path (lab.data resolves both, wherever the notebook is).
    return source if isinstance(source, Scenario) else ready(str(source))


def compare(
    scenario: Scenario | str | Path | Sequence[Scenario | str | Path],
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    seeds: int = 5,
    seed: int = 0,
    duration_s: float | None = None,
    executor: Any = "serial",
    confidence: float = 0.95,
    engine: str = "auto",
) -> Comparison:
    """Run variants of a scenario (or several scenarios) on the same seeds, side by side.

    Args:
        scenario: A scenario, a YAML path or a ready scenario's name; or a list of them to
            compare with each other (then *variants* must be None).
        variants: Name → overrides (dotted path → value), in order; the first is the baseline.
            With a single variant the scenario as it is comes first, named ``base``.
        seeds: Replications per variant.
        seed: Root seed.
        duration_s: Simulated seconds of every run (default the scenario's).
        executor: Where to run; ``"serial"`` (default) suits Binder's single CPU.
        confidence: Two-sided level of every interval.
        engine: The simulation engine (default ``auto``: compiled when it supports the scenario).

    Returns:
        A :class:`Comparison` (HTML in Jupyter; ``.table`` for the DataFrame).
    """
    from istiolab.analysis.compare import compare as run_compare

    extra = {} if duration_s is None else {"run.duration_s": duration_s}
    named: dict[str, Scenario] = {}
    if isinstance(scenario, Sequence) and not isinstance(scenario, str):
        if variants:
            raise ValueError("give several scenarios or variants of one, not both")
        for item in scenario:
            sc = _scenario(item)
            named[sc.name if sc.name not in named else f"{sc.name}#{len(named)}"] = (
                sc.with_overrides(extra) if extra else sc
            )
    else:
        base = _scenario(scenario)
        items = list((variants or {}).items())
        if len(items) < 2:
            items.insert(0, ("base", {}))
        for name, overrides in items:
            merged = {**dict(overrides), **extra}
            named[name] = base.with_overrides(merged) if merged else base
    table = run_compare(
        named, seeds, executor, base_seed=seed, confidence=confidence, engine=engine, progress=False
    )
    return Comparison(table)


def comparison_html(table: pd.DataFrame) -> str:
    """HTML of a :func:`~istiolab.analysis.compare.compare` frame: intervals, Δ, warnings."""
    from istiolab.analysis.compare import side_by_side, variant_warnings

    wide = side_by_side(table)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in wide.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in wide.itertuples(index=False)
    )
    conf = float(table.attrs.get("confidence", 0.95))
    baseline = html.escape(str(table.attrs.get("baseline", "")))
    warn = variant_warnings(table.attrs["runs"]) if "runs" in table.attrs else {}
    notes = "".join(
        f"<li>{html.escape(name)}: {html.escape(', '.join(codes) or 'no warnings')}</li>"
        for name, codes in warn.items()
    )
    return (
        f"<p>[low, high]: {conf:.0%} t interval of the mean over seeds; "
        f"Δ: paired difference to {baseline}.</p>"
        f'<table class="istiolab-t"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"<ul>{notes}</ul>"
    )
