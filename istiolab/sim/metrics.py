"""Streaming collection of one run's measurements, in memory that does not grow with the run.

The engine calls :meth:`Metrics.record_row` (the positional form of :meth:`Metrics.record`) once
per completed client request, appends every upstream attempt to :attr:`Metrics.upstream_sink`
(:meth:`Metrics.record_upstream`), calls :meth:`Metrics.record_utilisation` once per interval per
component, then :meth:`Metrics.result` once at the end. Nothing is kept per request (unless traces
are sampled): requests and attempts are buffered as tuples and processed in vectorised batches of
:data:`FLUSH_AT`, grouped by their combination of labels (route, cluster, version, status, flags,
node), so the per-request cost is a tuple append plus numpy arithmetic (about 1.5 µs, against
about 5 µs for updating every counter request by request):

* **latency** goes into HDR histograms (``hdrhistogram``, integer microseconds, 1 µs – 1 h, 3
  significant figures): one per (route, cluster, version) for the end-to-end latency and one per
  stage of that key, added to the histograms' count arrays in batches using HDR's own bucket
  layout; recording each value with the pure-Python ``HdrHistogram.record_value`` would cost
  about 0.8 µs per value, several per request;
* **counters** per key, per response flag, per ingress node and per upstream host;
* **time series**: fixed arrays of ``ceil(duration_s / interval_s)`` slots per route (requests,
  4xx, 5xx, retries, time in system), per route and version and per route, status and flags.
  Requests are binned by *completion* time (``t_end``); completions at or after ``duration_s`` go
  in the last slot. Per-interval latency percentiles come from one HDR histogram per route and
  interval, kept only while the interval can still receive values: the engine records at
  ``t_end`` = now, so intervals finish in order and each is reduced to its p50/p90/p99/p99.9 once
  completions are two intervals later.

Warm-up: requests that *start* before ``warmup_s`` are left out of the histograms and the summary
counters but still counted in the time series, so the warm-up shows in plots. Success means status
< 500: a 4xx (a local 404 ``NR``, a 429 ``RL``, an aborted 4xx fault) is the proxy doing its job.

Little's law: each request's time in system is split over the intervals it spans, so the
time-average number in system L is measured from the time series independently of λ and W
(:meth:`Result.little`).

This module records; the structures it tallies into are in :mod:`istiolab.sim.tallies`, and
:meth:`Metrics.result` hands them to :class:`~istiolab.sim.frames.Reduction` for the frames.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from itertools import compress
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from istiolab.sim.frames import Reduction
from istiolab.sim.results import Result, make_run_id, normalise_params
from istiolab.sim.tallies import (
    PERCENTILES,
    FloatArray,
    HdrLayout,
    IntArray,
    IntervalTable,
    KeyCounters,
)

FLUSH_AT: Final = 16_384
"""Buffered values per batch; bounds the buffers' memory (a few hundred kB)."""

_HOST_SERIES_CELLS: Final = 200_000
"""Most (host, interval) cells of ``meta["attempt_series"]``: hosts beyond it get no series."""

GRACE_INTERVALS: Final = 2
"""An interval's latency histogram is reduced once completions are this many intervals later."""

RequestRow = tuple[
    float, float, str, str, str, int, str, int, int, str, str, tuple[str, ...], tuple[float, ...]
]
"""One completed request for :meth:`Metrics.record_row`."""

UpstreamRow = tuple[float, str, str, int, str]
"""One upstream attempt for :attr:`Metrics.upstream_sink`: (t, cluster, host, status, flags)."""

STAGES: Final = ("lb", "ingress", "route")
"""The stages every request's latency is split into (the ``stages`` frame)."""

TRACE_LIMIT: Final = 100_000
"""Most spans a run keeps (``Metrics``' default ``trace_limit``, the fast engine's too)."""

Span = tuple[str, str | None, float, float, dict[str, str]]
"""One span of a traced request: (name, parent name or None for the root, start, end, tags)."""


def request_spans(
    *,
    path: str,
    status: int,
    flags: str,
    route: str,
    cluster: str,
    version: str,
    ingress_node: str,
    lb: str,
    t0: float,
    t_end: float,
    stages: tuple[str, ...],
    seconds: tuple[float, ...],
) -> list[Span]:
    """The spans both engines keep for one traced request (Envoy reports one span per hop).

    The root ``client`` span covers the whole request; under it, one span per stage (*stages*,
    lasting *seconds*, back to back from *t0*), named after what serves it: ``aws-<lb>`` for
    the load balancer, the ingress node for the ingress, the upstream cluster for the route.

    Args:
        path: The request's path (tag ``http.path``).
        status: Its HTTP status (0: no answer).
        flags: Its response flags, comma-joined.
        route: The route it matched (``-``: none).
        cluster: The upstream cluster (``-``: none).
        version: The version label of the last pod tried (``-``: none).
        ingress_node: The ingress node that served it (``-``: none).
        lb: The AWS load balancer kind (``nlb``, ``alb``, ``clb``).
        t0: When it started (s).
        t_end: When it ended (s).
        stages: The stage names, in order.
        seconds: Each stage's duration (s).
    """
    tags = {"http.path": path, "http.status_code": str(status), "route": route}
    spans: list[Span] = [("client", None, t0, t_end, tags)]
    names = {"lb": f"aws-{lb}", "ingress": ingress_node, "route": cluster}
    t = t0
    for name, dt in zip(stages, seconds, strict=True):
        spans.append(
            (
                names.get(name, name),
                "client",
                t,
                t + dt,
                {"stage": name, "version": version, "flags": flags},
            )
        )
        t += dt
    return spans


_Layout = HdrLayout
"""The name :class:`~istiolab.sim.tallies.HdrLayout` had when it was defined here."""


class Metrics:
    """Collects one run's measurements in bounded memory and builds its :class:`Result`.

    Args:
        duration_s: Simulated duration; the time series cover ``[0, duration_s)``.
        warmup_s: Requests starting before this are left out of histograms and summaries.
        interval_s: Width of one time-series interval.
        trace_sample: Share of requests to trace (0 = none, 1 = all).
        trace_limit: Most spans kept; later ones are counted in ``counters.spans_dropped``.
        rng: Draws the trace sample. Without one, sampling is systematic (every 1/p-th request),
            which is reproducible without a random stream.
        latency_range_s: Lowest and highest latency the histograms resolve; larger values are
            clamped to the highest and counted in ``counters.latency_clamped``.
        significant_figures: HDR precision (3 = within 0.1 %).

    Raises:
        ValueError: If an argument is out of range (the message names it and its value).

    Example:
        >>> m = Metrics(duration_s=10.0, warmup_s=0.0, interval_s=1.0)
        >>> m.record(t_start=1.0, t_end=1.004, route="r", cluster="c", version="v1", status=200,
        ...          flags="", retries=0, upstream_requests=1, ingress_node="n1", az="a")
        >>> m.result(seed=1, scenario_name="demo", params={}).totals()["requests"]
        1
    """

    def __init__(
        self,
        *,
        duration_s: float,
        warmup_s: float,
        interval_s: float,
        trace_sample: float = 0.0,
        trace_limit: int = TRACE_LIMIT,
        rng: np.random.Generator | None = None,
        latency_range_s: tuple[float, float] = (1e-6, 3600.0),
        significant_figures: int = 3,
    ) -> None:
        if not duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {duration_s}")
        if not 0 <= warmup_s < duration_s:
            raise ValueError(f"warmup_s must be in [0, duration_s={duration_s}), got {warmup_s}")
        if not 0 < interval_s <= duration_s:
            raise ValueError(
                f"interval_s must be in (0, duration_s={duration_s}], got {interval_s}"
            )
        if not 0.0 <= trace_sample <= 1.0:
            raise ValueError(f"trace_sample must be in [0, 1], got {trace_sample}")
        if trace_limit < 0:
            raise ValueError(f"trace_limit must be >= 0, got {trace_limit}")
        lowest_us, highest_us = max(1, int(latency_range_s[0] * 1e6)), int(latency_range_s[1] * 1e6)
        if highest_us < 2 * lowest_us:
            raise ValueError(
                f"latency_range_s must span at least a factor 2, got {latency_range_s}"
            )
        if not 1 <= significant_figures <= 5:
            raise ValueError(f"significant_figures must be in 1..5, got {significant_figures}")

        self._duration_s = float(duration_s)
        self._warmup_s = float(warmup_s)
        self._interval_s = float(interval_s)
        self._n = max(1, math.ceil(duration_s / interval_s - 1e-9))
        self._trace_sample = float(trace_sample)
        self._trace_limit = trace_limit
        self._rng = rng
        self._trace_acc = 0.0
        self._layout = HdrLayout(lowest_us, highest_us, significant_figures)

        # Buffers, processed in vectorised batches of FLUSH_AT requests.
        self._requests: list[RequestRow] = []
        self._attempts: list[UpstreamRow] = []
        # Per-interval counters: per route, per (route, version), per (route, status, flags).
        int64, float64 = np.int64, np.float64
        self._series = IntervalTable(
            self._n,
            {"requests": int64, "err4": int64, "err5": int64, "retries": int64, "busy": float64},
        )
        self._versions = IntervalTable(self._n, {"count": int64})
        self._codes = IntervalTable(self._n, {"count": int64})
        self._keys: dict[tuple[str, str, str], KeyCounters] = {}
        self._key_ids: dict[tuple[str, str, str], int] = {}
        self._key_list: list[KeyCounters] = []
        self._ingress: dict[tuple[str, str], list[int]] = {}
        self._upstream: dict[tuple[str, str, int, str], int] = {}
        self._util: dict[tuple[str, str, str], tuple[list[float], list[float], list[int]]] = {}
        self._queued: dict[tuple[str, str, str], list[float]] = {}
        self._spans: list[tuple[int, str, str, float, float, dict[str, str]]] = []
        self._spans_dropped = 0
        self._records = 0

        # Dense histograms, one row per (route, cluster, version, stage); "total" = end to end.
        self._rows: list[tuple[str, str, str, str]] = []
        self._counts: IntArray = np.zeros((8, self._layout.counts_len), dtype=np.int64)
        self._row_sum: FloatArray = np.zeros(8)
        self._row_max: FloatArray = np.zeros(8)
        # One more histogram: end-to-end latency of the successful requests (status < 500).
        self._ok_counts: IntArray = np.zeros(self._layout.counts_len, dtype=np.int64)
        # Requests after the warm-up by upstream tries, and the latency histogram of the
        # successful ones by tries: where the retry back-off shows (meta["tries"]).
        self._tries: dict[int, int] = {}
        self._ok_by_tries: dict[int, IntArray] = {}
        # Upstream attempts per (cluster, host) and interval, warm-up included (meta
        # "attempt_series"): when a host stopped and started getting traffic (ejections).
        self._host_series: dict[tuple[str, str], IntArray] = {}

        # Per-interval latency histograms per route, keyed by route id * intervals + interval.
        self._live: dict[int, IntArray] = {}
        self._done: dict[int, FloatArray] = {}  # base → (3, n) percentiles in µs, NaN = none
        self._closed: dict[int, list[bool]] = {}
        self._max_interval = -1
        self._late = 0
        self._clamped = 0

    # ------------------------------------------------------------------ recording
    def record(
        self,
        *,
        t_start: float,
        t_end: float,
        route: str,
        cluster: str,
        version: str,
        status: int,
        flags: str,
        retries: int,
        upstream_requests: int,
        ingress_node: str,
        az: str,
        stages: tuple[tuple[str, float], ...] = (),
    ) -> None:
        """Record one completed client request.

        Args:
            t_start: When the client sent it (s).
            t_end: When the client got the response (s); latency is ``t_end - t_start``.
            route: Envoy route name that handled it.
            cluster: Upstream cluster ('' for a local reply).
            version: Backend version (subset) label.
            status: HTTP status sent to the client.
            flags: Envoy response flags joined by ``","`` ('' for none).
            retries: Retries Envoy made for it.
            upstream_requests: Upstream attempts (1 + retries, 0 for a local reply).
            ingress_node: Ingress node that served it.
            az: Availability zone of that node.
            stages: ``(stage, seconds)`` pairs, e.g. ``(("lb", 1e-4), ("router", 2e-5))``.

        Raises:
            ValueError: If ``t_end < t_start``.
        """
        if t_end < t_start:
            raise ValueError(f"t_end ({t_end}) is before t_start ({t_start}) for route {route!r}")
        self.record_row(
            (
                t_start,
                t_end,
                route,
                cluster,
                version,
                status,
                flags,
                retries,
                upstream_requests,
                ingress_node,
                az,
                tuple(name for name, _ in stages),
                tuple(seconds for _, seconds in stages),
            )
        )

    def record_row(self, row: RequestRow) -> None:
        """Record one completed client request given as a tuple (the engine's fast path).

        Args:
            row: ``(t_start, t_end, route, cluster, version, status, flags, retries,
                upstream_requests, ingress_node, az, stage_names, stage_seconds)``, the
                arguments of :meth:`record` in that order, with the stages as two parallel
                tuples. Pass the same ``stage_names`` tuple object for every row: rows are
                grouped by it when the batch is processed. ``t_end < t_start`` raises
                :class:`ValueError` when the batch is processed.
        """
        buffer = self._requests
        buffer.append(row)
        if len(buffer) >= FLUSH_AT:
            self._flush()

    def record_upstream(
        self, *, t: float, cluster: str, host: str, status: int, flags: str
    ) -> None:
        """Record one upstream attempt (counted only from ``warmup_s`` on).

        Args:
            t: When the attempt was made (s).
            cluster: Upstream cluster.
            host: Host (pod) the attempt went to.
            status: Status of the attempt.
            flags: Envoy response flags of the attempt ('' for none).
        """
        attempts = self._attempts
        attempts.append((t, cluster, host, status, flags))
        if len(attempts) >= FLUSH_AT:  # upstream_sink's callers are bounded by the request rows
            self._flush()

    @property
    def upstream_sink(self) -> Callable[[UpstreamRow], None]:
        """:meth:`record_upstream` as a callable taking ``(t, cluster, host, status, flags)``.

        It appends to a buffer without the cost of a method call; the attempts are processed
        with the request batches.
        """
        return self._attempts.append

    def record_utilisation(
        self,
        *,
        t: float,
        kind: str,
        name: str,
        az: str,
        busy: float,
        capacity: float,
        queued: float = 0.0,
    ) -> None:
        """Record one utilisation sample of a component (the engine samples once per interval).

        Args:
            t: Sample time (s).
            kind: Component kind, e.g. ``"ingress"`` or ``"pod"``.
            name: Component name.
            az: Its availability zone.
            busy: Busy servers (workers, concurrency slots) at *t*.
            capacity: Servers it has (0 while it is down).
            queued: Requests waiting for one of its servers at *t*.
        """
        key = (kind, name, az)
        arrays = self._util.get(key)
        if arrays is None:
            n = self._n
            arrays = self._util[key] = ([0.0] * n, [0.0] * n, [0] * n)
            self._queued[key] = [0.0] * n
        k = min(max(int(t / self._interval_s), 0), self._n - 1)
        arrays[0][k] += busy
        arrays[1][k] += capacity
        arrays[2][k] += 1
        self._queued[key][k] += queued

    def should_trace(self) -> bool:
        """Whether to trace the next request (call once per request)."""
        p = self._trace_sample
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        if self._rng is not None:
            return bool(self._rng.random() < p)
        self._trace_acc += p
        if self._trace_acc >= 1.0:
            self._trace_acc -= 1.0
            return True
        return False

    def trace_span(
        self,
        *,
        trace_id: int,
        span: str,
        parent: str | None,
        start: float,
        end: float,
        tags: dict[str, str],
    ) -> None:
        """Keep one span of a sampled request.

        Args:
            trace_id: Id of the request (one trace per request).
            span: Span name, unique within the request (e.g. ``"upstream#2"`` for a retry).
            parent: Parent span name, or ``None`` for the root.
            start: Span start (s).
            end: Span end (s).
            tags: String tags; ``service`` names the Zipkin ``localEndpoint``.

        Raises:
            ValueError: If ``end < start`` or *trace_id* is not in ``[0, 2**63)``.
        """
        if not 0 <= trace_id < 1 << 63:
            raise ValueError(f"trace_id must be in [0, 2**63), got {trace_id}")
        if end < start:
            raise ValueError(
                f"span {span!r} of trace {trace_id} ends ({end}) before it starts ({start})"
            )
        if len(self._spans) >= self._trace_limit:
            self._spans_dropped += 1
            return
        self._spans.append((trace_id, span, parent or "", start, end, dict(tags)))

    # ------------------------------------------------------------------ internals
    def _route_table(self, routes: Any, count: int) -> IntArray:
        """Route ids of *routes*, opening the per-interval state of new routes."""
        known = len(self._series.ids)
        ids = self._series.codes(routes, count)
        for rid in range(known, len(self._series.ids)):
            base = rid * self._n
            self._done[base] = np.full((len(PERCENTILES), self._n), np.nan)
            self._closed[base] = [False] * self._n
        return ids

    def _key(self, route: str, cluster: str, version: str) -> KeyCounters:
        key = self._keys.get((route, cluster, version))
        if key is None:
            key = KeyCounters(
                route, cluster, version, self._add_row(route, cluster, version, "total")
            )
            self._keys[(route, cluster, version)] = key
            self._key_ids[(route, cluster, version)] = len(self._key_list)
            self._key_list.append(key)
        return key

    def _add_row(self, route: str, cluster: str, version: str, stage: str) -> int:
        row = len(self._rows)
        self._rows.append((route, cluster, version, stage))
        if row >= len(self._counts):  # grow by doubling; rows are few (keys × stages)
            grow = len(self._counts)
            self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
            self._row_sum = np.concatenate([self._row_sum, np.zeros(grow)])
            self._row_max = np.concatenate([self._row_max, np.zeros(grow)])
        return row

    def _spread(self, busy: FloatArray, t_start: float, t_end: float) -> None:
        """Add the overlap of ``[t_start, t_end]`` with each interval of ``[0, duration_s)``."""
        interval = self._interval_s
        first = max(int(t_start / interval), 0)
        last = min(int(t_end / interval), self._n - 1)
        for k in range(first, last + 1):
            lo = max(t_start, k * interval)
            hi = min(t_end, (k + 1) * interval, self._duration_s)
            if hi > lo:
                busy[k] += hi - lo

    def _flush(self) -> None:
        """Process the buffered requests and attempts in one vectorised batch."""
        if self._requests:
            self._flush_requests()
        if self._attempts:
            warm = self._warmup_s
            attempts = Counter(a[1:] for a in self._attempts if a[0] >= warm)
            n, interval, all_series = self._n, self._interval_s, self._host_series
            for t, cluster, host, _status, _flags in self._attempts:
                series = all_series.get((cluster, host))
                if series is None:
                    if n * (len(all_series) + 1) > _HOST_SERIES_CELLS:
                        continue  # a bounded meta: hosts beyond the cap get no series
                    series = all_series[(cluster, host)] = np.zeros(n, np.int64)
                series[min(max(int(t / interval), 0), n - 1)] += 1
            self._attempts.clear()  # in place: upstream_sink holds its append
            for key, count in attempts.items():
                self._upstream[key] = self._upstream.get(key, 0) + count

    def _flush_requests(self) -> None:
        """Process the buffered requests.

        Rows are grouped by their *combination* of labels (route, cluster, version, status,
        flags, ingress node, AZ, stage names): a run has a few dozen of them, so every label
        lookup happens once per combination, and per row there is only array arithmetic.
        """
        rows = self._requests[:]
        self._requests.clear()
        count = len(rows)
        self._records += count
        (t_start, t_end, routes, clusters, versions, status, flags, retries, upstream, nodes,
         azs, stage_names, stage_seconds) = zip(*rows, strict=True)  # fmt: skip
        ts = np.array(t_start, dtype=np.float64)
        te = np.array(t_end, dtype=np.float64)
        latency = te - ts
        if (latency < 0.0).any():
            i = int(np.flatnonzero(latency < 0.0)[0])
            raise ValueError(
                f"t_end ({t_end[i]}) is before t_start ({t_start[i]}) for route {routes[i]!r}"
            )
        labels = list(
            zip(routes, clusters, versions, status, flags, nodes, azs, stage_names, strict=True)
        )
        combos = {combo: i for i, combo in enumerate(dict.fromkeys(labels))}
        cid = np.fromiter(map(combos.__getitem__, labels), dtype=np.int64, count=count)
        unique = list(combos)
        n, interval = self._n, self._interval_s

        # Time series, binned by completion (clamped into [0, n)), warm-up included.
        k = np.clip((te / interval).astype(np.int64), 0, n - 1)
        rid = self._route_table([c[0] for c in unique], len(unique))[cid]
        flat = rid * n + k
        series = self._series.arrays
        np.add.at(series["requests"].reshape(-1), flat, 1)
        combo_status = np.array([c[3] for c in unique], dtype=np.int64)
        # Status 0: no response at all (the client gave up or its connection failed): a failure.
        e5 = ((combo_status >= 500) | (combo_status == 0))[cid]
        np.add.at(series["err5"].reshape(-1), flat[e5], 1)
        e4 = ((combo_status >= 400) & (combo_status < 500))[cid]
        np.add.at(series["err4"].reshape(-1), flat[e4], 1)
        tries = np.array(retries, dtype=np.int64)
        retried = tries > 0
        np.add.at(series["retries"].reshape(-1), flat[retried], tries[retried])
        vid = self._versions.codes([(c[0], c[2]) for c in unique], len(unique))[cid]
        np.add.at(self._versions.arrays["count"].reshape(-1), vid * n + k, 1)
        code = self._codes.codes([(c[0], c[3], c[4]) for c in unique], len(unique))[cid]
        np.add.at(self._codes.arrays["count"].reshape(-1), code * n + k, 1)
        # Time in system: most requests lie inside one interval; spread the others.
        inside = ((ts / interval).astype(np.int64) == k) & (te <= self._duration_s)
        busy = series["busy"]
        np.add.at(busy.reshape(-1), flat[inside], latency[inside])
        for i in np.flatnonzero(~inside).tolist():
            self._spread(busy[rid[i]], t_start[i], t_end[i])
        self._flush_intervals(flat, latency)

        # Summaries and histograms: requests that started after the warm-up only.
        warm = ts >= self._warmup_s
        if not warm.any():
            return
        if not warm.all():
            stage_seconds = tuple(compress(stage_seconds, warm.tolist()))
            cid, tries, latency = cid[warm], tries[warm], latency[warm]
            attempts = np.array(upstream, dtype=np.float64)[warm]
        else:
            attempts = np.array(upstream, dtype=np.float64)
        size = len(unique)
        per_combo = np.bincount(cid, minlength=size)
        combo_retries = np.bincount(cid, weights=tries.astype(np.float64), minlength=size)
        combo_attempts = np.bincount(cid, weights=attempts, minlength=size)
        total_rows = np.zeros(size, dtype=np.intp)
        for c in np.flatnonzero(per_combo).tolist():
            route, cluster, version, code_, joined, node, az, _ = unique[c]
            times = int(per_combo[c])
            key = self._key(route, cluster, version)
            total_rows[c] = key.row
            key.requests += times
            good = times if 0 < code_ < 500 else 0
            key.ok += good
            key.retries += int(combo_retries[c])
            key.upstream += int(combo_attempts[c])
            if joined:
                for flag in joined.split(","):
                    key.flags[flag] = key.flags.get(flag, 0) + times
            entry = self._ingress.get((node, az))
            if entry is None:
                entry = self._ingress[(node, az)] = [0, 0]
            entry[0] += times
            entry[1] += good
        self._add_histograms(total_rows[cid], latency)
        succeeded = ((combo_status > 0) & (combo_status < 500))[cid]
        n_tries = attempts.astype(np.int64)
        for k, c in zip(*np.unique(n_tries, return_counts=True), strict=True):
            self._tries[int(k)] = self._tries.get(int(k), 0) + int(c)
        if succeeded.any():
            ok_us = self._layout.to_us(latency[succeeded])
            ok_index = self._layout.index(ok_us)
            self._ok_counts += np.bincount(ok_index, minlength=self._layout.counts_len)
            ok_tries = n_tries[succeeded]
            for k in np.unique(ok_tries).tolist():
                hist = self._ok_by_tries.get(k)
                if hist is None:
                    hist = self._ok_by_tries[k] = np.zeros(self._layout.counts_len, np.int64)
                hist += np.bincount(ok_index[ok_tries == k], minlength=self._layout.counts_len)
        by_names: dict[tuple[str, ...], list[int]] = {}
        for c in np.flatnonzero(per_combo).tolist():
            by_names.setdefault(unique[c][7], []).append(c)
        for names, members in by_names.items():
            if not names:
                continue
            table = np.zeros((size, len(names)), dtype=np.intp)
            for c in members:
                key = self._keys[unique[c][:3]]
                for j, name in enumerate(names):
                    row = key.stage_rows.get(name)
                    if row is None:
                        row = key.stage_rows[name] = self._add_row(
                            key.route, key.cluster, key.version, name
                        )
                    table[c, j] = row
            if len(by_names) == 1:
                picked, seconds = cid, np.array(stage_seconds, dtype=np.float64)
            else:
                mask = np.isin(cid, members)
                picked = cid[mask]
                seconds = np.array(list(compress(stage_seconds, mask.tolist())), dtype=np.float64)
            seconds = seconds.reshape(len(picked), len(names))
            for j in range(len(names)):
                self._add_histograms(table[picked, j], seconds[:, j])

    def _tries_meta(self) -> dict[str, Any]:
        """Requests by upstream tries and the latency of the successful ones by tries."""
        layout = self._layout
        success: dict[str, dict[str, float]] = {}
        for k, hist in sorted(self._ok_by_tries.items()):
            p50, p90, p99 = (v / 1e3 for v in layout.percentiles_us(hist, (50.0, 90.0, 99.0)))
            success[str(k)] = {"n": int(hist.sum()), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99}
        return {"requests": {str(k): n for k, n in sorted(self._tries.items())}, "success": success}

    def _add_histograms(self, rows: npt.NDArray[np.intp], seconds: FloatArray) -> None:
        """Add *seconds* to the dense histogram rows *rows* (both 1-D, same length)."""
        layout = self._layout
        us = layout.to_us(seconds)
        self._clamped += int(np.count_nonzero(seconds * 1e6 > layout.highest_us))
        flat = rows * layout.counts_len + layout.index(us)  # 1-D add.at is ~4x faster than 2-D
        np.add.at(self._counts.reshape(-1), flat, 1)
        np.add.at(self._row_sum, rows, seconds)
        np.maximum.at(self._row_max, rows, seconds)

    def _flush_intervals(self, keys: IntArray, seconds: FloatArray) -> None:
        """Add values to the per-interval histograms, reducing the finished ones.

        *keys* are ``route id × intervals + interval``. A batch can span many intervals when the
        rate is low; an interval already finished in this batch is reduced straight from its
        sorted values, so at most the intervals of the grace window ever hold a dense count
        array.
        """
        layout, n = self._layout, self._n
        index = layout.index(layout.to_us(seconds))
        order = np.argsort(keys, kind="stable")
        keys, index = keys[order], index[order]
        self._max_interval = max(self._max_interval, int((keys % n).max()))
        finished = self._max_interval - GRACE_INTERVALS
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], len(keys)]
        for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
            ikey = int(keys[lo])
            base, k = ikey - ikey % n, ikey % n
            if self._closed[base][k]:
                self._late += hi - lo  # already reduced: counted, but not in its percentiles
                continue
            live = self._live.pop(ikey, None)
            if k < finished and live is None:
                self._done[base][:, k] = layout.percentiles_of_sorted(np.sort(index[lo:hi]))
                self._closed[base][k] = True
                continue
            if live is None:
                live = np.zeros(layout.counts_len, dtype=np.int64)
            live += np.bincount(index[lo:hi], minlength=layout.counts_len)
            self._live[ikey] = live
        self._close_intervals(finished)

    def _close_intervals(self, before: int) -> None:
        """Reduce live interval histograms with interval index < *before* to percentiles."""
        n = self._n
        for ikey in [key for key in self._live if key % n < before]:
            base, k = ikey - ikey % n, ikey % n
            self._done[base][:, k] = self._layout.percentiles_us(self._live.pop(ikey))
            self._closed[base][k] = True

    # ------------------------------------------------------------------ result
    def result(
        self,
        *,
        seed: int | list[int] | None,
        scenario_name: str,
        params: dict[str, object],
        run_id: str | None = None,
    ) -> Result:
        """Build the run's :class:`Result` (call once, after the last record).

        Args:
            seed: Seed of the run (a list when several replications were merged).
            scenario_name: Scenario name (the ``scenario`` column).
            params: Swept parameters; each becomes a column of every frame.
            run_id: Id for the run; default: a hash of scenario, seed and params.

        Returns:
            The result.

        Raises:
            ValueError: If *params* is not JSON-serialisable or a name collides with a column.
        """
        self._flush()
        self._close_intervals(self._n)
        params_json = normalise_params(params)
        seed_json: int | list[int] | None
        if seed is None:
            seed_json = None
        elif isinstance(seed, (list, tuple)):
            seed_json = [int(s) for s in seed]
        else:
            seed_json = int(seed)
        run_id = run_id or make_run_id(scenario_name, seed_json, params_json)

        reduction = Reduction(
            duration_s=self._duration_s,
            warmup_s=self._warmup_s,
            interval_s=self._interval_s,
            intervals=self._n,
            layout=self._layout,
            keys=self._keys,
            rows=self._rows,
            counts=self._counts,
            row_sum=self._row_sum,
            row_max=self._row_max,
            series=self._series,
            versions=self._versions,
            codes=self._codes,
            done=self._done,
            util=self._util,
            queued=self._queued,
            upstream=self._upstream,
            ingress=self._ingress,
            spans=self._spans,
            ok_counts=self._ok_counts,
        )
        frames = reduction.frames()
        layout = self._layout
        meta = {
            "run_id": run_id,
            "seed": seed_json,
            "scenario": scenario_name,
            "params": params_json,
            "config": {
                "duration_s": self._duration_s,
                "warmup_s": self._warmup_s,
                "interval_s": self._interval_s,
                "intervals": self._n,
                "hdr_lowest_us": layout.lowest_us,
                "hdr_highest_us": layout.highest_us,
                "significant_figures": layout.significant_figures,
                "trace_sample": self._trace_sample,
                "trace_limit": self._trace_limit,
                "success": "status < 500",
            },
            "totals": reduction.totals(),
            "tries": self._tries_meta(),
            "attempt_series": {
                f"{cluster}|{host}": series.tolist()
                for (cluster, host), series in sorted(self._host_series.items())
            },
            "counters": {
                "records": self._records,
                "spans": len(self._spans),
                "spans_dropped": self._spans_dropped,
                "interval_latency_late": self._late,
                "latency_clamped": self._clamped,
            },
        }
        return Result(frames, meta)


__all__ = ["FLUSH_AT", "GRACE_INTERVALS", "Metrics"]
