"""Generating cases from a route table: a request for every route, split boundaries, no route."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import itertools
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from istiolab.envoy.match import Request, route, select_virtual_host, strip_port
from istiolab.envoy.model import (
    HeaderMatcher,
    Route,
    RouteMatch,
    RouteTable,
    StringMatcher,
    VirtualHost,
)
from istiolab.envoy.verify.cases import Case
from istiolab.envoy.verify.outcomes import model_outcomes
from istiolab.regex import check_re2, compile_re2

__all__ = ["generate_cases", "regex_examples", "requests_for"]


# Bounds on example generation, so that no pattern can make verify hang or exhaust memory.
# Everything below is linear in the pattern (a walk of its parse tree, RE2 rewrites and RE2
# checks), but repetition counts multiply: ((a{1000}){1000}){1000} would spell out 10^9
# characters. A request line longer than this is no useful example anyway.
_MAX_EXAMPLE_CHARS = 4096
_MAX_SYNTH_STEPS = 100_000  # parse-tree nodes visited per candidate
_MAX_PATTERN_CHARS = 8192  # longer patterns are not parsed by Python's re (recursion, time)
# Optional groups to drop: "(...)?" whose body holds no parenthesis. Unambiguous (a backslash
# is only ever consumed with the character after it), and run by RE2 (linear time): the
# former Python re version backtracked exponentially on runs of backslashes.
_OPTIONAL_GROUP = r"\((?:[^()\\]|\\.)*\)\?"


class _Budget:
    """Counts the work of one synthesis; raises ValueError when it is used up."""

    def __init__(self) -> None:
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > _MAX_SYNTH_STEPS:
            raise ValueError("pattern too complex to synthesise an example")

    @staticmethod
    def check_length(n: int) -> None:
        if n > _MAX_EXAMPLE_CHARS:
            raise ValueError(f"example would exceed {_MAX_EXAMPLE_CHARS} characters")


@functools.lru_cache(maxsize=1024)
def _matcher(pattern: str) -> Any:
    """*pattern* compiled by RE2 without capture groups, for yes/no full matches.

    :func:`istiolab.regex.full_match` compiles with captures, and RE2 then runs its NFA with
    every group tracked: seconds per call for a thousand optional groups in a row. Without
    captures RE2 uses its DFA, linear in the text whatever the pattern.
    """
    import re2

    options = re2.Options()
    options.log_errors = False
    options.never_capture = True
    return re2.compile(pattern, options)


def _sre() -> Any:
    return importlib.import_module("re._parser")


def _synth(tree: Any, minimal: bool, budget: _Budget | None = None) -> str:
    """A string the parsed (Python ``re``) pattern matches, or raise ValueError.

    Bounded by *budget* (steps) and :data:`_MAX_EXAMPLE_CHARS` (length of any part).
    """
    budget = budget if budget is not None else _Budget()
    c = importlib.import_module("re._constants")
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT} | (
        {c.POSSESSIVE_REPEAT} if hasattr(c, "POSSESSIVE_REPEAT") else set()
    )
    out: list[str] = []
    size = 0
    for op, av in tree:
        budget.step()
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
            part = _synth(sub, minimal, budget) if times else ""
            _Budget.check_length(size + len(part) * times)
            out.append(part * times)
        elif op is c.SUBPATTERN:
            out.append(_synth(av[-1], minimal, budget))
        elif op is c.BRANCH:
            out.append(_synth(av[1][0], minimal, budget))
        elif str(op) == "ATOMIC_GROUP":
            out.append(_synth(av, minimal, budget))
        elif op is c.AT:
            continue  # anchors (^, $, \\b) add no characters
        else:
            raise ValueError(f"cannot synthesise {op}")
        size += len(out[-1])
        _Budget.check_length(size)
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

    Bounded for any pattern (linear in its length; see :data:`_MAX_SYNTH_STEPS` and
    :data:`_MAX_EXAMPLE_CHARS`): a pattern whose examples would be too long or too costly to
    build gets none, and :func:`generate_cases` skips its route with a note.
    """
    if check_re2(pattern) is not None:
        return []  # Envoy rejects it too; lint reports it (IL107)
    cands: list[str] = []
    if len(pattern) <= _MAX_PATTERN_CHARS:
        try:
            tree = _sre().parse(pattern)
            for minimal in (True, False):
                with contextlib.suppress(ValueError, TypeError, IndexError, RecursionError):
                    cands.append(_synth(tree, minimal))
        except Exception:  # re.error or a private-API change: fall back to rewrites
            pass
    simple = pattern.strip("^$")
    simple = compile_re2(_OPTIONAL_GROUP).sub("", simple)
    for a, b in ((".*?", ""), (".+?", "a"), (".*", ""), (".+", "a"), ("\\.", "."), ("\\/", "/")):
        simple = simple.replace(a, b)
    cands.append(simple)
    out: list[str] = []
    matcher = _matcher(pattern)
    for c in cands:
        if c not in out and matcher.fullmatch(c) is not None:
            out.append(c)
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
    return requests_for(r.match, host)


def requests_for(m: RouteMatch, host: str) -> list[Request]:
    """Candidate requests to *host* meeting every condition of the match *m*.

    Every combination of the conditions' example values is tried (at most 32), so that a
    later route can be reached with a value an earlier route does not take. Whether a request
    really lands on a given route is for the caller to check (:func:`~istiolab.envoy.match.route`).
    """
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


def _only(table: RouteTable, vh: VirtualHost, r: Route) -> RouteTable:
    """*table* with only virtual host *vh*, holding only route *r*."""
    return dataclasses.replace(table, virtual_hosts=(dataclasses.replace(vh, routes=(r,)),))


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
                    why = "(regex?)"
                    if r.match.path_kind == "regex":
                        why = "(no example of its path regex found within the generator's limits)"
                    notes.append(f"{label}: no request could be synthesised {why}; skipped")
                else:
                    d = route(table, candidates[0])
                    by = d.route.name if d.route is not None else "no route"
                    notes.append(f"{label}: unreachable, requests for it go to {by}")
                continue
            # The expectations below route the found request again, with random values: through
            # a table of this one route, which decides the same (the request lands on it) in
            # O(1) instead of a scan of the virtual host (quadratic over a large table).
            alone = _only(table, vh, r)
            cases.append(_expectation(alone, unique(label), found, None, f"reaches {r.name}"))
            if len(r.clusters) > 1 and r.total_weight > 0:
                acc = 0
                for c in r.clusters:
                    if c.weight > 0:
                        cases.append(
                            _expectation(
                                alone,
                                unique(f"{label} random_value={acc}"),
                                found,
                                acc,
                                f"first random value picking {c.name}",
                            )
                        )
                    acc += c.weight
                cases.append(
                    _expectation(
                        alone,
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
