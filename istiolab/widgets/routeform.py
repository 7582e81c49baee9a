"""The RuleDesigner's form and its mapping to and from config documents (no widgets here).

A :class:`RouteForm` holds what the designer's widgets show for one route as plain values:
destination weights, one match condition (header, cookie or URI), fault abort and delay, retries
and timeout. :func:`read_legacy` and :func:`read_modern` fill it from a RouteRule document or from
one ``spec.http[i]`` of a VirtualService; :func:`write_legacy` and :func:`write_modern` write it
back, rewriting only the sections whose values changed, so a route that was not edited is written
back exactly as it was. :func:`editable_routes` lists the routes a config lets the designer edit,
and :func:`parse_headers` reads the headers of the request to explain.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

COOKIE_REGEX = "^(.*?; ?)?({pair})(;.*)?$"
"""How a cookie ``name=value`` is matched in the ``cookie`` header (RE2 full match; browsers
separate cookies with ``"; "``)."""
_COOKIE_RE = re.compile(r"^\^\(\.\*\?; \?\)\?\((?P<pair>.*)\)\(;\.\*\)\?\$$")
_COOKIE_RE_TIGHT = re.compile(r"^\^\(\.\*\?;\)\?\((?P<pair>.*)\)\(;\.\*\)\?\$$")
LEGACY_API = "config.istio.io/v1alpha2"


@dataclasses.dataclass
class RouteForm:
    """What the designer's widgets show for one route (plain values, no Istio semantics).

    Attributes:
        destinations: Display names of the destinations (subset or version label).
        weights: Their weights, in order.
        match_kind: ``any``, ``header``, ``cookie`` or ``uri``.
        match_name: Header name (``header`` only).
        match_type: ``exact``, ``prefix`` or ``regex``.
        match_value: The value; for ``cookie`` the ``name=value`` pair.
        abort_percent: Share of requests aborted (0 = no abort).
        abort_status: HTTP status of an abort.
        delay_percent: Share of requests delayed (0 = no delay).
        delay_s: The fixed delay.
        retries: Whether the route sets retries (else the profile's default applies).
        attempts: Retries (modern ``attempts``; legacy ``simpleRetry.attempts``).
        per_try_timeout_s: Per-try timeout (0 = not set).
        retry_on: Modern ``retryOn`` ("" = not set).
        timeout_s: Route timeout (0 = not set: the profile's default).
    """

    destinations: list[str] = dataclasses.field(default_factory=list)
    weights: list[int] = dataclasses.field(default_factory=list)
    match_kind: str = "any"
    match_name: str = ""
    match_type: str = "exact"
    match_value: str = ""
    abort_percent: float = 0.0
    abort_status: int = 503
    delay_percent: float = 0.0
    delay_s: float = 0.0
    retries: bool = False
    attempts: int = 0
    per_try_timeout_s: float = 0.0
    retry_on: str = ""
    timeout_s: float = 0.0


def _seconds(text: Any) -> float:
    from istiolab.units import parse_duration

    try:
        return float(parse_duration(str(text)))
    except (ValueError, TypeError):
        return 0.0


def _duration(seconds: float) -> str:
    from istiolab.units import format_duration

    return str(format_duration(seconds))


def _read_match(
    headers: dict[str, Any] | None, uri: dict[str, Any] | None, form: RouteForm
) -> None:
    if uri:
        (kind, value), *_ = uri.items()
        form.match_kind, form.match_type, form.match_value = "uri", kind, str(value)
        return
    for name, cond in (headers or {}).items():
        if not isinstance(cond, dict) or not cond:
            continue
        (kind, value), *_ = cond.items()
        if name.lower() == "cookie" and kind == "regex":
            m = _COOKIE_RE.match(str(value)) or _COOKIE_RE_TIGHT.match(str(value))
            if m:
                form.match_kind, form.match_type = "cookie", "regex"
                form.match_value = m.group("pair").replace("\\", "")
                return
        form.match_kind, form.match_name = "header", name
        form.match_type, form.match_value = kind, str(value)
        return


def _match_id(form: RouteForm) -> tuple[str, str, str, str]:
    return (form.match_kind, form.match_name.lower(), form.match_type, form.match_value)


def _match_condition(form: RouteForm) -> tuple[str, dict[str, str]] | None:
    """``(header name or "uri", {type: value})`` for the form's match, or None."""
    if form.match_kind == "any" or not form.match_value:
        return None
    if form.match_kind == "cookie":
        return "cookie", {"regex": COOKIE_REGEX.format(pair=re.escape(form.match_value))}
    if form.match_kind == "uri":
        return "uri", {form.match_type: form.match_value}
    if not form.match_name:
        return None
    return form.match_name.lower(), {form.match_type: form.match_value}


# -- legacy RouteRule ------------------------------------------------------------------------


def _weight(route: dict[str, Any], destinations: int) -> int:
    """A destination's weight as compile reads it.

    A lone destination takes 100; an unset weight among several is 0 (istiod and Pilot 0.2 drop
    the destination).
    """
    if route.get("weight") is not None:
        return int(route["weight"])
    return 100 if destinations == 1 else 0


def _percentage(fault: dict[str, Any]) -> float:
    """A modern fault's percentage as compile reads it (unset: no request is affected)."""
    value = (fault.get("percentage") or {}).get("value")
    if value is None:
        value = fault.get("percent")  # deprecated integer form
    return float(value or 0.0)


def read_legacy(doc: dict[str, Any]) -> RouteForm:
    """The form of a RouteRule document."""
    spec = doc.get("spec", {})
    form = RouteForm()
    routes = spec.get("route") or [{}]
    for i, r in enumerate(routes):
        labels = r.get("labels") or {}
        name = ",".join(str(v) for v in labels.values()) or (
            (r.get("destination") or {}).get("name") or spec["destination"].get("name", f"#{i}")
        )
        form.destinations.append(str(name))
        form.weights.append(_weight(r, len(routes)))
    headers = ((spec.get("match") or {}).get("request") or {}).get("headers") or {}
    uri = headers.get("uri")
    _read_match({k: v for k, v in headers.items() if k != "uri"}, uri, form)
    fault = spec.get("httpFault") or {}
    if fault.get("abort"):
        form.abort_percent = float(fault["abort"].get("percent") or 0.0)
        form.abort_status = int(fault["abort"].get("httpStatus", 503))
    if fault.get("delay"):
        form.delay_percent = float(fault["delay"].get("percent") or 0.0)
        form.delay_s = _seconds(fault["delay"].get("fixedDelay", "0s"))
    simple = (spec.get("httpReqRetries") or {}).get("simpleRetry")
    if simple:
        form.retries = True
        form.attempts = int(simple.get("attempts", 0))
        form.per_try_timeout_s = _seconds(simple.get("perTryTimeout", "0s"))
    timeout = ((spec.get("httpReqTimeout") or {}).get("simpleTimeout") or {}).get("timeout")
    form.timeout_s = _seconds(timeout) if timeout else 0.0
    return form


def _write_legacy_match(spec: dict[str, Any], old: RouteForm, form: RouteForm) -> None:
    match = spec.get("match") or {}
    request = match.get("request") or {}
    headers = request.get("headers") or {}
    old_key = _match_condition(old)
    if old_key is not None:
        headers.pop(old_key[0], None)
    cond = _match_condition(form)
    if cond is not None:
        headers = {cond[0]: cond[1], **headers}
    if headers:
        request["headers"] = headers
        match["request"] = request
    else:
        request.pop("headers", None)
        if not request:
            match.pop("request", None)
    if match:
        spec["match"] = match
    else:
        spec.pop("match", None)


def _num(value: float) -> float | int:
    """A whole number as an int (``100`` rather than ``100.0`` in the YAML)."""
    return int(value) if float(value).is_integer() else float(value)


def _fault_id(form: RouteForm) -> tuple[float, int, float, float]:
    return (form.abort_percent, form.abort_status, form.delay_percent, form.delay_s)


def _retry_id(form: RouteForm) -> tuple[bool, int, float, str]:
    return (form.retries, form.attempts, form.per_try_timeout_s, form.retry_on)


def write_legacy(doc: dict[str, Any], form: RouteForm) -> dict[str, Any]:
    """A copy of the RouteRule document with the form applied.

    Only the sections whose form values changed are rewritten; the rest stays as written.
    """
    doc = copy.deepcopy(doc)
    old = read_legacy(doc)
    spec = doc.setdefault("spec", {})
    routes = spec.get("route") or [{}]
    if form.weights != old.weights or len(routes) > 1 or any("weight" in r for r in routes):
        for r, weight in zip(routes, form.weights, strict=False):
            r["weight"] = int(weight)
        spec["route"] = routes
    if _match_id(form) != _match_id(old):
        _write_legacy_match(spec, old, form)
    if _fault_id(form) != _fault_id(old):
        fault: dict[str, Any] = {}
        if form.abort_percent > 0:
            fault["abort"] = {
                "percent": _num(form.abort_percent),
                "httpStatus": int(form.abort_status),
            }
        if form.delay_percent > 0 and form.delay_s > 0:
            fault["delay"] = {
                "percent": _num(form.delay_percent),
                "fixedDelay": _duration(form.delay_s),
            }
        if fault:
            spec["httpFault"] = fault
        else:
            spec.pop("httpFault", None)
    if _retry_id(form) != _retry_id(old):
        if form.retries:
            simple: dict[str, Any] = {"attempts": int(form.attempts)}
            if form.per_try_timeout_s > 0:
                simple["perTryTimeout"] = _duration(form.per_try_timeout_s)
            spec["httpReqRetries"] = {"simpleRetry": simple}
        else:
            spec.pop("httpReqRetries", None)
    if form.timeout_s != old.timeout_s:
        if form.timeout_s > 0:
            spec["httpReqTimeout"] = {"simpleTimeout": {"timeout": _duration(form.timeout_s)}}
        else:
            spec.pop("httpReqTimeout", None)
    return doc


# -- modern VirtualService HTTP route --------------------------------------------------------


def read_modern(http: dict[str, Any]) -> RouteForm:
    """The form of one ``spec.http[i]`` of a VirtualService."""
    form = RouteForm()
    routes = http.get("route") or []
    for i, r in enumerate(routes):
        dest = r.get("destination") or {}
        form.destinations.append(str(dest.get("subset") or dest.get("host") or f"#{i}"))
        form.weights.append(_weight(r, len(routes)))
    first = (http.get("match") or [{}])[0] or {}
    _read_match(first.get("headers"), first.get("uri"), form)
    fault = http.get("fault") or {}
    if fault.get("abort"):
        a = fault["abort"]
        form.abort_percent = _percentage(a)
        form.abort_status = int(a.get("httpStatus", 503))
    if fault.get("delay"):
        d = fault["delay"]
        form.delay_percent = _percentage(d)
        form.delay_s = _seconds(d.get("fixedDelay", "0s"))
    retries = http.get("retries")
    if retries is not None:
        form.retries = True
        form.attempts = int(retries.get("attempts", 0))
        form.per_try_timeout_s = _seconds(retries.get("perTryTimeout", "0s"))
        form.retry_on = str(retries.get("retryOn", ""))
    form.timeout_s = _seconds(http["timeout"]) if http.get("timeout") else 0.0
    return form


def _write_modern_match(http: dict[str, Any], old: RouteForm, form: RouteForm) -> None:
    matches = http.get("match") or [{}]
    first = dict(matches[0] or {})
    old_key = _match_condition(old)
    if old_key is not None:
        if old_key[0] == "uri":
            first.pop("uri", None)
        else:
            (first.get("headers") or {}).pop(old_key[0], None)
    cond = _match_condition(form)
    if cond is not None:
        if cond[0] == "uri":
            first["uri"] = cond[1]
        else:
            first["headers"] = {cond[0]: cond[1], **(first.get("headers") or {})}
    if not first.get("headers"):
        first.pop("headers", None)
    rest = matches[1:]
    if first or rest:
        http["match"] = [first, *rest] if first else rest
    else:
        http.pop("match", None)


def write_modern(http: dict[str, Any], form: RouteForm) -> dict[str, Any]:
    """A copy of the HTTP route with the form applied.

    Only the sections whose form values changed are rewritten; the rest stays as written.
    """
    old = read_modern(http)
    http = copy.deepcopy(http)
    routes = http.get("route") or []
    if form.weights != old.weights or len(routes) > 1 or any("weight" in r for r in routes):
        for r, weight in zip(routes, form.weights, strict=False):
            r["weight"] = int(weight)
    if _match_id(form) != _match_id(old):
        _write_modern_match(http, old, form)
    if _fault_id(form) != _fault_id(old):
        fault: dict[str, Any] = {}
        if form.abort_percent > 0:
            fault["abort"] = {
                "percentage": {"value": _num(form.abort_percent)},
                "httpStatus": int(form.abort_status),
            }
        if form.delay_percent > 0 and form.delay_s > 0:
            fault["delay"] = {
                "percentage": {"value": _num(form.delay_percent)},
                "fixedDelay": _duration(form.delay_s),
            }
        if fault:
            http["fault"] = fault
        else:
            http.pop("fault", None)
    if _retry_id(form) != _retry_id(old):
        if form.retries:
            retries: dict[str, Any] = {"attempts": int(form.attempts)}
            if form.per_try_timeout_s > 0:
                retries["perTryTimeout"] = _duration(form.per_try_timeout_s)
            if form.retry_on:
                retries["retryOn"] = form.retry_on
            http["retries"] = retries
        else:
            http.pop("retries", None)
    if form.timeout_s != old.timeout_s:
        if form.timeout_s > 0:
            http["timeout"] = _duration(form.timeout_s)
        else:
            http.pop("timeout", None)
    return http


# -- which routes can be edited --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RouteRef:
    """One editable route: a RouteRule, or one HTTP route of a VirtualService.

    Attributes:
        label: What the route dropdown shows.
        doc: Index of the document in the config.
        http: Index in ``spec.http`` (None for a RouteRule).
    """

    label: str
    doc: int
    http: int | None = None


def editable_routes(docs: list[dict[str, Any]]) -> list[RouteRef]:
    """The routes of the documents that send traffic to destinations."""
    out = []
    for i, d in enumerate(docs):
        kind, name = d.get("kind"), (d.get("metadata") or {}).get("name", "")
        if kind == "RouteRule" and not (d.get("spec") or {}).get("redirect"):
            out.append(RouteRef(f"RouteRule {name}", i))
        elif kind == "VirtualService":
            for j, h in enumerate((d.get("spec") or {}).get("http") or []):
                if h.get("route"):
                    out.append(
                        RouteRef(
                            f"VirtualService {name} http[{j}] {h.get('name', '')}".rstrip(), i, j
                        )
                    )
    return out


def parse_headers(text: str) -> dict[str, str]:
    """``"name: value"`` lines as a dict (blank lines and lines without a colon ignored)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            out[name.strip().lower()] = value.strip()
    return out


__all__ = [
    "COOKIE_REGEX",
    "LEGACY_API",
    "RouteForm",
    "RouteRef",
    "editable_routes",
    "parse_headers",
    "read_legacy",
    "read_modern",
    "write_legacy",
    "write_modern",
]
