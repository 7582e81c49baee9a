"""What only a real API server shows, run where it can be: field ownership across a rollback,
and a write refused by admission halfway through an apply, then rolled back.
"""

from __future__ import annotations

from typing import Any

import pytest

from istiolab.config import ConfigSet, codecs, loads
from istiolab.kube import BackupStore, RefusedError, apply, plan, rollback
from istiolab.kube.objects import content

from . import _seed as seed


def _config(*objs: dict[str, Any]) -> ConfigSet:
    return loads(codecs.dumps(list(objs)), file="config.yaml")


def test_a_later_apply_takes_back_the_fields_of_istiolabs_own_rollback(env: Any) -> None:
    """The rollback's merge patch is an Update by "istiolab": kube-apiserver keeps it apart
    from istiolab's Apply, so the next apply that changes a restored field conflicts with
    "istiolab" itself. Those fields are istiolab's: the plan takes them over without --force
    and says so, while another manager's fields still need --force-conflicts.
    """
    if env.name == "kmock":
        pytest.skip("kmock: no field ownership (a scripted conflict would prove nothing)")
    env.seed(seed.gateway())
    env.seed(seed.destination_rule())
    env.seed(seed.virtual_service(90, 10), manager="kubectl-client-side-apply")
    store = BackupStore()

    first = plan(_config(seed.virtual_service(50, 50)), env.cluster)
    assert [c.manager for c in first.steps[0].conflicts] == ["kubectl-client-side-apply"]
    with pytest.raises(RefusedError):
        apply(first, env.cluster, backups=store)
    forced = plan(_config(seed.virtual_service(50, 50)), env.cluster, force=True)
    assert [(c.field, c.manager) for c in forced.steps[0].takeover] == [
        (".spec.http", "kubectl-client-side-apply")
    ]
    report = apply(forced, env.cluster, backups=store)
    assert report.ok, report.format()
    assert rollback(report.backup_id, env.cluster, backups=store).ok
    assert content(env.stored("VirtualService", "shop", "web")) == content(
        seed.virtual_service(90, 10)
    )

    again = plan(_config(seed.virtual_service(70, 30)), env.cluster)
    (step,) = again.steps
    assert step.action == "update", again.format()
    assert [(c.field, c.manager) for c in step.takeover] == [(".spec.http", "istiolab")]
    assert 'taking over .spec.http from "istiolab"' in again.format()
    assert apply(again, env.cluster, backups=store).ok
    assert (
        env.stored("VirtualService", "shop", "web")["spec"]["http"][0]["route"][0]["weight"] == 70
    )


def test_admission_refusal_midway_then_rollback(env: Any) -> None:
    """A ValidatingAdmissionPolicy refuses one object's write (its dry run passes): apply stops
    there with the server's message, and rollback restores the updated object and deletes the
    created one with its uid as a precondition. The real-server twin of
    ``test_failure_midway_then_rollback_restores_exactly``, whose etcd 500 cannot be produced.
    """
    if env.name != "apiserver":
        pytest.skip(f"{env.name}: no admission (test_failure_midway_... covers the flow)")
    env.seed(seed.destination_rule())
    before_dr = env.stored("DestinationRule", "shop", "web")
    config = _config(
        seed.virtual_service(),
        seed.envoy_filter(),
        seed.destination_rule(lb="ROUND_ROBIN"),
        seed.gateway(),
    )
    with env.refusing("EnvoyFilter", "web-headers", "EnvoyFilters are frozen"):
        p = plan(config, env.cluster)
        assert p.ok, p.format()
        store = BackupStore()
        report = apply(p, env.cluster, backups=store)
    assert [(r.step.kind, r.status) for r in report.results] == [
        ("Gateway", "applied"),
        ("DestinationRule", "applied"),
        ("EnvoyFilter", "failed"),
        ("VirtualService", "not-attempted"),
    ]
    assert "EnvoyFilters are frozen" in (report.failed[0].error or "")
    assert env.stored("EnvoyFilter", "shop", "web-headers") is None
    assert env.stored("VirtualService", "shop", "web") is None

    undo = rollback(report.backup_id, env.cluster, backups=store)
    assert undo.ok, undo.format()
    assert [(r.ref, r.action) for r in undo.results] == [
        ("DestinationRule/shop/web", "restored"),
        ("Gateway/istio-system/web-gateway", "deleted"),
    ]
    assert env.stored("Gateway", "istio-system", "web-gateway") is None
    assert content(env.stored("DestinationRule", "shop", "web")) == content(before_dr)
