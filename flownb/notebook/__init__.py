"""flownb in a notebook: local workers, live run views, node modules from cells.

* :class:`LocalCluster` - worker processes (or threads) tied to the kernel's lifetime;
* :func:`show` / :func:`watch` / :func:`widget_for` - a live widget in Jupyter, tqdm elsewhere;
  :func:`run_with_widget` - an in-process run with that view;
* ``%%flownb_module NAME`` - a cell as an importable node module (``%load_ext flownb.notebook``;
  registered automatically when this package is imported inside IPython).

Importing this package needs neither ipywidgets nor IPython (worker processes import it for the
watchdog): the widget is imported on first use.

Layer: notebook. It owns everything that needs Jupyter, ipywidgets, IPython or tqdm: widgets, the
local cluster, the cell magic and module shipping. It may import every layer below it (core,
engine, render, llm, distributed) — never ``flownb.cli``. Importing it registers its displays
(run results, batches, run handles) in :mod:`flownb.core.display` and the module-shipping hook.
"""

from __future__ import annotations

import sys
from typing import Any

from .cluster import LocalCluster, WorkerLogs
from .frontend import arun_with_widget, in_kernel, run_with_widget, show, watch, widget_for
from .magic import load_ipython_extension, register_magics
from .progress import ProgressView, Snapshot, TqdmProgress, result_html
from .views import VIEWS as _VIEWS  # noqa: F401 - registers this layer's views in flownb.core.display

__all__ = ["LocalCluster", "WorkerLogs", "show", "watch", "widget_for", "run_with_widget",
           "arun_with_widget", "in_kernel", "RunWidget", "ProgressView", "Snapshot",
           "TqdmProgress", "result_html", "load_ipython_extension", "register_magics"]


def __getattr__(name: str) -> Any:
    if name == "RunWidget":  # needs ipywidgets: imported when first asked for
        from .widget import RunWidget

        return RunWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _auto_register() -> None:
    """Register the magic when imported inside a running IPython (never imports IPython)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return
    try:
        shell = ipython.get_ipython()
        if shell is not None:
            register_magics(shell)
    except Exception:  # noqa: BLE001 - a missing magic must not break the import
        pass


_auto_register()
