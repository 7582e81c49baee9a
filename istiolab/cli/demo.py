"""The tour behind ``make demo``: the seed's resources, from lint to a real Envoy.

Each step is an ``istiolab`` command, printed before it runs, so the output shows a new user
what to type. Steps whose optional parts are missing (e.g. Envoy) say so and continue.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from istiolab.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]  # the repository: istiolab/cli/demo.py
SEED = "examples/seed"
COOKIE = "examples/legacy/cookie-ab.yaml"


def _step(title: str, argv: list[str], ok: tuple[int, ...] = (0,)) -> int:
    print(f"\n=== {title}\n$ istiolab {shlex.join(argv)}", flush=True)
    code = cli(argv)
    sys.stdout.flush()
    if code not in ok:
        print(f"(exit {code})", flush=True)
    return code


def run() -> int:
    """Run the tour; returns a process exit code (non-zero when a step failed unexpectedly)."""
    failures = 0
    failures += (
        _step("1. Lint the seed's Ingress and deny-route RouteRule (Istio 0.2)", ["lint", SEED])
        != 0
    )
    failures += (
        _step("2. Convert them to what you would write for Istio 1.x", ["convert", SEED]) != 0
    )
    if (ROOT / COOKIE).exists():
        for label, extra in (
            ("with the beta cookie", ["-H", "cookie: user=beta"]),
            ("without it", []),
        ):
            failures += (
                _step(
                    f"3. Explain a request {label} (cookie A/B rule)",
                    ["explain", COOKIE, "--host", "webui", "--path", "/", *extra],
                )
                != 0
            )
    failures += (
        _step(
            "4. Explain a seed request: the deny-route drill",
            ["explain", SEED, "--path", "/status/200"],
        )
        != 0
    )
    code = _step(
        "5. Verify the seed's rules on a real Envoy",
        ["verify", SEED, "--requests", "200"],
        ok=(0, 2),
    )
    failures += code == 1
    failures += (
        _step(
            "6. Simulate the seed's pipeline: NLB -> istio-ingress node pool -> httpbin (sidecar)",
            ["simulate", "sim/scenarios/seed-httpbin.yaml", "--out", "build/demo-seed"],
        )
        != 0
    )
    failures += (
        _step(
            "7. The deny-route drill in the simulator: every request answered 403 (FI) "
            "at the ingress",
            ["simulate", "sim/scenarios/deny-route.yaml"],
        )
        != 0
    )
    print("\nDone." if not failures else f"\n{failures} step(s) failed.")
    return 1 if failures else 0


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    sys.exit(run())
