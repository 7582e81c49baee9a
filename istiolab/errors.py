"""One exception hierarchy for istiolab.

Bad *configuration* is reported as :class:`~istiolab.findings.Finding` objects, not exceptions;
:class:`ConfigError` is raised only at API boundaries (for example when a function needs a valid
config set) and carries every finding so callers can show them all at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from istiolab.findings import Finding


class IstiolabError(Exception):
    """Root of every error istiolab raises on purpose."""


class ConfigError(IstiolabError):
    """Configuration is invalid; ``findings`` lists every problem found."""

    def __init__(self, findings: Sequence[Finding], message: str | None = None) -> None:
        self.findings = tuple(findings)
        if message is None:
            lines = [f.format() for f in self.findings[:20]]
            more = len(self.findings) - 20
            if more > 0:
                lines.append(f"... and {more} more")
            message = f"{len(self.findings)} configuration problem(s):\n" + "\n".join(lines)
        super().__init__(message)


class CompileError(IstiolabError):
    """A config set could not be compiled into a route table.

    The message names the source object and field.
    """


class SimulationError(IstiolabError):
    """A scenario could not be simulated."""


class ClusterError(IstiolabError):
    """Talking to a Kubernetes cluster failed (wraps the client's ApiException)."""


class SandboxError(IstiolabError):
    """The Envoy sandbox could not start, or a process in it failed."""


class SettingError(IstiolabError, ValueError):
    """An environment variable istiolab reads has a value it does not accept.

    The message names the variable, the accepted values and the value given (cut short).
    """


class MissingDependencyError(IstiolabError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"this feature needs the optional package {package!r}; "
            f"install it with: pip install 'istiolab[{extra}]'"
        )
