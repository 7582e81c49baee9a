"""Durations, Istio version profiles and seeded random streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from istiolab.profiles import DEFAULT_PROFILE, MAX_UINT32, PROFILES, get_profile
from istiolab.rng import as_generator, as_seed_sequence, spawn
from istiolab.units import format_duration, is_duration, parse_duration

# -- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("2us", 2e-6),
        ("2µs", 2e-6),
        ("100ns", 1e-7),
        ("1m30s", 90.0),
        (".5s", 0.5),
        ("0s", 0.0),
        ("15s", 15.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)
    assert is_duration(text)


@pytest.mark.parametrize("text", ["5 seconds", "", "1", "1.5", "s", "-1s", "1 s", "1d", "1S", "ms"])
def test_parse_duration_rejects_with_the_value_named(text: str) -> None:
    assert not is_duration(text)
    with pytest.raises(ValueError, match="not a duration") as err:
        parse_duration(text)
    assert repr(text) in str(err.value)
    assert "250ms" in str(err.value)  # and says what a duration looks like


def test_is_duration_of_non_strings() -> None:
    assert not is_duration(5)  # type: ignore[arg-type]
    assert not is_duration(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (1.0, "1s"),
        (60.0, "1m"),
        (3600.0, "1h"),
        (5400.0, "90m"),
        (15.0, "15s"),
        (0.001, "1ms"),
        (0.0, "0s"),
        (2e-6, "0.000002s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="-1"):
        format_duration(-1.0)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_format_duration_round_trip(seconds: float) -> None:
    text = format_duration(seconds)
    assert is_duration(text)
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-9, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 999), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])),
        min_size=1,
        max_size=4,
    )
)
def test_parse_of_formatted_whole_units(parts: list[tuple[int, str]]) -> None:
    factor = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    text = "".join(f"{n}{u}" for n, u in parts)
    expected = sum(n * factor[u] for n, u in parts)
    assert parse_duration(text) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert parse_duration(format_duration(parse_duration(text))) == pytest.approx(
        expected, rel=1e-9, abs=1e-9
    )


# -- profiles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "profile"),
    [
        ("0.2.12", "0.2"),
        ("0.2", "0.2"),
        ("0.1", "0.2"),
        ("1.0", "1.0"),
        ("1.0.8", "1.0"),
        ("1.1", "1.1"),
        ("1.3", "1.1"),
        ("1.4", "1.4"),
        ("1.5.2", "1.4"),
        ("1.7", "1.6"),
        ("1.13.9", "1.6"),
        ("1.14", "1.14"),
        ("1.14.6", "1.14"),
        ("1.15", "1.15"),
        ("1.20.3", "1.15"),
        ("1.23", "1.15"),
        ("1.24", "1.24"),
        ("1.30", "1.24"),
        ("2.0", "1.24"),
        ("Istio 1.7", "1.6"),
        ("v1.20", "1.15"),
        ("latest", "1.24"),
        ("legacy", "0.2"),
        (None, "1.24"),
    ],
)
def test_get_profile(version: str | None, profile: str) -> None:
    assert get_profile(version).name == profile


def test_get_profile_passes_profiles_through() -> None:
    p = PROFILES["1.14"]
    assert get_profile(p) is p
    assert get_profile(None) is PROFILES[DEFAULT_PROFILE]


@pytest.mark.parametrize("bad", ["banana", "1", "1.x", "", "1.2.3.4"])
def test_get_profile_rejects_and_lists_profiles(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown Istio profile") as err:
        get_profile(bad)
    assert repr(bad) in str(err.value)
    assert ", ".join(PROFILES) in str(err.value)


def test_versions_between_0_2_and_1_0_are_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.5"):
        get_profile("0.5")


def test_profile_0_2_facts() -> None:
    p = PROFILES["0.2"]
    assert p.legacy
    assert p.default_route_timeout_s == 15.0  # Envoy v1's default route timeout
    assert p.default_retry is None  # no default retries in 0.2
    assert p.retry_on_when_unset == ("5xx", "connect-failure", "refused-stream")
    assert p.default_lb == "ROUND_ROBIN"
    assert p.weights_must_total_100
    assert p.truncate_fault_percent
    assert p.circuit_breaker_default == (1024, 1024, 1024, 3)  # Envoy's own thresholds
    assert dict(p.gateway_selector) == {"istio": "ingress"}
    assert p.ingress_service == "istio-ingress"


def test_profile_1_0_facts() -> None:
    p = PROFILES["1.0"]
    assert not p.legacy
    assert p.default_route_timeout_s is None  # "if no timeout is specified, disable timeouts"
    assert p.default_retry is None
    assert p.default_lb == "ROUND_ROBIN"
    assert p.weights_must_total_100
    assert not p.truncate_fault_percent


@pytest.mark.parametrize("name", ["1.1", "1.4", "1.6"])
def test_profile_1_x_default_retries_include_503(name: str) -> None:
    p = PROFILES[name]
    r = p.default_retry
    assert r is not None
    assert r.num_retries == 2
    assert {"connect-failure", "refused-stream", "unavailable", "cancelled"} <= set(r.retry_on)
    assert "retriable-status-codes" in r.retry_on
    assert r.retriable_status_codes == (503,)
    assert r.previous_hosts
    assert r.host_selection_retry_max_attempts == 5
    assert p.default_lb == "ROUND_ROBIN"
    assert p.weights_must_total_100
    assert p.default_route_timeout_s is None


def test_profile_1_14_least_request_and_weights_100() -> None:
    p = PROFILES["1.14"]
    assert p.default_lb == "LEAST_REQUEST"
    assert p.weights_must_total_100
    assert p.default_retry is not None
    assert p.default_retry.retriable_status_codes == (503,)


def test_profile_1_15_weights_only_nonzero() -> None:
    p = PROFILES["1.15"]
    assert not p.weights_must_total_100
    assert p.default_lb == "LEAST_REQUEST"
    assert p.default_retry is not None
    assert p.default_retry.retriable_status_codes == (503,)


def test_profile_1_24_drops_503_from_default_retries() -> None:
    p = PROFILES["1.24"]
    r = p.default_retry
    assert r is not None
    assert r.num_retries == 2
    assert 503 not in r.retriable_status_codes
    assert "retriable-status-codes" not in r.retry_on
    assert {"connect-failure", "refused-stream"} <= set(r.retry_on)
    assert p.default_lb == "LEAST_REQUEST"
    assert not p.weights_must_total_100
    assert p.default_route_timeout_s is None


def test_modern_profiles_common_facts() -> None:
    for name in ("1.1", "1.4", "1.6", "1.14", "1.15", "1.24"):
        p = PROFILES[name]
        # Istio 1.1-1.3 left Envoy's 1024 thresholds (facts §2.8); MaxUint32 from 1.4.
        expected = (1024,) * 4 if name == "1.1" else (MAX_UINT32,) * 4
        assert p.circuit_breaker_default == expected
        assert dict(p.gateway_selector) == {"istio": "ingressgateway"}
        assert p.backoff_base_s == 0.025
        assert p.backoff_max_s == pytest.approx(10 * p.backoff_base_s)
    assert [p.name for p in PROFILES.values()] == [
        "0.2",
        "1.0",
        "1.1",
        "1.4",
        "1.6",
        "1.14",
        "1.15",
        "1.24",
    ]
    # resource-exhausted was in the default retry_on of 1.1-1.5 only (facts §2.6).
    assert "resource-exhausted" in PROFILES["1.4"].retry_on_when_unset
    assert "resource-exhausted" not in PROFILES["1.6"].retry_on_when_unset


# -- seeded random streams ------------------------------------------------------------------------


def test_as_generator_is_reproducible() -> None:
    a = as_generator(5).random(8)
    b = as_generator(5).random(8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, as_generator(6).random(8))


def test_as_generator_passes_generators_through() -> None:
    g = as_generator(1)
    assert as_generator(g) is g
    assert as_seed_sequence(g).entropy == 1


def test_seed_forms() -> None:
    seq = np.random.SeedSequence(7)
    assert as_seed_sequence(seq) is seq
    assert as_seed_sequence([1, 2]).entropy == as_seed_sequence((1, 2)).entropy
    assert as_seed_sequence(np.int64(3)).entropy == 3
    with pytest.raises(ValueError, match="-1"):
        as_seed_sequence(-1)
    with pytest.raises(TypeError, match="banana"):
        as_seed_sequence("banana")  # type: ignore[arg-type]


def test_spawn_streams_are_independent_and_stable() -> None:
    two = spawn(42, ["a", "b"])
    assert set(two) == {"a", "b"}
    a, b = two["a"].random(16), two["b"].random(16)
    assert not np.array_equal(a, b)
    # adding a component (anywhere in the list) does not change the others' draws
    three = spawn(42, ["c", "b", "a"])
    assert np.array_equal(three["a"].random(16), a)
    assert np.array_equal(three["b"].random(16), b)
    # the same seed reproduces; another seed does not
    assert np.array_equal(spawn(42, ["a"])["a"].random(16), a)
    assert not np.array_equal(spawn(43, ["a"])["a"].random(16), a)


def test_spawn_streams_differ_from_the_root_stream() -> None:
    root = as_generator(42).random(16)
    streams = spawn(42, ["a", "ab", "ba"])
    draws = [streams[n].random(16) for n in ("a", "ab", "ba")]
    for d in draws:
        assert not np.array_equal(d, root)
    assert not np.array_equal(draws[1], draws[2])
