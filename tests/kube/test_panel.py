"""The ApplyPanel re-reads the cluster when *Yes, apply* is pressed: an object changed since
the dry run stops the apply before any write, and the panel shows the new dry run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from istiolab.config import codecs, loads
from istiolab.kube import BackupStore, InMemoryCluster

from . import _seed as seed

pytest.importorskip("ipywidgets")


def test_panel_stops_when_the_cluster_changed_after_the_dry_run(tmp_path: Path) -> None:
    from istiolab.widgets import ApplyPanel

    c = InMemoryCluster(context="in-memory", namespace="shop")
    for obj in (seed.gateway(), seed.destination_rule(), seed.virtual_service(90, 10)):
        c.seed(obj, manager="istiolab")
    rules = loads(codecs.dumps([seed.virtual_service(50, 50)]), file="rules.yaml")
    store = BackupStore(tmp_path)
    panel = ApplyPanel(rules, cluster=c, backups=store)
    assert panel.dry_run() is not None
    panel.ask()
    c.seed(seed.virtual_service(0, 100), manager="istiolab")  # the edit, while reading the diff
    assert panel.apply(confirm=True) is None
    assert "the cluster changed since the dry run" in panel.status.value
    assert "VirtualService/shop/web: its content changed since the plan" in panel.status.value
    assert "-      weight: 0" in panel.diff.value  # the new dry run is shown
    assert (c.stored("VirtualService", "shop", "web") or {})["spec"]["http"][0]["route"][0][
        "weight"
    ] == 0
    assert store.backups("in-memory") == []
    # the new plan is current: confirmed again, it applies
    panel.ask()
    report = panel.apply(confirm=True)
    assert report is not None
    assert report.ok
    assert (c.stored("VirtualService", "shop", "web") or {})["spec"]["http"][0]["route"][0][
        "weight"
    ] == 50
