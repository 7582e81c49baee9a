"""Rich representations: how the core's objects reach a notebook without importing it.

Core objects (a ``ConfigSet``, a ``Finding``, an ``Explanation``, a simulation ``Result`` …)
inherit :class:`HTMLRepr`. Its ``_repr_html_`` hands the object to the HTML renderer that the
presentation layer registers, so the core never imports notebook code: the renderer is found
through the ``istiolab.reprs`` entry point group (``html = "istiolab.lab.display:to_html"`` in
istiolab's own metadata), or set with :func:`register_html`. With no renderer,
``_repr_html_`` returns ``None`` and Jupyter shows the plain ``repr``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

__all__ = ["HTMLRepr", "html_renderer", "register_html"]

ENTRY_POINT_GROUP = "istiolab.reprs"

_renderer: Callable[[Any], str] | None = None
_looked_up = False


def register_html(render: Callable[[Any], str] | None) -> None:
    """Use *render* for every core object's HTML (``None``: look up the entry point again)."""
    global _renderer, _looked_up
    _renderer = render
    _looked_up = render is not None


def html_renderer() -> Callable[[Any], str] | None:
    """The registered HTML renderer, loading the ``istiolab.reprs`` entry point once."""
    global _renderer, _looked_up
    if not _looked_up:
        _looked_up = True
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name="html"):
            _renderer = ep.load()
            break
    return _renderer


class HTMLRepr:
    """Mixin: rich HTML in Jupyter through the registered renderer (plain ``repr`` without one)."""

    __slots__ = ()

    def _repr_html_(self) -> str | None:
        render = html_renderer()
        return None if render is None else render(self)
