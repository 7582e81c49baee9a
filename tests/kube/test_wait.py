"""``apply --wait``: istiod's status read back. istiod cannot run here, so the in-memory cluster's
``set_status`` writes what istiod would (observedGeneration, validationMessages), as the API
server's status subresource stores it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import istiolab.cli.cluster as cli_cluster
from istiolab.config import codecs
from istiolab.kube import InMemoryCluster
from istiolab.kube.status import read_status, wait_for_status

from . import _seed as seed

VS = ("VirtualService", "shop", "web")


def _cluster() -> InMemoryCluster:
    c = InMemoryCluster(context="default", namespace="shop")
    for obj in (*seed.topology(), seed.gateway(), seed.destination_rule()):
        c.seed(obj, manager="istiolab")
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    return c


def _istiod(c: InMemoryCluster, messages: list[dict[str, Any]] | None = None) -> None:
    gen = c.get(*VS)["metadata"]["generation"]  # type: ignore[index]
    c.set_status(*VS, {"observedGeneration": str(gen), "validationMessages": messages or []})


class _Clock:
    def __init__(self, on_sleep: Any = None) -> None:
        self.t = 0.0
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s
        if self.on_sleep:
            self.on_sleep()
            self.on_sleep = None


def test_wait_ends_when_istiod_observed_the_generation() -> None:
    c = _cluster()
    clock = _Clock(on_sleep=lambda: _istiod(c))
    statuses, current = wait_for_status(c, [VS], timeout_s=10, clock=clock, sleep=clock.sleep)
    assert current
    assert statuses[0].current
    assert clock.t == 1.0  # one poll without status, then istiod's write


def test_an_old_generation_is_not_current_and_the_wait_times_out() -> None:
    c = _cluster()
    _istiod(c)
    c.apply(seed.virtual_service(50, 50))  # a new generation istiod has not seen
    clock = _Clock()
    statuses, current = wait_for_status(c, [VS], timeout_s=5, clock=clock, sleep=clock.sleep)
    assert not current
    assert statuses[0].observed is not None
    assert statuses[0].generation is not None
    assert statuses[0].observed < statuses[0].generation
    assert clock.t == 5.0


def test_validation_messages_are_read_and_errors_picked_out() -> None:
    c = _cluster()
    _istiod(
        c,
        [
            {"level": "ERROR", "type": {"code": "IST0101", "name": "ReferencedResourceNotFound"}},
            {"level": "WARNING", "type": {"code": "IST0131", "name": "VirtualServiceUnreachable"}},
        ],
    )
    st = read_status(c, *VS)
    assert st.current
    assert st.messages[0] == ("ERROR", "IST0101", "ReferencedResourceNotFound")
    assert st.errors == (("ERROR", "IST0101", "ReferencedResourceNotFound"),)


def _run(monkeypatch: pytest.MonkeyPatch, c: InMemoryCluster, args: list[str]) -> Any:
    from istiolab.cli.app import app

    monkeypatch.setattr(cli_cluster, "_connect", lambda *a: c)
    result = CliRunner().invoke(app, args)
    assert "Traceback" not in result.output
    return result


def test_apply_wait_without_istiod_status_exits_1_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = _cluster()
    rules = tmp_path / "vs.yaml"
    rules.write_text(codecs.dumps([seed.virtual_service(50, 50)]), encoding="utf-8")
    args = ["apply", "-f", str(rules), "--yes", "--backup-dir", str(tmp_path / "b")]
    result = _run(monkeypatch, c, [*args, "--wait", "--wait-timeout", "0"])
    assert result.exit_code == 1, result.output
    assert "PILOT_ENABLE_STATUS" in result.output
    assert "applied, not confirmed" in result.output
    # it was applied all the same: --wait reports, it does not undo
    weights = [r["weight"] for r in c.get(*VS)["spec"]["http"][0]["route"]]  # type: ignore[index]
    assert weights == [50, 50]


def test_apply_wait_reports_istiods_error_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = _cluster()
    real_apply = c.apply

    def apply_then_istiod(obj: Any, **kw: Any) -> Any:
        out = real_apply(obj, **kw)
        if obj.get("kind") == "VirtualService":
            gen = out["metadata"]["generation"]
            msg = {"level": "ERROR", "type": {"code": "IST0101", "name": "RefNotFound"}}
            c.set_status(*VS, {"observedGeneration": gen, "validationMessages": [msg]})
        return c.get(*VS)

    monkeypatch.setattr(c, "apply", apply_then_istiod)
    rules = tmp_path / "vs.yaml"
    rules.write_text(codecs.dumps([seed.virtual_service(50, 50)]), encoding="utf-8")
    args = ["apply", "-f", str(rules), "--yes", "--backup-dir", str(tmp_path / "b"), "--wait"]
    result = _run(monkeypatch, c, args)
    assert result.exit_code == 1, result.output
    assert "IST0101" in result.output
    assert "istiod reported errors" in result.output
