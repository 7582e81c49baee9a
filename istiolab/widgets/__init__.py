"""Jupyter widgets (ipywidgets) that wrap istiolab's public API objects.

* :class:`RuleDesigner` — edit one HTTP route; live YAML, findings, explain and a short simulation;
* :class:`SimulationDashboard` — scenario knobs, Run with progress and Cancel, plots;
* :class:`VerifyPanel` — run the current rules on a real Envoy and show the agreement table;
* :class:`ApplyPanel` — dry-run, diff, confirmed apply and rollback against a cluster (or the
  in-memory cluster when there is no kubeconfig).

The widgets hold model objects (a ConfigSet, a Scenario, a Result) and call the public API; they
decide nothing themselves. Importing this package needs ipywidgets
(``pip install 'istiolab[lab]'``); the classes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from istiolab.widgets.apply import ApplyPanel
    from istiolab.widgets.dashboard import SimulationDashboard
    from istiolab.widgets.designer import RuleDesigner
    from istiolab.widgets.params import ParamSpec
    from istiolab.widgets.verify import VerifyPanel

__all__ = ["ApplyPanel", "ParamSpec", "RuleDesigner", "SimulationDashboard", "VerifyPanel"]

_WHERE = {
    "ApplyPanel": "istiolab.widgets.apply",
    "ParamSpec": "istiolab.widgets.params",
    "RuleDesigner": "istiolab.widgets.designer",
    "SimulationDashboard": "istiolab.widgets.dashboard",
    "VerifyPanel": "istiolab.widgets.verify",
}


def __getattr__(name: str) -> Any:
    import importlib

    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'istiolab.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
