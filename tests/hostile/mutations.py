"""Hypothesis strategies that turn a valid config or scenario into a hostile one.

Two levels, used by the hostile suite's Hypothesis tests:

* text: :func:`mutated_text` flips bytes, inserts hostile YAML (nesting deeper than the limit,
  numbers of thousands of digits, tags, aliases, NUL, lone surrogates), swaps a value for one of
  another type, duplicates lines (duplicate keys) and cuts pieces out;
* data: :func:`mutated_data` sets one field, anywhere in the document, to a value of the wrong
  type, a number at or past a proto range, a string with CR/LF or NUL, a long string, or a
  structure nested deeper than the loader's limit.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

INSERTS = [
    "[" * 300 + "]" * 300,
    "{a: " * 120 + "}" * 120,
    "9" * 5000,
    "0x" + "f" * 5000,
    "1e999999",
    "-.inf",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!timestamp 2001-12-14",
    "!custom x",
    "*undefined",
    "&a [*a]",
    "[a, b]",
    "{a: 1}",
    "null",
    "'",
    "\ud800",
    "\x00",
    "\ufeff",
    "&x [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    "x: &y [" + ", ".join(["*x"] * 10) + "]",
]
"""Pieces of YAML text that a loader must refuse or read without harm."""


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


HOSTILE_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**31,
    2**32,
    2**63,
    -(2**63),
    10**400,
    1e308,
    -1e308,
    1e-308,
    float("inf"),
    float("nan"),
    "",
    "x" * 10_000,
    "a\r\nx-injected: 1",
    "a\x00b",
    "inf",
    "nan",
    "1e400",
    "-5s",
    "lognormal(40s, cv=1e9)",
    [],
    {},
    [[[[[[]]]]]],
    {"a": {"b": {"c": {}}}},
    _nested(150),  # past the nesting limit of 100
]
"""Values for one field: other types, range edges, control characters, size, depth."""


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> bytes:
    """*text* as UTF-8 with one to four byte-level mutations."""
    data = bytearray(text.encode("utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "swap", "duplicate", "cut"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            piece = draw(st.sampled_from(INSERTS))
            data[at:at] = piece.encode("utf-8", "surrogatepass")
        elif kind == "swap":
            # replace the value after the next ': ' by something of another type
            colon = data.find(b": ", at)
            if colon >= 0:
                end = data.find(b"\n", colon)
                end = len(data) if end < 0 else end
                data[colon + 2 : end] = draw(st.sampled_from(INSERTS)).encode(
                    "utf-8", "surrogatepass"
                )
        elif kind == "duplicate":
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end + 1
            data[end:end] = data[start:end]
        else:
            data[at : at + draw(st.integers(1, 40))] = b""
    return bytes(data)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside *data* (mapping keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, (*prefix, i))
    return out


def set_at(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of *data* with the value at *path* replaced by *value*."""
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@st.composite
def mutated_data(draw: st.DrawFn, data: Any) -> Any:
    """*data* with one field (any depth) set to one of :data:`HOSTILE_VALUES`."""
    where = paths(data)
    if not where:
        return draw(st.sampled_from(HOSTILE_VALUES))
    return set_at(data, draw(st.sampled_from(where)), draw(st.sampled_from(HOSTILE_VALUES)))
