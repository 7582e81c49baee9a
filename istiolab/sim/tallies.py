"""Where a run's measurements accumulate while it is recorded and until it is reduced.

:mod:`istiolab.sim.metrics` fills these structures while recording; :mod:`istiolab.sim.frames`
reads them when reducing the run to frames.

* :class:`HdrLayout`: the HDR bucket layout shared by every histogram of a run, and vectorised
  operations on plain count arrays in that layout (value → index, percentiles, encoding), so
  histograms can be kept as rows of one numpy array rather than as ``HdrHistogram`` objects;
* :class:`IntervalTable`: per-interval counters, one row per key;
* :class:`KeyCounters`: the post-warm-up counters of one (route, cluster, version).
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

PERCENTILES: Final = (50.0, 90.0, 99.0, 99.9)
"""Percentiles reduced per route and interval, and reported per key."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class HdrLayout:
    """HDR bucket layout (shared by every histogram of a run) and vectorised operations on it."""

    def __init__(self, lowest_us: int, highest_us: int, significant_figures: int) -> None:
        self.lowest_us = lowest_us
        self.highest_us = highest_us
        self.significant_figures = significant_figures
        self.hdr = self.new()
        self.counts_len = int(self.hdr.counts_len)
        self._unit = int(self.hdr.unit_magnitude)
        self._half_mag = int(self.hdr.sub_bucket_half_count_magnitude)
        self._half_count = int(self.hdr.sub_bucket_half_count)
        self._mask = int(self.hdr.sub_bucket_mask)

    def new(self) -> Any:
        """A new, empty ``HdrHistogram`` of this layout."""
        return HdrHistogram(self.lowest_us, self.highest_us, self.significant_figures)

    def to_us(self, seconds: FloatArray) -> IntArray:
        """Seconds → integer µs, clamped into the trackable range.

        Rounded rather than truncated: a latency computed as ``t_end - t_start`` is often a hair
        below the intended value (1.3 + 0.001 - 1.3 = 0.00099999...), and truncation would move it
        down a whole microsecond.
        """
        us = np.rint(seconds * 1e6).astype(np.int64)
        return np.clip(us, 0, self.highest_us)

    def index(self, us: IntArray) -> IntArray:
        """Count-array index of each value: ``HdrHistogram._counts_index_for``, vectorised."""
        # frexp's exponent is the bit length of a positive integer below 2**53 (exact in float64).
        _, bit_length = np.frexp((us | self._mask).astype(np.float64))
        bucket = bit_length.astype(np.int64) - self._unit - (self._half_mag + 1)
        sub_bucket = us >> (bucket + self._unit)
        return ((bucket + 1) << self._half_mag) + sub_bucket - self._half_count

    def percentiles_us(
        self, counts: IntArray, percentiles: tuple[float, ...] = PERCENTILES
    ) -> list[float]:
        """HDR's ``get_value_at_percentile`` for each percentile of a count array (NaN if empty)."""
        total = int(counts.sum())
        if total == 0:
            return [math.nan] * len(percentiles)
        cumulative = np.cumsum(counts)
        out = []
        for pct in percentiles:
            target = max(int(min(pct, 100.0) * total / 100 + 0.5), 1)
            value = self.hdr.get_value_from_index(int(np.searchsorted(cumulative, target)))
            if pct:
                out.append(float(self.hdr.get_highest_equivalent_value(value)))
            else:
                out.append(float(self.hdr.get_lowest_equivalent_value(value)))
        return out

    def percentiles_of_sorted(
        self, index: IntArray, percentiles: tuple[float, ...] = PERCENTILES
    ) -> list[float]:
        """Same as :meth:`percentiles_us`, from the sorted count indices of the values."""
        total = len(index)
        if total == 0:
            return [math.nan] * len(percentiles)
        out = []
        for pct in percentiles:
            target = max(int(min(pct, 100.0) * total / 100 + 0.5), 1)
            value = self.hdr.get_value_from_index(int(index[min(target, total) - 1]))
            if pct:
                out.append(float(self.hdr.get_highest_equivalent_value(value)))
            else:
                out.append(float(self.hdr.get_lowest_equivalent_value(value)))
        return out

    def histogram(self, counts: IntArray) -> Any:
        """A real ``HdrHistogram`` holding *counts*."""
        hist = self.new()
        np.ctypeslib.as_array(hist.counts)[:] = counts.astype(np.uint64)
        nonzero = np.flatnonzero(counts)
        if nonzero.size:
            hist.total_count = int(counts.sum())
            hist.min_value = int(hist.get_value_from_index(int(nonzero[0])))
            hist.max_value = int(hist.get_value_from_index(int(nonzero[-1])))
        return hist

    def encode(self, counts: IntArray) -> str:
        """Base64 HdrHistogram V2 encoding of *counts*."""
        encoded = self.histogram(counts).encode()
        return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)


class IntervalTable:
    """Rows of per-interval counters, one row per key, grown by doubling as keys appear."""

    __slots__ = ("arrays", "ids", "n")

    def __init__(self, n: int, dtypes: dict[str, type]) -> None:
        self.n = n
        self.ids: dict[Any, int] = {}
        self.arrays: dict[str, npt.NDArray[Any]] = {
            name: np.zeros((1, n), dtype=dtype) for name, dtype in dtypes.items()
        }

    def codes(self, keys: list[Any] | tuple[Any, ...], count: int) -> IntArray:
        """Row id of every key (adding the new ones in order of first appearance)."""
        ids = self.ids
        for key in dict.fromkeys(keys):
            if key not in ids:
                ids[key] = len(ids)
        rows = len(ids)
        first = next(iter(self.arrays.values()))
        if rows > len(first):
            size = max(rows, 2 * len(first))
            for name, array in self.arrays.items():
                grown = np.zeros((size, self.n), dtype=array.dtype)
                grown[: len(array)] = array
                self.arrays[name] = grown
        return np.fromiter(map(ids.__getitem__, keys), dtype=np.int64, count=count)

    def row(self, name: str, key: Any) -> npt.NDArray[Any]:
        """Row of array *name* for *key*."""
        row: npt.NDArray[Any] = self.arrays[name][self.ids[key]]
        return row


class KeyCounters:
    """Post-warm-up counters of one (route, cluster, version)."""

    __slots__ = (
        "cluster",
        "flags",
        "ok",
        "requests",
        "retries",
        "route",
        "row",
        "stage_rows",
        "upstream",
        "version",
    )

    def __init__(self, route: str, cluster: str, version: str, row: int) -> None:
        self.route = route
        self.cluster = cluster
        self.version = version
        self.row = row
        self.requests = 0
        self.ok = 0
        self.retries = 0
        self.upstream = 0
        self.flags: dict[str, int] = {}
        self.stage_rows: dict[str, int] = {}


__all__ = ["PERCENTILES", "FloatArray", "HdrLayout", "IntArray", "IntervalTable", "KeyCounters"]
