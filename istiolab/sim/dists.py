"""Service-time and latency distributions: YAML specs in milliseconds, runtime samplers in seconds.

Two layers, as everywhere in :mod:`istiolab.sim`:

* :class:`DistSpec` is the frozen, validated *description* a scenario file holds. Its fields are
  in **milliseconds**, because that is how people think about latencies, and it accepts
  shorthands: a plain number is a deterministic delay in ms, and a string such as
  ``"exp(10ms)"``, ``"det(5ms)"``, ``"lognormal(20ms, cv=1.5)"`` or ``"uniform(1ms, 3ms)"``
  names the kind and its parameters (a bare number in a time position means ms).
* :meth:`DistSpec.build` returns a runtime :class:`Distribution` in **seconds** (the simulator's
  clock unit): :class:`Zero`, :class:`Deterministic`, :class:`Exponential`, :class:`LogNormal`,
  :class:`Gamma`, :class:`Uniform`, :class:`Empirical` and :class:`Shifted`. Each knows its mean
  and variance in closed form (the Pollaczek–Khinchine and Erlang checks in
  ``tests/validation`` need E[S] and E[S²]) and draws from an explicit
  :class:`numpy.random.Generator`.

The simulator draws one value per request per stage, so :meth:`Distribution.sampler` returns a
zero-argument function that serves values from a pre-generated block (about 70 ns a call instead
of about 1 µs for a scalar ``rng.exponential()``). The values it serves are exactly those
:meth:`Distribution.sample_n` would give for the same generator state: numpy draws element by
element, so blocks of any size concatenate to the same stream.

Example:
    >>> import numpy as np
    >>> spec = dist("lognormal(20ms, cv=1.5)")
    >>> spec.kind, spec.mean_ms, spec.cv
    ('lognormal', 20.0, 1.5)
    >>> d = spec.build()
    >>> round(d.mean, 6), round(d.variance, 8)
    (0.02, 0.0009)
    >>> draw = d.sampler(np.random.default_rng(1))
    >>> draw() > 0
    True
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from istiolab.sim._base import SimModel, unused_fields

FloatArray: TypeAlias = npt.NDArray[np.float64]
"""A one-dimensional array of float64 draws."""

DEFAULT_BLOCK = 4096
"""Values generated per refill by :meth:`Distribution.sampler`."""

__all__ = [
    "DEFAULT_BLOCK",
    "Deterministic",
    "DistKind",
    "DistSpec",
    "Distribution",
    "Empirical",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Shifted",
    "Uniform",
    "Zero",
    "bare_numbers",
    "buffered",
    "dist",
    "distributions",
]


# -- runtime distributions (seconds) ---------------------------------------------------------


@runtime_checkable
class Distribution(Protocol):
    """What the simulator needs from a distribution of non-negative durations, in seconds."""

    @property
    def mean(self) -> float:
        """E[X] in seconds."""
        ...

    @property
    def variance(self) -> float:
        """Var[X] in seconds²."""
        ...

    @property
    def second_moment(self) -> float:
        """E[X²] = Var[X] + E[X]² in seconds² (the Pollaczek–Khinchine numerator)."""
        ...

    def sample(self, rng: np.random.Generator) -> float:
        """One draw (slow path: prefer :meth:`sampler` in loops)."""
        ...

    def sample_n(self, rng: np.random.Generator, n: int) -> FloatArray:
        """*n* independent draws as a float64 array."""
        ...

    def sampler(self, rng: np.random.Generator, block: int = DEFAULT_BLOCK) -> Callable[[], float]:
        """A zero-argument function returning successive draws, refilled *block* at a time."""
        ...


def buffered(
    draw_block: Callable[[int], FloatArray], block: int = DEFAULT_BLOCK
) -> Callable[[], float]:
    """Turn a block generator into a fast zero-argument sampler.

    The block is converted to a Python list once, so each call is a list index and an integer
    increment on closure cells (no numpy scalar boxing).

    Args:
        draw_block: Called with *block* whenever the buffer is exhausted; returns that many values.
        block: Values per refill, ≥ 1.

    Returns:
        A function returning the next value as a Python float.

    Raises:
        ValueError: If *block* < 1.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    buf: list[float] = []
    i = block  # empty: the first call fills, so no draws are made until one is needed

    def draw() -> float:
        nonlocal buf, i
        if i == block:
            buf = draw_block(block).tolist()
            i = 0
        x = buf[i]
        i += 1
        return x

    return draw


def _finite(name: str, value: float, *, positive: bool) -> float:
    value = float(value)
    if positive and not value > 0:  # also rejects NaN
        raise ValueError(f"{name} must be > 0, got {value}")
    if not positive and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class _Dist:
    """Shared behaviour: moments, scalar draws, buffered samplers, value semantics.

    Subclasses set ``_mean`` and ``_variance`` in ``__init__`` and implement ``_draw`` and
    ``_params``; the public API lives here once.
    """

    __slots__ = ("_mean", "_variance")

    _mean: float
    _variance: float

    @property
    def mean(self) -> float:
        """E[X] in seconds."""
        return self._mean

    @property
    def variance(self) -> float:
        """Var[X] in seconds²."""
        return self._variance

    @property
    def second_moment(self) -> float:
        """E[X²] = Var[X] + E[X]² in seconds²."""
        return self._variance + self._mean**2

    @property
    def cv(self) -> float:
        """Coefficient of variation √Var / E (0 when the mean is 0)."""
        return math.sqrt(self._variance) / self._mean if self._mean > 0 else 0.0

    def sample_n(self, rng: np.random.Generator, n: int) -> FloatArray:
        """*n* independent draws in seconds.

        Args:
            rng: The generator to draw from.
            n: How many, ≥ 0.

        Returns:
            A float64 array of length *n*.
        """
        return self._draw(rng, n)

    def sample(self, rng: np.random.Generator) -> float:
        """One draw, from the stream of :meth:`sample_n` (slow path: prefer :meth:`sampler`)."""
        return float(self._draw(rng, 1)[0])

    def sampler(self, rng: np.random.Generator, block: int = DEFAULT_BLOCK) -> Callable[[], float]:
        """A zero-argument function returning successive draws (the simulator's hot path).

        Args:
            rng: The generator to draw from. The sampler draws from it lazily, one block at a
                time, so give each stage its own generator (:func:`istiolab.rng.spawn`).
            block: Values generated per refill.

        Returns:
            A function whose successive results equal ``sample_n(rng, k)`` for the same seed.
            A distribution without spread (variance 0) returns its constant and draws nothing.
        """
        if self._variance == 0.0:
            value = self._mean
            return lambda: value
        draw = self._draw
        return buffered(lambda n: draw(rng, n), block)

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        raise NotImplementedError

    def _params(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Dist)
        return self._params() == other._params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))

    def __repr__(self) -> str:
        args = ", ".join(repr(p) for p in self._params())
        return f"{type(self).__name__}({args})"


class Zero(_Dist):
    """Always 0: switches a stage's cost off, to isolate another stage against theory."""

    __slots__ = ()

    def __init__(self) -> None:
        self._mean = 0.0
        self._variance = 0.0

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return np.zeros(n, dtype=np.float64)

    def _params(self) -> tuple[Any, ...]:
        return ()


class Deterministic(_Dist):
    """Always *value_s* seconds (the D in M/D/1).

    Args:
        value_s: The constant, ≥ 0.

    Raises:
        ValueError: If *value_s* is negative or not finite.
    """

    __slots__ = ("value_s",)

    def __init__(self, value_s: float) -> None:
        self.value_s = _finite("value_s", value_s, positive=False)
        self._mean = self.value_s
        self._variance = 0.0

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return np.full(n, self.value_s, dtype=np.float64)

    def _params(self) -> tuple[Any, ...]:
        return (self.value_s,)


class Exponential(_Dist):
    """Exponential with mean *mean_s* (rate 1/mean_s): the memoryless service of M/M/c.

    Args:
        mean_s: Mean in seconds, > 0.

    Raises:
        ValueError: If *mean_s* is not a finite positive number.
    """

    __slots__ = ("mean_s",)

    def __init__(self, mean_s: float) -> None:
        self.mean_s = _finite("mean_s", mean_s, positive=True)
        self._mean = self.mean_s
        self._variance = self.mean_s**2

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return rng.exponential(self.mean_s, n)

    def _params(self) -> tuple[Any, ...]:
        return (self.mean_s,)


class LogNormal(_Dist):
    """Log-normal given by its mean and coefficient of variation (the usual latency shape).

    With σ² = ln(1 + cv²) and μ = ln(mean) − σ²/2, X = exp(μ + σZ) has E[X] = mean and
    √Var[X] / E[X] = cv.

    Args:
        mean_s: Mean in seconds, > 0.
        cv: Coefficient of variation, > 0 (use :class:`Deterministic` for 0).

    Raises:
        ValueError: If a parameter is out of range.

    Attributes:
        mu: Mean of ln X.
        sigma: Standard deviation of ln X.
    """

    __slots__ = ("_cv", "mean_s", "mu", "sigma")

    def __init__(self, mean_s: float, cv: float) -> None:
        self.mean_s = _finite("mean_s", mean_s, positive=True)
        self._cv = _finite("cv", cv, positive=True)
        s2 = math.log1p(self._cv**2)
        self.sigma = math.sqrt(s2)
        self.mu = math.log(self.mean_s) - s2 / 2
        self._mean = self.mean_s
        self._variance = (self._cv * self.mean_s) ** 2

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return rng.lognormal(self.mu, self.sigma, n)

    def _params(self) -> tuple[Any, ...]:
        return (self.mean_s, self._cv)


class Gamma(_Dist):
    """Gamma given by its mean and coefficient of variation.

    Shape k = 1/cv², scale θ = mean·cv²: cv = 1 is exponential, cv = 1/√k is Erlang-k.

    Args:
        mean_s: Mean in seconds, > 0.
        cv: Coefficient of variation, > 0.

    Raises:
        ValueError: If a parameter is out of range.

    Attributes:
        shape: k.
        scale: θ in seconds.
    """

    __slots__ = ("_cv", "mean_s", "scale", "shape")

    def __init__(self, mean_s: float, cv: float) -> None:
        self.mean_s = _finite("mean_s", mean_s, positive=True)
        self._cv = _finite("cv", cv, positive=True)
        self.shape = 1.0 / self._cv**2
        self.scale = self.mean_s * self._cv**2
        self._mean = self.mean_s
        self._variance = (self._cv * self.mean_s) ** 2

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return rng.gamma(self.shape, self.scale, n)

    def _params(self) -> tuple[Any, ...]:
        return (self.mean_s, self._cv)


class Uniform(_Dist):
    """Uniform on [low_s, high_s).

    Args:
        low_s: Lower bound in seconds, ≥ 0.
        high_s: Upper bound in seconds, ≥ low_s.

    Raises:
        ValueError: If a bound is out of range.
    """

    __slots__ = ("high_s", "low_s")

    def __init__(self, low_s: float, high_s: float) -> None:
        self.low_s = _finite("low_s", low_s, positive=False)
        self.high_s = _finite("high_s", high_s, positive=False)
        if self.high_s < self.low_s:
            raise ValueError(f"high_s must be >= low_s ({self.low_s}), got {self.high_s}")
        self._mean = (self.low_s + self.high_s) / 2
        self._variance = (self.high_s - self.low_s) ** 2 / 12

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return rng.uniform(self.low_s, self.high_s, n)

    def _params(self) -> tuple[Any, ...]:
        return (self.low_s, self.high_s)


class Empirical(_Dist):
    """Resampling (uniformly, with replacement) from measured values, e.g. a latency log.

    Mean and variance are those of the sample itself (variance with divisor n), which is
    exactly what resampling reproduces.

    Args:
        samples_s: The measured values in seconds, non-empty, each finite and ≥ 0.

    Raises:
        ValueError: If *samples_s* is empty or holds a negative or non-finite value.
    """

    __slots__ = ("samples_s",)

    def __init__(self, samples_s: Sequence[float] | FloatArray) -> None:
        arr = np.array(samples_s, dtype=np.float64).ravel()
        if arr.size == 0:
            raise ValueError("samples_s must not be empty")
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
        if bad.size:
            k = int(bad[0])
            raise ValueError(f"samples_s[{k}] must be finite and >= 0, got {arr[k]}")
        arr.flags.writeable = False
        self.samples_s = arr
        self._mean = float(arr.mean())
        self._variance = float(arr.var())

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return self.samples_s[rng.integers(0, self.samples_s.size, n)]

    def _params(self) -> tuple[Any, ...]:
        return (tuple(self.samples_s.tolist()),)

    def __repr__(self) -> str:
        return f"Empirical(<{self.samples_s.size} samples, mean {self._mean!r}>)"


class Shifted(_Dist):
    """*base* plus a constant *offset_s*: a floor such as a network RTT under a random service.

    Args:
        base: The random part.
        offset_s: Added to every draw, ≥ 0.

    Raises:
        ValueError: If *offset_s* is negative or not finite.
    """

    __slots__ = ("base", "offset_s")

    def __init__(self, base: Distribution, offset_s: float) -> None:
        self.base = base
        self.offset_s = _finite("offset_s", offset_s, positive=False)
        self._mean = base.mean + self.offset_s
        self._variance = base.variance

    def _draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        return self.base.sample_n(rng, n) + self.offset_s

    def _params(self) -> tuple[Any, ...]:
        return (self.base, self.offset_s)


# -- spec (milliseconds, YAML) ---------------------------------------------------------------

DistKind: TypeAlias = Literal[
    "zero", "deterministic", "exponential", "lognormal", "gamma", "uniform", "empirical"
]
"""The distribution families a :class:`DistSpec` can name."""

_KIND_ALIASES: dict[str, DistKind] = {
    "zero": "zero",
    "det": "deterministic",
    "deterministic": "deterministic",
    "const": "deterministic",
    "constant": "deterministic",
    "exp": "exponential",
    "exponential": "exponential",
    "lognormal": "lognormal",
    "lognorm": "lognormal",
    "gamma": "gamma",
    "uniform": "uniform",
    "unif": "uniform",
    "empirical": "empirical",
    "emp": "empirical",
}

# Fields each kind needs (in positional order for the shorthand), and what to write for each.
_NEEDS: dict[str, tuple[str, ...]] = {
    "zero": (),
    "deterministic": ("value_ms",),
    "exponential": ("mean_ms",),
    "lognormal": ("mean_ms", "cv"),
    "gamma": ("mean_ms", "cv"),
    "uniform": ("low_ms", "high_ms"),
    "empirical": ("samples_ms",),
}
_HELP = {
    "value_ms": "the constant in ms",
    "mean_ms": "the mean in ms, > 0",
    "cv": "the coefficient of variation, > 0",
    "low_ms": "the lower bound in ms",
    "high_ms": "the upper bound in ms",
    "samples_ms": "a list of measured values in ms",
}
_EXAMPLE = {
    "zero": "zero()",
    "deterministic": "det(5ms)",
    "exponential": "exp(10ms)",
    "lognormal": "lognormal(20ms, cv=1.5)",
    "gamma": "gamma(20ms, cv=0.5)",
    "uniform": "uniform(1ms, 3ms)",
    "empirical": "empirical(1ms, 2ms, 9ms)",
}
_SHORT_NAME = {"deterministic": "det", "exponential": "exp"}
_KEYWORDS = {
    "mean": "mean_ms",
    "value": "value_ms",
    "low": "low_ms",
    "high": "high_ms",
    "offset": "offset_ms",
    "cv": "cv",
}
_MS_PER_UNIT = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "μs": 1e-3,
    "ms": 1.0,
    "s": 1e3,
    "m": 6e4,
    "h": 3.6e6,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_CALL = re.compile(r"([A-Za-z_]+)\s*\((.*)\)", re.DOTALL)

NonNegMs = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PosMs = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _to_ms(token: str, text: str) -> float:
    """A time in the shorthand: ``"10ms"``, ``"0.5s"``, or a bare number meaning ms."""
    token = token.strip()
    try:
        return float(token)
    except ValueError:
        pass
    if _DURATION.fullmatch(token) is None:
        raise ValueError(
            f"{token!r} in {text!r} is not a time; write e.g. '10ms', '0.5s' or 10 (meaning ms)"
        )
    # Summed in ms directly, so "10ms" is exactly 10.0 (going through seconds is not exact).
    return sum(float(num) * _MS_PER_UNIT[unit] for num, unit in _DURATION_PART.findall(token))


def _parse_shorthand(text: str) -> dict[str, Any]:
    """``"lognormal(20ms, cv=1.5)"`` → ``{"kind": "lognormal", "mean_ms": 20.0, "cv": 1.5}``."""
    stripped = text.strip()
    call = _CALL.fullmatch(stripped)
    if call is None:
        if stripped.lower() == "zero":
            return {"kind": "zero"}
        try:
            return {"kind": "deterministic", "value_ms": _to_ms(stripped, text)}
        except ValueError:
            # "lognormal(40" is what YAML leaves of an unquoted call inside a flow mapping:
            # the comma ends the value there, and "cv=1)" becomes a key of its own.
            cut = "(" in stripped and ")" not in stripped
            hint = (
                "; it looks cut at a comma: in a YAML flow mapping ({...}) a comma ends the "
                'value, so quote it: {service_time: "lognormal(40ms, cv=1)"}'
                if cut
                else ""
            )
            raise ValueError(
                f"{text!r} is not a distribution; write a time such as '5ms' (deterministic) "
                f"or a call such as {', '.join(repr(e) for e in _EXAMPLE.values())}{hint}"
            ) from None
    name, body = call.group(1).lower(), call.group(2)
    kind = _KIND_ALIASES.get(name)
    if kind is None:
        raise ValueError(
            f"unknown distribution {call.group(1)!r} in {text!r}; "
            f"use one of {', '.join(sorted(_KIND_ALIASES))}"
        )
    out: dict[str, Any] = {"kind": kind}
    args = [a.strip() for a in body.split(",")] if body.strip() else []
    positional = _NEEDS[kind]
    samples: list[float] = []
    for k, arg in enumerate(args):
        if "=" in arg:
            key, _, value = (s.strip() for s in arg.partition("="))
            field = _KEYWORDS.get(key, key if key in _HELP or key == "offset_ms" else None)
            if field is None:
                raise ValueError(
                    f"unknown parameter {key!r} in {text!r}; use {', '.join(sorted(_KEYWORDS))}"
                )
            if field in out:
                raise ValueError(f"{field} is given twice in {text!r}")
            out[field] = _cv(value, text) if field == "cv" else _to_ms(value, text)
        elif kind == "empirical":
            samples.append(_to_ms(arg, text))
        elif k < len(positional):
            field = positional[k]
            if field in out:
                raise ValueError(f"{field} is given twice in {text!r}")
            out[field] = _cv(arg, text) if field == "cv" else _to_ms(arg, text)
        else:
            raise ValueError(
                f"too many arguments in {text!r}: {kind} takes {len(positional)} "
                f"({', '.join(positional) or 'none'}), e.g. {_EXAMPLE[kind]!r}"
            )
    if samples:
        out["samples_ms"] = samples
    return out


def _cv(token: str, text: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"cv is a ratio without a unit, got {token!r} in {text!r}") from None


def _ms_to_s(ms: float) -> float:
    # 15 significant digits: 0.07 ms becomes the float 7e-05, not 7.000000000000001e-05.
    return float(f"{ms / 1000:.15g}")


def _fmt_ms(ms: float) -> str:
    text = repr(float(ms))
    return (text[:-2] if text.endswith(".0") else text) + "ms"


class DistSpec(SimModel):
    """A distribution as a scenario file writes it, in milliseconds.

    Write the full form, or a shorthand anywhere a ``DistSpec`` is expected::

        service_time: {kind: lognormal, mean_ms: 20, cv: 1.5}
        service_time: "lognormal(20ms, cv=1.5)"    # same thing
        service_time: "exp(10ms)"                  # exponential, mean 10 ms
        service_time: 5                            # deterministic 5 ms
        service_time: "uniform(1ms, 3ms, offset=0.5ms)"

    Attributes:
        kind: ``zero`` (always 0, to switch a stage off), ``deterministic``, ``exponential``,
            ``lognormal``, ``gamma``, ``uniform`` or ``empirical``. The shorthand also accepts
            ``det``, ``const``, ``exp``, ``lognorm``, ``unif`` and ``emp``.
        mean_ms: Mean in ms, > 0 (exponential, lognormal, gamma).
        cv: Coefficient of variation, standard deviation / mean, > 0 (lognormal, gamma).
        low_ms: Lower bound in ms, ≥ 0 (uniform).
        high_ms: Upper bound in ms, ≥ ``low_ms`` (uniform).
        samples_ms: Measured values in ms to resample from, non-empty (empirical).
        value_ms: The constant in ms, ≥ 0 (deterministic).
        offset_ms: Added to every draw, in ms, ≥ 0; default 0 (any kind).
    """

    kind: DistKind
    mean_ms: PosMs | None = None
    cv: PosMs | None = None
    low_ms: NonNegMs | None = None
    high_ms: NonNegMs | None = None
    samples_ms: tuple[NonNegMs, ...] | None = Field(default=None, min_length=1)
    value_ms: NonNegMs | None = None
    offset_ms: NonNegMs = 0.0

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError(f"a distribution cannot be a boolean, got {data!r}")
        if isinstance(data, (int, float)):
            return {"kind": "deterministic", "value_ms": float(data)}
        if isinstance(data, str):
            return _parse_shorthand(data)
        if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
            return {"kind": "empirical", "samples_ms": list(data)}
        if isinstance(data, Mapping) and isinstance(data.get("kind"), str):
            kind = _KIND_ALIASES.get(data["kind"].lower())
            if kind is not None:
                return {**data, "kind": kind}
        return data

    @model_validator(mode="after")
    def _required(self) -> DistSpec:
        for field in _NEEDS[self.kind]:
            if getattr(self, field) is None:
                raise ValueError(
                    f"kind {self.kind!r} needs {field} ({_HELP[field]}), "
                    f"e.g. {_EXAMPLE[self.kind]!r}"
                )
        unused_fields(self, self.kind, frozenset((*_NEEDS[self.kind], "offset_ms")))
        if self.kind == "uniform":
            assert self.low_ms is not None
            assert self.high_ms is not None
            if self.high_ms < self.low_ms:
                raise ValueError(f"high_ms must be >= low_ms ({self.low_ms}), got {self.high_ms}")
        return self

    def build(self) -> Distribution:
        """The runtime distribution, in seconds.

        Returns:
            A :class:`Distribution`; wrapped in :class:`Shifted` when ``offset_ms`` > 0.
        """
        base: Distribution
        s = _ms_to_s
        if self.kind == "zero":
            base = Zero()
        elif self.kind == "deterministic":
            assert self.value_ms is not None
            base = Deterministic(s(self.value_ms))
        elif self.kind == "exponential":
            assert self.mean_ms is not None
            base = Exponential(s(self.mean_ms))
        elif self.kind in ("lognormal", "gamma"):
            assert self.mean_ms is not None
            assert self.cv is not None
            family = LogNormal if self.kind == "lognormal" else Gamma
            base = family(s(self.mean_ms), self.cv)
        elif self.kind == "uniform":
            assert self.low_ms is not None
            assert self.high_ms is not None
            base = Uniform(s(self.low_ms), s(self.high_ms))
        else:
            assert self.samples_ms is not None
            base = Empirical(np.asarray(self.samples_ms, dtype=np.float64) / 1000)
        return Shifted(base, s(self.offset_ms)) if self.offset_ms > 0 else base

    def shorthand(self) -> str:
        """The compact string form, which :func:`dist` parses back to an equal spec.

        Example:
            >>> dist("lognormal", mean_ms=20, cv=1.5).shorthand()
            'lognormal(20ms, cv=1.5)'
            >>> dist(5).shorthand()
            'det(5ms)'
        """
        if self.kind == "zero":
            args: list[str] = []
        elif self.kind == "deterministic":
            args = [_fmt_ms(self.value_ms or 0.0)]
        elif self.kind == "exponential":
            args = [_fmt_ms(self.mean_ms or 0.0)]
        elif self.kind in ("lognormal", "gamma"):
            args = [_fmt_ms(self.mean_ms or 0.0), f"cv={self.cv!r}"]
        elif self.kind == "uniform":
            args = [_fmt_ms(self.low_ms or 0.0), _fmt_ms(self.high_ms or 0.0)]
        else:
            args = [_fmt_ms(v) for v in self.samples_ms or ()]
        if self.offset_ms > 0:
            args.append(f"offset={_fmt_ms(self.offset_ms)}")
        return f"{_SHORT_NAME.get(self.kind, self.kind)}({', '.join(args)})"


def dist(
    spec: str | float | Sequence[float] | Mapping[str, Any] | DistSpec, /, **fields: Any
) -> DistSpec:
    """Build a :class:`DistSpec` in Python, from a shorthand or a kind and fields.

    Args:
        spec: A shorthand (``"exp(10ms)"``, ``5`` for deterministic 5 ms), a mapping, a
            :class:`DistSpec` (returned as is), or — when *fields* are given — the kind.
        **fields: Fields of :class:`DistSpec` (``mean_ms=20, cv=1.5``).

    Returns:
        The validated spec.

    Raises:
        pydantic.ValidationError: If the spec is invalid; the message names the field.
        TypeError: If *fields* are given and *spec* is not a kind name.

    Example:
        >>> dist("exp(10ms)") == dist("exponential", mean_ms=10)
        True
        >>> dist("exp(10ms)").build()
        Exponential(0.01)
    """
    if fields:
        if not isinstance(spec, str):
            raise TypeError(f"with keyword fields, the first argument must be a kind, got {spec!r}")
        return DistSpec.model_validate({"kind": spec, **fields})
    if isinstance(spec, DistSpec):
        return spec
    return DistSpec.model_validate(spec)


def bare_numbers(model: Any, raw: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Where a scenario wrote a distribution's time as a bare number (taken as milliseconds).

    Walks the validated *model* and the data it was read from side by side. A distribution
    written ``40`` or ``"lognormal(40, cv=1)"`` gets an entry per bare time (``cv`` is a ratio
    and ``0`` is 0 in any unit, so neither counts); ``"40ms"``, ``{kind: exponential, mean_ms:
    40}`` and the ``*_s`` fields name their unit and get none.

    Args:
        model: A validated spec (a pydantic model), e.g. a :class:`~istiolab.sim.scenario.Scenario`.
        raw: The mapping it was validated from (YAML data).
        prefix: Dotted path of *model* (for the entries).

    Returns:
        ``(dotted path, number as written)`` per bare time; list items are named by their
        ``name`` when they have one, as ``--set`` accepts them.

    Example:
        >>> from istiolab.sim.scenario import mmc_scenario
        >>> bare_numbers(mmc_scenario(10, 5, 1), {"services": [{"name": "svc", "versions":
        ...     [{"name": "v1", "service_time": 5}]}]})
        [('services.svc.versions.v1.service_time', '5')]
    """
    out: list[tuple[str, str]] = []
    if not isinstance(raw, Mapping) or not hasattr(type(model), "model_fields"):
        return out
    for name in type(model).model_fields:
        if name not in raw:
            continue
        value, written, path = getattr(model, name, None), raw[name], f"{prefix}{name}"
        if isinstance(value, DistSpec):
            out.extend((path, token) for token in _bare_tokens(written))
        elif hasattr(type(value), "model_fields"):
            out.extend(bare_numbers(value, written, f"{path}."))
        elif isinstance(value, (list, tuple)) and isinstance(written, list):
            for i, (item, item_raw) in enumerate(zip(value, written, strict=False)):
                label = getattr(item, "name", None)
                key = label if isinstance(label, str) and label else str(i)
                if isinstance(item, DistSpec):
                    out.extend((f"{path}.{key}", token) for token in _bare_tokens(item_raw))
                else:
                    out.extend(bare_numbers(item, item_raw, f"{path}.{key}."))
    return out


def _bare_tokens(written: Any) -> list[str]:
    """The bare, non-zero times in one distribution as written."""
    if isinstance(written, bool):
        return []
    if isinstance(written, (int, float)):
        return [] if written == 0 else [f"{written:g}"]
    if not isinstance(written, str):
        return []
    call = _CALL.fullmatch(written.strip())
    args = [a.strip() for a in call.group(2).split(",")] if call else [written.strip()]
    tokens = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq and key.strip() == "cv":
            continue
        text = (value if eq else key).strip()
        try:
            number = float(text)
        except ValueError:
            continue
        if number != 0 and math.isfinite(number):
            tokens.append(text)
    return tokens


def distributions(model: Any, prefix: str = "") -> list[tuple[str, DistSpec]]:
    """Every distribution of a validated spec, with its dotted path (list items by name).

    Example:
        >>> from istiolab.sim.scenario import mmc_scenario
        >>> [p for p, d in distributions(mmc_scenario(10, 5, 1)) if p.startswith("services")]
        ['services.svc.versions.v1.service_time']
    """
    out: list[tuple[str, DistSpec]] = []
    for name in getattr(type(model), "model_fields", {}):
        value, path = getattr(model, name, None), f"{prefix}{name}"
        items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
        for i, item in items:
            label = getattr(item, "name", None)
            key = path if i is None else f"{path}.{label if isinstance(label, str) else i}"
            if isinstance(item, DistSpec):
                out.append((key, item))
            elif hasattr(type(item), "model_fields"):
                out.extend(distributions(item, f"{key}."))
    return out
