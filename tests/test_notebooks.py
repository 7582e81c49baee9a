"""Every notebook runs top to bottom, without an error output, and its exercises check out.

Each notebook runs in its own kernel (nbclient) from ``notebooks/``. A cell after the one tagged
``parameters`` makes the runs smaller (``CI_PARAMETERS``) unless ``ISTIOLAB_NOTEBOOK_SIZE=default``,
and the exercise placeholders (``answer_N = None``) are replaced by the answers in
``notebooks/solutions.json``: every ``check`` must then print ``✓ right``, so an exercise whose
expected value drifts away from its documented answer fails here. Any ``error`` output or
anything written to stderr fails the notebook.

Wall time and the peak of the summed RSS of every process the notebook ran (kernel, simulation
workers, Envoy; sampled every 0.1 s with psutil; not ``ru_maxrss``, which Linux carries over
from the forking parent across ``exec``) are written to ``build/notebooks/<name>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "notebooks"
SOLUTIONS = json.loads((NOTEBOOKS / "solutions.json").read_text(encoding="utf-8"))
LIMIT_S = 60.0  # each notebook, at its default size, on 2 cores

CI_PARAMETERS: dict[str, dict[str, Any]] = {
    "00_welcome": {"DURATION_S": 5.0},
    "01_ingress_and_routerules": {"DURATION_S": 5.0},
    "02_canary_weights": {"DURATION_S": 4.0},
    "03_cookie_ab_beta_ui": {"DURATION_S": 5.0},
    "04_fault_injection": {"DURATION_S": 4.0},
    "05_retries_timeouts": {"DURATION_S": 9.0},
    "06_rate_limit": {"DURATION_S": 6.0},
    "07_nlb_alb_cross_zone_az_loss": {"DURATION_S": 4.0, "AZ_LOSS_DURATION_S": 25.0},
    "08_capacity_what_if": {"SEEDS": 2, "DURATION_S": 4.0},
    "09_verify_on_envoy": {"REQUESTS": 100},
    "10_apply_to_a_cluster": {},
}


class TreeMemory:
    """Samples the summed RSS of this process's descendants (the kernel and its children)."""

    def __init__(self, period_s: float = 0.1) -> None:
        self.period_s = period_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.period_s)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


_ANSWER = re.compile(r"^(answer_\d+) = None\b.*$", re.MULTILINE)


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def prepare(nb: Any, name: str, *, size: str) -> int:
    """Inject parameters and solutions; returns the number of checks to expect."""
    cells = nb.cells
    params = CI_PARAMETERS.get(name, {}) if size == "ci" else {}
    where = next(
        (i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        None,
    )
    if params:
        assert where is not None, f"{name}: no cell tagged 'parameters'"
        text = "\n".join(f"{k} = {v!r}" for k, v in params.items())
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["tags"] = ["injected-parameters"]
        cells.insert(where + 1, cell)
    answers = SOLUTIONS.get(name, {})
    checks = 0
    for c in cells:
        if c.cell_type != "code":
            continue
        checks += len(re.findall(r"^(?:ex\.)?check\(", c.source, re.MULTILINE))

        def fill(m: re.Match[str]) -> str:
            var = m.group(1)
            assert var in answers, f"{name}: no solution for {var} in notebooks/solutions.json"
            return f"{var} = {answers[var]}"

        c.source = _ANSWER.sub(fill, c.source)
    return checks


def test_every_notebook_has_solutions_and_parameters() -> None:
    names = [p.stem for p in _notebooks()]
    assert names, "no notebooks found"
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(len(names))], names
    for p in _notebooks():
        nb = nbformat.read(p, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        placeholders = set(_ANSWER.findall(text))
        assert placeholders == set(SOLUTIONS.get(p.stem, {})), p.stem
        assert nb.cells[0].cell_type == "markdown"
        assert "What you will learn" in nb.cells[0].source
        assert "## Exercises" in "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
            f"{p.name} is committed with outputs; clear them"
        )


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIOLAB_HOME", str(tmp_path))  # progress of the run, not the user's
    monkeypatch.delenv("ISTIOLAB_TRAINER", raising=False)
    size = os.environ.get("ISTIOLAB_NOTEBOOK_SIZE", "ci")
    nb = nbformat.read(path, as_version=4)
    checks = prepare(nb, path.stem, size=size)
    env_before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    start = time.monotonic()
    tree = TreeMemory()
    try:
        with tree:
            nbclient.NotebookClient(
                nb,
                kernel_name="python3",
                timeout=int(LIMIT_S),
                allow_errors=False,
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            ).execute()
    finally:
        if env_before is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_before
    wall = time.monotonic() - start

    problems, text = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"{out.ename}: {out.evalue}")
            elif out.output_type == "stream":
                if out.name == "stderr":
                    problems.append(f"stderr: {out.text.strip()}")
                else:
                    text.append(out.text)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    printed = "".join(text)
    assert "\u2717" not in printed, f"{path.name}: an exercise check failed:\n{printed}"
    assert printed.count("\u2713 right") == checks, printed

    BUILD.mkdir(parents=True, exist_ok=True)
    metrics = {
        "notebook": path.stem,
        "size": size,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(tree.peak_bytes / 2**20, 1),
    }
    (BUILD / f"{path.stem}.json").write_text(json.dumps(metrics) + "\n", encoding="utf-8")
    print(metrics)
    assert wall < LIMIT_S, f"{path.name} took {wall:.1f} s (limit {LIMIT_S:.0f} s)"
