"""Calibrate a scenario from production: service times from Istio's latency histograms, gateway CPU.

Inputs are what a Prometheus server already has:

* ``istio_request_duration_milliseconds_bucket`` per service and version, as the JSON answer
  of ``/api/v1/query`` for ``sum by (le, destination_service_name, destination_version)
  (rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[5m]))``, or as the
  text exposition format (a scrape of ``/metrics`` or ``/federate``). Each (service, version)
  becomes an *empirical* service-time distribution (:class:`~istiolab.sim.dists.Empirical`,
  ``{kind: empirical, samples_ms: [...]}``): the values at evenly spaced quantiles of the
  bucket CDF, interpolated linearly inside a bucket as Prometheus's ``histogram_quantile``
  does (``promql/quantile.go``: the first bucket starts at 0, a quantile in the ``+Inf``
  bucket is the largest finite bound). Resampling them reproduces the histogram's quantiles.
* The gateway's CPU rate (``sum(rate(container_cpu_usage_seconds_total{container=
  "istio-proxy", pod=~"istio-ingressgateway-.*"}[5m]))``, CPU-seconds per second) and its
  request rate (``sum(rate(istio_requests_total{source_workload="istio-ingressgateway"}
  [5m]))``): their ratio is the CPU time per request, ``ingress.cpu_per_request``.

What this does not know, and the report says: the destination sidecar's duration includes the
time a request queued in the pod, so at high utilisation it overstates the service time; and the
bucket bounds limit the resolution (Istio's defaults are 1, 2, 5, 10, 20, 50, 100, … ms).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DURATION_METRIC",
    "Calibration",
    "Sample",
    "bucket_quantile",
    "calibrate",
    "duration_histograms",
    "parse_prometheus",
    "quantile_samples",
    "total_rate",
]

DURATION_METRIC = "istio_request_duration_milliseconds_bucket"
"""The Istio standard metric whose buckets become service times."""

Buckets = list[tuple[float, float]]
"""Cumulative buckets ``[(upper bound le, cumulative count or rate), ...]``, ``le`` ascending."""


@dataclass(frozen=True)
class Sample:
    """One Prometheus sample: metric name ('' when the query dropped it), labels, value."""

    name: str
    labels: Mapping[str, str]
    value: float


# ---------------------------------------------------------------------------- parsing

_TEXT_LINE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _float(text: str) -> float:
    low = text.strip().lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    return float(text)


def parse_prometheus(text: str) -> list[Sample]:
    """Samples from a Prometheus API JSON answer or from the text exposition format.

    The JSON may be an instant vector (``/api/v1/query``) or a range matrix
    (``/api/v1/query_range``, the last point of each series is used).

    Raises:
        ValueError: For an error answer, an unknown result type or a line that is not a sample.

    Example:
        >>> parse_prometheus('up{job="a"} 1')[0].labels
        {'job': 'a'}
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return _parse_json(stripped)
    out: list[Sample] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _TEXT_LINE.match(line)
        if m is None:
            raise ValueError(f"line {n} is not a Prometheus sample: {line[:80]!r}")
        labels: dict[str, str] = {}
        raw = m.group("labels") or ""
        pos = 0
        while pos < len(raw):
            lm = _LABEL.match(raw, pos)
            if lm is None:
                raise ValueError(f"line {n}: cannot read the labels {raw[:80]!r}")
            labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\\\", "\\")
            pos = lm.end()
        try:
            value = _float(m.group("value"))
        except ValueError:
            raise ValueError(f"line {n}: {m.group('value')!r} is not a number") from None
        out.append(Sample(m.group("name"), labels, value))
    return out


def _parse_json(text: str) -> list[Sample]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError("a Prometheus API answer is a JSON object")
    if doc.get("status") == "error":
        raise ValueError(f"the answer is an error: {doc.get('error', '(no message)')}")
    data = doc.get("data", doc)
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        raise ValueError(
            f"expected a vector or matrix result (data.resultType), got {kind!r}; query "
            "/api/v1/query or /api/v1/query_range"
        )
    out: list[Sample] = []
    for item in result:
        metric = dict(item.get("metric") or {})
        name = str(metric.pop("__name__", ""))
        point = item.get("value") if kind == "vector" else (item.get("values") or [None])[-1]
        if not isinstance(point, list) or len(point) != 2:
            raise ValueError(f"series {metric} has no [time, value] point")
        try:
            value = _float(str(point[1]))
        except ValueError:
            raise ValueError(f"series {metric}: {point[1]!r} is not a number") from None
        out.append(Sample(name, {str(k): str(v) for k, v in metric.items()}, value))
    return out


# ---------------------------------------------------------------------------- histograms


def _service_of(labels: Mapping[str, str]) -> str | None:
    if labels.get("destination_service_name"):
        return labels["destination_service_name"]
    fqdn = labels.get("destination_service")
    return fqdn.split(".", 1)[0] if fqdn else None  # web.default.svc.cluster.local → web


def duration_histograms(
    samples: Iterable[Sample], metric: str = DURATION_METRIC
) -> dict[tuple[str, str], Buckets]:
    """Cumulative buckets per (service, version), summed over any other label.

    Samples named *metric*, or unnamed ones (a ``sum by`` query drops the name) that carry
    ``le``, count. The service is ``destination_service_name``, else the first label of
    ``destination_service``; the version ``destination_version`` ('' when absent or
    ``unknown``).
    """
    acc: dict[tuple[str, str], dict[float, float]] = {}
    for s in samples:
        if s.name not in (metric, "") or "le" not in s.labels:
            continue
        service = _service_of(s.labels)
        if service is None:
            continue
        version = s.labels.get("destination_version", "")
        version = "" if version == "unknown" else version
        try:
            le = _float(s.labels["le"])
        except ValueError:
            continue
        per = acc.setdefault((service, version), {})
        per[le] = per.get(le, 0.0) + s.value
    return {key: sorted(per.items()) for key, per in sorted(acc.items())}


def bucket_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """The *q* quantile of cumulative *buckets*, as Prometheus's ``histogram_quantile``.

    Linear inside the bucket holding the quantile; the first bucket's lower bound is 0 (durations
    are not negative); a quantile in the ``+Inf`` bucket is the largest finite bound.

    Raises:
        ValueError: Without a ``+Inf`` bucket, with fewer than two buckets, or with no
            observations.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within [0, 1], got {q}")
    bs = sorted(buckets)
    if len(bs) < 2 or not math.isinf(bs[-1][0]):
        raise ValueError("a histogram needs at least one finite bucket and the +Inf bucket")
    total = bs[-1][1]
    if not total > 0:
        raise ValueError("the histogram has no observations (all buckets 0)")
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in bs:
        if count >= rank and count > lower_count:
            if math.isinf(le):
                return lower_le  # Prometheus: the upper bound of the last finite bucket
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        if count >= lower_count:  # a non-monotonic bucket (scrape race) is skipped
            lower_le, lower_count = le, count
    return lower_le


def quantile_samples(buckets: Sequence[tuple[float, float]], n: int = 200) -> list[float]:
    """*n* values at the quantiles ``(i + 0.5) / n`` of the buckets: an empirical distribution.

    Resampling them uniformly reproduces the histogram's quantiles to within one ``1/n`` step.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    return [round(bucket_quantile(buckets, (i + 0.5) / n), 4) for i in range(n)]


def total_rate(samples: Iterable[Sample]) -> float:
    """The sum of every sample's value (a ``sum(rate(...))`` answer, or its series summed)."""
    return math.fsum(s.value for s in samples)


# ---------------------------------------------------------------------------- calibration


@dataclass
class Calibration:
    """What :func:`calibrate` derived.

    Attributes:
        overrides: Dotted scenario path → value (what ``--set`` takes).
        report: One line per derived value: where it came from and its quantiles.
        notes: What was left out and why (no traffic, not in the scenario, caveats).
    """

    overrides: dict[str, Any] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def set_lines(self) -> list[str]:
        """``--set`` arguments, one per override (flow-style YAML values, shell-quoted)."""
        out = []
        for path, value in self.overrides.items():
            text = json.dumps(value, separators=(", ", ": "))  # JSON is flow-style YAML
            out.append(f"--set '{path}={text}'")
        return out


def calibrate(
    durations: Iterable[Sample] = (),
    *,
    cpu: Iterable[Sample] | None = None,
    requests: Iterable[Sample] | None = None,
    samples: int = 200,
    known: Mapping[str, Sequence[str]] | None = None,
) -> Calibration:
    """Derive scenario overrides from Prometheus samples.

    Args:
        durations: Samples holding ``istio_request_duration_milliseconds_bucket`` (rates or
            counts; only ratios matter).
        cpu: The gateway's CPU rate samples (CPU-seconds per second), summed.
        requests: The gateway's request-rate samples (requests per second), summed.
        samples: Values per empirical distribution.
        known: Service → its versions in the target scenario; when given, histograms of other
            services or versions are left out with a note, and a histogram without a version
            label applies to every version of its service.

    Returns:
        The overrides, a report line per value and notes.
    """
    cal = Calibration()
    for (service, version), buckets in duration_histograms(durations).items():
        label = f"{service}/{version or '*'}"
        try:
            values = quantile_samples(buckets, samples)
        except ValueError as err:
            cal.notes.append(f"{label}: left out: {err}")
            continue
        versions = [version] if version else []
        if known is not None:
            if service not in known:
                cal.notes.append(f"{label}: left out: the scenario has no service {service}")
                continue
            if not version:
                versions = list(known[service])
            elif version not in known[service]:
                cal.notes.append(
                    f"{label}: left out: service {service} has no version {version} "
                    f"(it has {', '.join(known[service]) or 'none'})"
                )
                continue
        if not versions:
            cal.notes.append(f"{label}: left out: no destination_version label; give --scenario")
            continue
        q = {p: bucket_quantile(buckets, p) for p in (0.5, 0.9, 0.99)}
        finite = [(le, c) for le, c in buckets if not math.isinf(le)]
        above = 1 - finite[-1][1] / buckets[-1][1] if finite else 0.0
        if above > 0.5 / samples:  # at least one of the values sits on the last bound
            cal.notes.append(
                f"{label}: {above:.1%} of requests took longer than the largest finite bucket "
                f"({finite[-1][0]:g} ms) and are put at {finite[-1][0]:g} ms, as "
                "histogram_quantile does: the tail is understated"
            )
        for v in versions:
            cal.overrides[f"services.{service}.versions.{v}.service_time"] = {
                "kind": "empirical",
                "samples_ms": values,
            }
        cal.report.append(
            f"{label}: service time empirical({samples} values) from {len(buckets)} buckets: "
            f"p50 {q[0.5]:.3g} ms, p90 {q[0.9]:.3g} ms, p99 {q[0.99]:.3g} ms"
        )
    if cal.report:
        cal.notes.append(
            "the destination sidecar's duration includes queueing in the pod: measured at high "
            "utilisation it overstates the service time (take a quiet hour's histogram)"
        )
    if (cpu is None) != (requests is None):
        cal.notes.append("gateway CPU needs both the CPU rate and the request rate; left out")
    elif cpu is not None and requests is not None:
        cpu_rate, req_rate = total_rate(cpu), total_rate(requests)
        if not req_rate > 0:
            cal.notes.append("gateway CPU: the request rate is 0; left out")
        else:
            ms = 1000.0 * cpu_rate / req_rate
            cal.overrides["ingress.cpu_per_request"] = f"det({ms:.4g}ms)"
            cal.report.append(
                f"ingress.cpu_per_request: {cpu_rate:.4g} CPU-s/s / {req_rate:.4g} req/s = "
                f"{ms:.4g} ms per request (includes the proxy's idle work: an upper bound at "
                "low load)"
            )
    return cal
