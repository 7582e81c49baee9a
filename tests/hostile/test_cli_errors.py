"""Hostile command lines: one line on stderr naming the problem, the documented exit code.

Each input below once ended in a Python traceback (issue #12). They are driven through the real
command line, ``python -m istiolab`` in a subprocess (so what a shell sees is what is checked),
or :func:`istiolab.cli.app.main` in-process where a test needs to plant a fault. The exit codes
are those of ``docs/exit-codes.md``. Subprocesses get a timeout, so a hang fails the test.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from istiolab.cli.app import main
from istiolab.cli.common import EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE
from istiolab.config import load
from istiolab.envoy.compile import compile as compile_table
from istiolab.envoy.verify import generate_cases
from istiolab.envoy.verify.generate import regex_examples
from istiolab.findings import finding

REPO = Path(__file__).resolve().parents[2]
SEED = str(REPO / "examples" / "seed")
SCENARIO = str(REPO / "sim" / "scenarios" / "seed-httpbin.yaml")
CONFIG = REPO / "tests" / "conformance" / "configs" / "01-uri-exact-prefix.yaml"


@dataclasses.dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


def istiolab(*args: str, timeout_s: float = 120.0) -> Run:
    """Run ``python -m istiolab ARGS`` as a shell would."""
    env = dict(os.environ)
    env.pop("ISTIOLAB_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "istiolab", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(run: Run, code: int, *names: str) -> str:
    """The run failed with *code*, no traceback, and its last stderr line names *names*."""
    assert "Traceback" not in run.err, run.err
    assert run.code == code, run.err
    last = run.lines[-1]
    assert last.startswith("istiolab: "), run.err
    for name in names:
        assert name in last, run.err
    return last


@pytest.fixture
def not_a_folder(tmp_path: Path) -> Path:
    """A regular file, so ``<it>/x`` cannot be created (root ignores permission bits)."""
    path = tmp_path / "a-file"
    path.write_text("")
    return path


# ---------------------------------------------------------------------------- output paths


@pytest.mark.parametrize(
    "where",
    ["missing-folder/out.yaml", "a-file/out.yaml", "."],
    ids=["folder-missing", "parent-is-a-file", "is-a-folder"],
)
def test_convert_output_that_cannot_be_written(
    tmp_path: Path, not_a_folder: Path, where: str
) -> None:
    out = tmp_path / where
    run = istiolab("convert", SEED, "-o", str(out))
    assert_one_line_error(run, EXIT_USAGE, "--output", str(out))
    assert run.out == ""  # checked before the conversion: nothing was printed or written


def test_envoy_config_output_that_cannot_be_written(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "envoy.json"
    run = istiolab("envoy-config", SEED, "-o", str(out), "--no-validate")
    last = assert_one_line_error(run, EXIT_USAGE, "--output", str(out))
    assert "does not exist" in last


def test_verify_write_cases_checked_before_envoy_runs(not_a_folder: Path) -> None:
    out = not_a_folder / "cases.json"
    started = time.monotonic()
    run = istiolab("verify", str(CONFIG), "--write-cases", str(out))
    assert_one_line_error(run, EXIT_USAGE, "--write-cases", str(out))
    assert run.out == ""
    assert time.monotonic() - started < 60


def test_sweep_out_in_a_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "runs.csv"
    run = istiolab("sweep", SCENARIO, "--out", str(out), "-e", "serial", "-q")
    assert_one_line_error(run, EXIT_USAGE, "--out", str(out.parent))


def test_simulate_out_that_is_a_file_names_it(not_a_folder: Path) -> None:
    # cli/simulate.py does not check --out before the run; main() still names the path.
    out = not_a_folder / "frames"
    run = istiolab("simulate", SCENARIO, "--set", "run.duration_s=3", "--out", str(out))
    assert_one_line_error(run, EXIT_USAGE, str(out))


def test_write_or_echo_names_the_path_when_writing_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The folder was fine when checked, the write fails anyway (disk full, a race).
    out = tmp_path / "out.yaml"

    def full(self: Path, *args: Any, **kwargs: Any) -> int:
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    code = main(["convert", SEED, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert (
        err.splitlines()[-1] == f"istiolab: --output {out}: cannot write: No space left on device"
    )


# ---------------------------------------------------------------------------- seeds


def test_negative_seed_is_a_one_line_usage_error_without_traceback() -> None:
    run = istiolab("simulate", SCENARIO, "--seed", "-1")
    assert "Traceback" not in run.err
    assert run.code == EXIT_USAGE
    assert len(run.lines) == 1, run.err
    assert "-1" in run.lines[0]
    assert ">=0" in run.err.replace(" ", "") or ">= 0" in run.err


def test_sweep_negative_seed_is_a_usage_error() -> None:
    run = istiolab("sweep", SCENARIO, "--seed", "-1", "-e", "serial", "-q")
    assert "Traceback" not in run.err
    assert run.code == EXIT_USAGE
    assert "--seed" in run.err


# ---------------------------------------------------------------------------- case files

CASES_WITH_BREAKS = """\
tests:
- test_name: fine
  input: {authority: example.com, path: /healthz}
- test_name: header injection
  input:
    authority: example.com
    path: /healthz
    additional_request_headers:
    - {key: x-a, value: "a\\r\\nx-injected: 1"}
"""


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (CASES_WITH_BREAKS, 9, "additional_request_headers[0].value"),
        (
            "tests:\n- test_name: lf in path\n  input:\n    authority: example.com\n"
            '    path: "/a\\nb"\n',
            5,
            "input.path",
        ),
        (
            '{"tests": [{"test_name": "cr in host",\n'
            ' "input": {"authority": "a\\rb", "path": "/"}}]}\n',
            2,
            "input.authority",
        ),
        (
            "tests:\n- test_name: space in method\n  input: {authority: e, path: /, "
            "method: 'GET /x'}\n",
            3,
            "input.method",
        ),
    ],
    ids=["header-crlf", "path-lf", "authority-cr-json", "method-space"],
)
def test_line_breaks_in_a_case_file(tmp_path: Path, text: str, line: int, field: str) -> None:
    cases = tmp_path / ("cases.json" if text.startswith("{") else "cases.yaml")
    cases.write_text(text)
    run = istiolab("verify", str(CONFIG), "--cases", str(cases))
    last = assert_one_line_error(run, EXIT_USAGE, f"{cases}:{line}:", field)
    assert "cannot be sent" in last


def test_case_file_with_crlf_line_endings_is_read(tmp_path: Path) -> None:
    # Windows line endings end lines; they are not line breaks inside a value.
    from istiolab.envoy.verify import load_cases

    lf = REPO / "tests" / "conformance" / "configs" / "01-uri-exact-prefix.cases.yaml"
    crlf = tmp_path / "crlf.cases.yaml"
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    assert load_cases(crlf) == load_cases(lf)


def _bad_case_file(tmp_path: Path, what: str) -> Path:
    if what == "missing":
        return tmp_path / "nope.yaml"
    if what == "folder":
        return tmp_path
    if what == "dev-zero":
        return Path("/dev/zero")
    if what == "fifo":
        fifo = tmp_path / "cases.yaml"
        os.mkfifo(fifo)
        return fifo
    path = tmp_path / "cases.yaml"
    if what == "not-utf8":
        path.write_bytes(b"tests:\n- test_name: caf\xe9\n")
    elif what == "bomb":
        lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        lines += [
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        ]
        path.write_text("\n".join(lines) + "\n")  # 10 ** 8 strings
    elif what == "huge":
        path.write_bytes(b"# " + b"x" * (9 * 1024 * 1024) + b"\n")
    return path


CASE_FILE_REFUSALS = {
    "missing": ("IL005", "cannot read"),
    "folder": ("IL007", "is a directory, not a regular file"),
    "dev-zero": ("IL007", "is a character device"),
    "fifo": ("IL007", "is a named pipe (FIFO)"),
    "not-utf8": ("IL012", "is not valid UTF-8: byte offset 23 (line 2)"),
    "bomb": ("IL010", ":7: more than 1,500,000 YAML nodes"),
    "huge": ("IL008", "more than the limit of 8,388,608 bytes"),
}


@pytest.mark.parametrize("what", list(CASE_FILE_REFUSALS))
def test_case_files_are_read_with_the_input_limits(tmp_path: Path, what: str) -> None:
    # The config loader's reader and limits: a FIFO does not block, /dev/zero is not read, a
    # bomb is not expanded; the message names the file (and line) and the limit's code.
    from istiolab.envoy.verify import load_cases
    from istiolab.errors import IstiolabError

    path = _bad_case_file(tmp_path, what)
    code, shows = CASE_FILE_REFUSALS[what]
    with pytest.raises(IstiolabError) as caught:
        load_cases(path)
    message = str(caught.value)
    assert str(path) in message[: len(str(path)) + len("cannot read ")], message  # named first
    assert shows in message, message
    assert f"({code})" in message, message
    assert "\n" not in message


@pytest.mark.parametrize("what", ["missing", "bomb"])
def test_cases_that_cannot_be_read_are_named(tmp_path: Path, what: str) -> None:
    cases = _bad_case_file(tmp_path, what)
    run = istiolab("verify", str(CONFIG), "--cases", str(cases))
    code, shows = CASE_FILE_REFUSALS[what]
    last = assert_one_line_error(run, EXIT_USAGE, str(cases), shows, f"({code})")
    assert len(last) < 400


@pytest.mark.parametrize("command", ["lint", "simulate", "sweep"])
def test_inputs_that_cannot_be_read_are_named(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "missing.yaml"
    extra = ["-e", "serial", "-q"] if command == "sweep" else []
    run = istiolab(command, str(missing), *extra)
    assert_one_line_error(run, EXIT_USAGE, str(missing))


# ---------------------------------------------------------------------------- main's last resort


def test_an_internal_error_is_one_line_with_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import istiolab.envoy.match as match_mod

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(match_mod, "explain", broken)
    monkeypatch.delenv("ISTIOLAB_DEBUG", raising=False)
    code = main(["explain", SEED, "--path", "/status/200"])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL == 70
    assert err.strip().splitlines() == [
        "istiolab: internal error: RuntimeError: boom second line; "
        "set ISTIOLAB_DEBUG=1 for the traceback"
    ]
    monkeypatch.setenv("ISTIOLAB_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["explain", SEED, "--path", "/status/200"])


# ---------------------------------------------------------------------------- error findings


def test_error_findings_from_compiling_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An error the conversion of legacy input reports (not validation) used to exit 0.
    import istiolab.envoy.compile as compile_mod
    import istiolab.envoy.explain as explain_mod

    bad = finding("IL302", "RouteRule default/r", "spec.httpFault", "planted", "fix it")

    def with_error(real: Any) -> Any:
        def compile_with_error(*args: Any, **kwargs: Any) -> Any:
            table = real(*args, **kwargs)
            return dataclasses.replace(table, findings=(*table.findings, bad))

        return compile_with_error

    # explain compiles only what can serve the request's host, through its own module
    for module, name in (
        (compile_mod, "compile"),
        (explain_mod, "compile"),
        (explain_mod, "compile_validated"),
    ):
        monkeypatch.setattr(module, name, with_error(getattr(module, name)))
    for argv in (
        ["explain", SEED, "--path", "/status/200"],
        ["envoy-config", SEED, "--no-validate"],
    ):
        assert main(argv) == EXIT_FAILED, argv
        assert "IL302" in capsys.readouterr().err


# ---------------------------------------------------------------------------- regex hang

BACKSLASHES_64 = "\\" * 64
PATHOLOGICAL = [
    BACKSLASHES_64,
    "/(" + BACKSLASHES_64 + ")",  # made the optional-group rewrite backtrack for hours
    "/(" + "\\\\" * 200 + ")?x",
    "((a{1000}){1000}){1000}",  # spells out 10^9 characters when expanded naively
    "(" * 200 + "a" + ")" * 200,
    "/[^/]*" * 200,
    "(\\\\\\\\)?" * 1000,  # a thousand capture groups: slow for RE2 with captures
    "/(a|aa)*c",
    "/(x+x+)+y",
]


@pytest.mark.parametrize("pattern", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_regex_examples_are_bounded(pattern: str) -> None:
    started = time.monotonic()
    regex_examples(pattern)
    assert time.monotonic() - started < 2.0


VS_64 = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backslashes, namespace: default}
spec:
  hosts: [httpbin]
  http:
  - name: slashes
    match: [{uri: {regex: '/BACKSLASHES'}}]
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
  - name: groups
    match: [{uri: {regex: '/(BACKSLASHES)'}}]
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
  - name: default
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
"""


def test_cases_for_a_route_regex_of_64_backslashes_in_under_2_s(tmp_path: Path) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(VS_64.replace("BACKSLASHES", BACKSLASHES_64))
    table = compile_table(load([str(path)]))
    started = time.monotonic()
    notes: list[str] = []
    cases = generate_cases(table, notes=notes)
    assert time.monotonic() - started < 2.0
    # A backslash is percent-encoded on the wire (%5C), which the regex does not match: the
    # routes get no case, and the report says why instead of hanging.
    for name in ("slashes", "groups"):
        reached = any(c.note == f"reaches {name}" for c in cases)
        assert reached or any(f"] {name}: " in n for n in notes), notes


@pytest.mark.envoy
def test_verify_a_route_regex_of_64_backslashes_finishes(tmp_path: Path) -> None:
    path = tmp_path / "vs.yaml"
    path.write_text(VS_64.replace("BACKSLASHES", BACKSLASHES_64))
    run = istiolab("verify", str(path), timeout_s=120)
    assert "Traceback" not in run.err
    assert run.code in (0, EXIT_FAILED), run.err  # finished; agreement is another matter


def test_simulate_out_is_checked_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", "utf-8")
    run = istiolab("simulate", SCENARIO, "--out", str(blocker / "sub"))
    assert run.code == EXIT_USAGE
    assert len(run.lines) == 1, run.err
    assert str(blocker / "sub") in run.lines[0]
    assert "requests" not in run.out  # refused before simulating, not after


def test_sweep_out_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd
    import typer

    from istiolab.cli import sweep as cli_sweep

    out = tmp_path / "runs.csv"
    out.write_text("previous complete file\n", "utf-8")
    frame = pd.DataFrame({"seed": [1, 2], "p99_ms": [3.0, 4.0]})

    def half_then_disk_full(self: pd.DataFrame, path: Path, **kw: Any) -> None:
        Path(path).write_text("seed,p99", "utf-8")  # a partial write, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_disk_full)
    with pytest.raises(typer.Exit):
        cli_sweep._write(frame, out)
    assert out.read_text("utf-8") == "previous complete file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]  # no temporary file left
    monkeypatch.undo()
    cli_sweep._write(frame, out)
    assert pd.read_csv(out).equals(frame)
