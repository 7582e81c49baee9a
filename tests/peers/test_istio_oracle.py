"""Istio's own translation as the compiler's oracle (``istiolab verify --against istio``).

Every example, every conformance config and every Gateway API fixture (``tests/data/gatewayapi``)
is compiled by istiolab and by Istio's Pilot (``peers/bin/gateway-routes``,
:mod:`istiolab.envoy.verify.istio`), and the two route tables must agree route by route.
What still differs is listed, with its reason, in :data:`KNOWN_DIFFERENCES`, and nowhere else;
an entry that no longer differs fails too, so the list cannot go stale.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from istiolab.cli.app import app
from istiolab.config.configset import ConfigSet, load
from istiolab.config.convert import convert
from istiolab.config.gatewayapi import HTTPRoute
from istiolab.config.model import VirtualService
from istiolab.envoy.compile import compile as do_compile
from istiolab.envoy.compile import is_legacy
from istiolab.envoy.render import render_route
from istiolab.envoy.verify import istio as oracle
from istiolab.profiles import get_profile

from . import apiserver

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO / "tests" / "conformance" / "configs"


def _fixtures() -> list[str]:
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "examples").glob("*/*.yaml"))
    examples = ["examples/seed", *files]
    conformance = sorted(
        str(p.relative_to(REPO))
        for p in CONFORMANCE.glob("*.yaml")
        if not p.name.endswith(".cases.yaml")
    )
    own = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests/peers/configs").glob("*.yaml"))
    gateway_api = sorted(
        str(p.relative_to(REPO)) for p in (REPO / "tests/data/gatewayapi").glob("*.yaml")
    )
    return examples + conformance + own + gateway_api


FIXTURES = _fixtures()

_ABSOLUTE_FQDN = (
    "Istio 1.27+ (ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN, on by default; istio/istio#56007) adds the "
    "absolute name '<fqdn>.' to a sidecar's virtual host domains; istiolab's newest profile is "
    "1.24, whose istiod does not, and profiles.py has no later one yet"
)

# (fixture, virtual host, field) -> why istiolab and Istio's translation still differ there.
KNOWN_DIFFERENCES: dict[tuple[str, str, str], str] = {
    (fixture, vhost, "domains"): _ABSOLUTE_FQDN
    for fixture, vhost in [
        ("examples/legacy/canary-90-10.yaml", "webui.default.svc.cluster.local:80"),
        ("examples/legacy/cookie-ab.yaml", "webui.default.svc.cluster.local:80"),
        ("examples/legacy/retries.yaml", "api.default.svc.cluster.local:8080"),
        ("examples/legacy/timeout.yaml", "api.default.svc.cluster.local:8080"),
        ("examples/modern/canary-90-10.yaml", "webui.default.svc.cluster.local:80"),
        ("examples/modern/cookie-ab.yaml", "webui.default.svc.cluster.local:80"),
        ("examples/modern/retries.yaml", "api.default.svc.cluster.local:8080"),
        ("examples/modern/timeout.yaml", "api.default.svc.cluster.local:8080"),
        ("tests/conformance/configs/27-mesh.yaml", "httpbin.default.svc.cluster.local:8000"),
    ]
}
KNOWN_DIFFERENCES[("tests/data/gatewayapi/rewrites.yaml", "*:80", "clusters")] = (
    "a backendRef to a Service that does not exist: istiolab's Gateway API compiler "
    "(envoy/gatewayapi.py) names its cluster UnknownService, istiod names the missing Service's "
    "cluster (outbound|80||gone.apps.svc.cluster.local); both routes carry "
    "cluster_not_found_response_code 500, so Envoy answers 500 for that share either way"
)


@pytest.fixture(scope="module")
def peer() -> Path:
    """``peers/bin/gateway-routes``, built with ``make -C peers`` where Go is installed."""
    try:
        return oracle.find_peer()
    except oracle.PeerMissingError as err:
        if apiserver.find_go() is None or shutil.which("make") is None:
            apiserver.skip_or_fail(apiserver.PeersUnavailableError(str(err)))
    apiserver.ensure_built()
    return oracle.find_peer()


@pytest.mark.peers
@pytest.mark.parametrize("fixture", FIXTURES)
def test_compiled_routes_agree_with_istio(fixture: str, peer: Path) -> None:
    path = REPO / fixture
    config = load(path)
    result = oracle.verify_against_istio(config, peer=peer)
    found = {(fixture, d.virtual_host, d.field): d for d in result.differ}
    expected = {k for k in KNOWN_DIFFERENCES if k[0] == fixture}
    unexpected = [
        f"{d.virtual_host} #{d.index} {d.route} {d.field}: ours {d.ours!r}, istio {d.istio!r}"
        for k, d in found.items()
        if k not in expected
    ]
    assert not unexpected, "differences from Istio's translation:\n" + "\n".join(unexpected)
    stale = sorted(expected - set(found))
    assert not stale, f"listed in KNOWN_DIFFERENCES but no longer different: {stale}"
    # Not vacuous: a config with HTTP routes was compared with Istio's, route by route.
    if any(vs.spec.http for vs in _modern(config).kind(VirtualService)) or config.kind(HTTPRoute):
        assert result.tables
        assert result.routes > 0


def _modern(config: ConfigSet) -> ConfigSet:
    if not is_legacy(config):
        return config
    return convert(config, get_profile(None), modern_defaults=True).config


@pytest.mark.peers
def test_cli_prints_the_comparison_and_exits_0_when_istio_agrees(peer: Path) -> None:
    env = {oracle.PEER_ENV: str(peer)}
    config = str(CONFORMANCE / "10-weights-90-10.yaml")
    res = CliRunner().invoke(app, ["verify", config, "--against", "istio", "-f", "json"], env=env)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["routes"], doc["agree"], doc["differ"]) == (1, 1, [])
    assert doc["tables"] == [{"table": "gateway default/gw:80", "istio": "http.80"}]


@pytest.mark.peers
def test_cli_exits_1_and_names_each_difference(peer: Path) -> None:
    """Istio 1.0's profile has no default retry policy; today's istiod writes one."""
    env = {oracle.PEER_ENV: str(peer)}
    config = str(CONFORMANCE / "10-weights-90-10.yaml")
    args = ["verify", config, "--against", "istio", "--profile", "1.0", "-f", "json"]
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert (doc["routes"], doc["agree"]) == (1, 0)
    [diff] = [d for d in doc["differ"] if d["field"] == "retry"]
    assert diff["virtual_host"] == "*:80"
    assert (diff["index"], diff["route"]) == (0, "canary")
    assert diff["ours"] is None
    assert diff["istio"]["num_retries"] == 2


def test_without_the_peer_verify_says_make_peers_in_one_line(tmp_path: Path) -> None:
    env = {oracle.PEER_ENV: str(tmp_path / "gateway-routes")}
    config = str(CONFORMANCE / "10-weights-90-10.yaml")
    res = CliRunner().invoke(app, ["verify", config, "--against", "istio"], env=env)
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "make peers" in lines[0]


def test_against_anything_but_istio_is_a_usage_error() -> None:
    config = str(CONFORMANCE / "10-weights-90-10.yaml")
    res = CliRunner().invoke(app, ["verify", config, "--against", "envoy"])
    assert res.exit_code == 2
    assert "--against must be istio" in res.output


def test_our_rendering_and_istios_protobuf_json_normalise_alike() -> None:
    """The same route as we render it (snake_case) and as Pilot prints it (camelCase)."""
    table = do_compile(load(CONFORMANCE / "10-weights-90-10.yaml"), "1.24")
    ours = oracle.normalise_route(render_route(table.routes()[0]))
    istio = {
        "name": "canary",
        "match": {"prefix": "/"},
        "route": {
            "weightedClusters": {
                "clusters": [
                    {"name": "outbound|8000|v1|httpbin.default.svc.cluster.local", "weight": 90},
                    {"name": "outbound|8000|v2|httpbin.default.svc.cluster.local", "weight": 10},
                ]
            },
            "timeout": "0s",
            "retryPolicy": {
                "retryOn": "connect-failure,refused-stream,unavailable,cancelled,"
                "retriable-status-codes",
                "numRetries": 2,
                "retryHostPredicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}],
                "hostSelectionRetryMaxAttempts": "5",
            },
            "maxGrpcTimeout": "0s",
        },
        "decorator": {"operation": "httpbin:80/*"},
    }
    assert oracle.normalise_route(istio) == ours
    # and a changed weight is a difference, field by field
    istio["route"]["weightedClusters"]["clusters"][0]["weight"] = 80  # type: ignore[index]
    result = oracle.compare_tables(
        {"*:80": {"domains": ["*"], "routes": [ours]}},
        {"*:80": {"domains": ["*"], "routes": [oracle.normalise_route(istio)]}},
        table="t",
    )
    assert (result.routes, result.agree) == (1, 0)
    assert [d.field for d in result.differ] == ["clusters"]


def test_a_route_only_one_side_has_is_a_difference() -> None:
    route = {"name": "r", "match": {"path": ["prefix", "/"]}}
    result = oracle.compare_tables(
        {"*:80": {"domains": ["*"], "routes": [route]}},
        {"*:80": {"domains": ["*"], "routes": []}, "x:80": {"domains": ["x"], "routes": []}},
        table="t",
    )
    assert [(d.virtual_host, d.index, d.field) for d in result.differ] == [
        ("*:80", 0, "route"),
        ("x:80", None, "virtual_host"),
    ]


def test_against_takes_no_case_files(tmp_path: Path) -> None:
    config = str(CONFORMANCE / "10-weights-90-10.yaml")
    args = ["verify", config, "--against", "istio", "--write-cases", str(tmp_path / "c.json")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert "--cases/--write-cases do not apply" in res.output
    assert not (tmp_path / "c.json").exists()


# -- the Gateway API tests' own configs ----------------------------------------------------------

# The modules of tests/gatewayapi whose tests compile a config and route requests through it;
# their configs are written inline, so they are recorded as those tests compile them.
GATEWAY_API_MODULES = ("test_conformance", "test_precedence", "test_filters")

# (test function#n-th config it compiles, virtual host, field) -> why istiolab and Istio differ.
GATEWAY_API_KNOWN: dict[tuple[str, str, str], str] = {
    (f"test_conformance.test_hostname_intersection#{n}", "very.specific.com:80", field): (
        "two rules with disjoint matches (/s1 of HTTPRoute specific, /s3 of "
        "wildcard-over-specific): which comes first is not observable; istiolab orders ties by "
        "the spec's namespace/name, istiod puts the wildcard hostname's route first"
    )
    for n in (0,)
    for field in ("match", "clusters")
}
GATEWAY_API_KNOWN[
    (
        "test_filters.test_unresolved_backend_answers_500_for_its_share#0",
        "example.com:80",
        "clusters",
    )
] = KNOWN_DIFFERENCES[("tests/data/gatewayapi/rewrites.yaml", "*:80", "clusters")]


def _gateway_api_configs() -> list[tuple[str, ConfigSet, object]]:
    """``(id, config, profile)`` of every config the Gateway API tests compile."""
    import inspect

    import gatewayapi._util as util  # tests/ is on sys.path (tests/peers is a package under it)

    recorded: list[tuple[str, ConfigSet, object]] = []
    current = [""]
    counts: dict[str, int] = {}
    real = util.compile  # type: ignore[attr-defined]

    def record(config: ConfigSet, profile: object = None, *args: object, **kw: object) -> object:
        n = counts.get(current[0], 0)
        counts[current[0]] = n + 1
        recorded.append((f"{current[0]}#{n}", config, profile))
        return real(config, profile, *args, **kw)  # type: ignore[arg-type]

    modules = [__import__(f"gatewayapi.{m}", fromlist=["x"]) for m in GATEWAY_API_MODULES]
    patched = [m for m in [util, *modules] if getattr(m, "compile", None) is real]
    for m in patched:
        setattr(m, "compile", record)  # noqa: B010 - the module attribute the tests call
    try:
        for m in modules:
            for name, fn in sorted(vars(m).items()):
                if name.startswith("test_") and callable(fn):
                    if inspect.signature(fn).parameters:
                        continue  # parametrized: its cases are covered by the files above
                    current[0] = f"{m.__name__.rsplit('.', 1)[1]}.{name}"
                    # its own assertions are its own test's business; the configs it compiled
                    # before failing are recorded all the same
                    with contextlib.suppress(Exception):
                        fn()
    finally:
        for m in patched:
            setattr(m, "compile", real)  # noqa: B010
    return recorded


@pytest.mark.peers
def test_gateway_api_tests_configs_agree_with_istio(
    peer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = _gateway_api_configs()
    assert len(configs) > 30  # the Gateway API tests still compile through istiolab's compiler
    found: dict[tuple[str, str, str], str] = {}
    routes = agree = 0
    for ident, config, profile in configs:
        result = oracle.verify_against_istio(config, profile=profile, peer=peer)  # type: ignore[arg-type]
        routes += result.routes
        agree += result.agree
        for d in result.differ:
            found[(ident, d.virtual_host, d.field)] = (
                f"{ident} {d.virtual_host} #{d.index} {d.route} {d.field}: "
                f"ours {d.ours!r}, istio {d.istio!r}"
            )
    with capsys.disabled():
        print(f"\nGateway API tests' configs: {len(configs)}, routes {routes}, agree {agree}")
    unexpected = [text for key, text in found.items() if key not in GATEWAY_API_KNOWN]
    assert not unexpected, "\n".join(unexpected)
    stale = sorted(set(GATEWAY_API_KNOWN) - set(found))
    assert not stale, f"GATEWAY_API_KNOWN entries that no longer differ: {stale}"
