"""RE2 regexes, as Envoy and Istio use them (``safe_regex`` is RE2, full match)."""

from __future__ import annotations

import functools
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would otherwise print every rejected pattern to stderr


class RegexError(ValueError):
    """RE2 rejected a pattern."""


@functools.lru_cache(maxsize=4096)
def compile_re2(pattern: str) -> Any:
    """Compile *pattern* with RE2 (cached).

    Raises:
        RegexError: With RE2's reason, when the pattern is not valid RE2.
    """
    try:
        return re2.compile(pattern, _OPTIONS)
    except Exception as err:  # re2._re2.Error carries bytes
        arg = err.args[0] if err.args else b"rejected"
        reason = arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
        raise RegexError(reason) from None


ENVOY_MAX_PROGRAM_SIZE = 100
"""Envoy's default limit on the RE2 program size of a regex.

The runtime key :data:`ENVOY_PROGRAM_SIZE_KEY` raises it.

Envoy refuses a config with a larger regex (``source/common/common/regex.cc``): "RE2 program size
of N > max program size of 100 set for the error level threshold".
"""
ENVOY_PROGRAM_SIZE_KEY = "re2.max_program_size.error_level"


def program_size(pattern: str) -> int:
    """RE2's program size of *pattern* (``RE2::ProgramSize``), which Envoy limits.

    Raises:
        RegexError: When the pattern is not valid RE2.
    """
    return int(compile_re2(pattern).programsize)


def check_re2(pattern: str) -> str | None:
    """RE2's complaint about *pattern*, or None when it is valid."""
    try:
        compile_re2(pattern)
    except RegexError as err:
        return str(err)
    return None


def full_match(pattern: str, text: str) -> bool:
    """Envoy's regex semantics: the whole *text* must match *pattern*."""
    return compile_re2(pattern).fullmatch(text) is not None
