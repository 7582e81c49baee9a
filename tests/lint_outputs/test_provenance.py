"""Routing findings carry a request that shows the problem, and the explain command replays it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from istiolab.config import load
from istiolab.config.validate import validate
from istiolab.envoy.explain import compile_for_host, for_authority
from istiolab.envoy.provenance import ROUTING_CODES, add_provenance
from istiolab.errors import ConfigError
from lint_outputs.common import BAD_SUBSET, GATEWAY, REACHABLE, SHADOWED, cli, lint_json, write

OVERLAP = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: a
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http:
  - route:
    - destination: {host: web}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: b
spec:
  hosts: [shop.example.com, other.example.com]
  gateways: [gw]
  http:
  - match:
    - uri: {prefix: /b}
    route:
    - destination: {host: web}
"""


def replay(explain: str, what: str = "route") -> str:
    """Run the ``istiolab explain`` command named in a finding's explain text: its *what* line."""
    m = re.search(r"see `(istiolab explain [^`]+)`", explain)
    assert m is not None, explain
    args = shlex.split(m.group(1))[1:]
    code, out, err = cli(*args)
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith(what + " ")]
    return line


@pytest.fixture
def shadowed(tmp_path: Path) -> Path:
    return write(tmp_path, "shop.yaml", GATEWAY, SHADOWED)


def test_shadowed_route_names_the_route_that_takes_its_request(shadowed: Path) -> None:
    _, doc = lint_json(shadowed)
    by_code = {f["code"]: f for f in doc["findings"]}
    shadow = by_code["IL208"]["explain"]
    assert shadow.startswith("a request to http://shop.example.com/api/v2 takes route `api`")
    assert "instead of http[1]" in shadow
    # the command really routes the request to the shadowing route
    assert replay(shadow).endswith("http[0] match[0]  (api)")
    late = by_code["IL207"]["explain"]
    assert late.startswith("a request to http://shop.example.com/late takes route `catch-all`")
    assert replay(late).endswith("http[2]  (catch-all)")


def test_reachable_routes_have_no_routing_findings(tmp_path: Path) -> None:
    path = write(tmp_path, "shop.yaml", GATEWAY, REACHABLE)
    _, doc = lint_json(path)
    assert doc["findings"] == []


def test_table_shows_the_explain_line(shadowed: Path) -> None:
    _, out, _ = cli("lint", shadowed)
    lines = out.splitlines()
    i = next(k for k, x in enumerate(lines) if " IL208 " in x)
    assert lines[i + 2].startswith("    fix: ")
    assert lines[i + 3].startswith("    explain: a request to http://shop.example.com/api/v2")


def test_host_findings(tmp_path: Path) -> None:
    path = write(tmp_path, "shop.yaml", GATEWAY, OVERLAP)
    _, doc = lint_json(path)
    by_code = {f["code"]: f for f in doc["findings"]}
    # IL206: other.example.com is not on the gateway: no virtual host; the command suppresses
    # the finding's own error so that explain shows it
    missing = by_code["IL206"]["explain"]
    assert missing.startswith("a request to http://other.example.com/b matches no virtual host")
    assert "--suppress IL206" in missing
    assert "(none: no virtual host matches the host)" in replay(missing, "vhost")
    assert replay(missing).endswith("none -> 404 NR")
    # IL225: shop.example.com's requests also go to VirtualService a
    both = by_code["IL225"]["explain"]
    assert "VirtualService/default/a http[0]" in both
    assert "not a route of VirtualService/default/b" in both
    assert "VirtualService/default/a  http[0]" in replay(both)


def test_gateway_named_when_there_are_several(tmp_path: Path) -> None:
    second = GATEWAY.replace("name: gw", "name: gw2").replace("shop.example.com", "x.example.com")
    path = write(tmp_path, "shop.yaml", GATEWAY, second, SHADOWED)
    _, doc = lint_json(path)
    (shadow,) = [f["explain"] for f in doc["findings"] if f["code"] == "IL208"]
    assert "--gateway default/gw" in shadow
    assert replay(shadow).endswith("(api)")


def test_only_routing_findings_change(shadowed: Path, tmp_path: Path) -> None:
    bad = write(tmp_path, "web.yaml", BAD_SUBSET)
    config = load([shadowed, bad])
    found = validate(config)
    out = add_provenance(config, found, [str(shadowed), str(bad)])
    assert len(out) == len(found)
    for before, after in zip(found, out, strict=True):
        if before.code in ROUTING_CODES:
            assert after.explain is not None
        else:
            assert after == before
    assert {f.code for f in out} >= {"IL203", "IL207", "IL208"}


# -- explain compiles only what the request's host needs ------------------------------------


def test_explain_drops_virtual_services_of_other_hosts(tmp_path: Path) -> None:
    other = SHADOWED.replace("name: shop", "name: other").replace(
        "shop.example.com", "other.example.com"
    )
    config = load(write(tmp_path, "two.yaml", GATEWAY, SHADOWED, other))
    kept = for_authority(config, "shop.example.com:80")
    assert [r.key for r in kept if r.kind == "VirtualService"] == ["VirtualService/default/shop"]
    assert [r.key for r in kept if r.kind == "Gateway"] == ["Gateway/default/gw"]
    # a short name reaches a mesh VirtualService through its FQDN
    mesh = load(write(tmp_path, "mesh.yaml", BAD_SUBSET.replace("subset: v3", "subset: v1")))
    assert len(for_authority(mesh, "web")) == len(mesh)
    assert len(for_authority(mesh, "web.default.svc")) == len(mesh)
    assert [r.kind for r in for_authority(mesh, "elsewhere")] == ["DestinationRule"]


def test_an_error_in_another_host_does_not_stop_explain(tmp_path: Path) -> None:
    path = write(tmp_path, "all.yaml", GATEWAY, REACHABLE, BAD_SUBSET)
    config = load(path)
    table = compile_for_host(config, "shop.example.com", gateway="gw")
    assert [vh.domains for vh in table.virtual_hosts] == [("shop.example.com",)]
    with pytest.raises(ConfigError) as err:
        compile_for_host(config, "web")
    assert [f.code for f in err.value.findings] == ["IL203"]
    code, out, _ = cli("explain", path, "--host", "shop.example.com", "--path", "/late")
    assert code == 0
    assert "(late)" in out
