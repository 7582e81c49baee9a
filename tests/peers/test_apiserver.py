"""The peers themselves: the versions they say they are, where they listen, the CRDs, RBAC, the
kubeconfig, and that no child outlives the test process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from istiolab.kube.client import KubernetesCluster

from .apiserver import ADMIN_USER, DEPLOYER_USER, PEERS, Peers, grant

pytestmark = [pytest.mark.peers, pytest.mark.xdist_group("peers")]


def _pin(name: str) -> str:
    text = (PEERS / "versions.mk").read_text()
    match = re.search(rf"^{name} := (\S+)$", text, re.M)
    assert match, name
    return match.group(1)


def test_version_is_the_pinned_release(peers: Peers) -> None:
    """``/version`` reports the release in versions.mk (the build stamps it)."""
    status, info = peers.apiserver.request("GET", "/version")
    assert status == 200
    assert info["gitVersion"] == _pin("KUBE_VERSION")
    assert (info["major"], info["minor"]) == (_pin("KUBE_MAJOR"), _pin("KUBE_MINOR"))


def _listening(pid: int) -> set[str]:
    """``addr:port`` of the TCP sockets *pid* listens on (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                continue
            addr, port = cols[1].split(":")
            raw = bytes.fromhex(addr)
            if len(raw) == 4:
                host = ".".join(str(b) for b in raw[::-1])
            else:  # little-endian 32-bit words
                words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                host = b"".join(words).hex()
            out.add(f"{host}:{int(port, 16)}")
    return out


def test_servers_listen_on_loopback_only(peers: Peers) -> None:
    """etcd (client and peer port) and kube-apiserver bind 127.0.0.1 and nothing else."""
    for child in (peers.etcd.child, peers.apiserver.child):
        assert child.proc is not None
        addresses = _listening(child.proc.pid)
        assert addresses, child.name
        assert all(a.startswith("127.0.0.1:") for a in addresses), (child.name, addresses)


def test_istio_and_gateway_api_crds_are_established(peers: Peers) -> None:
    """The real CRDs: Istio's networking kinds at v1/v1beta1/v1alpha3, Gateway API's at v1."""
    status, crds = peers.apiserver.request(
        "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    )
    assert status == 200
    by_name = {c["metadata"]["name"]: c for c in crds["items"]}
    vs = by_name["virtualservices.networking.istio.io"]
    assert [v["name"] for v in vs["spec"]["versions"]] == ["v1", "v1alpha3", "v1beta1"]
    for name in ("gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io"):
        assert name in by_name
    for crd in by_name.values():
        conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conds["Established"] == "True", crd["metadata"]["name"]


def test_official_client_through_the_kubeconfig(peers: Peers) -> None:
    """The written kubeconfig (CA data, token) works for istiolab's adapter as it is."""
    cluster = KubernetesCluster.from_kubeconfig(peers.apiserver.kubeconfig, context="peers-admin")
    assert cluster.served_versions()["VirtualService"] == (
        "networking.istio.io/v1",
        "networking.istio.io/v1beta1",
        "networking.istio.io/v1alpha3",
    )
    assert cluster.list("Node", None) is not None


def test_rbac_decides_what_the_deployer_may_do(peers: Peers) -> None:
    """``ci-deployer`` may do exactly what its ClusterRole says; ``admin`` is system:masters."""
    server = peers.apiserver
    grant(
        server,
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        denied=(("", "nodes", "list"),),
    )
    assert server.request("GET", "/api/v1/pods", user=DEPLOYER_USER)[0] == 200
    status, answer = server.request("GET", "/api/v1/nodes", user=DEPLOYER_USER)
    assert status == 403
    assert f'User "{DEPLOYER_USER}" cannot list resource "nodes"' in answer["message"]
    assert server.request("GET", "/api/v1/nodes", user=ADMIN_USER)[0] == 200


_CHILD = """
import sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from peers import apiserver as a
a._install_handlers()
root = Path(tempfile.mkdtemp(prefix="istiolab-peers-test-"))
a._LIVE_DIRS.add(root)
etcd = a.Etcd.start(root)
print(etcd.child.proc.pid, root, flush=True)
time.sleep(120)
"""


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie (reaped by init shortly) counts as gone
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_children_die_with_the_test_process(peers: Peers, how: signal.Signals) -> None:
    """A test process ended by SIGTERM stops etcd and removes its directory; ended by SIGKILL
    (no handler can run), the kernel kills etcd (PR_SET_PDEATHSIG).
    """
    tests = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(tests=tests)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        pid_text, root = proc.stdout.readline().split()
        pid = int(pid_text)
        assert not _gone(pid, timeout=0.2)
        proc.send_signal(how)
        proc.wait(20)
        assert _gone(pid), f"etcd {pid} outlived its parent ({how.name})"
        if how == signal.SIGTERM:
            assert not Path(root).exists()
        else:
            # nothing can run after SIGKILL: the directory stays (in the temp dir)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
