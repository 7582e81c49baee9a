"""The workshop's presentation layer: exercises, rich display, plots and topology drawings.

Notebooks use :func:`check` (is an exercise answer right, and why), :func:`show` (rich HTML of
a core object), and :func:`scenario`, :func:`example` and :func:`rules_of` (the ready
scenarios and examples wherever the notebooks are opened from). Plots live in
:mod:`istiolab.lab.plots` and the pipeline drawing in :mod:`istiolab.lab.topology`.
"""

from istiolab.lab.data import data_dir, example, rules_of, scenario
from istiolab.lab.display import (
    Rich,
    configset_html,
    conversion_html,
    explanation_html,
    finding_html,
    findings_html,
    outcome_text,
    show,
    to_html,
    verify_report_html,
)
from istiolab.lab.exercises import check, is_right

__all__ = [
    "Rich",
    "check",
    "configset_html",
    "conversion_html",
    "data_dir",
    "example",
    "explanation_html",
    "finding_html",
    "findings_html",
    "is_right",
    "outcome_text",
    "rules_of",
    "scenario",
    "show",
    "to_html",
    "verify_report_html",
]
