"""Input limits: how much YAML istiolab reads, in one place.

Every limit is a module constant that :mod:`istiolab.config.codecs` reads at call time, so a
program can change it (``istiolab.limits.FILE_BYTES = 64 * MIB``) and a shell can set it
through the environment variable named in its docstring (a positive integer; anything else is
ignored and the default applies). Exceeding a limit is a finding with its own code, never an
exception; ``docs/limits.md`` lists the limits, their codes and why they have their values.

The reference point for the defaults is a VirtualService with 10 000 HTTP routes, each with a
URI and a header match, two weighted destinations, a timeout and a retry policy: 3.1 MB of
block-style YAML, 460 000 nodes, 9 levels deep. It loads with room to spare under every limit.
"""

from __future__ import annotations

import os
import reprlib
from typing import Any

KIB = 1024
MIB = 1024 * KIB


def _env(name: str, default: int, *, cap: int | None = None) -> int:
    """*default*, or the positive integer in the environment variable *name* (at most *cap*)."""
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw.isdigit() or int(raw) <= 0:
        return default
    value = int(raw)
    return value if cap is None else min(value, cap)


FILE_BYTES: int = _env("ISTIOLAB_MAX_FILE_BYTES", 8 * MIB)
"""Largest input file (and standard input, and text given to ``loads``): 8 MiB.

Findings: IL008. Environment: ``ISTIOLAB_MAX_FILE_BYTES``. The size is checked with ``stat``
before a file is opened, and at most ``FILE_BYTES + 1`` bytes are ever read, so a file that
grows while it is read, or a pseudo-file such as ``/proc/kmsg``, cannot exhaust memory. 8 MiB
is 2.6 times the 10 000-route VirtualService and more than twice the largest request body the
Kubernetes API server accepts (3 MiB); a ``kubectl get -A -o yaml`` dump of a big mesh may need
more, and can be split or the limit raised.
"""

DOCUMENT_BYTES: int = _env("ISTIOLAB_MAX_DOCUMENT_BYTES", 6 * MIB)
"""Largest single resource: one YAML document, or one item of a ``kind: *List`` document: 6 MiB.

Findings: IL009. Environment: ``ISTIOLAB_MAX_DOCUMENT_BYTES``. The API server refuses request
bodies over 3 MiB and etcd, by default, objects over 1.5 MiB; 6 MiB is twice the former, so
anything a cluster could hold is linted (and the 10 000-route VirtualService, 3.1 MB, fits
with a margin of 2). Lists are measured item by item, so ``kubectl get -o yaml`` output is only
bounded by :data:`FILE_BYTES`.
"""

NODES: int = _env("ISTIOLAB_MAX_NODES", 1_500_000)
"""Most YAML nodes (scalars, sequences, mappings) in one input, counting aliases expanded.

Findings: IL010. Environment: ``ISTIOLAB_MAX_NODES``. An alias (``*a``) counts as many nodes as
the anchored node it repeats, so a "billion laughs" document is refused after reading its few
hundred bytes, before anything is expanded. The 10 000-route VirtualService has 460 000 nodes
(about 7 bytes of YAML per node); 1.5 million is 3.3 times that, and more than a block-style
file of :data:`FILE_BYTES` holds, so the limit is reached only by aliases or by very dense flow
style (``[1,1,1,...]``). Loading costs about 1 KB of memory per node.
"""

NESTING_DEPTH: int = _env("ISTIOLAB_MAX_DEPTH", 100, cap=250)
"""Deepest nesting, aliases expanded: the document root is level 1, its keys and values level 2.

Findings: IL011. Environment: ``ISTIOLAB_MAX_DEPTH`` (at most 250). Real resources are shallow:
the 10 000-route VirtualService is 9 levels deep, and the deepest YAML we know, the OpenAPI
schemas in Istio's and the Gateway API's CustomResourceDefinitions, 29. Later stages walk the
data recursively (validation, conversion, JSON output), with up to three Python frames per
level; 100 levels keep them far from Python's recursion limit of 1000, and the cap of 250 keeps
that promise when the limit is raised. libyaml stops at 1000 levels by itself.
"""

QUOTE_CHARS: int = _env("ISTIOLAB_MAX_QUOTE_CHARS", 100)
"""Longest value (or key, tag, path) quoted in a finding's message: 100 characters.

Longer values are cut by :func:`truncate` and end in ``…(N bytes)`` giving their full size, so a
finding about a megabyte-long string stays one readable line.
"""

MESSAGE_CHARS: int = 4 * QUOTE_CHARS
"""Longest message text taken from elsewhere (a YAML parser or a schema error): 400 characters."""

# -- simulations -----------------------------------------------------------------------------
# A scenario of a few lines can ask for billions of requests or gigabytes of time series. These
# are checked by istiolab.sim.budget before anything is built; the finding is IL402.

SIM_MAX_REQUESTS: int = _env("ISTIOLAB_MAX_SIM_REQUESTS", 20_000_000)
"""Expected arrivals in one run: 20 million (``--force`` runs more).

The SimPy engine simulates about 40 000 requests per CPU-second, so 20 million take about eight
minutes; the compiled engine takes seconds. Memory does not grow with the number of requests
(metrics stream), so this limit only protects time, and ``--force`` lifts it.
"""

SIM_MAX_INTERVALS: int = _env("ISTIOLAB_MAX_SIM_INTERVALS", 1_000_000)
"""Time-series buckets in one run (duration over ``metrics_interval_s``): one million.

Each route and version keeps a few 8-byte counters per bucket, so a million buckets cost tens of
MiB for a typical scenario; ``metrics_interval_s: 1e-9`` over a minute would ask for 6·10¹⁰.
"""

SIM_MAX_PODS: int = _env("ISTIOLAB_MAX_SIM_PODS", 10_000)
"""Backend pods (at the autoscalers' maxima) and, separately, gateway pods: 10 000 each.

Every pod is a simulated object with its own queue; 10 000 is above the largest EKS clusters'
per-service replica counts and keeps a run's set-up under a second.
"""

SIM_MAX_USERS: int = _env("ISTIOLAB_MAX_SIM_USERS", 10_000_000)
"""Session users and, separately, client source IPs over all traffic sources: 10 million.

Each gets a slot in per-user arrays (cookie cohort, source IP); ten million cost under 100 MiB.
"""

SWEEP_MAX_RUNS: int = _env("ISTIOLAB_MAX_SWEEP_RUNS", 10_000)
"""Runs in one sweep or plan (grid points times seeds): 10 000.

A sweep keeps one result row per run and schedules every run up front; ``--seeds 1e9`` would
fill memory with pending tasks before the first run ends.
"""


def _utf8_len(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def truncate(value: str | bytes, limit: int | None = None) -> str:
    """*value* as text, cut to *limit* characters with ``…(N bytes)`` (its full size) appended.

    Args:
        value: Text, or bytes (decoded as UTF-8, undecodable bytes replaced).
        limit: Characters kept (default :data:`QUOTE_CHARS`).

    Returns:
        The value unchanged when it is short enough, else its first *limit* characters and
        ``…(N bytes)``.
    """
    limit = QUOTE_CHARS if limit is None else max(limit, 0)
    if isinstance(value, bytes):
        size = len(value)
        text = value[: 4 * limit + 4].decode("utf-8", "replace")
        if size <= limit and len(text) <= limit:
            return text
        return f"{text[:limit]}…({size} bytes)"
    if len(value) <= limit:
        return value
    return f"{value[:limit]}…({_utf8_len(value)} bytes)"


class _Repr(reprlib.Repr):
    """A ``repr`` that stops early: bounded time and size whatever the value (even a DAG)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = 6
        self.maxdeque = self.maxarray = 6
        self.maxstring = self.maxother = self.maxlong = max(limit, 8)

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4 * self.maxlong:  # too long to print (and repr may refuse)
            return f"<{x.bit_length()}-bit integer>"
        return super().repr_int(x, level)


def quote(value: Any, limit: int | None = None) -> str:
    """``repr(value)`` for a message, bounded: never builds a long text, cut to *limit*.

    A string longer than *limit* is cut by :func:`truncate` (its size in bytes follows); any
    other value is rendered by a ``reprlib`` that elides deep and long parts with ``...`` and
    is cut with ``…``. Unlike ``repr(value)[:limit]`` this costs the same for a huge nested
    value (for example data shared by YAML aliases) as for a small one.
    """
    limit = QUOTE_CHARS if limit is None else max(limit, 0)
    if isinstance(value, str):
        return repr(truncate(value, limit)) if len(value) > limit else repr(value)
    try:
        text = _Repr(limit).repr(value)
    except Exception:  # a value whose repr fails: say what it is, not what it holds
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"
