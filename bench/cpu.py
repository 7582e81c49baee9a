"""CPU work for the parallel-ceiling control (importable by worker processes, unlike __main__)."""

from __future__ import annotations


def burn(n: int) -> int:
    """Pure-Python arithmetic: no I/O, no allocation to speak of, no GIL release."""
    total = 0
    for i in range(n):
        total += i * i
    return total
