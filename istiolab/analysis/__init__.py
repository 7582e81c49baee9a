"""Questions answered with many simulations: sweeps, capacity plans, comparisons, calibration
and conformance with a real Envoy (see ``docs/architecture.md``)."""
