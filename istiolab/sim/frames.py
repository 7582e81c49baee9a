"""The reduction of one finished recording to the tidy, fixed-schema frames of its result.

:class:`~istiolab.sim.metrics.Metrics` records a run into tallies (:mod:`istiolab.sim.tallies`);
once the last batch is processed, :meth:`Metrics.result <istiolab.sim.metrics.Metrics.result>`
hands them to a :class:`Reduction`, which turns them into one DataFrame per schema of
:data:`~istiolab.sim.results.SCHEMAS` and the run's totals. Nothing here runs per request: the
cost is per key, per histogram row and per interval, once per run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from istiolab.sim.results import SCHEMAS, make_frame
from istiolab.sim.tallies import (
    PERCENTILES,
    FloatArray,
    HdrLayout,
    IntArray,
    IntervalTable,
    KeyCounters,
)


def _repeat(values: list[Any], sizes: list[int]) -> list[Any]:
    """Each of *values* repeated its entry of *sizes* times, in order (a label column)."""
    return [v for v, n in zip(values, sizes, strict=True) for _ in range(n)]


def _columns(name: str) -> dict[str, list[Any]]:
    """Empty column lists of frame *name*, in schema order."""
    return {column.name: [] for column in SCHEMAS[name]}


class Reduction:
    """One finished recording's tallies, reduced to its result frames and totals.

    The tallies are shared with the recorder, not copied: build it after the last record.

    Args:
        duration_s: Simulated duration; the time series cover ``[0, duration_s)``.
        warmup_s: Requests starting before this are not in the keys' counters and histograms.
        interval_s: Width of one time-series interval.
        intervals: Number of intervals, ``ceil(duration_s / interval_s)``.
        layout: Bucket layout of the histograms in *counts*.
        keys: Counters per (route, cluster, version).
        rows: (route, cluster, version, stage) of each histogram row; stage "total" = end to end.
        counts: Histogram count arrays, one row per entry of *rows*.
        row_sum: Sum of the seconds recorded in each histogram row.
        row_max: Largest seconds recorded in each histogram row.
        series: Per route and interval: requests, err4, err5, retries and busy (time in system).
        versions: Per (route, version) and interval: requests.
        codes: Per (route, status, flags) and interval: requests.
        done: Per route (keyed by route id × intervals): p50/p90/p99/p99.9 in µs per interval.
        util: Per (kind, name, az) and interval: summed busy, summed capacity, samples.
        queued: Per (kind, name, az) and interval: summed requests waiting for a server at the
            samples (the ``queued`` column); None when the engine does not sample queues (the
            column is then NaN).
        upstream: Attempts per (cluster, host, status, flags).
        ingress: [requests, successes] per (ingress node, az).
        spans: Kept trace spans: (trace id, span, parent, start, end, tags).
        ok_counts: Histogram counts of the end-to-end latency of successful requests (status
            < 500) after the warm-up; None when the engine does not keep it (its ``success_*``
            totals are then NaN).
    """

    def __init__(
        self,
        *,
        duration_s: float,
        warmup_s: float,
        interval_s: float,
        intervals: int,
        layout: HdrLayout,
        keys: dict[tuple[str, str, str], KeyCounters],
        rows: list[tuple[str, str, str, str]],
        counts: IntArray,
        row_sum: FloatArray,
        row_max: FloatArray,
        series: IntervalTable,
        versions: IntervalTable,
        codes: IntervalTable,
        done: dict[int, FloatArray],
        util: dict[tuple[str, str, str], tuple[list[float], list[float], list[int]]],
        queued: dict[tuple[str, str, str], list[float]] | None = None,
        upstream: dict[tuple[str, str, int, str], int],
        ingress: dict[tuple[str, str], list[int]],
        spans: list[tuple[int, str, str, float, float, dict[str, str]]],
        ok_counts: IntArray | None = None,
    ) -> None:
        self._duration_s = duration_s
        self._warmup_s = warmup_s
        self._interval_s = interval_s
        self._n = intervals
        self._layout = layout
        self._keys = keys
        self._rows = rows
        self._counts = counts
        self._row_sum = row_sum
        self._row_max = row_max
        self._series = series
        self._versions = versions
        self._codes = codes
        self._done = done
        self._util = util
        self._queued = queued
        self._upstream = upstream
        self._ingress = ingress
        self._spans = spans
        self._ok_counts = ok_counts

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every frame of the result, by schema name."""
        return {
            "summary": self._summary_frame(),
            "timeseries": self._timeseries_frame(),
            "codes": self._codes_frame(),
            "utilisation": self._utilisation_frame(),
            "stages": self._stages_frame(),
            "upstream": self._upstream_frame(),
            "ingress": self._ingress_frame(),
            "trace": self._trace_frame(),
            "little": self._little_frame(),
            "histograms": self._histograms_frame(),
        }

    def _window_s(self) -> float:
        return self._duration_s - self._warmup_s

    def _latency_ms(self, row: int) -> tuple[int, list[float]]:
        """Count and [p50, p90, p99, mean, max] in ms of histogram row *row*."""
        counts = self._counts[row]
        count = int(counts.sum())
        p50, p90, p99 = (v / 1e3 for v in self._layout.percentiles_us(counts, (50.0, 90.0, 99.0)))
        mean = self._row_sum[row] * 1e3 / count if count else math.nan
        peak = self._row_max[row] * 1e3 if count else math.nan
        return count, [p50, p90, p99, float(mean), float(peak)]

    def _sorted_keys(self) -> list[KeyCounters]:
        return [self._keys[k] for k in sorted(self._keys)]

    def _summary_frame(self) -> pd.DataFrame:
        data = _columns("summary")
        window = self._window_s()
        for key in self._sorted_keys():
            _, latency = self._latency_ms(key.row)
            for column, value in zip(
                ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"), latency, strict=True
            ):
                data[column].append(value)
            data["route"].append(key.route)
            data["cluster"].append(key.cluster)
            data["version"].append(key.version)
            data["requests"].append(key.requests)
            data["rps"].append(key.requests / window)
            data["success_ratio"].append(key.ok / key.requests)
            data["retries"].append(key.retries)
            data["upstream_requests"].append(key.upstream)
            data["flags"].append(dict(sorted(key.flags.items())))
        return make_frame("summary", data)

    def totals(self) -> dict[str, Any]:
        """The run's totals over every key (the ``totals`` of the result's meta)."""
        keys = list(self._keys.values())
        requests = sum(k.requests for k in keys)
        rows = [k.row for k in keys]
        counts = (
            self._counts[rows].sum(axis=0) if rows else np.zeros(self._layout.counts_len, np.int64)
        )
        p50, p90, p99, p999 = (v / 1e3 for v in self._layout.percentiles_us(counts, PERCENTILES))
        ok = self._ok_counts
        if ok is None:
            ok_p50 = ok_p99 = ok_p999 = math.nan
        else:
            ok_p50, ok_p99, ok_p999 = (
                v / 1e3 for v in self._layout.percentiles_us(ok, (50.0, 99.0, 99.9))
            )
        flags: dict[str, int] = {}
        for key in keys:
            for flag, count in key.flags.items():
                flags[flag] = flags.get(flag, 0) + count
        return {
            "requests": requests,
            "rps": requests / self._window_s(),
            "success_ratio": sum(k.ok for k in keys) / requests if requests else math.nan,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "p999_ms": p999,
            "success_p50_ms": ok_p50,
            "success_p99_ms": ok_p99,
            "success_p999_ms": ok_p999,
            "mean_ms": float(self._row_sum[rows].sum()) * 1e3 / requests if requests else math.nan,
            "max_ms": float(self._row_max[rows].max()) * 1e3 if requests else math.nan,
            "retries": sum(k.retries for k in keys),
            "upstream_requests": sum(k.upstream for k in keys),
            "flags": dict(sorted(flags.items())),
        }

    def _stages_frame(self) -> pd.DataFrame:
        data = _columns("stages")
        for key in self._sorted_keys():
            for stage in sorted(key.stage_rows):
                count, latency = self._latency_ms(key.stage_rows[stage])
                values = (key.route, key.cluster, key.version, stage, count, *latency)
                for column, value in zip(data, values, strict=True):
                    data[column].append(value)
        return make_frame("stages", data)

    def _histograms_frame(self) -> pd.DataFrame:
        data = _columns("histograms")
        for row in sorted(range(len(self._rows)), key=lambda r: self._rows[r]):
            counts = self._counts[row]
            values = (*self._rows[row], int(counts.sum()), self._layout.encode(counts))
            for column, value in zip(data, values, strict=True):
                data[column].append(value)
        return make_frame("histograms", data)

    def _interval_starts_and_lengths(self) -> tuple[FloatArray, FloatArray]:
        starts = np.arange(self._n) * self._interval_s
        ends = np.minimum(starts + self._interval_s, self._duration_s)
        lengths: FloatArray = ends - starts
        return starts.astype(np.float64), lengths

    def _timeseries_frame(self) -> pd.DataFrame:
        starts, lengths = self._interval_starts_and_lengths()
        n = self._n
        t_parts: list[FloatArray] = []
        route_parts: list[list[str]] = []
        version_parts: list[list[str]] = []
        metric_parts: list[list[str]] = []
        value_parts: list[FloatArray] = []

        def add(route: str, version: str, metric: str, values: FloatArray) -> None:
            t_parts.append(starts)
            route_parts.append([route] * n)
            version_parts.append([version] * n)
            metric_parts.append([metric] * n)
            value_parts.append(np.asarray(values, dtype=np.float64))

        with np.errstate(invalid="ignore", divide="ignore"):
            arrays = self._series.arrays
            for route in sorted(self._series.ids):
                rid = self._series.ids[route]
                requests = arrays["requests"][rid].astype(np.float64)
                errors_5xx = arrays["err5"][rid].astype(np.float64)
                no_requests = requests == 0
                add(route, "", "rps", requests / lengths)
                add(
                    route,
                    "",
                    "success_ratio",
                    np.where(no_requests, np.nan, (requests - errors_5xx) / requests),
                )
                percentiles = self._done[rid * n] / 1e3
                for i, metric in enumerate(("p50_ms", "p90_ms", "p99_ms", "p999_ms")):
                    add(route, "", metric, percentiles[i])
                add(route, "", "retries_per_s", arrays["retries"][rid] / lengths)
                add(route, "", "in_flight", arrays["busy"][rid] / lengths)
                for key in sorted(k for k in self._versions.ids if k[0] == route):
                    counts = self._versions.row("count", key).astype(np.float64)
                    add(route, key[1], "share", np.where(no_requests, np.nan, counts / requests))
        if not t_parts:
            return make_frame("timeseries")
        return make_frame(
            "timeseries",
            {
                "t_s": np.concatenate(t_parts),
                "route": [r for part in route_parts for r in part],
                "version": [v for part in version_parts for v in part],
                "metric": [m for part in metric_parts for m in part],
                "value": np.concatenate(value_parts),
            },
        )

    def _codes_frame(self) -> pd.DataFrame:
        starts, _ = self._interval_starts_and_lengths()
        # column arrays per (route, status, flag), not a row at a time: a long run has one
        # row per interval and code, and appending them one by one was most of the frame's cost
        t_parts: list[FloatArray] = []
        counts_parts: list[Any] = []
        keys: list[tuple[str, int, str]] = []
        sizes: list[int] = []
        for route, status, flag in sorted(self._codes.ids):
            counts = self._codes.row("count", (route, status, flag))
            ks = np.flatnonzero(counts)
            t_parts.append(starts[ks])
            counts_parts.append(counts[ks])
            keys.append((route, status, flag))
            sizes.append(len(ks))
        if not keys:
            return make_frame("codes")
        frame = make_frame(
            "codes",
            {
                "t_s": np.concatenate(t_parts),
                "route": _repeat([k[0] for k in keys], sizes),
                "status": _repeat([k[1] for k in keys], sizes),
                "flag": _repeat([k[2] for k in keys], sizes),
                "count": np.concatenate(counts_parts),
            },
        )
        return frame.sort_values(["t_s", "route", "status", "flag"], ignore_index=True)

    def _utilisation_frame(self) -> pd.DataFrame:
        starts, _ = self._interval_starts_and_lengths()
        columns: dict[str, list[FloatArray]] = {
            c: [] for c in ("t_s", "busy", "capacity", "utilisation", "queued")
        }
        keys: list[tuple[str, str, str]] = []
        sizes: list[int] = []
        with np.errstate(invalid="ignore", divide="ignore"):
            for kind, name, az in sorted(self._util):
                busy, capacity, samples = (
                    np.asarray(a, dtype=np.float64) for a in self._util[(kind, name, az)]
                )
                waiting = None if self._queued is None else self._queued.get((kind, name, az))
                ks = np.flatnonzero(samples)
                b, c, n = busy[ks], capacity[ks], samples[ks]
                columns["t_s"].append(starts[ks])
                columns["busy"].append(b / n)
                columns["capacity"].append(c / n)
                columns["utilisation"].append(np.where(c != 0, b / c, math.nan))
                columns["queued"].append(
                    np.full(len(ks), math.nan)
                    if waiting is None
                    else np.asarray(waiting, dtype=np.float64)[ks] / n
                )
                keys.append((kind, name, az))
                sizes.append(len(ks))
        if not keys:
            return make_frame("utilisation")
        data: dict[str, Any] = {c: np.concatenate(parts) for c, parts in columns.items()}
        for i, column in enumerate(("kind", "name", "az")):
            data[column] = _repeat([k[i] for k in keys], sizes)
        frame = make_frame("utilisation", data)
        return frame.sort_values(["t_s", "kind", "name", "az"], ignore_index=True)

    def _upstream_frame(self) -> pd.DataFrame:
        data = _columns("upstream")
        for key in sorted(self._upstream):
            for column, value in zip(("cluster", "host", "status", "flag"), key, strict=True):
                data[column].append(value)
            data["attempts"].append(self._upstream[key])
        return make_frame("upstream", data)

    def _ingress_frame(self) -> pd.DataFrame:
        data = _columns("ingress")
        total = sum(requests for requests, _ in self._ingress.values())
        for node, az in sorted(self._ingress):
            requests, ok = self._ingress[(node, az)]
            data["ingress_node"].append(node)
            data["az"].append(az)
            data["requests"].append(requests)
            data["rps"].append(requests / self._window_s())
            data["success_ratio"].append(ok / requests)
            data["share"].append(requests / total)
        return make_frame("ingress", data)

    def _trace_frame(self) -> pd.DataFrame:
        columns = ("request_id", "span", "parent", "start_s", "end_s", "tags")
        spans = sorted(self._spans, key=lambda s: (s[0], s[3], s[1]))
        return make_frame("trace", {c: [s[i] for s in spans] for i, c in enumerate(columns)})

    def _little_frame(self) -> pd.DataFrame:
        _, lengths = self._interval_starts_and_lengths()
        first = math.ceil(self._warmup_s / self._interval_s - 1e-9)
        measured_s = float(lengths[first:].sum())
        window = self._window_s()
        data = _columns("little")

        def add(route: str, requests: int, time_in_system: float, busy: float) -> None:
            lam = requests / window
            w = time_in_system / requests if requests else math.nan
            data["route"].append(route)
            data["requests"].append(requests)
            data["window_s"].append(window)
            data["lambda_rps"].append(lam)
            data["w_s"].append(w)
            data["lambda_w"].append(lam * w if requests else 0.0)
            data["l"].append(busy / measured_s if measured_s > 0 else math.nan)

        all_requests, all_time, all_busy = 0, 0.0, 0.0
        for route in sorted(self._series.ids):
            keys = [k for k in self._keys.values() if k.route == route]
            requests = sum(k.requests for k in keys)
            time_in_system = float(sum(self._row_sum[k.row] for k in keys))
            busy = float(self._series.row("busy", route)[first:].sum())
            add(route, requests, time_in_system, busy)
            all_requests, all_time, all_busy = (
                all_requests + requests,
                all_time + time_in_system,
                all_busy + busy,
            )
        add("*", all_requests, all_time, all_busy)
        return make_frame("little", data)


__all__ = ["Reduction"]
