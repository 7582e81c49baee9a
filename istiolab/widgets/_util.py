"""Small helpers shared by the widgets: the optional import, figures as PNG, HTML blocks."""

from __future__ import annotations

import html
import io
import os
from collections.abc import Mapping
from typing import Any

ENGINE_ENV = "ISTIOLAB_ENGINE"
"""Environment variable naming the widgets' simulation engine (``auto``, ``simpy``, ``fast``)."""

INSTALL_HINT = "pip install 'istiolab[lab]'  (jupyterlab and ipywidgets)"


def require_ipywidgets() -> Any:
    """Import ipywidgets, or fail with the command that installs it.

    Raises:
        ImportError: When ipywidgets is not installed.
    """
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"istiolab.widgets needs ipywidgets: {INSTALL_HINT}") from err
    return ipywidgets


def widget_engine(engine: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The simulation engine a widget runs on: *engine* if given, else the machine's default.

    The default is ``auto`` (the compiled engine: a slider move re-simulates in hundredths of a
    second) unless the host declares a memory limit in ``MEM_LIMIT``, as Binder does: loading
    numba costs about 120 MiB in the process that runs it, which a 2 GiB Binder shared by a
    dozen workshop kernels cannot spare, so there the widgets run SimPy. ``ISTIOLAB_ENGINE``
    overrides both.

    Args:
        engine: An explicit engine (one :func:`~istiolab.sim.engine.simulate` runs), or None.
        environ: The environment to read (default ``os.environ``).

    Returns:
        ``auto``, ``simpy`` or ``fast``.

    Raises:
        ValueError: When *engine*, or ``ISTIOLAB_ENGINE``, is not an engine.
    """
    from istiolab.lab.memory import declared_limit_bytes
    from istiolab.limits import truncate
    from istiolab.sim.engine import ENGINES

    env = os.environ if environ is None else environ
    named = env.get(ENGINE_ENV, "").strip()
    if engine is not None:
        chosen, where = engine, ""
    elif named:
        chosen, where = named, f" ({ENGINE_ENV})"
    else:
        chosen, where = ("simpy" if declared_limit_bytes(env) else "auto"), ""
    if chosen not in ENGINES:
        got = truncate(chosen, 40)
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {got!r}{where}")
    return chosen


def png(fig: Any, dpi: int = 80) -> bytes:
    """A matplotlib Figure as PNG bytes (for an ``ipywidgets.Image``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def pre(text: str) -> str:
    """Text as an escaped, scrollable ``<pre>`` block."""
    return (
        '<pre style="max-height:28em;overflow:auto;margin:0;font-size:12px;line-height:1.3">'
        f"{html.escape(text)}</pre>"
    )


def message(text: str, *, error: bool = False) -> str:
    """One line of status text (red for errors)."""
    colour = "#b00020" if error else "#333333"
    return f'<span style="color:{colour}">{html.escape(text)}</span>'
