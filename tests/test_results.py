"""Result: fixed schemas, lossless save/load, Zipkin export, sweep concatenation."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from istiolab.sim.metrics import Metrics
from istiolab.sim.results import (
    CONSTANT_COLUMNS,
    SCHEMAS,
    TIMESERIES_METRICS,
    Result,
    expected_dtype,
    make_frame,
)

FRAMES = tuple(SCHEMAS)
PARAMS = {"weight_v2": 10, "lb": "nlb", "retry_on": ["5xx", "reset"]}


def build(
    *,
    seed: int | list[int] | None = 7,
    params: dict[str, object] | None = None,
    records: bool = True,
) -> Result:
    """A small run touching every collector, with '' labels, NaN intervals and dict columns."""
    m = Metrics(duration_s=6.0, warmup_s=1.0, interval_s=1.0, trace_sample=1.0)
    if records:
        stages = (("lb", 0.0005), ("router", 0.0001), ("upstream", 0.002), ("backend", 0.004))
        for i in range(40):
            t = 0.1 * i
            version = "v2" if i % 4 == 0 else "v1"
            failed = i % 10 == 3
            m.record(
                t_start=t,
                t_end=t + 0.007 + 0.001 * (i % 3),
                route="httpbin",
                cluster=f"outbound|8000|{version}|httpbin.default.svc.cluster.local",
                version=version,
                status=503 if failed else 200,
                flags="UF,URX" if failed else "",
                retries=2 if failed else 0,
                upstream_requests=3 if failed else 1,
                ingress_node=f"ip-10-0-{i % 2}-1",
                az=("us-east-1a", "us-east-1b")[i % 2],
                stages=stages,
            )
            m.record_upstream(
                t=t, cluster="outbound|8000|v1|httpbin", host="10.1.0.4", status=200, flags=""
            )
        m.record(
            t_start=2.0,
            t_end=2.0002,
            route="deny",
            cluster="",
            version="",
            status=404,
            flags="NR",
            retries=0,
            upstream_requests=0,
            ingress_node="ip-10-0-0-1",
            az="us-east-1a",
        )
        for k in range(6):
            m.record_utilisation(
                t=k + 0.5, kind="pod", name="httpbin-v1-0", az="us-east-1a", busy=k / 2, capacity=4
            )
        m.trace_span(
            trace_id=1, span="client", parent=None, start=2.0, end=2.01, tags={"service": "curl"}
        )
        m.trace_span(
            trace_id=1, span="istio-ingress", parent="client", start=2.0005, end=2.0095, tags={}
        )
        m.trace_span(
            trace_id=1, span="upstream", parent="istio-ingress", start=2.001, end=2.004, tags={}
        )
        m.trace_span(
            trace_id=1, span="upstream", parent="istio-ingress", start=2.005, end=2.009, tags={}
        )
        m.trace_span(
            trace_id=2**63 - 1, span="client", parent=None, start=3.0, end=3.0, tags={"a": "b"}
        )
    return m.result(seed=seed, scenario_name="canary", params=PARAMS if params is None else params)


def frame(result: Result, name: str) -> pd.DataFrame:
    df: pd.DataFrame = getattr(result, name)()  # the accessor named *name* (summary, trace, ...)
    return df


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize("records", [True, False])
@pytest.mark.parametrize("name", FRAMES)
def test_exact_columns_and_dtypes(name: str, records: bool) -> None:
    result = build(records=records)
    df = frame(result, name)
    assert list(df.columns) == [*CONSTANT_COLUMNS, *PARAMS, *(c.name for c in SCHEMAS[name])]
    str_dtype = str(pd.Series([], dtype=str).dtype)
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    assert dtypes["run_id"] == str_dtype
    assert dtypes["seed"] == "Int64"
    assert dtypes["scenario"] == str_dtype
    assert dtypes["weight_v2"] == "int64"
    assert dtypes["lb"] == str_dtype
    assert dtypes["retry_on"] == "object"
    for column in SCHEMAS[name]:
        assert dtypes[column.name] == expected_dtype(column), (name, column.name)
    if records:
        assert len(df) > 0, name


def test_schema_is_documented_in_the_class_docstring() -> None:
    doc = Result.__doc__ or ""
    for name, columns in SCHEMAS.items():
        section = re.split(r"``\w+\(\)``", doc.split(f"``{name}()``", 1)[1])[0]
        for column in columns:
            assert re.search(rf"\b{column.name}\b", section), (name, column.name)
    for metric in TIMESERIES_METRICS:
        assert metric in doc


def test_make_frame_rejects_wrong_columns() -> None:
    with pytest.raises(
        ValueError, match=r"frame 'upstream': expected columns .*missing \['attempts'\]"
    ):
        make_frame("upstream", {"cluster": [], "host": [], "status": [], "flag": []})


def test_every_frame_carries_the_run_identity() -> None:
    result = build()
    for name in FRAMES:
        df = frame(result, name)
        assert (df["run_id"] == result.run_id).all()
        assert (df["seed"] == 7).all()
        assert (df["scenario"] == "canary").all()
        assert (df["lb"] == "nlb").all()
        assert all(v == ["5xx", "reset"] for v in df["retry_on"])


def test_summary_and_totals_content() -> None:
    result = build()
    s = result.summary().set_index("version")
    # 10 of the 40 requests start in the warm-up
    requests = s["requests"]
    assert int(requests["v1"]) + int(requests["v2"]) == 30
    assert s.loc["", "flags"] == {"NR": 1}
    assert s.loc["", "cluster"] == ""
    totals = result.totals()
    assert set(totals) == {
        "requests",
        "rps",
        "success_ratio",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p999_ms",
        "success_p50_ms",
        "success_p99_ms",
        "success_p999_ms",
        "mean_ms",
        "max_ms",
        "retries",
        "upstream_requests",
        "flags",
    }
    assert totals["requests"] == 31
    assert totals["rps"] == pytest.approx(31 / 5)
    assert totals["flags"] == {"NR": 1, "UF": 3, "URX": 3}
    assert result.histogram().get_total_count() == 31
    assert result.histogram(route="deny").get_total_count() == 1
    assert result.histogram(stage="backend").get_total_count() == 30
    assert result.histogram().get_value_at_percentile(99) / 1e3 == totals["p99_ms"]


# --------------------------------------------------------------------------- I/O


def assert_same(a: Result, b: Result) -> None:
    for name in FRAMES:
        pd.testing.assert_frame_equal(frame(a, name), frame(b, name), check_exact=True, obj=name)
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)


@pytest.mark.parametrize("seed", [7, [1, 2, 3], None])
def test_csv_round_trip_is_lossless(tmp_path: Path, seed: int | list[int] | None) -> None:
    result = build(seed=seed)
    assert result.timeseries()["value"].isna().any()  # NaN survives
    result.save(tmp_path / "run", fmt="csv")
    assert (tmp_path / "run" / "summary.csv").exists()
    loaded = Result.load(tmp_path / "run")
    assert_same(result, loaded)
    assert loaded.seed == seed


def test_round_trip_of_an_empty_run(tmp_path: Path) -> None:
    result = build(records=False, params={})
    loaded = Result.load(result.save(tmp_path, fmt="csv"))
    assert_same(result, loaded)


def test_auto_format_falls_back_to_csv_without_pyarrow(tmp_path: Path) -> None:
    result = build()
    result.save(tmp_path)
    fmt = json.loads((tmp_path / "meta.json").read_text())["format"]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert fmt == "csv"
    else:
        assert fmt == "parquet"
    assert_same(result, Result.load(tmp_path))


def test_parquet_round_trip_is_lossless(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    result = build()
    result.save(tmp_path, fmt="parquet")
    assert_same(result, Result.load(tmp_path))


def test_load_rejects_another_format_version(tmp_path: Path) -> None:
    build().save(tmp_path, fmt="csv")
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version 99, expected 1"):
        Result.load(tmp_path)


def test_pickle_round_trip() -> None:
    result = build()
    assert_same(result, pickle.loads(pickle.dumps(result)))


# --------------------------------------------------------------------------- identity, sweeps


def test_run_id_is_stable_and_depends_on_inputs() -> None:
    assert build().run_id == build().run_id
    assert build().run_id != build(seed=8).run_id
    assert build().run_id != build(params={"weight_v2": 20}).run_id
    assert re.fullmatch(r"[0-9a-f]{12}", build().run_id)


def test_sweep_is_a_concat() -> None:
    runs = [build(seed=s, params={"weight_v2": w}) for s in (1, 2) for w in (10, 50)]
    summary = pd.concat([r.summary() for r in runs], ignore_index=True)
    assert list(summary.columns[:4]) == ["run_id", "seed", "scenario", "weight_v2"]
    assert summary.groupby(["seed", "weight_v2"]).size().to_dict() == {
        (1, 10): 3,
        (1, 50): 3,
        (2, 10): 3,
        (2, 50): 3,
    }
    assert summary["run_id"].nunique() == 4


def test_params_are_normalised_to_json() -> None:
    result = build(params={"n": np.int64(3), "x": np.float64(0.5), "pair": (1, 2)})
    assert result.params == {"n": 3, "x": 0.5, "pair": [1, 2]}
    assert type(result.params["n"]) is int


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"route": "x"}, r"params \['route'\] collide with result columns"),
        ({"seed": 1}, r"params \['seed'\] collide"),
        ({"obj": object()}, "params must be JSON-serialisable"),
    ],
)
def test_bad_params_are_rejected(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(params=params)


def test_seed_columns() -> None:
    assert build(seed=[1, 2]).summary()["seed"].tolist() == [(1, 2)] * 3
    assert build(seed=None).summary()["seed"].isna().all()
    big = build(seed=2**100)
    assert big.summary()["seed"].tolist() == [2**100] * 3


# --------------------------------------------------------------------------- tracing


def test_zipkin_v2_spans() -> None:
    result = build()
    spans = result.to_zipkin(epoch_s=1_700_000_000.0)
    assert len(spans) == 5
    by_trace: dict[str, list[dict[str, object]]] = {}
    for span in spans:
        assert set(span) <= {
            "traceId",
            "id",
            "parentId",
            "name",
            "timestamp",
            "duration",
            "localEndpoint",
            "tags",
        }
        assert re.fullmatch(r"[0-9a-f]{32}", str(span["traceId"]))
        assert re.fullmatch(r"[0-9a-f]{16}", str(span["id"]))
        assert isinstance(span["timestamp"], int)
        assert isinstance(span["duration"], int)
        assert span["duration"] >= 1
        by_trace.setdefault(str(span["traceId"]), []).append(span)
    assert len(by_trace) == 2
    high = next(iter(by_trace))[:16]
    first = by_trace[f"{high}{1:016x}"]
    named = {s["name"]: s for s in first if s["name"] != "upstream"}
    retries = [s for s in first if s["name"] == "upstream"]
    client, ingress = named["client"], named["istio-ingress"]
    assert "parentId" not in client
    assert ingress["parentId"] == client["id"]
    assert [r["parentId"] for r in retries] == [ingress["id"]] * 2
    assert retries[0]["id"] != retries[1]["id"]  # repeated names get distinct ids
    assert client["timestamp"] == 1_700_000_002_000_000
    assert client["duration"] == 10_000
    assert ingress["duration"] == 9_000
    assert client["localEndpoint"] == {"serviceName": "curl"}
    assert ingress["localEndpoint"] == {"serviceName": "istio-ingress"}
    ids = [s["id"] for s in spans]
    assert len(set(ids)) == len(ids)
    (last,) = by_trace[f"{high}{2**63 - 1:016x}"]
    assert last["duration"] == 1  # a zero-length span rounds up
    assert last["tags"] == {"a": "b"}
    json.dumps(spans)  # plain JSON
    # another run gets other trace ids; 64-bit ids are the request ids
    other = build(seed=8).to_zipkin()
    assert {s["traceId"] for s in other}.isdisjoint(by_trace)
    short = result.to_zipkin(unique_across_runs=False)
    assert sorted({s["traceId"] for s in short}) == [f"{1:016x}", f"{2**63 - 1:016x}"]


def test_trace_ids_must_fit_in_int64() -> None:
    m = Metrics(duration_s=1.0, warmup_s=0.0, interval_s=1.0)
    with pytest.raises(ValueError, match=r"trace_id must be in \[0, 2\*\*63\), got -1"):
        m.trace_span(trace_id=-1, span="client", parent=None, start=0.0, end=0.1, tags={})


def test_trace_frame() -> None:
    trace = build().trace()
    assert trace["request_id"].tolist()[:4] == [1, 1, 1, 1]
    assert trace["parent"].tolist()[:2] == ["", "client"]
    assert trace["tags"].iloc[0] == {"service": "curl"}


# --------------------------------------------------------------------------- display


def test_repr_html_shows_the_summary() -> None:
    result = build()
    html = result._repr_html_()
    assert html is not None
    assert "<table" in html
    assert "canary" in html
    assert "outbound|8000|v2|httpbin.default.svc.cluster.local" in html
    assert result.run_id in repr(result)
