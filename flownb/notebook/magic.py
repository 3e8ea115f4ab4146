"""``%%flownb_module NAME``: turn a cell into an importable node module for every worker.

Why: RQ workers cannot run functions defined in ``__main__``; nodes must live in a module the
workers can import (Hamilton's ``%%cell_to_module`` idea). The magic writes the cell to
``<session dir>/NAME.py`` (:func:`flownb.notebook.modules.session_dir`, on the kernel's
``sys.path`` and on LocalCluster workers' ``PYTHONPATH``), imports or reloads it in the kernel so
its ``@flownb.node`` registrations refresh, and binds the module to ``NAME`` in the notebook.
Process workers pick the new version up before their next job
(:func:`flownb.notebook.modules.before_job`); thread workers share the kernel's modules.

Load it with ``%load_ext flownb.notebook``; importing :mod:`flownb.notebook` inside IPython
registers it too.
"""

from __future__ import annotations

import shlex
from typing import Any

from .modules import load_module, write_module

__all__ = ["flownb_module", "load_ipython_extension", "register_magics"]


def flownb_module(line: str, cell: str, shell: Any = None) -> Any:
    """The cell magic. ``line``: ``NAME [--dir DIR] [--quiet]``."""
    args = shlex.split(line)
    if not args:
        raise ValueError("usage: %%flownb_module NAME [--dir DIR] [--quiet]")
    name = args[0]
    directory = None
    quiet = False
    rest = args[1:]
    while rest:
        opt = rest.pop(0)
        if opt == "--dir" and rest:
            directory = rest.pop(0)
        elif opt in ("--quiet", "-q"):
            quiet = True
        else:
            raise ValueError(f"%%flownb_module: unknown option {opt!r}")
    if not name.isidentifier():
        raise ValueError(f"%%flownb_module: module name must be a Python identifier, got {name!r}")
    path = write_module(name, cell, directory)
    mod = load_module(name, path)
    if shell is not None:
        shell.user_ns[name] = mod
    if not quiet:
        print(f"flownb: wrote {path} and (re)loaded module {name!r}")
    return None


def register_magics(shell: Any) -> None:
    """Register ``%%flownb_module`` on an IPython shell (idempotent)."""

    def magic(line: str, cell: str) -> Any:
        return flownb_module(line, cell, shell)

    magic.__doc__ = flownb_module.__doc__
    shell.register_magic_function(magic, magic_kind="cell", magic_name="flownb_module")


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext flownb.notebook``."""
    register_magics(shell)
