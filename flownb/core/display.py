"""Views of core objects, registered by the layer that draws them.

Why a registry: a :class:`~flownb.core.blueprint.Blueprint` shows itself as a drawing in a
notebook, a :class:`~flownb.core.result.RunResult` as an HTML table, a batch or a run handle as a
live widget — but the code that draws lives in higher layers (:mod:`flownb.render`,
:mod:`flownb.notebook`), and the core must not import them, not even lazily. So the core's
convenience methods (``bp.to_dot()``, ``bp._repr_mimebundle_()``, ``result._repr_html_()``…) look
their view up here by name, and each layer registers its views when it is imported. ``import
flownb`` (the facade, which is part of no layer) imports the render layer and registers, for the
notebook layer's views, stand-ins that import :mod:`flownb.notebook` on first use — so a bare
``import flownb`` still imports no notebook module, and what a cell shows is what it always was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .errors import FlownbError

#: view name -> the function that makes it (``"blueprint.dot"``, ``"result.html"``, …)
_VIEWS: dict[str, Callable[..., Any]] = {}


def register(name: str, fn: Callable[..., Any], *, replace: bool = True) -> None:
    """Register ``fn`` as view ``name``; with ``replace=False`` only when nothing is there yet
    (the facade's stand-ins must not hide a layer that was imported first)."""
    if replace or name not in _VIEWS:
        _VIEWS[name] = fn


def view(name: str) -> Callable[..., Any]:
    """The function registered as ``name``; a clear error when the layer that owns it was never
    imported (only possible when a core module is used without ``import flownb``)."""
    fn = _VIEWS.get(name)
    if fn is None:
        layer = "flownb.render" if name.startswith("blueprint.") else "flownb.notebook"
        raise FlownbError(f"no view {name!r} is registered: import {layer} (or flownb) first")
    return fn


class RunView(Protocol):
    """What ``handle.widget()`` returns: a live view of one run — a Jupyter widget
    (``flownb.notebook.widget.RunWidget``) or, outside Jupyter, a terminal bar
    (``flownb.notebook.terminal.TqdmProgress``). Typed here so a type checker knows its API
    without the distributed layer importing the notebook's classes."""

    @property
    def value(self) -> int:
        """Nodes done."""
        ...

    @property
    def result(self) -> Any:
        """The run's RunResult once it ended, else None."""
        ...

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run ended and the view shows it; returns the RunResult."""
        ...

    def close(self) -> None:
        """Stop updating."""
        ...


__all__ = ["RunView", "register", "view"]
