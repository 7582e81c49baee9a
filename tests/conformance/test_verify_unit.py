"""The verifier's pieces that need no Envoy: case files, statistics, generation, semantics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from istiolab.config import load
from istiolab.envoy.compile import compile
from istiolab.envoy.match import Request, route
from istiolab.envoy.model import Redirect, RetryPolicy
from istiolab.envoy.verify import (
    Case,
    CaseFileError,
    Outcome,
    dump_cases,
    expected_attempts,
    generate_cases,
    load_cases,
    parse_cases,
    redirect_url,
    regex_examples,
    retries_on_status,
    retries_on_timeout,
    sandbox_render,
    wilson_interval,
)
from istiolab.regex import full_match

CONFIGS = Path(__file__).parent / "configs"


# -- case files ------------------------------------------------------------------------------


def test_round_trip_json_and_yaml(tmp_path: Path) -> None:
    cases = [
        Case(
            "beta",
            Request(
                path="/x?y=1", method="POST", host="a.example.com", headers={"cookie": "user=beta"}
            ),
            random_value=42,
            cluster="c",
            status=200,
            virtual_host="vh",
        ),
        Case("tls", Request(scheme="https"), code_redirect=301, path_redirect="https://e/x"),
    ]
    data = dump_cases(cases)
    assert data["tests"][0]["input"] == {
        "authority": "a.example.com",
        "path": "/x?y=1",
        "method": "POST",
        "additional_request_headers": [{"key": "cookie", "value": "user=beta"}],
        "random_value": 42,
    }
    assert data["tests"][1]["input"]["ssl"] is True
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps(data))
    assert [(c.name, c.request, c.random_value) for c in load_cases(as_json)] == [
        (c.name, c.request, c.random_value) for c in cases
    ]
    assert parse_cases(data) == load_cases(as_json)


def test_older_spellings_are_read() -> None:
    (c,) = parse_cases(
        {
            "tests": [
                {
                    "test_name": "old",
                    "input": {
                        ":authority": "h",
                        ":path": "/p",
                        ":method": "PUT",
                        "additional_headers": [{"field": "X-A", "value": "1"}],
                    },
                    "validate": {"cluster_name": ""},
                }
            ]
        }
    )
    assert c.request == Request(path="/p", method="PUT", host="h", headers={"x-a": "1"})
    assert c.cluster == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tests: 3", "expected {'tests': [...]}"),
        ("tests: [{input: {authority: a, path: /}}]", "test_name is missing"),
        ("tests: [{test_name: t, input: {path: /}}]", "input.authority is required"),
        (
            "tests: [{test_name: t, input: {authority: a, path: /, random_value: -1}}]",
            "random_value",
        ),
        (
            "tests: [{test_name: t, input: {authority: a, path: /}, validate: {cluster: x}}]",
            "validate.cluster",
        ),
        (
            "tests: [{test_name: t, input: {authority: a, path: /}, validate: {status: 7}}]",
            "HTTP status",
        ),
        ("tests: [{test_name: t", "not valid yaml"),
    ],
)
def test_bad_case_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "cases.yaml"
    p.write_text(text)
    with pytest.raises(CaseFileError, match=message.replace("[", r"\[").replace("{", r"\{")):
        load_cases(p)


def test_unreadable_case_file(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError, match="cannot read"):
        load_cases(tmp_path / "missing.json")


# -- statistics ------------------------------------------------------------------------------


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(40, 400, 0.99)
    assert lo < 0.1 < hi
    assert lo == pytest.approx(0.0677, abs=1e-3)
    assert hi == pytest.approx(0.1454, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(400, 400)
    assert hi == 1.0
    assert lo > 0.98


@pytest.mark.parametrize(
    ("p", "n", "variance"),
    [
        # P(K=k) = p^(k-1)(1-p) for k <= n, P(K=n+1) = p^n; variances worked by hand:
        (0.3, 2, 0.4179),  # K = 1, 2, 3 w.p. 0.7, 0.21, 0.09: 2.35 - 1.39²
        (0.5, 3, 1.109375),  # K = 1..4 w.p. 1/2, 1/4, 1/8, 1/8: 4.625 - 1.875²
        (0.0, 2, 0.0),
        (0.9, 0, 0.0),
    ],
)
def test_expected_attempts_is_item_10(p: float, n: int, variance: float) -> None:
    mean, var = expected_attempts(p, n)
    closed = (1 - p ** (n + 1)) / (1 - p) if p < 1 else n + 1
    assert mean == pytest.approx(closed)
    assert var == pytest.approx(variance)  # it sets the width of Envoy's amplification interval


# -- Envoy semantics used for expectations -----------------------------------------------


def test_retry_conditions() -> None:
    def pol(*on: str, codes: tuple[int, ...] = ()) -> RetryPolicy:
        return RetryPolicy(num_retries=2, retry_on=on, retriable_status_codes=codes)

    assert retries_on_status(pol("5xx"), 503)
    assert retries_on_status(pol("gateway-error"), 504)
    assert not retries_on_status(pol("gateway-error"), 500)
    assert retries_on_status(pol("retriable-status-codes", codes=(503,)), 503)
    assert not retries_on_status(pol("retriable-status-codes"), 503)
    assert not retries_on_status(pol("connect-failure", "refused-stream", "unavailable"), 503)
    assert retries_on_status(pol("retriable-4xx"), 409)
    assert retries_on_timeout(pol("reset"))
    assert not retries_on_timeout(pol("connect-failure", "retriable-status-codes", codes=(504,)))


@pytest.mark.parametrize(
    ("redirect", "path", "url"),
    [
        (Redirect(301, "/new"), "/old?a=1", "http://example.com/new?a=1"),
        (Redirect(301, "/new?b=2"), "/old?a=1", "http://example.com/new?b=2"),
        (Redirect(302, None, "other.example.com"), "/x", "http://other.example.com/x"),
        (Redirect(308, "/s", None, 8443, "https"), "/x", "https://example.com:8443/s"),
    ],
)
def test_redirect_url(redirect: Redirect, path: str, url: str) -> None:
    assert redirect_url(redirect, Request(path=path, host="example.com:80")) == url


def test_outcome_flags_are_a_subset() -> None:
    assert Outcome(404, flags="NR").satisfied_by(Outcome(404, flags="NR"))
    assert Outcome(503, flags="FI").satisfied_by(Outcome(503, flags="DI,FI"))
    assert not Outcome(503, flags="FI").satisfied_by(Outcome(503, flags="-"))
    assert not Outcome(200, cluster="a").satisfied_by(Outcome(200, cluster="b"))


# -- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "example"),
    [
        ("^(.*?;)?(user=beta)(;.*)?$", "user=beta"),
        (".*user=beta.*", "user=beta"),
        ("/status/[0-9]{3}", "/status/000"),
        ("[0-9a-f]{8}", "00000000"),
        ("(GET|HEAD)", "GET"),
        ("[^/]+", "a"),
    ],
)
def test_regex_examples_are_checked_with_re2(pattern: str, example: str) -> None:
    found = regex_examples(pattern)
    assert found[0] == example
    assert all(full_match(pattern, f) for f in found)


def test_regex_examples_may_be_empty() -> None:
    assert regex_examples(r"\pL+") == []  # RE2-only syntax the heuristics do not know


def test_generated_cases_land_on_their_routes() -> None:
    t = compile(load(CONFIGS / "13-cookie-ab.yaml"))
    notes: list[str] = []
    cases = generate_cases(t, notes=notes)
    decisions = [route(t, c.request) for c in cases]
    assert all(d.route is not None for d in decisions)
    reached = {d.route.name for d in decisions if d.route is not None}
    assert reached == {"beta-cookie", "loose-beta", "default"}
    loose = next(c for c in cases if "loose-beta" in c.name)
    assert loose.request.headers["cookie"] == "auser=betaa"  # 'user=beta' is taken by route 0


def test_generated_split_boundaries_and_no_route() -> None:
    t = compile(load(CONFIGS / "10-weights-90-10.yaml"))
    cases = generate_cases(t)
    rvs = sorted(c.random_value for c in cases if c.random_value is not None)
    assert rvs == [0, 90, 99]
    t = compile(load(CONFIGS / "26-no-route.yaml"))
    cases = generate_cases(t)
    nr = [c for c in cases if c.name == "no route"]
    assert nr
    assert (nr[0].cluster, nr[0].status) == ("", 404)


def test_sandbox_render_adds_the_random_header_only_to_splits() -> None:
    t = compile(load(CONFIGS / "12-weights-sum-not-100.yaml"))
    boot = sandbox_render(t)(0, {}, "/dev/null")
    text = json.dumps(boot)
    assert text.count('"header_name": "x-istiolab-random"') == 1  # /zero has one destination left
    assert math.isclose(len(boot["static_resources"]["clusters"]), 3)
