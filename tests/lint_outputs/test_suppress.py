"""Suppression that lives with the config: annotation, settings file, --suppress, --fail-on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from istiolab.config import load
from istiolab.config.suppress import (
    PathRule,
    Settings,
    SettingsError,
    annotated_codes,
    apply,
    exit_failed,
    find_settings,
    load_settings,
    unannotated,
)
from istiolab.config.validate import validate
from istiolab.findings import Finding, Severity, finding
from lint_outputs.common import BAD_SUBSET, GATEWAY, SHADOWED, cli, lint_json, write

ANNOTATED = SHADOWED.replace(
    "  name: shop\n",
    "  name: shop\n"
    "  annotations:\n"
    "    istiolab.io/suppress: IL207, il208\n"
    "    istiolab.io/suppress-reason: the old API stays until the v2 clients move\n",
)


def f(code: str, file: str | None = "a.yaml", resource: str = "VirtualService/d/x") -> Finding:
    return finding(code, resource, "spec.http[0]", "m", "fix it", file=file, line=3)


# -- the core, on findings ------------------------------------------------------------------


def test_annotation_suppresses_with_its_reason(tmp_path: Path) -> None:
    config = load(write(tmp_path, "shop.yaml", GATEWAY, ANNOTATED))
    # the analyzer hides annotated codes; without the annotations they come back to be counted
    assert validate(config) == []
    plain = unannotated(config)
    found = validate(plain)
    assert sorted(x.code for x in found) == ["IL207", "IL208"]
    out = apply(found, annotated=annotated_codes(config))
    assert out.findings == []
    assert [s.finding for s in out.suppressed] == found
    assert {s.reason for s in out.suppressed} == {"the old API stays until the v2 clients move"}
    assert all(s.by == "annotation istiolab.io/suppress" for s in out.suppressed)


def test_unannotated_changes_nothing_else(tmp_path: Path) -> None:
    config = load(write(tmp_path, "shop.yaml", GATEWAY, ANNOTATED))
    plain = unannotated(config)
    (vs,) = [r for r in plain if r.kind == "VirtualService"]
    assert vs.metadata.annotations == {
        "istiolab.io/suppress-reason": "the old API stays until the v2 clients move"
    }
    assert plain.origins == config.origins
    clean = load(write(tmp_path, "gw.yaml", GATEWAY))
    assert unannotated(clean) is clean


def test_command_line_codes() -> None:
    out = apply([f("IL207"), f("IL208")], codes=[" il207 ", ""])
    assert [x.code for x in out.findings] == ["IL208"]
    assert out.suppressed[0].by == "command line --suppress"


@pytest.mark.parametrize(
    ("glob", "file", "hit"),
    [
        ("legacy/**", "legacy/a/b.yaml", True),
        ("legacy/**", "other/legacy.yaml", False),
        ("legacy/*.yaml", "legacy/a/b.yaml", False),  # '*' stays in one folder
        ("legacy/*.yaml", "legacy/b.yaml", True),
        ("*.generated.yaml", "deep/er/x.generated.yaml", True),  # a bare name: any folder
        ("*.generated.yaml", "x.generated.yml", False),
        ("**/gw?.yaml", "gw1.yaml", True),
        ("./routes/gw.yaml", "routes/gw.yaml", True),
    ],
)
def test_path_globs(tmp_path: Path, glob: str, file: str, hit: bool) -> None:
    rule = PathRule(frozenset({"IL207"}), (glob,), base=tmp_path)
    assert rule.matches(f("IL207", file=str(tmp_path / file))) is hit
    assert not rule.matches(f("IL208", file=str(tmp_path / file)))


def test_severity_override_comes_before_suppression() -> None:
    settings = Settings(severity={"IL207": Severity.ERROR, "IL203": Severity.INFO})
    out = apply([f("IL207"), f("IL203"), f("IL208")], settings=settings)
    assert [(x.code, x.severity) for x in out.findings] == [
        ("IL207", Severity.ERROR),
        ("IL203", Severity.INFO),
        ("IL208", Severity.WARNING),
    ]


@pytest.mark.parametrize(
    ("fail_on", "severities", "failed"),
    [
        (Severity.ERROR, [Severity.WARNING, Severity.INFO], False),
        (Severity.ERROR, [Severity.ERROR], True),
        (Severity.WARNING, [Severity.INFO], False),
        (Severity.WARNING, [Severity.WARNING], True),
        (Severity.INFO, [Severity.INFO], True),
        (Severity.INFO, [], False),
    ],
)
def test_fail_on(fail_on: Severity, severities: list[Severity], failed: bool) -> None:
    found = [finding("IL207", "r", "p", "m", "x", severity=s) for s in severities]
    assert exit_failed(found, fail_on) is failed


# -- the settings file ----------------------------------------------------------------------

SETTINGS = textwrap.dedent(
    """\
    fail-on: warning
    severity:
      IL208: info
    suppress:
    - codes: [IL207]
      paths: ["legacy/**"]
      reason: moved in Q3
    - paths: "generated/*.yaml"
    """
)


def test_settings_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, ".istiolab.yaml", SETTINGS)
    s = load_settings(path)
    assert s.source == path
    assert s.fail_on is Severity.WARNING
    assert s.severity == {"IL208": Severity.INFO}
    assert s.rules[0] == PathRule(frozenset({"IL207"}), ("legacy/**",), "moved in Q3", tmp_path)
    assert s.rules[1].codes == frozenset()  # every code
    out = apply(
        [
            f("IL207", file=str(tmp_path / "legacy/a.yaml")),
            f("IL207", file=str(tmp_path / "live/a.yaml")),
            f("IL203", file=str(tmp_path / "generated/x.yaml")),
            f("IL208", file=str(tmp_path / "live/a.yaml")),
        ],
        settings=s,
    )
    assert [(x.code, x.file, x.severity) for x in out.findings] == [
        ("IL207", str(tmp_path / "live/a.yaml"), Severity.WARNING),
        ("IL208", str(tmp_path / "live/a.yaml"), Severity.INFO),
    ]
    assert [x.reason for x in out.suppressed] == ["moved in Q3", ""]


def test_settings_pyproject(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        textwrap.dedent(
            """\
            [project]
            name = "x"

            [tool.istiolab]
            fail-on = "info"
            severity = { IL207 = "error" }

            [[tool.istiolab.suppress]]
            codes = ["IL208"]
            paths = ["*.yaml"]
            """
        ),
    )
    s = load_settings(path)
    assert s.fail_on is Severity.INFO
    assert s.severity == {"IL207": Severity.ERROR}
    assert s.rules == (PathRule(frozenset({"IL208"}), ("*.yaml",), "", tmp_path),)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("fail_on: warning\n", "unknown key 'fail_on'"),
        ("fail-on: fatal\n", "'fatal' is not error, warning or info"),
        ("severity: {IL999: info}\n", "'IL999' is not a finding code"),
        ("suppress: [{codes: [IL207], path: x}]\n", "suppress[0]: unknown key 'path'"),
        ("suppress: [{reason: why}]\n", "give codes, paths or both"),
        ("suppress: {codes: IL207}\n", "suppress must be a list"),
        ("- a\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_settings_errors_name_the_file_and_key(tmp_path: Path, text: str, said: str) -> None:
    path = write(tmp_path, ".istiolab.yaml", text)
    with pytest.raises(SettingsError, match=None) as err:
        load_settings(path)
    assert said in str(err.value)
    assert str(path) in str(err.value)


def test_nearest_settings_file_wins(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_settings(deep) is None or not str(find_settings(deep)).startswith(str(tmp_path))
    write(tmp_path, "pyproject.toml", "[tool.istiolab]\nfail-on = 'info'\n")
    assert find_settings(deep) == (tmp_path / "pyproject.toml").resolve()
    write(tmp_path / "a", "pyproject.toml", "[project]\nname = 'no table'\n")
    assert find_settings(deep) == (tmp_path / "pyproject.toml").resolve()
    write(tmp_path / "a", ".istiolab.yaml", "fail-on: error\n")
    assert find_settings(deep) == (tmp_path / "a" / ".istiolab.yaml").resolve()
    write(tmp_path / "a", "pyproject.toml", "[tool.istiolab]\n")
    assert find_settings(deep) == (tmp_path / "a" / ".istiolab.yaml").resolve()


# -- through the command line ---------------------------------------------------------------


def test_lint_counts_and_shows_suppressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "shop.yaml", GATEWAY, ANNOTATED)
    code, out, _ = cli("lint", path)
    assert code == 0
    assert out.splitlines()[-2:] == [
        "no findings",
        "2 suppressed (--show-suppressed lists them)",
    ]
    code, out, _ = cli("lint", path, "--show-suppressed")
    rows = [x for x in out.splitlines() if " suppressed IL20" in x]
    assert len(rows) == 2
    assert all("the old API stays until the v2 clients move" in x for x in rows)
    code, doc = lint_json(path, "--show-suppressed")
    assert doc["summary"]["suppressed"] == 2
    assert doc["findings"] == []
    assert {s["code"] for s in doc["suppressed"]} == {"IL207", "IL208"}
    assert {s["suppressed_by"] for s in doc["suppressed"]} == {"annotation istiolab.io/suppress"}


def test_lint_fail_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "shop.yaml", GATEWAY, SHADOWED)  # two warnings
    assert cli("lint", path)[0] == 0
    assert cli("lint", path, "--fail-on", "warning")[0] == 1
    assert cli("lint", path, "--fail-on", "info")[0] == 1
    code, _, err = cli("lint", path, "--fail-on", "fatal")
    assert code == 2
    assert "--fail-on must be error, warning or info" in err


def test_lint_reads_the_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "routes/shop.yaml", GATEWAY, SHADOWED)
    write(tmp_path, ".istiolab.yaml", "severity: {IL208: error}\nsuppress: [{codes: IL207}]\n")
    monkeypatch.chdir(tmp_path / "routes")  # found in the parent folder
    code, doc = lint_json(path)
    assert code == 1  # IL208 is an error now
    assert [(x["code"], x["severity"]) for x in doc["findings"]] == [("IL208", "error")]
    assert doc["summary"]["suppressed"] == 1
    # --fail-on on the command line wins over the file's
    write(tmp_path, "other.yaml", "fail-on: info\n")
    assert cli("lint", path, "--config", tmp_path / "other.yaml")[0] == 1
    code, _, _ = cli("lint", path, "--config", tmp_path / "other.yaml", "--fail-on", "error")
    assert code == 0


def test_lint_bad_settings_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "shop.yaml", GATEWAY)
    bad = write(tmp_path, "bad.yaml", "fail-on: sometimes\n")
    code, _, err = cli("lint", path, "--config", bad)
    assert code == 2
    assert f"{bad}: fail-on: 'sometimes' is not error, warning or info" in err
    code, _, err = cli("lint", path, "--config", tmp_path / "missing.yaml")
    assert code == 2
    assert "no such file" in err


def test_explain_suppress_lets_an_error_through(tmp_path: Path) -> None:
    path = write(tmp_path, "web.yaml", BAD_SUBSET)
    code, _, err = cli("explain", path, "--host", "web", "--path", "/")
    assert code == 1
    assert "IL203" in err
    code, out, _ = cli("explain", path, "--host", "web", "--path", "/", "--suppress", "IL203")
    assert code == 0
    assert "outbound|80|v3|web.default.svc.cluster.local" in out
