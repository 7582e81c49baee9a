"""A real cluster through the official ``kubernetes`` client.

:class:`KubernetesCluster` implements :class:`~istiolab.kube.adapter.ClusterAdapter`. Writes
are server-side apply (``application/apply-patch+yaml``, ``fieldManager=istiolab``, ``force``
only when asked) of Istio custom objects through ``CustomObjectsApi``; reads of core kinds use
``CoreV1Api``. Every call asks for the raw JSON (``_preload_content=False``): the client's
model layer is not needed for custom objects, and its generated ``patch`` methods do not decode
the ``201 Created`` a server-side apply returns when it creates an object.

Credentials never reach a message: API errors become :mod:`istiolab.kube.errors` exceptions
whose text is scrubbed of the kubeconfig's token, password, client key and certificate (and of
anything shaped like one), and the chained client exception is scrubbed the same way. The API's
text is cut to 500 bytes (an HTML error page of a proxy can be megabytes).

**Exec credential plugins** (``users[].user.exec`` in the kubeconfig: ``aws eks get-token``,
``gke-gcloud-auth-plugin``, ...). The client runs them with ``subprocess`` and waits without a
timeout, and logs their stderr (which can hold a token) as it is. It has no setting for either,
so istiolab does not hand it the plugin's command: it hands it a small Python wrapper
(:data:`EXEC_WRAPPER`, run as ``python -I -c``) that runs the command with a timeout
(``ISTIOLAB_EXEC_TIMEOUT`` seconds, default 30; the plugin and its children are killed then)
and passes its stderr on only after redacting anything shaped like a credential, including the
token it printed on stdout. The client still does everything else (the ExecCredential
exchange, the cluster info, refreshing an expired token, which runs the wrapper again). A
failed plugin is one :class:`~istiolab.kube.errors.ConnectError` line, not a client log entry.
This rewrites the in-memory kubeconfig only, through the client's public ``KubeConfigMerger``
and ``KubeConfigLoader``; nothing of the client is patched. POSIX only: on Windows the client
runs plugins through a shell, and they are run as configured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from istiolab.errors import MissingDependencyError
from istiolab.kube.adapter import ClusterIdentity, ObjList
from istiolab.kube.errors import (
    PATTERNS,
    ApiError,
    ConnectError,
    NotFoundError,
    Scrubber,
    api_error,
    describe_target,
    truncate,
)
from istiolab.kube.kinds import (
    DISCOVERED_GROUP_VERSIONS,
    KINDS,
    KindInfo,
    kind_info,
    kind_key,
    newest_served,
    split_api_version,
)
from istiolab.kube.objects import Obj, content, merge_patch, strip

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["EXEC_TIMEOUT_ENV", "EXEC_WRAPPER", "KubernetesCluster", "connect", "exec_timeout"]

_AnyList = list[Any]  # spelled as an alias: `list` is also a method of the class below
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "client-key-data",
        "client-certificate-data",
        "id-token",
        "refresh-token",
        "access-token",
        "client-secret",
    }
)


EXEC_TIMEOUT_ENV = "ISTIOLAB_EXEC_TIMEOUT"
DEFAULT_EXEC_TIMEOUT = 30.0

EXEC_WRAPPER = r"""
import json, os, re, signal, subprocess, sys, threading, time
rules = [(re.compile(p, f), g) for p, f, g in json.loads(sys.argv[1])]
timeout, argv = float(sys.argv[2]), sys.argv[3:]
try:
    info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO") or "{}")
    interactive = bool(info.get("spec", {}).get("interactive"))
except ValueError:
    interactive = False
def scrub(text, known=()):
    for value in known:
        text = text.replace(value, "<redacted>")
    for rx, grouped in rules:
        text = rx.sub((lambda m: m.group(1) + "<redacted>") if grouped else "<redacted>", text)
    return text
name = os.path.basename(argv[0]) if argv else "?"
try:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=None if interactive else subprocess.DEVNULL, start_new_session=not interactive)
except OSError as err:
    sys.stderr.write(f"istiolab: cannot run the exec credential plugin {name!r}: {err.strerror}\n")
    sys.exit(127)
out, err_lines = [], []
def read_out():
    while chunk := os.read(proc.stdout.fileno(), 65536):
        out.append(chunk)
def read_err():
    for line in iter(proc.stderr.readline, b""):
        text = line.decode("utf-8", "replace")
        if interactive:  # prompts must show while the plugin waits; patterns only
            sys.stderr.write(scrub(text))
            sys.stderr.flush()
        else:
            err_lines.append(text)
threads = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
for t in threads:
    t.start()
deadline = time.monotonic() + timeout
try:
    code = proc.wait(timeout)
except subprocess.TimeoutExpired:
    try:
        if interactive:
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    sys.stderr.write(
        f"istiolab: the exec credential plugin {name!r} did not finish within {timeout:g} s "
        "and was stopped (set ISTIOLAB_EXEC_TIMEOUT to allow more)\n")
    sys.stderr.flush()
    os._exit(124)
for t in threads:
    t.join(max(0.1, deadline - time.monotonic()))
data = b"".join(out)
known = []
try:
    status = json.loads(data).get("status") or {}
    known = [str(v) for k, v in status.items() if k != "expirationTimestamp" and v]
except (ValueError, AttributeError):
    pass
text = scrub("".join(err_lines), [k for k in known if len(k) >= 6])
sys.stderr.write(text)
sys.stderr.flush()
sys.stdout.buffer.write(data)
sys.stdout.flush()
sys.exit(code)
"""
"""The program that runs an exec credential plugin for the client (see the module docstring).

Arguments: the credential patterns (JSON), the timeout in seconds, then the plugin's command
and arguments. Exit codes: the plugin's, 124 after a timeout, 127 when it cannot be started.
"""


def exec_timeout() -> float:
    """Seconds an exec credential plugin may run: ``$ISTIOLAB_EXEC_TIMEOUT``, default 30.

    Raises:
        ConnectError: When the variable is set but is not a positive number.
    """
    raw = os.environ.get(EXEC_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_EXEC_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ConnectError(
            f"{EXEC_TIMEOUT_ENV}={raw!r} is not a number of seconds (e.g. 30, or 90 for a "
            "plugin that asks for an MFA code)"
        )
    return value


def _bound_exec_plugins(config: Any, timeout: float) -> list[str]:
    """Run every exec plugin of a merged kubeconfig through :data:`EXEC_WRAPPER`.

    Returns:
        The names of the users whose plugin is wrapped.
    """
    if os.name != "posix":
        return []  # the client runs plugins through a shell there; leave them as configured
    patterns = json.dumps([(p.pattern, p.flags, p.groups > 0) for p in PATTERNS])
    users = getattr(config, "value", config).get("users") or []
    wrapped: list[str] = []
    for item in users:
        data = getattr(item, "value", item)
        user = data.get("user") if isinstance(data, dict) else None
        spec = user.get("exec") if isinstance(user, dict) else None
        if not isinstance(spec, dict) or not spec.get("command"):
            continue
        args = [str(a) for a in spec.get("args") or []]
        spec["args"] = ["-I", "-c", EXEC_WRAPPER, patterns, f"{timeout:g}", str(spec["command"])]
        spec["args"] += args
        spec["command"] = sys.executable
        wrapped.append(str(data.get("name")))
    return wrapped


@contextlib.contextmanager
def _client_log() -> Iterator[list[str]]:
    """Collect what the client logs while loading credentials, instead of printing it.

    The client reports a failed exec plugin only with ``logging.error`` on the root logger and
    goes on without credentials; istiolab turns it into an error that names the cause.
    """
    messages: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    root = logging.getLogger()
    handler = _Keep(logging.WARNING)
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def _require_client() -> None:
    try:
        import kubernetes  # noqa: F401
    except ImportError as err:  # pragma: no cover - the [kube] extra is installed in tests
        raise MissingDependencyError("kubernetes", "kube") from err


def _check_kubeconfig_files(paths: str) -> None:
    """Read each kubeconfig file once with istiolab's bounded loader before the client does.

    The kubernetes client parses the file with plain PyYAML, which expands an alias bomb for
    seconds before it fails; istiolab's loader refuses it at once (docs/limits.md), and a
    special file (``/dev/zero``, a FIFO) is refused before anything reads it.

    Raises:
        ConnectError: Naming the file and the limit it exceeds.
    """
    from istiolab.config import codecs

    for p in paths.split(os.pathsep):
        path = Path(p).expanduser() if p else None
        if path is None or not path.exists():
            continue  # the client reports a missing file in its own words
        try:
            codecs.load_data(codecs.read_text(path, p))
        except codecs.InputRefused as err:
            raise ConnectError(f"cannot read the kubeconfig {p}: {err}") from None
        except (OSError, UnicodeError, ValueError, yaml.YAMLError):
            continue  # the client's own error message, scrubbed, says what is wrong


def _kubeconfig_secrets(paths: str) -> list[str]:
    """Every credential-like value under ``users`` in the kubeconfig file(s)."""
    from istiolab.config import codecs

    out: list[str] = []

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in _SECRET_KEYS:
            out.append(value)

    for p in paths.split(os.pathsep):
        if not p:
            continue
        try:
            data = codecs.load_data(Path(p).expanduser().read_text(encoding="utf-8"))
        except Exception:
            continue
        if isinstance(data, dict):
            walk(data.get("users"))
    return out


class KubernetesCluster:
    """A Kubernetes cluster reached with the official client.

    Args:
        api_client: A configured ``kubernetes.client.ApiClient``.
        context: The kubeconfig context's name (``"in-cluster"`` inside a pod).
        namespace: Default namespace.
        field_manager: Field manager of every write.
        secrets: Extra values to keep out of messages (the client's token is always kept out).
        request_timeout: Seconds per API request.

    Use :meth:`from_kubeconfig`, :meth:`in_cluster` or :func:`connect` rather than building the
    client yourself.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        context: str,
        namespace: str = "default",
        field_manager: str = "istiolab",
        secrets: Iterable[str] = (),
        request_timeout: float = 30.0,
    ) -> None:
        _require_client()
        from kubernetes import client as k8s

        self._api = api_client
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._context = context
        self._namespace = namespace
        self._field_manager = field_manager
        self._timeout = request_timeout
        self._served: dict[str, tuple[str, ...]] | None = None
        self._identity: ClusterIdentity | None = None
        # kept inside a Scrubber, whose repr never shows them
        self._known_secrets = Scrubber(secrets)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        *,
        field_manager: str = "istiolab",
    ) -> KubernetesCluster:
        """Connect with a kubeconfig file (default ``$KUBECONFIG``, then ``~/.kube/config``).

        Args:
            path: Kubeconfig file (or an ``os.pathsep``-separated list, like ``$KUBECONFIG``).
            context: Context name; default the file's current context.
            namespace: Namespace; default the context's, else ``default``.
            field_manager: Field manager of every write.

        Raises:
            ConnectError: When the file is missing or invalid, or the context is unknown.
        """
        _require_client()
        from kubernetes import client as k8s
        from kubernetes import config as kconfig

        files = str(path) if path is not None else os.environ.get("KUBECONFIG") or "~/.kube/config"
        _check_kubeconfig_files(files)
        scrub = Scrubber(_kubeconfig_secrets(files))
        try:
            contexts, active = kconfig.list_kube_config_contexts(config_file=files)  # type: ignore[no-untyped-call]
        except Exception as err:
            raise ConnectError(
                f"cannot read the kubeconfig {files}: {scrub(str(err))}; pass --kubeconfig PATH "
                "or set KUBECONFIG"
            ) from None
        by_name = {c.get("name"): c for c in contexts or []}
        name = context or (active or {}).get("name")
        if not name or name not in by_name:
            known = ", ".join(sorted(str(n) for n in by_name)) or "none"
            what = f'context "{name}" is not' if name else "no current context is"
            raise ConnectError(f"{what} defined in the kubeconfig {files} (contexts: {known})")
        ctx = by_name[name].get("context") or {}
        cfg = k8s.Configuration()
        timeout = exec_timeout()
        try:
            from kubernetes.config.kube_config import KubeConfigLoader, KubeConfigMerger

            merged = KubeConfigMerger(files).config  # type: ignore[no-untyped-call]
            wrapped = _bound_exec_plugins(merged, timeout)
            loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
                config_dict=merged, active_context=name, config_base_path=None
            )
            with _client_log() as logged:
                loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
        except Exception as err:
            raise ConnectError(
                f'cannot load context "{name}" from the kubeconfig {files}: {scrub(str(err))}'
            ) from None
        user = str(ctx.get("user") or "")
        if user in wrapped and not (cfg.api_key or {}).get("BearerToken") and not cfg.cert_file:
            said = [m for m in logged if m.startswith("exec:")]
            reason = (
                " ".join(scrub(said[-1]).split())
                if said
                else "it gave no credential (its messages, if any, are above)"
            )
            raise ConnectError(
                f'the exec credential plugin of context "{name}" (user "{user}") failed: '
                f"{truncate(reason)}"
            )
        ns = namespace or ctx.get("namespace") or "default"
        return cls(
            k8s.ApiClient(cfg),
            context=str(name),
            namespace=str(ns),
            field_manager=field_manager,
            secrets=_kubeconfig_secrets(files),
        )

    @classmethod
    def in_cluster(
        cls, namespace: str | None = None, *, field_manager: str = "istiolab"
    ) -> KubernetesCluster:
        """Connect from inside a pod with its service account.

        Raises:
            ConnectError: When not running in a cluster.
        """
        _require_client()
        from kubernetes import client as k8s
        from kubernetes import config as kconfig

        cfg = k8s.Configuration()
        try:
            kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except Exception as err:
            raise ConnectError(f"not running inside a cluster: {Scrubber()(str(err))}") from None
        ns = namespace
        if ns is None:
            try:
                ns = Path(SA_NAMESPACE_FILE).read_text(encoding="utf-8").strip() or None
            except OSError:
                ns = None
        return cls(
            k8s.ApiClient(cfg),
            context="in-cluster",
            namespace=ns or "default",
            field_manager=field_manager,
        )

    def __repr__(self) -> str:
        host = self._scrubber()(str(getattr(self._api.configuration, "host", "?")))
        return (
            f"KubernetesCluster(context={self._context!r}, namespace={self._namespace!r}, "
            f"server={host!r})"
        )

    # -- ClusterAdapter ---------------------------------------------------------------------

    @property
    def context(self) -> str:
        """The kubeconfig context's name."""
        return self._context

    @property
    def namespace(self) -> str:
        """Default namespace."""
        return self._namespace

    @property
    def field_manager(self) -> str:
        """Field manager of every write."""
        return self._field_manager

    def identity(self) -> ClusterIdentity:
        """The server URL and the ``kube-system`` Namespace's uid (``GET /api/v1/namespaces/...``).

        A user who may not read Namespaces (a namespaced CI deployer) gets ``uid=None``: the
        server URL is then all that tells clusters apart.
        """
        if self._identity is None:
            host = str(getattr(self._api.configuration, "host", "") or "")
            info = KindInfo("Namespace", ("v1",), "namespaces", namespaced=False)
            uid: str | None
            try:
                data = self._call(
                    "get", info, "v1", None, "kube-system", self._core.read_namespace, "kube-system"
                )
                uid = str((data.get("metadata") or {}).get("uid") or "") or None
            except ApiError:
                uid = None  # forbidden or not found: the URL must do
            self._identity = ClusterIdentity(self._scrubber()(host.rstrip("/")), uid)
        return self._identity

    def served_versions(self) -> dict[str, tuple[str, ...]]:
        """Discover the Istio and Gateway API kinds and versions served (``GET /apis/<g>/<v>``)."""
        if self._served is None:
            found: dict[str, list[str]] = {}
            for gv in DISCOVERED_GROUP_VERSIONS:
                group, version = split_api_version(gv)
                resources = self._discover(group, version)
                kinds = {
                    kind_key(str(r.get("kind")), gv)
                    for r in resources
                    if isinstance(r, dict) and "/" not in str(r.get("name", ""))
                }
                for kind in sorted(k for k in kinds if k in KINDS):
                    if KINDS[kind].discovered and gv in KINDS[kind].api_versions:
                        found.setdefault(kind, []).append(gv)
            self._served = {
                k: tuple(v for v in KINDS[k].api_versions if v in vs) for k, vs in found.items()
            }
        return dict(self._served)

    def get(
        self, kind: str, namespace: str | None, name: str, *, api_version: str | None = None
    ) -> Obj | None:
        """One object, or None when it does not exist."""
        info = kind_info(kind)
        version = self._version_for(info, api_version, "get", namespace, name)
        ns = namespace if info.namespaced else None
        group, v = split_api_version(version)
        try:
            if not group:
                data = self._call("get", info, version, ns, name, *self._core_read(info, ns, name))
            elif ns is None:
                data = self._call(
                    "get",
                    info,
                    version,
                    ns,
                    name,
                    self._custom.get_cluster_custom_object,
                    group,
                    v,
                    info.plural,
                    name,
                )
            else:
                data = self._call(
                    "get",
                    info,
                    version,
                    ns,
                    name,
                    self._custom.get_namespaced_custom_object,
                    group,
                    v,
                    ns,
                    info.plural,
                    name,
                )
        except NotFoundError:
            return None
        return _with_type(data, info, version)

    def list(self, kind: str, namespace: str | None, *, api_version: str | None = None) -> ObjList:
        """Objects of a kind in *namespace* (None: all namespaces, or cluster-scoped)."""
        info = kind_info(kind)
        version = self._version_for(info, api_version, "list", namespace, None)
        ns = namespace if info.namespaced else None
        group, v = split_api_version(version)
        if not group:
            data = self._call("list", info, version, ns, None, *self._core_list(info, ns))
        elif ns is None:
            data = self._call(
                "list",
                info,
                version,
                ns,
                None,
                self._custom.list_cluster_custom_object,
                group,
                v,
                info.plural,
            )
        else:
            data = self._call(
                "list",
                info,
                version,
                ns,
                None,
                self._custom.list_namespaced_custom_object,
                group,
                v,
                ns,
                info.plural,
            )
        items = data.get("items") or []
        return [_with_type(item, info, version) for item in items if isinstance(item, dict)]

    def dry_run_apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Obj:
        """Server-side apply with ``dryRun=All``."""
        return self._apply(obj, force=force, dry_run=True)

    def apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Obj:
        """Server-side apply (creates the object when missing)."""
        return self._apply(obj, force=force, dry_run=False)

    def replace(self, obj: Mapping[str, Any], *, resource_version: str | None = None) -> Obj:
        """JSON merge patch that makes labels, annotations and spec exactly *obj*'s.

        The patch carries ``metadata.resourceVersion`` (*resource_version*, else the live one
        just read), so the API server refuses it with a 409 if the object changed meanwhile.
        """
        info, version, ns, name, group, v = self._address(obj)
        live = self.get(info.kind, ns, name, api_version=version)
        if live is None:
            raise api_error(
                status=404,
                reason="NotFound",
                message=f'{info.resource(version)} "{name}" not found',
                verb="patch",
                resource=info.resource(version),
                namespace=ns,
                name=name,
                context=self._context,
            )
        patch = merge_patch(content(live), content(obj))
        rv = resource_version or (live.get("metadata") or {}).get("resourceVersion")
        if rv:
            patch.setdefault("metadata", {})["resourceVersion"] = rv
        data = self._call(
            "patch",
            info,
            version,
            ns,
            name,
            self._custom.patch_namespaced_custom_object,
            group,
            v,
            ns,
            info.plural,
            name,
            patch,
            field_manager=self._field_manager,
            _content_type=MERGE_PATCH,
        )
        return _with_type(data, info, version)

    def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        api_version: str | None = None,
        uid: str | None = None,
    ) -> None:
        """Delete an object; with *uid* as a precondition (409 if it is another object now)."""
        from kubernetes import client as k8s

        info = kind_info(kind)
        version = self._version_for(info, api_version, "delete", namespace, name)
        group, v = split_api_version(version)
        if not group or not info.namespaced:
            raise ValueError(f"istiolab does not delete {kind} objects")
        body = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid)) if uid else None
        self._call(
            "delete",
            info,
            version,
            namespace,
            name,
            self._custom.delete_namespaced_custom_object,
            group,
            v,
            namespace,
            info.plural,
            name,
            body=body,
        )

    # -- internals --------------------------------------------------------------------------

    def _scrubber(self) -> Scrubber:
        # the client's current token too: exec plugins and token files refresh it
        cfg = self._api.configuration
        secrets = [str(v) for v in (getattr(cfg, "api_key", None) or {}).values() if v]
        if getattr(cfg, "password", None):
            secrets.append(str(cfg.password))
        return self._known_secrets.add(secrets)

    def _address(self, obj: Mapping[str, Any]) -> tuple[KindInfo, str, str, str, str, str]:
        version = str(obj.get("apiVersion") or "")
        info = kind_info(kind_key(str(obj.get("kind")), version))
        meta = obj.get("metadata") or {}
        ns = str(meta.get("namespace") or self._namespace)
        name = str(meta.get("name") or "")
        group, v = split_api_version(version)
        if not info.writable or not group or version not in info.api_versions:
            raise ValueError(f"istiolab does not write {version} {info.kind} objects")
        return info, version, ns, name, group, v

    def _apply(self, obj: Mapping[str, Any], *, force: bool, dry_run: bool) -> Obj:
        info, version, ns, name, group, v = self._address(obj)
        body = strip(obj)
        body.setdefault("metadata", {})["namespace"] = ns
        extra: dict[str, Any] = {"field_manager": self._field_manager, "_content_type": APPLY_PATCH}
        if dry_run:
            extra["dry_run"] = "All"
        if force:
            extra["force"] = True
        data = self._call(
            "patch",
            info,
            version,
            ns,
            name,
            self._custom.patch_namespaced_custom_object,
            group,
            v,
            ns,
            info.plural,
            name,
            body,
            is_dry_run=dry_run,
            **extra,
        )
        return _with_type(data, info, version)

    def _version_for(
        self,
        info: KindInfo,
        api_version: str | None,
        verb: str,
        namespace: str | None,
        name: str | None,
    ) -> str:
        if api_version is not None:
            return api_version
        version = newest_served(info.kind, self.served_versions())
        if version is None:
            raise api_error(
                status=404,
                reason="NotFound",
                message=f"the cluster serves no version of {info.kind} "
                f"({', '.join(info.api_versions)})",
                verb=verb,
                resource=info.resource(),
                namespace=namespace,
                name=name,
                namespaced=info.namespaced,
                context=self._context,
            )
        return version

    def _core_read(
        self, info: KindInfo, ns: str | None, name: str
    ) -> tuple[Callable[..., Any], str, str] | tuple[Callable[..., Any], str]:
        core = self._core
        if info.kind == "Node":
            return (core.read_node, name)
        fn = {
            "Service": core.read_namespaced_service,
            "Pod": core.read_namespaced_pod,
        }[info.kind]
        return (fn, name, ns or self._namespace)

    def _core_list(
        self, info: KindInfo, ns: str | None
    ) -> tuple[Callable[..., Any]] | tuple[Callable[..., Any], str]:
        core = self._core
        if info.kind == "Node":
            return (core.list_node,)
        if ns is None:
            fn_all = {
                "Service": core.list_service_for_all_namespaces,
                "Pod": core.list_pod_for_all_namespaces,
            }[info.kind]
            return (fn_all,)
        fn = {"Service": core.list_namespaced_service, "Pod": core.list_namespaced_pod}[info.kind]
        return (fn, ns)

    def _discover(self, group: str, version: str) -> _AnyList:
        info = KindInfo("APIResourceList", (f"{group}/{version}",), f"{group}/{version}")
        try:
            data = self._call(
                "get",
                info,
                f"{group}/{version}",
                None,
                None,
                self._custom.get_api_resources,
                group,
                version,
                discovery=True,
            )
        except NotFoundError:
            return []
        resources = data.get("resources")
        return resources if isinstance(resources, list) else []

    def _call(
        self,
        verb: str,
        info: KindInfo,
        version: str,
        namespace: str | None,
        name: str | None,
        fn: Callable[..., Any],
        *args: Any,
        is_dry_run: bool = False,
        discovery: bool = False,
        **kwargs: Any,
    ) -> Obj:
        """Call the client for raw JSON; turn every failure into a scrubbed istiolab error."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        resource = f"API discovery of {version}" if discovery else info.resource(version)
        try:
            response = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            raw = response.data
        except ApiException as err:
            scrub = self._scrubber()
            status: Obj = {}
            body = _text(err.body)
            try:
                parsed = json.loads(body or "")
                status = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                pass
            details = status.get("details") if isinstance(status.get("details"), dict) else {}
            message = str(status.get("message") or "")
            if not status and body.strip():
                # not a Status (a proxy's or load balancer's page): show its start, scrubbed
                message = "the answer is not a Kubernetes Status: " + " ".join(body.split())
            error = api_error(
                status=int(err.status or 0),
                reason=str(status.get("reason") or err.reason or ""),
                message=message,
                verb=verb,
                resource=resource,
                namespace=namespace if info.namespaced else None,
                name=name,
                namespaced=info.namespaced and not discovery,
                causes=(details or {}).get("causes"),
                dry_run=is_dry_run,
                context=self._context,
                scrub=scrub,
            )
            raise error from _sanitized(err, scrub)
        except (HTTPError, OSError) as err:
            scrub = self._scrubber()
            host = scrub(str(getattr(self._api.configuration, "host", "?")))
            target = describe_target(resource, namespace, name, namespaced=info.namespaced)
            raise ConnectError(
                f'cannot reach the API server of context "{self._context}" at {host} '
                f"({verb} {target}): {scrub(str(err))}"
            ) from None
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            # A success status with a body that is not JSON (a proxy's page): whether a write
            # was stored is unknown, and apply reads the object back to find out.
            raise api_error(
                status=int(getattr(response, "status", 200) or 200),
                reason="BadResponse",
                message="the answer is not JSON: " + " ".join(_text(raw).split()),
                verb=verb,
                resource=resource,
                namespace=namespace if info.namespaced else None,
                name=name,
                namespaced=info.namespaced and not discovery,
                dry_run=is_dry_run,
                context=self._context,
                scrub=self._scrubber(),
            ) from None
        return data if isinstance(data, dict) else {}


def _with_type(data: Mapping[str, Any], info: KindInfo, version: str) -> Obj:
    """Lists of core kinds omit ``apiVersion``/``kind`` on items; put them back."""
    out = dict(data)
    out.setdefault("apiVersion", version)
    out.setdefault("kind", info.k8s_kind)
    return out


def _text(body: Any) -> str:
    """An answer's body as text (the client gives bytes or str)."""
    if isinstance(body, bytes | bytearray):
        return bytes(body).decode("utf-8", errors="replace")
    return "" if body is None else str(body)


def _sanitized(err: Exception, scrub: Scrubber) -> Exception:
    """Scrub (then truncate) a client exception in place (it is chained: tracebacks show it)."""
    for attr in ("body", "reason"):
        value = getattr(err, attr, None)
        if isinstance(value, bytes | bytearray):
            value = _text(value)
        if isinstance(value, str):
            setattr(err, attr, truncate(scrub(value)))
    for attr in ("headers", "data"):
        if hasattr(err, attr):
            setattr(err, attr, None)
    err.args = tuple(scrub(a) if isinstance(a, str) else a for a in err.args)
    return err


def connect(
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    namespace: str | None = None,
    *,
    field_manager: str = "istiolab",
) -> KubernetesCluster:
    """Connect to a cluster: a kubeconfig when there is one, else the pod's service account.

    Args:
        kubeconfig: Kubeconfig path; default ``$KUBECONFIG``, then ``~/.kube/config``.
        context: Context; default the kubeconfig's current context.
        namespace: Namespace; default the context's (or the pod's), else ``default``.
        field_manager: Field manager of every write (``--field-manager``).

    Raises:
        ConnectError: When neither a kubeconfig nor an in-cluster service account is found.
    """
    if kubeconfig is not None or os.environ.get("KUBECONFIG"):
        return KubernetesCluster.from_kubeconfig(
            kubeconfig, context, namespace, field_manager=field_manager
        )
    if Path("~/.kube/config").expanduser().exists():
        return KubernetesCluster.from_kubeconfig(
            None, context, namespace, field_manager=field_manager
        )
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return KubernetesCluster.in_cluster(namespace, field_manager=field_manager)
    raise ConnectError(
        "no kubeconfig found ($KUBECONFIG is unset and ~/.kube/config does not exist) and not "
        "running inside a cluster; pass --kubeconfig PATH"
    )
