"""Check the route model against a real Envoy.

The same requests go through :func:`istiolab.envoy.match.route` (the model) and through a real
Envoy running the rendering of the same :class:`~istiolab.envoy.model.RouteTable` (in an
:class:`~istiolab.envoy.sandbox.EnvoySandbox`). Deterministic outcomes (which cluster, no route,
redirect, direct response, a 100 % abort) must be equal; stochastic ones (weighted splits, fault
fractions, retries against a flaky backend) must fall inside binomial confidence intervals;
timings (fault delays, timeouts) inside a stated tolerance; a local rate limit must pass a burst
of exactly ``max_tokens``.

Case files (router_check_tool format) are read and written by
:mod:`istiolab.envoy.verify.cases`; how the sandbox's Envoy is made to take a case's random value
is told in :mod:`istiolab.envoy.verify.harness`.
"""

from __future__ import annotations

from istiolab.envoy.policy import retries_on_status, retries_on_timeout
from istiolab.envoy.verify.cases import Case, CaseFileError, dump_cases, load_cases, parse_cases
from istiolab.envoy.verify.generate import generate_cases, regex_examples
from istiolab.envoy.verify.harness import (
    RANDOM_HEADER,
    SandboxFactory,
    backend_specs,
    sandbox_render,
)
from istiolab.envoy.verify.outcomes import Outcome, check_case, model_outcomes, redirect_url
from istiolab.envoy.verify.report import VerifyReport
from istiolab.envoy.verify.runner import verify
from istiolab.envoy.verify.stats import expected_attempts, wilson_interval

__all__ = [
    "RANDOM_HEADER",
    "Case",
    "CaseFileError",
    "Outcome",
    "SandboxFactory",
    "VerifyReport",
    "backend_specs",
    "check_case",
    "dump_cases",
    "expected_attempts",
    "generate_cases",
    "load_cases",
    "model_outcomes",
    "parse_cases",
    "redirect_url",
    "regex_examples",
    "retries_on_status",
    "retries_on_timeout",
    "sandbox_render",
    "verify",
    "wilson_interval",
]
