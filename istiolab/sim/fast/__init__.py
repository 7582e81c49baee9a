"""The compiled simulation engine: the SimPy pipeline's semantics as one numba event loop.

:func:`istiolab.sim.engine.simulate` dispatches here with ``engine="fast"`` (or ``"auto"`` when
every feature the scenario uses is supported, see :func:`~istiolab.sim.fast.run.unsupported`).
``lower`` turns a scenario and its compiled route table into flat numpy arrays, ``kernel`` runs
the event loop over them, and ``run`` reduces its tallies to the same :class:`Result` frames
the SimPy engine produces. The loop is compiled ahead of time into an extension module
(``aot``, loaded without numba) when one was built, else by numba on first use. numba is
imported only by ``kernel`` (and by ``aot`` while it builds), so this package imports without
it and ``auto`` can say why it fell back.
"""

from __future__ import annotations
