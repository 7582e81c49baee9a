"""Check the route model against a real Envoy.

The same requests go through :func:`istiolab.envoy.match.route` (the model) and through a real
Envoy running the rendering of the same :class:`~istiolab.envoy.model.RouteTable` (in an
:class:`~istiolab.envoy.sandbox.EnvoySandbox`). Deterministic outcomes (which cluster, no route,
redirect, direct response, a 100 % abort) must be equal; stochastic ones (weighted splits, fault
fractions, retries against a flaky backend) must fall inside binomial confidence intervals;
timings (fault delays, timeouts) inside a stated tolerance; a local rate limit must pass a burst
of exactly ``max_tokens``.

Cases use Envoy's ``router_check_tool`` format (JSON or YAML)::

    {"tests": [{"test_name": "beta cookie",
                "input": {"authority": "example.com", "path": "/", "method": "GET",
                          "additional_request_headers": [{"key": "cookie", "value": "user=beta"}],
                          "random_value": 0},
                "validate": {"cluster_name": "outbound|8000|v2|httpbin.default.svc"}}]}

``validate`` may hold ``cluster_name`` (``""``: no cluster), ``virtual_host_name``,
``code_redirect``, ``path_redirect`` (the whole new URL, as router_check_tool compares it) and the
istiolab extension ``status`` (the status the client sees, e.g. 403 for a 100 % abort, 404 for no
route). ``input.ssl: true`` sends ``x-forwarded-proto: https`` (Envoy then sees ``:scheme``
``https``), as router_check_tool does. ``:path``/``:method``/``:authority`` and
``additional_headers`` (older spellings) are read too. A case without ``validate`` takes its
expectation from :func:`~istiolab.envoy.match.route`.

Envoy's per-request random value cannot be set from outside -- unless the weighted clusters
name a header to read it from (``weighted_clusters.header_name``). The sandbox's rendering
therefore adds ``header_name: x-istiolab-random`` to every weighted route (and nothing else), so
a case with a ``random_value`` checks Envoy's pick *exactly*; requests without that header use
Envoy's own random draws, whose fractions are compared with the weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import itertools
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from istiolab.envoy.match import (
    Decision,
    Request,
    effective_rate_limit,
    route,
    select_virtual_host,
    strip_port,
)
from istiolab.envoy.model import (
    MILLION,
    HeaderMatcher,
    RateLimit,
    Redirect,
    RetryPolicy,
    Route,
    RouteTable,
    StringMatcher,
    VirtualHost,
)
from istiolab.envoy.policy import backoff_bound, retries_on_status, retries_on_timeout
from istiolab.envoy.render import render
from istiolab.envoy.sandbox import BackendBehaviour, BackendSpec, EnvoySandbox, RenderFn, Reply
from istiolab.errors import IstiolabError
from istiolab.profiles import get_profile
from istiolab.regex import RegexError, full_match
from istiolab.reprs import HTMLRepr

if TYPE_CHECKING:
    import pandas as pd

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

RANDOM_HEADER = "x-istiolab-random"
"""Request header the sandbox's Envoy reads the weighted-cluster random value from."""

SandboxFactory = Callable[[RenderFn, Sequence[BackendSpec]], EnvoySandbox]
"""Builds an (unstarted) sandbox from a render callable and the backend specs."""

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
_BURST_EXTRA = 10  # requests beyond max_tokens in a rate-limit burst


class CaseFileError(IstiolabError):
    """A cases file cannot be read or is not in router_check_tool format."""


# --------------------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One request and what should happen to it.

    Attributes:
        name: ``test_name``.
        request: The request.
        random_value: Envoy's weighted-cluster random value, or None to let Envoy draw.
        cluster: Expected cluster (router level: the route's pick even if a fault aborts it);
            ``""`` means none (no route, redirect, direct response); None: not checked.
        status: Expected status at the client (istiolab extension); None: not checked.
        code_redirect: Expected redirect status.
        path_redirect: Expected redirect URL (``scheme://host/path``, router_check_tool style).
        virtual_host: Expected virtual host name.
        note: Why the case exists (generated cases say which route they aim at).
    """

    name: str
    request: Request
    random_value: int | None = None
    cluster: str | None = None
    status: int | None = None
    code_redirect: int | None = None
    path_redirect: str | None = None
    virtual_host: str | None = None
    note: str = ""

    @property
    def has_expectation(self) -> bool:
        """Whether the case states any expectation of its own."""
        return any(
            v is not None
            for v in (
                self.cluster,
                self.status,
                self.code_redirect,
                self.path_redirect,
                self.virtual_host,
            )
        )


def _case_from_item(item: Any, where: str) -> Case:
    if not isinstance(item, dict):
        raise CaseFileError(f"{where}: a test must be a mapping, got {type(item).__name__}")
    name = item.get("test_name")
    if not isinstance(name, str) or not name:
        raise CaseFileError(f"{where}: test_name is missing or empty")
    where = f"{where} ({name!r})"
    inp = item.get("input")
    if not isinstance(inp, dict):
        raise CaseFileError(f"{where}: input is missing")

    def text(*keys: str, default: str | None = None) -> str:
        for k in keys:
            v = inp.get(k)
            if v is not None:
                if not isinstance(v, str) or not v:
                    raise CaseFileError(f"{where}: input.{k} must be a non-empty string")
                return v
        if default is None:
            raise CaseFileError(f"{where}: input.{keys[0]} is required")
        return default

    authority = text("authority", ":authority")
    path = text("path", ":path")
    method = text("method", ":method", default="GET")
    headers: dict[str, str] = {}
    for key in ("additional_request_headers", "additional_headers"):
        hs = inp.get(key) or []
        if not isinstance(hs, list):
            raise CaseFileError(f"{where}: input.{key} must be a list of {{key, value}}")
        for h in hs:
            if not isinstance(h, dict) or not isinstance(h.get("key", h.get("field")), str):
                raise CaseFileError(f"{where}: input.{key} entries need a string key")
            value = h.get("value", "")
            headers[str(h.get("key", h.get("field"))).lower()] = str(value)
    host = headers.pop("host", None) or headers.pop(":authority", None) or authority
    rv = inp.get("random_value")
    if rv is not None and (isinstance(rv, bool) or not isinstance(rv, int) or rv < 0):
        raise CaseFileError(f"{where}: input.random_value must be a non-negative integer")
    ssl = inp.get("ssl", False)
    if not isinstance(ssl, bool):
        raise CaseFileError(f"{where}: input.ssl must be true or false")
    scheme = "https" if ssl else "http"
    headers.pop("x-forwarded-proto", None)
    request = Request(path=path, method=method, host=host, headers=headers, scheme=scheme)

    val = item.get("validate") or {}
    if not isinstance(val, dict):
        raise CaseFileError(f"{where}: validate must be a mapping")
    known = {"cluster_name", "virtual_host_name", "code_redirect", "path_redirect", "status"}
    unknown = sorted(set(val) - known)
    if unknown:
        raise CaseFileError(
            f"{where}: validate.{unknown[0]} is not supported (use {', '.join(sorted(known))})"
        )

    def opt_int(key: str) -> int | None:
        v = val.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not 100 <= v <= 599:
            raise CaseFileError(f"{where}: validate.{key} must be an HTTP status, got {v!r}")
        return v

    def opt_str(key: str) -> str | None:
        v = val.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise CaseFileError(f"{where}: validate.{key} must be a string")
        return v

    return Case(
        name=name,
        request=request,
        random_value=rv,
        cluster=opt_str("cluster_name"),
        status=opt_int("status"),
        code_redirect=opt_int("code_redirect"),
        path_redirect=opt_str("path_redirect"),
        virtual_host=opt_str("virtual_host_name"),
    )


def parse_cases(data: Any, source: str = "<cases>") -> list[Case]:
    """Cases from already-parsed router_check_tool data (``{"tests": [...]}`` or a bare list)."""
    tests = data.get("tests") if isinstance(data, dict) else data
    if not isinstance(tests, list):
        raise CaseFileError(f"{source}: expected {{'tests': [...]}} (router_check_tool format)")
    return [_case_from_item(t, f"{source}: tests[{i}]") for i, t in enumerate(tests)]


def load_cases(path: str | Path) -> list[Case]:
    """Read a router_check_tool cases file (JSON, or YAML for any other suffix).

    Raises:
        CaseFileError: The file cannot be read or parsed, or a test is malformed; the message
            names the file, the test and the field.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise CaseFileError(f"{p}: cannot read: {reason}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            from istiolab.config.codecs import load_data

            data = load_data(text)
    except Exception as err:  # json.JSONDecodeError, yaml.YAMLError
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CaseFileError(f"{p}: not valid {p.suffix.lstrip('.') or 'YAML'}: {first}") from None
    return parse_cases(data, str(p))


def dump_cases(cases: Iterable[Case]) -> dict[str, Any]:
    """Cases as router_check_tool data (``json.dumps`` it); expectations go to ``validate``."""
    tests = []
    for c in cases:
        inp: dict[str, Any] = {
            "authority": c.request.host,
            "path": c.request.path,
            "method": c.request.method,
        }
        headers = [{"key": k, "value": v} for k, v in c.request.headers.items()]
        if headers:
            inp["additional_request_headers"] = headers
        if c.random_value is not None:
            inp["random_value"] = c.random_value
        if c.request.scheme == "https":
            inp["ssl"] = True
        val: dict[str, Any] = {}
        if c.cluster is not None:
            val["cluster_name"] = c.cluster
        if c.virtual_host is not None:
            val["virtual_host_name"] = c.virtual_host
        if c.code_redirect is not None:
            val["code_redirect"] = c.code_redirect
        if c.path_redirect is not None:
            val["path_redirect"] = c.path_redirect
        if c.status is not None:
            val["status"] = c.status
        test: dict[str, Any] = {"test_name": c.name, "input": inp}
        if val:
            test["validate"] = val
        tests.append(test)
    return {"tests": tests}


# ------------------------------------------------------------------------- model outcomes


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the client sees: status, answering cluster, Envoy flags, redirect location."""

    status: int
    cluster: str | None = None
    flags: str = ""
    location: str | None = None

    def text(self) -> str:
        """Short human form, e.g. ``200 outbound|8000|v1|httpbin...`` or ``404 NR``."""
        parts = [str(self.status)]
        if self.cluster:
            parts.append(self.cluster)
        if self.flags and self.flags != "-":
            parts.append(self.flags)
        if self.location:
            parts.append(f"-> {self.location}")
        return " ".join(parts)

    def satisfied_by(self, observed: Outcome) -> bool:
        """Whether an observed outcome is this expected one (flags: expected ⊆ observed)."""
        if observed.status != self.status:
            return False
        if self.cluster is not None and observed.cluster != self.cluster:
            return False
        if self.location is not None and observed.location != self.location:
            return False
        want = {f for f in self.flags.split(",") if f and f != "-"}
        got = {f for f in observed.flags.split(",") if f and f != "-"}
        return want <= got


def redirect_url(redirect: Redirect, request: Request) -> str:
    """The ``Location`` Envoy sends for *redirect* (scheme, host and port swapped as set).

    The path is replaced when the redirect sets one; the request's query string is kept
    unless the new path carries its own (Envoy's ``path_redirect`` rule).
    """
    scheme = redirect.scheme or request.scheme
    host = redirect.host or strip_port(request.host)
    port = f":{redirect.port}" if redirect.port else ""
    path = request.path
    if redirect.path is not None:
        _, sep, query = request.path.partition("?")
        path = redirect.path if "?" in redirect.path or not sep else f"{redirect.path}?{query}"
    return f"{scheme}://{host}{port}{path}"


def _enforced(rl: RateLimit | None) -> bool:
    return rl is not None and rl.enabled_per_million > 0 and rl.enforced_per_million > 0


def _effective_random(table: RouteTable, case: Case) -> tuple[Decision, int | None]:
    """The model's decision; a case naming a cluster of a split gets router_check's 0."""
    decision = route(table, case.request, case.random_value)
    rv = case.random_value
    r = decision.route
    if rv is None and case.cluster and r is not None and len(r.clusters) > 1:
        rv = 0  # router_check_tool's default random_value
        decision = route(table, case.request, rv)
    return decision, rv


def model_outcomes(decision: Decision, request: Request) -> tuple[Outcome, ...]:
    """Every outcome the model allows for one request (more than one for Envoy's random draws).

    A split without a random value may answer from any destination; a fractional abort may
    answer with the abort status.
    """
    r = decision.route
    if r is None:
        return (Outcome(404, flags="NR"),)
    if r.redirect is not None:
        return (Outcome(r.redirect.code, location=redirect_url(r.redirect, request)),)
    if r.direct_response is not None:
        return (Outcome(r.direct_response.status),)
    fault = r.fault
    abort = fault is not None and fault.abort_status is not None and fault.abort_per_million > 0
    if abort and fault is not None and fault.abort_per_million >= MILLION:
        assert fault.abort_status is not None
        return (Outcome(fault.abort_status, flags="FI"),)
    clusters = [decision.cluster] if decision.cluster is not None else list(r.clusters)
    out = [Outcome(200, cluster=c.name) for c in clusters]
    if abort and fault is not None and fault.abort_status is not None:
        out.append(Outcome(fault.abort_status, flags="FI"))
    return tuple(out)


def _model_vs_case(case: Case, decision: Decision) -> list[str]:
    """Where the case file's own expectations differ from the model's."""
    out = []
    r = decision.route
    if case.cluster is not None:
        got = decision.cluster.name if decision.cluster is not None else ""
        if got != case.cluster:
            out.append(f"cluster_name {case.cluster!r}, model {got!r}")
    if case.virtual_host is not None:
        vh = decision.virtual_host.name if decision.virtual_host is not None else ""
        if vh != case.virtual_host:
            out.append(f"virtual_host_name {case.virtual_host!r}, model {vh!r}")
    if case.code_redirect is not None:
        code = r.redirect.code if r is not None and r.redirect is not None else None
        if code != case.code_redirect:
            out.append(f"code_redirect {case.code_redirect}, model {code}")
    if case.path_redirect is not None:
        url = (
            redirect_url(r.redirect, case.request)
            if r is not None and r.redirect is not None
            else ""
        )
        if url != case.path_redirect:
            out.append(f"path_redirect {case.path_redirect!r}, model {url!r}")
    if case.status is not None:
        status = model_outcomes(decision, case.request)[0].status
        if status != case.status:
            out.append(f"status {case.status}, model {status}")
    return out


def check_case(table: RouteTable, case: Case) -> list[str]:
    """Where *case*'s own expectations (its ``validate``) differ from the model; [] if nowhere.

    As router_check_tool, a case naming a cluster of a weighted route without a random value
    is decided with random value 0.
    """
    decision, _ = _effective_random(table, case)
    return _model_vs_case(case, decision)


# -------------------------------------------------------------------- retry semantics (Envoy)


def expected_attempts(p: float, retries: int) -> tuple[float, float]:
    """Mean and variance of upstream requests per client request (external truths item 10).

    A backend failing independently with probability *p*, retried up to *retries* times:
    ``E = (1 - p**(n+1)) / (1 - p)``.
    """
    n = retries
    probs = [(p ** (k - 1)) * (1 - p) for k in range(1, n + 1)] + [p**n]
    mean = sum(k * q for k, q in enumerate(probs, start=1))
    var = sum((k - mean) ** 2 * q for k, q in enumerate(probs, start=1))
    return mean, var


# ------------------------------------------------------------------------- statistics


def _z(confidence: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.99) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


# --------------------------------------------------------------------------- generating


def _sre() -> Any:
    return importlib.import_module("re._parser")


def _synth(tree: Any, minimal: bool) -> str:
    """A string the parsed (Python ``re``) pattern matches, or raise ValueError."""
    c = importlib.import_module("re._constants")
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT} | (
        {c.POSSESSIVE_REPEAT} if hasattr(c, "POSSESSIVE_REPEAT") else set()
    )
    out: list[str] = []
    for op, av in tree:
        if op is c.LITERAL:
            out.append(chr(av))
        elif op is c.NOT_LITERAL:
            out.append("a" if chr(av) != "a" else "b")
        elif op is c.ANY:
            out.append("a")
        elif op is c.IN:
            out.append(_in_class(av, c))
        elif op in repeats:
            lo, hi, sub = av
            times = lo if minimal else max(lo, 1 if hi != 0 else 0)
            out.append(_synth(sub, minimal) * times)
        elif op is c.SUBPATTERN:
            out.append(_synth(av[-1], minimal))
        elif op is c.BRANCH:
            out.append(_synth(av[1][0], minimal))
        elif str(op) == "ATOMIC_GROUP":
            out.append(_synth(av, minimal))
        elif op is c.AT:
            continue  # anchors (^, $, \\b) add no characters
        else:
            raise ValueError(f"cannot synthesise {op}")
    return "".join(out)


def _in_class(items: Any, consts: Any) -> str:
    negate = any(op is consts.NEGATE for op, _ in items)
    if negate:
        banned = set()
        for op, av in items:
            if op is consts.LITERAL:
                banned.add(chr(av))
            elif op is consts.RANGE:
                banned.update(chr(c) for c in range(av[0], av[1] + 1))
        for ch in "aZ0-_.x":
            if ch not in banned:
                return ch
        raise ValueError("negated class")
    for op, av in items:
        if op is consts.LITERAL:
            return chr(av)
        if op is consts.RANGE:
            return chr(av[0])
        if op is consts.CATEGORY:
            cat = str(av)
            if "DIGIT" in cat and "NOT" not in cat:
                return "0"
            if "WORD" in cat and "NOT" not in cat:
                return "a"
            if "SPACE" in cat and "NOT" not in cat:
                return " "
            return "-"
    raise ValueError("empty class")


def regex_examples(pattern: str) -> list[str]:
    """Strings RE2 fully matches against *pattern* (may be empty when none was found).

    Heuristics: a shortest and a "one of each repetition" walk of the pattern's parse tree, and
    simple rewrites (optional groups dropped, ``.*`` removed); every candidate is checked with
    RE2's full match, so a wrong guess is never returned.
    """
    cands: list[str] = []
    try:
        tree = _sre().parse(pattern)
        for minimal in (True, False):
            with contextlib.suppress(ValueError, TypeError, IndexError):
                cands.append(_synth(tree, minimal))
    except Exception:  # re.error or a private-API change: fall back to rewrites
        pass
    import re

    simple = pattern.strip("^$")
    simple = re.sub(r"\((?:[^()]|\\.)*\)\?", "", simple)
    for a, b in ((".*?", ""), (".+?", "a"), (".*", ""), (".+", "a"), ("\\.", "."), ("\\/", "/")):
        simple = simple.replace(a, b)
    cands.append(simple)
    out: list[str] = []
    for c in cands:
        try:
            if c not in out and full_match(pattern, c):
                out.append(c)
        except RegexError:
            return []
    # Shortest first, but an empty string last (an empty header value is a poor example).
    return sorted(out, key=lambda c: (c == "", len(c)))


def _string_examples(m: StringMatcher) -> list[str]:
    """Values satisfying a string matcher, best first."""
    if m.kind == "present":
        return ["1"]
    if m.kind in ("exact", "prefix", "suffix"):
        base = [m.value] if m.value else []
        if m.kind == "exact" and not m.value:
            base = [""]
        if m.ignore_case and m.value.swapcase() != m.value:
            base.insert(0, m.value.swapcase())
        return base
    if m.kind == "regex":
        return regex_examples(m.value)
    return []


def _host_examples(vh: VirtualHost) -> list[str]:
    out = []
    for d in vh.domains:
        d = strip_port(d)
        if d == "*":
            out += ["istiolab.test", "any.example.invalid"]
        elif d.startswith("*"):
            out.append("a" + d[1:])
        elif d.endswith("*"):
            out.append(d[:-1] + "a")
        else:
            out.append(d)
    return out


def _request_for(r: Route, host: str) -> list[Request]:
    """Candidate requests meeting every condition of route *r* (checked by the caller).

    Every combination of the conditions' example values is tried (at most 32), so that a
    later route can be reached with a value an earlier route does not take.
    """
    m = r.match
    if m.path_kind == "regex":
        paths = [p for p in regex_examples(m.path) if p.startswith("/")]
    else:
        paths = [m.path]
        if not m.case_sensitive and m.path.swapcase() != m.path:
            paths.insert(0, m.path.swapcase())
    paths = [quote(p, safe="/%:@!$&'()*+,;=-._~?") for p in paths]
    choices: list[list[tuple[str, str, str]]] = [[("path", "", p) for p in paths]]
    for h in m.headers:
        if h.invert:
            continue  # absent (Istio sets treat_missing_header_as_empty: absent is "")
        vals = [v for v in _string_examples(h.match) if "\n" not in v and "\r" not in v]
        if not vals:
            return []
        choices.append([("header", h.name, v) for v in vals])
    for q in m.query_params:
        vals = _string_examples(q.match)
        if not vals:
            return []
        choices.append([("query", q.name, v) for v in vals])
    out = []
    for combo in itertools.islice(itertools.product(*choices), 32):
        method, scheme, req_host = "GET", "http", host
        headers: dict[str, str] = {}
        query = []
        path = ""
        for kind, name, value in combo:
            if kind == "path":
                path = value
            elif kind == "query":
                present = any(q.name == name and q.match.kind == "present" for q in m.query_params)
                query.append(name if present else f"{name}={quote(value)}")
            elif name == ":method":
                method = value
            elif name == ":authority":
                req_host = value
            elif name == ":scheme":
                scheme = value
            else:
                headers[name] = value
        qs = ("?" + "&".join(query)) if query else ""
        out.append(
            Request(path=path + qs, method=method, host=req_host, headers=headers, scheme=scheme)
        )
    return out


def _inverted_alternatives(req: Request, headers: Sequence[HeaderMatcher]) -> list[Request]:
    """With inverted headers absent the route may still fail; try a non-matching value."""
    extra = {h.name: "istiolab-nomatch" for h in headers if h.invert and h.name[0] != ":"}
    if not extra:
        return []
    return [dataclasses.replace(req, headers={**req.headers, **extra})]


def _expectation(table: RouteTable, name: str, req: Request, rv: int | None, note: str) -> Case:
    d = route(table, req, rv)
    outs = model_outcomes(d, req)
    r = d.route
    statuses = {o.status for o in outs}
    cluster: str | None
    if r is None or r.redirect is not None or r.direct_response is not None:
        cluster = ""
    else:
        cluster = d.cluster.name if d.cluster is not None else None
    return Case(
        name=name,
        request=req,
        random_value=rv,
        cluster=cluster,
        status=next(iter(statuses)) if len(statuses) == 1 else None,
        code_redirect=r.redirect.code if r is not None and r.redirect is not None else None,
        path_redirect=outs[0].location if r is not None and r.redirect is not None else None,
        virtual_host=d.virtual_host.name if d.virtual_host is not None else None,
        note=note,
    )


def generate_cases(table: RouteTable, *, notes: list[str] | None = None) -> list[Case]:
    """A request for every route (checked to land there), split boundaries, and a no-route one.

    For weighted routes, one case per destination gives the first random value that picks it
    (Envoy picks ``random_value % total`` against the cumulative weights). Routes no request
    can reach (shadowed by an earlier route, or with a regex no example was found for) are
    left out and explained in *notes*.

    Returns:
        Cases whose expectations are the model's (:func:`~istiolab.envoy.match.route`).
    """
    notes = notes if notes is not None else []
    cases: list[Case] = []
    used: set[str] = set()

    def unique(name: str) -> str:
        base, i = name, 2
        while name in used:
            name, i = f"{base} ({i})", i + 1
        used.add(name)
        return name

    for vh in table.virtual_hosts:
        hosts = [h for h in _host_examples(vh) if select_virtual_host(table, h) is vh]
        if not hosts:
            notes.append(f"virtual host {vh.name}: no host name selects it (domains {vh.domains})")
            continue
        for k, r in enumerate(vh.routes):
            found: Request | None = None
            candidates = [c for h in hosts for c in _request_for(r, h)]
            candidates += [
                a for c in list(candidates) for a in _inverted_alternatives(c, r.match.headers)
            ]
            for req in candidates:
                d = route(table, req)
                if d.route is r and d.virtual_host is vh:
                    found = req
                    break
            label = f"{vh.name} route[{k}] {r.name}"
            if found is None:
                if not candidates:
                    notes.append(f"{label}: no request could be synthesised (regex?); skipped")
                else:
                    d = route(table, candidates[0])
                    by = d.route.name if d.route is not None else "no route"
                    notes.append(f"{label}: unreachable, requests for it go to {by}")
                continue
            cases.append(_expectation(table, unique(label), found, None, f"reaches {r.name}"))
            if len(r.clusters) > 1 and r.total_weight > 0:
                acc = 0
                for c in r.clusters:
                    if c.weight > 0:
                        cases.append(
                            _expectation(
                                table,
                                unique(f"{label} random_value={acc}"),
                                found,
                                acc,
                                f"first random value picking {c.name}",
                            )
                        )
                    acc += c.weight
                cases.append(
                    _expectation(
                        table,
                        unique(f"{label} random_value={acc - 1}"),
                        found,
                        acc - 1,
                        "last random value",
                    )
                )
    # One request that matches no route.
    misses = [
        Request(path="/istiolab-no-such-route", host=h)
        for h in (
            "no-route.istiolab.invalid",
            *(x for vh in table.virtual_hosts for x in _host_examples(vh)),
        )
    ]
    for req in misses:
        if route(table, req).route is None:
            cases.append(_expectation(table, unique("no route"), req, None, "matches no route"))
            break
    else:
        notes.append("every virtual host catches every request: no 404 case")
    return cases


# ------------------------------------------------------------------------------- report


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


# ------------------------------------------------------------------------------- verify


def backend_specs(table: RouteTable) -> list[BackendSpec]:
    """One stub backend (one endpoint) per cluster of the table."""
    return [
        BackendSpec(cluster=c.name, service=c.host.split(".")[0], subset=c.subset or None)
        for c in table.clusters.values()
    ]


def _add_random_header(node: Any) -> None:
    if isinstance(node, dict):
        wc = node.get("weighted_clusters")
        if isinstance(wc, dict):
            wc["header_name"] = RANDOM_HEADER
        for v in node.values():
            _add_random_header(v)
    elif isinstance(node, list):
        for v in node:
            _add_random_header(v)


def sandbox_render(table: RouteTable) -> RenderFn:
    """The render callable for the sandbox: :func:`render` plus ``header_name`` on splits."""

    def fn(
        port: int, endpoints: Mapping[str, Sequence[tuple[str, int]]], log: str
    ) -> dict[str, Any]:
        boot = render(table, endpoints, listener_port=port, access_log_path=log)
        _add_random_header(boot["static_resources"]["listeners"])
        return boot

    return fn


def _default_factory(render_fn: RenderFn, specs: Sequence[BackendSpec]) -> EnvoySandbox:
    return EnvoySandbox(render_fn, specs)


def _wire(req: Request, rv: int | None) -> dict[str, Any]:
    headers = dict(req.headers)
    if req.scheme == "https":
        headers["x-forwarded-proto"] = "https"
    if rv is not None:
        headers[RANDOM_HEADER] = str(rv)
    return {"path": req.path, "method": req.method, "host": req.host, "headers": headers}


def _observed(reply: Reply) -> Outcome:
    return Outcome(
        status=reply.status,
        cluster=reply.backend,
        flags=reply.flags,
        location=reply.headers.get("location"),
    )


class _Verifier:
    def __init__(
        self,
        table: RouteTable,
        sb: EnvoySandbox,
        report: VerifyReport,
        requests: int,
        confidence: float,
        concurrency: int,
    ) -> None:
        self.table = table
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
        buckets: list[tuple[RateLimit, Case, Route | None]] = []
        if self.table.rate_limit is not None and plan:
            # A request the gateway bucket applies to: one whose route has no bucket of its own.
            for case, d, _ in plan:
                if d.route is None or d.route.rate_limit is None:
                    buckets.append((self.table.rate_limit, case, d.route))
                    break
        seen: set[int] = set()
        for case, d, _ in plan:
            r = d.route
            if r is not None and r.rate_limit is not None and id(r) not in seen:
                seen.add(id(r))
                buckets.append((r.rate_limit, case, r))
        for b, case, r in buckets:
            self.burst(b, case, r)

    def burst(self, b: RateLimit, case: Case, r: Route | None) -> None:
        label = f"{case.name} [rate limit {b.scope} {b.source}]"
        if not (b.enabled_per_million in (0, MILLION) and b.enforced_per_million in (0, MILLION)):
            self.skip(label, "filter_enabled/filter_enforced is a fraction: not checked")
            return
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
            n = self.n
            if (
                delay
                and f is not None
                and f.delay_per_million >= MILLION
                and not split
                and not abort
            ):
                n = _DELAY_SAMPLE
            df = self.load(_wire(case.request, None), n, concurrency=self.concurrency)
            flags = df["flags"].fillna("")
            aborted = (
                df["status"] == (f.abort_status if abort and f else -1)
            ) & flags.str.contains("FI")
            if abort and f is not None:
                self.fraction(
                    case.name, "abort", f.abort_per_million / MILLION, int(aborted.sum()), n
                )
            if delay and f is not None and f.delay_s is not None:
                delayed = flags.str.contains("DI")
                self.fraction(
                    case.name, "delay", f.delay_per_million / MILLION, int(delayed.sum()), n
                )
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
                if other:
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
                        self.retry_sample(case, r, names)
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

    def retry_sample(self, case: Case, r: Route, names: Sequence[str]) -> None:
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
        df, tries = self.upstream_requests(names, lambda: self.load(wire, self.n, conc))
        n = pol.num_retries
        mean, var = expected_attempts(p, n)
        k = int((df["status"] == 200).sum())
        self.fraction(case.name, "retry_success", 1 - p ** (n + 1), k, self.n)
        half = self.z * math.sqrt(var / self.n)
        seen = tries / self.n
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
                for i in range(2):
                    before = self.sb.stats()
                    reply = self.send(_wire(case.request, None), r, timeout_s=upper + 5.0)
                    after = self.sb.stats()
                    n_tries = self.stat_sum(after, names, "upstream_rq_total") - self.stat_sum(
                        before, names, "upstream_rq_total"
                    )
                    took = reply.duration_s
                    # Each try's timer and connection set-up can slip on a loaded machine, so
                    # the late tolerance grows with the number of tries.
                    late = TIMING_TOLERANCE_S * max(1, n_tries)
                    self.report.timing.append(
                        {
                            "case": case.name,
                            "metric": "timeout",
                            "expected_s": [round(lower, 4), round(upper, 4)],
                            "envoy_s": round(took, 4),
                            "tolerance_s": [-TIMING_EARLY_S, late],
                            "detail": (
                                f"request {i + 1}: backend slower than every timeout; route "
                                f"timeout {route_t}, per-try {per_try}, {min_tries}..{tries} tries "
                                f"expected, {n_tries} seen; client got {reply.status} {reply.flags}"
                            ),
                            "ok": reply.status == 504
                            and "UT" in reply.flags
                            and min_tries <= n_tries <= tries
                            and lower - TIMING_EARLY_S <= took <= upper + late,
                        }
                    )
            finally:
                for c in names:
                    self.sb.set_behaviour(c, BackendBehaviour())


def verify(
    table: RouteTable,
    cases: Sequence[Case],
    *,
    requests: int = 400,
    sandbox_factory: SandboxFactory | None = None,
    confidence: float = 0.99,
    concurrency: int = 16,
) -> VerifyReport:
    """Send every case through the model and a real Envoy; compare.

    Runs one sandbox. In order: local rate-limit bursts (while buckets are full), the
    deterministic check of every case, fractions of every split/fault route reached by a case
    (``requests`` requests each), retries against failing backends, and timeouts against slow
    backends. The sandbox's Envoy runs :func:`sandbox_render` of *table*.

    Args:
        table: The compiled route table.
        cases: Cases (:func:`load_cases`, :func:`generate_cases`).
        requests: Requests per stochastic check.
        sandbox_factory: Builds the sandbox (default :class:`EnvoySandbox`).
        confidence: Confidence level of the binomial (Wilson) intervals.
        concurrency: Requests in flight for the stochastic checks.

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
        v = _Verifier(table, sb, report, requests, confidence, concurrency)
        v.rate_limits(plan)
        v.deterministic(plan)
        v.stochastic(plan)
        v.retries(plan)
        v.timeouts(plan)
    report.envoy_seconds = time.monotonic() - start
    return report
