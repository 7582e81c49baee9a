"""The outcome of one simulation run: tidy, fixed-schema pandas DataFrames.

:class:`~istiolab.sim.metrics.Metrics` collects a run in bounded memory and turns it into a
:class:`Result` once, at the end. A result is plain data (DataFrames and a JSON-able ``meta``
dict), so it pickles (Dask), saves and loads losslessly, and a sweep of many runs is one
``pd.concat`` of the same frame of each run: every frame carries ``run_id``, ``seed``,
``scenario`` and the swept parameters as leading columns.

The column sets and dtypes are fixed (:data:`SCHEMAS`); they are listed, with units, in the
:class:`Result` docstring. Times are seconds (``*_s``), latencies milliseconds (``*_ms``), rates per
second (``*_rps``, ``*_per_s``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from istiolab.findings import Finding
from istiolab.reprs import HTMLRepr

FORMAT_VERSION = 1
"""Version of the on-disk layout written by :meth:`Result.save`."""

CONSTANT_COLUMNS = ("run_id", "seed", "scenario")
"""Columns every frame starts with; the swept parameters follow them."""


@dataclass(frozen=True)
class Column:
    """One column of a result frame.

    Attributes:
        name: Column name.
        dtype: ``"str"``, ``"int64"``, ``"float64"`` or ``"object"`` (a dict per row).
        unit: Unit, or ``""`` when the column is a label or a count.
        doc: One line saying what the column holds.
    """

    name: str
    dtype: Literal["str", "int64", "float64", "object"]
    unit: str
    doc: str


def _c(
    name: str, dtype: Literal["str", "int64", "float64", "object"], unit: str, doc: str
) -> Column:
    return Column(name, dtype, unit, doc)


_LATENCY = (
    _c("p50_ms", "float64", "ms", "median latency (HDR, 3 significant figures)"),
    _c("p90_ms", "float64", "ms", "90th percentile latency"),
    _c("p99_ms", "float64", "ms", "99th percentile latency"),
    _c("mean_ms", "float64", "ms", "exact mean latency"),
    _c("max_ms", "float64", "ms", "exact maximum latency"),
)

SCHEMAS: dict[str, tuple[Column, ...]] = {
    "summary": (
        _c("route", "str", "", "Envoy route name"),
        _c("cluster", "str", "", "upstream cluster ('' for a local reply)"),
        _c("version", "str", "", "backend version (subset) label"),
        _c("requests", "int64", "", "client requests started after warm-up"),
        _c("rps", "float64", "1/s", "requests / (duration - warm-up)"),
        _c(
            "success_ratio",
            "float64",
            "",
            "non-5xx ratio: share with 0 < status < 500 (403, 404, 429, 3xx count; see outcomes)",
        ),
        *_LATENCY,
        _c("retries", "int64", "", "retries made for these requests"),
        _c("upstream_requests", "int64", "", "upstream attempts made for these requests"),
        _c("flags", "object", "", "dict: Envoy response flag -> requests carrying it"),
    ),
    "timeseries": (
        _c("t_s", "float64", "s", "start of the interval (requests binned by completion time)"),
        _c("route", "str", "", "Envoy route name"),
        _c("version", "str", "", "version for metric 'share', else ''"),
        _c("metric", "str", "", "rps, success_ratio, p50_ms, p90_ms, p99_ms, share, ..."),
        _c("value", "float64", "per metric", "value (NaN when the interval has no requests)"),
    ),
    "codes": (
        _c("t_s", "float64", "s", "start of the interval"),
        _c("route", "str", "", "Envoy route name"),
        _c("status", "int64", "", "HTTP status sent to the client"),
        _c("flag", "str", "", "Envoy %RESPONSE_FLAGS% string, e.g. 'UF,URX' ('' for none)"),
        _c("count", "int64", "", "requests completed in the interval"),
    ),
    "utilisation": (
        _c("t_s", "float64", "s", "start of the interval"),
        _c("kind", "str", "", "component kind, e.g. 'ingress' or 'pod'"),
        _c("name", "str", "", "component name"),
        _c("az", "str", "", "availability zone"),
        _c("busy", "float64", "servers", "mean busy servers over the samples"),
        _c("capacity", "float64", "servers", "mean capacity over the samples"),
        _c("utilisation", "float64", "", "sum busy / sum capacity"),
        _c("queued", "float64", "requests", "mean requests waiting for a server at the samples"),
    ),
    "stages": (
        _c("route", "str", "", "Envoy route name"),
        _c("cluster", "str", "", "upstream cluster"),
        _c("version", "str", "", "backend version label"),
        _c("stage", "str", "", "pipeline stage, e.g. lb, ingress, router, upstream, backend"),
        _c("requests", "int64", "", "requests that passed the stage (after warm-up)"),
        *_LATENCY,
    ),
    "upstream": (
        _c("cluster", "str", "", "upstream cluster"),
        _c("host", "str", "", "upstream host (pod)"),
        _c("status", "int64", "", "status of the attempt"),
        _c("flag", "str", "", "Envoy response flags of the attempt ('' for none)"),
        _c("attempts", "int64", "", "upstream attempts made after warm-up"),
    ),
    "ingress": (
        _c("ingress_node", "str", "", "ingress node that served the request"),
        _c("az", "str", "", "availability zone of the node"),
        _c("requests", "int64", "", "client requests started after warm-up"),
        _c("rps", "float64", "1/s", "requests / (duration - warm-up)"),
        _c("success_ratio", "float64", "", "non-5xx ratio: share with 0 < status < 500"),
        _c("share", "float64", "", "share of all client requests"),
    ),
    "trace": (
        _c("request_id", "int64", "", "trace id (one per sampled request)"),
        _c("span", "str", "", "span name, unique within a request"),
        _c("parent", "str", "", "parent span name ('' for the root)"),
        _c("start_s", "float64", "s", "span start (simulated time)"),
        _c("end_s", "float64", "s", "span end"),
        _c("tags", "object", "", "dict[str, str] of span tags"),
    ),
    "little": (
        _c("route", "str", "", "Envoy route name ('*' for all routes)"),
        _c("requests", "int64", "", "requests started after warm-up"),
        _c("window_s", "float64", "s", "measured window: duration - warm-up"),
        _c("lambda_rps", "float64", "1/s", "λ = requests / window"),
        _c("w_s", "float64", "s", "W = mean time in system"),
        _c("lambda_w", "float64", "", "λW"),
        _c(
            "l", "float64", "", "L from the time series: in-system time / time (measured intervals)"
        ),
    ),
    "histograms": (
        _c("route", "str", "", "Envoy route name"),
        _c("cluster", "str", "", "upstream cluster"),
        _c("version", "str", "", "backend version label"),
        _c("stage", "str", "", "'total' for end-to-end latency, else the stage name"),
        _c("count", "int64", "", "values recorded"),
        _c("hdr", "str", "µs", "base64 HdrHistogram V2 encoding (values in microseconds)"),
    ),
}
"""Column layout of every frame a :class:`Result` holds, in column order."""

_SUMMARY_METRICS = ("rps", "success_ratio", "p50_ms", "p90_ms", "p99_ms", "share", "retries_per_s")
TIMESERIES_METRICS = (*_SUMMARY_METRICS, "p999_ms", "in_flight")
"""Values of ``timeseries().metric``."""

_ADDED_COLUMNS = frozenset({"queued"})
"""Float columns added after FORMAT_VERSION was last raised: NaN when a saved result lacks them."""

RECOVERY_ERROR_RATE = 0.01
"""Default error-rate objective of a window in :meth:`Result.window_totals` (1 %)."""


def _max_or_nan(values: pd.Series) -> float:
    """The largest non-NaN value, or NaN when there is none."""
    finite = values.dropna()
    return float(finite.max()) if len(finite) else math.nan


OUTCOMES: tuple[str, ...] = (
    "served",
    "redirected",
    "denied",
    "not_found",
    "rate_limited",
    "client_error",
    "failed",
)
"""What a response meant to the person who sent the request (:func:`outcome`), in display order."""

OUTCOME_DOCS: dict[str, str] = {
    "served": "a 1xx or 2xx response: the backend (or a direct response) answered",
    "redirected": "a 3xx: a redirect rule (or the backend) sent the client elsewhere",
    "denied": "a 401 or 403: a deny rule, an authorization policy or an aborting fault refused it",
    "not_found": "a 404: no route matched (Envoy flag NR) or the backend had no such page",
    "rate_limited": "a 429 or the RL flag: a rate limit refused the request",
    "client_error": "any other 4xx (an aborting fault with a 4xx status, a bad request)",
    "failed": "a 5xx, or a reset with no status (0): the request did not get what it asked for",
}
"""One line per :data:`OUTCOMES` value."""


def outcome(status: int, flag: str = "") -> str:
    """Classify a response by what it means, not by whether the proxy did its job.

    ``success_ratio`` counts every status below 500 as a success, so a deny rule answering every
    request with 403 shows a ratio of 1.0; the outcome says "denied" instead.

    Args:
        status: HTTP status sent to the client (0 for a reset without a response).
        flag: Envoy's ``%RESPONSE_FLAGS%`` string, e.g. ``"RL"`` or ``"UF,URX"``.

    Returns:
        One of :data:`OUTCOMES`.

    Example:
        >>> outcome(403, "FI"), outcome(429, "RL"), outcome(301), outcome(503, "UO")
        ('denied', 'rate_limited', 'redirected', 'failed')
    """
    if status <= 0 or status >= 500:
        return "failed"
    if status == 429 or "RL" in flag.split(","):
        return "rate_limited"
    if 300 <= status < 400:
        return "redirected"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    if status >= 400:
        return "client_error"
    return "served"


# pandas 3 parses floats exactly by default and deprecates the option; pandas 2 needs it.
_ROUND_TRIP: dict[str, Any] = (
    {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
)


def _str_dtype() -> Any:
    # pandas 3 has a dedicated string dtype ("str"); pandas 2 stores strings as object.
    return pd.Series([], dtype=str).dtype


def expected_dtype(column: Column) -> str:
    """The dtype name a frame column has, as ``str(series.dtype)`` prints it."""
    return str(_str_dtype()) if column.dtype == "str" else column.dtype


def make_frame(name: str, data: Mapping[str, Iterable[Any]] | None = None) -> pd.DataFrame:
    """Build frame *name* from column data, in schema order and with schema dtypes.

    Args:
        name: A key of :data:`SCHEMAS`.
        data: Column name -> values; ``None`` gives an empty frame with the right columns.

    Returns:
        The frame (without the constant columns).

    Raises:
        KeyError: If *name* is not a known frame.
        ValueError: If *data* has missing or extra columns.
    """
    columns = SCHEMAS[name]
    data = data or {c.name: [] for c in columns}
    names = [c.name for c in columns]
    if set(data) != set(names):
        raise ValueError(
            f"frame {name!r}: expected columns {names}, got {sorted(data)} "
            f"(missing {sorted(set(names) - set(data))}, extra {sorted(set(data) - set(names))})"
        )
    series = {c.name: _cast(data[c.name], c) for c in columns}
    return pd.DataFrame(series, columns=names)


def _cast(values: Iterable[Any], column: Column) -> pd.Series:
    if isinstance(values, np.ndarray) and column.dtype not in ("str", "object"):
        # a numeric column handed over as an array: cast it whole (a list of numpy scalars
        # first would cost a Python object per value)
        return pd.Series(values.astype(column.dtype, copy=False))
    values = list(values)
    if column.dtype == "str":
        return pd.Series(values, dtype=str)
    if column.dtype == "object":
        return pd.Series(values, dtype=object)
    return pd.Series(np.asarray(values, dtype=column.dtype))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def normalise_params(params: Mapping[str, object]) -> dict[str, Any]:
    """Return *params* as JSON-native values (tuples become lists, numpy scalars Python scalars).

    Raises:
        ValueError: If a value cannot be written as JSON, or a name collides with a frame column.
    """
    try:
        out: dict[str, Any] = json.loads(json.dumps(dict(params), default=_jsonable))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"params must be JSON-serialisable (numbers, strings, lists, dicts): {err}"
        ) from err
    reserved = set(CONSTANT_COLUMNS) | {c.name for cols in SCHEMAS.values() for c in cols}
    clash = sorted(set(out) & reserved)
    if clash:
        raise ValueError(
            f"params {clash} collide with result columns; rename them "
            f"(reserved names: {sorted(reserved)})"
        )
    return out


def make_run_id(scenario: str, seed: object, params: Mapping[str, object]) -> str:
    """Short stable id: equal scenario, seed and params give equal ids (runs are deterministic)."""
    text = json.dumps([scenario, seed, dict(params)], sort_keys=True, default=_jsonable)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _hex64(text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return digest if digest != "0" * 16 else "0" * 15 + "1"  # Zipkin rejects an all-zero id


class Result(HTMLRepr):
    """The outcome of one simulation run, as tidy DataFrames with fixed schemas.

    Build it with :meth:`Metrics.result() <istiolab.sim.metrics.Metrics.result>` or :meth:`load`.
    Each accessor returns a new frame whose first columns are ``run_id`` (str), ``seed`` (Int64, or
    object holding a tuple when several replications were merged), ``scenario`` (str) and then one
    column per swept parameter (dtype inferred from the value), followed by the columns below.
    Requests that *start* before the warm-up are left out of every frame except ``timeseries``,
    ``codes`` and ``utilisation``, which cover the whole run so the warm-up shows in plots.
    ``success_ratio`` is the *non-5xx ratio*: the share with 0 < status < 500 (a 4xx, including a
    deny rule's 403, a local 404 ``NR`` or a 429 ``RL``, is a success of the proxy). What the
    responses meant to the client (served, redirected, denied, not found, rate limited, failed)
    is in :meth:`outcomes` and :meth:`outcome_totals`.

    ``summary()`` (one row per route, cluster and version)
        route str; cluster str ('' for a local reply); version str; requests int64;
        rps float64 1/s (over duration − warm-up); success_ratio float64; p50_ms, p90_ms,
        p99_ms float64 ms (HDR, 3 significant figures); mean_ms, max_ms float64 ms (exact);
        retries int64; upstream_requests int64; flags object (dict flag → requests).

    ``timeseries()`` (long: one row per interval, route, version and metric)
        t_s float64 s (interval start; requests binned by completion time); route str;
        version str ('' except for ``share``); metric str; value float64. Metrics: ``rps`` 1/s,
        ``success_ratio``, ``p50_ms``/``p90_ms``/``p99_ms``/``p999_ms`` ms, ``share`` (per version),
        ``retries_per_s`` 1/s, ``in_flight`` (time-average requests in the system, Little's L).

    ``codes()`` (non-zero rows only)
        t_s float64 s; route str; status int64; flag str (the %RESPONSE_FLAGS% string, e.g.
        'UF,URX', '' for none); count int64.

    ``utilisation()`` (intervals with samples)
        t_s float64 s; kind str; name str; az str; busy float64 servers (mean); capacity
        float64 servers (mean; 0 while the node or pod is down); utilisation float64 (sum
        busy / sum capacity); queued float64 requests (mean waiting for a server at the
        samples: queue length over time; NaN from an engine that does not sample queues).

    ``stages()`` (one row per route, cluster, version and stage)
        route str; cluster str; version str; stage str; requests int64; p50_ms, p90_ms,
        p99_ms, mean_ms, max_ms float64 ms.

    ``upstream()`` (upstream attempts after warm-up)
        cluster str; host str; status int64; flag str; attempts int64.

    ``ingress()`` (one row per ingress node)
        ingress_node str; az str; requests int64; rps float64 1/s; success_ratio float64;
        share float64.

    ``trace()`` (sampled spans)
        request_id int64; span str; parent str ('' for the root); start_s float64 s;
        end_s float64 s; tags object (dict[str, str]).

    ``little()`` (one row per route plus '*' for all)
        route str; requests int64; window_s float64 s; lambda_rps float64 1/s; w_s float64 s;
        lambda_w float64; l float64 (from the time series, independently of λ and W).

    ``histograms()`` (one row per route, cluster, version and stage)
        route str; cluster str; version str; stage str ('total' = end-to-end); count int64;
        hdr str µs (base64 HdrHistogram V2, mergeable across runs with :meth:`histogram`).

    Attributes:
        meta: Run metadata: ``run_id``, ``seed``, ``scenario``, ``params``, ``config``
            (duration, warm-up, interval, histogram settings), ``totals`` and ``counters``.
        findings: What compiling the scenario's rules and running it noted (empty for a
            result read back with :meth:`load`).
        scaling: The autoscaler's changes, ``(t_s, service, version, before, after)`` (empty
            for a result read back with :meth:`load`).
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame], meta: Mapping[str, Any]) -> None:
        missing = sorted(set(SCHEMAS) - set(frames))
        extra = sorted(set(frames) - set(SCHEMAS))
        if missing or extra:
            raise ValueError(f"Result frames: missing {missing}, unexpected {extra}")
        for name, frame in frames.items():
            want = [c.name for c in SCHEMAS[name]]
            if list(frame.columns) != want:
                raise ValueError(
                    f"frame {name!r}: expected columns {want}, got {list(frame.columns)}"
                )
        for key in ("run_id", "seed", "scenario", "params"):
            if key not in meta:
                raise ValueError(f"Result meta needs {key!r}")
        self._frames = {name: frames[name] for name in SCHEMAS}
        self.meta: dict[str, Any] = dict(meta)
        self.findings: tuple[Finding, ...] = ()
        self.scaling: list[tuple[float, str, str, int, int]] = []

    # ------------------------------------------------------------------ identity
    @property
    def run_id(self) -> str:
        """Stable id of the run."""
        return str(self.meta["run_id"])

    @property
    def seed(self) -> int | list[int] | None:
        """The seed (or seeds) the run used."""
        seed: int | list[int] | None = self.meta["seed"]
        return seed

    @property
    def scenario(self) -> str:
        """Name of the scenario that was simulated."""
        return str(self.meta["scenario"])

    @property
    def params(self) -> dict[str, Any]:
        """Swept parameters of this run (JSON-native values)."""
        return dict(self.meta["params"])

    # ------------------------------------------------------------------ frames
    def _with_constants(self, name: str) -> pd.DataFrame:
        return self._prepend_constants(self._frames[name])

    def _prepend_constants(self, core: pd.DataFrame) -> pd.DataFrame:
        n = len(core)
        seed = self.meta["seed"]
        if isinstance(seed, list) or (isinstance(seed, int) and not -(2**63) <= seed < 2**63):
            seed_col = pd.Series(
                [tuple(seed) if isinstance(seed, list) else seed] * n, dtype=object
            )
        else:
            seed_col = pd.Series(pd.array([seed] * n, dtype="Int64"))
        cols: dict[str, pd.Series] = {
            "run_id": pd.Series([self.run_id] * n, dtype=str),
            "seed": seed_col,
            "scenario": pd.Series([self.scenario] * n, dtype=str),
        }
        for key, value in self.meta["params"].items():
            # Infer the dtype from one value so an empty frame gets the same dtype as a full one.
            dtype = object if isinstance(value, (list, dict)) else pd.Series([value]).dtype
            cols[key] = pd.Series([value] * n, dtype=dtype)
        constants = pd.DataFrame(cols, index=core.index)
        out = pd.concat([constants, core.copy(deep=True)], axis=1)
        return out

    def summary(self) -> pd.DataFrame:
        """Per route, cluster and version: requests, rate, success, latency, retries, flags."""
        return self._with_constants("summary")

    def timeseries(self) -> pd.DataFrame:
        """Per-interval metrics in long form (``t_s, route, version, metric, value``)."""
        return self._with_constants("timeseries")

    def codes(self) -> pd.DataFrame:
        """Per-interval counts by route, status code and response flags."""
        return self._with_constants("codes")

    def utilisation(self) -> pd.DataFrame:
        """Per-interval utilisation of each sampled ingress node and pod."""
        return self._with_constants("utilisation")

    def stages(self) -> pd.DataFrame:
        """Latency percentiles of each pipeline stage per route, cluster and version."""
        return self._with_constants("stages")

    def upstream(self) -> pd.DataFrame:
        """Upstream attempts per cluster, host, status and flags (retry amplification, pod load)."""
        return self._with_constants("upstream")

    def ingress(self) -> pd.DataFrame:
        """Client requests per ingress node and zone (cross-zone balance)."""
        return self._with_constants("ingress")

    def trace(self) -> pd.DataFrame:
        """Sampled per-request spans (empty unless the run sampled traces)."""
        return self._with_constants("trace")

    def little(self) -> pd.DataFrame:
        """Little's law check: λ, W, λW and L measured independently from the time series."""
        return self._with_constants("little")

    def histograms(self) -> pd.DataFrame:
        """Encoded HDR latency histograms per route, cluster, version and stage."""
        return self._with_constants("histograms")

    def outcomes(self) -> pd.DataFrame:
        """Responses per route by intended outcome (:data:`OUTCOMES`), after the warm-up.

        Derived from :meth:`codes` over the intervals that start at or after the warm-up
        (requests binned by completion time, so the counts can differ from ``requests`` by the
        requests in flight at the warm-up's end). One row per route and outcome, zeros included,
        then the same for route ``'*'`` (all routes).

        Returns:
            The constant columns, then ``route`` str, ``outcome`` str, ``requests`` int64 and
            ``share`` float64 (of the route's responses; NaN for a route without any).
        """
        codes = self._frames["codes"]
        warmup = float(self.meta.get("config", {}).get("warmup_s", 0.0))
        codes = codes[codes["t_s"] >= warmup - 1e-9]
        counts: dict[tuple[str, str], int] = {}
        for route, status, flag, count in zip(
            codes["route"], codes["status"], codes["flag"], codes["count"], strict=True
        ):
            for key in ((str(route), outcome(int(status), str(flag))), ("*", "")):
                counts[key] = counts.get(key, 0) + int(count)
        routes = [*sorted({r for r, _ in counts if r != "*"}), "*"]
        rows: dict[str, list[Any]] = {"route": [], "outcome": [], "requests": [], "share": []}
        for route in routes:
            if route == "*":
                total = counts.get(("*", ""), 0)
            else:
                total = sum(v for (r, _), v in counts.items() if r == route)
            for name in OUTCOMES:
                if route == "*":
                    n = sum(v for (r, o), v in counts.items() if r != "*" and o == name)
                else:
                    n = counts.get((route, name), 0)
                rows["route"].append(route)
                rows["outcome"].append(name)
                rows["requests"].append(n)
                rows["share"].append(n / total if total else float("nan"))
        core = pd.DataFrame(
            {
                "route": pd.Series(rows["route"], dtype=str),
                "outcome": pd.Series(rows["outcome"], dtype=str),
                "requests": np.asarray(rows["requests"], dtype="int64"),
                "share": np.asarray(rows["share"], dtype="float64"),
            }
        )
        return self._prepend_constants(core)

    def outcome_totals(self) -> dict[str, Any]:
        """Whole-run share of each intended outcome, and the plain non-5xx ratio beside them.

        Returns:
            ``responses`` (counted as in :meth:`outcomes`), one share per :data:`OUTCOMES`
            value (they add up to 1), and ``non_5xx_ratio``: the share with 0 < status < 500 over
            the same responses, what ``totals()["success_ratio"]`` measures per request.
        """
        frame = self.outcomes()
        frame = frame[frame["route"] == "*"]
        responses = int(frame["requests"].sum())
        out: dict[str, Any] = {"responses": responses}
        for name, share in zip(frame["outcome"], frame["share"], strict=True):
            out[str(name)] = float(share)
        codes = self._frames["codes"]
        warmup = float(self.meta.get("config", {}).get("warmup_s", 0.0))
        codes = codes[codes["t_s"] >= warmup - 1e-9]
        # status 0 (no response) is a failure, as metrics counts it for success_ratio
        answered = (codes["status"] > 0) & (codes["status"] < 500)
        below = int(codes.loc[answered, "count"].sum())
        out["non_5xx_ratio"] = below / responses if responses else float("nan")
        return out

    def histogram(
        self, *, route: str | None = None, cluster: str | None = None, stage: str = "total"
    ) -> Any:
        """Decode and merge the HDR histograms matching the filters.

        Args:
            route: Only this route (all routes when ``None``).
            cluster: Only this cluster (all when ``None``).
            stage: ``"total"`` for end-to-end latency, else a stage name.

        Returns:
            An ``hdrh.histogram.HdrHistogram`` in microseconds (empty when nothing matches).
        """
        from hdrh.histogram import HdrHistogram

        config = self.meta["config"]
        merged = HdrHistogram(
            config["hdr_lowest_us"], config["hdr_highest_us"], config["significant_figures"]
        )
        frame = self._frames["histograms"]
        mask = frame["stage"] == stage
        if route is not None:
            mask &= frame["route"] == route
        if cluster is not None:
            mask &= frame["cluster"] == cluster
        for encoded in frame.loc[mask, "hdr"]:
            merged.decode_and_add(encoded)
        return merged

    def totals(self) -> dict[str, Any]:
        """Whole-run figures after warm-up.

        Returns:
            ``requests, rps, success_ratio, p50_ms, p90_ms, p99_ms, p999_ms, mean_ms, max_ms,
            retries, upstream_requests, flags`` (percentiles from the merged histogram of all
            routes); ``success_p50_ms, success_p99_ms, success_p999_ms`` (latency of the
            successful requests only); and, for a result of :func:`~istiolab.sim.engine.simulate`,
            the accounting of :mod:`istiolab.sim.accounting`: ``unfinished, rejected,
            in_flight_expected, unfinished_excess, success_ratio_incl_unfinished, rho`` (tier →
            utilisation) and ``queues`` (tier → utilisation, waiting probability, mean wait).
            Every field is listed with its unit in ``docs/outputs.md``.
        """
        return json.loads(json.dumps(self.meta["totals"]))  # type: ignore[no-any-return]

    @property
    def warnings(self) -> list[dict[str, str]]:
        """What makes this run's figures doubtful: ``[{code, message}]`` (empty when none).

        The codes are :data:`istiolab.sim.accounting.WARNING_CODES` (``unstable``,
        ``unfinished``, ``in_flight_limit``, ``short_run``, ``short_warmup``, ``degenerate``).
        """
        return [dict(w) for w in self.meta.get("warnings", [])]

    @property
    def assumptions(self) -> dict[str, Any]:
        """The defaults and costs the run rested on (profile, LB, retries, timeouts, costs).

        Empty for a result built without the engine. See
        :func:`istiolab.sim.accounting.assumptions`.
        """
        return json.loads(json.dumps(self.meta.get("assumptions", {})))  # type: ignore[no-any-return]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The scenario's events, ``[{t_s, kind, target}]`` (plots mark them; empty if none)."""
        return [dict(e) for e in self.meta.get("events", [])]

    def queues(self) -> pd.DataFrame:
        """Per tier: utilisation, waiting probability, mean wait in queue, arrivals, servers.

        Columns: ``tier`` str (``gateway_workers``, ``lb_targets_max``,
        ``backend/<service>/<version>``, ``sidecar/<service>/<version>``); ``rho`` float64
        (busy server-seconds / available server-seconds over [warm-up, end], a time
        integral); ``wait_probability`` float64 (share of arrivals that queued);
        ``mean_wait_ms`` float64 ms (time in queue per arrival); ``arrivals`` int64;
        ``servers`` int64 (at the end). Empty for a result without the accounting.
        """
        queues = self.meta.get("totals", {}).get("queues", {})
        rows = [{"tier": tier, **values} for tier, values in sorted(queues.items())]
        columns = ["tier", "rho", "wait_probability", "mean_wait_ms", "arrivals", "servers"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype(
            {
                "rho": "float64",
                "wait_probability": "float64",
                "mean_wait_ms": "float64",
                "arrivals": "int64",
                "servers": "int64",
            }
        )

    # ------------------------------------------------------------------ windows
    def windows(self) -> pd.DataFrame:
        """The run's metrics windows after the warm-up, one row each (the SLO view over time).

        A window is one time-series interval (``run.metrics_interval_s``) that starts at or
        after the warm-up and ends by the end of the run; requests fall in the window in which
        they *complete*, as in :meth:`timeseries`.

        Columns: ``t_s`` float64 s (window start); ``requests`` int64 (completed in the
        window, every route); ``error_rate`` float64 (share of them with status ≥ 500 or no
        response; NaN for an empty window); ``p99_ms`` float64 ms: the window's p99 for a
        single route, and with several routes the largest route p99 (an upper bound of the
        all-routes p99: a mixture has no more than 1 % of its mass above the largest of its
        components' p99); ``p999_ms`` float64 ms, the same for the p99.9 (NaN in results
        saved before the engines reduced each interval to a p99.9).
        """
        config = self.meta.get("config", {})
        interval = float(config.get("interval_s", 0.0) or 0.0)
        columns = ["t_s", "requests", "error_rate", "p99_ms", "p999_ms"]
        ts = self._frames["timeseries"]
        if interval <= 0 or ts.empty:
            return pd.DataFrame({c: pd.Series([], dtype="float64") for c in columns}).astype(
                {"requests": "int64"}
            )
        warmup, duration = float(config.get("warmup_s", 0.0)), float(config["duration_s"])
        eps = 1e-9 * max(1.0, duration)
        ts = ts[(ts["t_s"] >= warmup - eps) & (ts["t_s"] + interval <= duration + eps)]
        wide = ts[ts["version"] == ""].pivot_table(
            index=["t_s", "route"], columns="metric", values="value", aggfunc="first", dropna=False
        )
        starts = sorted({float(t) for t in ts["t_s"]})
        if wide.empty or not starts:
            return pd.DataFrame({c: pd.Series([], dtype="float64") for c in columns}).astype(
                {"requests": "int64"}
            )
        nan = pd.Series(np.nan, index=wide.index)
        requests = (wide["rps"] * interval).round()
        ok = requests * wide["success_ratio"].fillna(0.0)
        p99 = wide["p99_ms"].where(requests > 0) if "p99_ms" in wide else nan
        p999 = wide["p999_ms"].where(requests > 0) if "p999_ms" in wide else nan
        per = pd.DataFrame({"requests": requests, "ok": ok, "p99": p99, "p999": p999})
        by = per.groupby(level="t_s", sort=True)
        total = by["requests"].sum()
        errors = (total - by["ok"].sum()).clip(lower=0.0)
        frame = pd.DataFrame(
            {
                "t_s": np.asarray(total.index, dtype=np.float64),
                "requests": np.asarray(total, dtype=np.int64),
                "error_rate": np.asarray(errors / total.where(total > 0), dtype=np.float64),
                "p99_ms": np.asarray(by["p99"].max(), dtype=np.float64),
                "p999_ms": np.asarray(by["p999"].max(), dtype=np.float64),
            }
        )
        return frame.reset_index(drop=True)

    def window_totals(
        self,
        *,
        p99_ms: float | None = None,
        error_rate: float = RECOVERY_ERROR_RATE,
        after_s: float | None = None,
    ) -> dict[str, float]:
        """The worst window after the warm-up, and how long the run took to recover.

        Args:
            p99_ms: A window meets the objective only if its p99 (:meth:`windows`) is at most
                this (None: latency does not count).
            error_rate: A window meets the objective only if its error rate is at most this.
            after_s: The disturbance recovery is timed from (default: the first event of the
                run, :attr:`events`).

        Returns:
            ``window_p99_ms_max``, ``window_p999_ms_max`` (ms; NaN without windows or without
            a per-interval p99.9), ``window_error_rate_max`` (the worst non-empty window),
            ``windows`` (count), and ``time_to_recover_s``: with the windows that end after
            the event, the seconds from the event to the start of the window after the *last*
            one that misses the objective, i.e. from which every window to the end of the run
            meets it (an empty window misses it: nothing completed). 0 when no window after the
            event misses it; ``inf`` when the last window of the run misses it; NaN for a run
            without events. The last miss rather than the first good window after a miss: a
            lost zone's fast 502s can stop while the load moved onto the survivors is still
            building a queue, and a window between the two is no recovery.
        """
        frame = self.windows()
        out: dict[str, float] = {
            "window_p99_ms_max": _max_or_nan(frame["p99_ms"]),
            "window_p999_ms_max": _max_or_nan(frame["p999_ms"]),
            "window_error_rate_max": _max_or_nan(frame["error_rate"]),
            "windows": float(len(frame)),
            "time_to_recover_s": math.nan,
        }
        if after_s is None:
            marks = sorted(float(e["t_s"]) for e in self.events)
            after_s = marks[0] if marks else None
        if after_s is None or frame.empty:
            return out
        interval = float(self.meta["config"]["interval_s"])
        later = frame[frame["t_s"] + interval > after_s + 1e-9]
        meets = (later["requests"] > 0) & (later["error_rate"] <= error_rate)
        if p99_ms is not None:
            meets &= later["p99_ms"] <= p99_ms
        flags = [bool(m) for m in meets]
        if all(flags):
            out["time_to_recover_s"] = 0.0
            return out
        last_miss = len(flags) - 1 - flags[::-1].index(False)
        out["time_to_recover_s"] = (
            max(0.0, float(later["t_s"].iloc[last_miss + 1]) - after_s)
            if last_miss + 1 < len(flags)
            else math.inf
        )
        return out

    # ------------------------------------------------------------------ tracing
    def to_zipkin(
        self, *, epoch_s: float = 0.0, unique_across_runs: bool = True
    ) -> list[dict[str, Any]]:
        """The sampled spans as Zipkin v2 JSON (what the seed's tracing sends to ``zipkin:9411``).

        Span ids are derived from (run, request id, span name); a name repeated within a request
        (say, one span per retry) gets a distinct id per occurrence, and a ``parent`` refers to the
        first span of that name. ``POST`` the list to ``http://zipkin:9411/api/v2/spans``.

        Args:
            epoch_s: Wall-clock time (Unix seconds) that simulated time 0 maps to.
            unique_across_runs: 128-bit trace ids (32 hex, as Envoy's B3 ids) whose high half
                comes from the run id, so several runs can share one Zipkin; with ``False``,
                64-bit ids (16 hex) equal to the request id.

        Returns:
            One dict per span: ``traceId`` (32 or 16 hex), ``id`` (16 hex), ``parentId`` (absent
            for a root), ``name``, ``timestamp`` and ``duration`` (integer µs, duration ≥ 1),
            ``localEndpoint.serviceName`` (tag ``service`` or the span name) and string ``tags``.
        """
        run = self.run_id if unique_across_runs else ""
        high = _hex64(f"run/{run}") if unique_across_runs else ""
        spans: list[dict[str, Any]] = []
        seen: dict[tuple[int, str], int] = {}
        frame = self._frames["trace"]
        for rid, name, parent, start, end, tags in zip(
            frame["request_id"],
            frame["span"],
            frame["parent"],
            frame["start_s"],
            frame["end_s"],
            frame["tags"],
            strict=True,
        ):
            request_id = int(rid)
            seen[(request_id, name)] = occurrence = seen.get((request_id, name), 0) + 1
            salted = name if occurrence == 1 else f"{name}#{occurrence}"
            span: dict[str, Any] = {
                "traceId": f"{high}{request_id:016x}",
                "id": _hex64(f"{run}/{request_id}/{salted}"),
            }
            if parent:
                span["parentId"] = _hex64(f"{run}/{request_id}/{parent}")
            span["name"] = name
            span["timestamp"] = round((epoch_s + float(start)) * 1e6)
            span["duration"] = max(1, round((float(end) - float(start)) * 1e6))
            span["localEndpoint"] = {"serviceName": str(tags.get("service", name))}
            span["tags"] = {str(k): str(v) for k, v in tags.items()}
            spans.append(span)
        return spans

    # ------------------------------------------------------------------ I/O
    def save(
        self, directory: str | Path, *, fmt: Literal["auto", "parquet", "csv"] = "auto"
    ) -> Path:
        """Write every frame and ``meta.json`` to *directory* (created if needed).

        Args:
            directory: Target directory.
            fmt: ``"parquet"`` (needs pyarrow), ``"csv"``, or ``"auto"``: parquet when pyarrow
                is installed, else CSV.

        Returns:
            The directory.
        """
        path = Path(directory)
        if fmt == "auto":
            fmt = "parquet" if importlib.util.find_spec("pyarrow") is not None else "csv"
        path.mkdir(parents=True, exist_ok=True)
        for name, frame in self._frames.items():
            out = frame.copy()
            for column in SCHEMAS[name]:
                if column.dtype == "object":
                    out[column.name] = [json.dumps(v, sort_keys=True) for v in out[column.name]]
            if fmt == "parquet":
                out.to_parquet(path / f"{name}.parquet", index=False)
            else:
                out.to_csv(path / f"{name}.csv", index=False)
        meta = {"format_version": FORMAT_VERSION, "format": fmt, **self.meta}
        (path / "meta.json").write_text(json.dumps(meta, indent=2))  # keeps params in order
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Result:
        """Read a result written by :meth:`save`.

        Raises:
            ValueError: If the directory was written by a newer, unknown format version.
        """
        path = Path(directory)
        meta = json.loads((path / "meta.json").read_text())
        version = meta.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path / 'meta.json'}: format_version {version}, expected {FORMAT_VERSION}"
            )
        fmt = meta.pop("format")
        frames: dict[str, pd.DataFrame] = {}
        for name, columns in SCHEMAS.items():
            if fmt == "parquet":
                raw = pd.read_parquet(path / f"{name}.parquet")
            else:
                raw = pd.read_csv(
                    path / f"{name}.csv",
                    dtype={
                        c.name: (str if c.dtype in ("str", "object") else c.dtype) for c in columns
                    },
                    keep_default_na=False,
                    na_values={c.name: [""] for c in columns if c.dtype == "float64"},
                    **_ROUND_TRIP,
                )
            data: dict[str, list[Any]] = {}
            for column in columns:
                if column.name not in raw and column.name in _ADDED_COLUMNS:
                    # a result saved before the column existed: not measured then
                    data[column.name] = [math.nan] * len(raw)
                    continue
                values = list(raw[column.name])
                if column.dtype == "object":
                    values = [json.loads(v) for v in values]
                data[column.name] = values
            frames[name] = make_frame(name, data)
        return cls(frames, meta)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        totals = self.meta.get("totals", {})
        return (
            f"Result(run_id={self.run_id!r}, scenario={self.scenario!r}, seed={self.seed!r}, "
            f"requests={totals.get('requests')}, p99_ms={totals.get('p99_ms')})"
        )
