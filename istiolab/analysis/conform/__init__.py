"""Conformance of the simulator's dynamics with a real Envoy (``istiolab conform``).

A scenario runs twice: through a real Envoy (the sandbox, with the scenario's compiled gateway
config and worker count), real upstream pods (:mod:`~istiolab.analysis.conform.upstream`) and an
open-loop load generator (:mod:`~istiolab.analysis.conform.loadgen`); and through the simulator.
:mod:`~istiolab.analysis.conform.compare` picks the metrics the scenario's features make
meaningful and gives each an interval and a verdict; :mod:`~istiolab.analysis.conform.report`
prints them. :func:`conform` (:mod:`~istiolab.analysis.conform.run`) does all of it.
"""

from __future__ import annotations

from istiolab.analysis.conform.compare import Metric
from istiolab.analysis.conform.report import ConformReport, markdown
from istiolab.analysis.conform.run import DEFAULT_MAX_RPS, conform, prepare

__all__ = ["DEFAULT_MAX_RPS", "ConformReport", "Metric", "conform", "markdown", "prepare"]
