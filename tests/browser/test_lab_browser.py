"""JupyterLab in a real browser: open notebook 02, run it, use its widgets and exercises.

Starts JupyterLab (fresh config and runtime folders, a random token, 127.0.0.1, a free port) on
a temporary copy of the notebooks, drives Debian's Chromium with Playwright, runs every cell,
and then, as an attendee would:

* checks that no hint, solution or explanation of the notebook's exercises is on the page;
* moves the v1 weight slider of the RuleDesigner with the keyboard and checks that the YAML
  preview and the simulated-traffic plot change;
* presses Hint 1 and Solution 1 (the solution appears only then), and the panel's Reset (it is
  gone again);
* completes the state-checked task 4 (v2 at 25 %) with the slider and its Check button;
* presses the designer's Reset (the weights are back to 90/10);

and that no cell shows an error. Screenshots are kept in ``build/``
(``browser-02_canary_weights.png``, ``exercise-before-reveal.png``,
``exercise-after-reveal.png``); with ``ISTIOLAB_UPDATE_SCREENSHOTS=1`` the exercise ones are
also written to ``docs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from .conftest import BROWSER_MARKS, BUILD, CHROMIUM, CHROMIUM_ARGS, ROOT
from .conftest import page_text as _page_text
from .conftest import run_all as _run_all

SCREENSHOTS = ROOT / "docs" / "screenshots"
NOTEBOOK = "02_canary_weights.ipynb"
EXERCISES = json.loads((ROOT / "notebooks" / "exercises.json").read_text(encoding="utf-8"))[
    NOTEBOOK.removesuffix(".ipynb")
]

pytestmark = BROWSER_MARKS


def test_notebook_02_slider_moves_output_and_plot(lab: tuple[str, str]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    base, token = lab
    BUILD.mkdir(exist_ok=True)
    shot = BUILD / f"browser-{NOTEBOOK.removesuffix('.ipynb')}.png"
    url = f"{base}/lab/workspaces/t{uuid.uuid4().hex[:8]}/tree/notebooks/{NOTEBOOK}?token={token}"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                _drive(page, url, shot)
            except Exception:
                page.screenshot(path=str(BUILD / "browser-failure.png"), full_page=False)
                raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def test_notebook_00_topology_and_no_answer_before_asked(lab: tuple[str, str]) -> None:
    """Notebook 00: the topology with measured flows renders, legibly sized; no answer shows."""
    sync_api = pytest.importorskip("playwright.sync_api")
    base, token = lab
    BUILD.mkdir(exist_ok=True)
    name = "00_welcome"
    url = f"{base}/lab/workspaces/t{uuid.uuid4().hex[:8]}/tree/notebooks/{name}.ipynb?token={token}"
    catalogue = json.loads((ROOT / "notebooks" / "exercises.json").read_text(encoding="utf-8"))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                _run_all(page, url, answers=4)
                text = _page_text(page)
                shown = sorted(
                    f"{n}.{key}"
                    for n, item in catalogue[name].items()
                    for key in ("why", "solution", "hint")
                    if str(item[key]) in text
                )
                assert not shown, f"visible before anyone asked: {shown}"
                # the second drawing of the topology is the one with the measured flows
                cell = page.locator(".jp-CodeCell", has_text="topology.draw(seed, result)").first
                image = cell.locator(".jp-OutputArea-output img").first
                image.wait_for(state="visible", timeout=60_000)
                width = image.evaluate("img => img.naturalWidth")
                assert width >= 1000, width  # drawn large enough to project
                _keep(page, image, "topology-in-jupyterlab.png")
            except Exception:
                page.screenshot(path=str(BUILD / "browser-failure-00.png"), full_page=False)
                raise
        finally:
            browser.close()


def _drive(page: object, url: str, shot: Path) -> None:
    """Run every cell, move the v1 slider, and check what changed (``page``: a Playwright Page)."""
    from playwright import sync_api

    assert isinstance(page, sync_api.Page)
    _run_all(page, url, answers=3)
    designer = page.locator(".istiolab-rule-designer").first
    # JupyterLab only renders the cells in view: bring the designer there first
    designer.scroll_into_view_if_needed()
    preview = designer.locator(".istiolab-yaml pre").first
    plot = designer.locator("img.istiolab-plot").first
    preview.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(
        "el => el.getAttribute('src')", arg=plot.element_handle(), timeout=60_000
    )
    yaml_before = preview.inner_text()
    src_before = plot.get_attribute("src")
    assert "weight: 90" in yaml_before

    slider = designer.locator(".widget-slider").first
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("PageDown")  # one step of 5: v1 90 -> 85, one update
    # The HTML widget replaces its <pre> on every update: query the document each time.
    yaml_js = "document.querySelector('.istiolab-rule-designer .istiolab-yaml pre').innerText"
    src_js = (
        "document.querySelector('.istiolab-rule-designer img.istiolab-plot').getAttribute('src')"
    )
    page.wait_for_function(f"{yaml_js}.includes('weight: 85')", timeout=60_000)
    page.wait_for_function(
        f"before => {src_js} && {src_js} !== before", arg=src_before, timeout=60_000
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    yaml_after = page.evaluate(yaml_js)
    assert "weight: 15" in yaml_after  # the other slider followed (total 100)
    assert yaml_after != yaml_before
    designer.scroll_into_view_if_needed()
    page.screenshot(path=str(shot), full_page=False)

    _exercises(page, handle, yaml_js)

    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    assert not [t for t in texts if "Error" in t or "Traceback" in t], texts


def _keep(page: object, locator: object, name: str) -> None:
    """Screenshot *locator* to ``build/NAME`` (and ``docs/screenshots/NAME`` when asked)."""
    from playwright import sync_api

    assert isinstance(locator, sync_api.Locator)
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(BUILD / name))
    if os.environ.get("ISTIOLAB_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUILD / name, SCREENSHOTS / name)


def _exercises(page: object, handle: object, yaml_js: str) -> None:
    """Reveal, reset and check in the exercise panel; complete task 4 with the slider."""
    from playwright import sync_api

    assert isinstance(page, sync_api.Page)
    assert isinstance(handle, sync_api.Locator)
    panel = page.locator(".istiolab-exercises").first
    panel.scroll_into_view_if_needed()
    panel.wait_for(state="visible", timeout=60_000)
    out_js = "document.querySelector('.istiolab-exercise-output').innerText"
    secrets_ = {
        f"{n}.{key}": str(item[key])
        for n, item in EXERCISES.items()
        for key in ("why", "solution", "hint")
    }
    # nothing of an answer is on the page before it is asked for
    text = _page_text(page)
    shown = sorted(k for k, v in secrets_.items() if v in text)
    assert not shown, f"visible before anyone asked: {shown}"
    cell = page.locator(".jp-Cell", has=page.locator(".istiolab-exercises")).first
    _keep(page, cell, "exercise-before-reveal.png")

    button = panel.locator("button", has_text="Solution 1").first
    assert button.is_disabled()  # the solution unlocks after the hint
    panel.locator("button", has_text="Hint 1").first.click()
    page.wait_for_function(f"{out_js}.includes('Hint 1:')", timeout=30_000)
    assert EXERCISES["1"]["hint"] in page.evaluate(out_js)
    assert EXERCISES["1"]["why"] not in _page_text(page)  # a hint is not the answer
    page.wait_for_function("b => !b.disabled", arg=button.element_handle(), timeout=30_000)
    button.click()
    page.wait_for_function(f"{out_js}.includes('Solution 1:')", timeout=30_000)
    revealed = page.evaluate(out_js)
    assert EXERCISES["1"]["why"] in revealed
    assert EXERCISES["1"]["solution"] in revealed
    assert EXERCISES["2"]["why"] not in _page_text(page)  # only the one asked for
    _keep(page, cell, "exercise-after-reveal.png")

    panel.locator("button", has_text="Reset").first.click()
    page.wait_for_function(f"!{out_js}.includes('Solution 1:')", timeout=30_000)
    page.wait_for_function("b => b.disabled", arg=button.element_handle(), timeout=30_000)
    assert EXERCISES["1"]["why"] not in _page_text(page)

    # task 4, checked from the designer's state: v1 85 -> 75 (v2 25), then Check 4
    check = panel.locator("button", has_text="Check 4").first
    check.click()
    page.wait_for_function(f"{out_js}.includes('not yet')", timeout=60_000)
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("PageDown")
    page.wait_for_function(f"{yaml_js}.includes('weight: 80')", timeout=60_000)
    handle.focus()
    page.keyboard.press("PageDown")
    page.wait_for_function(f"{yaml_js}.includes('weight: 75')", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    check.scroll_into_view_if_needed()
    check.click()
    page.wait_for_function(f"{out_js}.includes('\u2713 right')", timeout=60_000)
    assert EXERCISES["4"]["why"] in page.evaluate(out_js)  # the explanation comes with success

    # the designer's Reset puts the rules back as they were given
    designer = page.locator(".istiolab-rule-designer").first
    designer.scroll_into_view_if_needed()
    designer.locator("button", has_text="Reset").first.click()
    page.wait_for_function(f"{yaml_js}.includes('weight: 90')", timeout=60_000)
