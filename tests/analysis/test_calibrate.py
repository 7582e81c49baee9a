"""``calibrate``: Prometheus histograms to empirical service times, gateway CPU per request."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from istiolab.analysis.calibrate import (
    Sample,
    bucket_quantile,
    calibrate,
    duration_histograms,
    parse_prometheus,
    quantile_samples,
)

# Istio's default buckets of istio_request_duration_milliseconds (telemetry v2 stats filter)
ISTIO_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def _observed(seed: int = 1, n: int = 50_000) -> np.ndarray:
    """Latencies of a lognormal service, mean 40 ms, cv 1 (what production would observe)."""
    rng = np.random.default_rng(seed)
    sigma = math.sqrt(math.log(2.0))  # cv 1
    return rng.lognormal(math.log(40.0) - sigma**2 / 2, sigma, n)


def _api_json(values: np.ndarray, service: str = "web", version: str = "v1") -> str:
    """A /api/v1/query answer of sum by (le, service, version) (rate(...[5m])) over *values*."""
    result = []
    for le in (*ISTIO_BUCKETS, math.inf):
        rate = float(np.count_nonzero(values <= le)) / 300.0  # counts over a 5 min window
        result.append(
            {
                "metric": {
                    "destination_service_name": service,
                    "destination_version": version,
                    "le": "+Inf" if math.isinf(le) else str(le),
                },
                "value": [1700000000.0, repr(rate)],
            }
        )
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


def test_buckets_to_a_distribution_whose_quantiles_reproduce_the_buckets() -> None:
    values = _observed()
    hists = duration_histograms(parse_prometheus(_api_json(values)))
    buckets = hists[("web", "v1")]
    n = 400
    samples = np.array(quantile_samples(buckets, n))
    total = buckets[-1][1]
    for le, count in buckets:
        if math.isinf(le):
            continue
        # the empirical CDF at every bucket bound is the bucket's share, within one 1/n step
        assert np.mean(samples <= le) == pytest.approx(count / total, abs=1.0 / n + 1e-9), le
    # and its median lies where histogram_quantile puts it
    assert float(np.median(samples)) == pytest.approx(bucket_quantile(buckets, 0.5), rel=0.02)
    # the true median of the generated data is inside the bucket that holds it
    true = float(np.median(values))
    assert 20 < true <= 50
    assert 20 < float(np.median(samples)) <= 50


def test_bucket_quantile_as_histogram_quantile() -> None:
    b = [(10.0, 50.0), (20.0, 90.0), (math.inf, 100.0)]
    assert bucket_quantile(b, 0.5) == 10.0  # end of the first bucket
    assert bucket_quantile(b, 0.25) == 5.0  # first bucket starts at 0
    assert bucket_quantile(b, 0.7) == pytest.approx(15.0)  # linear inside (10, 20]
    assert bucket_quantile(b, 0.95) == 20.0  # in +Inf: the largest finite bound
    with pytest.raises(ValueError, match="no observations"):
        bucket_quantile([(10.0, 0.0), (math.inf, 0.0)], 0.5)
    with pytest.raises(ValueError, match=r"\+Inf"):
        bucket_quantile([(10.0, 5.0)], 0.5)


def test_parse_text_exposition_and_matrix() -> None:
    svc = 'destination_service="api.shop.svc.cluster.local",destination_version="unknown"'
    name = "istio_request_duration_milliseconds"
    text = "\n".join(
        [
            f"# HELP {name} Duration",
            f"# TYPE {name} histogram",
            f'{name}_bucket{{{svc},le="10",x="a\\"b"}} 3 1700000000000',
            f'{name}_bucket{{{svc},le="+Inf"}} 4',
            f"{name}_sum{{{svc}}} 30",
        ]
    )
    samples = parse_prometheus(text)
    assert samples[0].labels["x"] == 'a"b'
    assert samples[0].value == 3.0
    hists = duration_histograms(samples)
    assert hists == {("api", ""): [(10.0, 3.0), (math.inf, 4.0)]}
    matrix = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": [[1, "1"], [2, "7"]]}],
        },
    }
    assert parse_prometheus(json.dumps(matrix))[0].value == 7.0
    for bad in ('{"status": "error", "error": "bad query"}', "up{job=} 1", "up x"):
        with pytest.raises(ValueError):
            parse_prometheus(bad)


def test_calibrate_overrides_and_notes() -> None:
    samples = parse_prometheus(_api_json(_observed(), "web", "v1"))
    samples += parse_prometheus(_api_json(_observed(2), "gone", "v1"))
    cpu = [Sample("", {"pod": "gw-1"}, 0.3), Sample("", {"pod": "gw-2"}, 0.1)]
    reqs = [Sample("", {}, 2000.0)]
    cal = calibrate(samples, cpu=cpu, requests=reqs, samples=100, known={"web": ["v1", "v2"]})
    spec = cal.overrides["services.web.versions.v1.service_time"]
    assert spec["kind"] == "empirical"
    assert len(spec["samples_ms"]) == 100
    assert "services.web.versions.v2.service_time" not in cal.overrides  # labelled v1 only
    assert cal.overrides["ingress.cpu_per_request"] == "det(0.2ms)"  # 0.4 CPU-s/s / 2000 req/s
    assert any("gone/v1: left out" in n for n in cal.notes)
    assert any("queueing" in n for n in cal.notes)
    # a histogram without a version label applies to every version of the service
    unversioned = [Sample("", {**s.labels, "destination_version": ""}, s.value) for s in samples]
    cal2 = calibrate(unversioned, known={"web": ["v1", "v2"]})
    assert {
        "services.web.versions.v1.service_time",
        "services.web.versions.v2.service_time",
    } <= set(cal2.overrides)
    assert calibrate(cpu=cpu).overrides == {}  # CPU without the request rate: nothing


def _app() -> typer.Typer:
    from istiolab.cli import calibrate as calibrate_cli

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test app."""

    calibrate_cli.register(app)
    return app


def test_cli_calibrate_patch_applies_to_the_scenario(tmp_path: Path) -> None:
    from istiolab.config.codecs import load_data
    from istiolab.sim.scenario import dump_scenario, load_scenario, mmc_scenario

    sc = mmc_scenario(100, 10, 4, duration_s=1.0, warmup_s=0.2, seed=1, name="cal")
    path = tmp_path / "sc.yaml"
    path.write_text(dump_scenario(sc))
    service, version = sc.services[0].name, sc.services[0].versions[0].name
    durations = tmp_path / "d.json"
    durations.write_text(_api_json(_observed(), service, version))
    runner = CliRunner()
    res = runner.invoke(_app(), ["calibrate", "-d", str(durations), "-s", str(path), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{") :])
    key = f"services.{service}.versions.{version}.service_time"
    patched = load_scenario(path).with_overrides(doc["overrides"])
    st = patched.services[0].versions[0].service_time
    assert st.kind == "empirical"
    # the --set form carries the same value
    res = runner.invoke(_app(), ["calibrate", "-d", str(durations), "--samples", "20"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("--set"))
    p, _, v = line[len("--set '") : -1].partition("=")
    assert p == key
    assert load_data(v)["kind"] == "empirical"
    # usage errors: exit 2 without a traceback; nothing derived: exit 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"status": "error", "error": "parse error"}')
    for args in (
        ["-d", str(bad)],
        ["-d", str(tmp_path / "missing")],
        [],
        ["-f", "xml", "-d", str(durations)],
    ):
        res = runner.invoke(_app(), ["calibrate", *args])
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert runner.invoke(_app(), ["calibrate", "-d", str(empty)]).exit_code == 1
