"""``python -m bench analyzer``: lint, explain and verify on large generated configurations.

The cases of issue 13's scale targets, each timed against parsing the same file with libyaml's
``CSafeLoader`` in the same run (this machine is shared and noisy, so only ratios compare):

- one VirtualService with 10 000 routes: ``lint`` ≤ 3 × parse + 1.5 s, ``explain`` ≤ 1 × parse +
  1.5 s;
- 2 000 hosts × 5 routes (2 000 VirtualServices): ``lint`` ≤ 3 × parse + 1.5 s;
- ``verify`` of 2 000 routes ≤ 120 s of wall time (only when Envoy is installed): routes with
  one destination and no policies, so one request each (a split or a retry policy adds a
  stochastic check of ``-n`` = 400 requests per route).

Every command runs as ``python -m istiolab …`` in a fresh process, as a user runs it, so the
times include the imports. The configs are generated in a temporary directory, never in git.
Times are CPU seconds (user + system: of this process for the parse, of the child for the
command), which other work on the machine disturbs far less than wall time; wall times are
printed beside them. The targets are judged on CPU time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

_BACKEND = """\
apiVersion: v1
kind: Service
metadata:
  name: httpbin
spec:
  ports:
  - name: http
    port: 8000
  selector:
    app: httpbin
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
"""


def _simple_route(out: list[str], i: int, prefix: str) -> None:
    out += [
        f"  - name: r{i}",
        "    match:",
        f"    - uri: {{prefix: {prefix}/v{i}/}}",
        f"      headers: {{x-user: {{exact: u{i}}}}}",
        "    route:",
        "    - destination: {host: httpbin, subset: v1, port: {number: 8000}}",
    ]


def _route(out: list[str], i: int, prefix: str) -> None:
    out += [
        f"  - name: r{i}",
        "    match:",
        f"    - uri: {{prefix: {prefix}/v{i}/}}",
        f"      headers: {{x-user: {{exact: u{i}}}}}",
        "    route:",
        "    - destination: {host: httpbin, subset: v1, port: {number: 8000}}",
        "      weight: 90",
        "    - destination: {host: httpbin, subset: v2, port: {number: 8000}}",
        "      weight: 10",
        "    timeout: 2s",
        "    retries: {attempts: 3, perTryTimeout: 1s, retryOn: 5xx}",
    ]


def many_routes(routes: int, *, simple: bool = False) -> str:
    """One VirtualService with *routes* routes (prefix and header matches, a split, policies).

    *simple*: one destination and no policies per route, so that ``verify`` checks each route
    with one request (a split or a retry policy adds a stochastic check of hundreds).
    """
    out = [
        _BACKEND + "---",
        "apiVersion: networking.istio.io/v1",
        "kind: VirtualService",
        "metadata:",
        "  name: big",
        "spec:",
        "  hosts: [api.example.com]",
        "  gateways: [gw]",
        "  http:",
    ]
    for i in range(routes):
        (_simple_route if simple else _route)(out, i, "/api")
    return "\n".join(out) + "\n"


def many_hosts(hosts: int, routes: int) -> str:
    """*hosts* VirtualServices, one host each, with *routes* routes each."""
    out = [_BACKEND]
    for h in range(hosts):
        out += [
            "---",
            "apiVersion: networking.istio.io/v1",
            "kind: VirtualService",
            "metadata:",
            f"  name: vs{h}",
            "spec:",
            f"  hosts: [h{h}.example.com]",
            "  gateways: [gw]",
            "  http:",
        ]
        for i in range(routes):
            _route(out, i, f"/s{h}")
    return "\n".join(out) + "\n"


def parse_s(path: Path) -> float:
    """CPU seconds to parse *path* with libyaml's CSafeLoader (all documents), the yardstick."""
    text = path.read_text(encoding="utf-8")
    start = time.process_time()
    list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    return time.process_time() - start


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_s(args: list[str], timeout: float) -> tuple[float, float, int]:
    """CPU seconds, wall seconds and exit code of ``python -m istiolab ARGS`` (fresh process)."""
    cpu, start = _children_cpu(), time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "istiolab", *args],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return float("inf"), float("inf"), -1
    return _children_cpu() - cpu, time.perf_counter() - start, proc.returncode


def _case(
    name: str,
    path: Path,
    args: list[str],
    limit: Callable[[float], float],
    timeout: float,
    *,
    on_wall: bool = False,
) -> dict[str, Any]:
    """Time one command against its target (*on_wall*: judged on wall time, not CPU)."""
    parse = parse_s(path)
    took, wall, code = run_s(args, timeout)
    target = limit(parse)
    return {
        "case": name,
        "parse_s": round(parse, 2),
        "took_s": round(took, 2),
        "wall_s": round(wall, 2),
        "exit": code,
        "ratio": round(took / parse, 2) if parse else None,
        "target_s": round(target, 2),
        "ok": (wall if on_wall else took) <= target,
    }


def main(argv: list[str] | None = None) -> int:
    """Generate the cases, time them, print one row each; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench analyzer", description=__doc__)
    parser.add_argument("--routes", type=int, default=10_000, help="routes in one VirtualService")
    parser.add_argument("--hosts", type=int, default=2_000, help="VirtualServices, 5 routes each")
    parser.add_argument("--verify-routes", type=int, default=2_000, help="0 skips verify")
    parser.add_argument("--timeout", type=float, default=300.0, help="per command, seconds")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="istiolab-bench-") as tmp:
        big = Path(tmp, "routes.yaml")
        big.write_text(many_routes(args.routes), encoding="utf-8")
        wide = Path(tmp, "hosts.yaml")
        wide.write_text(many_hosts(args.hosts, 5), encoding="utf-8")
        last = f"/api/v{args.routes - 1}/x"
        rows.append(
            _case(
                f"lint {args.routes} routes",
                big,
                ["lint", str(big)],
                lambda p: 3 * p + 1.5,
                args.timeout,
            )
        )
        rows.append(
            _case(
                f"explain {args.routes} routes (last route)",
                big,
                [
                    "explain",
                    str(big),
                    "--host",
                    "api.example.com",
                    "--path",
                    last,
                    "-H",
                    f"x-user: u{args.routes - 1}",
                ],
                lambda p: p + 1.5,
                args.timeout,
            )
        )
        rows.append(
            _case(
                f"lint {args.hosts} hosts x 5 routes",
                wide,
                ["lint", str(wide)],
                lambda p: 3 * p + 1.5,
                args.timeout,
            )
        )
        if args.verify_routes:
            rows.append(_verify_case(Path(tmp), args.verify_routes, args.timeout))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        head = (
            f"{'case (CPU seconds)':<44} {'parse':>7} {'took':>7} {'ratio':>6} {'target':>7} "
            f"{'wall':>7} ok"
        )
        print(head)
        for r in rows:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(
                f"{r['case']:<44} {r['parse_s']:>7.2f} {r['took_s']:>7.2f} {ratio:>6} "
                f"{r['target_s']:>7.2f} {r['wall_s']:>7.2f} {'yes' if r['ok'] else 'NO'}"
            )
    return 0 if all(r["ok"] for r in rows) else 1


def _verify_case(tmp: Path, routes: int, timeout: float) -> dict[str, Any]:
    from istiolab.envoy.sandbox import find_envoy
    from istiolab.errors import SandboxError

    path = tmp / "verify.yaml"
    path.write_text(many_routes(routes, simple=True), encoding="utf-8")
    try:
        find_envoy()
    except SandboxError:
        return {
            "case": f"verify {routes} routes (no Envoy: skipped)",
            "parse_s": round(parse_s(path), 2),
            "took_s": 0.0,
            "wall_s": 0.0,
            "exit": None,
            "ratio": None,
            "target_s": 120.0,
            "ok": True,
        }
    return _case(
        f"verify {routes} routes",
        path,
        ["verify", str(path)],
        lambda p: 120.0,
        max(timeout, 600.0),
        on_wall=True,  # Envoy and the stub backends run beside it: the target is wall time
    )


if __name__ == "__main__":
    raise SystemExit(main())
