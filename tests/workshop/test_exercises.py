"""The workshop's exercises do not give their answers away, and reveal them on request.

The notebooks' sources and saved outputs must not contain an exercise's explanation (``why``) or,
in the exercise cells, its expected value; a wrong answer gets a hint without the value; the
trainer's switches reveal solutions; state-checked tasks pass when done and fail when not; and
progress lands in ``$ISTIOLAB_HOME``.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

import pytest

from istiolab import lab
from istiolab.lab import exercises
from istiolab.lab.exercises import Exercises

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CATALOGUE: dict[str, Any] = json.loads((NOTEBOOKS / "exercises.json").read_text(encoding="utf-8"))
SOLUTIONS: dict[str, Any] = json.loads((NOTEBOOKS / "solutions.json").read_text(encoding="utf-8"))
NAMES = sorted(k for k in CATALOGUE if not k.startswith("_"))


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIOLAB_HOME", str(tmp_path))
    monkeypatch.delenv("ISTIOLAB_TRAINER", raising=False)
    exercises.hide_all()


def _cells(name: str) -> list[Any]:
    return list(nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells)


def _exercise_cells(name: str) -> list[Any]:
    cells = _cells(name)
    start = next(i for i, c in enumerate(cells) if "Exercises(" in c.source)
    return [c for c in cells[start:] if c.cell_type == "code"]


def _code_only(source: str) -> str:
    """The source without comments (an answer's comment may list the choices)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return tokenize.untokenize((t.type, t.string) for t in tokens if t.type != tokenize.COMMENT)


def _outputs(cell: Any) -> str:
    return json.dumps(cell.get("outputs", []), ensure_ascii=False)


def _fragments(text: str, size: int = 30) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + 6]) for i in range(0, max(1, len(words) - 5), 3)] or [text]


def test_catalogue_matches_notebooks() -> None:
    assert len(NAMES) == 12
    for name in NAMES:
        used = set()
        for cell in _exercise_cells(name):
            used |= set(re.findall(r"ex\.check\((\d+)", cell.source))
        assert used == set(CATALOGUE[name]), name
        for n, item in CATALOGUE[name].items():
            assert all(item.get(k) for k in ("hint", "why", "solution")), (name, n)


@pytest.mark.parametrize("name", NAMES)
def test_no_why_in_notebook_source_or_outputs(name: str) -> None:
    everything = "\n".join(c.source + _outputs(c) for c in _cells(name))
    flat = " ".join(everything.split())
    for n, item in CATALOGUE[name].items():
        for frag in _fragments(item["why"]):
            assert frag not in flat, f"{name} exercise {n}: its explanation shows ({frag!r})"


@pytest.mark.parametrize("name", NAMES)
def test_no_expected_value_in_exercise_cells(name: str) -> None:
    literals = set()
    single: set[Any] = set()  # answers that are one string, or a number of two digits or more
    for n, item in CATALOGUE[name].items():
        if "expected" in item:
            literals.add(item["expected"])
        answer = SOLUTIONS[name].get(f"answer_{n}", "")
        # an answer that is an expression of the notebook's objects is not a value
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(answer)
            literals.add(repr(value))
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if isinstance(value, str) or (number and len(repr(value)) > 1):
                single.add(value)
    cells = _exercise_cells(name)
    for cell in cells:
        tree = ast.parse(cell.source)
        for call in ast.walk(tree):
            if (
                isinstance(call, ast.Call)
                and ast.unparse(call.func) == "ex.check"
                and len(call.args) > 2  # an expected value given in the cell is computed
            ):
                assert any(isinstance(n, ast.Name) for n in ast.walk(call.args[2])), (
                    f"{name}: a literal expected value in {ast.unparse(call)}"
                )
        # Small integers are everywhere (exercise numbers, indexes): look for longer literals.
        # A single string or number is compared token by token (a regex on untokenized code
        # missed '"VirtualService"and', as untokenize glues the next keyword to a string).
        for value in _literal_tokens(cell.source):
            assert value not in single, f"{name}: {value!r} is written in an exercise cell"
        code = re.sub(r"ex\.check\(\d+,", "", _code_only(cell.source))
        for value in (v for v in literals if len(v) > 1):
            for form in {value, value.replace("'", '"')}:
                assert not re.search(rf"(?<![\w.]){re.escape(form)}(?![\w.])", code), (
                    f"{name}: {form} is written in an exercise cell:\n{cell.source}"
                )
        # nothing is printed or shown before the attendee answers
        assert not re.search(r"\b(print|display|show)\(", code), cell.source
        assert cell.get("outputs", []) == []


def _literal_tokens(source: str) -> list[Any]:
    """The values of the string and number tokens of *source* (comments are not tokens)."""
    values = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.STRING, tokenize.NUMBER):
            with contextlib.suppress(ValueError, SyntaxError):
                values.append(ast.literal_eval(tok.string))
    return values


def test_the_literal_scan_catches_a_planted_value() -> None:
    assert "VirtualService" in _literal_tokens('ok = kind == "VirtualService"and True  # "Gateway"')
    assert "Gateway" not in _literal_tokens('x = 1  # "Gateway"')
    code = _code_only('answer_2 = None  # "public" or "private"\nex.check(2, answer_2, 90)')
    assert re.search(r"(?<![\w.])90(?![\w.])", code)
    assert "public" not in code


def test_wrong_answer_gets_a_hint_without_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    ex = Exercises("10_apply_to_a_cluster")
    ex.check(2, 50)
    out = capsys.readouterr().out
    assert out.startswith("\u2717 wrong")
    assert CATALOGUE["10_apply_to_a_cluster"]["2"]["hint"] in out
    assert "90" not in out
    assert CATALOGUE["10_apply_to_a_cluster"]["2"]["why"] not in out
    ex.check(2, None)
    assert "not answered yet" in capsys.readouterr().out
    ex.check(2, 90)
    out = capsys.readouterr().out
    assert out.startswith("\u2713 right")
    assert "90/10" in out


@pytest.mark.parametrize("name", NAMES)
def test_no_hint_gives_a_literal_answer(name: str) -> None:
    for n, item in CATALOGUE[name].items():
        if "expected" in item:
            value = item["expected"].strip("'\"")
            assert not re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", item["hint"]), (
                name,
                n,
            )


def test_hint_then_solution_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    ex = Exercises("05_retries_timeouts")
    ex.hint(1)
    assert CATALOGUE["05_retries_timeouts"]["1"]["hint"] in capsys.readouterr().out
    ex.solution(1)
    out = capsys.readouterr().out
    assert CATALOGUE["05_retries_timeouts"]["1"]["why"] in out
    assert "answer_1 = 0.9919" in out
    ex.check(2, 1.42)
    table = exercises.progress()
    row = table.set_index("notebook").loc["05_retries_timeouts"]
    assert (row["done"], row["exercises"], row["hints"], row["solutions shown"]) == (1, 4, 1, 1)
    assert json.loads(exercises.progress_file().read_text())["05_retries_timeouts"]["2"]["done"]


def test_reveal_all_needs_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    ex = Exercises("00_welcome")
    why = CATALOGUE["00_welcome"]["3"]["why"]
    ex.check(3, "private")
    assert why not in capsys.readouterr().out
    assert not exercises.reveal_all("guess")
    ex.check(3, "private")
    assert why not in capsys.readouterr().out
    assert exercises.reveal_all("envoy-at-the-edge")
    ex.check(3, "private")
    assert why in capsys.readouterr().out


def test_trainer_environment_reveals(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISTIOLAB_TRAINER", "1")
    Exercises("00_welcome").check(3, None)
    assert CATALOGUE["00_welcome"]["3"]["why"] in capsys.readouterr().out


def test_panel_unlocks_the_solution_after_the_hint() -> None:
    pytest.importorskip("ipywidgets")
    panel = Exercises("02_canary_weights").panel()
    hint, solution = panel.children[0].children
    assert solution.disabled
    hint.click()
    assert not solution.disabled


def test_canary_task_reads_the_designer_state(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ipywidgets")
    from istiolab.widgets import RuleDesigner

    sc = lab.scenario("canary-90-10")
    designer = RuleDesigner(lab.rules_of(sc))
    ex = Exercises("02_canary_weights")
    assert not ex.is_right(4, designer)  # 90/10 as loaded
    designer.set_weights(3, 1)  # a quarter, but 1.14 wants a total of 100
    ex.check(4, designer)
    out = capsys.readouterr().out
    assert out.startswith("\u2717 not yet")
    assert "IL202" in out
    designer.set_weights(75, 25)
    ex.check(4, designer)
    assert capsys.readouterr().out.startswith("\u2713 right")


def test_retry_task_runs_the_scenario() -> None:
    sc = lab.scenario("retry-storm").with_overrides({"run.duration_s": 9.0})
    key = "rules.inline.1.spec.http.0.retries.attempts"
    ex = Exercises("05_retries_timeouts")
    assert ex.is_right(4, sc.with_overrides({"events": [], key: 3}))
    assert not ex.is_right(4, sc.with_overrides({"events": [], key: 2}))  # too few
    assert not ex.is_right(4, sc.with_overrides({"events": [], key: 4}))  # not the smallest
    assert not ex.is_right(4, sc.with_overrides({key: 3}))  # the burst is still there


def test_workshop_launcher_shows_progress(tmp_path: Path) -> None:
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOKS / "workshop.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for name in NAMES:
        assert f"({name}.ipynb)" in text
    assert "trainer-guide.md" in text
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    Exercises("02_canary_weights").check(1, 0.2, expected=0.2)  # one done, in $ISTIOLAB_HOME
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    html = "".join(
        o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", [])
    )
    assert "02_canary_weights" in html
    assert str(tmp_path) in json.dumps([c.get("outputs") for c in nb.cells])


@pytest.mark.parametrize("name", NAMES)
def test_each_notebook_opens_with_a_summary(name: str) -> None:
    top = _cells(name)[0].source
    assert "**At a glance**" in top
    assert "**The aha:**" in top
    assert "What you will learn" in top


def test_response_flags_are_defined_before_use() -> None:
    glossary = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    for flag in ("UO", "UT", "URX", "UF", "UH", "NR", "DI", "FI", "RL", "DC", "UC", "LR"):
        assert f"| `{flag}` |" in glossary, flag
    defined: set[str] = set()
    for name in NAMES:
        for cell in _cells(name)[1:]:  # the first cell only lists what the notebook teaches
            if cell.cell_type == "markdown" and "Envoy response flags" in cell.source:
                defined |= set(re.findall(r"\* \*\*([A-Z]+)\*\*:", cell.source))
            if cell.cell_type == "markdown":
                for flag in re.findall(r"flag `([A-Z]{2,4})`", cell.source):
                    assert flag in defined, f"{name}: {flag} used before it is defined"
    assert {"FI", "DI", "UT", "URX", "RL", "UH", "UF"} <= defined


def test_beta_tester_task_reads_the_designer_match() -> None:
    pytest.importorskip("ipywidgets")
    from istiolab.widgets import RuleDesigner

    designer = RuleDesigner(lab.rules_of(lab.scenario("cookie-ab")))
    ex = Exercises("03_cookie_ab_beta_ui")
    assert not ex.is_right(4, designer)  # testers still go to v1
    header = {"match_kind": "header", "match_name": "cookie", "match_type": "regex"}
    designer.set(**header, match_value="^(.*?; ?)?user=(beta|tester).*$")
    assert not ex.is_right(4, designer)  # user=betamax would reach v2
    designer.set(**header, match_value="^(.*?; ?)?user=(beta|tester)(;.*)?$")
    assert ex.is_right(4, designer)


def test_four_pod_task_runs_the_scenario() -> None:
    sc = lab.scenario("rate-limit-100rps").with_overrides({"run.duration_s": 6.0})
    bucket = "rules.inline.2.spec.configPatches.0.patch.value.typed_config.value.token_bucket"
    four = {
        "ingress.azs": ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"],
        "traffic.0.arrival.rate_rps": 400,
    }
    quarter = {f"{bucket}.max_tokens": 25, f"{bucket}.tokens_per_fill": 25}
    ex = Exercises("06_rate_limit")
    assert ex.is_right(4, sc.with_overrides({**four, **quarter}))
    assert not ex.is_right(4, sc.with_overrides(four))  # 4 x 100 tokens: 400 req/s pass
    assert not ex.is_right(4, sc.with_overrides(quarter))  # one pod with 25 tokens


def test_gentle_drill_task_reads_the_designer_fault() -> None:
    pytest.importorskip("ipywidgets")
    from istiolab.widgets import RuleDesigner

    rules = lab.rules_of(lab.scenario("deny-route"))
    designer = RuleDesigner(rules, route="deny-route")
    ex = Exercises("04_fault_injection")
    assert not ex.is_right(4, designer)  # the full 403 drill
    designer.set(abort_percent=10, abort_status=503)
    assert not ex.is_right(4, designer)  # no delay yet
    designer.set(delay_percent=20, delay_s=1.0)
    assert ex.is_right(4, designer)


def test_even_nlb_task_runs_the_scenario() -> None:
    sc = lab.scenario("nlb-vs-alb-cross-zone").with_overrides({"run.duration_s": 5.0})
    ex = Exercises("07_nlb_alb_cross_zone_az_loss")
    assert ex.is_right(4, sc.with_overrides({"aws.cross_zone": True}))
    assert not ex.is_right(4, sc)  # cross-zone off: the small AZ's nodes take a quarter each
    assert not ex.is_right(4, sc.with_overrides({"aws.lb": "alb"}))  # even, but not an NLB


def test_cluster_task_reads_the_cluster_not_the_designer() -> None:
    from istiolab.kube import InMemoryCluster, apply, plan

    rules = lab.rules_of(lab.scenario("canary-90-10"))
    cluster = InMemoryCluster(namespace="default")
    ex = Exercises("10_apply_to_a_cluster")
    assert not ex.is_right(4, cluster)  # nothing applied yet
    apply(plan(rules, cluster), cluster)
    assert not ex.is_right(4, cluster)  # 90/10
    split = lab.rules_of(
        lab.scenario("canary-90-10").with_overrides(
            {
                "rules.inline.1.spec.http.0.route.0.weight": 75,
                "rules.inline.1.spec.http.0.route.1.weight": 25,
            }
        )
    )
    assert not ex.is_right(4, split)  # the rules alone are not the cluster
    apply(plan(split, cluster), cluster)
    assert ex.is_right(4, cluster)


def test_bigger_pool_task_reads_the_topology() -> None:
    seed = lab.scenario("seed-httpbin")
    three = {"ingress.azs": ["us-east-1a", "us-east-1b", "us-east-1c"], "ingress.nodes_per_az": 2}
    ex = Exercises("00_welcome")
    assert ex.is_right(5, seed.with_overrides({**three, "aws.lb": "alb"}))
    assert not ex.is_right(5, seed.with_overrides(three))  # still the NLB
    assert not ex.is_right(5, seed.with_overrides({"aws.lb": "alb", "ingress.nodes_per_az": 2}))


NARROW = """
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: narrow, annotations: {kubernetes.io/ingress.class: istio}}
spec:
  rules:
  - http:
      paths:
      - {path: "PATH_A", backend: {serviceName: httpbin, servicePort: 8000}}
      - {path: "PATH_B", backend: {serviceName: httpbin, servicePort: 8000}}
"""


def test_narrow_ingress_task_reads_the_routes() -> None:
    import istiolab

    httpbin = istiolab.load(lab.example("seed", "httpbin.yaml"))

    def ingress(a: str, b: str) -> Any:
        text = NARROW.replace("PATH_A", a).replace("PATH_B", b)
        return istiolab.loads(text, file="narrow.yaml") + httpbin

    task = exercises.TASKS["narrow_ingress"]
    assert task(ingress("/status/.*", "/headers")) == (True, "")
    done, why = task(ingress("/status.*", "/headers"))  # /statusx gets through
    assert not done
    assert "/statusx" in why
    assert not task(ingress("/status/.*", "/headers.*"))[0]  # /headers/x gets through
    assert not task(ingress("/status/.*", "/ip"))[0]  # /headers is not served
    seed_ingress = istiolab.load([lab.example("seed", "ingress.yaml")]) + httpbin
    assert not task(seed_ingress)[0]  # the seed's /.* serves everything


def test_az_loss_task_runs_one_az() -> None:
    peak = lab.scenario("capacity-peak").with_overrides(
        {"run.duration_s": 4.0, "traffic.0.arrival": {"kind": "poisson", "rate_rps": 2400}}
    )
    task = exercises.TASKS["survive_az_loss"]
    assert task(peak.with_overrides({"ingress.nodes_per_az": 3})) == (True, "")
    done, why = task(peak.with_overrides({"ingress.nodes_per_az": 2}))
    assert not done
    assert "too few" in why
    done, why = task(peak.with_overrides({"ingress.nodes_per_az": 4}))
    assert not done
    assert "fewer" in why
    one_az = peak.with_overrides({"ingress.azs": ["us-east-1a"], "ingress.nodes_per_az": 6})
    assert not task(one_az)[0]


@pytest.mark.envoy
def test_testers_task_needs_the_rules_and_envoys_verdict() -> None:
    pytest.importorskip("ipywidgets")
    pytest.importorskip("envoy")
    from istiolab.widgets import RuleDesigner, VerifyPanel

    designer = RuleDesigner(lab.rules_of(lab.scenario("cookie-ab")), headers="cookie: user=beta")
    panel = VerifyPanel(designer, requests=50)
    task = exercises.TASKS["testers_verified"]
    done, why = task(panel)
    assert not done
    assert "user=tester" in why  # the beta users still have v2
    designer.set(match_value="user=tester")
    done, why = task(panel)
    assert not done
    assert "press Verify" in why  # right rules, not verified yet
    assert panel.run() is not None
    assert task(panel) == (True, "")
    designer.set(match_value="user=testers")  # the verdict was on other rules
    assert not task(panel)[0]
    assert not task(designer)[0]  # the designer alone is not the panel


def test_panel_check_button_reads_the_state_and_reset_locks_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Outside a kernel the panel's Output widget does not capture: its prints reach stdout."""
    pytest.importorskip("ipywidgets")
    from istiolab.widgets import RuleDesigner

    designer = RuleDesigner(lab.rules_of(lab.scenario("canary-90-10")))
    ex = Exercises("02_canary_weights")
    panel = ex.panel(state={4: lambda: designer})
    rows = panel.children[:-2]
    reset = panel.children[-2]
    check = rows[3].children[2]
    assert check.description == "Check 4"
    assert [len(r.children) for r in rows] == [2, 2, 2, 3]
    capsys.readouterr()
    check.click()
    assert "\u2717 not yet" in capsys.readouterr().out
    designer.set_weights(75, 25)
    check.click()
    assert "\u2713 right" in capsys.readouterr().out
    hint, solution = rows[0].children
    hint.click()
    assert not solution.disabled
    solution.click()
    assert CATALOGUE["02_canary_weights"]["1"]["why"] in capsys.readouterr().out
    reset.click()
    assert solution.disabled
    broken = ex.panel(state={4: lambda: undefined_name})  # type: ignore[name-defined]  # noqa: F821
    broken.children[3].children[2].click()
    assert "NameError" in capsys.readouterr().out  # said, not raised


def test_httproute_canary_task_reads_the_compiled_routes() -> None:
    """11: the HTTPRoute must send a quarter of every path to web-v2, with lint clean."""
    import istiolab

    check = exercises.TASKS["httproute_canary"]
    base = (NOTEBOOKS / "11_virtualservice_to_httproute.ipynb").read_text(encoding="utf-8")
    assert "httproute_canary" not in base  # the check lives in the package, not the notebook

    def config(backends: str, hostname: str = "shop.example.com") -> Any:
        return istiolab.loads(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
            "metadata: {name: shop-gateway}\nspec:\n  gatewayClassName: istio\n"
            f"  listeners: [{{name: http, port: 80, protocol: HTTP, hostname: {hostname}}}]\n"
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
            "metadata: {name: web}\nspec:\n  parentRefs: [{name: shop-gateway}]\n"
            f"  hostnames: [{hostname}]\n  rules:\n  - backendRefs: {backends}\n"
            + "".join(
                f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {n}}}\n"
                f"spec: {{selector: {{app: {n}}}, ports: [{{name: http, port: 80}}]}}\n"
                for n in ("web-v1", "web-v2")
            )
        )

    v1 = "{name: web-v1, port: 80"
    v2 = "{name: web-v2, port: 80"
    assert check(config(f"[{v1}, weight: 3}}, {v2}, weight: 1}}]"))[0]
    assert check(config(f"[{v1}, weight: 75}}, {v2}, weight: 25}}]"))[0]
    ok, why = check(config(f"[{v1}}}]"))
    assert not ok
    assert "web-v1" in why
    ok, why = check(config(f"[{v1}, weight: 50}}, {v2}, weight: 50}}]"))
    assert not ok
    assert "50 %" in why
    ok, why = check(config(f"[{v1}, weight: 75}}, {v2}, weight: 25}}]", "other.example.com"))
    assert not ok
    assert "no route" in why
