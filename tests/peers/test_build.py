"""How the peers get built, or why their tests skip (no servers are started here)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from . import apiserver


def test_without_binaries_or_go_the_reason_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apiserver, "find_go", lambda: None)
    monkeypatch.setattr(apiserver, "KUBE_APISERVER", tmp_path / "kube-apiserver")
    with pytest.raises(apiserver.PeersUnavailableError) as info:
        apiserver.ensure_built()
    message = str(info.value)
    assert "\n" not in message
    assert "make peers" in message
    assert "Go is not installed" in message


def test_without_go_built_binaries_are_used_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("kube-apiserver", "etcd", "crds/.stamp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    monkeypatch.setattr(apiserver, "find_go", lambda: None)
    monkeypatch.setattr(apiserver, "KUBE_APISERVER", tmp_path / "kube-apiserver")
    monkeypatch.setattr(apiserver, "ETCD", tmp_path / "etcd")
    monkeypatch.setattr(apiserver, "CRDS", tmp_path / "crds")
    apiserver.ensure_built()  # no build attempted, no error


def test_with_go_make_runs_and_is_a_no_op_once_built() -> None:
    """Where Go is installed the fixture always runs `make -C peers`: cheap when up to date."""
    if apiserver.find_go() is None or not apiserver.built():
        pytest.skip("needs Go and built peers (`make peers`)")
    start = time.monotonic()
    apiserver.ensure_built()
    assert time.monotonic() - start < 5


def test_an_istioctl_that_does_not_build_is_reported_not_fatal(tmp_path: Path) -> None:
    """`make peers` says why istioctl is missing and goes on (its tests then skip)."""
    go = tmp_path / "go"
    calls = tmp_path / "calls"
    go.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'go: pretend the build broke' >&2\nexit 1\n")
    go.chmod(0o755)
    bin_dir = tmp_path / "bin"
    done = subprocess.run(
        ["make", "-C", str(apiserver.PEERS), "istioctl", f"GO={go}", f"BIN={bin_dir}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "istioctl not built" in done.stdout
    assert "go: pretend the build broke" in done.stdout
    assert not (bin_dir / "istioctl").exists()
    assert (bin_dir / ".istioctl.stamp").read_text().strip() == "failed"
    # the failure is remembered and said again, without a second (30-minute) attempt
    again = subprocess.run(
        ["make", "-C", str(apiserver.PEERS), "istioctl", f"GO={go}", f"BIN={bin_dir}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0
    assert "go: pretend the build broke" in again.stdout
    assert calls.read_text().count("x") == 1
