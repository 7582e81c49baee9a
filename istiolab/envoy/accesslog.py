"""The file access log that records Envoy's response flags for every request.

:func:`~istiolab.envoy.render.render` writes it into the HTTP connection manager when asked
for an access log, and the sandbox (:class:`~istiolab.envoy.sandbox.EnvoySandbox`) reads it
back, matching each line to its request by the ``x-istiolab-req`` header. Both sides import
the format from here, so rendering config does not depend on the process runner.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ACCESS_LOG_FORMAT", "REQUEST_ID_HEADER", "file_access_log"]

REQUEST_ID_HEADER = "x-istiolab-req"
"""Request header carrying the sandbox's per-request id (logged as ``req``)."""

ACCESS_LOG_FORMAT: dict[str, str] = {
    "req": "%REQ(X-ISTIOLAB-REQ)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "route": "%ROUTE_NAME%",
    "duration_ms": "%DURATION%",
}
"""``log_format.json_format`` the render callable must give the file access log.

The sandbox needs ``req`` (the ``x-istiolab-req`` request header) and ``flags``
(``%RESPONSE_FLAGS%``, ``"-"`` when none); the other keys are kept for diagnostics.
"""


def file_access_log(path: str) -> dict[str, Any]:
    """Return an HCM ``access_log`` entry writing :data:`ACCESS_LOG_FORMAT` to ``path``.

    Args:
        path: The access log path the sandbox passed to the render callable.

    Returns:
        One element for ``HttpConnectionManager.access_log``.
    """
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"json_format": dict(ACCESS_LOG_FORMAT)},
        },
    }
