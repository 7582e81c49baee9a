"""``istiolab dev-cluster``: a clear message without the peers; with them, a real API server
that the cluster commands use through the kubeconfig it writes, and that SIGTERM stops whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from istiolab.kube.devserver import find_peers

from . import _seed as seed


def test_without_the_peers_it_says_how_to_build_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from istiolab.cli.app import app

    monkeypatch.setenv("ISTIOLAB_PEERS_BIN", str(tmp_path / "nothing"))
    result = CliRunner().invoke(app, ["dev-cluster", "--kubeconfig", str(tmp_path / "kc")])
    assert result.exit_code == 2, result.output
    assert "make peers" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "kc").exists()


def _built() -> bool:
    try:
        find_peers()
    except Exception:
        return False
    return True


@pytest.mark.peers
@pytest.mark.skipif(not _built(), reason="run `make peers` to build etcd and kube-apiserver")
def test_dev_cluster_serves_apply_and_stops_whole_on_sigterm(tmp_path: Path) -> None:
    """Start it as a user would, apply and roll back through its kubeconfig (the backup
    records the kube-system uid: the admin may read it), then SIGTERM: exit 143, no child
    left, the kubeconfig and the data gone."""
    kc = tmp_path / "dev.kubeconfig"
    env = dict(os.environ, ISTIOLAB_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "istiolab", "dev-cluster", "--kubeconfig", str(kc)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("running"):
                break
        assert kc.exists(), "".join(lines)
        rules = tmp_path / "vs.yaml"
        from istiolab.config import codecs

        vs = seed.virtual_service(50, 50)
        vs["metadata"]["namespace"] = "default"
        vs["spec"]["http"][0]["route"] = [{"destination": {"host": "web"}}]
        rules.write_text(codecs.dumps([vs]))
        run = [sys.executable, "-m", "istiolab"]
        done = subprocess.run(
            [*run, "apply", "-f", str(rules), "--kubeconfig", str(kc), "--yes", "-o", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        import json

        doc = json.loads(done.stdout)
        assert doc["items"][0]["outcome"] == "applied"
        from istiolab.kube import BackupStore

        backup = BackupStore(tmp_path / "home" / "backups").open("istiolab-dev", doc["backupId"])
        assert backup.identity is not None
        assert backup.identity.uid  # kube-system's uid, read as the admin
        undo = subprocess.run(
            [*run, "rollback", "--kubeconfig", str(kc), "--yes"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert undo.returncode == 0, undo.stdout + undo.stderr
        assert "deleted   VirtualService/default/web" in undo.stdout
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2  # etcd and kube-apiserver
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        time.sleep(0.5)
        for pid in children:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
            )
        assert not kc.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
