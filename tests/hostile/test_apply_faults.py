"""Apply and rollback against API servers that lie, and backup disks that fill up.

Each test asserts two things object by object: what the cluster holds, read directly from the
server's store (KMock's object store, or ``InMemoryCluster.stored``), bypassing the adapter; and
what the report claims. They must agree.

The servers: KMock over real HTTP through the official client (``tests/kube/_kmock.py``; its
lies are scripted answers: the write is stored exactly as KMock's own handlers store it, then a
504 or a proxy's HTML page is sent), and the in-memory cluster (``InMemoryCluster.lie``).

A full disk is injected two ways. Portable: ``istiolab.kube.backups._write_bytes``, the one
function through which backup bytes reach the disk, is wrapped so that the backup root behaves
as a file system of a fixed size (its usage is measured from the real files, so removing the
reserve frees room as it would). ``RLIMIT_FSIZE`` was not used: it limits each file, not the
disk, answers EFBIG instead of ENOSPC and kills with SIGXFSZ unless that is ignored. Real: a
64 KiB tmpfs is mounted as the backup root, which gives the kernel's own ENOSPC; that test
skips where mounting is not permitted (it needs root with CAP_SYS_ADMIN).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kube import _seed as seed
from kube._kmock import (
    HTML_PAGE,
    TOKEN,
    KMockServer,
    script_dry_run,
    script_lie,
    status,
    writes_to,
)

from istiolab.config import ConfigSet, codecs, loads
from istiolab.kube import backups as backups_module
from istiolab.kube.apply import OUTCOMES, apply, rollback
from istiolab.kube.backups import BackupStore
from istiolab.kube.errors import ApiError, ConnectError, RefusedError
from istiolab.kube.memory import InMemoryCluster
from istiolab.kube.objects import Obj, content
from istiolab.kube.plan import Plan, plan

MERGE = "application/merge-patch+json"
APPLY = "application/apply-patch+yaml"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTIOLAB_HOME", str(tmp_path / "home" / ".istiolab"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("ISTIOLAB_EXEC_TIMEOUT", raising=False)


def _config(*objs: dict[str, Any]) -> ConfigSet:
    return loads(codecs.dumps(list(objs)), file="config.yaml")


def _rules() -> ConfigSet:
    """Gateway (created), DestinationRule (updated), VirtualService (updated), in that order."""
    return _config(seed.virtual_service(50, 50), seed.destination_rule(lb="RANDOM"), seed.gateway())


class Cluster:
    """One server under test: the adapter, and the store read directly."""

    def __init__(self, kind: str, server: KMockServer | None) -> None:
        self.kind = kind
        self.server = server
        self.memory: InMemoryCluster | None = None
        if server is None:
            self.memory = InMemoryCluster(context="memory", namespace="shop")
            self.adapter: Any = self.memory
        else:
            self.adapter = server.cluster("shop")

    def seed(self, obj: Obj) -> None:
        if self.memory is not None:
            self.memory.seed(obj, manager="istiolab")
        else:
            assert self.server is not None
            self.server.seed(obj)

    def stored(self, kind: str, namespace: str, name: str) -> Obj | None:
        if self.memory is not None:
            return self.memory.stored(kind, namespace, name)
        assert self.server is not None
        return self.server.stored(kind, namespace, name)

    def lie_on_apply(self, kind: str, name: str, *, html: bool = False) -> None:
        """The next server-side apply of the object is stored, then answered 504 (or HTML)."""
        if self.memory is not None:
            if html:
                self.memory.lie("patch", kind, name, status=200, reason="BadResponse",
                                message="the answer is not JSON: <html>502 Bad Gateway</html>",
                                patch_type="apply")  # fmt: skip
            else:
                self.memory.lie("patch", kind, name, patch_type="apply")
            return
        assert self.server is not None
        body: Any = HTML_PAGE if html else _timeout_status()
        script_lie(
            self.server, writes_to(kind, name, content_type=APPLY), 200 if html else 504, body
        )

    def refuse_restore(self, kind: str, name: str) -> None:
        """The next restore (merge patch) of the object is answered 409 and not stored."""
        if self.memory is not None:
            self.memory.fail("patch", kind, name, status=409, reason="Conflict",
                             message="Operation cannot be fulfilled: the object has been modified",
                             patch_type="merge")  # fmt: skip
            return
        assert self.server is not None
        script_lie(
            self.server,
            writes_to(kind, name, content_type=MERGE),
            409,
            status(409, "Conflict", "Operation cannot be fulfilled: the object has been modified"),
            stored=False,
        )

    def fail_apply(self, kind: str, name: str) -> None:
        """The next server-side apply of the object is refused with a 503 and not stored."""
        if self.memory is not None:
            self.memory.fail("patch", kind, name, status=503, reason="ServiceUnavailable",
                             message="etcd unavailable", patch_type="apply")  # fmt: skip
            return
        assert self.server is not None
        script_lie(
            self.server,
            writes_to(kind, name, content_type=APPLY),
            503,
            status(503, "ServiceUnavailable", "etcd unavailable"),
            stored=False,
        )


def _timeout_status() -> dict[str, Any]:
    return status(504, "Timeout", "Timeout: request did not complete within the allotted timeout")


@pytest.fixture(params=["kmock", "memory"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A fresh cluster of the parametrised kind, seeded with the DestinationRule and the
    VirtualService the rules update (KMock: dry runs are scripted, it has none)."""
    if request.param == "memory":
        c = Cluster("memory", None)
        _seed_cluster(c)
        yield c
        return
    with KMockServer() as server:
        script_dry_run(server)
        c = Cluster("kmock", server)
        _seed_cluster(c)
        yield c


def _seed_cluster(c: Cluster) -> None:
    c.seed(seed.destination_rule())
    c.seed(seed.virtual_service(90, 10))


def _outcomes(results: Any) -> list[tuple[str, str]]:
    return [(r.step.ref, r.outcome) for r in results]


# -- an apply the server answers with a lie -------------------------------------------------


@pytest.mark.parametrize("html", [False, True], ids=["504", "html"])
def test_write_stored_but_answered_with_an_error_is_read_back_and_rolled_back(
    cluster: Cluster, html: bool
) -> None:
    """The DestinationRule's apply is stored but answered 504 (or 200 with an HTML page).

    Before: the step was "failed", rollback skipped it and said "done" while the cluster kept
    the change. Now the read-back shows the change was stored, the report says so, and the
    rollback restores it (read back again).
    """
    before_dr = cluster.stored("DestinationRule", "shop", "web")
    before_vs = cluster.stored("VirtualService", "shop", "web")
    cluster.lie_on_apply("DestinationRule", "web", html=html)
    store = BackupStore()
    report = apply(plan(_rules(), cluster.adapter), cluster.adapter, backups=store)

    assert _outcomes(report.results) == [
        ("Gateway/istio-system/web-gateway", "applied"),
        ("DestinationRule/shop/web", "applied"),
        ("VirtualService/shop/web", "applied"),
    ]
    assert report.ok, report.format()
    (dr,) = [r for r in report.results if r.step.kind == "DestinationRule"]
    assert "the read-back shows the change was stored" in dr.detail
    assert ("HTTP 504 Timeout" in dr.detail) != html
    assert ("not JSON" in dr.detail) == html
    # the store agrees with the report
    assert cluster.stored("DestinationRule", "shop", "web")["spec"]["trafficPolicy"] == {  # type: ignore[index]
        "loadBalancer": {"simple": "RANDOM"}
    }
    assert content(cluster.stored("VirtualService", "shop", "web") or {}) == content(
        seed.virtual_service(50, 50)
    )
    entries = store.open("kmock" if cluster.kind == "kmock" else "memory", report.backup_id).entries
    assert [(e.ref, e.state) for e in entries] == [
        ("Gateway/istio-system/web-gateway", "applied"),
        ("DestinationRule/shop/web", "applied"),
        ("VirtualService/shop/web", "applied"),
    ]

    undo = rollback(report.backup_id, cluster.adapter, backups=store)
    assert undo.ok, undo.format()
    assert [(r.ref, r.action) for r in undo.results] == [
        ("VirtualService/shop/web", "restored"),
        ("DestinationRule/shop/web", "restored"),
        ("Gateway/istio-system/web-gateway", "deleted"),
    ]
    assert cluster.stored("Gateway", "istio-system", "web-gateway") is None
    assert content(cluster.stored("DestinationRule", "shop", "web") or {}) == content(
        before_dr or {}
    )
    assert content(cluster.stored("VirtualService", "shop", "web") or {}) == content(
        before_vs or {}
    )


def test_failed_apply_rolls_back_and_reports_a_restore_refused_with_409(
    cluster: Cluster,
) -> None:
    """``rollback_on_failure`` (what ``apply --yes`` uses): the VirtualService's apply fails
    (503, not stored), so the apply rolls back; the DestinationRule's restore is answered 409.

    The report says, object by object, what the read-back shows: the Gateway deleted, the
    DestinationRule NOT restored (it holds the applied version), the VirtualService not
    applied (it holds its version from before); and the manifest says the rollback is
    incomplete, with the reason of the failure.
    """
    before_vs = cluster.stored("VirtualService", "shop", "web")
    cluster.fail_apply("VirtualService", "web")
    cluster.refuse_restore("DestinationRule", "web")
    store = BackupStore()
    p = plan(_rules(), cluster.adapter)
    report = apply(p, cluster.adapter, backups=store, rollback_on_failure=True)

    assert not report.ok
    assert not report.as_before
    assert _outcomes(report.results) == [
        ("Gateway/istio-system/web-gateway", "deleted"),
        ("DestinationRule/shop/web", "not-restored"),
        ("VirtualService/shop/web", "not-applied"),
    ]
    dr = report.results[1]
    assert "HTTP 409 Conflict" in dr.detail
    assert "read back: it holds the applied version" in dr.detail
    assert "HTTP 503 ServiceUnavailable" in (report.results[2].error or "")
    text = report.format()
    assert f"backup {report.backup_id}" in text
    assert (
        "ROLLBACK INCOMPLETE: 1 object(s) do not hold what they held before the apply: "
        "DestinationRule/shop/web" in text
    )
    # the store agrees
    assert cluster.stored("Gateway", "istio-system", "web-gateway") is None
    assert cluster.stored("DestinationRule", "shop", "web")["spec"]["trafficPolicy"]  # type: ignore[index]
    assert content(cluster.stored("VirtualService", "shop", "web") or {}) == content(
        before_vs or {}
    )
    backup = store.open(cluster.adapter.context, report.backup_id)
    assert backup.status == "rollback-incomplete"
    assert "the apply stopped at VirtualService/shop/web" in (backup.error or "")

    # a retry (the 409 was once) completes, and says so only after reading back
    again = rollback(report.backup_id, cluster.adapter, backups=store)
    assert again.ok, again.format()
    assert [(r.ref, r.action) for r in again.results] == [
        ("DestinationRule/shop/web", "restored"),
        ("Gateway/istio-system/web-gateway", "deleted"),
    ]
    assert "trafficPolicy" not in cluster.stored("DestinationRule", "shop", "web")["spec"]  # type: ignore[index]


def test_every_outcome_is_documented() -> None:
    text = Path(__file__).parents[2].joinpath("docs", "cluster.md").read_text(encoding="utf-8")
    for outcome in OUTCOMES:
        assert f"`{outcome}`" in text, outcome


# -- a rollback over a server that lies, through the command line ---------------------------


def test_cli_rollback_over_a_lying_server_names_what_is_not_restored(
    tmp_path: Path,
) -> None:
    """``istiolab rollback`` (the installed entry point, in a subprocess) over KMock:

    * the VirtualService's restore is stored but answered 504: restored (read back);
    * the DestinationRule's restore is answered 200 with an HTML page and NOT stored;
    * the Gateway's delete is answered 504 and NOT done.

    The report names exactly the two objects not restored, and the exit code is 1.
    """
    with KMockServer() as server:
        script_dry_run(server)
        for obj in (seed.destination_rule(), seed.virtual_service(90, 10)):
            server.seed(obj)
        kc = server.kubeconfig(tmp_path / "kubeconfig", namespace="shop", context="prod")
        adapter = server.cluster("shop", context="prod")
        store = BackupStore(tmp_path / "backups")
        report = apply(plan(_rules(), adapter), adapter, backups=store)
        assert report.ok, report.format()

        script_lie(server, writes_to("VirtualService", "web", content_type=MERGE), 504,
                   _timeout_status())  # fmt: skip
        script_lie(server, writes_to("DestinationRule", "web", content_type=MERGE), 200,
                   HTML_PAGE, stored=False)  # fmt: skip
        script_lie(server, writes_to("Gateway", "web-gateway", method="DELETE"), 504,
                   _timeout_status(), stored=False)  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "istiolab", "rollback", str(report.backup_id),
             "--kubeconfig", str(kc), "--backup-dir", str(tmp_path / "backups"), "--yes"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert TOKEN not in out
        assert "Traceback" not in out
        assert "restored  VirtualService/shop/web" in out
        assert "not-restored DestinationRule/shop/web" in out
        assert "not-restored Gateway/istio-system/web-gateway" in out
        assert (
            "rollback incomplete: 2 object(s) NOT restored: DestinationRule/shop/web, "
            "Gateway/istio-system/web-gateway" in out
        )
        # the store agrees with every claim
        assert [d["weight"] for d in _route(server.stored("VirtualService", "shop", "web"))] == [
            90,
            10,
        ]
        assert server.stored("DestinationRule", "shop", "web")["spec"]["trafficPolicy"]  # type: ignore[index]
        assert server.stored("Gateway", "istio-system", "web-gateway") is not None
        assert store.open("prod", report.backup_id).status == "rollback-incomplete"


def _route(obj: Obj | None) -> list[dict[str, Any]]:
    assert obj is not None
    route: list[dict[str, Any]] = obj["spec"]["http"][0]["route"]
    return route


# -- a backup disk that fills up --------------------------------------------------------------


class FillingCluster(InMemoryCluster):
    """An in-memory cluster after whose first stored write another process fills the disk."""

    def __init__(self, fill: Callable[[], None]) -> None:
        super().__init__(context="memory", namespace="shop")
        self._fill: Callable[[], None] | None = fill

    def apply(self, obj: Any, *, force: bool = False) -> Obj:
        out = super().apply(obj, force=force)
        fill = self._fill
        if fill is not None:
            self._fill = None
            fill()
        return out


class SmallDisk:
    """The backup root as a file system of *capacity* bytes (see the module docstring)."""

    def __init__(self, root: Path, capacity: int) -> None:
        self.root, self.capacity, self.filler = root, capacity, 0
        self._write = backups_module._write_bytes

    def used(self) -> int:
        return self.filler + sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def fill(self) -> None:
        self.filler = max(0, self.capacity - self.used())

    def write(self, path: Path, data: bytes) -> None:
        old = path.stat().st_size if path.exists() else 0
        if self.used() - old + len(data) > self.capacity:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        self._write(path, data)


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _fill_real_disk(root: Path) -> None:
    with open(root / "filler", "wb", buffering=0) as f:  # unbuffered: close must not flush
        with pytest.raises(OSError) as info:  # noqa: PT012 - write until the disk is full
            while True:
                f.write(b"\0" * 4096)
        assert info.value.errno == errno.ENOSPC


@pytest.mark.parametrize("disk", ["simulated", "tmpfs"])
def test_disk_fills_up_midway(disk: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup disk fills up after the first object was applied: the second is not sent,
    the first is rolled back, the report names the backup id, and the manifest on the full
    disk says what happened (the reserve file made room for that), not ``in-progress``.
    """
    root = tmp_path / "backups"
    if disk == "tmpfs":
        if os.geteuid() != 0 or not _tmpfs(root, "256k"):
            pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN")
        fill: Callable[[], None] = lambda: _fill_real_disk(root)  # noqa: E731
    else:
        root.mkdir()
        small = SmallDisk(root, 256 * 1024)
        monkeypatch.setattr(backups_module, "_write_bytes", small.write)
        fill = small.fill
    try:
        c = FillingCluster(fill)
        for obj in (seed.destination_rule(), seed.virtual_service(90, 10)):
            c.seed(obj, manager="istiolab")
        store = BackupStore(root)
        report = apply(plan(_rules(), c), c, backups=store, rollback_on_failure=True)

        assert _outcomes(report.results) == [
            ("Gateway/istio-system/web-gateway", "deleted"),
            ("DestinationRule/shop/web", "not-applied"),
            ("VirtualService/shop/web", "not-attempted"),
        ]
        # the first write after the disk filled up (the Gateway's read-back state) spent the
        # reserve: from then on nothing more is changed
        assert "is full: no further object is changed" in (report.results[1].error or "")
        assert report.as_before
        assert not report.ok
        assert report.backup_id
        assert report.backup_id in report.format()
        assert c.stored("Gateway", "istio-system", "web-gateway") is None
        assert "trafficPolicy" not in (c.stored("DestinationRule", "shop", "web") or {})["spec"]
        assert [call.kind for call in c.calls if call.verb == "patch" and not call.dry_run] == [
            "Gateway"
        ]
        manifest = json.loads((root / "memory" / report.backup_id / "manifest.json").read_text())
        assert manifest["status"] == "rolled-back"
        assert "the apply stopped at DestinationRule/shop/web" in manifest["error"]
        # the DestinationRule was never recorded: its backup could not be written
        assert [(e["name"], e["state"], e["rollback"]) for e in manifest["entries"]] == [
            ("web-gateway", "applied", "deleted"),
        ]
        assert not (root / "memory" / report.backup_id / ".reserve").exists()
    finally:
        if disk == "tmpfs":
            subprocess.run(["umount", str(root)], check=False)


def test_full_disk_refuses_before_any_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room for the backup set: refused, naming the backup id; nothing is sent."""
    root = tmp_path / "backups"
    root.mkdir()
    small = SmallDisk(root, 1024)
    monkeypatch.setattr(backups_module, "_write_bytes", small.write)
    c = InMemoryCluster(context="memory", namespace="shop")
    c.seed(seed.destination_rule(), manager="istiolab")
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    p: Plan = plan(_rules(), c)
    with pytest.raises(RefusedError) as info:
        apply(p, c, backups=BackupStore(root))
    message = str(info.value)
    assert message.startswith("refusing to apply: the backup set ")
    assert "No space left on device" in message
    assert "nothing was changed" in message
    backup_id = message.split("the backup set ")[1].split(" ")[0]
    assert not (root / "memory" / backup_id).exists()  # no half-made set is left
    assert not [call for call in c.calls if call.verb == "patch" and not call.dry_run]


# -- backups on disk --------------------------------------------------------------------------


def test_backup_permissions_and_corrupt_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders 0700 (every level istiolab creates), files 0600; a corrupt manifest is one line
    naming its file, and the other backups are still listed (library and ``rollback --list``).
    """
    from typer.testing import CliRunner

    import istiolab.cli.cluster as cli_cluster
    from istiolab.cli.app import app

    c = InMemoryCluster(context="memory", namespace="shop")
    c.seed(seed.destination_rule(), manager="istiolab")
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    home = Path(os.environ["ISTIOLAB_HOME"])
    old = os.umask(0o022)
    try:
        store = BackupStore()
        good = apply(plan(_rules(), c), c, backups=store)
    finally:
        os.umask(old)
    assert good.ok
    for folder in (home, home / "backups", home / "backups" / "memory"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    set_dir = home / "backups" / "memory" / str(good.backup_id)
    assert stat.S_IMODE(set_dir.stat().st_mode) == 0o700
    files = list(set_dir.iterdir())
    assert files
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

    bad_json = home / "backups" / "memory" / "20990101T000000Z-aaaaaa"
    bad_entry = home / "backups" / "memory" / "20990101T000001Z-bbbbbb"
    for folder in (bad_json, bad_entry):
        folder.mkdir()
    (bad_json / "manifest.json").write_text('{"id": "20990101T000000Z-aaaaaa", "entr')
    (bad_entry / "manifest.json").write_text(
        json.dumps({"id": "20990101T000001Z-bbbbbb", "entries": [{"kind": "Gateway"}]})
    )
    sets, problems = store.scan("memory")
    assert [s.id for s in sets] == [good.backup_id]
    assert [str(p.path) for p in problems] == [
        str(bad_json / "manifest.json"),
        str(bad_entry / "manifest.json"),
    ]
    assert all("\n" not in p.format() for p in problems)
    assert "cannot be read" in problems[0].message
    assert "lacks apiVersion, namespace, name" in problems[1].message
    # without an id, rollback does not fall back to an older backup behind a corrupt newer one
    with pytest.raises(Exception, match=r"the newest backup manifest .*bbbbbb"):
        store.open("memory")

    monkeypatch.setattr(cli_cluster, "_connect", lambda *a: c)
    result = CliRunner().invoke(app, ["rollback", "--list"])
    assert result.exit_code == 0, result.output
    assert str(good.backup_id) in result.output
    assert f"unusable backup manifest {bad_json / 'manifest.json'} cannot be read" in result.output
    assert "Traceback" not in result.output


def test_rollback_without_an_id_never_guesses_within_a_second() -> None:
    """Without an id, rollback takes the newest usable backup only when every unusable manifest
    is from an earlier second: an unusable one from the same second (its folder name is all
    that orders it) may be the newer apply, so rollback asks for the id instead."""
    c = InMemoryCluster(context="memory", namespace="shop")
    c.seed(seed.destination_rule(), manager="istiolab")
    c.seed(seed.virtual_service(90, 10), manager="istiolab")
    home = Path(os.environ["ISTIOLAB_HOME"])
    store = BackupStore()
    good = apply(plan(_rules(), c), c, backups=store)
    assert good.ok
    good_id = str(good.backup_id)
    folder = home / "backups" / "memory"
    earlier = folder / "20000101T000000Z-ffffff"
    earlier.mkdir()
    (earlier / "manifest.json").write_text("{")
    assert store.open("memory").id == good_id  # an older corrupt set does not block
    # the same second, a suffix that sorts before the good one's: still refused
    same = folder / f"{good_id[:16]}-000000"
    same.mkdir()
    (same / "manifest.json").write_text("{")
    with pytest.raises(Exception, match=rf"same second as {good_id}.*000000"):
        store.open("memory")


# -- error bodies -----------------------------------------------------------------------------


def test_api_error_bodies_are_truncated_and_scrubbed(kmock: KMockServer) -> None:
    """A 100 KB Status message with the token in it, and a 200 KB HTML page from a proxy:
    each message keeps ~500 bytes, says how long the body was, and never shows the token."""
    kmock.react(
        lambda r: r.method == "GET" and r.name == "huge",
        500,
        status(500, "InternalError", f"boom Bearer {TOKEN} " + "x" * 100_000),
    )
    page = b"<html><body>" + TOKEN.encode() + b" " + b"y" * 200_000 + b"</body></html>"
    (kmock.km**20)[lambda r: r.method == "GET" and r.name == "page"] << 502 << page
    adapter = kmock.cluster("shop")
    for name, size in (("huge", 100_000), ("page", 200_000)):
        with pytest.raises(ApiError) as info:
            adapter.get("VirtualService", "shop", name)
        text = str(info.value)
        assert TOKEN not in text
        assert len(text.encode()) < 1000, text
        assert "…(" in text
        assert " bytes)" in text
        n = int(text.split("…(")[1].split(" bytes)")[0])
        assert n > size
        assert TOKEN not in repr(info.value.__cause__)


@pytest.fixture
def kmock() -> Iterator[KMockServer]:
    with KMockServer() as server:
        yield server


# -- the kubeconfig's exec credential plugin ----------------------------------------------


def _exec_kubeconfig(tmp_path: Path, script: str) -> Path:
    plugin = tmp_path / "plugin.sh"
    plugin.write_text("#!/bin/sh\n" + script)
    plugin.chmod(0o700)
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        codecs.dumps(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                    "users": [
                        {
                            "name": "eks-user",
                            "user": {
                                "exec": {
                                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                                    "command": str(plugin),
                                    "args": ["token", "--cluster", "prod"],
                                }
                            },
                        }
                    ],
                    "contexts": [{"name": "eks", "context": {"cluster": "c", "user": "eks-user"}}],
                    "current-context": "eks",
                }
            ]
        )
    )
    return kc


def test_exec_plugin_that_hangs_is_stopped_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A plugin that never answers: stopped after ISTIOLAB_EXEC_TIMEOUT, with its children;
    one ConnectError line (``diff``/``apply`` exit 2 with it) instead of a hang."""
    from istiolab.kube.client import KubernetesCluster

    # a unique duration marks the plugin's child in `ps` (the plugin runs `sleep` twice)
    seconds = 100_000 + uuid.uuid4().int % 800_000
    marker = f"sleep {seconds}"
    kc = _exec_kubeconfig(tmp_path, f"{marker} &\nsleep {seconds + 1}\n")
    monkeypatch.setenv("ISTIOLAB_EXEC_TIMEOUT", "1.5")
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        KubernetesCluster.from_kubeconfig(kc)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert elapsed < 20, elapsed
    assert "\n" not in message
    assert 'exec credential plugin of context "eks" (user "eks-user") failed' in message
    assert "did not finish within 1.5 s and was stopped" in message
    assert "ISTIOLAB_EXEC_TIMEOUT" in message
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False)
    assert marker not in ps.stdout.splitlines()  # the plugin's own children were stopped too
    assert capfd.readouterr().err == ""  # nothing logged past istiolab's message


def test_exec_plugin_stderr_is_redacted(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The plugin prints credentials on stderr: failing, they are redacted in the message;
    succeeding, its token (from stdout) is redacted from what it wrote on stderr."""
    from istiolab.kube.client import KubernetesCluster

    leaked = "k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9u"
    kc = _exec_kubeconfig(
        tmp_path, f'echo "refused: token {leaked} (Bearer s3cr3t-b3ar3r-value)" >&2\nexit 3\n'
    )
    with pytest.raises(ConnectError) as info:
        KubernetesCluster.from_kubeconfig(kc)
    message = str(info.value)
    assert "exec: process returned 3" in message
    assert leaked not in message
    assert "s3cr3t-b3ar3r-value" not in message
    assert "<redacted>" in message
    captured = capfd.readouterr()
    assert leaked not in captured.out + captured.err

    minted = "opaque-minted-credential-7f3a9c"
    kc = _exec_kubeconfig(
        tmp_path,
        f'echo "debug: minted {minted}" >&2\n'
        'echo \'{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'
        f'"status":{{"token":"{minted}"}}}}\'\n',
    )
    cluster = KubernetesCluster.from_kubeconfig(kc)
    assert cluster.context == "eks"
    assert minted not in repr(cluster)
    captured = capfd.readouterr()
    assert minted not in captured.out + captured.err


@pytest.mark.parametrize("atomic", [True, False])
def test_cli_apply_yes_rolls_back_a_failed_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atomic: bool
) -> None:
    """``apply --yes --atomic`` fails at the VirtualService (503, not stored): it rolls back at
    once, prints each object's outcome and the backup id, and exits 1; the store is as before.
    ``--yes`` alone is not atomic: it stops there, says truthfully what was applied and how to
    undo it, and asks nobody."""
    from typer.testing import CliRunner

    import istiolab.cli.cluster as cli_cluster
    from istiolab.cli.app import app

    c = InMemoryCluster(context="memory", namespace="shop")
    for obj in (*seed.topology(), seed.destination_rule(), seed.virtual_service(90, 10)):
        c.seed(obj, manager="istiolab")
    before = {k: c.stored(k, "shop", "web") for k in ("DestinationRule", "VirtualService")}
    c.fail("patch", "VirtualService", "web", status=503, reason="ServiceUnavailable",
           message="etcd unavailable", patch_type="apply")  # fmt: skip
    monkeypatch.setattr(cli_cluster, "_connect", lambda *a: c)
    rules = tmp_path / "rules.yaml"
    rules.write_text(codecs.dumps([seed.virtual_service(50, 50), seed.destination_rule(lb="RANDOM"),
                                   seed.gateway()]))  # fmt: skip
    flags = ["--yes", "--atomic"] if atomic else ["--yes"]
    result = CliRunner().invoke(app, ["apply", str(rules), *flags])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "roll back the" not in out  # --yes: nobody is asked
    if not atomic:
        assert "applied       create  Gateway/istio-system/web-gateway" in out
        assert "applied       update  DestinationRule/shop/web" in out
        assert "not-applied   update  VirtualService/shop/web" in out
        assert "apply stopped: 2 applied, 1 failed, 0 not attempted" in out
        assert "undo with `istiolab rollback " in out
        assert c.stored("Gateway", "istio-system", "web-gateway") is not None
        return
    assert "deleted       create  Gateway/istio-system/web-gateway" in out
    assert "restored      update  DestinationRule/shop/web" in out
    assert "not-applied   update  VirtualService/shop/web" in out
    assert "rolled back: every object holds what it held before the apply (read back)" in out
    assert "roll back the" not in out  # --yes: nobody is asked
    backup_id = out.split("read back); backup ")[1].split()[0]
    assert BackupStore().open("memory", backup_id).status == "rolled-back"
    assert c.stored("Gateway", "istio-system", "web-gateway") is None
    for kind, was in before.items():
        assert content(c.stored(kind, "shop", "web") or {}) == content(was or {})
