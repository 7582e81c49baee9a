"""How big a run is, estimated before anything is built, and the limits it must stay within.

A scenario is a few lines of YAML, but ``rate_rps: 1e9`` or ``metrics_interval_s: 1e-9`` asks
for a run that would eat the machine: billions of requests, or time-series arrays of many GiB.
:func:`estimate` counts what a run will create from the scenario alone (arithmetic only: it
never materialises a pod list or reads more than a replay file's size), and :func:`check`
refuses a run over any limit of :mod:`istiolab.limits` with an ``IL402`` finding that states the
estimate, the limit and how to proceed. ``force=True`` (``--force`` on the command line) lifts
the limits that only cost time; the ones that cost memory stay.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from istiolab import limits
from istiolab.errors import ConfigError
from istiolab.findings import Finding, finding
from istiolab.sim.scenario import Scenario, VersionSpec
from istiolab.sim.workload import ArrivalSpec

__all__ = ["SIM_MAX_IN_FLIGHT", "Budget", "check", "estimate"]

SIM_MAX_IN_FLIGHT: int = int(os.environ.get("ISTIOLAB_MAX_SIM_IN_FLIGHT", "200000"))
"""Most requests in flight at once in the SimPy engine (docs/limits.md, "Requests in flight").

An overloaded run's queue grows without bound, and every request in flight holds its own
objects (its generator, request, outcome and events: about 3 KiB measured), so 200 000 cost
about 0.6 GiB. Arrivals beyond the limit are refused, never silently lost: they are counted in
``totals.rejected`` and ``totals.unfinished`` with an ``in_flight_limit`` warning. Only a
saturated run reaches it; its answer is "not enough capacity" long before. The engine reads the
constant at the start of each run, so it can be set from Python (``budget.SIM_MAX_IN_FLIGHT``).
"""


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a run creates, estimated before it starts.

    Attributes:
        requests: Expected arrivals over the whole run (warm-up included), summed over the
            traffic sources: the mean rate times the duration (the peak rate for schedules).
        intervals: Time-series buckets (duration over the metrics interval).
        pods: Backend pods over every service and version, before any scaling.
        max_pods: Backend pods if every autoscaler reaches its maximum.
        gateway_pods: Ingress gateway pods.
        users: Session users over every traffic source.
        source_ips: Client source IPs over every traffic source.
    """

    requests: int
    intervals: int
    pods: int
    max_pods: int
    gateway_pods: int
    users: int
    source_ips: int


def _arrivals(spec: ArrivalSpec, duration_s: float, base_dir: str | None) -> float:
    if spec.kind in ("poisson", "constant", "diurnal"):
        return float(spec.rate_rps or 0.0) * duration_s
    if spec.kind == "schedule":
        peak = max((s.rate_rps for s in spec.steps or ()), default=0.0)
        return float(peak) * duration_s
    if spec.timestamps_s is not None:
        return float(len(spec.timestamps_s))
    # A replay file: one arrival per line at most; its size bounds the count without reading it.
    path = Path(spec.file or "")
    if not path.is_absolute() and base_dir:
        path = Path(base_dir) / path
    try:
        return float(path.stat().st_size) / 2  # the shortest line is "0\n"
    except OSError:
        return 0.0  # the run itself reports the unreadable file


def _version_pods(v: VersionSpec, n_azs: int) -> int:
    rpa = v.replicas_per_az
    if rpa is None:
        return v.replicas or 0
    if isinstance(rpa, int):
        return rpa * n_azs
    return sum(rpa.values())


_HUGE = 10**18
"""Counts past this are reported as this: 1e308 s × 400 rps is infinite as a float."""


def _count(x: float) -> int:
    # inf and NaN both fail the comparison, so they count as huge (math.ceil would raise)
    return math.ceil(x) if x < _HUGE else _HUGE


def estimate(scenario: Scenario) -> Budget:
    """Count what a run of *scenario* creates, without building anything."""
    run = scenario.run
    ing = scenario.ingress
    n_azs = len(ing.azs)
    if ing.gateway_replicas is not None:
        gateway_pods = ing.gateway_replicas
    else:
        npa = ing.nodes_per_az
        nodes = npa * n_azs if isinstance(npa, int) else sum(npa.values())
        gateway_pods = nodes * ing.pods_per_node
    pods = max_pods = 0
    for svc in scenario.services:
        for v in svc.versions:
            n = _version_pods(v, n_azs)
            pods += n
            max_pods += max(n, v.autoscale.max_replicas) if v.autoscale else n
    return Budget(
        requests=_count(
            math.fsum(
                _arrivals(t.arrival, run.duration_s, scenario.base_dir) for t in scenario.traffic
            )
        ),
        intervals=_count(run.duration_s / run.metrics_interval_s),
        pods=pods,
        max_pods=max_pods,
        gateway_pods=gateway_pods,
        users=sum(t.sessions.users for t in scenario.traffic if t.sessions),
        source_ips=sum(t.source_ips for t in scenario.traffic),
    )


# (what, Budget field, limit name in istiolab.limits, fix, lifted by force)
_RULES: tuple[tuple[str, str, str, str, bool], ...] = (
    (
        "requests",
        "requests",
        "SIM_MAX_REQUESTS",
        "shorten run.duration_s or lower the rates (a rate scaled down with the pods keeps "
        "utilisation), or pass --force to run it anyway",
        True,
    ),
    (
        "time-series intervals",
        "intervals",
        "SIM_MAX_INTERVALS",
        "raise run.metrics_interval_s or shorten run.duration_s",
        False,
    ),
    ("backend pods", "max_pods", "SIM_MAX_PODS", "lower replicas or autoscale.max_replicas", False),
    ("gateway pods", "gateway_pods", "SIM_MAX_PODS", "lower nodes_per_az or pods_per_node", False),
    ("session users", "users", "SIM_MAX_USERS", "lower sessions.users", False),
    ("source IPs", "source_ips", "SIM_MAX_USERS", "lower traffic[].source_ips", False),
)


def check(scenario: Scenario, *, force: bool = False) -> Budget:
    """Refuse a run over the limits, before anything is built.

    Args:
        scenario: The scenario about to run.
        force: Lift the limits that only cost time (the number of requests).

    Returns:
        The estimate, when the run is within the limits.

    Raises:
        ConfigError: One ``IL402`` finding per limit exceeded, with the estimate.
    """
    budget = estimate(scenario)
    problems: list[Finding] = []
    for what, field, limit_name, fix, lifted in _RULES:
        value = getattr(budget, field)
        limit = getattr(limits, limit_name)
        if value > limit and not (force and lifted):
            problems.append(
                finding(
                    "IL402",
                    f"Scenario {scenario.name}",
                    field,
                    f"the run would create about {value:,} {what}, over the limit of "
                    f"{limit:,} ({limit_name} in docs/limits.md)",
                    fix,
                )
            )
    if problems:
        raise ConfigError(problems)
    return budget
