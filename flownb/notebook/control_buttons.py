"""The run widget's Pause / Resume / Retry-failed-node buttons (issue 22), and what the view
folds from the run-control events.

The rule is the Cancel button's (:mod:`flownb.notebook.cancel_button`): a person reads an enabled
button as "this applies now", so each is enabled only when its control would be accepted, and a
disabled one says why in its tooltip. A click that is refused anyway (another process acted
first) puts the refusal in the tooltip instead of raising in the widget's callback.

The model side: ``run_paused`` / ``run_resumed`` set the shown status, and ``run_retried`` turns a
finished run back into a running one (its failed node pending again), so the same widget follows
a retried run on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.errors import FlownbError
from ..core.events import Event

__all__ = ["ControlButtons", "failed_node", "fold_control", "local_view"]

PAUSE_TIP = "start no new node; the nodes running now finish"
RESUME_TIP = "continue the paused run"
RETRY_TIP = "run {node} again in place (the nodes before it are kept)"


def failed_node(snap: Any) -> str | None:
    """The node a retry would re-run: the run's failed node, else the first failed row."""
    node = (snap.error or {}).get("node_id")
    if node:
        return str(node)
    return next((r.node_id for r in snap.rows if r.state == "failed"), None)


def _rule(button: Any, enabled: bool, tip: str) -> None:
    if button.disabled == enabled:
        button.disabled = not enabled
    if button.tooltip != tip:
        button.tooltip = tip


class ControlButtons:
    """Pause, Resume and Retry for a run handle (distributed or :class:`LocalHandle`)."""

    def __init__(self, W: Any, handle: Any, *, refollow: Callable[[], Any] | None = None) -> None:
        self.handle = handle
        self._refollow = refollow
        lay = W.Layout(width="auto", flex="0 0 auto")
        self.pause = W.Button(description="Pause", icon="pause", layout=lay, disabled=True)
        self.resume = W.Button(description="Resume", icon="play", layout=lay, disabled=True)
        self.retry = W.Button(description="Retry failed node", icon="redo", layout=lay,
                              disabled=True)
        for b, name in ((self.pause, "pause"), (self.resume, "resume"), (self.retry, "retry")):
            b.add_class(f"flownb-{name}")
        self.pause.on_click(lambda _: self._act(self.pause, lambda: handle.pause()))
        self.resume.on_click(lambda _: self._act(self.resume, lambda: handle.resume_run()))
        self.retry.on_click(lambda _: self._act(self.retry, self._retry))
        self._node: str | None = None
        self.buttons = (self.pause, self.resume, self.retry)

    def _retry(self) -> None:
        if self._node is None:
            return
        self.handle.retry(self._node)
        if self._refollow is not None:  # a distributed view stopped reading at the end
            self._refollow()

    def _act(self, button: Any, fn: Callable[[], Any]) -> None:
        button.disabled = True  # the next snapshot settles it again
        try:
            fn()
        except FlownbError as exc:
            button.tooltip = str(exc)

    def settle(self, snap: Any) -> None:
        """Enable each button only when its control applies to ``snap`` (why not: tooltip)."""
        st = snap.status
        _rule(self.pause, st == "running" and not snap.finished,
              PAUSE_TIP if st == "running" and not snap.finished else
              "paused already" if st == "paused" else f"nothing to pause: the run is {st}")
        _rule(self.resume, st == "paused",
              RESUME_TIP if st == "paused" else f"not paused (the run is {st})")
        node = failed_node(snap) if st in ("failed", "cancelled") and snap.finished else None
        self._node = node
        _rule(self.retry, node is not None,
              RETRY_TIP.format(node=node) if node else
              "nothing to retry: only a failed or cancelled run's node is retried")


def fold_control(model: Any, e: Event) -> bool:
    """Fold a run-control event into a RunModel (under its lock); False for other events."""
    t = e.type
    if t == "run_paused":
        if not model._finished:
            model.status = "paused"
        return True
    if t == "run_resumed":
        if model.status == "paused":
            model.status = "running"
        return True
    if t == "run_retried":
        model.status = "running"
        model._finished = False
        model._finished_ts = None
        model.result = None
        model.error = None
        if e.node_id:
            row = model._row(e.node_id)
            row.state = "pending"
            row.error = None
            model._done.discard(e.node_id)
        return True
    return t == "state_patched"


def local_view(handle: Any) -> Any:
    """A ProgressView of a :class:`~flownb.engine.local_controls.LocalHandle`: its past events
    replayed, new ones fed from its bus, each drive's result folded in when it ends."""
    from .progress import ProgressView

    view = ProgressView(handle.blueprint, run_id=handle.run_id)
    for e in list(handle.events):
        view.feed(e)
    handle.bus.subscribe(view.feed)
    handle.on_result.append(view.finish)
    if handle.wait(0):
        view.finish(handle.result(raise_on_error=False))
    return view
