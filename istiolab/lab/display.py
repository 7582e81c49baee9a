"""Rich HTML views of the core's objects in Jupyter.

The core never imports this module. Its objects inherit :class:`istiolab.reprs.HTMLRepr`,
whose ``_repr_html_`` asks the renderer registered under the ``istiolab.reprs`` entry point,
:func:`to_html` here, so a ``ConfigSet`` or an ``Explanation`` renders as a table in a notebook
as soon as istiolab is installed. :func:`show` wraps an object (or a list of findings) for the
same display explicitly.

Nothing here decides anything about routing or traffic: it only formats.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from istiolab.config import ConfigSet
from istiolab.config.convert import Conversion
from istiolab.envoy.match import Explanation
from istiolab.envoy.verify import VerifyReport
from istiolab.findings import Finding
from istiolab.lab.exercises import RIGHT, WRONG
from istiolab.sim.results import Result

__all__ = [
    "Rich",
    "configset_html",
    "conversion_html",
    "explanation_html",
    "finding_html",
    "findings_html",
    "flags_text",
    "outcome_text",
    "result_html",
    "show",
    "to_html",
    "verify_report_html",
]


_CSS = (
    "<style>.istiolab-t td,.istiolab-t th{text-align:left;padding:2px 8px;vertical-align:top}"
    ".istiolab-t code{white-space:pre-wrap}</style>"
)
_SEVERITY_COLOUR = {"error": "#b00020", "warning": "#a15c00", "info": "#2f5f8f"}


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "istiolab-t") -> str:
    """An HTML table; cells are already-escaped HTML."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'{_CSS}<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _mark(ok: bool) -> str:
    colour = "#1b7f3b" if ok else "#b00020"
    return f'<span style="color:{colour}">{RIGHT if ok else WRONG}</span>'


def finding_html(f: Finding) -> str:
    """One finding as a short HTML line (what ``Finding._repr_html_`` would return)."""
    colour = _SEVERITY_COLOUR.get(f.severity.value, "black")
    path = f" <code>{_e(f.path)}</code>" if f.path else ""
    return (
        f'<div><b style="color:{colour}">{_e(f.severity.value)} {_e(f.code)}</b> '
        f"{_e(f.resource)}{path} ({_e(f.location)}): {_e(f.message)} "
        f"<i>fix: {_e(f.fix)}</i></div>"
    )


def findings_html(findings: Iterable[Finding]) -> str:
    """Findings as an HTML table: severity, code, where, what, fix."""
    items = list(findings)
    if not items:
        return f"<p>{_mark(True)} no findings</p>"
    rows = []
    for f in items:
        colour = _SEVERITY_COLOUR.get(f.severity.value, "black")
        rows.append(
            (
                f'<b style="color:{colour}">{_e(f.severity.value)}</b>',
                f"<code>{_e(f.code)}</code>",
                f"{_e(f.resource)}<br><code>{_e(f.path)}</code>",
                _e(f.location),
                _e(f.message),
                _e(f.fix),
            )
        )
    errors = sum(f.severity.value == "error" for f in items)
    head = f"<p>{len(items)} finding(s), {errors} error(s)</p>"
    return head + _table(("severity", "code", "resource / path", "at", "message", "fix"), rows)


def configset_html(config: ConfigSet) -> str:
    """A config set as an HTML table of its resources, then its load findings."""
    rows = []
    for r, o in zip(config.resources, config.origins, strict=True):
        where = "-" if o is None else f"{o.file or '<input>'}:{o.line}"
        rows.append((_e(r.kind), _e(r.namespace), _e(r.name), _e(r.api_version), _e(where)))
    out = f"<p>ConfigSet: {len(config.resources)} resource(s)</p>"
    out += _table(("kind", "namespace", "name", "apiVersion", "from"), rows)
    if config.findings:
        out += findings_html(config.findings)
    return out


def explanation_html(expl: Explanation) -> str:
    """Where a request goes and why: the trace of routes tried, then the chosen action."""
    d = expl.to_dict()
    req = expl.request
    hdrs = ", ".join(f"{k}: {v}" for k, v in req.headers.items())
    out = (
        f"<p><b>{_e(req.method)} {_e(req.host)}{_e(req.path)}</b>"
        f"{' [' + _e(hdrs) + ']' if hdrs else ''} &rarr; virtual host "
        f"<code>{_e(d['virtual_host'])}</code></p>"
    )
    rows = [
        (
            _mark(s["matched"]),
            f"<code>{_e(s['route'])}</code>",
            "matched" if s["matched"] else _e(s["failed_condition"]),
        )
        for s in d["trace"]
    ]
    if rows:
        out += _table(("", "route", "why"), rows)
    if d["route"] is None:
        out += f"<p>no route: the proxy answers <b>{_e(d['status'])} {_e(d['flags'])}</b></p>"
        return out
    dests = d["destinations"]
    if dests:
        out += _table(
            ("cluster", "subset", "weight", "share"),
            (
                (
                    f"<code>{_e(c['cluster'])}</code>",
                    _e(c["subset"] or "-"),
                    _e(c["weight"]),
                    "-" if c["percent"] is None else f"{c['percent']:g} %",
                )
                for c in dests
            ),
        )
    extras = []
    if d["status"] is not None:
        extras.append(f"local reply {d['status']}")
    if d["fault"]:
        f = d["fault"]
        if f["abort_status"]:
            extras.append(f"abort {f['abort_status']} for {f['abort_percent']:g} %")
        if f["delay_s"]:
            extras.append(f"delay {f['delay_s']:g} s for {f['delay_percent']:g} %")
    if d["retries"]:
        r = d["retries"]
        extras.append(
            f"retries {r['num_retries']} on {','.join(r['retry_on']) or '-'}"
            + (f", {r['per_try_timeout_s']:g} s per try" if r["per_try_timeout_s"] else "")
        )
    if d["timeout"] is not None:
        extras.append(f"timeout {d['timeout']:g} s" if d["timeout"] else "no timeout")
    if d["rate_limit"]:
        rl = d["rate_limit"]
        extras.append(
            f"rate limit {rl['tokens_per_fill']} per {rl['fill_interval_s']:g} s "
            f"(bucket {rl['max_tokens']}, {rl['scope']})"
        )
    if extras:
        out += "<p>" + "; ".join(_e(x) for x in extras) + "</p>"
    return out


def verify_report_html(report: VerifyReport) -> str:
    """The agreement table of a verify run: each case with model and Envoy outcomes."""
    verdict = "agree" if report.ok else f"{len(report.failures())} disagreement(s)"
    out = (
        f"<p>{_mark(report.ok)} <b>{report.agree}/{report.cases}</b> case(s) agree with Envoy; "
        f"{_e(verdict)} ({report.requests_sent} requests in {report.envoy_seconds:.1f} s)</p>"
    )
    rows = [
        (_mark(bool(r["agree"])), _e(r["case"]), _e(r["expected"]), _e(r["envoy"]))
        for r in report.results
    ]
    if rows:
        out += _table(("", "case", "model", "envoy"), rows)
    for d in report.disagree:
        if d.get("model") is not None and d["expected"] != d["model"]:
            out += (
                f"<div>{_mark(False)} <b>{_e(d['case'])}</b>: the case expects "
                f"{_e(d['expected'])}; the model and Envoy both give {_e(d['envoy'])}</div>"
                if d["model"] == d["envoy"]
                else f"<div>{_mark(False)} <b>{_e(d['case'])}</b>: the case expects "
                f"{_e(d['expected'])}; envoy {_e(d['envoy'])}</div>"
            )
    if report.stochastic:
        out += f"<p>fractions ({report.confidence:g} Wilson intervals)</p>"
        out += _table(
            ("", "case", "metric", "model", "envoy", "interval", "n"),
            (
                (
                    _mark(bool(e["ok"])),
                    _e(e["case"]),
                    _e(e["metric"]),
                    f"{e['expected_fraction']:.4f}",
                    f"{e['envoy_fraction']:.4f}",
                    f"[{e['interval'][0]:.4f}, {e['interval'][1]:.4f}]",
                    _e(e["n"]),
                )
                for e in report.stochastic
            ),
        )
    measured = [
        (_mark(bool(e["ok"])), _e(e["case"]), _e(e["metric"]), _e(e[k1]), _e(e[k2]))
        for group, k1, k2 in (
            (report.timing, "expected_s", "envoy_s"),
            (report.counts, "expected", "envoy"),
        )
        for e in group
    ]
    if measured:
        out += _table(("", "case", "metric", "model", "envoy"), measured)
    for s in report.skipped:
        out += f"<div>skipped {_e(s['case'])}: {_e(s['reason'])}</div>"
    return out


def conversion_html(conv: Conversion) -> str:
    """A conversion: the modern resources it produced and its findings."""
    return configset_html(conv.config) + findings_html(conv.findings)


OUTCOME_LABELS: dict[str, str] = {
    "served": "served",
    "redirected": "redirected (3xx)",
    "denied": "denied (401/403)",
    "not_found": "not found (404)",
    "rate_limited": "rate limited (429)",
    "client_error": "other 4xx",
    "failed": "failed (5xx, reset)",
}
"""How the outcomes of :data:`istiolab.sim.results.OUTCOMES` are written in tables and plots."""


FLAG_DOCS: dict[str, str] = {
    "UO": "upstream overflow: a circuit breaker refused the request (503)",
    "UT": "upstream request timeout: the route's timeout fired (504)",
    "URX": "upstream retry limit exceeded: every allowed attempt failed",
    "UF": "upstream connection failure: Envoy could not connect to the pod (503)",
    "UH": "no healthy upstream: every pod of the cluster is out (503)",
    "NR": "no route configured: no virtual host or route matched (404)",
    "DI": "delay injected by a fault rule (the request goes on)",
    "FI": "fault injected: a fault rule aborted the request with its status",
    "RL": "rate limited by Envoy's local rate limit (429)",
    "DC": "downstream connection termination: the client closed the connection",
    "UC": "upstream connection termination: the backend closed the connection (503)",
    "LR": "local reset: Envoy reset the stream itself",
    "UR": "upstream remote reset: the backend reset the stream (503)",
    "NC": "no cluster found: the route names a cluster that does not exist (503)",
    "SI": "stream idle timeout",
}
"""Envoy's response flags, shortened from its access log documentation
(``docs/root/configuration/observability/access_log/usage.rst`` in envoyproxy/envoy); the same
definitions as ``docs/glossary.md``."""


def flags_text(flags: Iterable[str]) -> str:
    """The definitions of the response flags in *flags* (``"UF,URX"`` strings are split).

    Widgets print it under their plots, so a flag is defined where it appears. Unknown flags are
    listed as such; an empty input gives ``""``.
    """
    seen: list[str] = []
    for entry in flags:
        for flag in str(entry).split(","):
            flag = flag.strip()
            if flag and flag not in seen:
                seen.append(flag)
    if not seen:
        return ""
    parts = [f"{f} = {FLAG_DOCS.get(f, 'see the glossary')}" for f in sorted(seen)]
    return "Envoy flags: " + "; ".join(parts)


def outcome_text(result: Result) -> str:
    """One line: the outcomes a run had (largest first), then the plain non-5xx ratio.

    Example: ``denied (401/403) 100.0 %; non-5xx ratio 100.0 %``. A deny drill thus no longer
    reads as a "success".
    """
    t = result.outcome_totals()
    if not t["responses"]:
        return "no responses after the warm-up"
    parts = sorted(
        ((float(t[o]), o) for o in OUTCOME_LABELS if float(t[o]) > 0), key=lambda p: -p[0]
    )
    shares = ", ".join(f"{OUTCOME_LABELS[o]} {100 * v:.1f} %" for v, o in parts)
    return f"{shares}; non-5xx ratio {100 * float(t['non_5xx_ratio']):.1f} %"


def result_html(result: Result) -> str:
    """A simulation result: the headline totals and outcomes, then the rounded summary table."""
    totals = result.meta.get("totals", {})
    head = (
        f"<p><b>{_e(result.scenario)}</b> run <code>{_e(result.run_id)}</code>, seed "
        f"{_e(result.seed)}: {_e(totals.get('requests', 0))} requests, "
        f"{_fmt(totals.get('rps'))} rps, p99 {_fmt(totals.get('p99_ms'))} ms<br>"
        f"outcomes: {_e(outcome_text(result))}</p>"
    )
    summary = result.summary().rename(columns={"success_ratio": "non-5xx ratio"})
    table = summary.to_html(index=False, float_format=lambda x: f"{x:.4g}")
    return head + table


def _fmt(value: object) -> str:
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.4g}"
    return _e(value)


@dataclasses.dataclass(frozen=True, repr=False)
class Rich:
    """Wraps a model object so Jupyter renders it as HTML (and ``str()`` stays plain text).

    Attributes:
        obj: The wrapped object.
    """

    obj: Any

    def _repr_html_(self) -> str:
        return to_html(self.obj)

    def __repr__(self) -> str:
        return _plain(self.obj)


@functools.singledispatch
def to_html(obj: Any) -> str:
    """HTML for a core object (the renderer behind every core object's ``_repr_html_``).

    Raises:
        TypeError: For objects it has no view of.
    """
    raise TypeError(
        f"show() does not know how to render {type(obj).__name__}; it renders ConfigSet, "
        "findings, Explanation, VerifyReport, Conversion and Result"
    )


@to_html.register
def _(obj: ConfigSet) -> str:
    return configset_html(obj)


@to_html.register
def _(obj: Finding) -> str:
    return finding_html(obj)


@to_html.register
def _(obj: Explanation) -> str:
    return explanation_html(obj)


@to_html.register
def _(obj: VerifyReport) -> str:
    return verify_report_html(obj)


@to_html.register
def _(obj: Conversion) -> str:
    return conversion_html(obj)


@to_html.register
def _(obj: Result) -> str:
    return result_html(obj)


@to_html.register(list)
@to_html.register(tuple)
def _(obj: Sequence[Any]) -> str:
    if all(isinstance(x, Finding) for x in obj):
        return findings_html(obj)
    raise TypeError("show() renders a list only when it holds findings")


def _plain(obj: Any) -> str:
    if isinstance(obj, (list, tuple)) and all(isinstance(x, Finding) for x in obj):
        return "\n".join(f.format() for f in obj) or "no findings"
    if isinstance(obj, Finding):
        return obj.format()
    if isinstance(obj, ConfigSet):
        return "\n".join(r.key for r in obj) or "empty ConfigSet"
    if isinstance(obj, Explanation):
        d = obj.to_dict()
        route = d["route"]["name"] if d["route"] else "no route"
        dests = ", ".join(f"{c['cluster']} {c['percent']}%" for c in d["destinations"])
        return f"{obj.request.path} -> {route}: {dests or d['status']}"
    if isinstance(obj, VerifyReport):
        return f"{obj.agree}/{obj.cases} case(s) agree with Envoy; ok={obj.ok}"
    if isinstance(obj, Conversion):
        return "\n".join(r.key for r in obj.config)
    return repr(obj)


def show(obj: Any) -> Rich:
    """Wrap *obj* for rich display in a notebook (the last expression of a cell).

    Args:
        obj: A ConfigSet, a Finding or a list of them, an Explanation, a VerifyReport, a
            Conversion, or anything with ``_repr_html_`` (e.g. a simulation Result).

    Returns:
        An object whose ``_repr_html_`` renders it.
    """
    to_html(obj)  # fail here, with the message, rather than inside Jupyter's display hook
    return Rich(obj)
