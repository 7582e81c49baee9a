"""HPA with a node capacity (#20): pods beyond the current nodes' room wait for new nodes."""

from __future__ import annotations

from typing import Any

import pytest

from istiolab.sim.engine import _Run
from istiolab.sim.scenario import scenario_from_dict

SYNC_S = 15.0
STARTUP_S = 2.0
PROVISION_S = 60.0


def _scenario(autoscale: dict[str, Any], duration_s: float, rate_rps: float) -> Any:
    """*rate_rps* constant arrivals of 100 ms on two one-server pods, HPA target 50 %."""
    return scenario_from_dict(
        {
            "name": "hpa-nodes",
            "run": {"duration_s": duration_s, "warmup_s": 1.0, "seed": 2},
            "traffic": [{"name": "c", "arrival": {"kind": "constant", "rate_rps": rate_rps}}],
            "ingress": {"azs": ["a"], "cpu_per_request": "zero", "proxy_latency": "zero"},
            "services": [
                {
                    "name": "api",
                    "versions": [
                        {
                            "name": "v1",
                            "replicas": 2,
                            "service_time": "det(100ms)",
                            "startup_s": STARTUP_S,
                            "autoscale": {
                                "target_utilisation": 0.5,
                                "sync_period_s": SYNC_S,
                                **autoscale,
                            },
                        }
                    ],
                }
            ],
        }
    )


def _run(autoscale: dict[str, Any]) -> _Run:
    """Two pods 90 % busy (18 req/s of 100 ms, one server each), HPA target 50 %.

    The first sync (t = 15 s) wants ⌈2 × 0.9 / 0.5⌉ = 4 pods.
    """
    run = _Run(_scenario(autoscale, 20.0, 18.0), None, None)
    run.run()
    return run


def _new_pods_ready_at(run: _Run) -> list[float]:
    return sorted(p.ready_at for p in run.pods_by_version[("api", "v1")] if p.ready_at > 0)


def test_without_a_node_model_new_pods_wait_only_for_startup() -> None:
    run = _run({})
    assert run.hpa_log == [(SYNC_S, "api", "v1", 2, 4)]
    assert _new_pods_ready_at(run) == pytest.approx([SYNC_S + STARTUP_S] * 2)


def test_pods_beyond_the_nodes_room_wait_for_node_provisioning() -> None:
    # Room for 3 pods: the 3rd fits at once, the 4th waits for a new node.
    run = _run({"node_capacity": 3, "node_provisioning_s": PROVISION_S})
    assert run.hpa_log == [(SYNC_S, "api", "v1", 2, 4)]
    assert _new_pods_ready_at(run) == pytest.approx(
        [SYNC_S + STARTUP_S, SYNC_S + PROVISION_S + STARTUP_S]
    )


def test_full_nodes_delay_every_new_pod() -> None:
    run = _run({"node_capacity": 2, "pods_per_node": 4, "node_provisioning_s": PROVISION_S})
    assert _new_pods_ready_at(run) == pytest.approx([SYNC_S + PROVISION_S + STARTUP_S] * 2)


def _first_attempts(result: Any) -> list[int]:
    """The interval of each host's first try, in order (hosts that never got one left out)."""
    series = result.meta["attempt_series"].values()
    return sorted(next(k for k, n in enumerate(s) if n) for s in series if any(s))


@pytest.mark.parametrize(
    ("autoscale", "ready"),
    [({}, [17, 17]), ({"node_capacity": 3, "node_provisioning_s": 10.0}, [17, 27])],
    ids=["no-node-model", "room-for-3"],
)
def test_both_engines_make_new_pods_wait_for_nodes_alike(
    autoscale: dict[str, Any], ready: list[int]
) -> None:
    """The fast engine runs the node model (no fallback) and agrees with SimPy on when pods serve.

    One sync in the run (at 15 s, 2 -> 4 pods); each new pod's first try comes in the second
    it became ready: SYNC_S + STARTUP_S = 17 s, or, for the pod beyond the nodes' room, 10 s
    of node provisioning later (27 s).
    """
    from istiolab.sim.engine import simulate

    # 19 req/s: about 0.9 busy, so the first sync wants ⌈2 × 0.9 / 0.5⌉ = 4 whichever way the
    # two engines order the events that tie with the autoscaler's samples (constant arrivals
    # fall on whole seconds)
    sc = _scenario(autoscale, 29.0, 19.0)
    assert sc.simpy_only_features() == []
    simpy = simulate(sc, engine="simpy")
    fast = simulate(sc, engine="fast")
    assert simpy.scaling == fast.scaling == [(SYNC_S, "api", "v1", 2, 4)]
    assert _first_attempts(simpy) == _first_attempts(fast) == [0, 0, *ready]
