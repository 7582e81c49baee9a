"""Write binder/requirements.txt from the current environment.

Pins istiolab's core dependencies, its ``lab`` and ``envoy`` extras, and everything they need,
at the versions installed here (run it with the venv the notebooks were tested in)::

    .venv/bin/python binder/freeze.py
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOTS = ["istiolab[lab,envoy]"]
SKIP = {"istiolab"}
HEADER = "".join(
    line
    for line in Path(__file__).with_name("requirements.txt").read_text("utf-8").splitlines(True)
    if line.startswith("#")
)


def closure(roots: list[str]) -> dict[str, tuple[str, str]]:
    """Installed name and version of every distribution the roots need (markers evaluated)."""
    seen: dict[str, tuple[str, str]] = {}
    expanded: set[tuple[str, tuple[str, ...]]] = set()
    stack = [Requirement(r) for r in roots]
    while stack:
        req = stack.pop()
        key = (canonicalize_name(req.name), tuple(sorted(req.extras)))
        if key in expanded:
            continue
        expanded.add(key)
        dist = md.distribution(req.name)
        seen[key[0]] = (dist.metadata["Name"], dist.version)
        for text in dist.requires or []:
            sub = Requirement(text)
            envs = [{"extra": e} for e in ("", *req.extras)]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                stack.append(sub)
    return {k: v for k, v in seen.items() if k not in SKIP}


def main() -> None:
    """Rewrite requirements.txt, keeping its header comment."""
    pins = sorted(f"{name}=={version}" for name, version in closure(ROOTS).values())
    out = Path(__file__).with_name("requirements.txt")
    out.write_text(HEADER.rstrip("\n") + "\n" + "\n".join(pins) + "\n", encoding="utf-8")
    print(f"wrote {len(pins)} pins to {out}")


if __name__ == "__main__":
    main()
