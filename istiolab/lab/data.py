"""Where the notebooks find the ready scenarios and examples, wherever they are opened from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from istiolab.config import ConfigSet
    from istiolab.sim.scenario import Scenario

__all__ = ["data_dir", "example", "rules_of", "scenario"]


def data_dir() -> Path:
    """The folder holding ``sim/scenarios`` and ``examples``.

    Looked up in this order: ``$ISTIOLAB_DATA``, the current folder and its parents (so
    notebooks opened from ``notebooks/`` find ``../sim``), then the source tree the package was
    installed from (an editable install, as on Binder).

    Raises:
        FileNotFoundError: When none of them has ``sim/scenarios``.
    """
    candidates: list[Path] = []
    env = os.environ.get("ISTIOLAB_DATA")
    if env:
        candidates.append(Path(env))
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents]
    candidates.append(Path(__file__).resolve().parents[2])
    for c in candidates:
        if (c / "sim" / "scenarios").is_dir():
            return c
    raise FileNotFoundError(
        "cannot find sim/scenarios: run from the istiolab checkout, install it with "
        "`pip install -e .`, or set ISTIOLAB_DATA to the checkout"
    )


def scenario(name: str) -> Scenario:
    """Load a ready scenario by name (``"canary-90-10"``) or path.

    Raises:
        FileNotFoundError: When there is no such scenario (the message lists them).
    """
    from istiolab.sim.scenario import load_scenario

    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return load_scenario(p)
    folder = data_dir() / "sim" / "scenarios"
    path = folder / f"{name}.yaml"
    if not path.exists():
        known = sorted(q.stem for q in folder.glob("*.yaml"))
        raise FileNotFoundError(f"no scenario {name!r} in {folder}; known: {known}")
    return load_scenario(path)


def example(*parts: str) -> Path:
    """Path of a file or folder under ``examples/`` (``example("seed")``).

    Raises:
        FileNotFoundError: When it does not exist.
    """
    path = data_dir().joinpath("examples", *parts)
    if not path.exists():
        raise FileNotFoundError(f"no example {'/'.join(parts)!r} under {path.parent}")
    return path


def rules_of(sc: Scenario) -> ConfigSet:
    """The configuration a scenario routes with: its rule files, then its inline resources."""
    from istiolab.sim.engine import scenario_config

    return scenario_config(sc)
