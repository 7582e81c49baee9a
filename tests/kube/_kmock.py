"""KMock as a Kubernetes API for the synchronous official client: one fresh server per test.

KMock (``kmock``, by the Kopf maintainer) is an aiohttp server that emulates the Kubernetes
API in memory over real HTTP, with a request log. It runs here in a background thread with its
own event loop, on 127.0.0.1 and a free port, so the official (synchronous) client talks to it
exactly as it talks to a real API server.

:class:`ApiServerMock` keeps KMock's reads, discovery, object store, Status rendering and
request log, and adds three API-server conventions that KMock lacks and ``apply`` relies on
(each is a behaviour of kube-apiserver, scripted here, and every test that relies on one says
so):

1. **A refused request changes nothing.** KMock stores a write *before* it looks at the
   scripted reactions, so a write answered with a scripted 409/403/500 would still be stored.
   Here writes go to the scripted reactions first; only the fallback handlers below (reached
   when nothing was scripted) change the store.
2. **Server-side apply creates a missing object** (KMock answers 404). The object is stored as
   sent and returned (kube-apiserver answers 201; the adapter does not depend on the code).
3. **A dry run (``dryRun=All``) never changes the store.** KMock has no dry run and would
   persist it, so a dry run fails with a 500 ``DryRunNotScripted`` unless the test scripts the
   answer with :func:`script_dry_run`.

Everything else (merge semantics of a patch, list/get/delete, 404s for unknown resources) is
KMock's own behaviour.

:func:`script_lie` scripts an API server that **stores a write and then answers with an error**
(kube-apiserver's 504 when its request timeout fires while the write goes on in etcd; a proxy's
HTML page in place of the JSON answer): the write is stored exactly as the fallback handlers
would store it, then the scripted answer is sent.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

import kmock
from kmock import KubernetesError, KubernetesObjectNotFoundError

from istiolab.kube.kinds import KINDS, kind_key, split_api_version

APPLY = "application/apply-patch+yaml"
TOKEN = "kmock-secret-token-c0ffee-5ca1ab1e-deadbeef"
"""The bearer token every test client sends (tests check it never appears in output)."""

ISTIO_VERSIONS = (
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
)


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 merge, the way KMock patches (maps merged, ``null`` removes, lists replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def _key(request: kmock.Request) -> Any:  # KMock's key type does not admit a None name
    return (request.resource, request.namespace, request.name)


class ApiServerMock(kmock.KubernetesEmulator):
    """KMock's emulator plus the conventions in the module docstring."""

    async def _handle(self, request: kmock.Request) -> Any:
        if request.resource is not None and request.method in (
            kmock.method.PATCH,
            kmock.method.POST,
            kmock.method.DELETE,
        ):
            # scripted reactions first; the store changes only in the fallbacks below
            return await kmock.RawHandler._handle(self, request)
        return await super()._handle(request)

    def _live(self, request: kmock.Request) -> Any:
        key = _key(request)
        if key in self.objects and not self.objects[key].deleted:
            return self.objects[key]
        return None

    async def _serve_update(self, request: kmock.Request) -> Any:
        if request.params.get("dryRun"):
            raise KubernetesError(
                500, "DryRunNotScripted", "KMock has no dry run: script it with script_dry_run()"
            )
        live = self._live(request)
        if live is None:
            if request.headers.get("Content-Type", "").startswith(APPLY):
                key = _key(request)
                if key in self.objects:
                    self.objects[key].create(request.data)
                else:
                    self.objects[key] = request.data
                return self.objects[key].raw
            raise KubernetesObjectNotFoundError()
        live.patch(request.data)
        return live.raw

    async def _serve_create(self, request: kmock.Request) -> Any:
        meta = (request.data or {}).get("metadata", {})
        key: Any = (request.resource, request.namespace or meta.get("namespace"), meta.get("name"))
        if key in self.objects and not self.objects[key].deleted:
            raise KubernetesError(409, "AlreadyExists", f'"{meta.get("name")}" already exists')
        if key in self.objects:
            self.objects[key].create(request.data)
        else:
            self.objects[key] = request.data
        return self.objects[key].raw

    async def _serve_delete(self, request: kmock.Request) -> Any:
        live = self._live(request)
        if live is None:
            raise KubernetesObjectNotFoundError()
        live.delete()
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}}


def status(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A ``v1 Status`` body, as kube-apiserver sends with an error."""
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": dict(details or {}),
        "code": code,
    }


def resource_of(kind: str, api_version: str | None = None) -> kmock.resource:
    """The KMock resource of a kind (at *api_version*, default the kind's newest)."""
    info = KINDS[kind]
    group, version = split_api_version(api_version or info.api_versions[0])
    return kmock.resource(group, version, info.plural)


class KMockServer:
    """A fresh KMock API server in a background thread (use as a context manager).

    Args:
        istio_versions: Istio group/versions to declare (discovery serves them); empty: Istio
            is not installed.
        gateway_api_versions: Gateway API group/versions to declare; empty (the default): the
            Gateway API CRDs are not installed.
    """

    def __init__(
        self,
        istio_versions: tuple[str, ...] = ISTIO_VERSIONS,
        gateway_api_versions: tuple[str, ...] = (),
    ) -> None:
        self.istio_versions = istio_versions + gateway_api_versions
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)
        self.km: ApiServerMock
        self.url = ""

    def __enter__(self) -> KMockServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("KMock did not start")
        if self._error is not None:
            raise self._error
        self._declare()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as err:  # pragma: no cover - start-up failures are re-raised
            self._error = err
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with ApiServerMock() as km, kmock.Server(km, host="127.0.0.1") as server:
            self.km = km
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def _declare(self) -> None:
        for info in KINDS.values():
            versions = (
                [v for v in info.api_versions if v in self.istio_versions]
                if info.discovered
                else info.api_versions[:1]
            )
            for v in versions:
                self.km.resources[resource_of(info.kind, v)] = kmock.ResourceInfo(
                    kind=info.k8s_kind, namespaced=info.namespaced
                )

    # -- talking to it --------------------------------------------------------------------

    def api_client(self, token: str = TOKEN) -> Any:
        """An official ``ApiClient`` for this server, sending *token*."""
        from kubernetes import client as k8s

        cfg = k8s.Configuration(host=self.url)
        cfg.api_key = {"authorization": f"Bearer {token}"}
        cfg.retries = 0
        return k8s.ApiClient(cfg)

    def cluster(self, namespace: str = "default", context: str = "kmock") -> Any:
        """A :class:`~istiolab.kube.client.KubernetesCluster` on this server."""
        from istiolab.kube.client import KubernetesCluster

        return KubernetesCluster(
            self.api_client(), context=context, namespace=namespace, request_timeout=10
        )

    def kubeconfig(self, path: Any, *, namespace: str = "default", context: str = "kmock") -> Any:
        """Write a kubeconfig for this server (token auth) and return its path."""
        from istiolab.config import codecs

        data = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": TOKEN}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "kmock", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": context,
        }
        path.write_text(codecs.dumps([data]), encoding="utf-8")
        return path

    def requests(self) -> list[kmock.Request]:
        """The request log, in order."""
        return list(self.km)

    # -- state ----------------------------------------------------------------------------

    def seed(self, obj: Mapping[str, Any]) -> None:
        """Store an object (as a prior state of the cluster)."""
        data = copy.deepcopy(dict(obj))
        info = KINDS[kind_key(data["kind"], data.get("apiVersion"))]
        meta = data["metadata"]
        ns = meta.get("namespace") if info.namespaced else None
        self.km.objects[resource_of(info.kind, data.get("apiVersion")), ns, meta["name"]] = data

    def stored(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The stored object (at any served version), or None."""
        info = KINDS[kind]
        versions = info.api_versions if info.discovered else info.api_versions[:1]
        ns = namespace if info.namespaced else None
        for v in versions:
            key = (resource_of(kind, v), ns, name)
            if key in self.km.objects and not self.km.objects[key].deleted:
                return copy.deepcopy(dict(self.km.objects[key].raw))
        return None

    # -- scripted API-server behaviour ---------------------------------------------------------

    def react(
        self, when: Callable[[kmock.Request], bool], code: int, body: Mapping[str, Any]
    ) -> None:
        """Answer matching requests with *code* and *body*, ahead of everything else."""
        (self.km**10)[when] << code << dict(body)


def store_write(server: KMockServer, request: kmock.Request) -> None:
    """Store a write as the fallback handlers of :class:`ApiServerMock` do (synchronously)."""
    km = server.km
    live = km._live(request)
    if request.method == kmock.method.DELETE:
        if live is not None:
            live.delete()
        return
    if live is None:
        key = _key(request)
        if key in km.objects:
            km.objects[key].create(request.data)
        else:
            km.objects[key] = request.data
        return
    live.patch(request.data)


HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>\n"
)
"""What a proxy in front of the API server answers in place of JSON."""


def script_lie(
    server: KMockServer,
    when: Callable[[kmock.Request], bool],
    code: int,
    body: Mapping[str, Any] | bytes,
    *,
    times: int = 1,
    stored: bool = True,
) -> list[kmock.Request]:
    """Store the next *times* matching writes, then answer *code* with *body* (bytes: as is,
    ``text/html``). Returns the list the lying answers' requests are appended to.

    ``stored=False``: the write is not stored (a 504 before the commit, or a success status
    over a body that is not JSON although nothing was written).
    """
    lied: list[kmock.Request] = []

    def matches(request: kmock.Request) -> bool:
        return len(lied) < times and when(request)

    def answer(request: kmock.Request) -> Any:
        if stored:
            store_write(server, request)
        lied.append(request)
        return body if isinstance(body, bytes) else dict(body)

    reaction = (server.km**20)[matches] << code
    if isinstance(body, bytes):
        reaction = reaction << {"Content-Type": "text/html"}
    reaction << answer
    return lied


def writes_to(
    kind: str, name: str, *, method: str = "PATCH", content_type: str | None = None
) -> Callable[[kmock.Request], bool]:
    """A request filter: the non-dry-run *method* on one object (and a content type prefix)."""
    plural = KINDS[kind].plural

    def when(r: kmock.Request) -> bool:
        return (
            r.method == method
            and r.resource is not None
            and r.resource.plural == plural
            and r.name == name
            and "dryRun" not in r.params
            and (content_type is None or r.headers.get("Content-Type", "").startswith(content_type))
        )

    return when


def script_dry_run(server: KMockServer) -> None:
    """Script the answer to server-side dry runs (KMock has none and would persist them).

    A dry-run PATCH is answered as kube-apiserver answers it: the live object with the request
    merged in (or the request itself for a new object), nothing stored.
    """

    def answer(request: kmock.Request) -> Any:
        live = server.km._live(request)
        base = dict(live.raw) if live is not None else {}
        return _merge(base, request.data)

    (
        server.km[lambda r: r.method == kmock.method.PATCH and r.params.get("dryRun") == "All"]
        << answer
    )
