"""What makes lint and explain fast keeps their answers: the loader's constructor, the bench."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

from istiolab.config import codecs, loads
from istiolab.config.validate import validate

# bench/ is not a package on the test path: load its module from the file
_SPEC = importlib.util.spec_from_file_location(
    "bench_analyzer", Path(__file__).resolve().parents[2] / "bench" / "analyzer.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

DOCS = [
    "a: 1\nb: [0x1f, 0o17, 1_000, -3, +4]\nc: {d: 1.5, e: .inf, f: -.inf, g: .nan, h: 1e3}\n",
    "t: [true, false, yes, no, on, off, True, FALSE]\nn: [null, ~, '']\nq: ['1', \"x\", 'true']\n",
    "1: one\n2.5: two\ntrue: three\nnull: four\n",
    "x: &a {k: [1, 2]}\ny: *a\nz: [*a, *a]\n",
    "base: &b {p: 1, q: 2}\nmerged:\n  <<: *b\n  q: 3\n",  # a merge key: PyYAML builds it
    "when: 2024-01-02\nver: 1.10\nport: '8080'\nempty: []\nnone: {}\n",
    "- a\n- [b, [c, {d: e}]]\n",
]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def pyyaml(text: str) -> Any:
    loader = codecs._GuardedLoader(text)
    try:
        return loader.construct_document(loader.get_single_node())
    finally:
        loader.dispose()


@pytest.mark.parametrize("text", DOCS)
def test_loader_builds_what_pyyaml_builds(text: str) -> None:
    (doc,) = codecs.loads(text)
    assert same(doc.data, pyyaml(text))


def test_aliases_share_one_object_as_in_pyyaml() -> None:
    (doc,) = codecs.loads(DOCS[3])
    assert doc.data["x"] is doc.data["y"] is doc.data["z"][0] is doc.data["z"][1]


def test_large_integers_are_still_refused() -> None:
    (doc,) = codecs.loads("a: " + "9" * 5000 + "\n", file="x.yaml")
    assert doc.error is not None
    assert "too many digits" in doc.error


@pytest.mark.parametrize(
    "text",
    [bench.many_routes(50), bench.many_routes(50, simple=True), bench.many_hosts(20, 5)],
)
def test_bench_configs_are_clean(text: str) -> None:
    # the bench times the path of a valid config: every finding would be a different path
    config = loads(text, file="bench.yaml")
    assert config.findings == ()
    assert validate(config) == []
