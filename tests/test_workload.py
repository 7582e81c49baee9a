"""Traffic: arrival processes, the request mix, sessions and AZ split.

How tolerances are derived (α = 0.001 for the whole test, two-sided):

* Counts of a Poisson process over a window with expected count m are Poisson(m) ≈ Normal(m, m)
  for m ≥ 1000, so |N − m| ≤ z·√m. When a test checks k windows at once, each uses
  z = Φ⁻¹(1 − α/(2k)) (Bonferroni), so the family still fails with probability ≤ 0.1 %.
* Category frequencies (request mix, beta cookie, AZ) are Binomial(n, p): |p̂ − p| ≤ z·√(p(1−p)/n),
  Bonferroni over categories likewise.
* Inter-arrival CV of a Poisson process: for exponential gaps (mean 1) Var x̄ = 1/n,
  Var s² = (μ₄ − σ⁴)/n = 8/n and Cov(x̄, s²) = μ₃/n = 2/n; with ∂cv/∂x̄ = −1 and ∂cv/∂s² = ½ the
  delta method gives Var ĉv = 1/n + 8/(4n) − 2·½·2/n = 1/n, so |ĉv − 1| ≤ z/√n.

Expected counts are computed here from closed forms, independently of ``Arrivals.expected_count``.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from istiolab.errors import SimulationError
from istiolab.sim.workload import (
    Arrivals,
    ArrivalSpec,
    ConnectionSpec,
    RequestAttrs,
    RequestFactory,
    RequestTemplate,
    SessionSpec,
    TrafficSpec,
    load_timestamps,
)

ALPHA = 0.001


def z(k: int = 1) -> float:
    """Two-sided normal quantile for a family of *k* checks at overall level ALPHA."""
    return NormalDist().inv_cdf(1 - ALPHA / (2 * k))


def poisson_ok(count: int, expected: float, k: int = 1) -> bool:
    return abs(count - expected) <= z(k) * math.sqrt(expected)


def binomial_ok(hits: int, n: int, p: float, k: int = 1) -> bool:
    return abs(hits / n - p) <= z(k) * math.sqrt(p * (1 - p) / n)


def arrivals(seed: int = 1, **spec: Any) -> Arrivals:
    return Arrivals(ArrivalSpec.model_validate(spec), np.random.default_rng(seed))


def counts(times: np.ndarray, edges: list[float]) -> list[int]:
    hist: list[int] = np.histogram(times, bins=edges)[0].tolist()
    return hist


# -- arrivals --------------------------------------------------------------------------------


def test_poisson_count_and_interarrival_cv() -> None:
    rate, horizon = 1000.0, 100.0
    t = arrivals(kind="poisson", rate_rps=rate).times(horizon)
    assert poisson_ok(len(t), rate * horizon)
    gaps = np.diff(t)
    n = len(gaps)
    cv = gaps.std(ddof=1) / gaps.mean()
    assert abs(cv - 1.0) <= z() / math.sqrt(n)
    assert abs(gaps.mean() - 1 / rate) <= z() * (1 / rate) / math.sqrt(n)


def test_poisson_ignores_t_now_and_is_reproducible() -> None:
    a, b = (
        arrivals(seed=5, kind="poisson", rate_rps=10),
        arrivals(seed=5, kind="poisson", rate_rps=10),
    )
    xs = [a.next_gap(0.0) for _ in range(100)]
    ys = [b.next_gap(123.0) for _ in range(100)]
    assert xs == ys
    assert xs != [arrivals(seed=6, kind="poisson", rate_rps=10).next_gap(0.0) for _ in range(100)]


def test_constant_gaps_are_exact() -> None:
    a = arrivals(kind="constant", rate_rps=4)
    assert [a.next_gap(k * 0.25) for k in range(1000)] == [0.25] * 1000
    assert a.rate_at(17.0) == 4.0
    assert len(arrivals(kind="constant", rate_rps=4).times(10.0)) == 39  # 0.25 … 9.75


def test_schedule_steps_rates_per_segment() -> None:
    steps = [
        {"at_s": 0, "rate_rps": 100},
        {"at_s": 50, "rate_rps": 400},
        {"at_s": 100, "rate_rps": 50},
    ]
    a = arrivals(kind="schedule", steps=steps)
    t = a.times(150.0)
    got = counts(t, [0, 50, 100, 150])
    expected = [100 * 50, 400 * 50, 50 * 50]
    assert all(poisson_ok(c, e, k=3) for c, e in zip(got, expected, strict=True))
    # A rate that jumped late or early would show up in the 5 s either side of each step.
    near = counts(t, [45, 50, 55]) + counts(t, [95, 100, 105])
    expected_near = [100 * 5, 400 * 5, 400 * 5, 50 * 5]
    assert all(poisson_ok(c, e, k=4) for c, e in zip(near, expected_near, strict=True))
    assert [a.rate_at(x) for x in (0, 49.9, 50, 99.9, 100, 1e6)] == [100, 100, 400, 400, 50, 50]


def test_schedule_ramp_is_linear() -> None:
    # 0 → 2000 rps linearly over [0, 100) then 2000 rps: λ(t) = 20t, so the 10 s bin k expects
    # ∫ 20t dt over [10k, 10k + 10] = 2000k + 1000.
    a = arrivals(
        kind="schedule",
        ramp=True,
        steps=[{"at_s": 0, "rate_rps": 0}, {"at_s": 100, "rate_rps": 2000}],
    )
    t = a.times(110.0)
    got = counts(t, [10.0 * k for k in range(12)])
    expected = [2000 * k + 1000 for k in range(10)] + [20_000]
    assert all(poisson_ok(c, e, k=11) for c, e in zip(got, expected, strict=True))
    # A straight line fitted to the bin rates over the ramp recovers the slope 20 rps/s; the
    # bin-rate noise is ≤ √19000/10 ≈ 13.8 rps and Σ(x − x̄)² = 8250 s², so the OLS slope's
    # standard error is ≤ 13.8/√8250 ≈ 0.152 rps/s.
    rates = np.array(got[:10]) / 10.0
    slope = np.polyfit(np.arange(10) * 10.0 + 5.0, rates, 1)[0]
    assert abs(slope - 20.0) <= z() * 0.152
    assert a.rate_at(25.0) == pytest.approx(500.0)


def test_schedule_rate_is_zero_before_the_first_step_and_ends_when_it_stays_zero() -> None:
    steps = [
        {"at_s": 10, "rate_rps": 1000},
        {"at_s": 12, "rate_rps": 0},
        {"at_s": 20, "rate_rps": 0},
    ]
    a = arrivals(kind="schedule", steps=steps)
    t = a.times(100.0)
    assert t.min() >= 10.0
    assert t.max() < 12.0
    assert poisson_ok(len(t), 2000)
    assert a.next_gap(12.0) is None  # not an endless thinning loop
    assert a.next_gap(50.0) is None
    assert arrivals(kind="schedule", steps=[{"at_s": 0, "rate_rps": 0}]).next_gap(0.0) is None


def test_diurnal_counts_per_phase_follow_the_sinusoid() -> None:
    # λ(t) = r(1 + A sin ωt), ω = 2π/P. Over one phase bin [a, b) of each period the expected
    # count is r[(b − a) + (A/ω)(cos ωa − cos ωb)]; 10 periods, 8 bins.
    r, amp, period, periods, bins = 200.0, 0.8, 100.0, 10, 8
    a = arrivals(kind="diurnal", rate_rps=r, amplitude=amp, period_s=period)
    t = a.times(periods * period)
    phase = np.mod(t, period)
    edges = [period * k / bins for k in range(bins + 1)]
    got = counts(phase, edges)
    w = 2 * math.pi / period
    expected = [
        periods * r * ((hi - lo) + amp / w * (math.cos(w * lo) - math.cos(w * hi)))
        for lo, hi in itertools.pairwise(edges)
    ]
    assert all(poisson_ok(c, e, k=bins) for c, e in zip(got, expected, strict=True))
    # The peak bins must carry far more than the trough bins (a flat process would not).
    assert got[1] + got[2] > 4 * (got[5] + got[6])
    assert a.rate_at(period / 4) == pytest.approx(r * (1 + amp))
    assert a.lambda_max == pytest.approx(r * (1 + amp))


def test_replay_inline_gives_the_exact_timestamps() -> None:
    ts = [0.5, 1.0, 1.0, 2.25, 7.125]
    a = arrivals(kind="replay", timestamps_s=ts)
    now, got = 0.0, []
    while (gap := a.next_gap(now)) is not None:
        now += gap
        got.append(now)
    assert got == ts  # these values are exact in binary, so even the sums are exact
    assert a.next_gap(now) is None


def test_replay_reports_zero_gap_when_behind() -> None:
    a = arrivals(kind="replay", timestamps_s=[1.0, 2.0])
    assert a.next_gap(1.5) == 0.0
    assert a.next_gap(1.5) == 0.5


def test_replay_file_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "arrivals.csv").write_text(
        "# time_s, path\n0.1, /a\n\n0.35 /b\n0.35\n2.5  # late one\n", encoding="utf-8"
    )
    spec = ArrivalSpec(kind="replay", file="data/arrivals.csv")
    a = Arrivals(spec, np.random.default_rng(0), base_dir=tmp_path)
    assert a.times(10.0).tolist() == pytest.approx([0.1, 0.35, 0.35, 2.5], abs=1e-12)
    b = Arrivals(spec, np.random.default_rng(0), base_dir=str(tmp_path))
    assert b.expected_count(0.0, 1.0) == 3.0
    absolute = ArrivalSpec(kind="replay", file=str(tmp_path / "data" / "arrivals.csv"))
    assert len(Arrivals(absolute, np.random.default_rng(0), base_dir="/nonexistent").times(9)) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.1\n0.05\n", r"arrivals.txt:2: timestamps must not go back in time, got 0.05 after 0.1"),
        ("0.1\nsoon\n", r"arrivals.txt:2: 'soon' is not a time in seconds"),
        ("-1\n", r"arrivals.txt:1: time must be finite and >= 0, got -1"),
        ("# only a comment\n\n", r"replay file .*arrivals.txt holds no timestamps"),
    ],
)
def test_replay_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "arrivals.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SimulationError, match=message):
        load_timestamps(path)


def test_replay_missing_file(tmp_path: Path) -> None:
    spec = ArrivalSpec(kind="replay", file="nope.txt")
    with pytest.raises(SimulationError, match=r"cannot read replay file .*nope.txt"):
        Arrivals(spec, np.random.default_rng(0), base_dir=tmp_path)


def test_expected_count_closed_forms() -> None:
    assert arrivals(kind="poisson", rate_rps=10).expected_count(1, 3) == 20
    ramp = arrivals(
        kind="schedule",
        ramp=True,
        steps=[{"at_s": 0, "rate_rps": 0}, {"at_s": 10, "rate_rps": 100}],
    )
    assert ramp.expected_count(0, 10) == pytest.approx(500)
    assert ramp.expected_count(5, 15) == pytest.approx(375 + 500)
    d = arrivals(kind="diurnal", rate_rps=100, amplitude=0.5, period_s=60)
    assert d.expected_count(0, 600) == pytest.approx(60_000)
    assert d.expected_count(0, 30) == pytest.approx(100 * (30 + 0.5 * 60 / math.pi))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "poisson"}, "kind 'poisson' needs rate_rps"),
        ({"kind": "diurnal", "rate_rps": 5, "period_s": 60}, "needs amplitude"),
        ({"kind": "schedule"}, "needs steps"),
        (
            {"kind": "poisson", "rate_rps": 5, "steps": [{"at_s": 0, "rate_rps": 1}]},
            "steps is not used by kind 'poisson'",
        ),
        ({"kind": "poisson", "rate_rps": 5, "ramp": True}, "ramp is not used"),
        ({"kind": "replay"}, "exactly one of file or timestamps_s"),
        (
            {"kind": "replay", "timestamps_s": []},
            "timestamps_s\n  Tuple should have at least 1 item",
        ),
        (
            {"kind": "replay", "file": "a", "timestamps_s": [1]},
            "exactly one of file or timestamps_s",
        ),
        (
            {"kind": "replay", "timestamps_s": [1, 0.5]},
            r"timestamps_s\[1\] must be >= timestamps_s\[0\]",
        ),
        (
            {"kind": "schedule", "steps": [{"at_s": 5, "rate_rps": 1}, {"at_s": 5, "rate_rps": 2}]},
            r"steps\[1\].at_s must be > steps\[0\].at_s",
        ),
        ({"kind": "poisson", "rate_rps": 0}, "greater than 0"),
        (
            {"kind": "diurnal", "rate_rps": 5, "amplitude": 1.5, "period_s": 1},
            "less than or equal to 1",
        ),
        ({"kind": "poisson", "rate": 5}, "rate\n  Extra inputs are not permitted"),
    ],
)
def test_arrival_spec_errors_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ArrivalSpec.model_validate(data)


# -- connections and traffic specs -----------------------------------------------------------


def test_connection_spec() -> None:
    assert ConnectionSpec().mode == "per_request"
    ka = ConnectionSpec(mode="keepalive", lifetime_s=60)
    assert (ka.pool_size, ka.lifetime_s, ka.requests_per_connection) == (10, 60, None)
    with pytest.raises(ValidationError, match="pool_size is not used by kind 'per_request'"):
        ConnectionSpec(pool_size=4)
    with pytest.raises(ValidationError, match="pool_size"):
        ConnectionSpec(mode="keepalive", pool_size=0)


def test_traffic_spec_defaults_and_yaml_shape() -> None:
    spec = TrafficSpec.model_validate(
        {"name": "web", "arrival": {"kind": "poisson", "rate_rps": 100}}
    )
    assert spec.requests == (RequestTemplate(path="/"),)
    assert spec.connections == ConnectionSpec()
    assert (spec.host, spec.source_ips, spec.az_split, spec.sessions) == (
        "example.com",
        1000,
        None,
        None,
    )
    assert spec.to_dict() == {"name": "web", "arrival": {"kind": "poisson", "rate_rps": 100.0}}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"az_split": {"a": 0.5, "b": 0.4}}, "az_split must sum to 1, got 0.9"),
        ({"az_split": {"a": 1.5, "b": -0.5}}, "greater than or equal to 0"),
        ({"requests": [{"path": "/", "weight": 0}]}, "total weight > 0"),
        ({"requests": []}, "at least 1 item"),
        ({"requests": [{"path": "api"}]}, "should match pattern '\\^/'"),
        ({"requests": [{"path": "/", "headers": {"Host": "x"}}]}, "host field, not headers.Host"),
        ({"requests": [{"path": "/", "headers": {"a b": "x"}}]}, "not an HTTP token"),
        ({"requests": [{"path": "/", "headers": {"X-A": "1", "x-a": "2"}}]}, "given twice"),
        ({"sessions": {"users": 0}}, "sessions.users"),
        ({"sessions": {"users": 5, "beta_fraction": 2}}, "sessions.beta_fraction"),
        ({"sessions": {"users": 5, "cookie_name": "a b"}}, "sessions.cookie_name"),
        ({"source_ips": 0}, "source_ips"),
    ],
)
def test_traffic_spec_errors(extra: dict[str, Any], message: str) -> None:
    data = {"name": "web", "arrival": {"kind": "poisson", "rate_rps": 1}, **extra}
    with pytest.raises(ValidationError, match=message):
        TrafficSpec.model_validate(data)


def test_az_split_sum_tolerance_is_1e_9() -> None:
    base = {"name": "w", "arrival": {"kind": "poisson", "rate_rps": 1}}
    TrafficSpec.model_validate({**base, "az_split": {"a": 0.1, "b": 0.2, "c": 0.7}})  # fsum = 1.0
    TrafficSpec.model_validate({**base, "az_split": {"a": 0.5, "b": 0.5 + 5e-10}})
    with pytest.raises(ValidationError):
        TrafficSpec.model_validate({**base, "az_split": {"a": 0.5, "b": 0.5 + 5e-9}})


# -- requests --------------------------------------------------------------------------------


def traffic(**extra: Any) -> TrafficSpec:
    return TrafficSpec.model_validate(
        {"name": "web", "arrival": {"kind": "poisson", "rate_rps": 1}, **extra}
    )


def make_many(
    spec: TrafficSpec, n: int, azs: list[str] | None = None, seed: int = 3
) -> list[RequestAttrs]:
    f = RequestFactory(spec, np.random.default_rng(seed), azs=azs)
    return [f.make(0.0) for _ in range(n)]


def test_request_mix_inside_binomial_ci() -> None:
    spec = traffic(
        requests=[
            {"path": "/a", "weight": 1},
            {"path": "/b", "weight": 2, "method": "POST"},
            {"path": "/off", "weight": 0},
            {"path": "/c", "weight": 7, "host": "api.example.com"},
        ]
    )
    n = 100_000
    reqs = make_many(spec, n)
    freq = Counter(r.path for r in reqs)
    assert "/off" not in freq
    for path, p in (("/a", 0.1), ("/b", 0.2), ("/c", 0.7)):
        assert binomial_ok(freq[path], n, p, k=3)
    by_path = {r.path: r for r in reqs}
    assert (by_path["/b"].method, by_path["/b"].host) == ("POST", "example.com")
    assert by_path["/c"].host == "api.example.com"


def test_trailing_zero_weight_is_never_chosen() -> None:
    reqs = make_many(traffic(requests=[{"path": "/a"}, {"path": "/z", "weight": 0}]), 20_000)
    assert {r.path for r in reqs} == {"/a"}


def test_headers_are_lowercased_and_fresh_per_request() -> None:
    f = RequestFactory(
        traffic(requests=[{"path": "/", "headers": {"X-Env": "Prod"}}]), np.random.default_rng(0)
    )
    r1, r2 = f.make(0.0), f.make(0.0)
    assert r1.headers == {"x-env": "Prod"}
    r1.headers["x-added"] = "1"
    assert r2.headers == {"x-env": "Prod"}
    assert f.make(0.0).headers == {"x-env": "Prod"}


def test_beta_fraction_of_users_and_cookie_format() -> None:
    users, n = 1000, 100_000
    reqs = make_many(traffic(sessions={"users": users, "beta_fraction": 0.1}), n)
    beta = [r for r in reqs if r.headers["cookie"] == "user=beta"]
    # Exactly round(0.1 · 1000) = 100 users are beta: ids 0…99 (all seen: 100k draws over 1000).
    assert {r.user for r in beta} == set(range(100))
    assert binomial_ok(len(beta), n, 0.1)
    for r in reqs:
        assert r.user is not None
        if r.user >= 100:
            assert r.headers["cookie"] == f"user=u{r.user}"
    assert binomial_ok(sum(1 for r in reqs if r.user == 999), n, 1 / users)


def test_session_cookie_merges_with_template_and_extra_cookies() -> None:
    spec = traffic(
        requests=[{"path": "/", "headers": {"Cookie": "a=b"}}],
        sessions={
            "users": 10,
            "beta_fraction": 0.5,
            "cookie_name": "sid",
            "extra_cookies": "theme=dark",
        },
    )
    seen = {r.headers["cookie"] for r in make_many(spec, 2000)}
    assert "a=b; theme=dark; sid=beta" in seen
    assert "a=b; theme=dark; sid=u7" in seen
    assert len(seen) == 6  # beta + u5 … u9
    # extra_cookies given with its own separator is not doubled.
    spec2 = traffic(sessions={"users": 1, "beta_fraction": 1, "extra_cookies": "theme=dark; "})
    assert make_many(spec2, 1)[0].headers["cookie"] == "theme=dark; user=beta"


def test_sticky_hash_header_carries_the_user() -> None:
    spec = traffic(sessions={"users": 50, "sticky_hash_header": "X-User"})
    for r in make_many(spec, 500):
        assert r.headers["x-user"] == f"u{r.user}"


def test_same_user_same_source_ip() -> None:
    spec = traffic(sessions={"users": 500}, source_ips=1000)
    reqs = make_many(spec, 50_000)
    ip_of: dict[int | None, set[int]] = {}
    for r in reqs:
        ip_of.setdefault(r.user, set()).add(r.source_ip)
    assert all(len(ips) == 1 for ips in ip_of.values())
    # Fewer users than IPs: no two users share one (the user → IP map is a bijection mod n).
    assert len({next(iter(ips)) for ips in ip_of.values()}) == len(ip_of) == 500
    few_ips = make_many(traffic(sessions={"users": 500}, source_ips=7), 1000)
    assert all(0 <= r.source_ip < 7 for r in few_ips)


def test_source_ips_without_sessions_are_uniform() -> None:
    n, ips = 100_000, 4
    reqs = make_many(traffic(source_ips=ips), n)
    freq = Counter(r.source_ip for r in reqs)
    assert set(freq) == set(range(ips))
    assert all(binomial_ok(freq[i], n, 1 / ips, k=ips) for i in range(ips))
    assert all(r.user is None and "cookie" not in r.headers for r in reqs)


def test_az_split_frequencies() -> None:
    n = 100_000
    spec = traffic(az_split={"us-east-1a": 0.2, "us-east-1b": 0.5, "us-east-1c": 0.3})
    freq = Counter(r.az for r in make_many(spec, n, azs=["us-east-1a", "us-east-1b", "us-east-1c"]))
    for az, p in (("us-east-1a", 0.2), ("us-east-1b", 0.5), ("us-east-1c", 0.3)):
        assert binomial_ok(freq[az], n, p, k=3)


def test_az_even_split_and_absent_azs() -> None:
    n = 60_000
    freq = Counter(r.az for r in make_many(traffic(), n, azs=["a", "b", "c"]))
    assert all(binomial_ok(freq[az], n, 1 / 3, k=3) for az in "abc")
    assert {r.az for r in make_many(traffic(), 10)} == {None}
    assert {r.az for r in make_many(traffic(az_split={"a": 1.0}), 10)} == {"a"}
    assert {r.az for r in make_many(traffic(), 10, azs=["only"])} == {"only"}


def test_az_split_must_name_known_azs() -> None:
    with pytest.raises(
        ValueError, match=r"az_split names zz, not one of the scenario's AZs \['a', 'b'\]"
    ):
        RequestFactory(
            traffic(az_split={"a": 0.5, "zz": 0.5}), np.random.default_rng(0), azs=["a", "b"]
        )


def test_request_factory_is_reproducible() -> None:
    spec = traffic(
        requests=[{"path": "/a"}, {"path": "/b"}],
        sessions={"users": 100, "beta_fraction": 0.2},
        az_split={"a": 0.5, "b": 0.5},
    )
    assert make_many(spec, 200, seed=9) == make_many(spec, 200, seed=9)
    assert make_many(spec, 200, seed=9) != make_many(spec, 200, seed=10)


def test_session_spec_defaults() -> None:
    s = SessionSpec(users=3)
    assert (s.cookie_name, s.beta_fraction, s.extra_cookies, s.sticky_hash_header) == (
        "user",
        0.0,
        None,
        None,
    )
