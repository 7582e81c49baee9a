"""The behavioural suite's third cluster: a real kube-apiserver (``tests/peers/apiserver.py``).

One API server serves the whole session; each :class:`ApiServerEnv` starts from a wiped state
(every object the suite writes is deleted from its namespaces, Nodes too) and full rights for
the ``ci-deployer`` user, whose token the adapter under test uses. Seeding and reading go
through the official client as ``admin``, bypassing the adapter.

Scripted behaviours are real where a real server can produce them: a 403 is an RBAC rule that
leaves the verb out, a conflict comes from the seeding manager's field ownership, a dry run is
the server's own. A 500 from etcd on one chosen request cannot be produced, so
:meth:`ApiServerEnv.script_failure` skips the test and says why.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from istiolab.kube.client import KubernetesCluster
from istiolab.kube.kinds import KINDS, kind_key, split_api_version
from peers.apiserver import ADMIN_USER, DEPLOYER_USER, ApiServer, grant

NAMESPACES = ("shop", "istio-system")
"""The namespaces the seed data uses (``_seed.NS``, ``_seed.GW_NS``); others are added per env."""

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
READ = ("get", "list", "watch")
SERVER_METADATA = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields")


def _group(kind: str) -> str:
    return split_api_version(KINDS[kind].api_versions[0])[0]


def _rules(denied: tuple[tuple[str, str, str], ...] = ()) -> list[dict[str, Any]]:
    """What a CI deployer needs: write istiolab's kinds, read the context; minus *denied*."""
    rules = []
    for info in KINDS.values():
        group = _group(info.kind)
        if group == "config.istio.io":
            continue  # Istio 0.2's API: not served by current CRDs
        verbs = [
            v for v in (VERBS if info.writable else READ) if (group, info.plural, v) not in denied
        ]
        if verbs:
            rules.append({"apiGroups": [group], "resources": [info.plural], "verbs": verbs})
    return rules


class RecordingCluster(KubernetesCluster):
    """The real adapter; :attr:`calls` lists the HTTP requests it sent, like the memory env's."""

    def __init__(self, api_client: Any, **kwargs: Any) -> None:
        super().__init__(api_client, **kwargs)
        self.calls: list[tuple[str, str]] = []
        rest = api_client.rest_client
        send = rest.request

        def request(method: str, url: str, *args: Any, **kw: Any) -> Any:
            self.calls.append((method, url))
            return send(method, url, *args, **kw)

        rest.request = request


class ApiServerEnv:
    """A wiped real API server; the adapter is :class:`KubernetesCluster` as ``ci-deployer``."""

    name = "apiserver"

    def __init__(self, server: ApiServer, namespace: str) -> None:
        self.server = server
        self.admin = server.api_client(ADMIN_USER)
        self.namespaces = tuple(dict.fromkeys((*NAMESPACES, namespace)))
        self._wipe()
        grant(server, _rules())
        self.cluster = RecordingCluster.from_kubeconfig(
            server.kubeconfig, context="peers-deployer", namespace=namespace
        )

    # -- the official client, generically ----------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One request as ``admin`` through the official ``ApiClient``: (status, JSON or text).

        A 429 (a resource's storage still initialising just after start-up) is retried after
        the server's Retry-After, as client-go does.
        """
        params = self.admin.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        for _ in range(20):
            response = self.admin.call_api(*params, _request_timeout=30)
            response.read()
            if response.status != 429:
                break
            time.sleep(float(response.getheader("Retry-After") or 1))
        raw = response.data or b"{}"
        try:
            return response.status, json.loads(raw)
        except ValueError:  # e.g. "404 page not found" for a group that is not served
            return response.status, raw.decode(errors="replace")

    def _path(self, kind: str, namespace: str | None, name: str | None = None) -> str:
        info = KINDS[kind]
        group, version = split_api_version(info.api_versions[0])
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        if info.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{info.plural}"
        return f"{base}/{name}" if name else base

    def _must(self, answer: tuple[int, Any], *ok: int) -> Any:
        status, body = answer
        if status not in ok:
            raise AssertionError(f"API server answered {status}: {body}")
        return body

    # -- Env interface -------------------------------------------------------------------------

    def seed(self, obj: dict[str, Any], manager: str = "istiolab") -> None:
        """Write the object as *manager* would have, then its status as a controller does.

        ``istiolab`` writes with server-side apply, so an object seeded as ``istiolab`` is an
        earlier apply of it (an Apply entry in managedFields); any other manager creates it
        with an Update, as ``kubectl create`` or client-side ``kubectl apply`` do. Server-set
        metadata in *obj* is dropped (a write may not carry it) and ``status`` goes through the
        status subresource.
        """
        data = copy.deepcopy(obj)
        status = data.pop("status", None)
        meta = data["metadata"]
        for key in SERVER_METADATA:
            meta.pop(key, None)
        kind, ns, name = data["kind"], meta.get("namespace"), meta["name"]
        group, version = split_api_version(data["apiVersion"])
        info = KINDS[kind_key(kind, data["apiVersion"])]
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        if info.namespaced:
            base += f"/namespaces/{ns}"
        base += f"/{info.plural}"
        if manager == self.cluster.field_manager:
            self._must(
                self.call(
                    "PATCH",
                    f"{base}/{name}",
                    data,
                    query={"fieldManager": manager},
                    content_type="application/apply-patch+yaml",
                ),
                201,
            )
        else:
            self._must(self.call("POST", base, data, query={"fieldManager": manager}), 201)
        if status:
            self._must(
                self.call(
                    "PATCH",
                    f"{base}/{name}/status",
                    {"status": status},
                    query={"fieldManager": "istiolab-tests-controller"},
                    content_type="application/merge-patch+json",
                ),
                200,
            )

    def stored(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object as the server stores it (read as its newest version), or None."""
        status, body = self.call("GET", self._path(kind, namespace, name))
        if status == 404:
            return None
        self._must((status, body), 200)
        return dict(body)

    def script_dry_run(self) -> None:
        """Real: kube-apiserver runs dry runs itself."""

    def script_conflict(self, kind: str, name: str, fields: list[str], manager: str) -> None:
        """Real: the conflict comes from the seeding manager's field ownership."""

    def script_forbidden(self, verb: str, kind: str) -> None:
        """Real: RBAC for ``ci-deployer`` without *verb* on *kind*."""
        denied = ((_group(kind), KINDS[kind].plural, verb),)
        grant(self.server, _rules(denied), denied=denied)

    def script_failure(self, kind: str, name: str) -> None:
        """Not producible: skips the test."""
        pytest.skip("apiserver: a real server cannot be made to fail one chosen write with a 500")

    @contextlib.contextmanager
    def refusing(self, kind: str, name: str, message: str) -> Iterator[None]:
        """A real admission refusal: a ValidatingAdmissionPolicy denies writes (not dry runs)
        of *kind* objects named *name*, in every namespace, while the block runs.

        Policies take effect through the API server's informers, so this waits until a write
        of such an object in a scratch namespace is refused.
        """
        info = KINDS[kind]
        group = _group(kind)
        policy = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "istiolab-tests-refuse"},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [group],
                            "apiVersions": ["*"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": [info.plural],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": f"request.dryRun || object.metadata.name != '{name}'",
                        "message": message,
                    }
                ],
            },
        }
        binding = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "istiolab-tests-refuse"},
            "spec": {"policyName": "istiolab-tests-refuse", "validationActions": ["Deny"]},
        }
        base = "/apis/admissionregistration.k8s.io/v1"
        paths = (
            f"{base}/validatingadmissionpolicies/istiolab-tests-refuse",
            f"{base}/validatingadmissionpolicybindings/istiolab-tests-refuse",
        )
        scratch = "istiolab-tests-scratch"
        self._ensure_namespace(scratch)
        try:
            for path, body in zip(paths, (policy, binding), strict=True):
                self._must(
                    self.call(
                        "PATCH",
                        path,
                        body,
                        query={"fieldManager": "istiolab-tests", "force": "true"},
                        content_type="application/apply-patch+yaml",
                    ),
                    200,
                    201,
                )
            version = info.api_versions[0]
            probe = {"apiVersion": version, "kind": kind, "metadata": {"name": name}, "spec": {}}
            deadline = time.monotonic() + 30
            while True:
                status, _ = self.call("POST", self._path(kind, scratch), probe)
                if status == 422 or status == 403:
                    break
                self._must((status, _), 201)
                self._must(self.call("DELETE", self._path(kind, scratch, name)), 200)
                if time.monotonic() > deadline:
                    raise AssertionError("the admission policy did not take effect in 30 s")
                time.sleep(0.2)
            yield
        finally:
            for path in paths[::-1]:
                self.call("DELETE", path)

    # -- isolation -----------------------------------------------------------------------------

    def _wipe(self) -> None:
        """Delete what earlier tests left; make sure the namespaces (and their SA) exist."""
        for ns in self.namespaces:
            self._ensure_namespace(ns)
            for info in KINDS.values():
                if not info.namespaced or _group(info.kind) == "config.istio.io":
                    continue
                query = {"gracePeriodSeconds": "0"} if info.kind == "Pod" else {}
                self._delete_all(self._path(info.kind, ns), query)
        self._delete_all(self._path("Node", None), {})

    def _delete_all(self, path: str, query: dict[str, str]) -> None:
        # list and delete one by one: not every resource (Services) has deletecollection
        status, body = self.call("GET", path)
        if status == 404:
            return  # not served here (the bare server has no Istio CRDs)
        for item in self._must((status, body), 200).get("items", []):
            item_path = f"{path}/{item['metadata']['name']}"
            self._must(self.call("DELETE", item_path, query=query), 200, 202, 404)

    def _ensure_namespace(self, ns: str) -> None:
        # a namespace's `default` ServiceAccount is made by kube-controller-manager, which does
        # not run here; Pods are refused without it (ServiceAccount admission)
        ns_body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        self._must(self.call("POST", "/api/v1/namespaces", ns_body), 201, 409)
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        self._must(self.call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa), 201, 409)


__all__ = ["DEPLOYER_USER", "ApiServerEnv", "RecordingCluster"]
