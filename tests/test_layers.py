"""The package's layers, checked from the source: imports go down, never up, and never in circles.

The layers and their folders are described in ``docs/architecture.md``. Every import of an
istiolab module counts: at module level, inside functions, and ``importlib.import_module``
calls with a literal name. Imports under ``if TYPE_CHECKING:`` are left out: they are never
executed, and annotations may name a class of the same or a higher layer's API.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "istiolab"

# Bottom up. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        ("errors", "findings", "units", "rng", "profiles", "regex", "reprs", "limits", "processes"),
    ),
    ("config", ("config",)),
    # istiolab/__init__.py re-exports the config API and the foundation's names.
    ("facade", ("__init__",)),
    ("envoy", ("envoy",)),
    ("sim", ("sim",)),
    ("kube", ("kube",)),
    ("analysis", ("analysis",)),
    ("presentation", ("lab", "widgets", "cli", "__main__")),
]
RANK = {top: i for i, (_, tops) in enumerate(LAYERS) for top in tops}
NAMES = [name for name, _ in LAYERS]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return RANK["__init__"]
    top = parts[1]
    if top not in RANK:
        raise AssertionError(
            f"{module} is in no layer: add it to LAYERS here and to docs/architecture.md"
        )
    return RANK[top]


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(module: str) -> set[str]:
    """The istiolab modules *module* imports (resolved to modules that exist)."""
    path = MODULES[module]
    return imports_in(module, path.read_text("utf-8"), is_pkg=path.name == "__init__.py")


def imports_in(module: str, source: str, *, is_pkg: bool = False) -> set[str]:
    """The istiolab modules that *source*, the text of *module*, imports."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    here = module if is_pkg else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` needs the submodule; a name that is not a submodule
            # comes from the package's ``__init__``.
            subs = [f"{base}.{a.name}" for a in node.names]
            names = [s for s in subs if s in MODULES]
            if len(names) < len(subs):
                names.append(base)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith("import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        if not names or _type_checking_only(node, parents):
            continue
        for name in names:
            if name in MODULES and name != module:
                found.add(name)
    return found


GRAPH = nx.DiGraph()
for _m in MODULES:
    GRAPH.add_node(_m)
    for _dep in imports_of(_m):
        GRAPH.add_edge(_m, _dep)


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_imports_go_down_the_layers() -> None:
    upward = [
        f"{a} ({NAMES[layer_of(a)]}) imports {b} ({NAMES[layer_of(b)]})"
        for a, b in GRAPH.edges
        if layer_of(b) > layer_of(a)
    ]
    assert upward == [], "imports that go up a layer:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    circles = [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(GRAPH)]
    assert circles == [], "import circles:\n" + "\n".join(sorted(circles))


def test_the_checker_sees_every_kind_of_import() -> None:
    # The rules must not pass vacuously: each way of importing is an edge the checker reports.
    source = """
from typing import TYPE_CHECKING
import istiolab.sim.engine
from . import matching
from ..envoy import compile
if TYPE_CHECKING:
    from istiolab.kube import apply
def f():
    from istiolab.lab import display
    importlib.import_module("istiolab.cli.app")
"""
    found = imports_in("istiolab.config.fake", source)
    assert found == {
        "istiolab.sim.engine",
        "istiolab.config.matching",
        "istiolab.envoy.compile",
        "istiolab.lab.display",
        "istiolab.cli.app",
    }
    assert all(layer_of(m) > RANK["config"] for m in found - {"istiolab.config.matching"})


CORE = ["istiolab", "istiolab.config", "istiolab.envoy.compile", "istiolab.envoy.match"]
CORE += ["istiolab.sim.engine", "istiolab.kube", "istiolab.analysis.sweep"]
CORE += ["istiolab.analysis.planner"]


@pytest.mark.parametrize("module", CORE)
def test_core_imports_without_presentation(module: str) -> None:
    # Importing the core, and rendering a core object without a renderer registered, loads
    # no notebook, widget, plotting or CLI code.
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['istiolab','lab'],['istiolab','widgets'],['istiolab','cli']) "
        "or m in ('ipywidgets','IPython','matplotlib.pyplot'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert out.stdout.strip() == ""


def test_core_objects_render_through_the_registered_renderer() -> None:
    # The presentation layer registers itself by entry point; the core object only asks.
    from istiolab import reprs
    from istiolab.config import loads

    config = loads("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n", file="x.yaml")
    html = config._repr_html_()
    assert html is not None
    assert "ConfigSet" in html
    reprs.register_html(lambda obj: f"<b>{type(obj).__name__}</b>")
    try:
        assert config._repr_html_() == "<b>ConfigSet</b>"
    finally:
        reprs.register_html(None)
    assert config._repr_html_() == html


def test_architecture_doc_lists_every_module() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text("utf-8")
    listed = {line.split("`")[1] for line in doc.splitlines() if line.startswith("| `istiolab")}
    assert sorted(set(MODULES) - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - set(MODULES)) == [], "docs/architecture.md lists modules that are gone"
