"""The verify run: one sandbox, every case and check through it, the report filled in."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from istiolab.envoy.match import Decision, effective_rate_limit
from istiolab.envoy.model import (
    MILLION,
    FaultPolicy,
    RateLimit,
    RetryPolicy,
    Route,
    RouteTable,
)
from istiolab.envoy.policy import backoff_bound, retries_on_status, retries_on_timeout
from istiolab.envoy.sandbox import BackendBehaviour, EnvoySandbox, Reply
from istiolab.envoy.verify.cases import Case
from istiolab.envoy.verify.harness import (
    SandboxFactory,
    _default_factory,
    _observed,
    _wire,
    backend_specs,
    sandbox_render,
)
from istiolab.envoy.verify.outcomes import _effective_random, _model_vs_case, model_outcomes
from istiolab.envoy.verify.report import VerifyReport
from istiolab.envoy.verify.stats import _z, expected_attempts, wilson_interval
from istiolab.profiles import get_profile

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["verify"]

TIMING_TOLERANCE_S = 0.05
"""How much later than configured a delay or timeout may complete (client-measured)."""
TIMING_EARLY_S = 0.010
"""How much earlier than configured a delay or timeout may complete.

Envoy's timers can fire a few milliseconds early when its event loop is busy (seen: a 40 ms
fault delay answered after 34 ms with 16 requests in flight): libevent schedules a timer from
the time cached at the start of the loop iteration.
"""
RETRY_FAIL_PROBABILITY = 0.3
"""Failure probability of the flaky backend used for the stochastic retry check."""
MAX_WAIT_S = 3.0
"""Timeout checks that would take longer than this per request are skipped (e.g. 0.2's 15 s)."""
_DELAY_SAMPLE = 8  # requests used to time a 100 % fault delay
CONFIRM_FACTOR = 4
"""A route whose fraction falls outside its interval, or whose fault delay, timeout or rate
limit is timed outside its tolerance, is measured again on this many times the requests
(bursts); that sample decides each check that missed (see ``_Verifier._confirmed``)."""
_BURST_EXTRA = 10  # requests beyond max_tokens in a rate-limit burst


def _enforced(rl: RateLimit | None) -> bool:
    return rl is not None and rl.enabled_per_million > 0 and rl.enforced_per_million > 0


class _Verifier:
    def __init__(
        self,
        table: RouteTable,
        sb: EnvoySandbox,
        report: VerifyReport,
        requests: int,
        confidence: float,
        concurrency: int,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.table = table
        self.progress = progress
        self.sb = sb
        self.report = report
        self.n = requests
        self.confidence = confidence
        self.z = _z(confidence)
        self.concurrency = concurrency
        self.formula = get_profile(table.profile).backoff_formula if table.profile else "source"

    # -- helpers ---------------------------------------------------------------------

    def bucket(self, r: Route | None) -> RateLimit | None:
        return effective_rate_limit(self.table.rate_limit, r)

    def send(self, wire: Mapping[str, Any], r: Route | None, timeout_s: float = 30.0) -> Reply:
        """Send one request; a local rate limit's 429 is waited out (up to three times)."""
        b = self.bucket(r)
        for _ in range(4):
            self.report.requests_sent += 1
            reply = self.sb.send(
                wire["path"],
                method=wire["method"],
                host=wire["host"],
                headers=wire["headers"],
                timeout_s=timeout_s,
            )
            if b is None or not _enforced(b) or "RL" not in reply.flags:
                return reply
            time.sleep(b.fill_interval_s / max(b.tokens_per_fill, 1) + 0.02)
        return reply

    def load(self, wire: Mapping[str, Any], n: int, concurrency: int) -> pd.DataFrame:
        self.report.requests_sent += n
        return self.sb.load([dict(wire)] * n, concurrency=concurrency)

    def skip(self, case: str, reason: str) -> None:
        self.report.skipped.append({"case": case, "reason": reason})

    def fraction(self, case: str, metric: str, expected: float, k: int, n: int) -> None:
        lo, hi = wilson_interval(k, n, self.confidence)
        # A certainty (0 or 1) must hold for every request.
        ok = k == round(expected * n) if expected in (0.0, 1.0) else lo <= expected <= hi
        self.report.stochastic.append(
            {
                "case": case,
                "metric": metric,
                "expected_fraction": round(expected, 6),
                "envoy_fraction": round(k / n, 6) if n else None,
                "n": n,
                "interval": [round(lo, 6), round(hi, 6)],
                "ok": ok,
            }
        )

    def stat_sum(self, stats: Mapping[str, int], clusters: Iterable[str], name: str) -> int:
        return sum(stats.get(f"cluster.{c}.{name}", 0) for c in clusters)

    # -- rate limits -----------------------------------------------------------------

    def rate_limits(self, plan: list[tuple[Case, Decision, int | None]]) -> None:
        buckets: list[tuple[RateLimit, Case]] = []
        if self.table.rate_limit is not None and plan:
            # A request the gateway bucket applies to: one whose route has no bucket of its own.
            for case, d, _ in plan:
                if d.route is None or d.route.rate_limit is None:
                    buckets.append((self.table.rate_limit, case))
                    break
        seen: set[int] = set()
        for case, d, _ in plan:
            r = d.route
            if r is not None and r.rate_limit is not None and id(r) not in seen:
                seen.add(id(r))
                buckets.append((r.rate_limit, case))
        for b, case in buckets:
            label = f"{case.name} [rate limit {b.scope} {b.source}]"
            if not (
                b.enabled_per_million in (0, MILLION) and b.enforced_per_million in (0, MILLION)
            ):
                self.skip(label, "filter_enabled/filter_enforced is a fraction: not checked")
                continue
            # A burst and a refill are timed by the client: a stall of this machine (not of
            # Envoy) can move them, so a miss is measured again CONFIRM_FACTOR times, and every
            # one of those must agree
            self._confirmed(
                label, functools.partial(self._bursts, b, case, label), self.report.counts
            )

    def _bursts(self, b: RateLimit, case: Case, label: str, scale: int) -> None:
        for _ in range(scale):
            self._burst(b, case, label)

    def _burst(self, b: RateLimit, case: Case, label: str) -> None:
        """Empty the bucket in one burst, see half a fill interval's refill, let it fill up."""
        wire = _wire(case.request, None)
        n = b.max_tokens + _BURST_EXTRA
        df = self.load(wire, n, concurrency=min(32, n))  # as fast as possible
        # The burst's span: first request sent to last answer received.
        elapsed = float((df["t_start"] + df["duration_s"]).max() - df["t_start"].min())
        limited = int(((df["status"] == b.status) & df["flags"].str.contains("RL")).sum())
        passed = n - limited
        if not _enforced(b):
            self.report.counts.append(
                {
                    "case": label,
                    "metric": "rate_limit_burst",
                    "expected": n,
                    "envoy": passed,
                    "detail": "filter not enforced (0 %): every request passes",
                    "ok": passed == n,
                }
            )
            return
        fills = math.ceil(elapsed / b.fill_interval_s) * b.tokens_per_fill
        self.report.counts.append(
            {
                "case": label,
                "metric": "rate_limit_burst",
                "expected": b.max_tokens,
                "envoy": passed,
                "detail": (
                    f"burst of {n} in {elapsed * 1000:.0f} ms: {passed} passed, {limited} got "
                    f"{b.status} RL (allowed up to {fills} refilled tokens during the burst)"
                ),
                "ok": b.max_tokens <= passed <= b.max_tokens + fills,
            }
        )
        # How the bucket refills: Envoy 1.40 adds one token every fill_interval/tokens_per_fill
        # (istiolab.envoy.policy.TokenBucket); half an interval after emptying it, about half
        # of tokens_per_fill pass (external truths item 12's all-at-once refill would pass 0
        # or tokens_per_fill).
        if b.tokens_per_fill > 1 and b.fill_interval_s <= 2.0:
            time.sleep(b.fill_interval_s / 2)
            df2 = self.load(wire, b.tokens_per_fill + _BURST_EXTRA, concurrency=8)
            got = int((df2["status"] != b.status).sum())
            self.report.counts.append(
                {
                    "case": label,
                    "metric": "rate_limit_refill",
                    "expected": b.tokens_per_fill // 2,
                    "envoy": got,
                    "detail": (
                        f"half a fill interval ({b.fill_interval_s / 2:.3g} s) after emptying the "
                        f"bucket: a continuous refill of {b.tokens_per_fill} per "
                        f"{b.fill_interval_s:g} s passes about {b.tokens_per_fill // 2} "
                        "(allowing the sleep's overshoot and the burst's own duration)"
                    ),
                    # Refill during the half interval plus what trickles in during the burst
                    # (at most ~30 % of the interval on a loaded machine).
                    "ok": max(1, b.tokens_per_fill // 2 - 1)
                    <= got
                    <= math.ceil(b.tokens_per_fill * 0.8) + 1,
                }
            )
        # Let the bucket fill up again for the checks that follow.
        time.sleep(math.ceil(b.max_tokens / b.tokens_per_fill) * b.fill_interval_s + 0.05)

    # -- deterministic ---------------------------------------------------------------

    def deterministic(self, plan: list[tuple[Case, Decision, int | None]]) -> None:
        for case, d, rv in plan:
            self.report.cases += 1
            model = model_outcomes(d, case.request)
            mismatch = _model_vs_case(case, d)
            reply = self.send(_wire(case.request, rv), d.route)
            seen = _observed(reply)
            envoy_ok = any(o.satisfied_by(seen) for o in model)
            expected = " | ".join(o.text() for o in model)
            self.report.results.append(
                {
                    "case": case.name,
                    "expected": expected,
                    "envoy": seen.text(),
                    "agree": envoy_ok and not mismatch,
                }
            )
            if envoy_ok and not mismatch:
                self.report.agree += 1
                continue
            entry = {
                "case": case.name,
                "expected": "; ".join(mismatch) if mismatch else expected,
                "envoy": seen.text(),
                "model": expected,
                "request": _wire(case.request, rv),
            }
            self.report.disagree.append(entry)

    # -- stochastic ------------------------------------------------------------------

    def stochastic(self, plan: list[tuple[Case, Decision, int | None]]) -> None:
        done: set[int] = set()
        for case, d, _ in plan:
            r = d.route
            if r is None or id(r) in done or not r.clusters:
                continue
            done.add(id(r))
            f = r.fault
            split = len(r.clusters) > 1
            abort = f is not None and f.abort_status is not None and f.abort_per_million > 0
            delay = f is not None and f.delay_s is not None and f.delay_per_million > 0
            if not (split or abort or delay):
                continue
            if _enforced(self.bucket(r)):
                self.skip(case.name, "a local rate limit applies: fractions not measured")
                continue
            if f is not None and f.abort_per_million >= MILLION:
                continue  # every request aborts: the deterministic check covers it
            # the first sample's misrouted requests are observations, not chance; its fractions
            # and its delay's timing (client-measured: a stall of this machine moves it) are
            # measured again when one misses
            measure = functools.partial(
                self._measure_route, case, r, f, split=split, abort=abort, delay=delay
            )
            self._confirmed(case.name, measure, self.report.stochastic, self.report.timing)

    def _confirmed(
        self, what: str, measure: Callable[..., None], *entries: list[dict[str, Any]]
    ) -> None:
        """``measure(scale=1)``; again with ``scale=CONFIRM_FACTOR`` if an entry it adds misses.

        A fraction outside its interval happens to 1 - confidence of them with a rule Envoy
        follows. A fresh sample CONFIRM_FACTOR times as large decides each check that missed
        (its first entries in *entries* are dropped; its requests stay counted as sent), so a
        correct rule is reported as disagreeing with probability about (1 - confidence)^2, and
        a real difference is tested with more requests than the first sample had. A chance
        check (see ``_chance``) the first sample passed stands, with that sample's entry. A
        timed check (a delay, a timeout, a burst) misses when this machine stalls, and a
        certainty (a fraction of 0 or 1) must hold for every request: those are always decided
        again, every one of the CONFIRM_FACTOR times as many timings or requests agreeing.

        The second sample can take many times the first's time (a 3 s timeout's is 24 s more),
        so *progress* hears of it before it starts, naming *what* is measured again.
        """
        marks = [len(table) for table in entries]
        measure(scale=1)
        if all(e["ok"] for table, m in zip(entries, marks, strict=True) for e in table[m:]):
            return
        # A chance check the first sample passed stands: were it decided again because a timed
        # check beside it missed (a stall), a correct rule would be reported at 1 - confidence,
        # not (1 - confidence)**2. (A certainty, 0 or 1, is no chance: a miss is a miss.)
        stands = [
            {(e["case"], e["metric"]): e for e in table[m:] if _chance(e) and e["ok"]}
            for table, m in zip(entries, marks, strict=True)
        ]
        for table, m in zip(entries, marks, strict=True):
            del table[m:]
        if self.progress is not None:
            self.progress(
                f"{what}: a check fell outside its interval or tolerance; measuring it again "
                f"on {CONFIRM_FACTOR}x the requests"
            )
        measure(scale=CONFIRM_FACTOR)
        for table, m, passed in zip(entries, marks, stands, strict=True):
            for i in range(m, len(table)):
                first = passed.pop((table[i]["case"], table[i]["metric"]), None)
                if first is not None and _chance(table[i]):
                    table[i] = first
                else:
                    table[i]["confirmation"] = True

    def _measure_route(
        self,
        case: Case,
        r: Route,
        f: FaultPolicy | None,
        *,
        split: bool,
        abort: bool,
        delay: bool,
        scale: int,
    ) -> None:
        """Send one sample of a route's requests and check its fractions and delays.

        A confirmation sample (*scale* > 1) checks the fractions and the delay's timing again;
        the first sample's misrouted requests were recorded already (they are not chance).
        """
        confirming = scale > 1
        n = self.n * scale
        if delay and f is not None and f.delay_per_million >= MILLION and not split and not abort:
            n = _DELAY_SAMPLE * scale
        df = self.load(_wire(case.request, None), n, concurrency=self.concurrency)
        flags = df["flags"].fillna("")
        aborted = (df["status"] == (f.abort_status if abort and f else -1)) & flags.str.contains(
            "FI"
        )
        if abort and f is not None:
            self.fraction(case.name, "abort", f.abort_per_million / MILLION, int(aborted.sum()), n)
        if delay and f is not None and f.delay_s is not None:
            delayed = flags.str.contains("DI")
            self.fraction(case.name, "delay", f.delay_per_million / MILLION, int(delayed.sum()), n)
            times = df.loc[delayed, "duration_s"]
            if len(times):
                med = float(times.median())
                low = float(times.min())
                self.report.timing.append(
                    {
                        "case": case.name,
                        "metric": "fault_delay",
                        "expected_s": f.delay_s,
                        "envoy_s": round(med, 4),
                        "min_s": round(low, 4),
                        "tolerance_s": [-TIMING_EARLY_S, TIMING_TOLERANCE_S],
                        "ok": low >= f.delay_s - TIMING_EARLY_S
                        and med <= f.delay_s + TIMING_TOLERANCE_S,
                    }
                )
        served = df[~aborted]
        if split and len(served):
            total = r.total_weight
            for c in r.clusters:
                k = int((served["backend"] == c.name).sum())
                self.fraction(case.name, f"weight {c.name}", c.weight / total, k, len(served))
            other = int((~served["backend"].isin([c.name for c in r.clusters])).sum())
            if other and not confirming:
                self.report.disagree.append(
                    {
                        "case": case.name,
                        "expected": "one of " + ", ".join(c.name for c in r.clusters),
                        "envoy": f"{other} of {len(served)} answered elsewhere",
                        "model": "weighted split",
                    }
                )

    # -- retries ---------------------------------------------------------------------

    def retries(self, plan: list[tuple[Case, Decision, int | None]]) -> None:
        done: set[int] = set()
        measured: set[RetryPolicy] = set()
        for case, d, _ in plan:
            r = d.route
            if r is None or id(r) in done or not r.clusters or r.retry is None:
                continue
            done.add(id(r))
            f = r.fault
            if f is not None and (f.abort_per_million or f.delay_per_million):
                self.skip(case.name, "retries not measured on a route with fault injection")
                continue
            names = [c.name for c in r.clusters]
            pol = r.retry
            backoff = sum(
                backoff_bound(pol, k, self.formula) for k in range(1, pol.num_retries + 1)
            )
            if retries_on_status(pol, 503) and r.timeout_s and backoff + 0.05 >= r.timeout_s:
                self.skip(
                    case.name,
                    f"the route timeout ({r.timeout_s:g} s) may cut {pol.num_retries} retries "
                    f"short (back-off up to {backoff:g} s): retries of 503 not measured",
                )
                continue
            try:
                self.retry_exhaust(case, r, names)
                # Stochastic (item 10): once per distinct policy that retries a 503.
                if retries_on_status(r.retry, 503) and r.retry not in measured:
                    if _enforced(self.bucket(r)):
                        self.skip(case.name, "a local rate limit applies: retries not sampled")
                    else:
                        measured.add(r.retry)
                        sample = functools.partial(self.retry_sample, case, r, names)
                        self._confirmed(
                            f"{case.name} [retries]",
                            sample,
                            self.report.stochastic,
                            self.report.counts,
                        )
            finally:
                for c in names:
                    self.sb.set_behaviour(c, BackendBehaviour())

    def upstream_requests(self, names: Sequence[str], run: Callable[[], Any]) -> tuple[Any, int]:
        before = self.sb.stats()
        result = run()
        after = self.sb.stats()
        total = "upstream_rq_total"
        return result, self.stat_sum(after, names, total) - self.stat_sum(before, names, total)

    def retry_exhaust(self, case: Case, r: Route, names: Sequence[str]) -> None:
        """Every endpoint fails its first n + 1 requests with 503: n + 1 tries, or 1."""
        pol = r.retry
        assert pol is not None
        n = pol.num_retries
        retried = retries_on_status(pol, 503)
        if n > 5:
            self.skip(case.name, f"{n} retries: the 503 retry count is not checked")
            return
        for c in names:
            self.sb.set_behaviour(c, BackendBehaviour(fail_first=n + 1))
        reply, tries = self.upstream_requests(
            names, lambda: self.send(_wire(case.request, None), r)
        )
        want = n + 1 if retried else 1
        self.report.counts.append(
            {
                "case": case.name,
                "metric": "retry_attempts_503",
                "expected": want,
                "envoy": tries,
                "detail": (
                    f"backend fails its first {n + 1} requests with 503; retry_on "
                    f"{','.join(pol.retry_on)} codes {list(pol.retriable_status_codes)} "
                    f"{'retries' if retried else 'does not retry'} 503; client got "
                    f"{reply.status} {reply.flags}"
                ),
                "ok": tries == want and reply.status == 503,
            }
        )

    def retry_sample(self, case: Case, r: Route, names: Sequence[str], scale: int = 1) -> None:
        """A backend failing with probability p: success rate and tries per request (item 10)."""
        pol = r.retry
        assert pol is not None
        p = RETRY_FAIL_PROBABILITY
        for c in names:
            self.sb.set_behaviour(c, BackendBehaviour(fail_probability=p))
        cb = min(
            (self.table.clusters[c].max_retries for c in names if c in self.table.clusters),
            default=3,
        )
        conc = max(1, min(4, cb))  # keep concurrent retries under the max_retries breaker
        wire = _wire(case.request, None)
        size = self.n * scale
        df, tries = self.upstream_requests(names, lambda: self.load(wire, size, conc))
        n = pol.num_retries
        mean, var = expected_attempts(p, n)
        k = int((df["status"] == 200).sum())
        self.fraction(case.name, "retry_success", 1 - p ** (n + 1), k, size)
        half = self.z * math.sqrt(var / size)
        seen = tries / size
        self.report.counts.append(
            {
                "case": case.name,
                "metric": "retry_upstream_per_request",
                "expected": round(mean, 4),
                "envoy": round(seen, 4),
                "interval": [round(seen - half, 4), round(seen + half, 4)],
                "detail": (
                    f"backend fails with p={p}, {n} retries: (1 - p^{n + 1})/(1 - p) upstream "
                    f"requests per request"
                ),
                "ok": abs(seen - mean) <= half,
            }
        )

    # -- timeouts --------------------------------------------------------------------

    def timeouts(self, plan: list[tuple[Case, Decision, int | None]]) -> None:
        done: set[int] = set()
        for case, d, _ in plan:
            r = d.route
            if r is None or id(r) in done or not r.clusters:
                continue
            done.add(id(r))
            route_t = r.timeout_s
            pol = r.retry
            per_try = pol.per_try_timeout_s if pol is not None else None
            if not route_t and not per_try:
                continue
            f = r.fault
            if f is not None and (f.abort_per_million or f.delay_per_million):
                self.skip(case.name, "timeouts not measured on a route with fault injection")
                continue
            tries = 1
            if per_try and pol is not None and retries_on_timeout(pol):
                tries = pol.num_retries + 1
            min_tries = tries
            if per_try and (not route_t or per_try < route_t):
                assert pol is not None
                lower = tries * per_try
                upper = lower + sum(backoff_bound(pol, k, self.formula) for k in range(1, tries))
                if route_t and upper > route_t:
                    # The route timeout cuts the tries short (it includes back-off).
                    min_tries = max(
                        1, math.ceil(route_t / (per_try + backoff_bound(pol, tries, self.formula)))
                    )
                    tries = min(tries, math.ceil(route_t / per_try))
                    lower, upper = min(lower, route_t), route_t
            else:
                assert route_t is not None
                lower = upper = route_t
                tries = min_tries = 1
            if upper > MAX_WAIT_S:
                self.skip(
                    case.name, f"timeout of {upper:g} s not measured (limit {MAX_WAIT_S:g} s)"
                )
                continue
            names = [c.name for c in r.clusters]
            try:
                for c in names:
                    self.sb.set_behaviour(c, BackendBehaviour(delay_s=upper + 1.0))
                # timed by the client: a miss (a stall of this machine, or of Envoy's loop) is
                # measured again on CONFIRM_FACTOR times the requests, which all must agree
                measure = functools.partial(
                    self._timeout_sample, case, r, names, (lower, upper), (min_tries, tries)
                )
                self._confirmed(f"{case.name} [timeout]", measure, self.report.timing)
            finally:
                for c in names:
                    self.sb.set_behaviour(c, BackendBehaviour())

    def _timeout_sample(
        self,
        case: Case,
        r: Route,
        names: Sequence[str],
        bounds: tuple[float, float],
        try_range: tuple[int, int],
        scale: int,
    ) -> None:
        """Time 2 x *scale* requests against backends slower than every timeout of *r*."""
        lower, upper = bounds
        min_tries, tries = try_range
        pol = r.retry
        per_try = pol.per_try_timeout_s if pol is not None else None
        for i in range(2 * scale):
            before = self.sb.stats()
            reply = self.send(_wire(case.request, None), r, timeout_s=upper + 5.0)
            after = self.sb.stats()
            n_tries = self.stat_sum(after, names, "upstream_rq_total") - self.stat_sum(
                before, names, "upstream_rq_total"
            )
            took = reply.duration_s
            # Each try's timer and connection set-up can slip on a loaded machine, so the
            # late tolerance grows with the number of tries.
            late = TIMING_TOLERANCE_S * max(1, n_tries)
            self.report.timing.append(
                {
                    "case": case.name,
                    "metric": "timeout",
                    "expected_s": [round(lower, 4), round(upper, 4)],
                    "envoy_s": round(took, 4),
                    "tolerance_s": [-TIMING_EARLY_S, round(late, 4)],
                    "detail": (
                        f"request {i + 1}: backend slower than every timeout; route "
                        f"timeout {r.timeout_s}, per-try {per_try}, {min_tries}..{tries} tries "
                        f"expected, {n_tries} seen; client got {reply.status} {reply.flags}"
                    ),
                    "ok": reply.status == 504
                    and "UT" in reply.flags
                    and min_tries <= n_tries <= tries
                    and lower - TIMING_EARLY_S <= took <= upper + late,
                }
            )


def _chance(entry: Mapping[str, Any]) -> bool:
    """Whether *entry* is a check a rule Envoy follows can miss by chance.

    That is a fraction strictly between 0 and 1, or a mean with an interval (a retry's tries
    per request); a timing, a count or a certainty (a fraction of 0 or 1) is not.
    """
    return "interval" in entry and entry.get("expected_fraction") not in (0.0, 1.0)


def verify(
    table: RouteTable,
    cases: Sequence[Case],
    *,
    requests: int = 400,
    sandbox_factory: SandboxFactory | None = None,
    confidence: float = 0.99,
    concurrency: int = 16,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Send every case through the model and a real Envoy; compare.

    Runs one sandbox. In order: local rate-limit bursts (while buckets are full), the
    deterministic check of every case, fractions of every split/fault route reached by a case
    (``requests`` requests each), retries against failing backends, and timeouts against slow
    backends. The sandbox's Envoy runs :func:`sandbox_render` of *table*.

    A route whose split, fault or retry check falls outside its interval (which happens to
    ``1 - confidence`` of checks of a rule Envoy follows) is measured again on
    :data:`CONFIRM_FACTOR` times the requests, and that sample decides each check that missed:
    a correct rule is reported as disagreeing about ``(1 - confidence)**2`` of the time, and the
    entries say ``confirmation``; a fraction the first sample passed keeps its first entry. A
    timed check (a fault delay, a timeout, a rate-limit burst and refill) is measured again the
    same way, and then decided by the second sample alone.

    Args:
        table: The compiled route table.
        cases: Cases (:func:`load_cases`, :func:`generate_cases`).
        requests: Requests per stochastic check.
        sandbox_factory: Builds the sandbox (default :class:`EnvoySandbox`).
        confidence: Confidence level of the binomial (Wilson) intervals.
        concurrency: Requests in flight for the stochastic checks.
        progress: Called with one line before a check is measured again (that second sample
            can take a while: up to 24 s more for a 3 s route timeout).

    Returns:
        The report.

    Raises:
        SandboxError: Envoy is missing or failed.
    """
    if requests < 1:
        raise ValueError(f"requests must be >= 1, got {requests}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    factory = sandbox_factory or _default_factory
    report = VerifyReport(confidence=confidence, requests=requests)
    plan = [(c, *_effective_random(table, c)) for c in cases]
    start = time.monotonic()
    with factory(sandbox_render(table), backend_specs(table)) as sb:
        v = _Verifier(table, sb, report, requests, confidence, concurrency, progress)
        v.rate_limits(plan)
        v.deterministic(plan)
        v.stochastic(plan)
        v.retries(plan)
        v.timeouts(plan)
    report.envoy_seconds = time.monotonic() - start
    return report
