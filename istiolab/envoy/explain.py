"""Compile only what one request needs: the VirtualServices that can serve its authority.

``istiolab explain`` routes one request. Envoy picks one virtual host by the request's
authority (``:authority``/``Host``) and only that virtual host's routes are tried, so the
VirtualServices none of whose hosts can accept the authority cannot change the answer: they
only cost validation and compilation time (a large gateway config has thousands). This module
keeps every other resource (Gateways, DestinationRules, Services, EnvoyFilters) and drops those
VirtualServices before validating and compiling.

Legacy input (RouteRules, Istio Ingresses) is converted as a whole, as
:func:`istiolab.envoy.compile.compile` does, and is not reduced.
"""

from __future__ import annotations

import dataclasses

from istiolab.config.configset import ConfigSet
from istiolab.config.hosts import fqdn, host_matches
from istiolab.config.model import VirtualService
from istiolab.config.validate import validate
from istiolab.envoy.compile import _Compiler, compile, default_profile, is_legacy
from istiolab.envoy.match import strip_port
from istiolab.envoy.model import RouteTable
from istiolab.errors import ConfigError
from istiolab.findings import Finding, Severity
from istiolab.profiles import IstioProfile, get_profile

__all__ = ["compile_for_host", "compile_validated", "for_authority", "serves"]


def serves(vs: VirtualService, authority: str) -> bool:
    """Whether a host of *vs* can accept *authority* (on a gateway, or by short name in the mesh).

    Generous on purpose: a VirtualService kept that serves no virtual host of the request costs
    a little time; one dropped that does would change the answer.
    """
    host = strip_port(authority).lower()
    for h in vs.spec.hosts:
        h = h.lower()
        if host_matches(h, host) or host_matches(host, h):
            return True
        full = fqdn(h, vs.namespace)
        if full == host or full.startswith(host + "."):  # reviews, reviews.ns, reviews.ns.svc
            return True
    return False


def for_authority(config: ConfigSet, authority: str) -> ConfigSet:
    """*config* without the VirtualServices that cannot serve *authority* (all else kept)."""
    keep = [
        i
        for i, r in enumerate(config.resources)
        if not isinstance(r, VirtualService) or serves(r, authority)
    ]
    if len(keep) == len(config.resources):
        return config
    return dataclasses.replace(
        config,
        resources=tuple(config.resources[i] for i in keep),
        origins=tuple(config.origins[i] for i in keep),
    )


def compile_validated(
    config: ConfigSet,
    profile: IstioProfile | str | None = None,
    gateway: str | None = None,
    *,
    port: int | None = None,
) -> RouteTable:
    """Compile a modern config set that the caller has validated already.

    :func:`~istiolab.envoy.compile.compile` validates first and refuses on errors. A caller
    that has the findings already (``lint`` with provenance, :func:`compile_for_host`) would
    pay validation twice; this runs the same compiler without it. Legacy input goes through
    :func:`~istiolab.envoy.compile.compile` (conversion needs its own checks).

    Raises:
        CompileError: When the gateway or port asked for does not exist.
    """
    if is_legacy(config):
        return compile(config, profile, gateway, port=port)
    prof = get_profile(profile if profile is not None else default_profile(config))
    notes: list[Finding] = []
    return _Compiler(config, prof, notes, {}).run(gateway, port)


def compile_for_host(
    config: ConfigSet,
    authority: str,
    profile: IstioProfile | str | None = None,
    gateway: str | None = None,
    *,
    port: int | None = None,
) -> RouteTable:
    """The route table for requests to *authority*: its VirtualServices validated and compiled.

    Errors in the VirtualServices dropped (those that cannot serve *authority*) do not stop
    it; errors in anything it keeps do, as in :func:`~istiolab.envoy.compile.compile`.

    Raises:
        ConfigError: When validation of what is kept finds errors (every one is listed).
        CompileError: When the gateway or port asked for does not exist.
    """
    if is_legacy(config):
        return compile(config, profile, gateway, port=port)
    reduced = for_authority(config, authority)
    prof = get_profile(profile if profile is not None else default_profile(config))
    problems = [f for f in validate(reduced, prof) if f.severity is Severity.ERROR]
    if problems:
        raise ConfigError(problems)
    return compile_validated(reduced, prof, gateway, port=port)
