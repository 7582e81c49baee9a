"""A 1 MB alias bomb is refused in under 1 s with under 100 MB of memory, by every command.

Every command that reads config or scenario files gets the same generated bomb (1 MB of YAML
that would expand to 2.5 × 10¹⁴ strings) in place of its input, each in its own interpreter.
The assertion: a coded finding (IL010) or a one-line error naming the file, the documented exit
code (``docs/exit-codes.md``), no traceback, a short report, and for the command's own work
under 1 s of CPU time and under 100 MiB of memory at the peak.

"Own work" leaves out the interpreter's start-up and the imports, which depend on the command
and not on the input (``istiolab --version`` alone takes about 0.6 s of CPU and 43 MiB;
``simulate`` imports pandas and SimPy before it reads its scenario, 1.1 s and 133 MiB in all
with the bomb). So the probe first runs the same command on a small invalid file, which loads
every module the command needs; then it starts the CPU clock afresh, restarts the kernel's
peak-memory counter (``/proc/self/clear_refs``, ``VmHWM``), caps the address space
(``RLIMIT_AS``: what it has now plus 256 MiB, so a loader that expanded the bomb would die of
MemoryError, not take the machine) and the CPU time (3 to 4 s more, ``RLIMIT_CPU``), and runs
the command on the bomb. CPU time rather than wall time: the machine running the tests may be
busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .test_yaml_limits import alias_bomb

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "tests" / "conformance" / "configs" / "10-weights-90-10.yaml"
TIMEOUT = 120  # seconds for one probe; far more than any of them needs
CPU_LIMIT_S = 1.0
MEMORY_LIMIT_MIB = 100
# Subprocesses run with the default limits, whatever the environment of the test run.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("ISTIOLAB_MAX_")}

PROBE = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys, time

    report, warm_argv, argv = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    from istiolab.cli.app import main

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise LookupError(key)

    # The same command on a small invalid file: every module it imports is loaded after this.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warm_code = main(warm_argv)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM starts again from the current resident size
    before = status("VmRSS")
    cap = status("VmSize") * 1024 + 256 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
    used = resource.getrusage(resource.RUSAGE_SELF)
    seconds = int(used.ru_utime + used.ru_stime) + 4  # SIGXCPU ends a run past its time
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, resource.RLIM_INFINITY))
    cpu, wall = time.process_time(), time.perf_counter()
    code = main(argv)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    with open(report, "w") as f:
        json.dump({"warm_code": warm_code, "code": code, "cpu": cpu, "wall": wall,
                   "extra_kib": status("VmHWM") - before}, f)
    sys.exit(code)
    """
)

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:9"}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody, namespace: default}
current-context: nowhere
users:
- name: nobody
  user: {token: not-a-token}
"""

REFUSED = "IL010"  # nodes after alias expansion

# A valid Prometheus answer (one histogram) and a valid scenario: the other input of a command
# whose bomb is its second file.
DURATIONS = json.dumps(
    {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {
                        "__name__": "istio_request_duration_milliseconds_bucket",
                        "destination_service_name": "api",
                        "destination_version": "v1",
                        "le": le,
                    },
                    "value": [1, count],
                }
                for le, count in (("10", "5"), ("+Inf", "10"))
            ],
        },
    }
)
SCENARIO = """\
name: small
run: {duration_s: 2, warmup_s: 1}
traffic: [{name: c, arrival: {kind: poisson, rate_rps: 10}}]
services: [{name: api, versions: [{name: v1, replicas: 1, service_time: 5ms}]}]
"""


def cases() -> list[object]:
    """(id, argv with BOMB for the bomb's path, exit code, what stderr must show)."""
    kube = ["--kubeconfig", "KUBECONFIG"]
    one_line = "istiolab: BOMB:7: more than 1,500,000 YAML nodes with aliases expanded; the rest "
    refusing = "istiolab: refusing: the config has 1 error(s); nothing was sent"
    return [
        pytest.param(["lint", "BOMB"], 1, REFUSED, id="lint"),
        pytest.param(["convert", "BOMB"], 1, REFUSED, id="convert"),
        pytest.param(["explain", "BOMB", "--path", "/"], 1, REFUSED, id="explain"),
        pytest.param(["envoy-config", "BOMB"], 1, REFUSED, id="envoy-config"),
        pytest.param(["verify", "BOMB"], 1, REFUSED, id="verify"),
        pytest.param(["verify", str(CONFIG), "--cases", "BOMB"], 2, one_line, id="verify-cases"),
        pytest.param(["simulate", "BOMB"], 1, REFUSED, id="simulate"),
        pytest.param(["sweep", "BOMB", "-q"], 1, REFUSED, id="sweep"),
        pytest.param(
            ["plan", "BOMB", "--knob", "services.0.replicas", "--slo", "p99_ms < 100", "-q"],
            1,
            REFUSED,
            id="plan",
        ),
        pytest.param(["compare", "BOMB", "-q"], 1, REFUSED, id="compare"),
        pytest.param(["compare", "SCENARIO", "BOMB", "-q"], 1, REFUSED, id="compare-second-file"),
        pytest.param(
            ["calibrate", "-d", "DURATIONS", "-s", "BOMB"], 1, REFUSED, id="calibrate-scenario"
        ),
        pytest.param(
            ["calibrate", "-d", "BOMB"],
            2,
            "istiolab: --durations BOMB: line 1 is not a Prometheus sample",
            id="calibrate-durations",
        ),
        pytest.param(
            ["calibrate", "--cpu", "BOMB", "--requests", "DURATIONS"],
            2,
            "istiolab: --cpu BOMB: line 1 is not a Prometheus sample",
            id="calibrate-cpu",
        ),
        pytest.param(["diff", "BOMB", *kube], 1, refusing, id="diff"),
        pytest.param(["apply", "BOMB", "--yes", *kube], 1, refusing, id="apply"),
        pytest.param(
            ["diff", str(CONFIG), "--kubeconfig", "BOMB"],
            2,
            "istiolab: cannot read the kubeconfig BOMB",
            id="diff-kubeconfig",
        ),
        pytest.param(
            ["rollback", "--list", "--kubeconfig", "BOMB"],
            2,
            "istiolab: cannot read the kubeconfig BOMB",
            id="rollback-kubeconfig",
        ),
    ]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bomb")
    bomb = root / "bomb.yaml"
    bomb.write_text(alias_bomb(1_000_000), encoding="utf-8")
    warm = root / "warm.yaml"
    warm.write_text("a: [1]\n", encoding="utf-8")  # valid YAML, no resource, no scenario
    kubeconfig = root / "kubeconfig.yaml"
    kubeconfig.write_text(KUBECONFIG, encoding="utf-8")
    durations = root / "durations.json"
    durations.write_text(DURATIONS, encoding="utf-8")
    scenario = root / "scenario.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    return {
        "BOMB": bomb,
        "WARM": warm,
        "KUBECONFIG": kubeconfig,
        "DURATIONS": durations,
        "SCENARIO": scenario,
        "root": root,
    }


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures in /proc")
@pytest.mark.parametrize(("argv", "code", "shows"), cases())
def test_every_command_refuses_a_1mb_alias_bomb_in_1s_and_100mb(
    inputs: dict[str, Path], argv: list[str], code: int, shows: str, request: pytest.FixtureRequest
) -> None:
    bomb = str(inputs["BOMB"])

    def with_input(path: str) -> list[str]:
        names = {"BOMB": path}
        names.update({k: str(inputs[k]) for k in ("KUBECONFIG", "DURATIONS", "SCENARIO")})
        return [names.get(a, a) for a in argv]

    name = request.node.callspec.id
    report = inputs["root"] / f"{name}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(report),
            json.dumps(with_input(str(inputs["WARM"]))),
            json.dumps(with_input(bomb)),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=ENV,
        cwd=inputs["root"],
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    assert proc.returncode == code, out[-3000:]
    assert shows.replace("BOMB", bomb) in out, out[-3000:]
    if shows == REFUSED:  # the finding names the file and the line where the limit was hit
        assert f"{bomb}:7  error   IL010" in out, out[-3000:]
    if "--cases" in argv:  # a one-line error, with the limit's code
        assert len(out.strip().splitlines()) == 1, out[-3000:]
        assert "(IL010)" in out, out[-3000:]
    assert len(out) < 2000, "the report quotes the bomb"
    probe = json.loads(report.read_text())
    assert probe["warm_code"] in (1, 2)  # the small file was refused too: nothing was run
    print(
        f"{name}: {probe['cpu']:.3f} s CPU, {probe['wall']:.3f} s wall, "
        f"{probe['extra_kib'] / 1024:.1f} MiB more resident at the peak"
    )
    assert probe["cpu"] < CPU_LIMIT_S
    assert probe["extra_kib"] < MEMORY_LIMIT_MIB * 1024
