"""The exercise checker of the workshop notebooks: is an answer right, a hint, the solution.

A notebook opens its exercises with ``ex = Exercises("02_canary_weights")``. The hints, the
expected values that are not computed in the notebook, the solutions and their explanations
(``why``) live in ``notebooks/exercises.json``, outside the visible cells, so nothing above an
exercise gives its answer away. :meth:`Exercises.check` prints a verdict: a right answer gets the
explanation, a wrong one only a hint that points the way without the value. :meth:`Exercises.hint`
and then :meth:`Exercises.solution` reveal more on request (:meth:`Exercises.panel` is the same as
buttons). Some exercises are *tasks* checked from state: the attendee passes what they built (a
designer widget, a scenario) and a checker reads its current configuration or runs it.

A trainer reveals every solution at once with ``ISTIOLAB_TRAINER=1`` in the environment or
:func:`reveal_all` with the trainer password. Progress (answered, hints taken, solutions shown)
is kept in ``~/.istiolab/progress.json`` (``$ISTIOLAB_HOME`` overrides the folder) and
:func:`progress` renders it as a table.

:func:`check` and :func:`is_right` are the plain checker for an expected value computed in the
notebook itself.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RIGHT",
    "WRONG",
    "Exercises",
    "check",
    "exercises_file",
    "is_right",
    "progress",
    "progress_file",
    "reveal_all",
]

RIGHT = "\u2713"
WRONG = "\u2717"
_MISSING: Any = object()
_REVEALED = {"all": False}


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
    why: str = "",
    hint: str = "",
    tol: float | None = None,
    rel: float | None = None,
) -> None:
    """Print whether an exercise answer is right; the reason only when it is.

    Numbers match within ``tol`` (absolute) or ``rel`` (relative to *expected*); strings match
    ignoring case and surrounding spaces; sets ignore order; lists, tuples and mappings are
    compared item by item. A wrong or missing answer gets *hint*, never *why*, because the
    reason usually contains the answer. Prefer :class:`Exercises`, which keeps *why* and *hint*
    out of the notebook.

    Args:
        answer: What the attendee wrote.
        expected: The right answer (usually computed in the notebook with the public API).
        why: The reason, printed with a right answer.
        hint: Printed with a wrong or missing answer.
        tol: Absolute tolerance for numbers.
        rel: Relative tolerance for numbers.

    Example:
        >>> check(0.1, 0.1004, why="v2 gets its weight's share", tol=0.01)
        ✓ right: v2 gets its weight's share
    """
    tail = f" Hint: {hint}" if hint else ""
    if answer is None or answer is Ellipsis:
        print(f"{WRONG} not answered yet: replace None with your answer.{tail}")
    elif _same(answer, expected, tol, rel):
        print(f"{RIGHT} right: {why}" if why else f"{RIGHT} right")
    else:
        print(f"{WRONG} wrong: {answer!r} is not it.{tail}")


# -- where things are kept ---------------------------------------------------------------------


def exercises_file() -> Path:
    """The exercises file: ``$ISTIOLAB_EXERCISES``, else ``notebooks/exercises.json``."""
    env = os.environ.get("ISTIOLAB_EXERCISES")
    if env:
        return Path(env)
    from istiolab.lab.data import data_dir

    return data_dir() / "notebooks" / "exercises.json"


def progress_file() -> Path:
    """Where progress is kept: ``$ISTIOLAB_HOME/progress.json``, else ``~/.istiolab/``'s."""
    home = os.environ.get("ISTIOLAB_HOME")
    base = Path(home) if home else Path.home() / ".istiolab"
    return base / "progress.json"


def _load_all() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(exercises_file().read_text(encoding="utf-8"))
    return data


def _read_progress() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(progress_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no file yet, or a damaged one: start again
        return {}
    return data if isinstance(data, dict) else {}


def _write_progress(data: dict[str, Any]) -> None:
    path = progress_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only home (some Binder images) must not break an exercise
        pass


def _trainer() -> bool:
    return _REVEALED["all"] or os.environ.get("ISTIOLAB_TRAINER", "") not in ("", "0")


def reveal_all(password: str) -> bool:
    """Reveal every solution in this kernel (the trainer's switch).

    Args:
        password: The trainer password (``docs/trainer-guide.md``); only its SHA-256 is stored.

    Returns:
        Whether the password was right (solutions are then printed with every check).
    """
    expected = str(_load_all().get("_trainer_sha256", ""))
    ok = bool(expected) and hashlib.sha256(password.encode()).hexdigest() == expected
    _REVEALED["all"] = _REVEALED["all"] or ok
    print(f"{RIGHT} trainer mode: solutions revealed" if ok else f"{WRONG} wrong password")
    return ok


def hide_all() -> None:
    """Undo :func:`reveal_all` in this kernel (``ISTIOLAB_TRAINER`` still applies)."""
    _REVEALED["all"] = False


# -- state-checked tasks -------------------------------------------------------------------------
# Each checker reads what the attendee built and returns (done, what is still missing). The
# message never names the value to reach, only the direction.

Checker = Callable[[Any], tuple[bool, str]]


def _config_of(obj: Any) -> Any:
    from istiolab.config.configset import ConfigSet

    if isinstance(obj, ConfigSet):
        return obj
    config = getattr(obj, "config", None)  # a RuleDesigner keeps its current rules here
    if isinstance(config, ConfigSet):
        return config
    raise TypeError(f"expected a RuleDesigner or a ConfigSet, got {type(obj).__name__}")


def _cookie_misroute(table: Any, wanted: dict[str, str]) -> str:
    """'' when each cookie header of *wanted* reaches its subset of webui, else what went wrong."""
    from istiolab.envoy.match import Request, explain

    for cookie, subset in wanted.items():
        headers = {"cookie": cookie} if cookie else {}
        found = explain(table, Request(path="/", host="webui", headers=headers)).to_dict()
        got = {d.get("subset") for d in found.get("destinations") or []}
        if got != {subset}:
            shown = cookie or "(no cookie)"
            return f"the cookie header {shown!r} goes to {sorted(map(str, got))}"
    return ""


def _canary_share_lint(obj: Any) -> tuple[bool, str]:
    """02: v2 gets a quarter of the requests and the rules pass lint under Istio 1.14."""
    from istiolab.config.validate import validate
    from istiolab.envoy.compile import compile as compile_table
    from istiolab.envoy.match import Request, explain

    config = _config_of(obj)
    errors = [f.code for f in validate(config, "1.14") if f.severity.value == "error"]
    table = compile_table(config, "1.24")  # 1.24 compiles any total, so the share is readable
    dests = explain(table, Request(path="/")).to_dict().get("destinations") or []
    share = sum(d["percent"] for d in dests if d.get("subset") == "v2") / 100
    if abs(share - 0.25) > 1e-9:
        way = "more" if share < 0.25 else "less"
        return False, f"v2 gets {share:.0%} of the requests; it needs {way}"
    if errors:
        return False, f"the share is right, but Istio 1.14 rejects the rules ({', '.join(errors)})"
    return True, ""


def _beta_testers(obj: Any) -> tuple[bool, str]:
    """03: beta users and testers reach v2, in any browser's cookie header; nobody else does."""
    from istiolab.envoy.compile import compile as compile_table

    table = compile_table(_config_of(obj), "1.24")
    wanted = {
        "user=beta": "v2",
        "theme=dark; user=beta": "v2",
        "user=tester": "v2",
        "theme=dark; user=tester; lang=en": "v2",
        "theme=dark; user=u17": "v1",
        "user=betamax": "v1",
        "user=testers": "v1",
        "": "v1",
    }
    wrong = _cookie_misroute(table, wanted)
    return (False, wrong) if wrong else (True, "")


def _gentle_drill(obj: Any) -> tuple[bool, str]:
    """04: the drill made partial: 10 % aborted with 503, 20 % delayed by one second."""
    from istiolab.envoy.compile import compile as compile_table
    from istiolab.envoy.match import Request, explain

    table = compile_table(_config_of(obj), getattr(obj, "profile", None) or "1.24")
    fault = explain(table, Request(path="/ip")).to_dict().get("fault") or {}
    if fault.get("abort_status") != 503 or abs(float(fault.get("abort_percent") or 0) - 10) > 1e-9:
        return False, "the abort is not yet 503 on a tenth of the requests"
    delay_s, delay_pct = fault.get("delay_s") or 0.0, float(fault.get("delay_percent") or 0)
    if abs(float(delay_s) - 1.0) > 1e-9 or abs(delay_pct - 20) > 1e-9:
        return False, "the abort is right; the delay is not yet one second on a fifth"
    return True, ""


def _even_nlb(obj: Any) -> tuple[bool, str]:
    """07: still an NLB, and every ingress node serves the same share of the requests."""
    from istiolab.lab.engine import simulate

    if str(obj.aws.lb).lower() != "nlb":
        return False, "keep the NLB: the task is to even it out, not to replace it"
    ingress = simulate(obj, seed=1).ingress()
    shares = ingress.loc[ingress["ingress_node"] != "-", "share"]
    fair = 1 / max(1, len(shares))
    worst = float((shares - fair).abs().max())
    if worst > 0.03:
        return False, f"one node's share is {worst:.3f} away from an even split"
    return True, ""


def _cluster_split(obj: Any) -> tuple[bool, str]:
    """10: the cluster (not the designer) serves webui 75/25 between v1 and v2."""
    if not callable(getattr(obj, "get", None)) or not hasattr(obj, "namespace"):
        return False, f"pass the cluster itself, not a {type(obj).__name__}"
    vs = obj.get("VirtualService", obj.namespace, "webui")
    if not vs:
        return False, "the cluster has no VirtualService webui yet: apply first"
    weights: dict[str, int] = {}
    for route in vs.get("spec", {}).get("http", [])[:1]:
        for dest in route.get("route", []):
            subset = str(dest.get("destination", {}).get("subset"))
            weights[subset] = weights.get(subset, 0) + int(dest.get("weight", 0) or 0)
    if weights != {"v1": 75, "v2": 25}:
        return False, "the cluster's VirtualService does not split webui as asked yet"
    return True, ""


def _bigger_pool(obj: Any) -> tuple[bool, str]:
    """00: the seed's pool over three AZs, two ingress nodes in each, behind an ALB."""
    from istiolab.lab.topology import graph

    nodes = [d for _, d in graph(obj).nodes(data=True) if d.get("kind") == "ingress_node"]
    azs = {d.get("az") for d in nodes}
    if len(azs) != 3:
        return False, f"the ingress nodes sit in {len(azs)} AZ(s)"
    if any(sum(1 for d in nodes if d.get("az") == az) != 2 for az in azs):
        return False, "some AZ does not have the number of ingress nodes asked for"
    if str(obj.aws.lb).lower() != "alb":
        return False, "the pool is right; the load balancer is not the one asked for"
    return True, ""


def _retry_attempts(config: Any) -> int:
    for r in config:
        if r.kind == "VirtualService":
            for h in r.spec.http or []:
                if h.retries is not None:
                    return int(h.retries.attempts or 0)
    return 0


def _smallest_retries(obj: Any) -> tuple[bool, str]:
    """05: the fewest retries keeping the non-5xx ratio ≥ 99 % without doubling upstream load."""
    from istiolab.lab.data import rules_of
    from istiolab.lab.engine import simulate

    def run(sc: Any) -> tuple[float, float]:
        t = simulate(sc, seed=1).totals()
        ok, n = float(t.get("success_ratio", 0.0)), max(1.0, float(t["requests"]))
        # A short run measures the ratio with binomial noise: judge it against 99 % less 2.58
        # standard errors (a 99 % one-sided margin), so the right count is not failed by chance.
        margin = 2.58 * math.sqrt(0.99 * 0.01 / n)
        return ok + margin, float(t["upstream_requests"]) / n

    if getattr(obj, "events", None):
        return False, "remove the error burst first (events: []): the goal is the steady state"
    attempts = _retry_attempts(rules_of(obj))
    ok, load = run(obj)
    if ok < 0.99:
        return False, "clients see a non-5xx ratio below 99 %: not enough retries"
    if load >= 2.0:
        return False, f"each client request costs {load:.2f} upstream requests: too many"
    if attempts > 0:
        fewer = obj.with_overrides({"rules.inline.1.spec.http.0.retries.attempts": attempts - 1})
        if run(fewer)[0] >= 0.99:
            return False, "it works, but a smaller retry count works too"
    return True, ""


def _four_pod_limit(obj: Any) -> tuple[bool, str]:
    """06: four gateway pods, 400 req/s offered, still about 100 req/s in total reach the API."""
    from istiolab.lab.engine import simulate

    pods = len(obj.ingress.azs) * int(getattr(obj.ingress, "nodes_per_az", 1) or 1)
    offered = float(obj.traffic[0].arrival.rate_rps or 0.0)
    if pods != 4:
        return False, f"the scenario has {pods} gateway pod(s); the task wants four"
    if offered < 400:
        return False, f"offer at least 400 req/s (the scenario offers {offered:g})"
    result = simulate(obj, seed=1)
    s, config = result.summary(), result.meta["config"]
    window = float(config["duration_s"]) - float(config["warmup_s"])
    passed = sum(n for n, flags in zip(s["requests"], s["flags"], strict=True) if "RL" not in flags)
    rps = passed / max(window, 1e-9)
    # Each bucket starts full, so a short run lets up to one bucket's worth per pod through on
    # top of the refill: allow that much above 100, and 15 % Poisson slack below.
    if rps > 115 + 100 / max(window, 1e-9):
        return False, f"about {rps:.0f} req/s pass: the buckets together still refill too fast"
    if rps < 85:
        return False, f"only about {rps:.0f} req/s pass: the buckets are too small"
    return True, ""


def _narrow_ingress(obj: Any) -> tuple[bool, str]:
    """01: an Istio 0.2 Ingress that serves /status/... and /headers, and nothing else."""
    from istiolab.config.validate import validate
    from istiolab.envoy.compile import compile as compile_table
    from istiolab.envoy.match import Request, explain

    config = _config_of(obj)
    if not any(r.kind == "Ingress" for r in config):
        return False, "the config has no Ingress"
    errors = [f.code for f in validate(config, "0.2") if f.severity.value == "error"]
    if errors:
        return False, f"Istio 0.2 rejects it ({', '.join(errors)})"
    table = compile_table(config, "0.2")
    wanted = ("/status/418", "/status/200", "/headers")
    unwanted = ("/ip", "/headers/x", "/statusx", "/", "/get")
    for path in wanted:
        found = explain(table, Request(path=path)).to_dict()
        clusters = [str(d.get("cluster", "")) for d in found.get("destinations") or []]
        if not any("httpbin" in c for c in clusters):
            return False, f"{path} does not reach httpbin"
    for path in unwanted:
        found = explain(table, Request(path=path)).to_dict()
        if found.get("destinations"):
            return False, f"{path} reaches a backend: the Ingress lets too much through"
    return True, ""


def _survive_az_loss(obj: Any) -> tuple[bool, str]:
    """08: the fewest ingress nodes per AZ that keep the workers ≤ 70 % busy with one AZ left."""
    from istiolab.lab.engine import simulate

    azs = list(getattr(getattr(obj, "ingress", None), "azs", []) or [])
    if len(azs) < 2:
        return False, "keep both AZs: the task is to survive losing one of them"
    rate = float(getattr(obj.traffic[0].arrival, "rate_rps", 0.0) or 0.0)
    if rate < 2400:
        return False, f"keep the peak of 2400 req/s (the scenario offers {rate:g})"
    nodes = int(getattr(obj.ingress, "nodes_per_az", 1) or 1)

    def busy(n: int) -> float:
        # one AZ carries everything; a short run measures the workers' time integral well
        one = obj.with_overrides(
            {
                "ingress.azs": azs[:1],
                "ingress.nodes_per_az": n,
                "run.duration_s": 2.0,
                "run.warmup_s": 0.5,
                "events": [],
            }
        )
        return float(simulate(one, seed=1).totals()["rho"]["gateway_workers"])

    rho = busy(nodes)
    if rho > 0.7:
        return False, f"with one AZ left its Envoy workers are {rho:.0%} busy: too few nodes"
    if nodes > 1 and busy(nodes - 1) <= 0.7:
        return False, "it survives, but fewer nodes per AZ would too"
    return True, ""


def _testers_verified(obj: Any) -> tuple[bool, str]:
    """09: the testers (not the beta users) reach v2, and Envoy agreed on these very rules."""
    from istiolab.envoy.compile import compile as compile_table

    if not hasattr(obj, "report") or not callable(getattr(obj, "config", None)):
        return False, f"pass the VerifyPanel, not a {type(obj).__name__}"
    table = compile_table(obj.config(), "1.24")
    wanted = {
        "user=tester": "v2",
        "theme=dark; user=tester": "v2",
        "theme=dark; user=tester; lang=en": "v2",
        "user=testers": "v1",
        "user=beta": "v1",
        "theme=dark; user=u17": "v1",
        "": "v1",
    }
    wrong = _cookie_misroute(table, wanted)
    if wrong:
        return False, wrong
    if obj.report is None:
        why = f" (last try: {obj.error})" if getattr(obj, "error", "") else ""
        return False, f"the rules are right: now press Verify on Envoy{why}"
    if not obj.report.ok:
        return False, "Envoy and the model disagree on these rules: read the table"
    return True, ""


def _httproute_canary(obj: Any) -> tuple[bool, str]:
    """11: an HTTPRoute that sends 25 % of shop.example.com to web-v2 and 75 % to web-v1."""
    from istiolab.config.validate import validate
    from istiolab.envoy.compile import compile as compile_table
    from istiolab.envoy.match import Request, explain

    config = _config_of(obj)
    if not any(r.kind == "HTTPRoute" for r in config):
        return False, "the config has no HTTPRoute"
    errors = [f.code for f in validate(config) if f.severity.value == "error"]
    if errors:
        return False, f"lint finds errors ({', '.join(errors)})"
    table = compile_table(config)
    for path in ("/", "/cart", "/api/orders"):
        found = explain(table, Request(path=path, host="shop.example.com")).to_dict()
        shares: dict[str, float] = {}
        for d in found.get("destinations") or []:
            name = str(d.get("host", "")).split(".")[0]
            shares[name] = shares.get(name, 0.0) + float(d.get("percent") or 0.0)
        if not shares:
            return False, f"{path} on shop.example.com finds no route: is the route attached?"
        if set(shares) != {"web-v1", "web-v2"}:
            return False, f"{path} goes to {sorted(shares)}, not to web-v1 and web-v2"
        if abs(shares["web-v2"] - 25.0) > 1e-6:
            return False, f"{path} sends {shares['web-v2']:g} % to web-v2"
    return True, ""


TASKS: dict[str, Checker] = {
    "canary_share_lint": _canary_share_lint,
    "smallest_retries": _smallest_retries,
    "beta_testers": _beta_testers,
    "four_pod_limit": _four_pod_limit,
    "gentle_drill": _gentle_drill,
    "even_nlb": _even_nlb,
    "cluster_split": _cluster_split,
    "bigger_pool": _bigger_pool,
    "narrow_ingress": _narrow_ingress,
    "survive_az_loss": _survive_az_loss,
    "testers_verified": _testers_verified,
    "httproute_canary": _httproute_canary,
}


# -- one notebook's exercises --------------------------------------------------------------------


class Exercises:
    """The exercises of one notebook, with hints, solutions and progress.

    Args:
        notebook: The notebook's name without ``.ipynb`` (``"02_canary_weights"``).
        data: The exercises of that notebook (tests); read from :func:`exercises_file` if None.

    Example:
        >>> ex = Exercises("02_canary_weights")  # doctest: +SKIP
        >>> ex.check(1, 0.2, expected=measured_share, tol=0.03)  # doctest: +SKIP
    """

    def __init__(self, notebook: str, data: Mapping[str, Any] | None = None) -> None:
        self.notebook = notebook
        if data is None:
            data = _load_all().get(notebook, {})
        self.items: dict[str, dict[str, Any]] = {str(k): dict(v) for k, v in data.items()}

    def _item(self, n: int | str) -> dict[str, Any]:
        try:
            return self.items[str(n)]
        except KeyError:
            raise KeyError(f"{self.notebook} has no exercise {n}") from None

    def _record(self, n: int | str, **changes: Any) -> None:
        data = _read_progress()
        entry = data.setdefault(self.notebook, {}).setdefault(str(n), {})
        for key, value in changes.items():
            if key in ("attempts", "hints"):
                entry[key] = int(entry.get(key, 0)) + int(value)
            elif key == "done":
                entry[key] = bool(entry.get(key)) or bool(value)  # done stays done
            else:
                entry[key] = value
        entry["at"] = datetime.now(UTC).isoformat(timespec="seconds")
        _write_progress(data)

    def expected(self, n: int | str) -> Any:
        """The expected value kept in the exercises file (for tests and trainers)."""
        item = self._item(n)
        if "expected" not in item:
            raise KeyError(f"{self.notebook} exercise {n} is checked against the notebook's state")
        return ast.literal_eval(item["expected"])

    def is_right(self, n: int | str, answer: Any, expected: Any = _MISSING) -> bool:
        """Whether *answer* is right (no printing, no progress)."""
        item = self._item(n)
        if answer is None or answer is Ellipsis:
            return False
        if "task" in item:
            return TASKS[item["task"]](answer)[0]
        value = self.expected(n) if expected is _MISSING else expected
        return _same(answer, value, item.get("tol"), item.get("rel"))

    def check(
        self,
        n: int | str,
        answer: Any,
        expected: Any = _MISSING,
        *,
        tol: float | None = None,
        rel: float | None = None,
    ) -> None:
        """Print whether exercise *n* is right: the reason if so, a hint if not.

        Args:
            n: The exercise number.
            answer: What the attendee wrote, or for a task what they built (a widget, a scenario).
            expected: The right answer when the notebook computes it from its own results;
                otherwise it comes from the exercises file.
            tol: Absolute tolerance for numbers (overrides the file's).
            rel: Relative tolerance for numbers (overrides the file's).
        """
        item = self._item(n)
        hint = f" Stuck? ex.hint({n}), then ex.solution({n})."
        if answer is None or answer is Ellipsis:
            print(f"{WRONG} not answered yet: replace None with your answer.{hint}")
        else:
            if "task" in item:
                done, missing = TASKS[item["task"]](answer)
            else:
                value = self.expected(n) if expected is _MISSING else expected
                t = item.get("tol") if tol is None else tol
                r = item.get("rel") if rel is None else rel
                done, missing = _same(answer, value, t, r), ""
            self._record(n, attempts=1, done=done)
            if done:
                print(f"{RIGHT} right: {item.get('why', '')}".rstrip(": "))
            elif "task" in item:
                print(f"{WRONG} not yet: {missing}. {item.get('hint', '')}".rstrip())
            else:
                print(f"{WRONG} wrong: {answer!r} is not it. Hint: {item.get('hint', '')}".rstrip())
        if _trainer():
            self.solution(n)

    def hint(self, n: int | str) -> None:
        """Print exercise *n*'s hint (it points the way without the value)."""
        self._record(n, hints=1)
        print(f"Hint {n}: {self._item(n).get('hint', 'no hint for this one')}")

    def solution(self, n: int | str) -> None:
        """Print exercise *n*'s solution and why it is right (counted as revealed)."""
        item = self._item(n)
        if not _trainer():
            self._record(n, revealed=True)
        print(f"Solution {n}: {item.get('solution', '')}\nWhy: {item.get('why', '')}")

    def panel(self, state: Mapping[int | str, Callable[[], Any]] | None = None) -> Any:
        """Hint and Solution buttons for every exercise, Check buttons for tasks, and Reset.

        Solution unlocks after the hint (at once in trainer mode). A task given in *state* gets
        a *Check* button that runs its check on what the getter returns now (the widget the
        attendee is working in). *Reset* clears what the panel shows and locks the solutions
        again; the progress file keeps what was revealed.

        Args:
            state: Task number → a function returning what to check (``lambda: designer``).
        """
        import ipywidgets as w

        getters = {str(k): v for k, v in (state or {}).items()}
        out = w.Output()
        out.add_class("istiolab-exercise-output")
        rows = []
        solution_buttons: list[Any] = []
        for n in self.items:
            hint_b = w.Button(description=f"Hint {n}", icon="lightbulb-o")
            sol_b = w.Button(description=f"Solution {n}", disabled=not _trainer())
            solution_buttons.append(sol_b)

            def on_hint(_: Any, n: str = n, sol_b: Any = sol_b) -> None:
                out.clear_output()
                with out:
                    self.hint(n)
                sol_b.disabled = False

            def on_solution(_: Any, n: str = n) -> None:
                out.clear_output()
                with out:
                    self.solution(n)

            hint_b.on_click(on_hint)
            sol_b.on_click(on_solution)
            buttons = [hint_b, sol_b]
            if n in getters:
                check_b = w.Button(description=f"Check {n}", icon="check", button_style="info")

                def on_check(_: Any, n: str = n) -> None:
                    out.clear_output()
                    with out:
                        print(f"checking task {n}…")
                    try:
                        answer = getters[n]()
                    except Exception as err:  # the getter names something not built yet
                        answer, problem = None, f"{type(err).__name__}: {err}"
                    else:
                        problem = ""
                    out.clear_output()
                    with out:
                        if problem:
                            print(f"{WRONG} not yet: {problem}")
                        else:
                            self.check(n, answer)

                check_b.on_click(on_check)
                buttons.append(check_b)
            rows.append(w.HBox(buttons))

        reset_b = w.Button(description="Reset", icon="undo", tooltip="hide hints and solutions")

        def on_reset(_: Any) -> None:
            out.clear_output()
            for b in solution_buttons:
                b.disabled = not _trainer()

        reset_b.on_click(on_reset)
        box = w.VBox([*rows, reset_b, out])
        box.add_class("istiolab-exercises")
        return box


def progress(notebooks: list[str] | None = None) -> pd.DataFrame:
    """A table of progress per notebook: exercises done, attempts, hints and solutions shown.

    Args:
        notebooks: The notebooks to list; every notebook of the exercises file if None.
    """
    import pandas as pd

    catalogue = {k: v for k, v in _load_all().items() if not k.startswith("_")}
    seen = _read_progress()
    rows = []
    for name in notebooks or sorted(catalogue):
        items = catalogue.get(name, {})
        mine = seen.get(name, {})
        rows.append(
            {
                "notebook": name,
                "done": sum(1 for n in items if mine.get(str(n), {}).get("done")),
                "exercises": len(items),
                "attempts": sum(int(e.get("attempts", 0)) for e in mine.values()),
                "hints": sum(int(e.get("hints", 0)) for e in mine.values()),
                "solutions shown": sum(1 for e in mine.values() if e.get("revealed")),
            }
        )
    return pd.DataFrame(rows)
