"""``TqdmProgress``: the terminal front-end of a :class:`~flownb.notebook.progress.ProgressView`.

Outside a Jupyter kernel (a terminal, a script, ``python -m``, a CI log) widgets cannot render,
so ``show()`` / ``run.widget()`` / ``run_with_widget`` draw this bar instead; it is fed by the
same coalesced snapshots as the widget (at most ~10 redraws a second).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .progress import ProgressView, Snapshot

__all__ = ["TqdmProgress"]


class TqdmProgress:
    """A tqdm bar over a :class:`ProgressView` (plain tqdm to stderr in scripts)."""

    def __init__(self, view: ProgressView, *, file: TextIO | None = None,
                 notebook: bool = False) -> None:
        from ..core.extras import require

        tqdm = require("tqdm.auto" if notebook else "tqdm", "the terminal progress bar").tqdm
        snap = view.snapshot()
        self.view = view
        self.bar = tqdm(total=max(snap.reachable, 1), unit="node",
                        desc=snap.blueprint_id or "run", file=file or sys.stderr,
                        dynamic_ncols=True, leave=True)
        self.updates_sent = 0
        self._lock = threading.Lock()
        self._closed = False
        self._unsub = view.subscribe(self._apply, replay=True)

    def _apply(self, snap: Snapshot) -> None:
        with self._lock:
            if self._closed:
                return
            bar = self.bar
            bar.total = max(snap.reachable, 1)
            bar.n = snap.done
            running = snap.running
            post = snap.status if snap.finished else (", ".join(running[:3]) if running else "")
            bar.set_postfix_str(post, refresh=False)
            bar.refresh()
            self.updates_sent += 1

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._unsub()
        self.bar.close()

    # -- what RunHandle.widget() returns in a terminal: enough of the widget's API ------------------
    @property
    def value(self) -> int:
        """Nodes done (the bar's position)."""
        return int(self.bar.n)

    @property
    def result(self) -> Any:
        return self.view.result

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run ended and the bar shows it; returns the RunResult; closes the bar."""
        self.view.wait(timeout)
        if self.view.finished:
            self.close()
        return self.view.result

    def __repr__(self) -> str:
        snap = self.view.snapshot()
        return (f"<TqdmProgress run {snap.run_id} {snap.status} {snap.done}/{snap.reachable} nodes "
                f"(a terminal: the live widget needs Jupyter)>")
