"""The analyzer's checks, one module per resource family, over one shared index.

:class:`~istiolab.config.checks.context.Context` indexes a config set once (Services and
ServiceEntries by host, DestinationRules by host, Gateways by name, Deployments by namespace) and
collects findings; each family module has a ``check(ctx)`` that reads the index. The entry point
stays :func:`istiolab.config.validate.validate`, which runs them in :data:`FAMILIES` order.
Each check cites, in a comment, the istioctl analyzer or Kiali checker it follows.
"""

from __future__ import annotations

from collections.abc import Callable

from istiolab.config.checks import (
    destinationrules,
    envoyfilters,
    gateways,
    references,
    services,
    virtualservices,
    workloads,
)
from istiolab.config.checks.context import Context

FAMILIES: tuple[Callable[[Context], None], ...] = (
    references.check,
    gateways.check,
    virtualservices.check,
    destinationrules.check,
    services.check,
    envoyfilters.check,
    workloads.check,
)

__all__ = ["FAMILIES", "Context"]
