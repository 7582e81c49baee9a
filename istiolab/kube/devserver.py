"""A local Kubernetes API server for trying the cluster commands: etcd and kube-apiserver.

``istiolab dev-cluster`` runs :class:`DevCluster`: the real etcd and kube-apiserver that ``make
peers`` builds into ``peers/bin`` (from the Go module proxy, pinned in ``peers/versions.mk``),
with Istio's and the Gateway API's CRDs installed, on 127.0.0.1 only. It writes a kubeconfig
whose context (``istiolab-dev``) any istiolab or kubectl command can use. It is an API server
without nodes, controllers or Istio itself: objects are stored, validated by their CRD schemas
and versioned, field ownership and dry runs are real, nothing runs.

Set-up follows the test harness (``tests/peers/apiserver.py``): a throw-away CA and serving
certificate made with ``openssl`` (ECDSA P-256), service-account keys, a static token file
with one user in ``system:masters``, RBAC authorization, etcd's data in a temporary directory.
Every child is started through :func:`istiolab.processes.popen` (the kernel kills it when
istiolab dies, even by SIGKILL), tracked so that SIGTERM/SIGINT stop it, and stopped and reaped
by :meth:`DevCluster.close`; the temporary directory goes with it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from istiolab.errors import IstiolabError

__all__ = [
    "BUILD_HINT",
    "CONTEXT",
    "DevCluster",
    "DevClusterError",
    "PeersNotBuiltError",
    "find_peers",
]

CONTEXT = "istiolab-dev"
"""The kubeconfig context (and cluster, and user) the dev cluster's kubeconfig defines."""

BUILD_HINT = "run `make peers` in the istiolab repository (needs Go) to build them"
START_TIMEOUT_S = 120.0
"""A cold start on a busy two-core machine; a warm one takes a few seconds."""


class DevClusterError(IstiolabError):
    """The dev cluster could not be started (the message says why, with the server's output)."""


class PeersNotBuiltError(DevClusterError):
    """etcd or kube-apiserver is not built; the message says how to build them."""


def find_peers(root: Path | None = None) -> Path:
    """The folder with ``etcd``, ``kube-apiserver`` and ``crds/``.

    Args:
        root: The folder; default ``$ISTIOLAB_PEERS_BIN``, else ``peers/bin`` of the source tree
            istiolab runs from.

    Raises:
        PeersNotBuiltError: When a binary is missing.
    """
    if root is None:
        env = os.environ.get("ISTIOLAB_PEERS_BIN")
        root = Path(env) if env else Path(__file__).resolve().parents[2] / "peers" / "bin"
    missing = [n for n in ("etcd", "kube-apiserver") if not (root / n).is_file()]
    if missing:
        raise PeersNotBuiltError(
            f"{' and '.join(missing)} not found in {root}: {BUILD_HINT} (or set "
            "ISTIOLAB_PEERS_BIN to a folder that has them)"
        )
    return root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(workdir: Path, *args: str) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        raise DevClusterError("openssl is not installed: it makes the dev cluster's certificates")
    done = subprocess.run(
        [tool, *args], cwd=workdir, capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    if done.returncode != 0:
        raise DevClusterError(f"openssl {args[0]} failed: {done.stderr.decode()[-300:]}")


def _make_pki(workdir: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 and localhost, service-account keys."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl(
        workdir,
        *("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7"),
        *("-subj", "/CN=istiolab-dev-ca", "-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    _openssl(
        workdir,
        *("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr"),
        *("-subj", "/CN=kube-apiserver"),
    )
    (workdir / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    _openssl(
        workdir,
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-set_serial", str(secrets.randbits(63)), "-days", "7"),
        *("-extfile", "server.ext", "-out", "server.crt"),
    )
    _openssl(
        workdir,
        *("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key"),
    )
    _openssl(workdir, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")


class DevCluster:
    """etcd and kube-apiserver on 127.0.0.1, with the CRDs; use as a context manager.

    Args:
        kubeconfig: Where to write the kubeconfig (mode 0600).
        peers: The folder with the binaries (:func:`find_peers`).
        port: The API server's port (default: a free one).
        log: Where progress lines go (default: nowhere).
    """

    def __init__(
        self,
        kubeconfig: Path,
        *,
        peers: Path | None = None,
        port: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.bin = find_peers(peers)
        self.kubeconfig = kubeconfig
        self.port = port or _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._log = log or (lambda _: None)
        self._children: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.workdir: Path | None = None
        self._token = secrets.token_hex(24)
        self._ssl: ssl.SSLContext | None = None

    def __enter__(self) -> DevCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start etcd, then kube-apiserver, install the CRDs, write the kubeconfig.

        Raises:
            DevClusterError: A step failed (everything started so far is stopped again).
        """
        from istiolab import processes

        processes.track(self)
        try:
            self.workdir = processes.make_tempdir("dev-cluster-")
            _make_pki(self.workdir)
            etcd_url = self._start_etcd(self.workdir)
            self._start_apiserver(self.workdir, etcd_url)
            self._install_crds()
            self._write_kubeconfig()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL; always reaped) and remove the temp dir."""
        from istiolab import processes

        for _, proc, _ in reversed(self._children):
            processes.stop_process(proc, 0.0)
        self._children.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        processes.untrack(self)

    def alive(self) -> bool:
        """Whether every child still runs."""
        return bool(self._children) and all(p.poll() is None for _, p, _ in self._children)

    def wait(self, poll_s: float = 1.0) -> Iterator[None]:
        """Yield every *poll_s* seconds while the servers run (stops when one exits)."""
        while self.alive():
            yield
            time.sleep(poll_s)

    # -- children --------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], workdir: Path) -> subprocess.Popen[bytes]:
        from istiolab import processes

        log = workdir / f"{name}.log"
        with open(log, "ab") as out:
            proc = processes.popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self._children.append((name, proc, log))
        return proc

    def _wait_until(self, name: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        proc, log = next((p, lg) for n, p, lg in self._children if n == name)
        while True:
            if proc.poll() is not None:
                raise DevClusterError(f"{name} exited with {proc.returncode}: {_tail(log)}")
            with contextlib.suppress(OSError, ValueError):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise DevClusterError(
                    f"{name} not ready after {START_TIMEOUT_S:.0f} s: {_tail(log)}"
                )
            time.sleep(0.2)

    def _start_etcd(self, workdir: Path) -> str:
        client, peer = _free_port(), _free_port()
        url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self._log(f"starting etcd on {url}")
        self._spawn(
            "etcd",
            [
                str(self.bin / "etcd"),
                *("--name", "dev", "--data-dir", str(workdir / "etcd")),
                *("--listen-client-urls", url, "--advertise-client-urls", url),
                *("--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url),
                *("--initial-cluster", f"dev={peer_url}", "--log-level", "warn"),
                "--unsafe-no-fsync",  # data in a temp dir: durability buys nothing here
            ],
            workdir,
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                return bool(json.load(r).get("health") == "true")

        self._wait_until("etcd", healthy)
        return url

    def _start_apiserver(self, workdir: Path, etcd_url: str) -> None:
        (workdir / "tokens.csv").write_text(f'{self._token},admin,admin-uid,"system:masters"\n')
        self._log(f"starting kube-apiserver on {self.url}")
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={workdir}",
                f"--tls-cert-file={workdir / 'server.crt'}",
                f"--tls-private-key-file={workdir / 'server.key'}",
                f"--token-auth-file={workdir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--anonymous-auth=false",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={workdir / 'sa.pub'}",
                f"--service-account-signing-key-file={workdir / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--profiling=false",
            ],
            workdir,
        )
        self._ssl = ssl.create_default_context(cafile=str(workdir / "ca.crt"))
        self._wait_until("kube-apiserver", lambda: self.request("GET", "/readyz")[0] == 200)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request as the admin user: ``(status, JSON or text)``; 4xx/5xx are returned."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def _install_crds(self) -> None:
        import yaml

        crd_dir = self.bin / "crds"
        paths = {
            "CustomResourceDefinition": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "ValidatingAdmissionPolicy": (
                "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
            ),
            "ValidatingAdmissionPolicyBinding": (
                "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
            ),
        }
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        names: list[str] = []
        for path in sorted(crd_dir.rglob("*.yaml")):
            with open(path, encoding="utf-8") as f:
                for doc in yaml.load_all(f, Loader=loader):
                    if not isinstance(doc, dict) or doc.get("kind") not in paths:
                        continue
                    status, answer = self.request("POST", paths[doc["kind"]], doc)
                    if status not in (200, 201, 409):
                        raise DevClusterError(f"installing {path.name}: HTTP {status}: {answer}")
                    if doc["kind"] == "CustomResourceDefinition":
                        names.append(doc["metadata"]["name"])
        self._log(f"installed {len(names)} CRDs (Istio, Gateway API)")
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = set(names)
        while pending and time.monotonic() < deadline:
            _, answer = self.request("GET", paths["CustomResourceDefinition"])
            for item in (answer or {}).get("items", []) if isinstance(answer, dict) else []:
                conds = (item.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                    pending.discard(item["metadata"]["name"])
            time.sleep(0.2 if pending else 0)
        if pending:
            raise DevClusterError(f"CRDs not Established in time: {sorted(pending)[:5]}")

    def _write_kubeconfig(self) -> None:
        from istiolab.config import codecs

        assert self.workdir is not None
        ca = base64.b64encode((self.workdir / "ca.crt").read_bytes()).decode()
        data = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": CONTEXT, "cluster": {"server": self.url, "certificate-authority-data": ca}}
            ],
            "users": [{"name": CONTEXT, "user": {"token": self._token}}],
            "contexts": [
                {
                    "name": CONTEXT,
                    "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"},
                }
            ],
            "current-context": CONTEXT,
        }
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(codecs.dumps([data]))


def _tail(log: Path, lines: int = 10) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])[-1500:]
    except OSError:
        return "(no output)"
