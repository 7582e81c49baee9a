"""``istiolab convert --out-dir``: the GitOps mode (one file per object, a kustomization, no
passthrough objects, atomic writes, no silent overwrite), and ``lint`` of what it wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed")
ISTIO_FILES = {"gateway-default-istio-ingress.yaml", "virtualservice-default-simple-ingress.yaml"}


def _run(*args: str) -> Any:
    from istiolab.cli.app import app

    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_one_file_per_object_and_a_kustomization(tmp_path: Path) -> None:
    """The seed's Gateway and VirtualService, each alone in its file; its Service and
    extensions/v1beta1 Deployment stay out; the kustomization lists the files; lint is clean."""
    out = tmp_path / "deploy"
    res = _run("convert", SEED, "--out-dir", str(out), "--kustomize")
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {*ISTIO_FILES, "kustomization.yaml"}
    for name in ISTIO_FILES:
        (doc,) = _docs(out / name)
        kind, _, rest = name.removesuffix(".yaml").partition("-")
        assert doc["kind"].lower() == kind
        assert doc["apiVersion"] == "networking.istio.io/v1"
        assert rest == f"default-{doc['metadata']['name']}"
    (kust,) = _docs(out / "kustomization.yaml")
    assert kust["kind"] == "Kustomization"
    assert set(kust["resources"]) == ISTIO_FILES
    lint = _run("lint", str(out))
    assert lint.exit_code == 0, lint.output
    assert "kustomize file" in lint.stderr


def test_passthrough_objects_only_when_asked(tmp_path: Path) -> None:
    res = _run("convert", SEED, "--out-dir", str(tmp_path / "d"), "--include-passthrough")
    assert res.exit_code == 0, res.output
    names = {p.name for p in (tmp_path / "d").iterdir()}
    assert names == {
        *ISTIO_FILES,
        "service-default-httpbin.yaml",
        "deployment-default-httpbin.yaml",
    }
    (dep,) = _docs(tmp_path / "d" / "deployment-default-httpbin.yaml")
    assert dep["apiVersion"] == "extensions/v1beta1"


def test_gateway_api_output(tmp_path: Path) -> None:
    """--to gateway-api: the Gateway API objects, one per file, no passthrough."""
    out = tmp_path / "gapi"
    res = _run("convert", SEED, "--to", "gateway-api", "--out-dir", str(out))
    assert res.exit_code == 0, res.output
    kinds = {d["apiVersion"].split("/")[0] for p in out.iterdir() for d in _docs(p)}
    assert kinds == {"gateway.networking.k8s.io"}
    assert any(p.name.startswith("httproute-") for p in out.iterdir())


def test_existing_files_are_not_overwritten_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    assert _run("convert", SEED, "--out-dir", str(out)).exit_code == 0
    before = {p.name: p.read_text() for p in out.iterdir()}
    again = _run("convert", SEED, "--out-dir", str(out))  # same content: fine, untouched
    assert again.exit_code == 0
    changed = _run("convert", SEED, "--out-dir", str(out), "--modern-defaults")
    assert changed.exit_code == 2
    assert "virtualservice-default-simple-ingress.yaml" in changed.stderr
    assert "--overwrite" in changed.stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # nothing written
    forced = _run("convert", SEED, "--out-dir", str(out), "--modern-defaults", "--overwrite")
    assert forced.exit_code == 0
    vs = (out / "virtualservice-default-simple-ingress.yaml").read_text()
    assert vs != before["virtualservice-default-simple-ingress.yaml"]
    assert "timeout" not in vs
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no temp file left behind


def test_gateway_binds_the_converted_rules(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    res = _run("convert", SEED, "--out-dir", str(out), "--gateway", "istio-system/main")
    assert res.exit_code == 0, res.output
    (gw,) = _docs(out / "gateway-istio-system-main.yaml")
    assert gw["metadata"] == {"name": "main", "namespace": "istio-system"}
    (vs,) = _docs(out / "virtualservice-default-simple-ingress.yaml")
    assert vs["spec"]["gateways"] == ["istio-system/main"]


def test_stale_files_are_named(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    (out / "virtualservice-default-old.yaml").write_text("kind: VirtualService\n")
    res = _run("convert", SEED, "--out-dir", str(out))
    assert res.exit_code == 0
    assert "virtualservice-default-old.yaml" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.yaml", "--out-dir", "d"], "exclude each other"),
        (["--kustomize"], "only apply with --out-dir"),
        (["--overwrite", "--include-passthrough"], "only apply with --out-dir"),
        (["--out-dir", "d", "--only-istio", "--include-passthrough"], "exclude each other"),
        (["--out-dir", "d", "--only-istio", "--to", "gateway-api"], "exclude each other"),
        (["--out-dir", "d", "--gateway", "a/b/c"], "--gateway expects"),
        (["--out-dir", "no/such/parent/d"], "does not exist"),
    ],
)
def test_options_that_do_not_go_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    res = _run("convert", SEED, *args)
    assert res.exit_code == 2
    assert message in res.stderr
    assert not (tmp_path / "d").exists()


def test_stdout_keeps_every_object() -> None:
    """Without --out-dir the output is as before (passthrough objects included)."""
    res = _run("convert", SEED)
    kinds = [d["kind"] for d in yaml.safe_load_all(res.stdout) if d]
    assert sorted(kinds) == ["Deployment", "Gateway", "Service", "VirtualService"]


def test_only_istio(tmp_path: Path) -> None:
    """Only networking.istio.io objects (here the Gateway and the VirtualService)."""
    res = _run("convert", SEED, "--out-dir", str(tmp_path / "d"), "--only-istio")
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "d").iterdir()} == ISTIO_FILES
