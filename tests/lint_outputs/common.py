"""What the lint output tests share: configs on disk and the command line run in-process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from istiolab.cli.app import app

GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["shop.example.com"]
"""

# http[1] is shadowed by http[0] (prefix /api covers /api/v2); http[3] comes after a catch-all
SHADOWED = textwrap.dedent(
    """\
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: shop
    spec:
      hosts: [shop.example.com]
      gateways: [gw]
      http:
      - name: api
        match:
        - uri: {prefix: /api}
        route:
        - destination: {host: web}
      - name: api-v2
        match:
        - uri: {prefix: /api/v2}
        route:
        - destination: {host: web}
      - name: catch-all
        route:
        - destination: {host: web}
      - name: late
        match:
        - uri: {exact: /late}
        route:
        - destination: {host: web}
    """
)

# the same routes in an order where each one is reachable
REACHABLE = textwrap.dedent(
    """\
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: shop
    spec:
      hosts: [shop.example.com]
      gateways: [gw]
      http:
      - name: api-v2
        match:
        - uri: {prefix: /api/v2}
        route:
        - destination: {host: web}
      - name: api
        match:
        - uri: {prefix: /api}
        route:
        - destination: {host: web}
      - name: late
        match:
        - uri: {exact: /late}
        route:
        - destination: {host: web}
      - name: catch-all
        route:
        - destination: {host: web}
    """
)

# one error (IL203: subset v3 is not defined) in an otherwise valid config
BAD_SUBSET = textwrap.dedent(
    """\
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata:
      name: web
    spec:
      host: web
      subsets:
      - name: v1
        labels: {version: v1}
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: web
    spec:
      hosts: [web]
      http:
      - route:
        - destination: {host: web, subset: v3}
    """
)


def write(folder: Path, name: str, *texts: str) -> Path:
    """*texts* as one multi-document YAML file *folder/name*."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(texts), encoding="utf-8")
    return path


def cli(*args: str | Path) -> tuple[int, str, str]:
    """``istiolab ARGS`` in this process: exit code, stdout, stderr."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def lint_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    """``istiolab lint ARGS --format json``: exit code and the parsed document."""
    code, out, err = cli("lint", *args, "--format", "json")
    assert out, err
    return code, json.loads(out)


def column_of(path: Path, snippet: str) -> tuple[int, int]:
    """1-based (line, column) of the one occurrence of *snippet* in *path*."""
    hits = [
        (i, t.index(snippet) + 1)
        for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if snippet in t
    ]
    assert len(hits) == 1, snippet
    return hits[0]
