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
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
SCREENSHOTS = ROOT / "docs" / "screenshots"
NOTEBOOK = "02_canary_weights.ipynb"
EXERCISES = json.loads((ROOT / "notebooks" / "exercises.json").read_text(encoding="utf-8"))[
    NOTEBOOK.removesuffix(".ipynb")
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is missing: install Debian's package (apt-get install chromium; "
        "`make system-deps` does it as root)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on a copy of the notebooks; yields (base URL, token)."""
    pytest.importorskip("jupyterlab")
    work = tmp_path / "work"
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        ISTIOLAB_DATA=str(ROOT),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYTHONUNBUFFERED="1",
    )
    bindir = Path(sys.executable).parent
    # No "what's new" toast over the notebook: disabled in the temporary (user-level) config.
    subprocess.run(
        [str(bindir / "jupyter"), "labextension", "disable", "--level=user",
         "@jupyterlab/apputils-extension:announcements"],
        env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    # Settings that keep modal dialogs away from an unattended run: start the notebook's own
    # kernel without asking ("Select Kernel"), and no autosave, whose mtime check can raise
    # "File Changed" on a loaded machine; and no windowing (below).
    settings = tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab"
    for plugin, values in {
        # every cell in the DOM: with JupyterLab's default windowing, a cell scrolled out of
        # view is removed from the page and its widgets cannot be found or clicked
        "notebook-extension/tracker.jupyterlab-settings": {
            "autoStartDefaultKernel": True,
            "windowingMode": "none",
        },
        "docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }.items():
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / plugin).write_text(json.dumps(values))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "config" / "lab" / "user-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "config" / "lab" / "workspaces")
    token, port = secrets.token_hex(16), _free_port()
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [str(bindir / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--allow-root",
         "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    "JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:]
                )
            time.sleep(0.2)
        yield base, token
    finally:
        # our own server (and the kernels it started) only: its process group
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


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


BENIGN_DIALOGS = ("Select Kernel", "File Changed")
"""Dialogs an unattended JupyterLab may raise on a loaded machine even with the settings above;
accepting their default (the notebook's own kernel; the version open in the browser) is what a
user would do. Any other dialog (a dead kernel, an error) fails the test with its text."""


def _dismiss_dialogs(page: object, seen: list[str]) -> None:
    """Accept a benign modal dialog (kept in *seen*); fail on any other, naming it.

    Without this, a dialog blocks every click until Playwright's 30 s timeout and the failure
    does not say which dialog it was.
    """
    from playwright import sync_api

    assert isinstance(page, sync_api.Page)
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if dialog.count() == 0:
            return
        text = " ".join(dialog.first.inner_text().split())[:300]
        seen.append(text)
        assert text.startswith(BENIGN_DIALOGS), f"JupyterLab showed a dialog: {text!r}"
        dialog.first.locator(".jp-Dialog-button.jp-mod-accept").first.click()
        page.wait_for_timeout(500)


def _run_all(page: object, url: str, answers: int) -> list[str]:
    """Open *url*, Run All, and wait until *answers* exercise cells have answered; dialogs seen."""
    from playwright import sync_api

    assert isinstance(page, sync_api.Page)
    page.goto(url, timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

    # JupyterLab may swap the session's kernel right after the page loads (seen: a kernel
    # started and shut down within 300 ms); a Run All sent to the first one is lost and the
    # prompts go back to [ ]. So: run all, wait for the last cells' output, retry if nothing runs.
    done = (
        "[...document.querySelectorAll('.jp-OutputArea-output')]"
        f".filter(e => e.textContent.includes('not answered yet')).length >= {answers}"
    )
    busy = (
        "[...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'))"
    )
    deadline = time.monotonic() + 240
    finished = False
    dialogs: list[str] = []
    for _ in range(4):
        _dismiss_dialogs(page, dialogs)
        page.click(".lm-MenuBar-item:has-text('Run')")
        page.click(".lm-Menu-item[data-command='runmenu:run-all']")
        quiet_s = 0  # seconds with no cell queued or running
        while time.monotonic() < deadline and quiet_s < 5:
            if page.evaluate(done):
                finished = True
                break
            quiet_s = 0 if page.evaluate(busy) else quiet_s + 1
            page.wait_for_timeout(1_000)
        if finished or time.monotonic() >= deadline:
            break
        page.keyboard.press("Escape")  # the run was lost: run all again
    assert finished, f"Run All Cells did not run the notebook (dialogs seen: {dialogs})"
    _dismiss_dialogs(page, dialogs)
    return dialogs


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


def _page_text(page: object) -> str:
    from playwright import sync_api

    assert isinstance(page, sync_api.Page)
    return str(page.evaluate("document.body.innerText"))


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
