"""Durations and rates as Istio writes them.

Istio and Envoy durations are protobuf ``Duration`` strings in Go's syntax: ``"250ms"``,
``"1.5s"``, ``"1m"``, ``"1h30m"``. Internally istiolab uses float seconds.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_WHOLE = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
MAX_DURATION_S = 315_576_000_000
"""The largest protobuf ``Duration``: 10,000 years (``google/protobuf/duration.proto``)."""
_MAX_NANOS = MAX_DURATION_S * 1_000_000_000
# Exact arithmetic in units of 1e-13 ns: a fraction with more significant decimals than that is
# finer than 1 ns for every unit (the largest, h, is 2^13 * 3^2 * 5^11 ns).
_FRACTION_DIGITS = 13
_INT_DIGITS = 22  # more integer digits than this is over the maximum even in ns


def _nanos(text: str) -> tuple[int | None, str | None]:
    """*text* in whole nanoseconds, or None and why not (exact: no float rounding)."""
    if not isinstance(text, str) or _WHOLE.fullmatch(text) is None:
        return None, "not a duration; write a number with a unit, e.g. '250ms', '1.5s', '1m'"
    scale = 10**_FRACTION_DIGITS
    total = 0  # in 1e-13 ns
    for num, unit in _PART.findall(text):
        whole, _, frac = num.partition(".")
        whole, frac = whole.lstrip("0"), frac.rstrip("0")
        if len(whole) > _INT_DIGITS:
            return None, f"longer than the protobuf maximum of {MAX_DURATION_S:,} s"
        if len(frac) > _FRACTION_DIGITS:
            return None, "finer than 1ns, the resolution of a protobuf Duration"
        total += int((whole or "0") + frac.ljust(_FRACTION_DIGITS, "0")) * _NANOS[unit]
        if total > _MAX_NANOS * scale:
            return None, f"longer than the protobuf maximum of {MAX_DURATION_S:,} s"
    nanos, rest = divmod(total, scale)
    if rest:
        return None, "finer than 1ns, the resolution of a protobuf Duration"
    return nanos, None


def duration_problem(text: str) -> str | None:
    """Why *text* is not a protobuf Duration Istio accepts, or None when it is one.

    A duration is Go's syntax (``"1.5s"``, ``"1h30m"``), never negative (no sign is accepted),
    at most :data:`MAX_DURATION_S` and a whole number of nanoseconds; ``inf``, ``nan`` and
    exponents are not durations.
    """
    return _nanos(text)[1]


def is_duration(text: str) -> bool:
    """Tell whether *text* is a Go/protobuf duration such as ``"1.5s"`` or ``"1m30s"``.

    Durations over the protobuf maximum or finer than 1 ns are not (see :func:`duration_problem`).
    """
    return duration_problem(text) is None


def parse_duration(text: str) -> float:
    """Parse a duration string into float seconds.

    Args:
        text: A duration such as ``"250ms"``, ``"1.5s"``, ``"1m"`` or ``"1h30m"``.

    Returns:
        The duration in seconds: finite, 0 up to :data:`MAX_DURATION_S`.

    Raises:
        ValueError: If *text* is not a duration; the message names the value and the format.
    """
    nanos, problem = _nanos(text)
    if nanos is None:
        shown = repr(text[:60] + "…" if len(text) > 60 else text) if isinstance(text, str) else ""
        raise ValueError(f"{shown or repr(type(text).__name__)} is {problem}")
    return nanos / 1e9


def format_duration(seconds: float) -> str:
    """Format float seconds as the shortest exact Istio duration (``0.25`` → ``"250ms"``)."""
    if not 0 <= seconds <= MAX_DURATION_S:  # also NaN and ±inf
        raise ValueError(f"{seconds} s is not a protobuf duration (0..{MAX_DURATION_S} s)")
    ms = round(seconds * 1000.0, 6)
    if ms == int(ms):
        ms_i = int(ms)
        if ms_i % 3_600_000 == 0 and ms_i:
            return f"{ms_i // 3_600_000}h"
        if ms_i % 60_000 == 0 and ms_i:
            return f"{ms_i // 60_000}m"
        if ms_i % 1000 == 0:
            return f"{ms_i // 1000}s"
        return f"{ms_i}ms"
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
