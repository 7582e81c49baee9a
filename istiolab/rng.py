"""Seeds and random generators.

Every random draw in istiolab comes from a :class:`numpy.random.Generator` handed down explicitly.
Each simulated component gets its own stream spawned from one :class:`numpy.random.SeedSequence`,
so changing one component does not reshuffle the draws of the others (common random numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np

SeedLike: TypeAlias = int | np.integer | Sequence[int] | np.random.SeedSequence | None
"""A seed: an int, a sequence of ints, a SeedSequence, or None (fresh entropy)."""


def as_seed_sequence(seed: SeedLike | np.random.Generator) -> np.random.SeedSequence:
    """Normalise *seed* to a :class:`~numpy.random.SeedSequence`.

    Args:
        seed: An int, a sequence of ints, a SeedSequence, a Generator (its bit generator's seed
            sequence is reused), or None for fresh OS entropy.

    Returns:
        The seed sequence.

    Raises:
        TypeError: If *seed* is of another type.
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        seq = seed.bit_generator.seed_seq
        if isinstance(seq, np.random.SeedSequence):
            return seq
        raise TypeError("this Generator has no SeedSequence; pass an int seed instead")
    if seed is None or isinstance(seed, (int, np.integer)):
        if isinstance(seed, (int, np.integer)) and int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return np.random.SeedSequence(None if seed is None else int(seed))
    if isinstance(seed, Sequence) and all(isinstance(s, (int, np.integer)) for s in seed):
        return np.random.SeedSequence([int(s) for s in seed])
    raise TypeError(f"expected an int, a sequence of ints, a SeedSequence or None, got {seed!r}")


def as_generator(seed: SeedLike | np.random.Generator) -> np.random.Generator:
    """Return a Generator for *seed* (a Generator is returned unchanged)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))


def spawn(
    seed: SeedLike | np.random.Generator, names: Sequence[str]
) -> dict[str, np.random.Generator]:
    """Give each named component an independent generator.

    Streams are derived from the component *name*, not its position, so adding a component does
    not change the draws of the existing ones.

    Args:
        seed: The run's seed.
        names: Component names, unique.

    Returns:
        A mapping from name to its generator.
    """
    root = as_seed_sequence(seed)
    out: dict[str, np.random.Generator] = {}
    for name in names:
        key = [int(b) for b in name.encode()]
        child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key))
        out[name] = np.random.Generator(np.random.PCG64(child))
    return out
