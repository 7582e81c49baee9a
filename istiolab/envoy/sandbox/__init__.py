"""Process layer of the real-Envoy sandbox: stub backends, one Envoy, requests, cleanup.

An :class:`EnvoySandbox` starts

* one child process serving stub HTTP backends (``_stubs.py``), every endpoint on its own
  ``127.0.0.1`` port, answering JSON that names the cluster and endpoint;
* one Envoy, configured by a *render callable* (see :data:`RenderFn`) from the backend
  addresses the stubs reported,

and sends requests through Envoy, attributing Envoy's ``%RESPONSE_FLAGS%`` to every request via
the file access log.

Render contract (what ``render(listener_port, clusters, access_log_path)`` must return):

* an Envoy v3 bootstrap ``dict`` (JSON-able);
* at least one listener bound to ``127.0.0.1`` on ``listener_port`` -- the sandbox passes
  ``0`` and discovers the real port from ``GET /listeners?format=json`` (the first listener
  is the one :attr:`EnvoySandbox.listener_url` and :meth:`EnvoySandbox.send` use);
* a STATIC (or similar) cluster for every key of ``clusters``, with exactly the given
  ``(host, port)`` endpoints; other clusters are allowed;
* on the HTTP connection manager, a file access log at ``access_log_path`` whose
  ``log_format.json_format`` is :data:`ACCESS_LOG_FORMAT` (use :func:`file_access_log`);
  extra keys are allowed, the ones in :data:`ACCESS_LOG_FORMAT` must stay as they are;
* no ``admin`` section is needed: the sandbox overwrites ``bootstrap["admin"]`` with an admin
  bound to ``127.0.0.1`` port 0.

Every request the sandbox sends carries a unique ``x-istiolab-req`` header; the access log
line with the same id gives the request's flags.

Cleanup: no Envoy, stub process, port or temp dir outlives the sandbox -- on ``close()``,
leaving the ``with`` block (also by an exception or ``KeyboardInterrupt``), SIGTERM to this
Python process (a handler is installed at the first ``start()`` from the main thread if
SIGTERM had the default action, or chained in front of a Python handler), interpreter exit
(``atexit``), and -- on Linux -- even SIGKILL of this process, via ``PR_SET_PDEATHSIG``.
Children are always forked from a thread that lives as long as the process (the main thread,
or a private daemon spawner thread), because the kernel delivers ``PR_SET_PDEATHSIG`` when the
*thread* that forked the child ends. The temp dir is inside the run's directory
(:func:`istiolab.processes.run_dir`); after a SIGKILL only that directory stays behind, and the
next istiolab run in the same PID namespace that needs a temp dir deletes it.
"""

from __future__ import annotations

# The idna codec, loaded now rather than on the first socket.getaddrinfo("127.0.0.1", ...):
# Python imports it lazily there, and a Ctrl-C that lands inside that first import leaves the
# codec unknown to the process ("LookupError: unknown encoding: idna"), so the clean-up's own
# requests to Envoy's admin then fail and the command exits as an internal error (seen once in
# tests/hostile/test_processes.py, SIGINT while Envoy was starting).
import encodings.idna  # noqa: F401

from istiolab.envoy.accesslog import ACCESS_LOG_FORMAT, REQUEST_ID_HEADER, file_access_log
from istiolab.envoy.sandbox.binary import find_envoy, validate_config
from istiolab.envoy.sandbox.data import BackendBehaviour, BackendSpec, RenderFn, Reply
from istiolab.envoy.sandbox.envoy_sandbox import EnvoySandbox

__all__ = [
    "ACCESS_LOG_FORMAT",
    "REQUEST_ID_HEADER",
    "BackendBehaviour",
    "BackendSpec",
    "EnvoySandbox",
    "RenderFn",
    "Reply",
    "file_access_log",
    "find_envoy",
    "validate_config",
]
