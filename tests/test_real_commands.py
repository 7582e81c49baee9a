"""The real-cluster commands: rendered from the config, right per Istio profile, one source.

``istiolab.kube.commands`` writes the kubectl, istioctl, helm and aws steps of a config; the
notebooks' "On a real cluster" blocks (``istiolab.lab.realcluster``) and ``istiolab apply
--print-commands`` both show them. These tests check that the commands name the config's own
files, namespaces, hosts and gateways (renaming one changes them), that 0.2 and current differ
as Istio did, that expected outputs follow the route model, that the formats keep their shape,
that the shell is valid, and that the CLI exits 0 without a cluster.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import istiolab
from istiolab.cli import cluster as cli_cluster
from istiolab.config import ConfigSet, loads
from istiolab.kube.commands import TOPICS, CommandsError, RealCommands, real_commands

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed"

SHOP = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop-gw, namespace: istio-edge}
spec:
  selector: {istio: edge}
  servers:
  - port: {number: 443, name: https, protocol: HTTP}
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: store}
spec:
  hosts: [shop.example.com]
  gateways: [istio-edge/shop-gw]
  http:
  - name: split
    route:
    - destination: {host: web, subset: v1}
      weight: 75
    - destination: {host: web, subset: v2}
      weight: 25
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: store}
spec:
  host: web
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""


def _seed() -> ConfigSet:
    return istiolab.load(SEED)


def _all(cmds: RealCommands) -> str:
    return "\n".join(cmds.commands)


def _expected(cmds: RealCommands) -> str:
    return "\n".join(s.expected for s in cmds.steps)


def test_seed_0_2_names_its_files_namespace_and_rule() -> None:
    """The seed's own steps: kube-inject of its httpbin file, istioctl create of its rule."""
    cmds = real_commands(_seed(), "0.2", "ingress", relative_to=ROOT)
    text = _all(cmds)
    assert (
        "kubectl apply -n default -f <(istioctl kube-inject -f examples/seed/httpbin.yaml)"
    ) in text
    assert "istioctl create -n default -f examples/seed/deny-route.yaml" in text
    assert "kubectl create -n default -f examples/seed/ingress.yaml" in text
    crds = cmds.section("crds")
    assert crds is not None
    assert crds.steps[0].commands == ("kubectl get crd | grep istio.io",)
    assert "routerules.config.istio.io" in crds.steps[0].expected
    assert "Created config route-rule/default/deny-route at revision N" in _expected(
        cmds
    )  # istioctl 0.2's own line
    cleanup = cmds.section("cleanup")
    assert cleanup is not None
    assert "istioctl delete -n default -f examples/seed/deny-route.yaml" in "\n".join(
        c for s in cleanup.steps for c in s.commands
    )
    assert cmds.resources == ("RouteRule/default/deny-route", "Ingress/default/simple-ingress")


def test_renaming_a_resource_renames_the_commands() -> None:
    """Not a fixed list: another rule name and namespace appear wherever the config's did."""
    text = (SEED / "deny-route.yaml").read_text(encoding="utf-8")
    renamed = loads(
        text.replace("name: deny-route", "name: block-all\n  namespace: payments"),
        file="rules/block.yaml",
    )
    cmds = real_commands(renamed, "0.2", "fault")
    joined = _all(cmds)
    assert "istioctl create -n payments -f rules/block.yaml" in joined
    assert "deny-route" not in joined + _expected(cmds)
    assert "route-rule/payments/block-all" in _expected(cmds)


def test_current_profile_uses_the_gateway_chart_the_config_selects() -> None:
    """The Gateway's selector names the istio/gateway release; hosts make the DNS records."""
    cmds = real_commands(loads(SHOP), "current", "all")
    text = _all(cmds)
    # istio/gateway labels its pods istio=<release minus "istio-">: selector edge -> istio-edge
    assert "helm install istio-edge istio/gateway -n istio-edge --create-namespace --wait" in text
    assert "kubectl -n istio-edge get service istio-edge" in text
    assert "kubectl apply -n store -f - <<'EOF'" in text
    assert "name: shop" in text
    assert "istioctl analyze -n store" in text
    assert '"Name":"shop.example.com"' in text
    assert "dig +short shop.example.com" in text
    assert "$DOMAIN" not in text  # the config has a real host
    assert "-H 'Host: shop.example.com'" in text
    assert "service.beta.kubernetes.io/aws-load-balancer-ssl-cert: ${ACM_CERT_ARN}" in text
    assert 'service.beta.kubernetes.io/aws-load-balancer-ssl-ports: "443"' in text
    assert "aws ec2 authorize-security-group-ingress --group-id $NODE_SG" in text
    assert "{.spec.ports[?(@.port==443)].nodePort}" in text
    crds = cmds.section("crds")
    assert crds is not None
    for crd in (
        "gateways.networking.istio.io",
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
    ):
        assert crd in crds.steps[0].expected
    cleanup = "\n".join(c for s in cmds.section("cleanup").steps for c in s.commands)  # type: ignore[union-attr]
    assert '"Action":"DELETE"' in cleanup
    assert "shop.example.com" in cleanup
    assert "virtualservices.networking.istio.io/shop" in cleanup
    assert "helm delete istio-edge -n istio-edge" in cleanup


def test_expected_output_follows_the_route_model() -> None:
    """The deny-route drill answers 403; a 75/25 split expects about 75 and 25 of 100."""
    seed = real_commands(_seed(), "0.2", "fault")
    check = seed.section("check")
    assert check is not None
    curl = next(s for s in check.steps if s.commands[0].startswith("curl"))
    assert curl.expected == "403"
    assert "http://$INGRESS_HOST/" in curl.commands[0]
    split = real_commands(loads(SHOP), "current", "canary")
    loop = next(s for s in split.steps if "seq 1 100" in s.commands[0])
    # the gateway's access log names each request's upstream cluster, subset included
    assert loop.commands[1].startswith("kubectl -n istio-edge logs deploy/istio-edge --since=2m")
    assert [line.split() for line in loop.expected.splitlines()] == [
        ["~75", "outbound|443|v1|web.store.svc.cluster.local"],
        ["~25", "outbound|443|v2|web.store.svc.cluster.local"],
    ]
    fifty = real_commands(loads(SHOP.replace("75", "50").replace("25", "50")), "current", "canary")
    loop = next(s for s in fifty.steps if "seq 1 100" in s.commands[0])
    assert [line.split()[0] for line in loop.expected.splitlines()] == ["~50", "~50"]
    old = real_commands(istiolab.load(ROOT / "examples" / "legacy" / "canary-90-10.yaml"), "0.2")
    loop = next(s for s in old.steps if "seq 1 100" in s.commands[0])
    assert loop.expected.splitlines() == [
        "about 90 requests to the v1 pods' IP:port",
        "about 10 requests to the v2 pods' IP:port",
    ]
    assert loop.commands[2] == "kubectl get pods -l app=webui -L version -o wide"


def test_profiles_differ_as_istio_did() -> None:
    """0.2: the Helm two-step, zipkinAddress, istioctl create; current: base/istiod, analyze."""
    old = real_commands(_seed(), "0.2", "all")
    new = real_commands(_seed(), "current", "all")
    old_text, new_text = _all(old), _all(new)
    assert "helm install incubator/istio --set rbac.install=true --namespace istio-system" in (
        old_text
    )
    assert "--reuse-values --set istio.install=true" in old_text
    assert "zipkinAddress: stackdriver-zipkin.kube-system:9411" in old_text
    assert "istioctl create" in old_text
    assert "istioctl analyze" not in old_text
    assert "aws elb describe-load-balancers" in old_text  # the Classic ELB of the in-tree provider
    assert "kubectl -n istio-system annotate service istio-ingress" in old_text

    assert "helm install istio-base istio/base" in new_text
    assert "helm install istiod istio/istiod" in new_text
    assert "istio.install=true" not in new_text
    assert "istioctl create" not in new_text
    assert "istioctl analyze" in new_text
    assert "meshConfig.extensionProviders[0].zipkin.service=stackdriver-zipkin.kube-system" in (
        new_text
    )
    assert "kubectl label namespace default istio-injection=enabled" in new_text
    assert "aws elbv2 describe-load-balancers" in new_text
    # the 0.2 rules converted: the converted VirtualService is applied, with the 403 fault
    assert "kind: VirtualService" in new_text
    assert "httpStatus: 403" in new_text
    assert any("converted" in n for n in new.notes)
    assert any("extensions/v1beta1" in n for n in new.notes)  # its Deployment is not served


def test_modern_rules_have_no_0_2_form_and_say_so() -> None:
    cmds = real_commands(loads(SHOP), "0.2", "canary")
    assert any("no VirtualService" in n for n in cmds.notes)
    assert "kind: VirtualService" not in _all(cmds)
    gw_api = real_commands(loads(SHOP), "0.2", "gateway-api")
    assert any("Gateway API did not exist" in n for n in gw_api.notes)


def test_mesh_rules_are_checked_from_a_pod_in_the_mesh() -> None:
    """Without an Ingress or Gateway the requests come from a client pod with a sidecar."""
    cookie = istiolab.load(ROOT / "examples" / "legacy" / "cookie-ab.yaml")
    old = _all(real_commands(cookie, "0.2", "cookie-ab"))
    assert "istioctl kube-inject -f samples/sleep/sleep.yaml" in old
    assert 'kubectl exec "$SOURCE_POD" -c sleep -- curl' in old
    assert "-H 'cookie: user=beta'" in old
    new = _all(real_commands(cookie, "current", "cookie-ab"))
    assert "kubectl exec deploy/curl -- curl" in new
    assert "$INGRESS_HOST" not in new


def test_markdown_and_json_shapes() -> None:
    cmds = real_commands(_seed(), "current", "ingress", relative_to=ROOT)
    md = cmds.to_markdown()
    headings = re.findall(r"^(#+) (.+)$", md, re.MULTILINE)
    assert headings[0][0] == "##"
    assert "Istio current" in headings[0][1]
    assert [t for level, t in headings if level == "###"] == [s.title for s in cmds.sections]
    assert headings[-1][1] == "Cleanup"
    with_commands = [s for s in cmds.steps if s.commands]
    assert md.count("```bash") == len(with_commands)
    assert md.count("Expected output:") == sum(1 for s in cmds.steps if s.expected)
    data = json.loads(cmds.format("json"))
    assert data["profile"] == "current"
    assert data["topic"] == "ingress"
    assert [s["key"] for s in data["sections"]] == [s.key for s in cmds.sections]
    step = data["sections"][0]["steps"][0]
    assert set(step) == {"title", "commands", "expected", "note", "source"}
    assert isinstance(step["commands"], list)
    assert [c for s in data["sections"] for st in s["steps"] for c in st["commands"]] == (
        cmds.commands
    )
    text = cmds.to_text()
    assert text.count("\n$ ") == sum(len(s.commands) for s in cmds.steps)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("profile", ["0.2", "current"])
def test_every_command_is_valid_shell(profile: str, tmp_path: Path) -> None:
    """bash -n parses every topic's commands (here-documents and quoting included)."""
    configs = [_seed(), loads(SHOP), istiolab.load(ROOT / "examples" / "legacy")]
    script = tmp_path / "steps.sh"
    lines = [
        c for cs in configs for topic in TOPICS for c in real_commands(cs, profile, topic).commands
    ]
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr


def test_unknown_topic_or_profile_is_refused() -> None:
    with pytest.raises(CommandsError, match="unknown topic"):
        real_commands(_seed(), "current", "nope")
    with pytest.raises(CommandsError, match=r"0\.2 or current"):
        real_commands(_seed(), "0.5", "all")
    assert real_commands(_seed(), "1.24", "install").profile == "current"


def _cli(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> Any:
    from istiolab.cli.app import app

    def no_cluster(*_: Any) -> Any:
        raise AssertionError("--print-commands must not connect to a cluster")

    monkeypatch.setattr(cli_cluster, "_connect", no_cluster)
    result = CliRunner().invoke(app, args)
    assert "Traceback" not in result.output
    return result


def test_cli_prints_the_same_commands_and_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = _cli(
        monkeypatch,
        ["apply", "examples/seed", "--print-commands", "--profile", "0.2", "-o", "json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = real_commands(_seed(), "0.2", "all", relative_to=ROOT)
    assert [c for s in data["sections"] for st in s["steps"] for c in st["commands"]] == (
        expected.commands
    )
    md = _cli(monkeypatch, ["apply", "-f", "examples/seed", "--print-commands", "-o", "markdown"])
    assert md.exit_code == 0
    assert md.stdout.startswith("## Every step for these files (Istio current)")
    text = _cli(monkeypatch, ["apply", "examples/seed", "--print-commands"])
    assert text.exit_code == 0
    assert "$ helm install istio-base istio/base" in text.stdout


def test_cli_refuses_bad_options_with_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    bad_format = _cli(monkeypatch, ["apply", "examples/seed", "--print-commands", "-o", "yaml"])
    assert bad_format.exit_code == 2
    assert "text, markdown or json" in bad_format.output
    bad_profile = _cli(monkeypatch, ["apply", "examples/seed", "--print-commands", "-p", "9"])
    assert bad_profile.exit_code == 2
    no_input = _cli(monkeypatch, ["apply", "--print-commands"])
    assert no_input.exit_code == 2


def test_notebook_block_shows_what_the_tool_prints() -> None:
    """The notebook's block renders the same steps as the CLI, folded in a <details>."""
    from istiolab.lab.realcluster import real_cluster

    block = real_cluster("ingress", _seed())
    html = block._repr_html_()
    assert html.count("<details") == 3  # the block and one per profile
    assert "<details class='il-rc'>" in html  # folded until opened
    assert [c.profile for c in block.commands] == ["current", "0.2"]
    for cmds in block.commands:
        everything = real_commands(_seed(), cmds.profile, "all", relative_to=ROOT).commands
        for command in cmds.commands:
            assert command in everything, command
            first = command.splitlines()[0]
            assert (
                first.replace("<", "&lt;")
                .replace(">", "&gt;")
                .replace("'", "&#x27;")
                .replace('"', "&quot;")
                in html
            )
    # a modern config gets its topic's 0.2 example for the 0.2 profile
    modern = real_cluster("canary", loads(SHOP))
    assert "examples/legacy/canary-90-10.yaml" in "\n".join(modern.commands[1].commands)


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[01][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_one_real_cluster_block_after_its_exercises(path: Path) -> None:
    # After: its commands and expected output carry answers (the deny rule's 403, the kinds a
    # conversion makes), so an attendee reading top-down meets it once the exercises are done.
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells]
    calls = [i for i, s in enumerate(sources) if "real_cluster(" in s]
    assert len(calls) == 1, path.name
    i = calls[0]
    assert sources[i - 1].startswith("## On a real cluster")
    code = [line for line in sources[i].splitlines() if line.strip()]
    assert code[0] == "from istiolab.lab.realcluster import real_cluster"
    assert len(code) == 2  # one call, no logic
    topic = re.fullmatch(r'real_cluster\("([\w-]+)", [\w.()"]+\)', code[1])
    assert topic is not None
    assert topic.group(1) in TOPICS
    last_check = max(j for j, s in enumerate(sources) if re.search(r"\bex\.check\(", s))
    assert i > last_check


def test_a_file_with_other_resources_is_applied_in_parts() -> None:
    """A file holding workloads and rules is not passed whole to either step: each step's
    here-document holds its own part (kube-inject reads it, not the end of the pipe)."""
    quota = istiolab.load(ROOT / "examples" / "legacy" / "ratelimit-100rps.yaml")
    cmds = real_commands(quota, "0.2", "rate-limit", relative_to=ROOT)
    workloads = cmds.section("workloads")
    assert workloads is not None
    inject = workloads.steps[0].commands[0]
    first, second = inject.splitlines()[:2]
    assert first == "# Service, Deployment of examples/legacy/ratelimit-100rps.yaml"
    assert second == "istioctl kube-inject -f - <<'EOF' | kubectl apply -n default -f -"
    assert "kind: memquota" not in inject
    mixer = cmds.section("rules")
    assert mixer is not None
    text = "\n".join(mixer.steps[0].commands)
    assert "kind: memquota" in text
    assert "kind: Deployment" not in text
    assert "-f examples/legacy/ratelimit-100rps.yaml" not in _all(cmds)


def test_inline_scenario_rules_are_here_documents_not_a_file() -> None:
    from istiolab import lab

    rules = lab.rules_of(lab.scenario("rate-limit-100rps"))
    cmds = real_commands(rules, "current", "rate-limit")
    text = _all(cmds)
    assert "<scenario" not in text
    assert "kubectl apply -n istio-system -f - <<'EOF'" in text
    assert "kind: EnvoyFilter" in text
    # the local rate limit's bucket makes the burst's expectation
    burst = next(s for s in cmds.steps if s.title.startswith("A burst of 300"))
    assert burst.expected.startswith("about 100 200 per gateway pod")
    assert burst.expected.endswith("the rest 429")


def test_0_2_backup_rollback_and_delete_use_istioctl_types_and_keys() -> None:
    cmds = real_commands(_seed(), "0.2", "apply", relative_to=ROOT)
    plan = cmds.section("plan")
    assert plan is not None
    assert plan.steps[0].commands == ("istioctl get route-rules -o yaml > before.yaml",)
    rollback = cmds.section("rollback")
    assert rollback is not None
    assert rollback.steps[0].expected == (
        "Updated config route-rule/default/deny-route to revision N"
    )
    cleanup = cmds.section("cleanup")
    assert cleanup is not None
    assert "Deleted config: route-rule/default/deny-route" in "\n".join(
        s.expected for s in cleanup.steps
    )
    rbac = _all(real_commands(loads(SHOP), "current", "apply"))
    assert "kubectl auth can-i patch virtualservices.networking.istio.io -n store" in rbac
    assert "kubectl apply --server-side --dry-run=server -n store -f - <<'EOF'" in rbac
    assert "rules.yaml" not in rbac


def test_what_only_the_user_knows_is_set_once_and_undone() -> None:
    """Shell variables first (DOMAIN only when the config's hosts are wildcards); the NodePorts
    opened in the security group are the ones cleanup closes."""
    seed = real_commands(_seed(), "current", "aws")
    before = seed.section("before")
    assert before is not None
    exports = [c.split("=")[0] for s in before.steps for c in s.commands if c.startswith("export")]
    assert exports == [
        "export ACM_CERT_ARN",
        "export HOSTED_ZONE_ID",
        "export NODE_SG",
        "export DOMAIN",
    ]
    shop = real_commands(loads(SHOP), "current", "aws")
    assert "export DOMAIN" not in _all(shop)
    text = _all(seed)
    assert (
        "authorize-security-group-ingress --group-id $NODE_SG --protocol tcp --port $port" in text
    )
    cleanup = "\n".join(c for s in seed.section("cleanup").steps for c in s.commands)  # type: ignore[union-attr]
    assert "for port in $NODE_PORTS; do" in cleanup
    assert (
        "revoke-security-group-ingress --group-id $NODE_SG --protocol tcp --port $port" in cleanup
    )


def test_the_docs_page_lists_every_topic_and_its_notebook() -> None:
    page = (ROOT / "docs" / "real-cluster.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w-]+)` \| ([\w() ]+?) \|", page, re.MULTILINE))
    assert set(rows) == set(TOPICS)
    for path in NOTEBOOKS:
        source = path.read_text(encoding="utf-8")
        topic = re.search(r'real_cluster\(\\"([\w-]+)\\"', source)
        assert topic is not None, path.name
        assert rows[topic.group(1)] == path.name[:2], (path.name, topic.group(1))


def test_gateway_api_requests_go_to_the_gateways_address() -> None:
    from istiolab.config.convert import legacy_to_gateway_api

    migrated = legacy_to_gateway_api(_seed()).config
    cmds = real_commands(migrated, "current", "gateway-api")
    text = _all(cmds)
    assert (
        "kubectl -n default get gateways.gateway.networking.k8s.io istio-ingress "
        "-o jsonpath='{.status.addresses[0].value}'"
    ) in text
    assert "get service istio-ingressgateway" not in text
    assert "kubectl wait -n default --for=condition=programmed" in text
    assert "standard-install.yaml" in text


def test_the_client_pod_is_cleaned_up_only_when_it_was_made() -> None:
    cookie = istiolab.load(ROOT / "examples" / "legacy" / "cookie-ab.yaml")
    made = real_commands(cookie, "current", "cookie-ab")
    assert "samples/curl/curl.yaml" in _all(made)
    assert "kubectl delete deployment,service,serviceaccount curl" in _all(made)
    quota = istiolab.load(ROOT / "examples" / "legacy" / "ratelimit-100rps.yaml")
    none = real_commands(quota, "0.2", "rate-limit")  # no route to send a request to
    assert "sleep" not in _all(none)


def test_cli_namespace_is_the_default_for_resources_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    result = _cli(
        monkeypatch, ["apply", "examples/seed", "-n", "shop", "--print-commands", "-p", "0.2"]
    )
    assert result.exit_code == 0, result.output
    assert "$ istioctl create -n shop -f examples/seed/deny-route.yaml" in result.stdout
    assert "Created config route-rule/shop/deny-route at revision N" in result.stdout
    assert "-n default" not in result.stdout
    # a resource that names its namespace keeps it
    assert "kubectl apply -n store" in _all(real_commands(loads(SHOP), namespace="other"))


def test_tls_ended_at_the_load_balancer_reaches_a_plain_http_server() -> None:
    """The decrypted 443 traffic goes to the Gateway's HTTP server: 443 when it has one
    (SHOP), else 80 (the seed); in 0.2 the istio-ingress Service's 443 port targets 80."""
    shop = _all(real_commands(loads(SHOP), "current", "aws"))
    assert "- {name: https, port: 443, targetPort: 443, protocol: TCP}" in shop
    seed = _all(real_commands(_seed(), "current", "aws"))
    assert "- {name: https, port: 443, targetPort: 80, protocol: TCP}" in seed
    old = _all(real_commands(_seed(), "0.2", "aws"))
    assert (
        "kubectl -n istio-system patch service istio-ingress "
        '-p \'{"spec":{"ports":[{"port":443,"targetPort":80}]}}\''
    ) in old


def test_source_scoped_rules_carry_the_0_2_7_caveat() -> None:
    """deny-route matches source istio-ingress: 0.2.12 applies it at the ingress, 0.2.7 not."""
    old = real_commands(_seed(), "0.2", "fault")
    assert any("deny-route: scoped to a source" in n and "0.2.7" in n for n in old.notes)
    new = real_commands(_seed(), "current", "fault")
    assert not any("0.2.7" in n for n in new.notes)
    canary = istiolab.load(ROOT / "examples" / "legacy" / "canary-90-10.yaml")
    assert not any("0.2.7" in n for n in real_commands(canary, "0.2", "canary").notes)


def test_cli_refuses_input_with_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Steps for the part that loaded would leave the broken resource out: exit 1, no steps."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHOP.replace("weight: 75", "weight: many"), encoding="utf-8")
    result = _cli(monkeypatch, ["apply", str(bad), "--print-commands"])
    assert result.exit_code == 1
    assert "IL103" in result.output
    assert "no commands printed" in result.output
    assert "kubectl" not in result.stdout


def test_capacity_asks_for_the_planned_size_and_scales_the_configs_gateway() -> None:
    cmds = real_commands(loads(SHOP), "current", "capacity")
    text = _all(cmds)
    assert "export NODES=" in text
    assert "export REPLICAS=" in text
    assert "eksctl scale nodegroup --cluster $CLUSTER --name ingress --nodes $NODES" in text
    assert (
        "helm upgrade istio-edge istio/gateway -n istio-edge --reuse-values "
        "--set autoscaling.minReplicas=$REPLICAS"
    ) in text
    old = _all(real_commands(_seed(), "0.2", "capacity"))
    assert "kops update cluster --name $NAME --yes" in old
    assert "kubectl -n istio-system scale deployment istio-ingress --replicas=$REPLICAS" in old


def test_the_dns_name_is_checked_over_tls_with_the_routes_answer() -> None:
    shop = real_commands(loads(SHOP), "current", "aws").section("route53")
    assert shop is not None
    last = shop.steps[-1]
    assert last.commands == ("curl -s -o /dev/null -w '%{http_code}\\n' https://shop.example.com/",)
    assert last.expected == "200"
    seed = real_commands(_seed(), "0.2", "aws").section("route53")
    assert seed is not None
    assert seed.steps[-1].commands == (
        "curl -s -o /dev/null -w '%{http_code}\\n' \"https://$DOMAIN/\"",
    )
    assert seed.steps[-1].expected == "403"  # the deny-route drill, through DNS and TLS
