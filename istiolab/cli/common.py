"""What the ``istiolab`` commands share: exit codes, messages, option types, output and inputs.

There is no Typer app here; the command modules import this one and never each other's commands.

Exit codes (``docs/exit-codes.md`` lists them per command): 0 success; 1 the input has errors,
a check disagreed or an action was refused or failed; 2 usage errors, inputs that cannot be read
and outputs that cannot be written; 70 an internal error (a bug: one line, the traceback with
``ISTIOLAB_DEBUG=1``); 128 + N killed by signal N after cleaning up (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab.config import ConfigSet, load
from istiolab.findings import Finding, Severity
from istiolab.profiles import PROFILES, get_profile

if TYPE_CHECKING:
    from istiolab.envoy.model import RouteTable
    from istiolab.sim.scenario import Scenario

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: an internal software error
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

# ---------------------------------------------------------------------------------- messages


def say(message: str) -> None:
    """One line on stderr, prefixed ``istiolab:``."""
    typer.echo(f"istiolab: {message}", err=True)


def usage_error(message: str) -> typer.Exit:
    """Say *message* and return the exit for a usage error (the caller raises it)."""
    say(message)
    return typer.Exit(EXIT_USAGE)


# ----------------------------------------------------------------------------------- options


def _check_format(value: str) -> str:
    if value not in ("table", "json"):
        raise usage_error(f"--format must be table or json, not {value!r}")
    return value


PathsArg = Annotated[
    list[str],
    typer.Argument(help="YAML files, directories (searched recursively) or '-' for stdin."),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help=f"Istio version whose defaults apply ({', '.join(PROFILES)}; any 1.x works). "
        "Default: 0.2 when the input is legacy, else the newest.",
    ),
]
FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="table or json.", callback=_check_format)
]
SuppressOpt = Annotated[
    list[str] | None,
    typer.Option("--suppress", "-s", help="Finding codes to ignore (repeat or comma-separate)."),
]
GatewayOpt = Annotated[
    str | None,
    typer.Option(
        "--gateway", "-g", help="Gateway (namespace/name or name) to compile for; default all."
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", help="Gateway port; default 80 when a server listens there."),
]


def _check_engine(value: str) -> str:
    from istiolab.sim.engine import ENGINES  # pulls in the simulator: only when it is used

    if value not in ENGINES:
        raise usage_error(f"--engine must be one of {', '.join(ENGINES)}, not {value!r}")
    return value


EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Simulation engine: auto (the compiled engine when it supports every feature the "
        "scenario uses, else SimPy, with a note naming the feature), fast (compiled; an error "
        "when it cannot run the scenario) or simpy (the reference). docs/engines.md.",
        callback=_check_engine,
    ),
]


def warm_fast_engine(engine: str, scenario: Scenario | None = None) -> None:
    """Before a command simulates: compile the fast engine now if it will run and must compile.

    A first fast run after a bare ``pip install`` compiles for minutes without a word; this
    says so on stderr first (see :mod:`istiolab.sim.fast.cache`), and a process pool's workers
    then load the compiled code instead of each compiling it. *scenario*: the command's
    scenario, to skip it when ``auto`` would run SimPy anyway.
    """
    from istiolab.sim.fast.cache import warm_for

    warm_for(engine, scenario, say)


def output_option(what: str) -> Any:
    """``--output/-o FILE``, "Write the *what* here instead of stdout" (see :func:`write_or_echo`).

    Use as ``Annotated[Path | None, output_option("YAML")] = None``.
    """
    return typer.Option("--output", "-o", help=f"Write the {what} here instead of stdout.")


def split_codes(suppress: list[str] | None) -> list[str]:
    """``-s IL101,IL104 -s IL201`` as the list of codes."""
    return [c for s in suppress or [] for c in s.split(",")]


# ------------------------------------------------------------------------------------ output


def format_findings(findings: list[Finding]) -> str:
    """Human table of findings: location, severity, code, resource, path, message and fix."""
    if not findings:
        return "no findings"
    lines = []
    for f in findings:
        head = f"{f.location}  {f.severity.value:<7} {f.code}  {f.resource}"
        if f.path:
            head += f"  {f.path}"
        lines.append(head)
        lines.append(f"    {f.message}")
        lines.append(f"    fix: {f.fix}")
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    lines.append(
        f"{len(findings)} finding(s): {counts[Severity.ERROR]} error(s), "
        f"{counts[Severity.WARNING]} warning(s), {counts[Severity.INFO]} info"
    )
    return "\n".join(lines)


def echo_findings(findings: Iterable[Finding]) -> None:
    """The findings table on stderr."""
    typer.echo(format_findings(list(findings)), err=True)


def echo_result(
    fmt: str,
    doc: Callable[[], object],
    table: Callable[[], str],
    json_default: Callable[[Any], Any] | None = None,
) -> None:
    """Print the result as indented JSON (``--format json``) or as the human table."""
    if fmt == "json":
        typer.echo(json.dumps(doc(), indent=2, default=json_default))
    else:
        typer.echo(table())


def check_writable(path: Path | None, option: str) -> None:
    """Exit 2 now, naming *path*, when *path* cannot be a file this command writes.

    Commands call it before doing the work, so a typo in an output path does not cost a whole
    run. What is checked: the folder exists, is a folder and is writable, and *path* is not a
    folder. Writing can still fail later (a full disk); :func:`write_text` says so then.

    Args:
        path: The output file (None: nothing to check).
        option: The option that named it (``--output``), for the message.
    """
    if path is None:
        return
    parent = path.parent
    if path.is_dir():
        raise usage_error(f"{option} {path}: is a folder; give a file name")
    if not parent.exists():
        raise usage_error(f"{option} {path}: folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise usage_error(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise usage_error(f"{option} {path}: not writable; check its permissions")


def write_text(path: Path, text: str, option: str) -> None:
    """Write *text* to *path* (UTF-8); a failure exits 2 with one line naming the path.

    Args:
        path: The output file.
        text: What to write.
        option: The option that named *path* (``--output``), for the message.
    """
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise usage_error(f"{option} {path}: cannot write: {err.strerror or err}") from None


def write_or_echo(text: str, output: Path | None, done: str, option: str = "--output") -> None:
    """Print *text* on stdout, or write it to *output* and say *done* on stderr.

    A file that cannot be written exits 2 with one line naming it (see :func:`write_text`).
    """
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text(output, text, option)
        typer.echo(done, err=True)


# ------------------------------------------------------------------------------------ inputs


def load_config(paths: list[str], strict: bool = False) -> ConfigSet:
    """Load resources; files that cannot be read are a usage error (exit 2)."""
    config = load(paths, strict=strict)
    unreadable = [f for f in config.findings if f.code == "IL005"]
    if unreadable:
        for f in unreadable:
            say(f.message)
        raise typer.Exit(EXIT_USAGE)
    return config


def profile_for(config: ConfigSet, name: str | None) -> str:
    """The ``--profile`` given (checked), else the one compile would pick for *config*."""
    if name is not None:
        try:
            return get_profile(name).name
        except ValueError as err:
            raise usage_error(str(err)) from None
    from istiolab.envoy.compile import default_profile

    return default_profile(config)


def compile_or_exit(
    paths: list[str], profile: str | None, gateway: str | None, port: int | None
) -> RouteTable:
    """Load and compile; invalid config prints the findings (exit 1), bad options exit 2.

    Any error-severity finding exits 1, whether validation or the conversion of legacy input
    found it.
    """
    from istiolab.envoy.compile import compile as do_compile
    from istiolab.errors import CompileError, ConfigError

    config = load_config(paths)
    prof = profile_for(config, profile)
    try:
        table = do_compile(config, prof, gateway, port=port)
    except ConfigError as err:
        echo_findings(err.findings)
        raise typer.Exit(EXIT_FAILED) from None
    except CompileError as err:
        raise usage_error(str(err)) from None
    # Compiling legacy input converts it first; an error the conversion found (not only one
    # validation found) still means the table is not what the user wrote: exit 1, as lint.
    errors = [f for f in table.findings if f.severity is Severity.ERROR]
    if errors:
        echo_findings(errors)
        raise typer.Exit(EXIT_FAILED)
    return table


def kustomize_build(directory: Path) -> str:
    """The output of ``kustomize build DIR`` (else ``kubectl kustomize DIR``), for ``-k DIR``.

    Exits 2 with one line when *directory* is not a folder, when neither tool is installed, or
    when the build fails (its last line of stderr is said).
    """
    if not directory.is_dir():
        raise usage_error(f"-k {directory}: not a folder with a kustomization.yaml")
    tool = shutil.which("kustomize")
    argv = [tool, "build", str(directory)] if tool else None
    if argv is None and shutil.which("kubectl"):
        argv = [str(shutil.which("kubectl")), "kustomize", str(directory)]
    if argv is None:
        raise usage_error(
            f"-k {directory}: neither kustomize nor kubectl is installed; install one, or run "
            "`kustomize build` yourself and pass the result with -f -"
        )
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise usage_error(f"-k {directory}: {Path(argv[0]).name} failed: {err}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise usage_error(f"-k {directory}: {Path(argv[0]).name} failed: {last[:300]}")
    return done.stdout
