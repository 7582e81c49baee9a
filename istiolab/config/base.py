"""Building blocks shared by every config resource.

Resources are frozen pydantic models with camelCase aliases (as in the Kubernetes YAML) and
``extra="forbid"``, so the schema checking is pydantic's and its error locations become finding
paths. Field types that carry an Istio rule (durations, percentages, HTTP statuses, RE2 regexes)
raise pydantic errors of their own *type*, which :mod:`istiolab.config.registry` maps to stable
finding codes. Integers carry the range of their protobuf type (:data:`Int32`, :data:`UInt32`,
:data:`Port`, ...), as range errors (``IL108``) that name the type; floats must be finite.

Some rules need a finding code of their own: header names and values, Envoy's regex program size.
Their types carry a :class:`Check` marker, and :func:`checked_values` finds every marked value of
a resource for :mod:`istiolab.config.validate`.
"""

from __future__ import annotations

import enum
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from istiolab.regex import check_re2
from istiolab.units import duration_problem, parse_duration


def camel(name: str) -> str:
    """Snake case to Istio's camelCase (``consecutive_5xx_errors`` → ``consecutive5xxErrors``)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _non_finite(data: Any) -> tuple[str, float] | None:
    """The first NaN or ±∞ inside JSON-like *data*: its path (``a.b[0]``) and the number."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where, value
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
    return None


def _finite_data(value: Any) -> Any:
    found = _non_finite(value)
    if found is not None:
        where, number = found
        raise PydanticCustomError(
            "finite_number",
            "Input should be a finite number, not {number}{at}",
            {"number": str(number), "at": f" at {where[:200]}" if where else ""},
        )
    return value


Data = Annotated[Any, AfterValidator(_finite_data)]
"""Free-form JSON data kept as it is: no NaN or infinity anywhere inside (JSON has none)."""


class IstioModel(BaseModel):
    """Base of every config model: frozen, camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=camel,
        populate_by_name=True,
        serialize_by_alias=True,
        # protobuf doubles in JSON, and Kubernetes' JSON, have no NaN or infinity
        allow_inf_nan=False,
    )
    # fields kept by models with extra="allow" are free-form data too
    __pydantic_extra__: dict[str, Data] = Field(init=False)

    def to_dict(self) -> dict[str, Any]:
        """The resource as plain data, with only the fields that were set (YAML-ready)."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude_none=True, mode="json")


# -- field types with their own error types ------------------------------------------------


def _duration(value: str) -> str:
    problem = duration_problem(value)
    if problem is not None:
        raise PydanticCustomError(
            "duration",
            "{value} is {problem}",
            {"value": repr(value[:60]), "problem": problem},
        )
    if parse_duration(value) < 0.001:
        raise PydanticCustomError(
            "duration",
            "{value} is shorter than 1ms",
            {"value": repr(value)},
        )
    return value


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NANOS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}
_UNIT_NANOS |= {"m": 60 * 10**9, "h": 3600 * 10**9}


def duration_nanos(value: str) -> Fraction:
    """A duration in the protobuf JSON / Go shorthand (``1.5s``, ``1h30m``), exact, in ns."""
    return sum(
        (Fraction(num) * _UNIT_NANOS[unit] for num, unit in _DURATION_PART.findall(value)),
        Fraction(0),
    )


def _whole_ms(value: str) -> str:
    # istiod's webhook (and Pilot 0.2's validation) refuse what the CRD schema lets through:
    # "only durations to ms precision are supported" (ValidateDuration in istio/istio
    # pkg/config/validation/agent/validation.go). Checked last, so a value the CRD refuses
    # gets that reason first.
    ms = duration_nanos(value) / 10**6
    if ms.denominator != 1:
        raise PydanticCustomError(
            "duration",
            "{value} is not a whole number of milliseconds (istiod refuses sub-ms precision: "
            "write {whole}ms)",
            {"value": repr(value[:60]), "whole": max(1, round(ms))},
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


Duration = Annotated[str, AfterValidator(_duration), AfterValidator(_whole_ms)]
"""A protobuf Duration string (``"250ms"``, ``"1.5s"``), 1 ms up to 315,576,000,000 s, in ns."""
Percent = Annotated[float, AfterValidator(_percent)]
"""A percentage 0..100."""
HttpStatus = Annotated[int, AfterValidator(_http_status)]
"""An HTTP status 200..599."""
LegacyHttpStatus = Annotated[int, AfterValidator(_legacy_http_status)]
"""An HTTP status as Istio 0.2 validated it (0..600)."""
Regex = Annotated[str, AfterValidator(_regex)]
"""A regular expression that RE2 accepts (Envoy and Istio use RE2)."""


# -- integer ranges of the protobuf and Kubernetes types ----------------------------------

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1


def _range(low: int, high: int, what: str) -> AfterValidator:
    """:func:`_range_check` as a pydantic validator."""
    return AfterValidator(_range_check(low, high, what))


def _range_check(low: int, high: int, what: str) -> Callable[[int], int]:
    """A range check whose error (type ``greater_than_equal``/``less_than_equal``) names *what*."""

    def check(value: int) -> int:
        if value < low:
            raise PydanticCustomError(
                "greater_than_equal",
                "Input should be greater than or equal to {ge} ({what})",
                {"ge": low, "what": what},
            )
        if value > high:
            raise PydanticCustomError(
                "less_than_equal",
                "Input should be less than or equal to {le} ({what})",
                {"le": high, "what": what},
            )
        return value

    return check


Int32 = Annotated[int, _range(INT32_MIN, INT32_MAX, "int32 in the proto")]
"""A protobuf ``int32``."""
NonNegativeInt32 = Annotated[int, _range(0, INT32_MAX, "int32 in the proto")]
"""A protobuf ``int32`` that Istio requires to be ≥ 0 (weights, attempts, pool limits)."""
UInt32 = Annotated[int, _range(0, UINT32_MAX, "uint32 in the proto")]
"""A protobuf ``uint32`` (or ``google.protobuf.UInt32Value``)."""
NonNegativeInt64 = Annotated[int, _range(0, INT64_MAX, "int64 in the proto")]
"""A protobuf ``int64`` that must be ≥ 0."""
Int64 = Annotated[int, _range(INT64_MIN, INT64_MAX, "int64 in the proto")]
"""A protobuf ``int64``."""
UInt64 = Annotated[int, _range(0, UINT64_MAX, "uint64 in the proto")]
"""A protobuf ``uint64``."""
Port = Annotated[int, _range(1, 65535, "a port number")]
"""A TCP port 1..65535 (Kubernetes ``int32`` ports, validated as 1..65535)."""
OptionalPort = Annotated[int, _range(0, 65535, "a port number, 0 for none")]
"""A port 0..65535 where 0 means "not set" (Kubernetes ``nodePort``)."""


def _port_or_name(value: int | str) -> int | str:
    if isinstance(value, int):
        _PORT_CHECK(value)
    return value


_PORT_CHECK = _range_check(1, 65535, "a port number")
PortOrName = Annotated[int | str, AfterValidator(_port_or_name)]
"""Kubernetes ``IntOrString`` port: a number 1..65535, or a port name."""


# -- values checked with a code of their own ----------------------------------------------


class Check(enum.Enum):
    """What :func:`checked_values` looks for; the marker in a field type's ``Annotated``."""

    HEADER_NAME = "header name"
    """An HTTP header name: an RFC 9110 token (header operations, CORS, override headers)."""
    HEADER_MATCH_NAME = "header match name"
    """A header to match: an RFC 9110 token, or an HTTP/2 pseudo-header such as ``:path``."""
    HEADER_VALUE = "header value"
    """A header value that is sent: no CR, LF or NUL."""
    ENVOY_REGEX = "Envoy regex"
    """A regex Envoy compiles (``safe_regex``): its RE2 program size is limited."""


HeaderName = Annotated[str, Check.HEADER_NAME]
"""A header name that is written or sent (RFC 9110 token)."""
HeaderMatchName = Annotated[str, Check.HEADER_MATCH_NAME]
"""A header name that is matched (RFC 9110 token or an HTTP/2 pseudo-header)."""
HeaderValue = Annotated[str, Check.HEADER_VALUE]
"""A header value that is sent (no CR, LF, NUL)."""
EnvoyRegex = Annotated[str, AfterValidator(_regex), Check.ENVOY_REGEX]
"""An RE2 regex that Envoy compiles, so its program size is checked too."""

FieldPath = tuple[str | int, ...]


def checked_values(
    model: BaseModel, path: FieldPath = ()
) -> Iterator[tuple[FieldPath, str, Check]]:
    """Every value of *model* (nested models, lists, dict keys and values) with a :class:`Check`.

    Yields:
        The value's path in the document (aliases, as findings name it), the value, the check.
        For a marked dict key the path ends with the key itself.
    """
    # only the fields whose type can hold a marked value are walked (a 10 000-route
    # VirtualService has millions of values, few of them marked)
    for name, key, checks, annotation in _plan(type(model)):
        value = getattr(model, name)
        if value is None:
            continue
        where = (*path, key)
        if isinstance(value, str):
            for check in checks:
                yield where, value, check
        yield from _checked(annotation, value, where)


@functools.cache
def _plan(cls: type[BaseModel]) -> tuple[tuple[str, str, tuple[Check, ...], Any], ...]:
    """The fields of *cls* that can hold a marked value: (name, key, its own checks, type)."""
    out = []
    for name, field in cls.model_fields.items():
        checks = tuple(c for c in field.metadata if isinstance(c, Check))
        annotation: Any = field.annotation
        if checks or _may_check(annotation):
            out.append((name, field.alias or camel(name), checks, annotation))
    return tuple(out)


_IN_PROGRESS: set[int] = set()


@functools.cache
def _may_check(tp: Any) -> bool:
    """Whether a value of type *tp* can be, or hold, a value with a :class:`Check`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return any(isinstance(a, Check) for a in args[1:]) or _may_check(args[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        return any(_may_check(a) for a in args)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if id(tp) in _IN_PROGRESS:  # a model that contains itself: decided by its other fields
            return False
        _IN_PROGRESS.add(id(tp))
        try:
            fields: list[tuple[list[Any], Any]] = [
                (f.metadata, f.annotation) for f in tp.model_fields.values()
            ]
            return any(
                any(isinstance(c, Check) for c in meta) or _may_check(ann) for meta, ann in fields
            )
        finally:
            _IN_PROGRESS.discard(id(tp))
    return False


def _checked(tp: Any, value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str, Check]]:
    if not _may_check(tp):
        return
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        if isinstance(value, str):
            for check in args[1:]:
                if isinstance(check, Check):
                    yield path, value, check
        yield from _checked(args[0], value, path)
    elif origin in (typing.Union, types.UnionType):
        for member in args:  # the member the value belongs to; str and models never overlap
            yield from _checked(member, value, path)
    elif origin is list and args and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _checked(args[0], item, (*path, i))
    elif origin is dict and len(args) == 2 and isinstance(value, dict):
        for key, item in value.items():
            yield from _checked(args[0], key, (*path, key))
            yield from _checked(args[1], item, (*path, key))
    elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(value, tp):
        yield from checked_values(value, path)


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
    status: Data = None

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
