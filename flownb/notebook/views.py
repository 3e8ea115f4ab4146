"""The notebook layer's views of lower-layer objects, registered in :mod:`flownb.core.display`.

Why here: a run result's HTML table, a batch's live view and a run handle's widget are drawn by
this layer, but the classes they belong to live below it (core, engine, distributed), which must
not import it. Importing :mod:`flownb.notebook` imports this module, which registers them; before
that, ``import flownb`` has registered stand-ins that import this layer on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..core.display import register
from .batch_view import BatchWidget, display_batch, show_batch
from .frontend import widget_for
from .progress import result_html

VIEWS: dict[str, Callable[..., Any]] = {
    "result.html": result_html,      # RunResult._repr_html_
    "batch.widget": BatchWidget,     # Batch.widget()
    "batch.show": show_batch,        # Batch.show()
    "batch.display": display_batch,  # Batch._ipython_display_
    "run.widget": widget_for,        # RunHandle.widget()
}

for _name, _fn in VIEWS.items():
    register(_name, _fn)

__all__ = ["VIEWS"]


if TYPE_CHECKING:  # both live views satisfy the protocol RunHandle.widget() is typed with
    from ..core.display import RunView
    from .terminal import TqdmProgress
    from .widget import RunWidget

    _views: tuple[RunView, ...] = (cast(RunWidget, None), cast(TqdmProgress, None))
