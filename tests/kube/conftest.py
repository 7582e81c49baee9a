"""One behavioural suite, three clusters: KMock over real HTTP, the in-memory cluster, and a real
kube-apiserver with etcd (``tests/peers``; those tests are marked ``peers`` and skip, saying
how to enable them, where the servers cannot be built).

The ``env`` fixture gives each test a fresh cluster of either kind behind the same small
interface: ``cluster`` (the :class:`~istiolab.kube.adapter.ClusterAdapter` under test),
``seed``/``stored`` (the server's state, bypassing the adapter) and ``script_*`` methods for
behaviours a test needs. For KMock, scripted behaviours are answers that follow the Kubernetes
API conventions (see ``_kmock.py``); for the in-memory cluster most are modelled (a conflict
comes from real field ownership), so its ``script_*`` methods only do what the model needs. On
the real server they are real where a server can produce them (see ``_apiserver.py``).

Every test here gets its own ``ISTIOLAB_HOME`` (and ``HOME``) under ``tmp_path``: nothing is
ever written to the real home directory.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from istiolab.kube.kinds import KINDS
from istiolab.kube.memory import DEFAULT_ISTIO_VERSIONS, InMemoryCluster
from peers.apiserver import Peers, PeersUnavailableError, acquire, release, skip_or_fail

from ._apiserver import ApiServerEnv
from ._kmock import KMockServer, script_dry_run, status


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("ISTIOLAB_HOME", str(home / ".istiolab"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)


class KMockEnv:
    """A fresh KMock server; the adapter is the real :class:`KubernetesCluster`."""

    name = "kmock"

    def __init__(self, server: KMockServer, namespace: str) -> None:
        self.server = server
        self.cluster = server.cluster(namespace)

    def seed(self, obj: dict[str, Any], manager: str = "istiolab") -> None:
        self.server.seed(obj)

    def stored(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.server.stored(kind, namespace, name)

    def script_dry_run(self) -> None:
        """KMock has no dry run: scripted (see ``_kmock.script_dry_run``)."""
        script_dry_run(self.server)

    def script_conflict(self, kind: str, name: str, fields: list[str], manager: str) -> None:
        """Scripted: server-side apply of the object answers 409 FieldManagerConflict per field
        (dry run included, as kube-apiserver does), unless forced.
        """
        plural = KINDS[kind].plural
        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{manager}" using networking.istio.io/v1',
                "field": f,
            }
            for f in fields
        ]
        message = f"Apply failed with {len(fields)} conflict(s): " + "; ".join(
            f"{c['message']}: {c['field']}" for c in causes
        )
        self.server.react(
            lambda r: (
                r.method == "PATCH"
                and r.resource is not None
                and r.resource.plural == plural
                and r.name == name
                and r.params.get("force") != "true"
            ),
            409,
            status(409, "Conflict", message, {"name": name, "kind": plural, "causes": causes}),
        )

    def script_forbidden(self, verb: str, kind: str) -> None:
        """Scripted: RBAC refuses *verb* on *kind* with 403 Forbidden."""
        info = KINDS[kind]
        method = {"patch": "PATCH", "delete": "DELETE", "get": "GET", "list": "GET"}[verb]

        def when(r: Any) -> bool:
            if r.method != method or r.resource is None or r.resource.plural != info.plural:
                return False
            return verb != "list" or r.name is None

        ns = self.cluster.namespace
        self.server.react(
            when,
            403,
            status(
                403,
                "Forbidden",
                f'{info.resource()} is forbidden: User "ci-deployer" cannot {verb} resource '
                f'"{info.plural}" in API group "networking.istio.io" in the namespace "{ns}"',
                {"kind": info.plural},
            ),
        )

    def script_failure(self, kind: str, name: str) -> None:
        """Scripted: the (non-dry-run) apply of one object fails with 500, storing nothing."""
        plural = KINDS[kind].plural
        self.server.react(
            lambda r: (
                r.method == "PATCH"
                and r.resource is not None
                and r.resource.plural == plural
                and r.name == name
                and "dryRun" not in r.params
            ),
            500,
            status(500, "InternalError", "Internal error occurred: etcdserver: request timed out"),
        )


class MemoryEnv:
    """An :class:`InMemoryCluster`; conflicts, dry runs and resourceVersions are modelled."""

    name = "memory"

    def __init__(self, cluster: InMemoryCluster) -> None:
        self.cluster = cluster

    def seed(self, obj: dict[str, Any], manager: str = "istiolab") -> None:
        self.cluster.seed(copy.deepcopy(obj), manager=manager)

    def stored(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.cluster.stored(kind, namespace, name)

    def script_dry_run(self) -> None:
        """Modelled: nothing to script."""

    def script_conflict(self, kind: str, name: str, fields: list[str], manager: str) -> None:
        """Modelled: the conflict comes from the seeded object's field ownership."""

    def script_forbidden(self, verb: str, kind: str) -> None:
        self.cluster.deny(verb, kind)

    def script_failure(self, kind: str, name: str) -> None:
        self.cluster.fail("patch", kind, name)


Env = KMockEnv | MemoryEnv | ApiServerEnv
GATEWAY_API_V1_V1BETA1 = ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")
"""What the standard channel's CRDs serve for Gateway, HTTPRoute, ReferenceGrant."""
MAX_REQUESTS = 200


@pytest.fixture(scope="session")
def peers() -> Iterator[Peers]:
    """The session's real etcd and kube-apiserver (shared with ``tests/peers``)."""
    try:
        started = acquire()
    except PeersUnavailableError as err:
        skip_or_fail(err)
    yield started
    release()


APISERVER = pytest.param(
    "apiserver",
    # one pytest-xdist worker runs them all, so the session starts one API server
    marks=[pytest.mark.peers, pytest.mark.xdist_group("peers")],
)


@pytest.fixture(params=["kmock", "memory", APISERVER])
def make_env(request: pytest.FixtureRequest) -> Iterator[Callable[..., Env]]:
    """Factory of fresh clusters of the parametrised kind.

    ``make_env(istio=True, namespace="shop", gateway_api=())``; every KMock server is stopped
    afterwards. On the real server ``istio=False`` is a second API server without CRDs, and the
    Gateway API CRDs (standard channel, v1.6) are always installed: *gateway_api* is honoured
    only where it says so (v1 and v1beta1 served), else the test is skipped.
    """
    servers: list[KMockServer] = []

    def make(
        *, istio: bool = True, namespace: str = "shop", gateway_api: tuple[str, ...] = ()
    ) -> Env:
        if request.param == "apiserver":
            if gateway_api and set(gateway_api) != set(GATEWAY_API_V1_V1BETA1):
                pytest.skip("apiserver: its Gateway API CRDs serve v1 and v1beta1 only")
            running: Peers = request.getfixturevalue("peers")
            return ApiServerEnv(running.apiserver if istio else running.bare(), namespace)
        if request.param == "kmock":
            server = KMockServer(DEFAULT_ISTIO_VERSIONS if istio else (), gateway_api)
            server.__enter__()
            servers.append(server)
            return KMockEnv(server, namespace)
        return MemoryEnv(
            InMemoryCluster(
                context="memory",
                namespace=namespace,
                istio_versions=DEFAULT_ISTIO_VERSIONS if istio else (),
                gateway_api_versions=gateway_api,
            )
        )

    yield make
    for s in servers:
        served = len(s.requests())
        s.__exit__(None, None, None)
        assert served < MAX_REQUESTS, f"{served} requests: KMock slows down past ~200 per server"


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    """A fresh cluster (with Istio) of the parametrised kind."""
    return make_env()


@pytest.fixture
def kmock_server() -> Iterator[KMockServer]:
    """A fresh KMock server, for tests that assert on its request log."""
    with KMockServer() as server:
        yield server
        assert len(server.requests()) < MAX_REQUESTS
