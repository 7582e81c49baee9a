"""Building blocks shared by every config resource.

Resources are frozen pydantic models with camelCase aliases (as in the Kubernetes YAML) and
``extra="forbid"``, so the schema checking is pydantic's and its error locations become finding
paths. Field types that carry an Istio rule (durations, percentages, HTTP statuses, RE2 regexes)
raise pydantic errors of their own *type*, which :mod:`istiolab.config.registry` maps to stable
finding codes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from istiolab.regex import check_re2
from istiolab.units import is_duration, parse_duration


def camel(name: str) -> str:
    """Snake case to Istio's camelCase (``consecutive_5xx_errors`` → ``consecutive5xxErrors``)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class IstioModel(BaseModel):
    """Base of every config model: frozen, camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=camel,
        populate_by_name=True,
        serialize_by_alias=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The resource as plain data, with only the fields that were set (YAML-ready)."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude_none=True, mode="json")


# -- field types with their own error types ------------------------------------------------


def _duration(value: str) -> str:
    if not is_duration(value):
        raise PydanticCustomError(
            "duration",
            "{value} is not a duration",
            {"value": repr(value)},
        )
    if parse_duration(value) < 0.001:
        raise PydanticCustomError(
            "duration",
            "{value} is shorter than 1ms",
            {"value": repr(value)},
        )
    return value


def _percent(value: float) -> float:
    if not 0.0 <= value <= 100.0:
        raise PydanticCustomError("percent", "{value} is not within 0..100", {"value": value})
    return value


def _http_status(value: int) -> int:
    if not 200 <= value <= 599:
        raise PydanticCustomError("http_status", "{value} is not within 200..599", {"value": value})
    return value


def _legacy_http_status(value: int) -> int:
    # Pilot 0.2 validation accepted 0..600 (0 meaning "no abort").
    if not 0 <= value <= 600:
        raise PydanticCustomError("http_status", "{value} is not within 0..600", {"value": value})
    return value


def _regex(value: str) -> str:
    problem = check_re2(value)
    if problem is not None:
        raise PydanticCustomError(
            "regex",
            "{value} is not an RE2 regex: {problem}",
            {"value": repr(value), "problem": problem},
        )
    return value


Duration = Annotated[str, AfterValidator(_duration)]
"""A protobuf Duration string (``"250ms"``, ``"1.5s"``), at least 1 ms."""
Percent = Annotated[float, AfterValidator(_percent)]
"""A percentage 0..100."""
HttpStatus = Annotated[int, AfterValidator(_http_status)]
"""An HTTP status 200..599."""
LegacyHttpStatus = Annotated[int, AfterValidator(_legacy_http_status)]
"""An HTTP status as Istio 0.2 validated it (0..600)."""
Regex = Annotated[str, AfterValidator(_regex)]
"""A regular expression that RE2 accepts (Envoy and Istio use RE2)."""


def one_of(model: BaseModel, fields: tuple[str, ...], *, required: bool = True) -> None:
    """Raise a ``oneof`` error unless exactly one (or, if not *required*, at most one) is set."""
    present = [f for f in fields if getattr(model, f) is not None]
    names = ", ".join(camel(f) for f in fields)
    if len(present) > 1:
        raise PydanticCustomError(
            "oneof",
            "only one of {names} may be set, got {got}",
            {"names": names, "got": ", ".join(camel(f) for f in present)},
        )
    if required and not present:
        raise PydanticCustomError("oneof", "one of {names} must be set", {"names": names})


# -- Kubernetes object shell ---------------------------------------------------------------


class ObjectMeta(IstioModel):
    """Kubernetes ``metadata``; server-managed fields are accepted and kept."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


SUPPRESS_ANNOTATION = "istiolab.io/suppress"


class Resource(IstioModel):
    """A Kubernetes-style object: ``apiVersion``, ``kind``, ``metadata``, ``spec``.

    Subclasses set :attr:`API_VERSIONS` and :attr:`KIND`; the registry maps
    ``(apiVersion, kind)`` to the class.
    """

    API_VERSIONS: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""

    api_version: str
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    status: Any = None

    @property
    def name(self) -> str:
        """``metadata.name`` (empty when missing)."""
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        """``metadata.namespace``, ``default`` when unset."""
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        """``Kind/namespace/name``, how findings name a resource."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def suppressed(self) -> frozenset[str]:
        """Finding codes suppressed by the ``istiolab.io/suppress`` annotation."""
        text = self.metadata.annotations.get(SUPPRESS_ANNOTATION, "")
        return frozenset(c.strip().upper() for c in text.split(",") if c.strip())
