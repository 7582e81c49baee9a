"""Honest accounting of a run: what did not finish, how busy each tier was, what to distrust.

Both engines end a run by calling :func:`finish` on the :class:`~istiolab.sim.results.Result`
their metrics built. It adds to ``result.meta``:

* to ``totals``: ``unfinished`` (requests that arrived after the warm-up and had not completed
  when the run stopped, the ones the in-flight limit refused included), ``rejected`` (arrivals
  refused by :data:`istiolab.sim.budget.SIM_MAX_IN_FLIGHT`), ``in_flight_expected`` (the number
  a steady state holds in flight, Little's L = λW, from the completed requests),
  ``unfinished_excess`` (unfinished beyond what a steady state explains: L + 4√(L(L+1)) + 1
  for a stable run, L + 3√L + 1 for an unstable one, whose L grows with the run),
  ``success_ratio_incl_unfinished`` (successes over completed plus excess unfinished requests:
  what a success objective should be held against), ``rho`` (tier → utilisation, a time
  integral over the measured window) and ``queues`` (tier → utilisation, waiting probability,
  mean wait in queue, servers);
* ``warnings``: a list of ``{code, message}`` (:data:`WARNING_CODES`);
* ``assumptions``: the defaults and calibration costs the answer rests on
  (:func:`assumptions`).

Why the excess and not every unfinished request: a healthy run stopped at any instant has about
λW requests in flight (Little's law), a few hundred at 4 000 req/s and 50 ms; they are not
failures. An overloaded run's queue grows without bound, and its excess grows with the run.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from istiolab.envoy.model import RouteTable
    from istiolab.sim.results import Result
    from istiolab.sim.scenario import Scenario

__all__ = [
    "RHO_HIGH",
    "RHO_UNSTABLE",
    "WARNING_CODES",
    "TierAccount",
    "assumptions",
    "event_marks",
    "finish",
    "warning",
]

RHO_UNSTABLE: Final = 0.98
"""A tier busier than this over the window is saturated: its queue does not settle."""

RHO_HIGH: Final = 0.85
"""A plan whose answer runs a tier above this gets a ``high_rho`` warning."""

MIN_TAIL_SAMPLES: Final = 10
"""Fewer requests than this beyond a quantile make it an extrapolation (``short_run``)."""

WARNING_CODES: Final[dict[str, str]] = {
    "unstable": "a tier is saturated (ρ ≥ 0.98) or the number of requests in flight grew "
    "through the run: the queue does not settle, so latency figures depend on the run length",
    "unfinished": "more requests were still in flight at the end than a steady state holds; "
    "the latency of the completed ones is only a lower bound",
    "in_flight_limit": "arrivals were refused because SIM_MAX_IN_FLIGHT requests were in flight "
    "(memory bound, docs/limits.md); they count as unfinished",
    "short_run": "too few requests for the p99 (fewer than 10 beyond it)",
    "short_warmup": "the warm-up is shorter than the relaxation time of the busiest tier",
    "degenerate": "the run completed no request after the warm-up, or its figures are NaN",
    "high_rho": "the plan's answer runs a tier at ρ ≥ 0.85: little headroom for bursts",
    "bare_ms": "a distribution's time was written as a bare number, which is taken as "
    "milliseconds (write the unit: 40ms, 0.04s)",
}
"""Every warning code :func:`finish` and the planner emit, with what it means (docs/outputs.md)."""


def warning(code: str, message: str) -> dict[str, str]:
    """One warning entry (``code`` must be in :data:`WARNING_CODES`)."""
    if code not in WARNING_CODES:
        raise ValueError(f"unknown warning code {code!r}")
    return {"code": code, "message": message}


@dataclasses.dataclass
class TierAccount:
    """What one tier's servers did over the measured window.

    Attributes:
        busy_s: Busy server-seconds.
        capacity_s: Server-seconds available (servers × time each was up).
        arrivals: Requests that asked for a server.
        waited: Requests that had to queue.
        wait_s: Total time spent queueing (NaN when the engine does not count waits).
        servers: Servers at the end of the run (for the reader; capacity_s is what counts).
    """

    busy_s: float = 0.0
    capacity_s: float = 0.0
    arrivals: int = 0
    waited: int = 0
    wait_s: float = 0.0
    servers: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """``rho, wait_probability, mean_wait_ms, arrivals, servers`` (NaN when undefined)."""
        rho = self.busy_s / self.capacity_s if self.capacity_s > 0 else math.nan
        known = self.arrivals > 0 and not math.isnan(self.wait_s)  # NaN wait_s: not counted
        return {
            "rho": rho,
            "wait_probability": self.waited / self.arrivals if known else math.nan,
            "mean_wait_ms": 1e3 * self.wait_s / self.arrivals if known else math.nan,
            "arrivals": self.arrivals,
            "servers": self.servers,
        }


def _growing(marks: Sequence[int]) -> bool:
    """In-flight counts at the quarters of the window rise throughout, by a clear margin."""
    if len(marks) < 3:
        return False
    rising = all(b > a for a, b in itertools.pairwise(marks))
    return rising and marks[-1] - marks[0] > max(20, marks[0])


def finish(
    result: Result,
    *,
    started: int,
    rejected: int,
    in_flight_marks: Sequence[int],
    tiers: Mapping[str, TierAccount],
    warmup_s: float,
    assumed: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Add the accounting fields, the warnings and the assumptions to *result* (in place).

    Args:
        result: The run's result; its ``meta["totals"]`` is completed.
        started: Arrivals after the warm-up (refused ones included).
        rejected: Arrivals after the warm-up that the in-flight limit refused.
        in_flight_marks: Requests in flight at the quarters of the measured window (the last at
            the end of the run); a steady rise means the queue grows.
        tiers: Per tier (``lb_targets_max``, ``gateway_workers``, ``backend/<svc>/<version>``):
            what its servers did over the window.
        warmup_s: The warm-up (for ``short_warmup``).
        assumed: The assumptions block (:func:`assumptions`).
        events: The scenario's events (:func:`event_marks`), kept in ``meta["events"]``.
    """
    totals = result.meta["totals"]
    requests = int(totals["requests"])
    window = result.meta["config"]["duration_s"] - warmup_s
    unfinished = max(0, started - requests)
    mean_s = totals["mean_ms"] / 1e3 if requests else 0.0
    expected = (requests / window) * mean_s if window > 0 else 0.0
    queues = {name: tiers[name].as_dict() for name in sorted(tiers)}
    rho = {name: q["rho"] for name, q in queues.items()}
    finite = {k: v for k, v in rho.items() if not math.isnan(v)}
    busiest = max(finite, key=finite.__getitem__) if finite else None
    saturated = busiest is not None and finite[busiest] >= RHO_UNSTABLE
    growing = _growing(in_flight_marks)
    # How many in flight a steady state explains. Near saturation the number in system is
    # about geometric (M/M/1: mean L, sd √(L(L+1))), so a stable run allows L + 4 sd + 1
    # (exceeded with probability about e⁻⁵); an unstable run's W, hence L, grows with the run
    # itself, so it only gets L + 3√L + 1.
    if saturated or growing:
        allowed = expected + 3 * math.sqrt(expected) + 1
    else:
        allowed = expected + 4 * math.sqrt(expected * (expected + 1)) + 1
    excess = max(0, unfinished - math.ceil(allowed))
    ok = round(totals["success_ratio"] * requests) if requests else 0
    denominator = requests + excess
    totals.update(
        {
            "unfinished": unfinished,
            "rejected": rejected,
            "in_flight_expected": expected,
            "unfinished_excess": excess,
            "success_ratio_incl_unfinished": ok / denominator if denominator else math.nan,
            "rho": rho,
            "queues": queues,
        }
    )
    warnings: list[dict[str, str]] = []
    if saturated and busiest is not None:
        warnings.append(
            warning(
                "unstable",
                f"{busiest} ran at ρ = {finite[busiest]:.3f} over the window: it is saturated, "
                "its queue grows for as long as the load lasts; add capacity or lower the load",
            )
        )
    elif growing:
        warnings.append(
            warning(
                "unstable",
                "requests in flight grew through the window "
                f"({' → '.join(str(m) for m in in_flight_marks)}): the system does not settle",
            )
        )
    if excess > 0:
        share = unfinished / started if started else 0.0
        warnings.append(
            warning(
                "unfinished",
                f"{unfinished} of {started} requests that arrived after the warm-up "
                f"({share:.1%}) had not completed at the end, {excess} more than a steady "
                f"state holds in flight (λW ≈ {expected:.0f}); they count against success "
                "objectives (success_ratio_incl_unfinished) and the latency figures are lower "
                "bounds",
            )
        )
    if rejected:
        warnings.append(
            warning(
                "in_flight_limit",
                f"{rejected} arrivals were refused at the in-flight limit "
                "(SIM_MAX_IN_FLIGHT, docs/limits.md); they are counted as unfinished",
            )
        )
    if requests == 0 or any(
        isinstance(totals.get(k), float) and math.isnan(totals[k]) for k in ("p99_ms", "mean_ms")
    ):
        warnings.append(
            warning(
                "degenerate",
                f"{requests} requests completed after the warm-up: no latency or success "
                "figure means anything; check the rates, the durations and the units "
                "(a bare number is milliseconds)",
            )
        )
    elif requests * 0.01 < MIN_TAIL_SAMPLES:
        warnings.append(
            warning(
                "short_run",
                f"only {requests} requests after the warm-up: the p99 rests on "
                f"{requests * 0.01:.1f} values beyond it; run at least "
                f"{100 * MIN_TAIL_SAMPLES} requests (longer, or at a higher rate)",
            )
        )
    if busiest is not None and 0 < finite[busiest] < RHO_UNSTABLE and requests:
        r = finite[busiest]
        # M/M/1 relaxation time 1/(μ(1-√ρ)²), with 1/μ estimated as W(1-ρ) from the mean
        # latency W (Morse 1955; Kleinrock, Queueing Systems I, §2.11): a rough but
        # conservative scale for how long the queue takes to reach its steady state.
        relax = mean_s * (1 - r) / (1 - math.sqrt(r)) ** 2
        if warmup_s < relax:
            warnings.append(
                warning(
                    "short_warmup",
                    f"the warm-up ({warmup_s:g} s) is shorter than the relaxation time of "
                    f"{busiest} at ρ = {r:.2f} (about {relax:.2g} s): the start of the window "
                    "is still filling up; raise run.warmup_s",
                )
            )
    result.meta["warnings"] = warnings
    result.meta["assumptions"] = dict(assumed)
    result.meta["events"] = [dict(e) for e in events]


def event_marks(scenario: Scenario) -> list[dict[str, Any]]:
    """The scenario's events as ``{t_s, kind, target}`` (plots mark them on time axes)."""
    marks = []
    for ev in sorted(scenario.events, key=lambda e: e.at_s):
        target = ev.az or ev.node or "/".join(x for x in (ev.service, ev.version) if x)
        marks.append({"t_s": float(ev.at_s), "kind": ev.kind, "target": target})
    return marks


def assumptions(scenario: Scenario, table: RouteTable, engine: str) -> dict[str, Any]:
    """The defaults and costs a run's answer rests on, with their sources.

    Returns:
        ``profile`` (the Istio profile and its defaults in force: load balancer, retry policy,
        route timeout, connect timeout, back-off), ``clusters`` (per cluster: load balancer,
        and where it came from), ``routes`` (per route: timeout, retries, per-try timeout),
        ``costs`` (gateway CPU and extra latency per request, LB hop, kube-proxy, cross-node
        and cross-AZ latency, each with its source), ``load_balancer`` (AWS LB, cross-zone,
        target type, algorithm), ``connections`` (per traffic source: the connection model)
        and ``engine``.
    """
    from istiolab.profiles import get_profile
    from istiolab.sim.calibration import PROXY_COSTS

    profile = get_profile(table.profile)
    retry = profile.default_retry
    cost = PROXY_COSTS.get(scenario.rules.proxy)
    aws, ingress = scenario.aws, scenario.ingress
    free = "free parameter: AWS publishes no per-hop latency (sim/calibration.py)"

    def dist(spec: Any) -> str:
        built = spec.build()
        mean = f"{built.mean * 1e3:.3g} ms"
        if spec.kind in ("deterministic", "zero"):
            return mean
        return f"{spec.kind}, mean {mean}"

    costs: dict[str, Any] = {
        "gateway_cpu_per_request": {
            "value": dist(ingress.cpu_per_request)
            if ingress.cpu_per_request is not None
            else f"{cost.cpu_ms} ms"
            if cost
            else "?",
            "source": "scenario ingress.cpu_per_request"
            if ingress.cpu_per_request is not None
            else (cost.source if cost else ""),
        },
        "gateway_latency_per_request": {
            "value": dist(ingress.proxy_latency)
            if ingress.proxy_latency is not None
            else f"{cost.latency_ms} ms"
            if cost
            else "?",
            "source": "scenario ingress.proxy_latency"
            if ingress.proxy_latency is not None
            else (cost.source if cost else ""),
        },
        "lb_hop": {"value": dist(aws.lb_latency), "source": free},
        "kube_proxy_hop": {"value": dist(aws.kube_proxy_latency), "source": free},
        "cross_node_hop": {"value": dist(aws.cross_node_latency), "source": free},
        "cross_az_hop": {"value": dist(aws.cross_az_latency), "source": free},
    }
    clusters = {
        name: {"lb": pol.lb, "source": pol.source or f"profile {profile.name} default"}
        for name, pol in sorted(table.clusters.items())
    }
    routes: dict[str, Any] = {}
    for vh in table.virtual_hosts:
        for r in vh.routes:
            rp = r.retry
            routes[r.name] = {
                "timeout_s": r.timeout_s,
                "retries": rp.num_retries if rp is not None else 0,
                "retry_on": list(rp.retry_on) if rp is not None else [],
                "per_try_timeout_s": rp.per_try_timeout_s if rp is not None else None,
            }
    return {
        "engine": engine,
        "profile": {
            "name": profile.name,
            "proxy_cost_model": scenario.rules.proxy,
            "default_lb": profile.default_lb,
            "default_route_timeout_s": profile.default_route_timeout_s,
            "default_retry": None
            if retry is None
            else {"attempts": retry.num_retries, "retry_on": list(retry.retry_on)},
            "connect_timeout_s": profile.connect_timeout_s,
            "backoff_base_s": profile.backoff_base_s,
            "backoff_max_s": profile.backoff_max_s,
        },
        "clusters": clusters,
        "routes": routes,
        "costs": costs,
        "load_balancer": {
            "lb": aws.lb,
            "cross_zone": aws.cross_zone_enabled,
            "target_type": aws.target_type,
            "external_traffic_policy": aws.external_traffic_policy,
            "alb_algorithm": aws.alb_algorithm if aws.lb == "alb" else None,
            "gateway_workers": ingress.concurrency,
            "gateway_lb_state": "per Envoy worker (each worker its own round-robin index)",
        },
        "connections": {
            t.name: {
                "mode": t.connections.mode,
                "pool_size": t.connections.pool_size if t.connections.mode == "keepalive" else None,
                "lifetime_s": t.connections.lifetime_s,
                # the client model (traffic[].client), None for the idealised client
                "client": t.client.model_dump(mode="json") if t.client is not None else None,
            }
            for t in scenario.traffic
        },
        "failures": {
            "endpoint_delay_s": {s.name: s.endpoint_delay_s for s in scenario.services},
            "dead_pod": "a crashed pod refuses connections (503 UF) until it leaves the "
            "endpoints after endpoint_delay_s; a pod whose node is gone times out after the "
            "cluster's connect timeout (503 UF)",
        },
    }


def describe(assumed: Mapping[str, Any]) -> str:
    """The assumptions as one short paragraph (``istiolab simulate`` prints it)."""
    if not assumed:
        return ""
    p = assumed["profile"]
    lbs = sorted({c["lb"] for c in assumed["clusters"].values()})
    retry = p["default_retry"]
    costs = assumed["costs"]
    lb = assumed["load_balancer"]
    conns = sorted({c["mode"] for c in assumed["connections"].values()})
    default = "none" if retry is None else f"{retry['attempts']} on {','.join(retry['retry_on'])}"
    routes = assumed.get("routes", {})
    in_force = sorted(
        {
            f"{r['retries']} retries"
            + (f" per try {_seconds(r['per_try_timeout_s'])}" if r["per_try_timeout_s"] else "")
            + f", timeout {_seconds(r['timeout_s'])}"
            for r in routes.values()
        }
    )
    return (
        f"Assumptions: Istio profile {p['name']} (upstream LB {', '.join(lbs) or p['default_lb']}; "
        f"routes: {'; '.join(in_force) or '-'}; profile default retries {default}"
        f", route timeout {_seconds(p['default_route_timeout_s'])}; connect timeout "
        f"{p['connect_timeout_s']:g} s). Gateway cost per request: CPU "
        f"{costs['gateway_cpu_per_request']['value']}, latency "
        f"{costs['gateway_latency_per_request']['value']} ({p['proxy_cost_model']}, from "
        f"istio.io performance data); LB hop {costs['lb_hop']['value']}, cross-AZ "
        f"{costs['cross_az_hop']['value']} (free parameters). AWS {lb['lb']}, cross-zone "
        f"{'on' if lb['cross_zone'] else 'off'}, {lb['target_type']} targets, "
        f"{lb['gateway_workers']} gateway workers, LB state {lb['gateway_lb_state']}. "
        f"Connections: {', '.join(conns)}. Client: {_clients(assumed['connections'])}. "
        f"Engine {assumed['engine']}."
    )


def _clients(connections: Mapping[str, Any]) -> str:
    """The client models in force, in words (sim/workload.py ClientSpec)."""
    seen = []
    for c in connections.values():
        m = c.get("client")
        if m is None:
            text = "idealised (no timeout; a dead zone is left at once)"
        else:
            r = m["retries"]
            text = (
                f"timeout {m['timeout_s']:g} s, connect timeout {m['connect_timeout_s']:g} s, "
                f"{r['attempts']} attempt(s), DNS cached {m['dns_ttl_s']:g} s"
            )
        if text not in seen:
            seen.append(text)
    return "; ".join(seen)


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g} s"
