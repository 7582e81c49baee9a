"""Durations and rates as Istio writes them.

Istio and Envoy durations are protobuf ``Duration`` strings in Go's syntax: ``"250ms"``,
``"1.5s"``, ``"1m"``, ``"1h30m"``. Internally istiolab uses float seconds.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_WHOLE = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")


def is_duration(text: str) -> bool:
    """Tell whether *text* is a Go/protobuf duration such as ``"1.5s"`` or ``"1m30s"``."""
    return isinstance(text, str) and _WHOLE.fullmatch(text) is not None


def parse_duration(text: str) -> float:
    """Parse a duration string into float seconds.

    Args:
        text: A duration such as ``"250ms"``, ``"1.5s"``, ``"1m"`` or ``"1h30m"``.

    Returns:
        The duration in seconds.

    Raises:
        ValueError: If *text* is not a duration; the message names the value and the format.
    """
    if not is_duration(text):
        raise ValueError(
            f"{text!r} is not a duration; write a number with a unit, e.g. '250ms', '1.5s', '1m'"
        )
    return sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Format float seconds as the shortest exact Istio duration (``0.25`` → ``"250ms"``)."""
    if seconds < 0:
        raise ValueError(f"negative duration {seconds}")
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
