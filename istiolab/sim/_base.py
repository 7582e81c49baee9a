"""The pydantic base of every simulation spec (scenario, workload, distributions).

Scenario files are written by people who think in Python and YAML rather than in Kubernetes, so
their keys are ``snake_case`` (``rate_rps``, ``mean_ms``), unlike the camelCase config resources in
:mod:`istiolab.config`. Specs are frozen (hashable where their fields are, safe to share between
runs and processes) and reject unknown keys, so a typo such as ``rate_rsp`` is an error rather than
a silently ignored default.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class SimModel(BaseModel):
    """Base of every simulation spec: frozen, snake_case keys, unknown keys rejected.

    Infinite and NaN numbers are rejected too: ``duration_s: .inf`` passes ``gt=0`` but no run
    ends, and NaN slips through every comparison.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, with only the fields that were set (YAML-ready)."""
        return self.model_dump(exclude_unset=True, exclude_none=True, mode="json")


def unused_fields(model: BaseModel, kind: str, allowed: frozenset[str]) -> None:
    """Reject fields that were set explicitly but mean nothing for *kind*.

    Args:
        model: The spec being validated.
        kind: Its ``kind``, for the message.
        allowed: Fields the kind reads (``kind`` itself is always allowed).

    Raises:
        ValueError: Naming the first stray field and the kind.
    """
    stray = sorted(f for f in model.model_fields_set - allowed - {"kind"})
    if stray:
        names = ", ".join(stray)
        wanted = ", ".join(sorted(allowed)) or "no other fields"
        raise ValueError(f"{names} is not used by kind {kind!r} (it reads {wanted})")
