"""lint's output formats: SARIF 2.1.0 for code scanning, GitHub annotations, stable JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from istiolab.findings import CODES
from lint_outputs.common import (
    BAD_SUBSET,
    GATEWAY,
    SHADOWED,
    cli,
    column_of,
    lint_json,
    write,
)

# The parts of the SARIF 2.1.0 schema (OASIS, sarif-schema-2.1.0.json) that GitHub code scanning
# reads, written out here from the specification's property tables (§3.13 sarifLog, §3.14 run,
# §3.18-3.19 tool/toolComponent, §3.27 result, §3.28 location, §3.29 physicalLocation, §3.30
# region, §3.49 reportingDescriptor): required properties, types, enums and minimums. The full
# schema is not bundled (no network at test time).
_MESSAGE = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string", "minLength": 1}},
}
_RULE = {
    "type": "object",
    "required": ["id", "shortDescription", "fullDescription", "help", "defaultConfiguration"],
    "properties": {
        "id": {"type": "string", "pattern": "^IL[0-9]{3}$"},
        "shortDescription": _MESSAGE,
        "fullDescription": _MESSAGE,
        "help": _MESSAGE,
        "defaultConfiguration": {
            "type": "object",
            "properties": {"level": {"enum": ["none", "note", "warning", "error"]}},
        },
    },
}
_REGION = {
    "type": "object",
    "required": ["startLine"],
    "properties": {
        "startLine": {"type": "integer", "minimum": 1},
        "startColumn": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}
_RESULT = {
    "type": "object",
    "required": ["ruleId", "ruleIndex", "level", "message", "locations"],
    "properties": {
        "ruleId": {"type": "string"},
        "ruleIndex": {"type": "integer", "minimum": 0},
        "level": {"enum": ["none", "note", "warning", "error"]},
        "message": _MESSAGE,
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "physicalLocation": {
                        "type": "object",
                        "required": ["artifactLocation"],
                        "properties": {
                            "artifactLocation": {
                                "type": "object",
                                "required": ["uri"],
                                # a relative reference, or an absolute file URI
                                "properties": {
                                    "uri": {
                                        "type": "string",
                                        "pattern": "^([^/:]+/)*[^/:]+$|^file:///",
                                    }
                                },
                            },
                            "region": _REGION,
                        },
                    },
                    "logicalLocations": {"type": "array"},
                },
            },
        },
        "suppressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"enum": ["inSource", "external"]}},
            },
        },
    },
}
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {"rules": {"type": "array", "items": _RULE}},
                            }
                        },
                    },
                    "results": {"type": "array", "items": _RESULT},
                },
            },
        },
    },
}


def sarif(*args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("lint", *args, "--format", "sarif")
    assert out, err
    log = json.loads(out)
    jsonschema.validate(log, SARIF_SUBSET)
    return code, log


@pytest.fixture
def shadowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # SARIF paths are relative to the working folder
    return write(tmp_path, "routes/shop.yaml", GATEWAY, SHADOWED)


def test_sarif_rules_are_every_code_with_its_help(shadowed: Path) -> None:
    _, log = sarif(shadowed)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CODES)
    for r in rules:
        c = CODES[r["id"]]
        assert r["shortDescription"]["text"] == c.title
        assert r["help"]["text"] == c.doc
        level = {"error": "error", "warning": "warning", "info": "note"}[c.severity.value]
        assert r["defaultConfiguration"]["level"] == level


def test_sarif_results_point_at_the_field(shadowed: Path) -> None:
    code, log = sarif(shadowed)
    assert code == 0  # warnings only
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = {r["ruleId"]: r for r in run["results"]}
    assert set(results) == {"IL207", "IL208"}
    for rule_id, name in (("IL208", "api-v2"), ("IL207", "late")):
        r = results[rule_id]
        assert rules[r["ruleIndex"]]["id"] == rule_id
        assert r["level"] == "warning"
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "routes/shop.yaml"
        # the finding is about spec.http[i]: the route's first key, "name: ..."
        line, col = column_of(shadowed, f"name: {name}")
        assert loc["region"] == {"startLine": line, "startColumn": col}
        assert "istiolab explain" in r["message"]["text"]


def test_sarif_column_of_a_nested_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "web.yaml", BAD_SUBSET)
    code, log = sarif(path)
    assert code == 1
    (r,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "IL203"]
    assert r["level"] == "error"
    line, col = column_of(path, "subset: v3")
    assert r["locations"][0]["physicalLocation"]["region"] == {
        "startLine": line,
        "startColumn": col,
    }


def test_sarif_uri_outside_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    path = write(tmp_path, "web.yaml", BAD_SUBSET)
    _, log = sarif(path)
    (r,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "IL203"]
    uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == path.resolve().as_uri()


def test_sarif_of_a_clean_config_has_no_results(tmp_path: Path) -> None:
    path = write(tmp_path, "ok.yaml", GATEWAY)
    code, log = sarif(path)
    assert code == 0
    assert log["runs"][0]["results"] == []


def test_github_annotations(shadowed: Path, tmp_path: Path) -> None:
    code, out, err = cli("lint", shadowed, "--format", "github")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    line, col = column_of(shadowed, "name: api-v2")
    head = f"::warning file=routes/shop.yaml,line={line},col={col},title=IL208 "
    (shadow,) = [x for x in lines if x.startswith(head)]
    # properties escape ':' and ','; the message escapes newlines (the provenance line)
    title, message = shadow[len("::warning ") :].split("::", 1)
    assert "title=IL208 VirtualService/default/shop spec.http[1]" in title
    assert "%0Aa request to http%3A" not in message
    assert "%0Aa request to http://" in message
    assert "\n" not in message
    assert "2 finding(s): 0 error(s), 2 warning(s), 0 info; 0 suppressed" in err


def test_github_escapes_percent_and_commas_in_properties(tmp_path: Path) -> None:
    path = write(tmp_path, "50%,off.yaml", BAD_SUBSET)
    code, out, _ = cli("lint", path, "--format", "github")
    assert code == 1
    (line,) = [x for x in out.splitlines() if "IL203" in x]
    assert line.startswith("::error file=")
    assert "50%25%2Coff.yaml" in line


def test_json_is_the_stable_format(shadowed: Path) -> None:
    code, doc = lint_json(shadowed)
    assert code == 0
    assert set(doc) == {"findings", "summary"}
    assert doc["summary"] == {
        "findings": 2,
        "error": 0,
        "warning": 2,
        "info": 0,
        "suppressed": 0,
    }
    keys = {"code", "severity", "resource", "path", "file", "line", "message", "fix"}
    for f in doc["findings"]:
        assert keys <= set(f)
        assert f["explain"].startswith("a request to http://shop.example.com/")


def test_unknown_format_is_a_usage_error(shadowed: Path) -> None:
    code, _, err = cli("lint", shadowed, "--format", "xml")
    assert code == 2
    assert "table, json, sarif, github" in err
