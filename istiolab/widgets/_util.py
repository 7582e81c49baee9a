"""Small helpers shared by the widgets: the optional import, figures as PNG, HTML blocks."""

from __future__ import annotations

import html
import io
from typing import Any

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
