"""The fast engine's event loop compiled ahead of time: a plain extension module, no numba.

numba's just-in-time path costs every process that runs the fast engine about 120 MiB (numba,
llvmlite and LLVM loaded, the cached kernel linked) and about a second before its first run
(``docs/engines.md``). On Binder that is over a notebook's 300 MiB, and in a process pool each
worker pays it. The same :func:`~istiolab.sim.fast.kernel.run_until`, compiled once ahead of
time with numba's ``pycc`` into an extension module, needs only numpy to import: a few MiB and a
few milliseconds.

Building it needs numba and a C compiler (``pycc`` compiles and links a small C module around
the machine code); running it needs neither. :func:`build` writes it next to this package (or
into the user's cache folder when the package's is read-only), named after a digest of the
kernel's source, the layout and the interpreter: a module built for other sources is never
loaded. :func:`load` returns its ``run_until``, or None when there is none (the engine then
runs numba's just-in-time kernel, as before).

The module targets a CPU every x86-64 machine of the last fifteen years has (``x86-64-v2``;
elsewhere the generic CPU of the architecture), not the build machine's: a Binder image is
built on one machine and run on others, and an instruction the running CPU lacks would kill
the kernel.

numba marks ``pycc`` as pending deprecation, with no replacement released yet: when a numba
drops it, :func:`build` fails with a message and the just-in-time kernel runs as before.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from istiolab.errors import SettingError
from istiolab.limits import truncate

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCES = ("kernel.py", "layout.py")
"""The files whose bytes name the module: the kernel's code and its compile-time constants."""

KERNEL_ENV = "ISTIOLAB_FAST_KERNEL"
"""Environment variable choosing the kernel: ``aot`` (the default: the module when built) or
``jit`` (numba's, even when the module is built)."""

_loaded: dict[str, Callable[..., int] | None] = {}
_problems: dict[str, str] = {}  # module name -> why its file did not load


class BuildError(RuntimeError):
    """The ahead-of-time module could not be built (numba or a C compiler missing, or failed)."""


def module_name() -> str:
    """The module's name for the kernel's sources as they are and this interpreter.

    Returns:
        ``_kernel_aot_`` and 16 hex digits of a SHA-256 over :data:`SOURCES`, the Python
        version and the machine (the extension's file name adds the ABI tag).
    """
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((PACKAGE_DIR / name).read_bytes())
    digest.update(f"{sys.implementation.cache_tag} {platform.machine()}".encode())
    return f"_kernel_aot_{digest.hexdigest()[:16]}"


def _suffix() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def cache_dir() -> Path:
    """The user's folder for the module when the package's own is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "istiolab" / "aot"


def candidates() -> list[Path]:
    """Where the module for the current sources may be, in the order :func:`load` looks."""
    file = module_name() + _suffix()
    return [PACKAGE_DIR / file, cache_dir() / file]


def requested() -> str:
    """The kernel :data:`KERNEL_ENV` asks for: ``aot`` (also when unset) or ``jit``.

    Raises:
        SettingError: When it is set to anything else (a misspelt ``jit`` must not pass
            silently); the command line reports it as a usage error (exit 2).
    """
    value = os.environ.get(KERNEL_ENV, "").strip()
    if value in ("", "aot", "jit"):
        return value or "aot"
    raise SettingError(f"{KERNEL_ENV} must be aot or jit, got {truncate(value, 40)!r}")


def load() -> Callable[..., int] | None:
    """The ahead-of-time ``run_until`` for the kernel's current sources, or None.

    Looked up once per process. A module that is missing, built for other sources, or that
    fails to import (another numpy ABI, a broken file) is None, and the engine falls back to
    numba's just-in-time kernel; so is :data:`KERNEL_ENV` set to ``jit``.

    Raises:
        SettingError: When :data:`KERNEL_ENV` is neither ``aot`` nor ``jit``.
    """
    if requested() == "jit":
        return None
    name = module_name()
    if name in _loaded:
        return _loaded[name]
    found: Callable[..., int] | None = None
    for path in candidates():
        if not path.is_file():
            continue
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            found = module.run_until
            break
        except Exception as err:  # an unloadable file is as good as none: the JIT kernel runs
            # ... but it was built to be used (by postBuild, make test or the compile command),
            # so the reason is kept for whoever says which kernel runs (cache.warm)
            _problems[name] = f"{path.name}: {truncate(f'{type(err).__name__}: {err}', 200)}"
            continue
    _loaded[name] = found
    return found


def problem() -> str | None:
    """Why a module built for the kernel's current sources did not load, or None.

    None when it loaded, when there is none, or when :data:`KERNEL_ENV` asks for ``jit``. A
    module stops loading when numpy's binary interface changed under it (a numpy upgrade) or
    its file is broken; numba's kernel then runs, with its 120 MiB. The text names the file
    and the error (cut short).
    """
    if requested() == "jit" or load() is not None:
        return None
    return _problems.get(module_name())


def available() -> bool:
    """Whether :func:`load` finds the module (no numba is imported to answer)."""
    return load() is not None


def _target_cpu() -> str:
    # x86-64-v2: SSE4.2 and POPCNT, every x86-64 server CPU since about 2009; LLVM's generic
    # CPU elsewhere. Never the build machine's own CPU (see the module's docstring).
    return "x86-64-v2" if platform.machine().lower() in ("x86_64", "amd64") else ""


def build(args: Sequence[Any]) -> Path:
    """Compile the ahead-of-time module for the current sources (minutes), unless it is there.

    Args:
        args: Arguments of one ``run_until`` call, as :mod:`~istiolab.sim.fast.run` passes
            them (:func:`istiolab.sim.fast.cache.kernel_args`): the module's one signature
            is their numba types (every table C-contiguous, of a fixed dtype and rank).

    Returns:
        The module's path.

    Raises:
        BuildError: When numba, its ``pycc`` or a C compiler is missing, or the compile fails
            (the reason in the message); nothing is left half-written.
    """
    if load() is not None:  # built and loadable (a broken file is built over)
        return next(path for path in candidates() if path.is_file())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycc's pending deprecation (see the docstring)
            pycc: Any = importlib.import_module("numba.pycc")  # untyped: no stubs
            numba: Any = importlib.import_module("numba")

            from istiolab.sim.fast import kernel
    except ImportError as err:
        raise BuildError(f"numba's pycc is not importable: {err}") from None
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise BuildError("no C compiler on PATH (cc or gcc): numba's pycc links with one")
    name = module_name()
    target = PACKAGE_DIR if os.access(PACKAGE_DIR, os.W_OK) else cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="istiolab-aot-") as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cc = pycc.CC(name)
                cc.output_dir = tmp
                cc.target_cpu = _target_cpu()
                signature = numba.types.int64(*(numba.typeof(arg) for arg in args))
                cc.export("run_until", signature)(kernel.run_until.py_func)
                cc.compile()
        except Exception as err:  # pycc's and distutils' errors have no common base
            reason = truncate(f"{type(err).__name__}: {err}", 400)  # a compiler's whole stderr
            raise BuildError(f"the ahead-of-time compile failed: {reason}") from None
        built = Path(tmp) / (name + _suffix())
        if not built.is_file():
            raise BuildError(f"pycc wrote no {built.name}")
        part = target / (built.name + ".part")
        shutil.copy2(built, part)
        os.replace(part, target / built.name)  # atomic: a reader sees all of it or nothing
    _loaded.pop(name, None)
    _problems.pop(name, None)
    for old in target.glob("_kernel_aot_*"):  # modules of older sources are never loaded again
        if old.name != built.name and not old.name.endswith(".part"):  # another build's
            old.unlink(missing_ok=True)
    return target / built.name


__all__ = [
    "KERNEL_ENV",
    "BuildError",
    "available",
    "build",
    "cache_dir",
    "candidates",
    "load",
    "module_name",
    "problem",
    "requested",
]
