"""The memory guard reads the process tree's memory and warns above a share of the limit."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from istiolab.lab import memory

HOG_MIB = 80


@pytest.fixture
def hog() -> object:
    """A child process holding about HOG_MIB MiB of touched memory."""
    code = (
        f"b = bytearray({HOG_MIB} * 2**20); print('ready', flush=True); import time; time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_limit_comes_from_mem_limit_else_two_gib() -> None:
    assert memory.limit_bytes({"MEM_LIMIT": "1073741824"}) == 2**30
    assert memory.limit_bytes({}) == 2 * 2**30
    assert memory.limit_bytes({"MEM_LIMIT": "lots"}) == 2 * 2**30
    assert memory.limit_bytes({"MEM_LIMIT": "0"}) == 2 * 2**30


def test_tree_rss_counts_children(hog: subprocess.Popen[str]) -> None:
    alone = memory.tree_rss(hog.pid)
    with_parent = memory.tree_rss()
    assert alone >= (HOG_MIB - 5) * 2**20
    assert with_parent >= alone + 10 * 2**20  # this process is in its own tree too


def test_proc_reader_agrees_with_psutil(hog: subprocess.Popen[str]) -> None:
    pytest.importorskip("psutil")
    from_proc = memory._proc_tree_rss(hog.pid)
    assert from_proc == pytest.approx(memory.tree_rss(hog.pid), rel=0.1)


def test_guard_warns_once_above_the_threshold(hog: subprocess.Popen[str]) -> None:
    shown: list[tuple[str, str]] = []
    rss = memory.tree_rss()
    # a limit the tree is at 90 % of: above the 80 % threshold
    guard = memory.MemoryGuard(int(rss / 0.9), show=lambda t, h: shown.append((t, h)))
    text = guard.check()
    assert text is not None
    assert "Memory warning" in text
    assert "90%" in text
    assert len(shown) == 1
    assert "&#9888;" in shown[0][1]
    assert guard.check() is None  # no repeat while memory stays where it was
    quiet = memory.MemoryGuard(rss * 4, show=lambda t, h: shown.append((t, h)))
    assert quiet.check() is None
    assert len(shown) == 1


def test_guard_thread_catches_a_peak_between_checks() -> None:
    guard = memory.MemoryGuard(2**40, period_s=0.05, show=lambda t, h: None).start()
    try:
        base = memory.tree_rss()
        code = "b = bytearray(120 * 2**20); import time; time.sleep(0.6)"
        subprocess.run([sys.executable, "-c", code], check=True)
        time.sleep(0.1)
        assert guard.peak >= base + 100 * 2**20  # the child is gone, its peak was recorded
    finally:
        guard.stop()
    assert guard._thread is None


def test_fraction_is_validated() -> None:
    with pytest.raises(ValueError, match="fraction"):
        memory.MemoryGuard(2**30, fraction=0.0)


def test_repr_says_memory_limit_and_threshold() -> None:
    text = repr(memory.MemoryGuard(2**30, fraction=0.5, show=lambda t, h: None))
    assert "limit 1024 MiB" in text
    assert "warns above 512 MiB" in text
