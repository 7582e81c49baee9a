"""Start a real etcd and kube-apiserver (built by ``make -C peers``) for the tests.

:func:`acquire` returns the session's API server, starting it on first use: etcd and
kube-apiserver on 127.0.0.1 only, on free ports, with a throw-away CA and serving certificate
(``openssl``), service-account signing keys, a static token file with two users (``admin`` in
``system:masters``; ``ci-deployer`` with no rights until a test's RBAC gives it some), RBAC and
Node authorization, and etcd's data in a temporary directory. The CRDs that ``make -C peers``
copied from the ``istio.io/api`` and ``sigs.k8s.io/gateway-api`` modules are installed and
awaited until Established.

Every child is stopped on every exit path: :func:`release` at the end of the session, an
``atexit`` hook, SIGTERM/SIGHUP handlers, and ``PR_SET_PDEATHSIG`` (the kernel kills the child
with SIGKILL when the test process dies, even by SIGKILL). Temporary directories go with them.

Where the binaries are missing and cannot be built (no Go), :class:`PeersUnavailableError` says in
one line how to enable the tests; callers turn it into a skip.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "peers"
BIN = PEERS / "bin"
KUBE_APISERVER = BIN / "kube-apiserver"
ETCD = BIN / "etcd"
CRDS = BIN / "crds"
ENABLE_HINT = "run `make peers` (needs Go 1.26+) to build etcd and kube-apiserver"

ADMIN_USER = "admin"
DEPLOYER_USER = "ci-deployer"
"""The limited user: a test's RBAC decides what it may do (the name KMock's 403s use too)."""

START_TIMEOUT = 120.0
"""Seconds for a cold start on a busy 2-core machine (a warm one takes a few)."""


class PeersUnavailableError(Exception):
    """The peers are not built and cannot be built here; the message is the one-line reason."""


# -- building ----------------------------------------------------------------------------------


def find_go() -> str | None:
    """The ``go`` command: on PATH, else the official tarball's place."""
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if default.exists() else None


def built() -> bool:
    """Whether etcd, kube-apiserver and the CRDs are in ``peers/bin``."""
    return KUBE_APISERVER.exists() and ETCD.exists() and (CRDS / ".stamp").exists()


REQUIRE_ENV = "ISTIOLAB_REQUIRE_PEERS"
"""Set (as ``.ci/run`` does) to make unavailable peers a test failure instead of a skip."""


def skip_or_fail(err: PeersUnavailableError) -> NoReturn:
    """Skip the test, saying how to enable it; fail instead where the peers are required."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{err} ({REQUIRE_ENV} is set)", pytrace=False)
    pytest.skip(str(err))


def ensure_built() -> None:
    """Run ``make -C peers`` where Go is installed (a no-op once built), else check the binaries.

    Raises:
        PeersUnavailableError: Binaries missing and no Go or make to build them.
        RuntimeError: The build failed (its last lines are in the message).
    """
    go = find_go()
    make = shutil.which("make")
    if go is None or make is None:
        if built():
            return
        missing = "Go is not installed" if go is None else "make is not installed"
        raise PeersUnavailableError(
            f"peers/bin/kube-apiserver is missing and {missing}: {ENABLE_HINT}"
        )
    BIN.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}"
    # Tests give themselves a temporary HOME; Go's caches must stay the user's real ones, or a
    # rebuild starts from nothing (24 minutes for kube-apiserver on two cores).
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    env.setdefault("GOCACHE", str(real_home / ".cache" / "go-build"))
    env.setdefault("GOMODCACHE", str(real_home / "go" / "pkg" / "mod"))
    env.setdefault("GOPATH", str(real_home / "go"))
    # two pytest-xdist workers may both get here: one builds, the other waits for it
    with open(BIN / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            [make, "-C", str(PEERS), "--no-print-directory", f"GO={go}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"make -C peers failed (exit {done.returncode}):\n{tail}")


# -- child processes ---------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl  # looked up here: the child after fork must not import or allocate much


def _die_with(parent: int) -> None:
    """In the child, before exec: the kernel sends SIGKILL when the parent thread dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@dataclass(eq=False)  # hashed by identity: kept in a set of live children
class Child:
    """One child process, its output going to a log file."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (own session: a Ctrl-C to the test's terminal is ours to handle)."""
        parent = os.getpid()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=lambda: _die_with(parent),
                start_new_session=True,
                close_fds=True,
            )
        _LIVE.add(self)

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after *timeout*; always reaped."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _LIVE.discard(self)

    def tail(self, lines: int = 25) -> str:
        """The last lines of its output, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failed(self, what: str) -> RuntimeError:
        """An error saying *what* went wrong, with the exit code and the output's tail."""
        code = None if self.proc is None else self.proc.poll()
        state = "still running" if code is None else f"exited with {code}"
        return RuntimeError(f"{self.name} {what} ({state}); last output:\n{self.tail()}")


_LIVE: set[Child] = set()
_LIVE_DIRS: set[Path] = set()


def _stop_all() -> None:
    for child in list(_LIVE):
        with contextlib.suppress(Exception):
            child.stop(timeout=5)
    for d in list(_LIVE_DIRS):
        shutil.rmtree(d, ignore_errors=True)
        _LIVE_DIRS.discard(d)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        # die of the same signal, as without us
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


_PREVIOUS: dict[int, Any] = {}


def _install_handlers() -> None:
    if _PREVIOUS or threading.current_thread() is not threading.main_thread():
        return
    atexit.register(_stop_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        _PREVIOUS[sig] = signal.getsignal(sig)
        signal.signal(sig, _on_signal)


# -- certificates, tokens ------------------------------------------------------------------


def _openssl(workdir: Path, *args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PeersUnavailableError(
            "openssl is not installed: install it to run the API-server tests"
        )
    subprocess.run(
        [openssl, *args],
        cwd=workdir,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


def make_pki(workdir: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 and localhost, and service-account keys.

    ECDSA P-256 throughout: fast to generate, and kube-apiserver signs tokens with it (ES256).
    """
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl(
        workdir,
        *("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2"),
        *("-subj", "/CN=istiolab-test-ca"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    _openssl(
        workdir,
        *("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr"),
        *("-subj", "/CN=kube-apiserver"),
    )
    (workdir / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        workdir,
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-set_serial", str(secrets.randbits(63)), "-days", "2"),
        *("-extfile", "server.ext", "-out", "server.crt"),
    )
    _openssl(
        workdir,
        *("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key"),
    )
    _openssl(workdir, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, child: Child, ready: Any, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not child.alive():
            raise child.failed(f"stopped before {what}")
        with contextlib.suppress(OSError, ValueError):
            if ready():
                return
        if time.monotonic() > deadline:
            raise child.failed(f"not {what} after {timeout:.0f} s")
        time.sleep(0.2)


# -- etcd ------------------------------------------------------------------------------------


@dataclass
class Etcd:
    """A one-member etcd on 127.0.0.1, data in *workdir*."""

    workdir: Path
    child: Child
    url: str

    @classmethod
    def start(cls, workdir: Path) -> Etcd:
        """Start it and wait until it answers ``/health``."""
        client, peer = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        child = Child(
            "etcd",
            [
                str(ETCD),
                *("--name", "peers", "--data-dir", str(workdir / "etcd")),
                *("--listen-client-urls", url, "--advertise-client-urls", url),
                *("--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url),
                *("--initial-cluster", f"peers={peer_url}", "--log-level", "warn"),
                # test data in a temp dir: durability buys nothing and costs every write a sync
                "--unsafe-no-fsync",
            ],
            workdir / "etcd.log",
        )
        child.start()

        def healthy() -> bool:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                return bool(json.load(r).get("health") == "true")

        try:
            _wait("healthy", child, healthy)
        except BaseException:
            child.stop()
            raise
        return cls(workdir, child, url)

    def stop(self) -> None:
        """Stop it."""
        self.child.stop()


# -- kube-apiserver ------------------------------------------------------------------------


@dataclass
class ApiServer:
    """A kube-apiserver on 127.0.0.1 and how to talk to it.

    Attributes:
        url: ``https://127.0.0.1:PORT``.
        workdir: Its certificates, token file, kubeconfig and log.
        tokens: Bearer token by user (``admin``, ``ci-deployer``).
        kubeconfig: A kubeconfig with a context per user (``peers-admin``, ``peers-deployer``).
    """

    url: str
    workdir: Path
    child: Child
    tokens: dict[str, str]
    kubeconfig: Path
    _ssl: ssl.SSLContext = field(repr=False)

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signed the serving certificate."""
        return self.workdir / "ca.crt"

    @classmethod
    def start(
        cls, workdir: Path, etcd: Etcd, *, etcd_prefix: str = "/registry", crds: bool = True
    ) -> ApiServer:
        """Start one on *etcd* (under *etcd_prefix*), wait for ``/readyz``, install the CRDs.

        Raises:
            RuntimeError: It did not start or become ready (with its last output).
        """
        workdir.mkdir(parents=True, exist_ok=True)
        make_pki(workdir)
        tokens = {ADMIN_USER: secrets.token_hex(24), DEPLOYER_USER: secrets.token_hex(24)}
        (workdir / "tokens.csv").write_text(
            f'{tokens[ADMIN_USER]},{ADMIN_USER},admin-uid,"system:masters"\n'
            f"{tokens[DEPLOYER_USER]},{DEPLOYER_USER},ci-deployer-uid\n"
        )
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        child = Child(
            "kube-apiserver",
            [
                str(KUBE_APISERVER),
                *("--bind-address=127.0.0.1", f"--secure-port={port}"),
                "--advertise-address=127.0.0.1",
                # the `kubernetes` Service's endpoints may not be loopback: keep none
                "--endpoint-reconciler-type=none",
                f"--etcd-servers={etcd.url}",
                f"--etcd-prefix={etcd_prefix}",
                f"--cert-dir={workdir}",
                f"--tls-cert-file={workdir / 'server.crt'}",
                f"--tls-private-key-file={workdir / 'server.key'}",
                f"--token-auth-file={workdir / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--anonymous-auth=false",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={workdir / 'sa.pub'}",
                f"--service-account-signing-key-file={workdir / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--profiling=false",
            ],
            workdir / "kube-apiserver.log",
        )
        context = ssl.create_default_context(cafile=str(workdir / "ca.crt"))
        server = cls(url, workdir, child, tokens, workdir / "kubeconfig", context)
        child.start()
        try:
            _wait("ready", child, lambda: server.request("GET", "/readyz")[0] == 200)
            server._write_kubeconfig()
            if crds:
                server.install_crds()
        except BaseException:
            child.stop()
            raise
        return server

    def stop(self) -> None:
        """Stop it."""
        self.child.stop()

    # -- talking to it ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str = ADMIN_USER,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One HTTP request as *user*: ``(status, decoded JSON or text)``; never raises on 4xx/5xx.

        Used for set-up (CRDs, RBAC) and readiness; the tests' own reads and writes go through
        the official client (:meth:`api_client`).
        """
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.tokens[user]}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def api_client(self, user: str = ADMIN_USER) -> Any:
        """An official ``kubernetes.client.ApiClient`` authenticated as *user*."""
        from kubernetes import client as k8s

        cfg = k8s.Configuration(host=self.url)
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.api_key = {"BearerToken": f"Bearer {self.tokens[user]}"}
        cfg.retries = 0
        return k8s.ApiClient(cfg)

    def _write_kubeconfig(self) -> None:
        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        users = {"peers-admin": ADMIN_USER, "peers-deployer": DEPLOYER_USER}
        data = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "peers",
                    "cluster": {"server": self.url, "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": u, "user": {"token": self.tokens[u]}} for u in users.values()],
            "contexts": [
                {"name": c, "context": {"cluster": "peers", "user": u}} for c, u in users.items()
            ],
            "current-context": "peers-admin",
        }
        self.kubeconfig.write_text(yaml.safe_dump(data), encoding="utf-8")
        self.kubeconfig.chmod(0o600)

    # -- CRDs --------------------------------------------------------------------------------

    def install_crds(self, directory: Path = CRDS) -> list[str]:
        """Create every object in *directory*'s YAML files and wait until each CRD is Established.

        Besides CRDs, the Gateway API's standard channel ships a ValidatingAdmissionPolicy and
        its binding; they are created too, as ``kubectl apply`` would.

        Returns:
            The CRDs' names.
        """
        paths = {
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): (
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            ),
            ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): (
                "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
            ),
            ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): (
                "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
            ),
        }
        names: list[str] = []
        for path in sorted(directory.rglob("*.yaml")):
            for doc in load_yaml(path):
                key = (doc.get("apiVersion"), doc.get("kind"))
                if key not in paths:
                    raise RuntimeError(f"{path.name}: no rule to install {key[1]} objects")
                status, answer = self.request("POST", paths[key], doc)
                if status not in (200, 201):
                    raise RuntimeError(f"installing {path.name}: HTTP {status}: {answer}")
                if key[1] == "CustomResourceDefinition":
                    names.append(doc["metadata"]["name"])
        self.wait_established(names)
        return names

    def wait_established(self, names: list[str], timeout: float = 60.0) -> None:
        """Wait until every CRD in *names* is Established and its group/versions are served."""
        crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending:
            status, answer = self.request("GET", crd_path)
            if status == 200:
                for item in answer.get("items", []):
                    conds = (item.get("status") or {}).get("conditions") or []
                    if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                        pending.discard(item["metadata"]["name"])
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"CRDs not Established after {timeout:.0f} s: {sorted(pending)}")
            if pending:
                time.sleep(0.2)
        # Established is set when the CRD's handler exists, but discovery follows a moment
        # later, and each resource's storage answers 429 until its watch cache is filled
        crds = {i["metadata"]["name"]: i for i in self.request("GET", crd_path)[1]["items"]}
        for name in names:
            spec = crds[name]["spec"]
            version = next(v["name"] for v in spec["versions"] if v.get("served"))
            path = f"/apis/{spec['group']}/{version}/{spec['names']['plural']}?limit=1"
            while self.request("GET", path)[0] != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not served after {timeout:.0f} s")
                time.sleep(0.2)


def load_yaml(path: Path) -> Iterator[dict[str, Any]]:
    """The non-empty documents of a YAML file (libyaml when present: Istio's is ~1 MB)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        for doc in yaml.load_all(f, Loader=loader):
            if isinstance(doc, dict) and doc:
                yield doc


# -- the session's servers ---------------------------------------------------------------------


@dataclass
class Peers:
    """etcd, the API server with the CRDs and, on demand, one without (same etcd)."""

    root: Path
    etcd: Etcd
    apiserver: ApiServer
    _bare: ApiServer | None = None
    users: int = 0

    def bare(self) -> ApiServer:
        """A second API server without any CRD: a cluster where Istio is not installed.

        It shares etcd under another key prefix, so it is a separate cluster that costs only
        the API server's start-up (started on first use, stopped with the rest).
        """
        if self._bare is None:
            self._bare = ApiServer.start(
                self.root / "bare", self.etcd, etcd_prefix="/registry-bare", crds=False
            )
        return self._bare

    def stop(self) -> None:
        """Stop every process and remove the temporary directory."""
        for server in (self._bare, self.apiserver):
            if server is not None:
                server.stop()
        self.etcd.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        _LIVE_DIRS.discard(self.root)


def start() -> Peers:
    """Build if needed, then start etcd and kube-apiserver with the CRDs (see module docstring).

    Raises:
        PeersUnavailableError: They cannot be built here.
    """
    ensure_built()
    _install_handlers()
    root = Path(tempfile.mkdtemp(prefix="istiolab-peers-"))
    _LIVE_DIRS.add(root)
    try:
        etcd = Etcd.start(root)
        try:
            server = ApiServer.start(root / "apiserver", etcd)
        except BaseException:
            etcd.stop()
            raise
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        _LIVE_DIRS.discard(root)
        raise
    return Peers(root, etcd, server)


_SESSION: Peers | None = None
_SESSION_LOCK = threading.Lock()


def acquire() -> Peers:
    """The process's one set of peers, started on first use; pair with :func:`release`.

    Session fixtures in several conftest files share it, so the session runs one API server.
    """
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = start()
        _SESSION.users += 1
        return _SESSION


def release() -> None:
    """Give back :func:`acquire`'s peers; the last user's release stops them."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            return
        _SESSION.users -= 1
        if _SESSION.users <= 0:
            _SESSION.stop()
            _SESSION = None


def grant(
    server: ApiServer,
    rules: Sequence[Mapping[str, Any]],
    *,
    denied: tuple[tuple[str, str, str], ...] = (),
    name: str = "istiolab-tests",
) -> None:
    """Make *rules* exactly what ``ci-deployer`` may do, cluster-wide, and wait until they hold.

    RBAC is read from the API server's informer cache, so a change takes a moment to apply:
    this waits until SubjectAccessReviews allow the first rule and refuse every
    ``(group, resource, verb)`` in *denied*.
    """
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [dict(r) for r in rules],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEPLOYER_USER}
        ],
    }
    base = "/apis/rbac.authorization.k8s.io/v1"
    for kind, body in (("clusterroles", role), ("clusterrolebindings", binding)):
        status, answer = server.request(
            "PATCH",
            f"{base}/{kind}/{name}?fieldManager=istiolab-tests&force=true",
            body,
            content_type="application/apply-patch+yaml",
        )
        if status not in (200, 201):
            raise RuntimeError(f"RBAC {kind}/{name}: HTTP {status}: {answer}")
    probes = [(g, r, v, False) for g, r, v in denied]
    if rules:
        first = rules[0]
        probes.append((first["apiGroups"][0], first["resources"][0], first["verbs"][0], True))
    deadline = time.monotonic() + 10.0
    for group, resource, verb, allowed in probes:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": DEPLOYER_USER,
                "resourceAttributes": {
                    "group": group,
                    "resource": resource,
                    "verb": verb,
                    "namespace": "default",
                },
            },
        }
        while True:
            status, answer = server.request(
                "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
            )
            if status == 201 and bool(answer.get("status", {}).get("allowed")) == allowed:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"RBAC for {DEPLOYER_USER} not in effect: {verb} {resource}")
            time.sleep(0.05)
