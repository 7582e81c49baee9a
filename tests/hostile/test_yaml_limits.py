"""Hostile YAML: each limit of :mod:`istiolab.limits` and each loading rule, as a finding.

For every kind of hostile input (alias bombs, deep nesting, bytes that are not UTF-8, tags with
no JSON form, duplicate keys, devices, FIFOs, sockets, unreadable directories, oversized files)
the tests check the finding code, that the finding names the file (and the line, where there is
one), that nothing raises, and what ``istiolab lint PATH --format json`` answers: exit 1 with the
finding in its JSON, or exit 2 with the path on stderr for an input that cannot be read (the
command line's rule for IL005). A Hypothesis test mutates a valid config's text.

Every input is generated here. Subprocesses get a timeout, so a FIFO that made the loader wait
for a writer fails the test instead of hanging it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from istiolab import limits
from istiolab.config import ConfigSet, codecs, load, loads
from istiolab.config.validate import validate
from istiolab.findings import CODES, Finding, Severity

from .mutations import mutated_text

ISTIOLAB = Path(sys.executable).with_name("istiolab")
TIMEOUT = 120  # seconds for one command; far more than any of them needs
SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
# Subprocesses run with the default limits, whatever the environment of the test run.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("ISTIOLAB_MAX_")}


# -- helpers ------------------------------------------------------------------------------------


def only(findings: Sequence[Finding], code: str) -> Finding:
    hits = [f for f in findings if f.code == code]
    assert len(hits) == 1, f"expected one {code}, got {[f.format() for f in findings]}"
    f = hits[0]
    assert f.code in CODES
    assert f.severity is Severity.ERROR
    assert f.message
    assert f.fix
    return f


def run(
    args: Sequence[str],
    *,
    stdin: bytes | int | None = None,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run a command (no traceback allowed); *stdin* is bytes or a file descriptor."""
    proc = subprocess.run(
        [*prefix, *args],
        input=stdin if isinstance(stdin, bytes) else None,
        stdin=None
        if isinstance(stdin, bytes)
        else (subprocess.DEVNULL if stdin is None else stdin),
        capture_output=True,
        timeout=TIMEOUT,
        env=ENV if env is None else env,
        check=False,
    )
    out = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert "Traceback" not in out.stdout, out.stdout
    return out


def lint(
    target: str | Path,
    *,
    stdin: bytes | int | None = None,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> tuple[int, list[dict[str, Any]], str]:
    """``istiolab lint TARGET --format json``: exit code, findings, stderr."""
    proc = run(
        [str(ISTIOLAB), "lint", str(target), "--format", "json"],
        stdin=stdin,
        env=env,
        prefix=prefix,
    )
    found = json.loads(proc.stdout)["findings"] if proc.stdout.strip() else []
    return proc.returncode, found, proc.stderr


def lint_refuses(
    target: str | Path, code: str, *, file: str | None = None, stdin: bytes | int | None = None
) -> dict[str, Any]:
    """Lint *target*: exit 1 and a *code* finding about *file* (default: *target*)."""
    rc, found, err = lint(target, stdin=stdin)
    assert rc == 1, (rc, found, err)
    hits = [f for f in found if f["code"] == code]
    assert hits, found
    assert hits[0]["severity"] == "error"
    assert hits[0]["file"] == (str(target) if file is None else file)
    return hits[0]


def alias_bomb(size: int) -> str:
    """A "billion laughs" of *size* bytes: 10 ** 9 strings per '*i', and as many '*i' as fit."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    head = "\n".join(lines) + "\nj: ["
    return head + ", ".join(["*i"] * ((size - len(head) - 2) // 4)) + "]\n"


def big_virtual_service(routes: int) -> str:
    """A VirtualService with *routes* HTTP routes, each with matches, weights and policies."""
    out = [
        "apiVersion: networking.istio.io/v1",
        "kind: VirtualService",
        "metadata:",
        "  name: big",
        "spec:",
        "  hosts:",
        "  - httpbin",
        "  http:",
    ]
    for i in range(routes):
        out += [
            f"  - name: r{i}",
            "    match:",
            f"    - uri: {{prefix: /api/v{i}}}",
            f"      headers: {{x-user: {{exact: u{i}}}}}",
            "    route:",
            "    - destination: {host: httpbin, subset: v1}",
            "      weight: 90",
            "    - destination: {host: httpbin, subset: v2}",
            "      weight: 10",
            "    timeout: 2s",
            "    retries: {attempts: 3, perTryTimeout: 1s, retryOn: 5xx}",
        ]
    return "\n".join(out) + "\n"


def in_thread(fn: Callable[[], ConfigSet], seconds: float = 30) -> ConfigSet:
    """``fn()``, failing (not hanging) the test when it takes longer than *seconds*."""
    result: list[ConfigSet] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as err:  # re-raised in the test's thread
            errors.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still loading after {seconds} s: it blocks"
    if errors:
        raise errors[0]
    return result[0]


# -- alias bombs --------------------------------------------------------------------------------

BOMB_PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    from istiolab.config import load

    path = sys.argv[1]
    def rss_kib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() // 1024
    def vm_bytes():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()
    # Cap the address space at what the process has now plus 100 MiB: a loader that expands
    # the bomb dies with MemoryError instead of taking the machine's memory.
    cap = vm_bytes() + 100 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    # The peak resident size. ru_maxrss also holds the peak of the process this one was forked
    # from (the kernel carries it over exec), so with a big parent, such as a pytest worker, it
    # says nothing about the load. VmHWM is this process's own peak, and clear_refs starts it
    # afresh after the imports; without them, ru_maxrss is used, which can only err high.
    def peak_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        peak_kib = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = rss_kib()
    wall, cpu = time.perf_counter(), time.process_time()
    config = load(path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = peak_kib()
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "wall": wall, "cpu": cpu, "extra_kib": peak - before, "ru_maxrss_kib": usage,
        "findings": [f.to_dict() for f in config.findings],
    }))
    """
)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="measures memory in /proc")
def test_alias_bomb_of_1mb_is_refused_in_under_1s_and_100mb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(1_000_000), encoding="utf-8")
    assert 990_000 < path.stat().st_size <= 1_000_000
    proc = run([sys.executable, "-c", BOMB_PROBE, str(path)])
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    print(f"alias bomb of 1 MB: {probe['wall']:.3f} s wall, {probe['cpu']:.3f} s CPU, ")
    print(f"{probe['extra_kib'] / 1024:.1f} MiB more resident memory at the peak")
    # CPU time, not wall time: the machine running the tests may be busy with other work.
    assert probe["cpu"] < 1.0
    assert probe["extra_kib"] < 100 * 1024
    (f,) = probe["findings"]
    assert f["code"] == "IL010"
    assert f["file"] == str(path)
    assert f["line"] == 7  # 'g', the first anchor past 1.5 million nodes (10 ** 7 strings)


def test_alias_bomb_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(1_000_000), encoding="utf-8")
    f = lint_refuses(path, "IL010")
    assert f["line"] == 7
    assert len(f["message"]) < 200


def test_alias_bomb_stops_the_file_but_not_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(alias_bomb(2_000) + "---\n" + SERVICE, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(SERVICE.replace("web", "api"), encoding="utf-8")
    config = load(tmp_path)
    f = only(config.findings, "IL010")
    assert f.file == str(tmp_path / "a.yaml")
    assert [r.name for r in config] == ["api"]


def test_aliases_below_the_limit_load_and_are_quoted_briefly() -> None:
    # 100 000 strings behind each alias: allowed, and the findings about them stay short
    # (a message quoting the expanded value was once 580 MB).
    lines = ['  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 5):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"  {cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n"
        "  annotations:\n" + "\n".join(lines) + "\nspec:\n  hosts: [*e, *e]\n  http: *e\n"
    )
    start = time.process_time()
    findings = validate(loads(text, file="x.yaml"))
    assert time.process_time() - start < 10
    # IL103 for the hosts and the routes (lists of lists): what matters is that each is short
    assert "IL103" in {f.code for f in findings}
    assert all(len(f.message) < 300 for f in findings), [len(f.message) for f in findings]


def test_alias_inside_itself_is_a_finding() -> None:
    f = only(loads("a: &x [*x]\n", file="x.yaml").findings, "IL001")
    assert "recursive alias" in f.message


# -- nesting ------------------------------------------------------------------------------------


def block_nesting(levels: int) -> str:
    return "".join(" " * i + "a:\n" for i in range(levels)) + " " * levels + "end\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(block_nesting(1000), 100, id="block-1000"),
        pytest.param("a: " + "[" * 1000 + "]" * 1000 + "\n", 1, id="flow-1000"),
        pytest.param("a: " + "[" * 150 + "]" * 150 + "\n", 1, id="flow-150"),
        pytest.param("a:\n" + "  - " * 5000 + "x\n", 2, id="block-sequence-5000"),
        pytest.param("a: " + "{a: " * 20000 + "}" * 20000 + "\n", 1, id="flow-map-20000"),
        pytest.param(
            "l0: &l0 " + "[" * 90 + "x" + "]" * 90 + "\nl1: " + "[" * 90 + "*l0" + "]" * 90 + "\n",
            2,
            id="aliases-180",
        ),
    ],
)
def test_deep_nesting_is_refused(text: str, line: int) -> None:
    f = only(loads(text, file="deep.yaml").findings, "IL011")
    assert f.file == "deep.yaml"
    assert f.line == line
    assert str(limits.NESTING_DEPTH) in f.message


def test_deep_nesting_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(SERVICE + "spec:\n" + block_nesting(1000), encoding="utf-8")
    lint_refuses(path, "IL011")


def envoy_filter(depth: int) -> str:
    """An EnvoyFilter whose patch value nests down to level *depth* (the root is level 1)."""
    head = textwrap.dedent(
        """\
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata: {name: deep}
        spec:
          configPatches:
          - applyTo: HTTP_FILTER
            patch:
              operation: MERGE
              value:
        """
    )
    # value is at level 6; each 'k:' adds one, the final scalar one more
    nested = depth - 7
    return (
        head
        + "".join(" " * (8 + 2 * i) + "k:\n" for i in range(nested))
        + " " * (8 + 2 * nested)
        + "k: leaf\n"
    )


def test_nesting_at_the_limit_goes_through_every_stage(tmp_path: Path) -> None:
    text = envoy_filter(limits.NESTING_DEPTH)
    config = loads(text, file="deep.yaml")
    assert config.findings == ()
    assert len(config) == 1
    deeper = loads(envoy_filter(limits.NESTING_DEPTH + 1), file="deep.yaml")
    assert only(deeper.findings, "IL011").file == "deep.yaml"
    validate(config)
    json.dumps([r.to_dict() for r in config])
    assert loads(codecs.dumps(list(config)), file="again.yaml").findings == ()
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    rc, _found, err = lint(path)
    assert rc in (0, 1), err
    assert run([str(ISTIOLAB), "convert", str(path)]).returncode in (0, 1)


def test_raised_nesting_limit_is_capped_and_still_safe(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(envoy_filter(250), encoding="utf-8")
    env = {**ENV, "ISTIOLAB_MAX_DEPTH": "100000"}  # capped at 250
    rc, found, err = lint(path, env=env)
    assert rc in (0, 1), err
    assert "IL011" not in {f["code"] for f in found}
    path.write_text(envoy_filter(251), encoding="utf-8")
    rc, found, err = lint(path, env=env)
    assert rc == 1
    assert "IL011" in {f["code"] for f in found}


# -- text encoding ------------------------------------------------------------------------------

NOT_UTF8 = b"apiVersion: v1\nkind: Service\nmetadata:\n  name: caf\xe9\n"
BAD_OFFSET = NOT_UTF8.index(b"\xe9")


def test_invalid_utf8_file_names_file_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(NOT_UTF8)
    f = only(load(path).findings, "IL012")
    assert f.file == str(path)
    assert f.line == 4
    assert str(path) in f.message
    assert f"byte offset {BAD_OFFSET}" in f.message
    assert "e9" in f.message
    assert lint_refuses(path, "IL012")["line"] == 4


def test_invalid_utf8_on_stdin() -> None:
    f = lint_refuses("-", "IL012", file="<stdin>", stdin=NOT_UTF8)
    assert f["line"] == 4
    assert "<stdin>" in f["message"]
    stream = io.TextIOWrapper(io.BytesIO(NOT_UTF8), encoding="utf-8")
    assert only(load("-", stdin=stream).findings, "IL012").file == "<stdin>"


def test_lone_surrogates_in_text_are_a_finding() -> None:
    # what bytes that are not UTF-8 become when decoded with errors="surrogateescape"
    text = NOT_UTF8.decode("utf-8", "surrogateescape")
    f = only(loads(text, file="x.yaml").findings, "IL012")
    assert f.line == 4


def test_utf8_with_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + SERVICE.encode())
    config = load(path)
    assert config.findings == ()
    assert len(config) == 1


# -- tags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("name: !!binary aGVsbG8=", "!!binary"),
        ("name: web\n  labels: !!set {a, b}", "!!set"),
        ("name: web\n  labels: {day: !!timestamp 2001-12-14}", "!!timestamp"),
        ("name: web\n  labels: !!omap [{a: b}]", "!!omap"),
        ("name: web\n  labels: !!pairs [{a: b}]", "!!pairs"),
        ("name: !!python/object:os.system x", "!!python/object:os.system"),
        ("name: !custom web", "!custom"),
    ],
)
def test_tags_without_json_form_are_refused(value: str, tag: str) -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  " + value + "\n"
    f = only(loads(text, file="tags.yaml").findings, "IL013")
    assert f.file == "tags.yaml"
    assert f.line == text.splitlines().index(next(x for x in text.splitlines() if tag in x)) + 1
    assert repr(tag) in f.message


def test_binary_in_metadata_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: !!binary aGVsbG8=\n")
    assert lint_refuses(path, "IL013")["line"] == 4


def test_plain_timestamps_and_equals_signs_are_strings_as_in_kubernetes() -> None:
    text = SERVICE + "  labels: {day: 2001-12-14, at: 2001-12-14t21:59:43.10-05:00, eq: =}\n"
    (doc,) = codecs.loads(text, "x.yaml")
    labels = doc.data["metadata"]["labels"]
    assert labels == {"day": "2001-12-14", "at": "2001-12-14t21:59:43.10-05:00", "eq": "="}
    assert loads(text, file="x.yaml").findings == ()


def test_standard_tags_of_json_values_are_fine() -> None:
    text = (
        SERVICE
        + "  labels: !!map {a: !!str 1, b: !!str true}\nspec: {ports: [{port: !!int '80'}]}\n"
    )
    config = loads(text, file="x.yaml")
    assert config.findings == ()


# -- duplicate keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        (SERVICE + "  name: other\n", "name", (4, 5)),
        (
            "apiVersion: v1\nkind: Service\napiVersion: v2\nmetadata: {name: web}\n",
            "apiVersion",
            (1, 3),
        ),
        (SERVICE + "spec:\n  ports:\n  - {port: 80, port: 81}\n", "port", (7, 7)),
        (SERVICE + "  labels:\n    '1': a\n    1: b\n", "1", (6, 7)),
    ],
)
def test_duplicate_keys_are_refused_naming_both_lines(
    text: str, key: str, lines: tuple[int, int]
) -> None:
    config = loads(text, file="dup.yaml")
    f = only(config.findings, "IL014")
    assert f.file == "dup.yaml"
    assert f.line == lines[1]
    assert f"{key!r} appears twice" in f.message
    assert f"lines {lines[0]} and {lines[1]}" in f.message
    assert len(config) == 0


def test_duplicate_key_refuses_one_document_only() -> None:
    text = SERVICE + "  name: other\n---\n" + SERVICE.replace("web", "api")
    config = loads(text, file="dup.yaml")
    assert only(config.findings, "IL014").line == 5
    assert [r.name for r in config] == ["api"]


def test_merge_keys_are_not_duplicates() -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
        "  labels: &base {app: web, tier: front}\n"
        "  annotations: {<<: *base, tier: back}\n"
    )
    (doc,) = codecs.loads(text, "x.yaml")
    assert doc.error is None
    assert doc.data["metadata"]["annotations"] == {"app": "web", "tier": "back"}


def test_duplicate_key_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(SERVICE + "  name: other\n", encoding="utf-8")
    f = lint_refuses(path, "IL014")
    assert f["line"] == 5
    assert "lines 4 and 5" in f["message"]


# -- special files ------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_refused_without_reading() -> None:
    f = only(in_thread(lambda: load("/dev/zero"), 10).findings, "IL007")
    assert f.file == "/dev/zero"
    assert "/dev/zero is a character device" in f.message
    lint_refuses("/dev/zero", "IL007")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_on_stdin_is_read_only_up_to_the_limit() -> None:
    with open("/dev/zero", "rb") as zero:
        f = lint_refuses("-", "IL008", file="<stdin>", stdin=zero.fileno())
    assert f"{limits.FILE_BYTES:,}" in f["message"]


def test_read_text_refuses_the_same_for_other_readers(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(NOT_UTF8)
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(limits.FILE_BYTES + 1)
    cases: list[tuple[str | Path, str]] = [
        ("/dev/zero", "IL007"),
        (tmp_path / "missing.yaml", "IL005"),
        (bad, "IL012"),
        (huge, "IL008"),
    ]
    for path, code in cases:
        if not Path(path).exists() and code != "IL005":
            continue
        with pytest.raises(codecs.InputRefused) as err:
            codecs.read_text(path)
        assert err.value.code == code
        assert str(path) in str(err.value)
    good = tmp_path / "ok.yaml"
    good.write_text(SERVICE, encoding="utf-8")
    assert codecs.read_text(good) == SERVICE


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    f = only(in_thread(lambda: load(fifo), 10).findings, "IL007")
    assert f.file == str(fifo)
    assert "named pipe (FIFO)" in f.message
    lint_refuses(fifo, "IL007")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_in_a_directory_is_refused_and_the_rest_is_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a-pipe.yaml")
    os.mkfifo(tmp_path / "not-yaml.txt")  # not a YAML name: never looked at
    (tmp_path / "b.yaml").write_text(SERVICE, encoding="utf-8")
    config = in_thread(lambda: load(tmp_path), 10)
    assert only(config.findings, "IL007").file == str(tmp_path / "a-pipe.yaml")
    assert [r.name for r in config] == ["web"]
    lint_refuses(tmp_path, "IL007", file=str(tmp_path / "a-pipe.yaml"))


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_socket_is_refused() -> None:
    # a short directory: Unix socket paths are limited to about 100 bytes
    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX) as sock:
        path = Path(tmp) / "s.yaml"
        sock.bind(str(path))
        f = only(load(path).findings, "IL007")
        assert f.file == str(path)
        assert "socket" in f.message


# -- unreadable inputs --------------------------------------------------------------------------


def without_root_privilege() -> list[str]:
    """A command prefix under which permission bits apply, or skip the test.

    Root reads everything through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. Dropping both
    from the bounding set (``setpriv``) makes a mode-000 directory really unreadable to root,
    while root keeps access to its own interpreter and virtual environment (which ``nobody``
    may not have).
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permission bits cannot be enforced")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A tree with a readable file and a directory (holding a file) that cannot be listed."""
    (tmp_path / "a.yaml").write_text(SERVICE, encoding="utf-8")
    secret = tmp_path / "locked"
    secret.mkdir()
    (secret / "x.yaml").write_text(SERVICE, encoding="utf-8")
    secret.chmod(0)
    prefix = without_root_privilege()
    try:
        probe = run(
            [
                sys.executable,
                "-c",
                "import os, sys\ntry:\n    os.listdir(sys.argv[1])\n"
                "except PermissionError:\n    sys.exit(13)",
                str(secret),
            ],
            prefix=prefix,
        )
        if probe.returncode == 0:
            pytest.skip("this system lets the test process read a mode-000 directory")
        yield tmp_path, prefix
    finally:
        secret.chmod(0o700)


def test_unreadable_directory_is_an_error_naming_it(locked: tuple[Path, list[str]]) -> None:
    tree, prefix = locked
    rc, found, err = lint(tree, prefix=prefix)
    # the command line treats inputs it cannot read as usage errors: exit 2, message on stderr
    assert rc == 2, (rc, found, err)
    assert f"cannot read directory {tree / 'locked'}: Permission denied" in err
    api = run(
        [
            sys.executable,
            "-c",
            "import json, sys; from istiolab.config import load; "
            "print(json.dumps([f.to_dict() for f in load(sys.argv[1]).findings]))",
            str(tree),
        ],
        prefix=prefix,
    )
    (f,) = json.loads(api.stdout)
    assert f["code"] == "IL005"
    assert f["file"] == str(tree / "locked")
    assert f["severity"] == "error"


def test_unreadable_file_is_an_error_naming_it(locked: tuple[Path, list[str]]) -> None:
    tree, prefix = locked
    path = tree / "a.yaml"
    path.chmod(0)
    rc, found, err = lint(path, prefix=prefix)
    assert rc == 2, (rc, found, err)
    assert f"cannot read {path}: Permission denied" in err


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_read_error_is_an_error_naming_the_file() -> None:
    # A regular file whose read fails with EIO, even for root: address 0 is never mapped.
    f = only(load("/proc/self/mem").findings, "IL005")
    assert f.file == "/proc/self/mem"
    assert "cannot read /proc/self/mem: Input/output error" in f.message


def test_dangling_symlinks_are_errors_naming_them(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "ok.yaml").write_text(SERVICE, encoding="utf-8")
    config = load(tmp_path)
    f = only(config.findings, "IL005")
    assert f.file == str(tmp_path / "gone.yaml")
    assert str(tmp_path / "gone.yaml") in f.message
    assert len(config) == 1
    rc, _found, err = lint(tmp_path)
    assert rc == 2
    assert str(tmp_path / "gone.yaml") in err


# -- sizes --------------------------------------------------------------------------------------


def test_oversized_file_is_refused_from_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(limits.FILE_BYTES + 1)  # sparse: nothing is written, nothing must be read
    finding = only(load(path).findings, "IL008")
    assert finding.file == str(path)
    assert f"{limits.FILE_BYTES + 1:,} bytes" in finding.message
    lint_refuses(path, "IL008")


def test_file_limit_can_be_raised_and_lowered(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    # a Service with a port: lint refuses one without (Kubernetes requires one)
    path.write_text(SERVICE + "spec: {ports: [{name: http, port: 80}]}\n", encoding="utf-8")
    rc, found, _ = lint(path, env={**ENV, "ISTIOLAB_MAX_FILE_BYTES": "10"})
    assert rc == 1
    assert [f["code"] for f in found] == ["IL008"]
    rc, found, _ = lint(path, env={**ENV, "ISTIOLAB_MAX_FILE_BYTES": "not a number"})
    assert (rc, found) == (0, [])


def test_oversized_text_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "FILE_BYTES", 100)
    f = only(loads(SERVICE * 10, file="x.yaml").findings, "IL008")
    assert f.file == "x.yaml"
    assert only(load("-", stdin=io.StringIO(SERVICE * 10)).findings, "IL008").file == "<stdin>"


def test_oversized_document_is_refused() -> None:
    big = SERVICE + "  annotations:\n    blob: " + "x" * (limits.DOCUMENT_BYTES + 10) + "\n"
    config = loads(big + "---\n" + SERVICE.replace("web", "api"), file="big.yaml")
    f = only(config.findings, "IL009")
    assert f.file == "big.yaml"
    assert f.line == 1
    assert "document 1 is" in f.message
    assert [r.name for r in config] == ["api"]


def test_list_items_are_measured_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    item = "- apiVersion: v1\n  kind: Service\n  metadata: {name: s%d}\n"
    listed = "apiVersion: v1\nkind: List\nitems:\n" + "".join(item % i for i in range(20))
    monkeypatch.setattr(limits, "DOCUMENT_BYTES", 100)  # each item is 56 bytes, the List 1200
    assert len(loads(listed, file="list.yaml")) == 20
    monkeypatch.setattr(limits, "DOCUMENT_BYTES", 50)
    f = only(loads(listed, file="list.yaml").findings, "IL009")
    assert "item 0 of the List" in f.message
    assert f.line == 4


def test_node_limit_counts_wide_documents_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "NODES", 1000)
    f = only(loads("a: [" + "1, " * 2000 + "1]\n", file="wide.yaml").findings, "IL010")
    assert f.line == 1


def test_huge_numbers_are_findings() -> None:
    for value in ("9" * 5000, "0x" + "f" * 5000, "0b" + "1" * 20000):
        text = SERVICE + f"spec: {{ports: [{{port: {value}}}]}}\n"
        f = only(loads(text, file="n.yaml").findings, "IL001")
        assert "too many digits" in f.message
        assert len(f.message) < 200
    # a float that overflows is just infinity: a schema finding, not a crash
    text = SERVICE + "spec: {ports: [{port: 1e999999}]}\n"
    assert {f.code for f in validate(loads(text, file="n.yaml"))} <= set(CODES)


def test_long_values_are_truncated_in_messages() -> None:
    key = "k" * 1_000_000  # an explicit key ('? '): a plain one may only be 1024 long
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n"
        f"spec:\n  hosts: [{{a: b}}]\n  ? {key}\n  : 1\n  http: [{{timeout: {'9' * 100_000}s}}]\n"
    )
    findings = validate(loads(text, file="long.yaml"))
    assert {f.code for f in findings} >= {"IL101", "IL103"}
    for f in findings:
        assert len(f.message) < 600, (f.code, len(f.message))
        assert len(f.path) < 600, (f.code, len(f.path))
    assert any("…(1000000 bytes)" in f.message for f in findings)


def test_truncate_and_quote() -> None:
    assert limits.truncate("short") == "short"
    assert limits.truncate("x" * 150) == "x" * limits.QUOTE_CHARS + "…(150 bytes)"
    assert limits.truncate("é" * 10, 2) == "éé…(20 bytes)"
    assert limits.truncate(b"\xff" * 10, 3).endswith("…(10 bytes)")
    assert limits.quote("x" * 150).endswith("…(150 bytes)'")
    nested: list[Any] = ["x"]
    for _ in range(60):  # 2 ** 60 strings if printed in full
        nested = [nested, nested]
    assert len(limits.quote(nested)) <= limits.QUOTE_CHARS + 1
    assert limits.quote(10**5000) == "<16610-bit integer>"


@pytest.mark.slow
def test_virtual_service_with_10000_routes_loads() -> None:
    text = big_virtual_service(10_000)
    assert len(text) < limits.DOCUMENT_BYTES / 1.5  # the margin the limits promise
    start = time.perf_counter()
    config = loads(text, file="big.yaml")
    print(f"10 000 routes, {len(text):,} bytes: loaded in {time.perf_counter() - start:.1f} s")
    assert config.findings == ()
    assert len(config) == 1


def test_limits_leave_room_for_10000_routes() -> None:
    # Measure 100 routes and scale: nodes and depth grow no faster than the routes.
    loader = codecs._GuardedLoader(big_virtual_service(100))
    node = loader.get_single_node()
    loader.dispose()
    inspector = codecs._Inspector(strict=True)
    inspector.document(node)
    assert inspector.count * 100 * 3 < limits.NODES
    assert inspector.known[id(node)][1] * 10 <= limits.NESTING_DEPTH


# -- mutations of a valid config (Hypothesis) ---------------------------------------------------

VALID = textwrap.dedent(
    """\
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: web
      labels: {app: web, version: "1"}
    spec:
      hosts: [web.example.com]
      gateways: [mesh]
      http:
      - match:
        - uri: {prefix: /api}
          headers: {x-user: {exact: jason}}
        route:
        - destination: {host: web, subset: v1, port: {number: 8080}}
          weight: 90
        - destination: {host: web, subset: v2}
          weight: 10
        timeout: 2.5s
        retries: {attempts: 3, perTryTimeout: 1s}
        fault:
          abort: {httpStatus: 503, percentage: {value: 0.5}}
    ---
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: web}
    spec:
      host: web
      subsets:
      - {name: v1, labels: {version: v1}}
      - {name: v2, labels: {version: v2}}
    """
)


def check(findings: Sequence[Finding], file: str) -> None:
    for f in findings:
        assert isinstance(f, Finding)
        assert f.code in CODES, f
        assert f.file == file
        assert f.message
        assert f.fix
        assert len(f.message) < 2000, (f.code, len(f.message))
        json.dumps(f.to_dict())


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=mutated_text(VALID))
def test_mutated_config_gives_findings_never_exceptions(raw: bytes) -> None:
    text = raw.decode("utf-8", "surrogateescape")
    config = loads(text, file="m.yaml")
    check(config.findings, "m.yaml")
    check(validate(config), "m.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_bytes(raw)
        check(load(path).findings, str(path))
