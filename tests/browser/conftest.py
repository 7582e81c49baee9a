"""What the browser tests share: a JupyterLab server, Chromium's flags, and the page helpers.

The server (:func:`lab_server`) runs on a temporary copy of the notebooks with fresh config and
runtime folders, a random token, 127.0.0.1 and a free port. The fixture ``lab`` gives each test
its own server; ``lab_module`` one server for a whole module (each notebook still gets its own
kernel). Progress written by the exercises lands in a temporary ``$ISTIOLAB_HOME`` and trainer
mode is off, whatever the environment of the test run says.
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
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
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

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is missing: install Debian's package (apt-get install chromium; "
        "`make system-deps` does it as root)",
    ),
]
"""The marks of every browser test module (``pytestmark = BROWSER_MARKS``)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lab_server(tmp: Path) -> Iterator[tuple[str, str]]:
    """Run a JupyterLab server on a copy of the notebooks in *tmp*; yield (base URL, token)."""
    pytest.importorskip("jupyterlab")
    work = tmp / "work"
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    env = dict(os.environ)
    env.pop("ISTIOLAB_TRAINER", None)  # trainer mode would show every solution at once
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        ISTIOLAB_DATA=str(ROOT),
        ISTIOLAB_HOME=str(tmp / "home"),  # the progress of this run, not the user's
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
    settings = tmp / "config" / "lab" / "user-settings" / "@jupyterlab"
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
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp / "config" / "lab" / "user-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp / "config" / "lab" / "workspaces")
    token, port = secrets.token_hex(16), _free_port()
    log = open(tmp / "lab.log", "wb")  # noqa: SIM115 - closed after the server stops
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
                    "JupyterLab did not start:\n" + (tmp / "lab.log").read_text()[-3000:]
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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A JupyterLab server of this test's own; yields (base URL, token)."""
    with lab_server(tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def lab_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One JupyterLab server for the whole module (it starts in seconds, not instantly)."""
    with lab_server(tmp_path_factory.mktemp("lab")) as server:
        yield server


def api(base: str, token: str, path: str, method: str = "GET") -> Any:
    """Call JupyterLab's REST API (``/api/...``); the decoded JSON answer, or None if empty."""
    request = urllib.request.Request(
        f"{base}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body else None


BENIGN_DIALOGS = ("Select Kernel", "File Changed")
"""Dialogs an unattended JupyterLab may raise on a loaded machine even with the settings above;
accepting their default (the notebook's own kernel; the version open in the browser) is what a
user would do. Any other dialog (a dead kernel, an error) fails the test with its text."""


def dismiss_dialogs(page: object, seen: list[str]) -> None:
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


def run_all(page: object, url: str, answers: int, timeout_s: float = 240) -> list[str]:
    """Open *url*, Run All, and wait until *answers* exercise cells have answered; dialogs seen."""
    from playwright import sync_api

    assert isinstance(page, sync_api.Page)
    page.goto(url, timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

    # JupyterLab may swap the session's kernel right after the page loads (seen: a kernel
    # started and shut down within 300 ms). A Run All sent to the first one is lost and the
    # prompts go back to [ ]; one sent during the swap can leave a widget's view looking for
    # its model on the other kernel ("Error displaying widget: model not found"; seen once on
    # a loaded machine). A person does not click Run All within a second of the page opening:
    # wait until the session has kept one kernel for two seconds, then run all, wait for the
    # last cells' output, and retry if nothing runs.
    _wait_for_one_kernel(url)
    done = (
        "[...document.querySelectorAll('.jp-OutputArea-output')]"
        f".filter(e => e.textContent.includes('not answered yet')).length >= {answers}"
    )
    busy = (
        "[...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'))"
    )
    deadline = time.monotonic() + timeout_s
    finished = False
    dialogs: list[str] = []
    for _ in range(4):
        dismiss_dialogs(page, dialogs)
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
    dismiss_dialogs(page, dialogs)
    return dialogs


def _wait_for_one_kernel(url: str, settle_s: float = 2.0, timeout_s: float = 60.0) -> None:
    """Wait until the session of the notebook at *url* has had the same kernel for *settle_s*."""
    parts = urllib.parse.urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    path = urllib.parse.unquote(parts.path.split("/tree/", 1)[-1])
    last: str | None = None
    since = time.monotonic()
    deadline = since + timeout_s
    while time.monotonic() < deadline:
        sessions = api(base, token, "/api/sessions") or []
        kernels = [s["kernel"]["id"] for s in sessions if s.get("path") == path and s.get("kernel")]
        current = kernels[0] if len(kernels) == 1 else None
        if current != last:
            last, since = current, time.monotonic()
        elif current is not None and time.monotonic() - since >= settle_s:
            return
        time.sleep(0.25)
    raise AssertionError(f"{path}: its session did not keep one kernel for {settle_s:g} s")


def page_text(page: object) -> str:
    """Everything the page shows as text (``document.body.innerText``)."""
    from playwright import sync_api

    assert isinstance(page, sync_api.Page)
    return str(page.evaluate("document.body.innerText"))
