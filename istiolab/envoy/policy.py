"""Envoy's runtime policies, shared by the simulator and by ``verify``'s expectations.

* Retry conditions (``retry_on``, facts §3.3): which try outcomes Envoy retries.
* Retry back-off bounds (§3.4), per the profile's formula.
* The local rate limit's token bucket (§3.10). Envoy 1.40 refills it *continuously*: one token
  every ``fill_interval / tokens_per_fill`` (measured against the real Envoy in the conformance
  suite), not ``tokens_per_fill`` at once per interval as external-truths item 12 states. The
  long-run accepted rate is the same; over a window T at most
  ``max_tokens + ⌊T · tokens_per_fill / fill_interval⌋`` requests pass.
"""

from __future__ import annotations

import math

from istiolab.envoy.model import RateLimit, RetryPolicy

_GATEWAY_ERRORS = (502, 503, 504)
TIMEOUT_RETRY_ON = frozenset({"5xx", "gateway-error", "reset"})


def retries_on_status(policy: RetryPolicy, status: int) -> bool:
    """Whether Envoy retries an upstream response with *status* under ``retry_on``.

    ``5xx``: any 5xx; ``gateway-error``: 502/503/504; ``retriable-4xx``: 409;
    ``retriable-status-codes``: the listed codes. gRPC conditions never apply to plain HTTP.
    """
    on = policy.retry_on
    return (
        ("5xx" in on and 500 <= status <= 599)
        or ("gateway-error" in on and status in _GATEWAY_ERRORS)
        or ("retriable-4xx" in on and status == 409)
        or ("retriable-status-codes" in on and status in policy.retriable_status_codes)
    )


def retries_on_timeout(policy: RetryPolicy) -> bool:
    """Whether a per-try timeout is retried (``5xx``, ``gateway-error`` or ``reset``)."""
    return bool(TIMEOUT_RETRY_ON.intersection(policy.retry_on))


def retriable(policy: RetryPolicy, status: int, flag: str) -> bool:
    """Whether Envoy retries a try that ended with *status* and response *flag*.

    ``UF`` (connection failure) is retried by ``5xx``, ``reset`` and ``connect-failure``;
    ``UC`` (reset) by ``5xx``, ``gateway-error`` and ``reset``; ``UT`` (per-try timeout) as
    :func:`retries_on_timeout`; a response by :func:`retries_on_status`.
    """
    on = policy.retry_on
    if flag == "UT":
        return retries_on_timeout(policy)
    if flag == "UF":
        return bool({"5xx", "reset", "connect-failure", "gateway-error"}.intersection(on))
    if flag == "UC":
        return bool({"5xx", "reset", "gateway-error"}.intersection(on))
    return retries_on_status(policy, status)


def backoff_bound(policy: RetryPolicy, retry_number: int, formula: str) -> float:
    """Upper bound of the jittered back-off before retry *retry_number* (1-based).

    ``source``: U[0, min(2^(N-1)·B, max)) (Envoy's current JitteredExponentialBackOffStrategy);
    ``docs``: U[0, min((2^N - 1)·B, max)) (router_filter.rst).
    """
    base = policy.backoff_base_s
    mult = 2 ** (retry_number - 1) if formula == "source" else 2**retry_number - 1
    return float(min(mult * base, policy.backoff_max_s))


class TokenBucket:
    """Envoy's local rate limit bucket.

    It starts full. ``continuous`` (Envoy ≥ 1.32): one token every
    ``fill_interval / tokens_per_fill`` seconds; ``timer`` (Envoy ≤ 1.31): ``tokens_per_fill``
    tokens at every multiple of ``fill_interval`` from the start. Never above ``max_tokens``.
    """

    __slots__ = ("_last", "_rate", "_tokens", "mode", "spec")

    def __init__(self, spec: RateLimit, now: float = 0.0, mode: str = "continuous") -> None:
        if mode not in ("continuous", "timer"):
            raise ValueError(f"mode must be 'continuous' or 'timer', got {mode!r}")
        self.spec = spec
        self.mode = mode
        self._tokens = float(spec.max_tokens)
        self._rate = spec.tokens_per_fill / spec.fill_interval_s
        self._last = now if mode == "continuous" else 0.0

    def take(self, now: float) -> bool:
        """Consume a token if a whole one is available at time *now*."""
        if self.mode == "timer":
            fills = int(now // self.spec.fill_interval_s)
            if fills > self._last:
                added = (fills - self._last) * self.spec.tokens_per_fill
                self._tokens = min(float(self.spec.max_tokens), self._tokens + added)
                self._last = fills
        elif now > self._last:
            self._tokens = min(
                float(self.spec.max_tokens), self._tokens + (now - self._last) * self._rate
            )
            self._last = now
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            return True
        return False


def max_accepted(spec: RateLimit, duration_s: float, mode: str = "continuous") -> int:
    """Most requests a bucket can accept over *duration_s* starting full."""
    if mode == "timer":  # external truths item 12
        return (
            spec.max_tokens + math.floor(duration_s / spec.fill_interval_s) * spec.tokens_per_fill
        )
    return spec.max_tokens + math.floor(
        duration_s * spec.tokens_per_fill / spec.fill_interval_s + 1e-9
    )
