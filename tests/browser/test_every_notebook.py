"""Every workshop notebook in a real browser: run it, press every reveal, reset and check button.

One JupyterLab server for the module; each notebook in a fresh page with its own kernel, shut
down afterwards. For each notebook, as an attendee would:

1. Run All, until every code cell has run; no cell shows an error.
2. No hint, solution or explanation (``why``) of its exercises is on the page.
3. In the exercise panel, for every exercise: Hint N shows the hint and not the explanation and
   unlocks Solution N; Solution N shows the solution and its explanation and nothing of the other
   exercises; the panel's Reset hides it again and locks the solutions.
4. Every Check N (a task checked from a widget's state) says "not yet" on the untouched widget.
5. Every Reset of a widget (designer, dashboard, verify and apply panels) runs without error.
6. The tasks of notebooks 03 (the match tab) and 04 (the fault tab) are completed in the
   designer and Check 4 says "✓ right"; after the designer's Reset it says "not yet" again
   (notebook 02's task, with the weight slider, is done by ``test_lab_browser.py``).

Errors are looked for in the cells' outputs and in the kernel's messages on the websocket, so a
button whose callback raises (which JupyterLab shows only in its log console) fails the test.
Timings and button counts go to ``build/browser-every-notebook.json``; a failing notebook leaves
``build/browser-failure-<stem>.png``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import (
    BROWSER_MARKS,
    BUILD,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    api,
    dismiss_dialogs,
    page_text,
    run_all,
)

pytestmark = BROWSER_MARKS

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CATALOGUE: dict[str, dict[str, dict[str, Any]]] = {
    k: v
    for k, v in json.loads((ROOT / "notebooks" / "exercises.json").read_text("utf-8")).items()
    if not k.startswith("_")
}
WAIT_MS = 60_000  # one wait for the page or the kernel (a loaded 2-core machine)
RUN_ALL_S = 300  # one notebook's Run All
REPORT = BUILD / "browser-every-notebook.json"
SECRET_KEYS = ("why", "solution", "hint")


def test_every_notebook_is_listed() -> None:
    """The twelve notebooks, each with its exercises in the catalogue."""
    assert len(NOTEBOOKS) == 12, NOTEBOOKS
    assert sorted(CATALOGUE) == NOTEBOOKS


def _placeholders(stem: str) -> int:
    """How many exercise cells print "not answered yet" on Run All (``answer_N = None``)."""
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text("utf-8"))
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return len(re.findall(r"^answer_\w+ = None\b", source, flags=re.MULTILINE))


# -- the kernel's messages, read off the page's websocket ----------------------------------------


def _messages(payload: str | bytes) -> list[dict[str, Any]]:
    """The Jupyter messages in one websocket frame: JSON, or the v1 binary protocol.

    v1 (``v1.kernel.websocket.jupyter.org``): a little-endian uint64 count n, n uint64 offsets,
    then the parts they delimit: channel, header, parent header, metadata, content, buffers.
    """
    if isinstance(payload, str):
        try:
            msg = json.loads(payload)
        except ValueError:
            return []
        return [msg] if isinstance(msg, dict) else []
    try:
        n = int.from_bytes(payload[:8], "little")
        offsets = [int.from_bytes(payload[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
        parts = [payload[offsets[i] : offsets[i + 1]] for i in range(n - 1)]
        if len(parts) < 5:
            return []
        return [
            {
                "channel": parts[0].decode(),
                "header": json.loads(parts[1]),
                "content": json.loads(parts[4]),
            }
        ]
    except (ValueError, IndexError, UnicodeDecodeError):
        return []


class KernelWatch:
    """Errors and idle states the page's kernels report, from their websocket frames."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.idle = 0
        self.frames = 0
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws: Any) -> None:
        if "/api/kernels/" in ws.url:
            ws.on("framereceived", self._on_frame)

    def _on_frame(self, payload: str | bytes) -> None:
        self.frames += 1
        for msg in _messages(payload):
            kind = msg.get("header", {}).get("msg_type")
            content = msg.get("content", {})
            if kind == "error":
                self.errors.append(f"{content.get('ename')}: {content.get('evalue')}")
            elif kind == "stream" and content.get("name") == "stderr":
                text = str(content.get("text", ""))
                if "Error" in text or "Traceback" in text:
                    self.errors.append(text[:500])
            elif kind == "status" and content.get("execution_state") == "idle":
                self.idle += 1


def _settle(page: Any, watch: KernelWatch, idle_before: int) -> None:
    """Wait until the kernel has answered what was sent since *idle_before* and is idle."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while watch.idle <= idle_before:
        assert time.monotonic() < deadline, "the kernel did not answer the click"
        page.wait_for_timeout(100)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=WAIT_MS)
    page.wait_for_timeout(200)  # the widgets' updates that came with the idle state render


def _click(page: Any, watch: KernelWatch, button: Any) -> None:
    """Click a widget button and wait until its callback has run in the kernel."""
    before = watch.idle
    button.scroll_into_view_if_needed()
    button.click()
    _settle(page, watch, before)


def _output_errors(page: Any) -> list[str]:
    """Error outputs, and stderr outputs that name an error, in every cell."""
    texts = page.evaluate(
        '[...document.querySelectorAll(".jp-OutputArea-output[data-mime-type='
        "'application/vnd.jupyter.stderr'], .jp-OutputArea-output[data-mime-type="
        "'application/vnd.jupyter.error']\")].map(e => e.innerText)"
    )
    return [t[:500] for t in texts if "Error" in t or "Traceback" in t]


def _visible_secrets(text: str, stem: str, keys: tuple[str, ...] = SECRET_KEYS) -> list[str]:
    """Which exercise texts of *stem* (``"3.why"``) are in *text*.

    A hint of one or two words is a pointer, not a text of its own: 06's "divide" is also in a
    lint finding's advice, 08's "answer.value" in the exercise cell's code. Such hints are not
    looked for on the whole page (the panel test still checks that Hint N prints them).
    """
    return sorted(
        f"{n}.{key}"
        for n, item in CATALOGUE[stem].items()
        for key in keys
        if key in item
        and str(item[key]) in text
        and (key != "hint" or len(str(item[key]).split()) >= 3)
    )


def _where(text: str, stem: str, shown: list[str]) -> list[str]:
    """Each of *shown* (``"3.hint"``) with the page text around its first occurrence."""
    out = []
    for name in shown:
        n, key = name.split(".")
        at = text.index(str(CATALOGUE[stem][n][key]))
        out.append(f"{name} in ...{text[max(0, at - 80) : at + 80]!r}...")
    return out


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module; each notebook gets a fresh context and page."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, Any]]:
    """Per notebook: seconds and buttons pressed; written to ``build/`` at the module's end."""
    started = time.monotonic()
    data: dict[str, Any] = {"notebooks": {}}
    yield data
    data["module_s"] = round(time.monotonic() - started, 1)
    BUILD.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


# -- the test -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_buttons(
    stem: str, lab_module: tuple[str, str], browser: Any, report: dict[str, Any]
) -> None:
    """Run *stem*, press every reveal, reset and check button; no answer shows unasked."""
    base, token = lab_module
    started = time.monotonic()
    pressed: dict[str, int] = {}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    watch = KernelWatch(page)
    try:
        try:
            _drive(page, watch, f"{base}/lab/workspaces/t{uuid.uuid4().hex[:8]}", token, stem,
                   pressed)  # fmt: skip
        except Exception:
            BUILD.mkdir(exist_ok=True)
            page.screenshot(path=str(BUILD / f"browser-failure-{stem}.png"), full_page=False)
            raise
    finally:
        context.close()
        _shut_down_kernel(base, token, stem)
        report["notebooks"][stem] = {"s": round(time.monotonic() - started, 1), **pressed}


def _shut_down_kernel(base: str, token: str, stem: str) -> None:
    """End the notebook's session and kernel, so twelve kernels are never alive at once."""
    for session in api(base, token, "/api/sessions") or []:
        if session.get("path", "").endswith(f"{stem}.ipynb"):
            api(base, token, f"/api/sessions/{session['id']}", method="DELETE")
    deadline = time.monotonic() + 30
    while api(base, token, "/api/kernels") and time.monotonic() < deadline:
        time.sleep(0.5)


def _drive(
    page: Any, watch: KernelWatch, workspace: str, token: str, stem: str, pressed: dict[str, int]
) -> None:
    exercises = CATALOGUE[stem]
    url = f"{workspace}/tree/notebooks/{stem}.ipynb?token={token}"

    # 1. Run All, until every code cell has its execution count (the cells after the exercises
    #    included), and nothing went wrong
    dialogs = run_all(page, url, answers=_placeholders(stem), timeout_s=RUN_ALL_S)
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".every(e => /\\[\\d+\\]/.test(e.textContent))",
        timeout=RUN_ALL_S * 1000,
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=WAIT_MS)
    assert not _output_errors(page), _output_errors(page)
    assert not watch.errors, watch.errors
    assert watch.frames > 0, "no kernel message was seen on the websocket"

    # 2. nothing of an answer before anyone asks
    text = page_text(page)
    shown = _visible_secrets(text, stem)
    assert not shown, f"{stem}: visible before anyone asked: {_where(text, stem, shown)}"

    panel = page.locator(".istiolab-exercises")
    try:
        panel.first.wait_for(state="attached", timeout=WAIT_MS)
    except Exception as err:
        cell = page.locator(".jp-CodeCell", has_text="ex.panel(").first
        raise AssertionError(f"{stem}: no exercise panel; its cell: {cell.inner_text()!r}") from err
    assert panel.count() == 1, f"{stem}: {panel.count()} exercise panels"
    panel = panel.first
    panel.scroll_into_view_if_needed()
    output = panel.locator(".istiolab-exercise-output").first

    def button(label: str) -> Any:
        found = panel.locator("button").filter(has_text=re.compile(rf"^\s*{label}\s*$"))
        assert found.count() == 1, f"{stem}: {found.count()} buttons {label!r}"
        return found.first

    def press(label: str, kind: str) -> None:
        _click(page, watch, button(label))
        pressed[kind] = pressed.get(kind, 0) + 1

    def shows(text: str) -> None:
        page.wait_for_function(
            "([el, text]) => el.innerText.includes(text)",
            arg=[output.element_handle(), text],
            timeout=WAIT_MS,
        )

    # 3. reveal each exercise step by step, then hide it again
    reset = button("Reset")
    for n, item in exercises.items():
        solution = button(f"Solution {n}")
        assert solution.is_disabled(), f"{stem}: Solution {n} is open before its hint"
        press(f"Hint {n}", "hint")
        shows(f"Hint {n}: {item['hint']}")
        text = page_text(page)
        assert item["why"] not in text, f"{stem}: Hint {n} shows the explanation"
        assert item["solution"] not in text, f"{stem}: Hint {n} shows the solution"
        page.wait_for_function("b => !b.disabled", arg=solution.element_handle(), timeout=WAIT_MS)
        press(f"Solution {n}", "solution")
        shows(f"Solution {n}: {item['solution']}")
        shows(f"Why: {item['why']}")
        others = [
            s
            for s in _visible_secrets(page_text(page), stem, ("why", "solution"))
            if s.split(".")[0] != n
        ]
        assert not others, f"{stem}: Solution {n} also shows {others}"
        _click(page, watch, reset)
        pressed["panel reset"] = pressed.get("panel reset", 0) + 1
        page.wait_for_function("el => !el.innerText.trim()", arg=output.element_handle())
        for m in exercises:
            assert button(f"Solution {m}").is_disabled(), f"{stem}: Reset left Solution {m} open"
        shown = _visible_secrets(page_text(page), stem)
        assert not shown, f"{stem}: still visible after Reset: {shown}"

    # 4. every task's Check on the untouched state: not done yet, and no explanation
    checks = [n for n in exercises if panel.locator("button", has_text=f"Check {n}").count()]
    for n in checks:
        _check(page, watch, stem, n, button, output, pressed, done=False)

    # 6. the tasks done here through a widget (03 and 04 in the designer), then checked
    task = COMPLETED.get(stem)
    if task is not None:
        task[1](page, watch)
        _check(page, watch, stem, task[0], button, output, pressed, done=True)

    # 5. every widget's Reset outside the exercise panel
    resets = page.locator(".jp-Notebook button").filter(has_text=re.compile(r"^\s*Reset\s*$"))
    widget_resets = [
        resets.nth(i)
        for i in range(resets.count())
        if not resets.nth(i).evaluate("b => !!b.closest('.istiolab-exercises')")
    ]
    for b in widget_resets:
        _click(page, watch, b)
        pressed["widget reset"] = pressed.get("widget reset", 0) + 1
    if task is not None:  # the designer's Reset undid the task
        _check(page, watch, stem, task[0], button, output, pressed, done=False)

    dismiss_dialogs(page, dialogs)
    assert not _output_errors(page), _output_errors(page)
    assert not watch.errors, watch.errors


def _check(
    page: Any,
    watch: KernelWatch,
    stem: str,
    n: str,
    button: Any,
    output: Any,
    pressed: dict[str, int],
    *,
    done: bool,
) -> None:
    """Press Check *n*; the verdict is "✓ right" with its explanation if *done*, else "not yet"."""
    _click(page, watch, button(f"Check {n}"))
    pressed["check"] = pressed.get("check", 0) + 1
    verdict = "\u2713 right" if done else "\u2717 not yet"
    page.wait_for_function(
        "([el, text]) => el.innerText.includes(text)",
        arg=[output.element_handle(), verdict],
        timeout=WAIT_MS,
    )
    text = output.inner_text()
    why = str(CATALOGUE[stem][n]["why"])
    if done:
        assert why in text, f"{stem}: Check {n} is right without its explanation: {text!r}"
    else:
        assert why not in page_text(page), f"{stem}: Check {n} not done but explained"
        assert "Error" not in text, f"{stem}: Check {n}: {text!r}"


def _gentle_drill(page: Any, watch: KernelWatch) -> None:
    """Notebook 04, task 4: abort 10 % with 503 and delay 20 % by 1 s, in the fault tab."""
    designer = page.locator(".istiolab-rule-designer").first
    designer.scroll_into_view_if_needed()
    tab = designer.locator(".lm-TabBar-tab").filter(has_text=re.compile(r"^\s*fault\s*$")).first
    tab.click()
    for label, value in (("abort %", "10"), ("delay %", "20")):
        slider = designer.locator(".widget-slider").filter(has_text=label).first
        readout = slider.locator(".widget-readout").first
        readout.wait_for(state="visible", timeout=WAIT_MS)
        before = watch.idle
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(value)
        page.keyboard.press("Enter")  # the readout is editable: Enter sets the value
        _settle(page, watch, before)
    delay = designer.locator(".widget-text").filter(has_text="delay (s)").locator("input").first
    before = watch.idle
    delay.fill("1")
    delay.press("Enter")
    _settle(page, watch, before)
    yaml = designer.locator(".istiolab-yaml").first.inner_text()
    assert "1s" in yaml or "1.0s" in yaml or "1000ms" in yaml, yaml


def _beta_testers(page: Any, watch: KernelWatch) -> None:
    """Notebook 03, task 4: the cookie header matched by a regex of beta and tester, in RE2."""
    designer = page.locator(".istiolab-rule-designer").first
    designer.scroll_into_view_if_needed()
    tab = designer.locator(".lm-TabBar-tab").filter(has_text=re.compile(r"^\s*match\s*$")).first
    tab.click()

    def field(kind: str, label: str) -> Any:
        exact = page.locator("label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
        return designer.locator(kind).filter(has=exact).first

    before = watch.idle
    field(".widget-dropdown", "match").locator("select").select_option("header")
    _settle(page, watch, before)
    for label, value in (
        ("header name", "cookie"),
        ("value", r"^(.*?; ?)?user=(beta|tester)(;.*)?$"),
    ):
        box = field(".widget-text", label).locator("input").first
        before = watch.idle
        box.fill(value)
        box.press("Enter")  # the value box sends on Enter (continuous_update=False)
        _settle(page, watch, before)
    yaml = designer.locator(".istiolab-yaml").first.inner_text()
    assert "user=(beta|tester)" in yaml, yaml


COMPLETED: dict[str, tuple[str, Any]] = {
    "03_cookie_ab_beta_ui": ("4", _beta_testers),
    "04_fault_injection": ("4", _gentle_drill),
}
"""Notebook → (task number, how an attendee completes it in the page)."""
