"""MkDocs hooks of the documentation site (``mkdocs.yml``): the repository's layout, API pages.

MkDocs serves only what is under ``docs_dir``, but the site's pages live where they live in the
repository: ``README.md`` at the root (the home page), ``docs/*.md`` and ``notebooks/*.ipynb``.
:func:`on_files` rebuilds the file list with those paths, so a relative link that works on
GitHub (``docs/cluster.md``, ``../notebooks/00_welcome.ipynb``, ``../README.md``) works on the
site too, and strict mode fails on the ones that work nowhere. Repository files the pages link
to that are not pages (example YAML, scenarios) are published as they are.

It also writes the API reference, one page per layer of ``istiolab`` with a ``::: module``
section (mkdocstrings, Google-style docstrings) for each public module, and lists them, with
any ``docs/*.md`` page the nav in ``mkdocs.yml`` does not name yet, in the navigation.

Strict mode is for the pages: a broken link in README, docs or a notebook fails the build. What
griffe and autorefs say about a module's docstring formatting (a continuation line's indent, a
``[...]`` in prose read as a cross-reference) is shown as INFO with the module's file and line,
counted in the last line of the build, and does not fail it (:class:`_DocstringNotes`).
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "istiolab"
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")
# Directories the site never publishes as linked files (caches, the venv, build output).
_SKIP = (".venv", ".git", "build", "site", "node_modules")
_HREF = re.compile(r'href="([^"#:]+?)(#[^"]*)?"')
log = logging.getLogger("mkdocs.hooks.site")


def _modules() -> list[str]:
    """Public modules of the package, from the source tree (nothing is imported).

    ``ISTIOLAB_DOCS_API=0`` leaves the API reference out (a quicker build of the pages).
    """
    out: list[str] = []
    if os.environ.get("ISTIOLAB_DOCS_API", "1") == "0":
        return out
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts) or "__pycache__" in rel.parts:
            continue
        out.append(".".join(parts))
    return out


def _page_files(config: MkDocsConfig) -> list[File]:
    """README, docs/*.md and notebooks/*.ipynb, at their repository paths."""
    site, urls = config["site_dir"], config["use_directory_urls"]
    paths = ["README.md"]
    paths += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    paths += sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))
    return [File(p, str(ROOT), site, urls) for p in paths]


def _linked_assets(pages: list[File], known: set[str], config: MkDocsConfig) -> list[File]:
    """Repository files that pages link to and that are not pages: published as they are."""
    out: dict[str, File] = {}
    for page in pages:
        text = Path(page.abs_src_path or "").read_text(encoding="utf-8")
        base = posixpath.dirname(page.src_uri)
        for target in _LINK.findall(text):
            if "://" in target or target.startswith(("mailto:", "/")):
                continue
            uri = posixpath.normpath(posixpath.join(base, target))
            path = ROOT / uri
            if uri in known or uri.startswith("..") or uri.split("/")[0] in _SKIP:
                continue
            if path.is_file():
                out[uri] = File(uri, str(ROOT), config["site_dir"], config["use_directory_urls"])
    return list(out.values())


_LAYER_TITLES = {
    "foundation": "Foundation",
    "config": "config: resources, validation, conversion",
    "envoy": "envoy: routing semantics, real Envoy",
    "sim": "sim: the simulator",
    "kube": "kube: clusters",
    "analysis": "analysis: sweeps, plans, conformance",
    "lab": "lab: notebooks",
    "widgets": "widgets",
    "cli": "cli: the command line",
}


def _layers() -> dict[str, list[str]]:
    """The public modules by layer (the package's folders; its top-level modules: foundation).

    One page per layer, not per module: every page carries the whole navigation, so ~160
    module pages cost far more to build than their docstrings do.
    """
    out: dict[str, list[str]] = {}
    for m in _modules():
        parts = m.split(".")
        layer = parts[1] if len(parts) > 1 else "foundation"
        layer = layer if (ROOT / PACKAGE / layer).is_dir() else "foundation"
        out.setdefault(layer, []).append(m)
    return out


@event_priority(100)  # before mkdocs-jupyter turns the .ipynb files into notebook pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """The site's files: pages at their repository paths, linked files, the API pages."""
    pages = _page_files(config)
    known = {f.src_uri for f in pages}
    kept = [f for f in files if not f.src_uri.endswith((".md", ".ipynb", ".py"))]
    kept = [f for f in kept if not f.src_uri.startswith("hooks/")]
    layers = _layers()
    api = [
        File.generated(
            config,
            f"api/{layer}.md",
            content=f"# {_LAYER_TITLES.get(layer, layer)}\n\n"
            + "\n".join(f"::: {m}\n" for m in modules),
        )
        for layer, modules in layers.items()
    ]
    index = (
        "# API reference\n\nThe public modules, from their docstrings, one page per layer "
        "(docs/architecture.md describes the layers).\n\n"
        + "\n".join(
            f"* [{_LAYER_TITLES.get(layer, layer)}]({layer}.md): "
            + ", ".join(f"`{m}`" for m in modules)
            for layer, modules in layers.items()
        )
    )
    if api:
        api.append(File.generated(config, "api/index.md", content=index + "\n"))
    real = [
        File.generated(config, f"real-cluster/{topic}.md", content=text)
        for topic, text in _real_cluster_pages().items()
    ]
    return Files([*pages, *_linked_assets(pages, known, config), *kept, *api, *real])


# The seed points the site shows the real commands of, each from the example its notebook's
# 0.2 form comes from (istiolab.lab.realcluster.LEGACY_EXAMPLES), plus the AWS side of the seed.
_REAL_CLUSTER_EXTRA = {"aws": ("seed",)}


def _real_cluster_topics() -> list[str]:
    from istiolab.lab.realcluster import LEGACY_EXAMPLES

    return [*LEGACY_EXAMPLES, *_REAL_CLUSTER_EXTRA]


def _real_cluster_pages() -> dict[str, str]:
    """One page per seed point: the commands for Istio 0.2 and a current Istio.

    Generated by the same function as ``istiolab apply --print-commands`` and the notebooks'
    blocks, so the site shows what the tool prints.
    """
    import istiolab
    from istiolab.kube.commands import TOPICS, real_commands
    from istiolab.lab.realcluster import LEGACY_EXAMPLES

    out: dict[str, str] = {}
    for topic, parts in {**LEGACY_EXAMPLES, **_REAL_CLUSTER_EXTRA}.items():
        source = "/".join(("examples", *parts))
        config = istiolab.load(ROOT.joinpath(source))
        body = [
            real_commands(config, profile, topic, relative_to=ROOT).to_markdown(heading_level=2)
            for profile in ("current", "0.2")
        ]
        out[topic] = (
            f"# On a real cluster: {TOPICS[topic]}\n\n"
            f"The steps for `{source}`, written by `istiolab apply {source} --print-commands` "
            "(the whole run) and shown in the notebooks' *On a real cluster* blocks. Sections "
            "and sources: [the overview](../docs/real-cluster.md).\n\n" + "\n".join(body)
        )
    return out


class _DocstringNotes(logging.Filter):
    """Docstring-formatting messages from griffe and autorefs: shown as INFO, never counted.

    Installed on the ``mkdocs`` logger's handlers (the console and strict mode's counter), where
    a filter sees every record after the level check: for the counter it drops them, for the
    console it relabels them INFO.
    """

    def __init__(self, counter: bool) -> None:
        super().__init__()
        self.counter = counter
        self.seen: set[str] = set()

    @staticmethod
    def is_note(record: logging.LogRecord) -> bool:
        name, message = record.name, record.getMessage()
        if "griffe" in name or message.startswith("griffe:"):
            return True
        return "autorefs" in name and "Could not find cross-reference target" in message

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not self.is_note(record):
            return True
        self.seen.add(record.getMessage())
        if self.counter:
            return False
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_FILTERS: list[tuple[logging.Handler, _DocstringNotes]] = []


def on_pre_build(config: MkDocsConfig) -> None:
    """Keep docstring-formatting notes out of strict mode's warning count."""
    for handler in logging.getLogger("mkdocs").handlers:
        f = _DocstringNotes(counter=type(handler).__name__ == "CountHandler")
        handler.addFilter(f)
        _FILTERS.append((handler, f))


def on_post_build(config: MkDocsConfig) -> None:
    """Say how many docstring notes there were, and remove the filters."""
    seen = set().union(*(f.seen for _, f in _FILTERS)) if _FILTERS else set()
    for handler, f in _FILTERS:
        handler.removeFilter(f)
    _FILTERS.clear()
    if seen:
        logging.getLogger("mkdocs.hooks.site").info(
            "API reference: %d docstring formatting note(s) (shown above as INFO; they do not "
            "fail the strict build)",
            len(seen),
        )


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Links in a notebook's markdown cells, resolved as MkDocs resolves a page's links.

    mkdocs-jupyter converts a notebook with nbconvert, so MkDocs never sees its links: a link
    to ``workshop.ipynb`` or ``../docs/glossary.md`` would stay as written and break under the
    site's directory URLs. Each one is pointed at the built page, and a target that is not in
    the site is a warning (so strict mode fails on it, as on a markdown page).
    """
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    base = posixpath.dirname(page.file.src_uri)

    def resolve(m: re.Match[str]) -> str:
        target, anchor = m.group(1), m.group(2) or ""
        if target.startswith(("/", "data")) or not target.endswith((".md", ".ipynb", ".yaml")):
            return m.group(0)
        uri = posixpath.normpath(posixpath.join(base, target))
        found = files.get_file_from_path(uri)
        if found is None:
            log.warning(
                "Doc file '%s' contains a link '%s', but the target '%s' is not found among "
                "documentation files.",
                page.file.src_uri,
                target,
                uri,
            )
            return m.group(0)
        return f'href="{found.url_relative_to(page.file)}{anchor}"'

    return _HREF.sub(resolve, html)


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Add the API reference, and any docs page the nav forgot, to the navigation."""
    nav: list[Any] = list(config["nav"] or [])
    named = set(re.findall(r"docs/[\w.-]+\.md", repr(nav)))
    missing = sorted(
        f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md") if f"docs/{p.name}" not in named
    )
    if missing:
        nav.append({"More": missing})
    topics = _real_cluster_topics()
    if topics:
        nav.append({"On a real cluster": [{t: f"real-cluster/{t}.md"} for t in topics]})
    layers = _layers()
    if layers:
        nav.append(
            {
                "API reference": [
                    {"Overview": "api/index.md"},
                    *({_LAYER_TITLES.get(layer, layer): f"api/{layer}.md"} for layer in layers),
                ]
            }
        )
    config["nav"] = nav
    return config


def on_build_error(error: Exception) -> None:
    """Remove the filters after a failed build too (a long-lived process builds again)."""
    for handler, f in _FILTERS:
        handler.removeFilter(f)
    _FILTERS.clear()
