"""The documentation site builds in strict mode, and a broken link fails it.

``mkdocs build --strict`` (``mkdocs.yml``: README as the home page, ``docs/``, the notebooks
rendered without running them, an API reference from the docstrings) runs into a temp folder;
the key pages must exist, every relative link in the built site must land on a built file, and
a planted broken link must fail the build. ``make docs`` runs the same build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

for _plugin in (
    "mkdocs",
    "material",
    "mkdocstrings",
    "mkdocstrings_handlers.python",
    "mkdocs_jupyter",
):
    pytest.importorskip(_plugin)

pytestmark = pytest.mark.xdist_group("docs-site")  # one build at a time (make test: loadgroup)

ROOT = Path(__file__).resolve().parents[1]
_HREF = re.compile(r'(?:href|src)="([^"#?]+)(?:[#?][^"]*)?"')


def _build(root: Path, site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **env},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    start = time.monotonic()
    done = _build(ROOT, out)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    print(f"docs site built in {took:.1f} s")
    return out


def test_key_pages_exist(site: Path) -> None:
    home = (site / "index.html").read_text(encoding="utf-8")
    readme_title = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
    assert f'<h1 id="{readme_title.lower()}">{readme_title}' in home
    for page in ("cluster", "trainer-guide", "architecture", "findings", "glossary"):
        assert (site / "docs" / page / "index.html").is_file(), page
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (site / "notebooks" / nb.stem / "index.html").is_file(), nb.name
    assert (site / "api" / "index.html").is_file()
    assert (site / "search" / "search_index.json").is_file()


def test_notebooks_are_rendered_without_running(site: Path) -> None:
    page = (site / "notebooks" / "00_welcome" / "index.html").read_text(encoding="utf-8")
    assert "On a real cluster" in page  # a markdown cell
    assert "real_cluster" in page  # a code cell's source
    assert 'class="jp-OutputArea' not in page  # no outputs: nothing was executed


def test_api_reference_comes_from_the_docstrings(site: Path) -> None:
    page = (site / "api" / "kube" / "index.html").read_text(encoding="utf-8")
    assert "real_commands" in page
    # the function's Google-style docstring, its summary and an Args entry
    assert "The real-cluster steps of a topic for a config" in page
    assert "relative_to" in page
    assert "istiolab.kube.plan" in page  # every public module of the layer
    index = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "istiolab.kube.commands" in index
    for layer in ("foundation", "config", "envoy", "sim", "kube", "analysis", "lab", "cli"):
        assert (site / "api" / layer / "index.html").is_file(), layer


def test_every_relative_link_lands_on_a_built_file(site: Path) -> None:
    broken: list[str] = []
    for page in site.rglob("*.html"):
        for target in _HREF.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith(("mailto:", "data:", "javascript:", "/")):
                continue
            path = (page.parent / target).resolve()
            if not (path.is_file() or (path / "index.html").is_file()):
                broken.append(f"{page.relative_to(site)} -> {target}")
    assert not broken, broken[:20]


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    """The same configuration on a copy with one bad link (API pages and notebook bodies left
    out to keep it quick) exits non-zero and names the link."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", root / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", root)
    shutil.copy(ROOT / "README.md", root)
    (root / "notebooks").mkdir()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        tiny = {
            "cells": [{"cell_type": "markdown", "metadata": {}, "source": f"# {nb.stem}"}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (root / "notebooks" / nb.name).write_text(json.dumps(tiny), encoding="utf-8")
    for linked in ("examples", "sim"):  # files the pages link to
        if (ROOT / linked).is_dir():
            shutil.copytree(ROOT / linked, root / linked)
    glossary = root / "docs" / "glossary.md"
    glossary.write_text(
        glossary.read_text(encoding="utf-8") + "\nSee [the missing page](no-such-page.md).\n",
        encoding="utf-8",
    )
    done = _build(root, tmp_path / "site", ISTIOLAB_DOCS_API="0")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr + done.stdout
    assert "Aborted" in done.stderr + done.stdout


def test_the_real_cluster_pages_show_what_the_tool_prints(site: Path) -> None:
    """The site's command pages come from the function behind ``--print-commands``."""
    import html

    import istiolab
    from istiolab.kube.commands import real_commands

    page = (site / "real-cluster" / "canary" / "index.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    config = istiolab.load(ROOT / "examples" / "legacy" / "canary-90-10.yaml")
    for profile in ("current", "0.2"):
        for command in real_commands(config, profile, "canary", relative_to=ROOT).commands:
            for line in command.splitlines():
                assert line in text, (profile, line)
