"""Opt-in end-to-end suite against a real cluster (kind, minikube, EKS).

Run it with a kubeconfig of a **disposable** cluster::

    ISTIOLAB_KUBECONFIG=~/.kube/kind-config pytest -m cluster tests/e2e

Optional: ``ISTIOLAB_CONTEXT`` (default: the kubeconfig's current context) and
``ISTIOLAB_E2E_INSTALL_CRDS=1`` (install minimal stand-ins for Istio's networking CRDs when the
cluster has none: ``istio-crds.yaml``; they are left installed). Every test works in a fresh
namespace ``istiolab-e2e-<random>``, deleted afterwards. Without ``ISTIOLAB_KUBECONFIG`` every
test is skipped.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from istiolab.config import codecs


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISTIOLAB_HOME", str(tmp_path_factory.mktemp("istiolab-home")))


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    path = os.environ.get("ISTIOLAB_KUBECONFIG")
    if not path:
        pytest.skip(
            "no cluster: set ISTIOLAB_KUBECONFIG to the kubeconfig of a disposable cluster "
            "(kind, minikube, EKS) to run the e2e suite"
        )
    pytest.importorskip("kubernetes")
    return os.path.expanduser(path)


@pytest.fixture(scope="session")
def context() -> str | None:
    return os.environ.get("ISTIOLAB_CONTEXT") or None


@pytest.fixture(scope="session")
def admin(kubeconfig: str, context: str | None) -> Any:
    """An official ApiClient with the kubeconfig's (admin) credentials, for set-up only."""
    from kubernetes import config as kconfig

    # kubernetes.config has no annotations (only kubernetes.client is typed)
    return kconfig.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context, persist_config=False
    )


@pytest.fixture(scope="session")
def istio_crds(kubeconfig: str, context: str | None, admin: Any) -> None:
    """Istio's networking API is served (installing stand-in CRDs only when asked to)."""
    from istiolab.kube.client import KubernetesCluster

    def served() -> dict[str, Any]:
        return KubernetesCluster.from_kubeconfig(kubeconfig, context).served_versions()

    if served().get("VirtualService"):
        return
    if os.environ.get("ISTIOLAB_E2E_INSTALL_CRDS") != "1":
        pytest.skip(
            "the cluster serves no networking.istio.io API: install Istio, or set "
            "ISTIOLAB_E2E_INSTALL_CRDS=1 to install stand-in CRDs (tests/e2e/istio-crds.yaml)"
        )
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    ext = k8s.ApiextensionsV1Api(admin)
    text = (Path(__file__).parent / "istio-crds.yaml").read_text(encoding="utf-8")
    for doc in codecs.loads(text):
        try:
            ext.create_custom_resource_definition(doc.data)
        except ApiException as err:
            if err.status != 409:
                raise
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if {"VirtualService", "DestinationRule", "Gateway", "EnvoyFilter"} <= set(served()):
            return
        time.sleep(1)
    pytest.fail("the stand-in Istio CRDs were not served within 60 s")


@pytest.fixture
def namespace(admin: Any, istio_crds: None) -> Iterator[str]:
    """A fresh namespace, deleted after the test."""
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(admin)
    name = f"istiolab-e2e-{secrets.token_hex(3)}"
    core.create_namespace(
        k8s.V1Namespace(api_version="v1", kind="Namespace", metadata=k8s.V1ObjectMeta(name=name))
    )
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def cluster(kubeconfig: str, context: str | None, namespace: str) -> Any:
    """The adapter under test, on the test's namespace."""
    from istiolab.kube.client import KubernetesCluster

    return KubernetesCluster.from_kubeconfig(kubeconfig, context, namespace)
