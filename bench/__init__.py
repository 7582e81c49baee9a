"""Benchmarks (``make bench``): side by side with baselines in one run, printed as ratios."""
