"""``istiolab lint`` through the real console entry (``python -m istiolab``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import istiolab

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "lint"
FIVE = DATA / "five-mistakes.yaml"
SEED_DIR = ROOT / "examples" / "seed"

SEED = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: simple-ingress
  annotations:
    kubernetes.io/ingress.class: istio
spec:
  rules:
  - http:
      paths:
      - path: /.*
        backend:
          serviceName: httpbin
          servicePort: 8000
---
apiVersion: config.istio.io/v1alpha2
kind: RouteRule
metadata:
  name: deny-route
spec:
  destination:
    name: httpbin
  match:
    # Limit this rule to istio ingress pods only
    source:
      name: istio-ingress
      labels:
        istio: ingress
  precedence: 1
  route:
  - weight: 100
  httpFault:
    abort:
      percent: 100
      httpStatus: 403 #Forbidden for all URLs
"""


def line_of(snippet: str, path: Path = FIVE) -> int:
    hits = [i for i, t in enumerate(path.read_text().splitlines(), 1) if snippet in t]
    assert len(hits) == 1, snippet
    return hits[0]


# code, the line's snippet, path, value named in the message
FIVE_MISTAKES = [
    ("IL101", "wieght: 100", "spec.http[0].route[0].wieght", "'wieght'"),
    ("IL104", "timeout: 5 seconds", "spec.http[0].timeout", "'5 seconds'"),
    ("IL201", "route:", "spec.route", "[60, 30] total 90"),
    ("IL203", "subset: v3", "spec.http[0].route[0].destination.subset", "'v3'"),
    ("IL107", "regex: /api/(?!internal).*", "spec.http[0].match[0].uri.regex", "(?!internal)"),
]


def istiolab_cli(
    *args: str, stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "istiolab", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def blocks(stdout: str) -> list[list[str]]:
    """The table output as one 3-line block per finding (head, message, fix)."""
    lines = stdout.splitlines()
    assert "finding(s)" in lines[-1]
    body = lines[:-1]
    assert len(body) % 3 == 0, stdout
    return [body[i : i + 3] for i in range(0, len(body), 3)]


def test_five_mistakes_table() -> None:
    # "route:" occurs once per resource; the RouteRule's is the one after 'name: canary'
    text = FIVE.read_text().splitlines()
    canary = next(i for i, t in enumerate(text, 1) if "name: canary" in t)
    route_line = next(i for i, t in enumerate(text, 1) if i > canary and t.strip() == "route:")

    r = istiolab_cli("lint", "tests/data/lint/five-mistakes.yaml")
    assert r.returncode == 1, r.stdout + r.stderr
    found = blocks(r.stdout)
    assert len(found) == 5
    assert r.stdout.splitlines()[-1] == "5 finding(s): 5 error(s), 0 warning(s), 0 info"
    for (code, snippet, path, value), (head, message, fix) in zip(
        FIVE_MISTAKES, found, strict=True
    ):
        line = route_line if code == "IL201" else line_of(snippet)
        assert head.startswith(f"tests/data/lint/five-mistakes.yaml:{line} "), head
        assert f"five-mistakes.yaml:{line}" in head
        assert f" error   {code} " in head
        assert head.endswith(f"  {path}"), head
        assert value in message
        assert fix.strip().startswith("fix: ")
        assert len(fix.strip()) > len("fix: ")


def test_five_mistakes_json() -> None:
    r = istiolab_cli("lint", str(FIVE), "--format", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert list(doc) == ["findings", "summary"]
    assert doc["summary"] == {"findings": 5, "error": 5, "warning": 0, "info": 0, "suppressed": 0}
    found = doc["findings"]
    assert [f["code"] for f in found] == [m[0] for m in FIVE_MISTAKES]
    for f, (_code, _snippet, path, value) in zip(found, FIVE_MISTAKES, strict=True):
        assert {"code", "severity", "resource", "path", "line", "message", "fix", "file"} <= set(f)
        assert f["severity"] == "error"
        assert f["path"] == path
        assert f["file"] == str(FIVE)
        assert isinstance(f["line"], int)
        assert value in f["message"]
        assert f["fix"]
    assert found[0]["resource"] == "VirtualService/default/unknown-field"
    assert found[0]["line"] == line_of("wieght: 100")


def test_seed_written_out_lints_clean(tmp_path: Path) -> None:
    (tmp_path / "seed.yaml").write_text(SEED, encoding="utf-8")
    r = istiolab_cli("lint", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "no findings"


def test_seed_examples_lint_clean() -> None:
    if not list(SEED_DIR.glob("*.yaml")):
        pytest.skip("examples/seed/ has no YAML yet")
    r = istiolab_cli("lint", "examples/seed/", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [f for f in json.loads(r.stdout)["findings"] if f["severity"] == "error"]


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    r = istiolab_cli("lint", str(missing))
    assert r.returncode == 2
    assert str(missing) in r.stderr
    assert "no such file" in r.stderr


def test_unknown_format_is_a_usage_error() -> None:
    r = istiolab_cli("lint", str(FIVE), "--format", "xml")
    assert r.returncode == 2
    assert "xml" in r.stderr
    assert r.stdout == ""


def test_unknown_profile_is_a_usage_error() -> None:
    r = istiolab_cli("lint", str(FIVE), "--profile", "banana")
    assert r.returncode == 2
    assert "banana" in r.stderr


def test_stdin() -> None:
    r = istiolab_cli("lint", "-", "--format", "json", stdin=FIVE.read_text())
    assert r.returncode == 1
    found = json.loads(r.stdout)["findings"]
    assert len(found) == 5
    assert {f["file"] for f in found} == {"<stdin>"}
    assert istiolab_cli("lint", "-", stdin=SEED).returncode == 0


def test_suppress() -> None:
    r = istiolab_cli(
        "lint", str(FIVE), "--format", "json", "--suppress", "IL101,IL104", "-s", "il107"
    )
    assert r.returncode == 1
    assert [f["code"] for f in json.loads(r.stdout)["findings"]] == ["IL201", "IL203"]
    r = istiolab_cli("lint", str(FIVE), "--suppress", "IL101,IL104,IL107,IL201,IL203")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["no findings", "5 suppressed (--show-suppressed lists them)"]


def test_strict_makes_unknown_kinds_errors(tmp_path: Path) -> None:
    f = tmp_path / "widget.yaml"
    f.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    r = istiolab_cli("lint", str(f))
    assert r.returncode == 0
    assert "warning IL004" in r.stdout
    r = istiolab_cli("lint", str(f), "--strict")
    assert r.returncode == 1
    assert "error   IL004" in r.stdout


def test_profile_is_legacy_when_routerules_are_given(tmp_path: Path) -> None:
    vs = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n"
        "spec:\n  hosts: [httpbin]\n  http:\n  - route:\n"
        "    - {destination: {host: httpbin}, weight: 50}\n"
        "    - {destination: {host: httpbin}, weight: 40}\n"
    )
    f = tmp_path / "vs.yaml"
    f.write_text(vs)
    assert istiolab_cli("lint", str(f)).returncode == 0  # newest profile: nonzero total is fine
    r = istiolab_cli("lint", str(f), "--profile", "1.14")
    assert r.returncode == 1
    assert "IL202" in r.stdout
    (tmp_path / "rule.yaml").write_text(SEED.split("---\n")[1])
    r = istiolab_cli("lint", str(tmp_path))  # a RouteRule in the input selects the 0.2 rules
    assert r.returncode == 1
    assert "IL202" in r.stdout


def test_version() -> None:
    r = istiolab_cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"istiolab {istiolab.__version__}"


@pytest.mark.parametrize("command", ["lint", "convert"])
def test_help_has_examples(command: str) -> None:
    r = istiolab_cli(command, "--help")
    assert r.returncode == 0
    assert "Examples" in r.stdout
    assert f"istiolab {command}" in r.stdout


# -- kustomize and Helm files (issue 19: lint failed on kustomization.yaml)

KUSTOMIZATION = "resources:\n- ingress.yaml\n"


def _gitops_dir(tmp_path: Path) -> Path:
    """A folder as a GitOps repository holds it: config, a kustomization and a Helm chart."""
    root = tmp_path / "deploy"
    (root / "chart" / "templates").mkdir(parents=True)
    for f in SEED_DIR.glob("*.yaml"):
        (root / f.name).write_text(f.read_text())
    (root / "kustomization.yaml").write_text(KUSTOMIZATION)
    (root / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (root / "chart" / "values.yaml").write_text("replicas: 2\n")
    (root / "chart" / "templates" / "vs.yaml").write_text("metadata:\n  name: {{ .Values.n }}\n")
    return root


def test_kustomize_and_chart_files_are_skipped_with_a_note(tmp_path: Path) -> None:
    root = _gitops_dir(tmp_path)
    r = istiolab_cli("lint", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "IL003" not in r.stdout
    assert "IL001" not in r.stdout
    assert f"skipped: {root / 'kustomization.yaml'}: kustomize file" in r.stderr
    assert f"`kubectl kustomize {root}` or use `-k {root}`" in r.stderr
    assert f"skipped: Helm chart {root / 'chart'}/" in r.stderr
    assert f"helm template {root / 'chart'}" in r.stderr


def test_a_kustomization_named_on_the_command_line_is_skipped(tmp_path: Path) -> None:
    root = _gitops_dir(tmp_path)
    r = istiolab_cli("lint", str(root / "kustomization.yaml"), str(root / "ingress.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kustomize file" in r.stderr


def test_a_kustomization_document_is_skipped_not_unknown(tmp_path: Path) -> None:
    doc = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nmetadata:\n  name: k\n"
    (tmp_path / "base.yaml").write_text(doc + "resources: [a.yaml]\n")
    r = istiolab_cli("lint", str(tmp_path), "--format", "json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["findings"] == []
    assert "Kustomization/default/k: kustomize file" in r.stderr


def test_no_input_is_a_usage_error() -> None:
    r = istiolab_cli("lint")
    assert r.returncode == 2
    assert "no input" in r.stderr


def test_dash_k_without_kustomize_or_kubectl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _gitops_dir(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    r = istiolab_cli("lint", "-k", str(root))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"istiolab: -k {root}: neither kustomize nor kubectl is installed; install one, or run "
        "`kustomize build` yourself and pass the result with -f -"
    ]


def test_dash_k_lints_what_kustomize_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in kustomize prints the five mistakes: lint reports them at the build."""
    root = _gitops_dir(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "kustomize"
    tool.write_text(
        f'#!/bin/sh\n[ "$1" = build ] && [ "$2" = "{root}" ] && exec /bin/cat "{FIVE}"\nexit 3\n'
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    r = istiolab_cli("lint", "-k", str(root), "--format", "json")
    assert r.returncode == 1, r.stderr
    found = json.loads(r.stdout)["findings"]
    assert sorted({f["code"] for f in found} & {m[0] for m in FIVE_MISTAKES}) == sorted(
        m[0] for m in FIVE_MISTAKES
    )
    assert {f["file"] for f in found} == {f"{root}/ (kustomize build)"}
    tool.write_text("#!/bin/sh\necho 'Error: accumulating resources: missing.yaml' >&2\nexit 1\n")
    failed = istiolab_cli("lint", "-k", str(root))
    assert failed.returncode == 2
    assert "kustomize failed: Error: accumulating resources: missing.yaml" in failed.stderr
