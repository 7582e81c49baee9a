"""Questions answered with many simulations.

Sweeps, capacity plans, comparisons, calibration and conformance with a real Envoy (see
``docs/architecture.md``).
"""
