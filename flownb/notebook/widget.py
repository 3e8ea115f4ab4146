"""``RunWidget``: a live ipywidgets view of a run (graph coloured by node state, bar, table).

Threading rules this follows: every widget is created in the
thread that builds the ``RunWidget`` (the kernel's main thread in practice); the
:class:`~flownb.notebook.progress.ProgressView` flusher thread only *sets values* of existing
widgets. Messages to the front end from a thread go out even while another cell blocks (e.g. on
``handle.result()``), and the view keeps updating after the cell that displayed it finished,
because nothing here is scheduled on the kernel's event loop. The flusher delivers at most 10
snapshots a second, so the widget sends at most ~10 updates a second whatever the event rate
(:attr:`RunWidget.updates_sent` counts them), and the graph is redrawn (one ``dot`` call) only
when a node changed state.

One snapshot, one picture: every piece (status line, graph, table, live tokens/events, details)
is computed from the same snapshot *before* any widget value is set, and then all are set
back to back — the ``dot`` call no longer sits between the header and the graph, which is how
the header could say "succeeded 4/4" while the graph still showed a node running.

Big graphs stay usable: chains are drawn left to right, blueprints of more than 12 nodes are
drawn around the running nodes while the run goes on (:func:`flownb.render.focus_region`;
``focus=False`` draws them whole throughout) and whole once it ended, and the drawing scales
down to the cell's width only as far as its text stays >= 11 px (:func:`flownb.render.fit.embed`),
inside a box that scrolls sideways or past 60% of the window's height.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .cancel_button import CANCEL_TIP, settle_cancel_button
from .control_buttons import ControlButtons
from .panels import details_html, live_html, status_html, table_html
from .progress import ProgressView, Snapshot

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.result import RunResult

__all__ = ["RunWidget"]

_BAR_STYLE = {"succeeded": "success", "failed": "danger", "cancelled": "warning",
              "expired": "warning"}


def _graph_html(bp: Blueprint | None, states: Mapping[str, str], *, focus_live: bool = True,
                **draw: Any) -> str:
    """The blueprint drawn with ``states``: SVG via ``dot``, else the text listing. With
    ``focus_live`` a big graph is drawn around its running nodes (the run goes on), else whole
    (the run ended: the final picture shows every node); ``draw``: more
    :func:`flownb.render.to_dot` options (a run's path: ``taken``, ``fade``)."""
    if bp is None:
        return ""
    from .. import render
    from ..render.fit import embed

    try:
        focus = render.focus_region(bp, states) if focus_live else None
        svg = render.to_svg(bp, states=dict(states), focus=focus, **draw)
    except Exception as exc:  # noqa: BLE001 - a drawing problem must not stop the updates
        svg = None
        hint = f"(no drawing: {type(exc).__name__}: {exc})"
    else:
        hint = getattr(render, "INSTALL_HINT", "(install graphviz for a drawing)")
    if svg is not None:
        return embed(svg, max_height="60vh")  # text never below 11 px: the box scrolls
    try:
        listing_fn = getattr(render, "text_listing", None)
        if listing_fn is not None:
            listing = listing_fn(bp, dict(states))
        else:
            listing = "\n".join(f"{n.id}  [{states.get(n.id, 'pending')}]" for n in bp.nodes)
    except Exception as exc:  # noqa: BLE001
        listing = f"blueprint {bp.id!r} ({type(exc).__name__}: {exc})"
    return f"<pre class='flownb-graph'>{html.escape(listing)}\n{html.escape(hint)}</pre>"


def _lint_banner(bp: Blueprint | None) -> str:
    from ..core.lint_gate import findings

    lines = findings(bp) if bp is not None else []
    return "".join(f"<div class='flownb-lint' style='color:#8a6d3b'>lint {html.escape(x)}</div>"
                   for x in lines)


class RunWidget:
    """Live view of one run. Build it in the main thread; it updates itself from a thread.

    Attributes: ``progress`` (IntProgress: value = nodes done, max = nodes reachable),
    ``graph``, ``status``, ``table``, ``details`` (HTML widgets), ``box`` (the container),
    ``view`` (the :class:`ProgressView`), ``updates_sent``.
    """

    def __init__(self, view: ProgressView | None = None, *,
                 blueprint: Blueprint | Mapping[str, Any] | None = None, graph: bool = True,
                 cancel: Callable[[], Any] | None = None, focus: bool = True,
                 controls: Any = None) -> None:
        from ..core.extras import require

        W = require("ipywidgets", "the live run widget")
        self.view = view if view is not None else ProgressView(blueprint)
        if blueprint is not None and self.view.blueprint is None:
            self.view.set_blueprint(blueprint)
        self.draw_graph = graph
        #: draw a big graph around its running nodes while the run goes on (whole once it ended);
        #: False (here or set later) draws it whole throughout
        self.focus = focus
        snap = self.view.snapshot()
        self.progress = W.IntProgress(value=0, min=0, max=max(1, snap.reachable),
                                      description="0/0", bar_style="info",
                                      style={"description_width": "initial"})
        full = {"width": "100%", "max_width": "100%", "overflow": "auto"}
        self.status = W.HTML()
        self.graph = W.HTML(layout=W.Layout(**full))
        self.table = W.HTML(layout=W.Layout(**full))  # wide tables scroll inside the cell
        self.details = W.HTML(layout=W.Layout(**full))
        self.live = W.HTML(layout=W.Layout(**full))
        #: the approval form (flownb.notebook.approval) while the run waits for a person
        self.approval = W.VBox([])
        self._form_for: tuple[str, Any] | None = None
        self.form: Any = None  # the ApprovalForm shown, if any
        #: stops the run (``cancel``: a RunHandle's cancel, an in-process run's CancelToken);
        #: the batch view has had one, a single run's view now too; disabled once the run ended
        self.cancel_button = W.Button(description="Cancel", icon="stop", disabled=cancel is None,
                                      tooltip=CANCEL_TIP,
                                      layout=W.Layout(width="auto", flex="0 0 auto",
                                                      display="" if cancel else "none"))
        self.cancel_button.add_class("flownb-cancel")
        if cancel is not None:
            self.cancel_button.on_click(lambda _: self._cancel(cancel))
        #: one line per lint finding (flownb.core.lint_gate), shown above the graph
        self.lint = W.HTML(_lint_banner(self.view.blueprint))
        #: Pause / Resume / Retry failed node (``controls``: the run's handle; issue 22)
        self.controls = ControlButtons(W, controls, refollow=self._refollow(controls)) \
            if controls is not None else None
        extra = list(self.controls.buttons) if self.controls is not None else []
        self.box = W.VBox([W.HBox([self.progress, self.status, self.cancel_button, *extra]),
                           self.lint, self.approval, self.graph,
                           self.live, self.table, self.details], layout=W.Layout(width="100%"))
        self.updates_sent = 0
        self._lock = threading.Lock()
        self._drawn_states: dict[str, str] | None = None
        self._drawn_bp: Any = None
        self._drawn_live = True
        self._drawn_path: dict[str, Any] | None = None
        self._shown_at: tuple[int, int] | None = None
        self._apply(snap, count=False)
        self._unsub = self.view.subscribe(self._apply_update, replay=True)

    # -- updates (flusher thread) -------------------------------------------------------------------
    def _apply_update(self, snap: Snapshot) -> None:
        self._apply(snap, count=True)

    def _apply(self, snap: Snapshot, *, count: bool) -> None:
        """Set widget values from a snapshot (never creates or displays widgets)."""
        with self._lock:
            bp = self.view.blueprint
            focused = self.focus and not snap.finished
            path = {"taken": dict(snap.taken), "fade": snap.finished}  # stays after the run ends
            redraw = self.draw_graph and (snap.states != self._drawn_states or bp is not self._drawn_bp
                                          or focused != self._drawn_live or path != self._drawn_path)
            graph = _graph_html(bp, snap.states, focus_live=focused, **path) if redraw else None  # slow
            status, table = status_html(snap), table_html(snap)
            live, details = live_html(snap), details_html(snap)
            bar = self.progress
            new_max = max(1, snap.reachable)
            if bar.max != new_max:
                bar.value = min(bar.value, new_max)
                bar.max = new_max
            if bar.value != snap.done:
                bar.value = min(snap.done, new_max)
            desc = f"{snap.done}/{snap.reachable}"
            if bar.description != desc:
                bar.description = desc
            style = _BAR_STYLE.get(snap.status, "info") if snap.finished else "info"
            if bar.bar_style != style:
                bar.bar_style = style
            self._set(self.status, status)
            if graph is not None:
                self._set(self.graph, graph)
                self._drawn_states = dict(snap.states)
                self._drawn_bp = bp
                self._drawn_live = focused
                self._drawn_path = path
            self._set(self.live, live)
            self._set(self.table, table)
            self._set(self.details, details)
            self._show_approval(snap)
            if snap.finished and self.cancel_button.layout.display != "none":
                self.cancel_button.layout.display = "none"  # nothing left to cancel: out of the way
            settle_cancel_button(self.cancel_button, ended=snap.finished, what="the run")
            if self.controls is not None:
                self.controls.settle(snap)
                if not snap.finished and self.cancel_button.layout.display == "none" \
                        and self.cancel_button.tooltip == CANCEL_TIP:
                    self.cancel_button.layout.display = ""  # retried: running again
            if count:
                self.updates_sent += 1

    def _show_approval(self, snap: Snapshot) -> None:
        """While a node waits, the form answering it (one per waiting visit); gone once answered."""
        target = self.view.resume_target
        waiting = next((r for r in snap.rows if r.state == "waiting"), None)
        if waiting is None or target is None:
            if self.approval.children and snap.status != "waiting":
                self.approval.children = ()
                self._form_for = None
            return
        key = (waiting.node_id, waiting.visits)
        if self._form_for == key:
            return
        from ..core.errors import FlownbError
        from .approval import ApprovalForm

        try:
            form = ApprovalForm(target, waiting.node_id)
        except FlownbError:  # answered meanwhile (another process): the next event says so
            return
        self._form_for = key
        self.form = form
        self.approval.children = (form.widget,)

    @staticmethod
    def _set(w: Any, value: str) -> None:
        if w.value != value:
            w.value = value

    def _refollow(self, handle: Any) -> Callable[[], Any] | None:
        """After a retry, read a distributed run's events on (its follower ended with the run)."""
        if not hasattr(handle, "store"):
            return None  # in process: the view is fed from the run's bus, which goes on
        return lambda: self.view.follow(handle)

    def _cancel(self, cancel: Callable[[], Any]) -> None:
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"
        cancel()

    # -- display ----------------------------------------------------------------------------------------
    def display(self) -> RunWidget:
        """Display the live view in the current cell; returns self.

        A ``RunWidget`` returned by the same cell that displayed it (``show(h)`` as the last
        line) is not displayed a second time; displaying it from a later cell adds a view.
        """
        from IPython.display import display

        display(self.box)
        self._shown_at = _cell_id()
        return self

    def _ipython_display_(self) -> None:
        if self._shown_at is not None and self._shown_at == _cell_id():
            return
        self.display()

    def __repr__(self) -> str:
        snap = self.view.snapshot()
        return (f"<RunWidget run {snap.run_id} {snap.status} {snap.done}/{snap.reachable} nodes, "
                f"{self.updates_sent} updates>")

    # -- control ------------------------------------------------------------------------------------------
    @property
    def value(self) -> int:
        """Nodes done (the progress bar's value)."""
        return int(self.progress.value)

    @property
    def result(self) -> RunResult | None:
        return self.view.result

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the run ended and the widget shows its final state; returns the result."""
        self.view.wait(timeout)
        return self.view.result

    def close(self) -> None:
        """Stop updating and close the widgets."""
        self._unsub()
        self.view.close()
        self.box.close()


def _cell_id() -> tuple[int, int]:
    """Identifies the cell being executed (a repeated display in the same cell is skipped)."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        ip = None
    return (id(ip), int(getattr(ip, "execution_count", 0) or 0))
