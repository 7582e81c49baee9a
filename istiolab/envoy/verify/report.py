"""The agreement report of a verify run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from istiolab.reprs import HTMLRepr

__all__ = ["VerifyReport"]


@dataclasses.dataclass
class VerifyReport(HTMLRepr):
    """Agreement of the model with Envoy.

    Attributes:
        cases: Number of cases checked deterministically.
        agree: How many agreed.
        disagree: ``{"case", "expected", "envoy", "model"}`` per disagreement (``expected`` is
            the case file's expectation when it differs from the model, else the model's).
        stochastic: Fractions: ``{"case", "metric", "expected_fraction", "envoy_fraction",
            "n", "interval", "ok"}``.
        timing: ``{"case", "metric", "expected_s", "envoy_s", "tolerance_s", "ok"}``.
        counts: Retry and rate-limit counts: ``{"case", "metric", "expected", "envoy", "ok"}``.
        skipped: ``{"case", "reason"}``: what could not be checked, and why.
        results: Every deterministic case: ``{"case", "expected", "envoy", "agree"}``.
        notes: Remarks (e.g. from :func:`generate_cases`: unreachable routes).
        confidence: Confidence level of the intervals.
        requests: Requests per stochastic check.
        requests_sent: Requests sent through Envoy in all.
        envoy_seconds: Wall time spent with the sandbox.
    """

    cases: int = 0
    agree: int = 0
    disagree: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    stochastic: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    timing: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    counts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    results: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    confidence: float = 0.99
    requests: int = 0
    requests_sent: int = 0
    envoy_seconds: float = 0.0

    def failures(self, *, ignore_metrics: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Every disagreement and every check that is not ok."""
        ignore = set(ignore_metrics)
        bad = list(self.disagree)
        for group in (self.stochastic, self.timing, self.counts):
            bad += [e for e in group if not e["ok"] and e.get("metric") not in ignore]
        return bad

    @property
    def ok(self) -> bool:
        """No disagreement and every check inside its interval or tolerance."""
        return not self.failures()

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``istiolab verify --format json``."""
        return {
            "cases": self.cases,
            "agree": self.agree,
            "disagree": self.disagree,
            "stochastic": self.stochastic,
            "timing": self.timing,
            "counts": self.counts,
            "skipped": self.skipped,
            "results": self.results,
            "notes": self.notes,
            "confidence": self.confidence,
            "requests": self.requests,
            "requests_sent": self.requests_sent,
            "ok": self.ok,
        }
