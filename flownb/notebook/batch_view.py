"""The aggregate live view of a :class:`~flownb.engine.batch.Batch`: a widget in Jupyter, tqdm elsewhere.

One view for the whole batch (not one per run): a bar of runs done, the counts (succeeded,
failed, running, pending), runs per second, a per-node latency table, LLM tokens and cost, the
first failures with their error, and a Cancel button.

How often it updates is decided here, not by the event rate: a ticker thread reads the batch's
snapshot at most :data:`MAX_UPDATES_PER_S` times a second and only when something changed, so a
batch of 500 runs emitting thousands of events a second still sends a handful of IOPub
messages a second (Jupyter Server drops output above 1000/s). Widgets are created in the thread
that builds the view (the kernel's main thread); the ticker only sets values of existing widgets
(the rule :mod:`flownb.notebook.widget` follows). A retry of the failures wakes the ticker again.
"""

from __future__ import annotations

import html
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from ..engine.batch_stats import BatchSnapshot
from .batch_graph import heat_html
from .cancel_button import CANCEL_TIP, settle_cancel_button
from .frontend import in_kernel
from .panels import STATE_CSS
from .text_colours import STYLE

if TYPE_CHECKING:
    from ..engine.batch import Batch

__all__ = [
    "MAX_UPDATES_PER_S",
    "BatchTqdm",
    "BatchWidget",
    "display_batch",
    "errors_html",
    "nodes_html",
    "show_batch",
    "status_html",
    "status_line",
]

MAX_UPDATES_PER_S = 5.0
_COLORS = {"pending": "#9e9e9e", "running": "#1e88e5", "succeeded": "#43a047",
           "failed": "#e53935", "cancelled": "#616161"}
_BAR_STYLE = {"succeeded": "success", "failed": "danger", "cancelled": "warning"}


class _Ticker:
    """Calls ``apply(snapshot)`` from a thread, ≤ ``rate`` times a second, when it changed;
    delivers the final snapshot and stops when the batch ends; restarts for a retry."""

    def __init__(self, batch: Batch, apply: Callable[[BatchSnapshot], None],
                 rate: float = MAX_UPDATES_PER_S) -> None:
        self.batch = batch
        self.apply = apply
        self.interval_s = 1.0 / rate
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_seq = -1
        batch._on_pass.append(self.start)
        self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name="flownb-batch-view")
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            snap = self.batch.snapshot()
            if snap.seq != self._last_seq:
                self._last_seq = snap.seq
                try:
                    self.apply(snap)
                except Exception:
                    import logging

                    logging.getLogger("flownb.notebook").exception("batch view update failed")
            if snap.finished:
                with self._lock:
                    if self.batch.done() and self.batch.snapshot().seq == self._last_seq:
                        self._thread = None
                        return
                continue
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self.start in self.batch._on_pass:
            self.batch._on_pass.remove(self.start)

    def join(self, timeout: float | None = None) -> None:
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)


# -- text and HTML (plain functions: testable without ipywidgets) ----------------------------------

def _money(x: float | None) -> str:
    if x is None:
        return "cost unknown"
    if x == 0:  # the offline fake model (or a free one): "$0.0000" reads like a bug
        return "—"
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def status_line(s: BatchSnapshot) -> str:
    """``120/200 done: 115 succeeded, 5 failed, 32 running, 48 pending · 12.3 runs/s · …``."""
    parts = [f"{s.done}/{s.total} done: {s.succeeded} succeeded, {s.failed} failed"]
    if s.cancelled:
        parts[0] += f", {s.cancelled} cancelled"
    parts[0] += f", {s.running} running, {s.pending} pending"
    parts.append(f"{s.runs_per_s:.1f} runs/s, {s.elapsed_s:.1f} s")
    if s.llm_calls:
        cost = _money(s.cost_usd)
        if s.cost_unknown_calls and s.cost_usd is not None:
            cost += f" (+{s.cost_unknown_calls} calls of unknown price)"
        parts.append(f"{s.llm_calls} LLM calls, {s.total_tokens:,} tokens "
                     f"({s.prompt_tokens:,} in, {s.completion_tokens:,} out), {cost}")
    return " · ".join(parts)


def status_html(s: BatchSnapshot, blueprint_id: str = "") -> str:
    color = STATE_CSS.get(s.status, _COLORS.get(s.status, "#616161"))  # >= 4.5:1 in both themes
    bp = f"<code>{html.escape(blueprint_id)}</code> " if blueprint_id else ""
    return (f"{STYLE}<div class='flownb-batch-status'>{bp}<span style='color:{color};font-weight:600'>"
            f"{html.escape(s.status)}</span> {html.escape(status_line(s))}</div>")


def nodes_html(s: BatchSnapshot) -> str:
    """Per-node latency over all runs: visits, failures, mean, median, max."""
    if not s.nodes:
        return ""
    from .tables import duration, styled_table

    rows = [[f"<code>{html.escape(n.node_id)}</code>", str(n.count), str(n.failed or ""),
             duration(n.mean_s), duration(n.median_s), duration(n.max_s)] for n in s.nodes]
    return styled_table(["node", "runs", "failed", "mean", "median", "max"], rows,
                        numeric=range(1, 6), cls="flownb-batch-nodes")


def errors_html(s: BatchSnapshot, limit: int = 10) -> str:
    """The first failures (row index and error) and how to re-run them."""
    if not s.errors:
        return ""
    from .panels import _short

    # long errors end at a word (the whole one: batch.failures), never "could not co…"
    items = "".join(f"<li>row {i}: {html.escape(_short(msg, 300))}</li>" for i, msg in s.errors[:limit])
    more = f"<li>… {s.failed - limit} more</li>" if s.failed > limit else ""
    return (f"<div style='color:#c62828'><b>{s.failed} failed</b> "
            f"(<code>batch.failures</code>; <code>batch.retry_failed()</code> re-runs them)"
            f"<ul>{items}{more}</ul></div>")


# -- front-ends --------------------------------------------------------------------------------------

class _View:
    batch: Batch
    _ticker: _Ticker

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the batch ended and the view shows its final state."""
        ok = self.batch.wait(timeout)
        self._ticker.join(timeout)
        return ok


class BatchWidget(_View):
    """Live ipywidgets view of a batch. Attributes: ``progress`` (IntProgress, value = runs
    done, max = rows), ``status``, ``nodes``, ``errors`` (HTML), ``cancel_button``, ``box``,
    ``updates_sent``."""

    def __init__(self, batch: Batch, *, rate: float = MAX_UPDATES_PER_S) -> None:
        from ..core.extras import require

        W = require("ipywidgets", "the live batch widget")  # noqa: N806
        self.batch = batch
        snap = batch.snapshot()
        self.progress = W.IntProgress(value=0, min=0, max=max(1, snap.total),
                                      description=f"0/{snap.total}", bar_style="info",
                                      style={"description_width": "initial"})
        self.cancel_button = W.Button(description="Cancel batch", button_style="warning",
                                      icon="stop", tooltip=CANCEL_TIP, layout=W.Layout(width="auto"))
        self.cancel_button.on_click(lambda _b: batch.cancel())
        self.status = W.HTML()
        self.nodes = W.HTML()
        self.errors = W.HTML()
        #: the graph as a heat map of the batch (flownb.notebook.batch_graph); ``heat`` its data
        self.graph = W.HTML()
        self.heat: dict[str, Any] = {}
        self.box = W.VBox([W.HBox([self.progress, self.cancel_button]), self.status, self.graph,
                           self.nodes, self.errors])
        self.updates_sent = 0
        self._lock = threading.Lock()
        self._apply(snap, count=False)
        self._ticker = _Ticker(batch, self._apply, rate)

    def _apply(self, snap: BatchSnapshot, *, count: bool = True) -> None:
        with self._lock:
            bar = self.progress
            if bar.max != max(1, snap.total):
                bar.max = max(1, snap.total)
            if bar.value != snap.done:
                bar.value = snap.done
            desc = f"{snap.done}/{snap.total}"
            if bar.description != desc:
                bar.description = desc
            style = _BAR_STYLE.get(snap.status, "info") if snap.finished else "info"
            if bar.bar_style != style:
                bar.bar_style = style
            settle_cancel_button(self.cancel_button, ended=snap.finished or snap.done >= snap.total,
                                 what="every run of the batch")
            heat = snap.heat.to_dict()
            if heat != self.heat:  # redraw (one dot call) only when a count changed
                self.graph.value = heat_html(self.batch.blueprint, snap.heat)
                self.heat = heat
            for w, value in ((self.status, status_html(snap, self.batch.blueprint.id)),
                             (self.nodes, nodes_html(snap)), (self.errors, errors_html(snap))):
                if w.value != value:
                    w.value = value
            if count:
                self.updates_sent += 1

    def display(self) -> BatchWidget:
        from IPython.display import display

        display(self.box)
        return self

    def _ipython_display_(self) -> None:
        self.display()

    def close(self) -> None:
        self._ticker.stop()
        self.box.close()

    def __repr__(self) -> str:
        return f"<BatchWidget {status_line(self.batch.snapshot())}; {self.updates_sent} updates>"


class BatchTqdm(_View):
    """A tqdm bar of runs done (counts, runs/s and tokens in its postfix); closes at the end."""

    def __init__(self, batch: Batch, *, file: TextIO | None = None,
                 rate: float = MAX_UPDATES_PER_S) -> None:
        from ..core.extras import require

        tqdm = require("tqdm", "the batch progress bar").tqdm
        self.batch = batch
        snap = batch.snapshot()
        self.bar = tqdm(total=snap.total, unit="run", desc=batch.blueprint.id,
                        file=file or sys.stderr, dynamic_ncols=True, leave=True)
        self.updates_sent = 0
        self._lock = threading.Lock()
        self._ticker = _Ticker(batch, self._apply, rate)

    def _apply(self, snap: BatchSnapshot) -> None:
        with self._lock:
            bar = self.bar
            bar.n = snap.done
            post = f"failed={snap.failed} running={snap.running}"
            if snap.llm_calls:
                post += f" tokens={snap.total_tokens}"
            if snap.finished:
                post = f"{snap.status} {post}"
            bar.set_postfix_str(post, refresh=False)
            bar.refresh()
            self.updates_sent += 1

    def close(self) -> None:
        self._ticker.stop()
        with self._lock:
            self.bar.close()


def show_batch(batch: Batch, *, file: TextIO | None = None) -> BatchWidget | BatchTqdm:
    """Display the live view and return it at once (a widget in a kernel, tqdm elsewhere)."""
    if in_kernel():
        return BatchWidget(batch).display()
    return BatchTqdm(batch, file=file)


def display_batch(batch: Batch) -> None:
    """What ``batch`` as a cell's last line shows: the live widget (its repr outside Jupyter)."""
    if in_kernel():
        BatchWidget(batch).display()
    else:
        print(repr(batch))
