"""Binder emulation: a fresh venv built only from ``binder/`` runs notebook 00.

What Binder (repo2docker) does, minus Docker: a new virtual environment, ``pip install -r
binder/requirements.txt``, then ``binder/postBuild`` from the repository root, on a copy of the
checkout. The test then imports istiolab, checks that the JupyterLab news toast is disabled, and
executes ``notebooks/00_welcome.ipynb`` at its default size in that environment, measuring the
wall time and peak memory (the summed RSS of the notebook runner and its kernel, sampled; on
Binder the Jupyter server adds about 100 MB). Numbers go to ``build/binder.json`` and the output.

Needs the package index (about 40 s with a warm pip cache, 1–2 min without). Marked ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT_RSS_MB = 1536.0  # Binder gives 1–2 GB
LIMIT_NOTEBOOK_S = 60.0
COPY = ("binder", "istiolab", "notebooks", "sim", "examples", "pyproject.toml", "README.md")

RUNNER = r"""
import json, pathlib, sys, time
import nbclient, nbformat
path = sys.argv[1]
folder = str(pathlib.Path(path).parent)
nb = nbformat.read(path, as_version=4)
start = time.monotonic()
client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                 resources={"metadata": {"path": folder}})
client.execute()
wall = time.monotonic() - start
errors = [o for c in nb.cells for o in c.get("outputs", [])
          if o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")]
print(json.dumps({"wall_s": wall, "errors": [o.get("evalue") or o.get("text") for o in errors]}))
"""

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("binder")]


def _run(
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=cwd, env=env, timeout=timeout
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _peak_tree_rss(proc: subprocess.Popen[str], period_s: float = 0.1) -> int:
    """Peak summed RSS (bytes) of *proc* and its descendants, sampled until it exits."""
    psutil = pytest.importorskip("psutil")
    peak = 0
    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        return 0
    while proc.poll() is None:
        total = 0
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        for p in members:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        peak = max(peak, total)
        time.sleep(period_s)
    return peak


def test_binder_environment_runs_notebook_00(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run binder/postBuild")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(src, repo / name)

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    start = time.monotonic()
    _run([base, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    try:
        _run(
            [py, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"],
            cwd=repo,
            env=env,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("pip install -r binder/requirements.txt took over 15 minutes")
    _run(["bash", "binder/postBuild"], cwd=repo, env=env, timeout=600)
    build_s = time.monotonic() - start

    imported = _run(
        [py, "-W", "error", "-c", "import istiolab, istiolab.widgets; print(istiolab.__file__)"],
        cwd=tmp_path,
        env=env,
    )
    assert imported.stdout.strip().startswith(str(repo)), imported.stdout  # the editable install
    lab_config = _run([py, "-m", "jupyter", "labextension", "list"], env=env)
    assert "@jupyterlab/apputils-extension:announcements" in lab_config.stdout + lab_config.stderr

    runner = tmp_path / "run_notebook.py"
    runner.write_text(RUNNER, encoding="utf-8")
    # Peak memory: the summed RSS of the runner and its kernel, sampled (ru_maxrss would count
    # this test process too: Linux carries it over from the forking parent across exec).
    proc = subprocess.Popen(
        [py, str(runner), str(repo / "notebooks" / "00_welcome.ipynb")],
        cwd=repo / "notebooks",
        env={**env, "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = _peak_tree_rss(proc)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{out[-3000:]}\n{err[-3000:]}"
    metrics = json.loads(out.strip().splitlines()[-1])
    metrics["peak_rss_mb"] = round(peak / 2**20, 1)
    metrics.update(
        build_s=round(build_s, 1),
        requirements=sum(
            1
            for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")
        ),
    )
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "binder.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print("binder emulation:", json.dumps(metrics))
    assert metrics["errors"] == []
    assert metrics["wall_s"] < LIMIT_NOTEBOOK_S
    assert metrics["peak_rss_mb"] < LIMIT_RSS_MB, (
        f"notebook 00 peaked at {metrics['peak_rss_mb']} MB"
    )
