"""Istio version profiles: the defaults that changed across releases.

Everything that depends on the Istio version lives here, never as a literal elsewhere. Sources are
in ``../shared/reference/istio-envoy-aws-facts.md`` (§1.6 legacy timeouts and retries, §2.4 weight
rule, §2.6 default retry policy, §2.8 default load balancer and circuit-breaker thresholds, §3.4
back-off).
"""

from __future__ import annotations

import dataclasses
import re

MAX_UINT32 = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class RetryDefaults:
    """A retry policy as istiod emits it."""

    num_retries: int
    retry_on: tuple[str, ...]
    retriable_status_codes: tuple[int, ...]
    previous_hosts: bool
    host_selection_retry_max_attempts: int


@dataclasses.dataclass(frozen=True)
class IstioProfile:
    """Version-dependent defaults.

    Attributes:
        name: Short name used on the command line (``"0.2"``, ``"1.24"`` ...).
        versions: Human description of the releases covered.
        legacy: True for the 0.2 RouteRule era (Pilot 0.2 semantics).
        default_route_timeout_s: Route timeout when the rule sets none (None = disabled).
        default_retry: Retry policy when the rule sets none (None = no retries).
        retry_on_when_unset: ``retry_on`` used when a rule sets retries without ``retryOn``.
        default_lb: Cluster load balancer when no DestinationRule says otherwise.
        weights_must_total_100: True when destination weights must sum to 100.
        truncate_fault_percent: True when fault percentages are truncated to an integer (0.2).
        circuit_breaker_default: Envoy thresholds (connections, pending, requests, retries) when
            no DestinationRule sets them.
        backoff_base_s: Retry back-off base interval.
        backoff_max_s: Retry back-off cap (Envoy: 10 × base).
        backoff_formula: ``"source"``: retry N waits U[0, min(2^(N-1)·B, max)) as Envoy's current
            ``JitteredExponentialBackOffStrategy``; ``"docs"``: U[0, (2^N-1)·B) as the docs say.
        gateway_selector: Labels of the ingress proxy pods.
        ingress_service: Name of the ingress Service (the RouteRule ``source`` at the ingress).
        eject_at_least_one: Outlier detection may eject one host even past
            ``maxEjectionPercent`` (Envoy < 1.27, i.e. Istio < 1.19; the 1.15 profile spans the
            change and takes the newer behaviour).
        token_bucket: ``timer`` (Envoy ≤ 1.31 adds ``tokens_per_fill`` at every
            ``fill_interval``) or ``continuous`` (Envoy ≥ 1.32, Istio ≥ 1.24: one token every
            ``fill_interval / tokens_per_fill``, measured on Envoy 1.40).
        connect_timeout_s: Upstream connect timeout when no DestinationRule sets one (mesh
            config ``connectTimeout``: 1 s in Istio 0.2, 10 s since).
    """

    name: str
    versions: str
    legacy: bool
    default_route_timeout_s: float | None
    default_retry: RetryDefaults | None
    retry_on_when_unset: tuple[str, ...]
    default_lb: str
    weights_must_total_100: bool
    truncate_fault_percent: bool
    circuit_breaker_default: tuple[int, int, int, int]
    backoff_base_s: float = 0.025
    backoff_max_s: float = 0.25
    backoff_formula: str = "source"
    gateway_selector: tuple[tuple[str, str], ...] = (("istio", "ingressgateway"),)
    ingress_service: str = "istio-ingressgateway"
    eject_at_least_one: bool = True
    token_bucket: str = "timer"
    connect_timeout_s: float = 10.0


_DEFAULT_RETRY_ON = ("connect-failure", "refused-stream", "unavailable", "cancelled")
_RETRY_503 = RetryDefaults(
    num_retries=2,
    retry_on=(*_DEFAULT_RETRY_ON, "retriable-status-codes"),
    retriable_status_codes=(503,),
    previous_hosts=True,
    host_selection_retry_max_attempts=5,
)
# Istio 1.1-1.5 also retried gRPC resource-exhausted (removed in 82e860a, 2020-03-10).
_RETRY_503_RX = RetryDefaults(
    num_retries=2,
    retry_on=(*_DEFAULT_RETRY_ON, "resource-exhausted", "retriable-status-codes"),
    retriable_status_codes=(503,),
    previous_hosts=True,
    host_selection_retry_max_attempts=5,
)
_RETRY_NO_503 = RetryDefaults(
    num_retries=2,
    retry_on=_DEFAULT_RETRY_ON,
    retriable_status_codes=(),
    previous_hosts=True,
    host_selection_retry_max_attempts=5,
)
_ENVOY_CB = (1024, 1024, 1024, 3)
_ISTIO_CB = (MAX_UINT32, MAX_UINT32, MAX_UINT32, MAX_UINT32)
# Istio 1.1-1.3 set only the outbound max_retries (1024) and left Envoy's 1024 for the rest.
_ISTIO_1_1_CB = (1024, 1024, 1024, 1024)

PROFILES: dict[str, IstioProfile] = {
    p.name: p
    for p in [
        IstioProfile(
            name="0.2",
            versions="Istio 0.2.x (RouteRule v1alpha2, istio-ingress)",
            legacy=True,
            default_route_timeout_s=15.0,
            default_retry=None,
            retry_on_when_unset=("5xx", "connect-failure", "refused-stream"),
            default_lb="ROUND_ROBIN",
            weights_must_total_100=True,
            truncate_fault_percent=True,
            circuit_breaker_default=_ENVOY_CB,
            backoff_formula="docs",
            gateway_selector=(("istio", "ingress"),),
            ingress_service="istio-ingress",
            connect_timeout_s=1.0,
        ),
        IstioProfile(
            name="1.0",
            versions="Istio 1.0.x",
            legacy=False,
            default_route_timeout_s=None,
            default_retry=None,
            retry_on_when_unset=("5xx", "connect-failure", "refused-stream"),
            default_lb="ROUND_ROBIN",
            weights_must_total_100=True,
            truncate_fault_percent=False,
            circuit_breaker_default=_ENVOY_CB,
            backoff_formula="docs",
        ),
        IstioProfile(
            name="1.1",
            versions="Istio 1.1 - 1.3",
            legacy=False,
            default_route_timeout_s=None,
            default_retry=_RETRY_503_RX,
            retry_on_when_unset=_RETRY_503_RX.retry_on,
            default_lb="ROUND_ROBIN",
            weights_must_total_100=True,
            truncate_fault_percent=False,
            circuit_breaker_default=_ISTIO_1_1_CB,
            backoff_formula="docs",
        ),
        IstioProfile(
            name="1.4",
            versions="Istio 1.4 - 1.5",
            legacy=False,
            default_route_timeout_s=None,
            default_retry=_RETRY_503_RX,
            retry_on_when_unset=_RETRY_503_RX.retry_on,
            default_lb="ROUND_ROBIN",
            weights_must_total_100=True,
            truncate_fault_percent=False,
            circuit_breaker_default=_ISTIO_CB,
            backoff_formula="docs",
        ),
        IstioProfile(
            name="1.6",
            versions="Istio 1.6 - 1.13",
            legacy=False,
            default_route_timeout_s=None,
            default_retry=_RETRY_503,
            retry_on_when_unset=_RETRY_503.retry_on,
            default_lb="ROUND_ROBIN",
            weights_must_total_100=True,
            truncate_fault_percent=False,
            circuit_breaker_default=_ISTIO_CB,
            backoff_formula="docs",
        ),
        IstioProfile(
            name="1.14",
            versions="Istio 1.14",
            legacy=False,
            default_route_timeout_s=None,
            default_retry=_RETRY_503,
            retry_on_when_unset=_RETRY_503.retry_on,
            default_lb="LEAST_REQUEST",
            weights_must_total_100=True,
            truncate_fault_percent=False,
            circuit_breaker_default=_ISTIO_CB,
        ),
        IstioProfile(
            name="1.15",
            versions="Istio 1.15 - 1.23",
            eject_at_least_one=False,
            legacy=False,
            default_route_timeout_s=None,
            default_retry=_RETRY_503,
            retry_on_when_unset=_RETRY_503.retry_on,
            default_lb="LEAST_REQUEST",
            weights_must_total_100=False,
            truncate_fault_percent=False,
            circuit_breaker_default=_ISTIO_CB,
        ),
        IstioProfile(
            name="1.24",
            versions="Istio 1.24 and later",
            eject_at_least_one=False,
            token_bucket="continuous",
            legacy=False,
            default_route_timeout_s=None,
            default_retry=_RETRY_NO_503,
            retry_on_when_unset=_RETRY_NO_503.retry_on,
            default_lb="LEAST_REQUEST",
            weights_must_total_100=False,
            truncate_fault_percent=False,
            circuit_breaker_default=_ISTIO_CB,
        ),
    ]
}

DEFAULT_PROFILE = "1.24"


def get_profile(name: str | IstioProfile | None = None) -> IstioProfile:
    """Return the profile for an Istio version.

    Args:
        name: A profile name or any Istio version (``"1.7"``, ``"1.20.3"``, ``"0.2.12"``);
            None gives the newest profile. A profile is returned unchanged.

    Returns:
        The profile covering that version.

    Raises:
        ValueError: If the version is not understood; the message lists the profiles.
    """
    if isinstance(name, IstioProfile):
        return name
    if name is None:
        return PROFILES[DEFAULT_PROFILE]
    text = str(name).strip().lower().removeprefix("istio").strip().removeprefix("v")
    if text in ("latest", "newest", "modern"):
        return PROFILES[DEFAULT_PROFILE]
    if text == "legacy":
        return PROFILES["0.2"]
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", text)
    if m is None:
        raise ValueError(
            f"unknown Istio profile {name!r}; use a version such as 0.2, 1.0, 1.7, 1.20 or 1.24 "
            f"(profiles: {', '.join(PROFILES)})"
        )
    major, minor = int(m.group(1)), int(m.group(2))
    if major == 0:
        if minor <= 2:
            return PROFILES["0.2"]
        raise ValueError(
            f"Istio {text} is between the RouteRule era and 1.0; istiolab models 0.2 and >= 1.0"
        )
    if major > 1 or minor >= 24:
        return PROFILES["1.24"]
    if minor >= 15:
        return PROFILES["1.15"]
    if minor == 14:
        return PROFILES["1.14"]
    if minor >= 6:
        return PROFILES["1.6"]
    if minor >= 4:
        return PROFILES["1.4"]
    if minor >= 1:
        return PROFILES["1.1"]
    return PROFILES["1.0"]
