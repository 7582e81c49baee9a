"""RequestRedirect with ReplacePrefixMatch: compiled as istiod does (the redirect's
``prefix_rewrite``), and the Location agrees with a real Envoy."""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.cli.app import main
from istiolab.config import load
from istiolab.envoy.compile import compile
from istiolab.envoy.match import Request, route
from istiolab.envoy.verify.outcomes import route_location

CONFIG = Path(__file__).resolve().parents[1] / "data" / "gatewayapi" / "redirect-prefix.yaml"

CASES = """\
tests:
- test_name: prefix swapped, rest and query kept
  input: {authority: shop.example.com, path: '/old/page?x=1', method: GET}
  validate: {code_redirect: 301, path_redirect: 'http://shop.example.com/new/page?x=1'}
- test_name: the prefix itself
  input: {authority: shop.example.com, path: /old, method: GET}
  validate: {code_redirect: 301, path_redirect: 'http://shop.example.com/new'}
- test_name: another host and a longer prefix
  input: {authority: shop.example.com, path: /legacy/api/items/7, method: GET}
  validate: {code_redirect: 302, path_redirect: 'http://api.example.com/v1/items/7'}
"""


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/old/page?x=1", "http://shop.example.com/new/page?x=1"),
        ("/old", "http://shop.example.com/new"),
        ("/legacy/api/items/7", "http://api.example.com/v1/items/7"),
    ],
)
def test_the_model_swaps_the_matched_prefix(path: str, location: str) -> None:
    table = compile(load(CONFIG))
    d = route(table, Request(path=path, host="shop.example.com"))
    assert d.route is not None
    assert d.route.redirect is not None
    assert d.route.redirect.prefix is not None
    assert route_location(d.route, Request(path=path, host="shop.example.com")) == location


@pytest.mark.envoy
@pytest.mark.xdist_group("envoy")
def test_envoy_agrees_on_the_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES, encoding="utf-8")
    assert main(["verify", str(CONFIG), "--cases", str(cases)]) == 0
    assert "3/3 case(s) agree with Envoy" in capsys.readouterr().out
