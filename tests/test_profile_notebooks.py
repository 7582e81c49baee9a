"""The notebook profiler sees a kernel's children: their peak memory and the ones left running."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("psutil")


def _profiler() -> ModuleType:
    path = Path(__file__).with_name("profile_notebooks.py")
    spec = importlib.util.spec_from_file_location("profile_notebooks", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sampler_reports_peak_memory_and_orphans(tmp_path: Path) -> None:
    pidfile = tmp_path / "orphan.pid"
    # a child that starts a grandchild of its own and exits without reaping or stopping it, as a
    # leaky kernel would: the grandchild outlives its parent
    code = (
        "import subprocess, sys, time\n"
        "b = bytearray(60 * 2**20)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'],"
        " start_new_session=True)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(0.5)\n"
    )
    with _profiler().TreeSampler(period_s=0.02) as tree:
        subprocess.run([sys.executable, "-c", code], check=True)
    orphan = int(pidfile.read_text())
    try:
        assert tree.peak_bytes >= 60 * 2**20
        assert any(f"[{orphan}]" in name for name in tree.alive())
    finally:
        os.kill(orphan, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(f"[{orphan}]" in name for name in tree.alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(f"[{orphan}]" in name for name in tree.alive())
