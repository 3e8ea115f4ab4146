"""Hooks a worker calls before each job, installed by the layer that needs them.

Why: node modules defined in notebook cells (``%%flownb_module``) are shipped to worker processes
as files (``FLOWNB_MODULE_PATH``), and a worker must pick up edits before each job. That logic
belongs to the notebook layer (:mod:`flownb.notebook.modules`), which the distributed layer must
not import — so the worker calls :func:`before_job`, and the notebook's hook is installed here:
by ``import flownb`` (the facade, as a stand-in that imports the notebook layer on the first job
that needs it, as the worker always did) and by :mod:`flownb.notebook.modules` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: hook name -> hook; keyed, so that installing the same hook twice replaces it
_HOOKS: dict[str, Callable[[Any], object]] = {}


def install(name: str, hook: Callable[[Any], object], *, replace: bool = True) -> None:
    """Call ``hook(runtime)`` before each job; ``replace=False`` keeps a hook already there."""
    if replace or name not in _HOOKS:
        _HOOKS[name] = hook


def before_job(runtime: Any) -> None:
    """Run every installed hook for the worker's ``runtime`` (in installation order)."""
    for hook in list(_HOOKS.values()):
        hook(runtime)


__all__ = ["before_job", "install"]
