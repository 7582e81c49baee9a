"""Envoy runtime policies shared by the simulator and verify (istiolab.envoy.policy)."""

from __future__ import annotations

import pytest

from istiolab.envoy.model import RateLimit, RetryPolicy
from istiolab.envoy.policy import (
    TokenBucket,
    backoff_bound,
    max_accepted,
    retriable,
    retries_on_status,
)
from istiolab.profiles import PROFILES


def _drain(bucket: TokenBucket, t: float) -> int:
    n = 0
    while bucket.take(t):
        n += 1
    return n


def test_timer_bucket_is_external_truth_12() -> None:
    # 10 tokens, 10 per second: accepted over [0, T] = 10 + floor(T/1 s) * 10 exactly.
    spec = RateLimit(max_tokens=10, tokens_per_fill=10, fill_interval_s=1.0)
    b = TokenBucket(spec, mode="timer")
    accepted = _drain(b, 0.0)
    assert accepted == 10
    assert _drain(b, 0.5) == 0  # nothing until the next fill
    accepted += _drain(b, 1.0)
    assert accepted == 20
    accepted += _drain(b, 2.999)
    assert accepted == max_accepted(spec, 2.999, mode="timer") == 30


def test_continuous_bucket_is_envoy_1_40() -> None:
    # Envoy 1.40 (measured in the conformance suite): one token every 100 ms here.
    spec = RateLimit(max_tokens=10, tokens_per_fill=10, fill_interval_s=1.0)
    b = TokenBucket(spec)
    assert _drain(b, 0.0) == 10
    assert _drain(b, 0.5) == 5  # half an interval refills half the tokens
    assert _drain(b, 0.55) == 0
    assert _drain(b, 0.6) == 1
    assert max_accepted(spec, 0.6) == 16


def test_bucket_never_exceeds_max_tokens() -> None:
    spec = RateLimit(max_tokens=3, tokens_per_fill=1, fill_interval_s=0.1)
    for mode in ("timer", "continuous"):
        b = TokenBucket(spec, mode=mode)
        assert _drain(b, 100.0) == 3


def test_bucket_mode_is_validated() -> None:
    with pytest.raises(ValueError, match="mode"):
        TokenBucket(RateLimit(1, 1, 1.0), mode="leaky")


def test_profiles_choose_bucket_and_ejection_rules() -> None:
    assert PROFILES["1.24"].token_bucket == "continuous"
    assert PROFILES["1.15"].token_bucket == "timer"
    assert PROFILES["0.2"].eject_at_least_one
    assert not PROFILES["1.24"].eject_at_least_one


def test_retry_conditions() -> None:
    p = RetryPolicy(num_retries=2, retry_on=("connect-failure", "refused-stream"))
    assert retriable(p, 503, "UF")
    assert not retriable(p, 503, "")  # Istio >= 1.24 default: a 503 response is not retried
    assert not retriable(p, 504, "UT")
    g = RetryPolicy(2, ("gateway-error",))
    assert retries_on_status(g, 502)
    assert not retries_on_status(g, 500)
    assert retriable(g, 504, "UT")
    codes = RetryPolicy(2, ("retriable-status-codes",), retriable_status_codes=(409,))
    assert retriable(codes, 409, "")
    assert not retriable(codes, 503, "")


def test_backoff_bounds_per_formula() -> None:
    p = RetryPolicy(5, ("5xx",), backoff_base_s=0.025, backoff_max_s=0.25)
    assert [backoff_bound(p, n, "source") for n in (1, 2, 3, 4, 5)] == pytest.approx(
        [0.025, 0.05, 0.1, 0.2, 0.25]
    )
    assert [backoff_bound(p, n, "docs") for n in (1, 2, 3, 4)] == pytest.approx(
        [0.025, 0.075, 0.175, 0.25]
    )
