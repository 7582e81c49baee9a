"""Workshop helpers: the exercise checker, rich HTML views of model objects, and data lookup.

Notebooks use three things from here:

* :func:`check` says whether an exercise answer is right and why (``✓``/``✗`` with the reason);
* :func:`show` wraps a :class:`~istiolab.config.ConfigSet`, findings, an
  :class:`~istiolab.envoy.match.Explanation`, a verify report or a conversion so that Jupyter
  renders it as an HTML table (the ``*_html`` functions below are what the objects'
  ``_repr_html_`` would return);
* :func:`scenario`, :func:`example` and :func:`rules_of` find the ready scenarios and examples
  wherever the notebooks are opened from, and read the rules a scenario compiles.

Nothing here decides anything about routing or traffic: it only formats and locates.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from istiolab.config import ConfigSet
    from istiolab.config.convert import Conversion
    from istiolab.envoy.match import Explanation
    from istiolab.envoy.verify import VerifyReport
    from istiolab.findings import Finding
    from istiolab.sim.scenario import Scenario

__all__ = [
    "Rich",
    "check",
    "configset_html",
    "conversion_html",
    "data_dir",
    "example",
    "explanation_html",
    "finding_html",
    "findings_html",
    "is_right",
    "rules_of",
    "scenario",
    "show",
    "verify_report_html",
]

RIGHT = "\u2713"
WRONG = "\u2717"

# ----------------------------------------------------------------------------------- check


def _same(answer: Any, expected: Any, tol: float | None, rel: float | None) -> bool:
    if isinstance(expected, bool) or isinstance(answer, bool):
        return bool(answer) is bool(expected) and type(answer) is type(expected)
    if isinstance(expected, (int, float)) and isinstance(answer, (int, float)):
        if math.isnan(float(expected)):
            return math.isnan(float(answer))
        slack = 0.0
        if tol is not None:
            slack = max(slack, tol)
        if rel is not None:
            slack = max(slack, rel * abs(float(expected)))
        return abs(float(answer) - float(expected)) <= slack
    if isinstance(expected, str) and isinstance(answer, str):
        return answer.strip().lower() == expected.strip().lower()
    if isinstance(expected, (set, frozenset)):
        try:
            return {_norm(a) for a in answer} == {_norm(e) for e in expected}
        except TypeError:
            return False
    if isinstance(expected, Mapping) and isinstance(answer, Mapping):
        return set(expected) == set(answer) and all(
            _same(answer[k], expected[k], tol, rel) for k in expected
        )
    if isinstance(expected, (list, tuple)) and isinstance(answer, (list, tuple)):
        return len(answer) == len(expected) and all(
            _same(a, e, tol, rel) for a, e in zip(answer, expected, strict=True)
        )
    return bool(answer == expected)


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def is_right(
    answer: Any, expected: Any, *, tol: float | None = None, rel: float | None = None
) -> bool:
    """Whether *answer* matches *expected* with :func:`check`'s rules (no printing)."""
    if answer is None or answer is Ellipsis:
        return False
    return _same(answer, expected, tol, rel)


def check(
    answer: Any,
    expected: Any,
    *,
    why: str,
    hint: str = "",
    tol: float | None = None,
    rel: float | None = None,
) -> None:
    """Print whether an exercise answer is right, and why.

    Numbers match within ``tol`` (absolute) or ``rel`` (relative to *expected*); strings match
    ignoring case and surrounding spaces; sets ignore order; lists, tuples and mappings are
    compared item by item. An answer left as ``None`` or ``...`` is reported as not answered
    (with *hint*, never *why*, which gives the answer away). Use :func:`is_right` for the verdict
    as a bool.

    Args:
        answer: What the attendee wrote.
        expected: The right answer (usually computed in the notebook with the public API).
        why: The reason, printed with the verdict.
        hint: Printed while the answer is missing.
        tol: Absolute tolerance for numbers.
        rel: Relative tolerance for numbers.

    Example:
        >>> check(0.1, 0.1004, why="v2 gets its weight's share", tol=0.01)
        ✓ right: v2 gets its weight's share
    """
    if answer is None or answer is Ellipsis:
        print(
            f"{WRONG} not answered yet: replace None with your answer."
            + (f" Hint: {hint}" if hint else "")
        )
    elif _same(answer, expected, tol, rel):
        print(f"{RIGHT} right: {why}")
    else:
        print(f"{WRONG} wrong: {answer!r} is not it. {why}")


# ------------------------------------------------------------------------------- locating


def data_dir() -> Path:
    """The folder holding ``sim/scenarios`` and ``examples``.

    Looked up in this order: ``$ISTIOLAB_DATA``, the current folder and its parents (so
    notebooks opened from ``notebooks/`` find ``../sim``), then the source tree the package was
    installed from (an editable install, as on Binder).

    Raises:
        FileNotFoundError: When none of them has ``sim/scenarios``.
    """
    candidates: list[Path] = []
    env = os.environ.get("ISTIOLAB_DATA")
    if env:
        candidates.append(Path(env))
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents]
    candidates.append(Path(__file__).resolve().parent.parent)
    for c in candidates:
        if (c / "sim" / "scenarios").is_dir():
            return c
    raise FileNotFoundError(
        "cannot find sim/scenarios: run from the istiolab checkout, install it with "
        "`pip install -e .`, or set ISTIOLAB_DATA to the checkout"
    )


def scenario(name: str) -> Scenario:
    """Load a ready scenario by name (``"canary-90-10"``) or path.

    Raises:
        FileNotFoundError: When there is no such scenario (the message lists them).
    """
    from istiolab.sim.scenario import load_scenario

    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return load_scenario(p)
    folder = data_dir() / "sim" / "scenarios"
    path = folder / f"{name}.yaml"
    if not path.exists():
        known = sorted(q.stem for q in folder.glob("*.yaml"))
        raise FileNotFoundError(f"no scenario {name!r} in {folder}; known: {known}")
    return load_scenario(path)


def example(*parts: str) -> Path:
    """Path of a file or folder under ``examples/`` (``example("seed")``).

    Raises:
        FileNotFoundError: When it does not exist.
    """
    path = data_dir().joinpath("examples", *parts)
    if not path.exists():
        raise FileNotFoundError(f"no example {'/'.join(parts)!r} under {path.parent}")
    return path


def rules_of(sc: Scenario) -> ConfigSet:
    """The configuration a scenario routes with: its rule files, then its inline resources."""
    from istiolab.config import ConfigSet, codecs, load, loads

    config = ConfigSet()
    base = Path(sc.base_dir) if sc.base_dir else Path.cwd()
    if sc.rules.paths:
        config = config + load([p if Path(p).is_absolute() else base / p for p in sc.rules.paths])
    if sc.rules.inline:
        config = config + loads(codecs.dumps(sc.rules.inline), file="<scenario rules.inline>")
    return config


# ---------------------------------------------------------------------------------- HTML

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


def to_html(obj: Any) -> str:
    """HTML for any object :func:`show` understands.

    Raises:
        TypeError: For other objects.
    """
    from istiolab.config import ConfigSet
    from istiolab.envoy.match import Explanation
    from istiolab.findings import Finding

    if isinstance(obj, ConfigSet):
        return configset_html(obj)
    if isinstance(obj, Finding):
        return finding_html(obj)
    if isinstance(obj, Explanation):
        return explanation_html(obj)
    if isinstance(obj, (list, tuple)) and all(isinstance(x, Finding) for x in obj):
        return findings_html(obj)
    name = type(obj).__name__
    if name == "VerifyReport":
        return verify_report_html(obj)
    if name == "Conversion":
        return conversion_html(obj)
    if hasattr(obj, "_repr_html_"):
        return str(obj._repr_html_())
    raise TypeError(
        f"show() does not know how to render {name}; it renders ConfigSet, findings, "
        "Explanation, VerifyReport, Conversion and Result"
    )


def _plain(obj: Any) -> str:
    from istiolab.config import ConfigSet
    from istiolab.envoy.match import Explanation
    from istiolab.findings import Finding

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
    if type(obj).__name__ == "VerifyReport":
        return f"{obj.agree}/{obj.cases} case(s) agree with Envoy; ok={obj.ok}"
    if type(obj).__name__ == "Conversion":
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
