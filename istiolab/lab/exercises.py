"""The exercise checker of the workshop notebooks: is an answer right, and why.

:func:`check` prints a verdict; :func:`is_right` returns it as a bool.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["RIGHT", "WRONG", "check", "is_right"]

RIGHT = "\u2713"
WRONG = "\u2717"


def _same(answer: Any, expected: Any, tol: float | None, rel: float | None) -> bool:
    if isinstance(expected, bool) or isinstance(answer, bool):
        return bool(answer) is bool(expected) and type(answer) is type(expected)
    if isinstance(expected, (int, float)) and isinstance(answer, (int, float)):
        if math.isnan(float(expected)):
            return math.isnan(float(answer))
        slack = 0.0
        if tol is not None:
            slack = max(slack, tol)
        if rel is not None:
            slack = max(slack, rel * abs(float(expected)))
        return abs(float(answer) - float(expected)) <= slack
    if isinstance(expected, str) and isinstance(answer, str):
        return answer.strip().lower() == expected.strip().lower()
    if isinstance(expected, (set, frozenset)):
        try:
            return {_norm(a) for a in answer} == {_norm(e) for e in expected}
        except TypeError:
            return False
    if isinstance(expected, Mapping) and isinstance(answer, Mapping):
        return set(expected) == set(answer) and all(
            _same(answer[k], expected[k], tol, rel) for k in expected
        )
    if isinstance(expected, (list, tuple)) and isinstance(answer, (list, tuple)):
        return len(answer) == len(expected) and all(
            _same(a, e, tol, rel) for a, e in zip(answer, expected, strict=True)
        )
    return bool(answer == expected)


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def is_right(
    answer: Any, expected: Any, *, tol: float | None = None, rel: float | None = None
) -> bool:
    """Whether *answer* matches *expected* with :func:`check`'s rules (no printing)."""
    if answer is None or answer is Ellipsis:
        return False
    return _same(answer, expected, tol, rel)


def check(
    answer: Any,
    expected: Any,
    *,
    why: str,
    hint: str = "",
    tol: float | None = None,
    rel: float | None = None,
) -> None:
    """Print whether an exercise answer is right, and why.

    Numbers match within ``tol`` (absolute) or ``rel`` (relative to *expected*); strings match
    ignoring case and surrounding spaces; sets ignore order; lists, tuples and mappings are
    compared item by item. An answer left as ``None`` or ``...`` is reported as not answered
    (with *hint*, never *why*, which gives the answer away). Use :func:`is_right` for the verdict
    as a bool.

    Args:
        answer: What the attendee wrote.
        expected: The right answer (usually computed in the notebook with the public API).
        why: The reason, printed with the verdict.
        hint: Printed while the answer is missing.
        tol: Absolute tolerance for numbers.
        rel: Relative tolerance for numbers.

    Example:
        >>> check(0.1, 0.1004, why="v2 gets its weight's share", tol=0.01)
        ✓ right: v2 gets its weight's share
    """
    if answer is None or answer is Ellipsis:
        print(
            f"{WRONG} not answered yet: replace None with your answer."
            + (f" Hint: {hint}" if hint else "")
        )
    elif _same(answer, expected, tol, rel):
        print(f"{RIGHT} right: {why}")
    else:
        print(f"{WRONG} wrong: {answer!r} is not it. {why}")
