"""Errors of the cluster layer, and the scrubbing that keeps credentials out of them.

Every error is a :class:`istiolab.errors.ClusterError`. Errors that come from the Kubernetes API
are :class:`ApiError` subclasses chosen by HTTP status, and their messages name the verb, the
resource, the namespace and the API's reason, e.g.::

    forbidden: cannot patch virtualservices.networking.istio.io "web" in namespace "shop":
    User "ci" cannot patch resource ... (HTTP 403 Forbidden)

Both cluster adapters (the real one and the in-memory one) build their errors with
:func:`api_error`, so callers and tests see the same types and messages from both.

Messages pass through a :class:`Scrubber` first: known secrets (the kubeconfig's token,
password, client key and certificate) and anything shaped like a bearer token, a JWT or a PEM
block are replaced by ``<redacted>``. The API's text is then cut to :data:`MAX_BODY` bytes
(:func:`truncate`): an error page from a proxy can be megabytes of HTML.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Sequence

from istiolab.errors import ClusterError

__all__ = [
    "PATTERNS",
    "ApiError",
    "BackupError",
    "BackupUnwritableError",
    "ConflictError",
    "ConnectError",
    "FieldConflict",
    "ForbiddenError",
    "InvalidError",
    "IstioNotServedError",
    "NotFoundError",
    "OtherClusterError",
    "RefusedError",
    "Scrubber",
    "StalePlanError",
    "UnauthorizedError",
    "api_error",
    "describe_target",
    "is_ambiguous",
    "truncate",
]

REDACTED = "<redacted>"

MAX_BODY = 500
"""Bytes of an API answer's text kept in a message; the rest is counted, not shown."""

# Shapes of secrets that must never be printed, whatever their source.
PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"\bk8s-aws-v1\.[A-Za-z0-9_-]{8,}"),  # EKS (aws-iam-authenticator) token
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----", re.DOTALL),
    re.compile(
        r"(?i)(\"?(?:token|password|client-key-data|client-certificate-data)\"?\s*[:=]\s*)"
        r"\"?[^\s\",}]+"
    ),
    re.compile(r"(?<=//)[^/@\s:]+:[^/@\s]+(?=@)"),  # user:password@ in a URL
)


class Scrubber:
    """Removes secrets from text before it reaches a message, a log or a traceback.

    Args:
        secrets: Values that must never be shown (tokens, passwords, key and certificate data).
            Base64 values are also known in decoded form.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for s in secrets:
            s = s.strip()
            if len(s) < 6:  # too short to be a credential; replacing it would garble text
                continue
            values.add(s)
            if s.lower().startswith("bearer "):
                values.add(s[7:].strip())
            try:
                decoded = base64.b64decode(s, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue
            values.update(line.strip() for line in decoded.splitlines() if len(line.strip()) >= 16)
            if len(decoded.strip()) >= 6:
                values.add(decoded.strip())
        # Longest first, so a value is never left half-replaced by a shorter one inside it.
        self._secrets = tuple(sorted(values, key=len, reverse=True))

    def __call__(self, text: str | None) -> str:
        """Return *text* with every known secret and secret-shaped substring redacted."""
        if not text:
            return ""
        for s in self._secrets:
            text = text.replace(s, REDACTED)
        for pattern in PATTERNS:
            if pattern.groups:
                text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
            else:
                text = pattern.sub(REDACTED, text)
        return text

    def __repr__(self) -> str:
        return f"Scrubber(<{len(self._secrets)} secret(s) redacted>)"

    def add(self, secrets: Iterable[str]) -> Scrubber:
        """A scrubber that also knows *secrets*."""
        return Scrubber((*self._secrets, *secrets))


def truncate(text: str, limit: int = MAX_BODY) -> str:
    """The first *limit* bytes of *text* (UTF-8), then ``…(N bytes)`` with its full size.

    Scrub before truncating: a cut could split a secret so that its pattern no longer matches.
    """
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    head = data[:limit].decode("utf-8", errors="ignore")  # never half a character
    return f"{head}…({len(data)} bytes)"


@dataclasses.dataclass(frozen=True)
class FieldConflict:
    """A field that server-side apply would take from another field manager.

    Attributes:
        field: The field path as the API server reports it (``.spec.http``).
        manager: The field manager that owns it (``kubectl-client-side-apply``).
        message: The API server's text for this conflict.
    """

    field: str
    manager: str
    message: str = ""

    def format(self) -> str:
        """``.spec.http (owned by "kubectl-client-side-apply")``."""
        return f'{self.field} (owned by "{self.manager}")'


def describe_target(
    resource: str,
    namespace: str | None,
    name: str | None,
    *,
    namespaced: bool = True,
) -> str:
    """How messages name what was acted on.

    ``virtualservices.networking.istio.io "web" in namespace "shop"``; for a list, without the
    name; for a cluster-scoped resource, ``nodes (cluster-scoped)``.
    """
    text = resource + (f' "{name}"' if name else "")
    if not namespaced:
        return text + " (cluster-scoped)"
    if namespace is None:
        return text + " in all namespaces"
    return text + f' in namespace "{namespace}"'


class BackupError(ClusterError):
    """A backup set could not be written (disk full, permissions): istiolab must not go on."""


class ConnectError(ClusterError):
    """No cluster could be reached: kubeconfig missing or invalid, unknown context, no route."""


class IstioNotServedError(ClusterError):
    """The cluster serves none of the Istio APIs istiolab reads and writes."""


class RefusedError(ClusterError):
    """istiolab refused to change the cluster (conflicts, rejected objects, wrong context).

    Attributes:
        conflicts: ``(resource, conflict)`` pairs, when conflicts are the reason.
    """

    def __init__(self, message: str, conflicts: Sequence[tuple[str, FieldConflict]] = ()) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)


class ApiError(ClusterError):
    """The Kubernetes API answered with an error status.

    Attributes:
        verb: The Kubernetes verb (``get``, ``list``, ``patch``, ``delete``).
        resource: ``plural.group`` (``virtualservices.networking.istio.io``).
        namespace: The namespace, or None (all namespaces, or cluster-scoped).
        name: The object's name, or None for a list.
        status: HTTP status (0 when there was no HTTP answer).
        reason: The API's reason (``Forbidden``, ``Conflict``, ``Invalid``, ...).
        api_message: The API's message, scrubbed.
        dry_run: Whether it was a server-side dry run.
    """

    def __init__(
        self,
        message: str,
        *,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        status: int,
        reason: str,
        api_message: str,
        dry_run: bool = False,
    ) -> None:
        super().__init__(message)
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.status = status
        self.reason = reason
        self.api_message = api_message
        self.dry_run = dry_run


class UnauthorizedError(ApiError):
    """HTTP 401: the credentials were not accepted (expired token, wrong cluster)."""


class ForbiddenError(ApiError):
    """HTTP 403: RBAC denied the verb on the resource in the namespace."""


class NotFoundError(ApiError):
    """HTTP 404: the object, or the API (group/version/resource), does not exist."""


class InvalidError(ApiError):
    """HTTP 400/422: the API server (schema or admission webhook) rejected the object."""


class BackupUnwritableError(RefusedError):
    """The backup set could not be created (``--backup-dir`` not writable, disk full).

    Nothing was changed. The CLI treats it as an output that cannot be written (exit 2).
    """


class OtherClusterError(RefusedError):
    """A backup set was made on another cluster than the one reached (its identity differs)."""


class StalePlanError(RefusedError):
    """Objects changed on the cluster after the plan was made (and approved): nothing applied.

    Attributes:
        changed: ``Kind/namespace/name`` of every object that changed, with what changed.
    """

    def __init__(self, message: str, changed: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.changed = tuple(changed)


class ConflictError(ApiError):
    """HTTP 409: field-manager conflicts, a stale resourceVersion, or a failed precondition.

    Attributes:
        conflicts: Per-field conflicts of a server-side apply (empty for other 409s).
    """

    def __init__(
        self, message: str, *, conflicts: Sequence[FieldConflict] = (), **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.conflicts = tuple(conflicts)


_MANAGER = re.compile(r'conflict with "([^"]*)"')


def parse_conflicts(causes: object) -> list[FieldConflict]:
    """Field conflicts from a Status's ``details.causes`` (reason ``FieldManagerConflict``)."""
    out: list[FieldConflict] = []
    if not isinstance(causes, list):
        return out
    for cause in causes:
        if not isinstance(cause, dict):
            continue
        if cause.get("reason") not in (None, "FieldManagerConflict"):
            continue
        message = str(cause.get("message") or "")
        m = _MANAGER.search(message)
        out.append(
            FieldConflict(
                field=str(cause.get("field") or "?"),
                manager=m.group(1) if m else "another field manager",
                message=message,
            )
        )
    return out


def api_error(
    *,
    status: int,
    reason: str,
    message: str,
    verb: str,
    resource: str,
    namespace: str | None,
    name: str | None,
    namespaced: bool = True,
    causes: object = None,
    dry_run: bool = False,
    context: str | None = None,
    scrub: Scrubber | None = None,
) -> ApiError:
    """The :class:`ApiError` subclass for an API answer, with a message naming what failed.

    Args:
        status: HTTP status.
        reason: The Status ``reason``.
        message: The Status ``message`` (scrubbed here).
        verb: Kubernetes verb.
        resource: ``plural.group``.
        namespace: Namespace (None: all, or cluster-scoped).
        name: Object name (None for lists).
        namespaced: Whether the resource is namespaced.
        causes: The Status ``details.causes`` (for per-field conflicts).
        dry_run: Whether the request was a server-side dry run.
        context: The kubeconfig context, named in 401 messages.
        scrub: Scrubber for the API's text.
    """
    scrub = scrub or Scrubber()
    api_message = truncate(scrub(message).strip())
    reason = truncate(scrub(reason).strip(), 100) or "Unknown"
    target = describe_target(resource, namespace, name, namespaced=namespaced)
    doing = f"{verb}{' (dry run)' if dry_run else ''}"
    tail = f"{': ' + api_message if api_message else ''} (HTTP {status} {reason})"
    kw = {
        "verb": verb,
        "resource": resource,
        "namespace": namespace,
        "name": name,
        "status": status,
        "reason": reason,
        "api_message": api_message,
        "dry_run": dry_run,
    }
    if status == 401:
        ctx = f' of context "{context}"' if context else ""
        return UnauthorizedError(
            f"unauthorized: the API server did not accept the credentials{ctx} "
            f"(cannot {doing} {target}){tail}; refresh the credentials "
            "(e.g. `aws eks update-kubeconfig`) and retry",
            **kw,  # type: ignore[arg-type]
        )
    if status == 403:
        return ForbiddenError(
            f"forbidden: cannot {doing} {target}{tail}; ask for RBAC permission to "
            f"{verb} {resource} in that namespace",
            **kw,  # type: ignore[arg-type]
        )
    if status == 404:
        return NotFoundError(f"not found: {target} ({doing}){tail}", **kw)  # type: ignore[arg-type]
    if status == 409:
        conflicts = parse_conflicts(causes)
        if conflicts:
            fields = "; ".join(c.format() for c in conflicts)
            text = (
                f"conflict: cannot {doing} {target}: {len(conflicts)} field(s) are managed by "
                f"another field manager: {fields}; take them over with --force, or leave "
                "them out of your config"
            )
        else:
            text = f"conflict: cannot {doing} {target}{tail}"
        return ConflictError(text, conflicts=conflicts, **kw)
    if status in (400, 422):
        return InvalidError(
            f"rejected: the API server refused to {doing} {target}{tail}",
            **kw,  # type: ignore[arg-type]
        )
    what = "failed" if status else "got no answer"
    return ApiError(f"{doing} {target} {what}{tail}", **kw)  # type: ignore[arg-type]


def is_ambiguous(err: BaseException) -> bool:
    """Whether a failed write may nevertheless have been stored.

    A 4xx answer is a refusal: the API server stored nothing. No answer (a timeout, a lost
    connection), a 5xx (the API server answers 504 when its own timeout fires while the write
    goes on in etcd; a 500 may come after the commit) or a 2xx with a body that is not JSON (a
    proxy in the way) say nothing about what was stored: only reading the object back does.
    """
    if not isinstance(err, ApiError):
        return True
    return err.status == 0 or err.status >= 500 or err.status < 400 or err.status == 408
