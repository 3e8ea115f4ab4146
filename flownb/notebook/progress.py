"""The live model of a run: events in, coalesced snapshots out, for the widget and tqdm alike.

Why a model separate from the front-ends: the same fold of events (per-node state, attempts,
duration, worker; done / reachable counts; the error; the final outputs) serves the Jupyter
widget, the terminal bar and tests, and it is the one place that decides *how often* a front-end
is told. That matters because events can arrive by the thousand per second (a loop of no-op
nodes, a map over 10,000 items) while Jupyter Server throttles IOPub at 1000 messages/s and a
redraw of the graph costs a ``dot`` call: :class:`ProgressView` folds every event immediately
(cheap, under a lock, in whatever thread produced it) but hands snapshots to its subscribers
from one flusher thread, at most ``max_rate_hz`` (10) times per second whatever the event rate,
and always once more after the run ends so the final state is never lost.

Sources: ``view.feed`` is an ``on_event`` callback for in-process runs (``flownb.run(...,
on_event=view.feed)`` or ``EventBus.subscribe(view.feed)``); :meth:`ProgressView.follow` reads a
distributed run's Redis stream (blocking ``XREAD``) in a background thread, or in the calling
thread with :meth:`ProgressView.consume`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ..events import (CUSTOM, NODE_FAILED, NODE_FALLBACK, NODE_RETRYING, NODE_SKIPPED,
                      NODE_STARTED, NODE_SUCCEEDED, RUN_CANCELLED, RUN_FAILED, RUN_FINISHED,
                      RUN_STARTED, TERMINAL, Event)

if TYPE_CHECKING:
    from ..blueprint import Blueprint
    from ..result import RunResult

__all__ = ["NodeRow", "Snapshot", "ProgressView", "TqdmProgress", "table_html", "details_html",
           "result_html", "DONE_STATES"]

#: a node in one of these states counts as done for the progress bar
DONE_STATES = frozenset({"succeeded", "failed", "replaced"})
_ACTIVE = frozenset({"running", "retrying"})
#: child-run events kept for drawing in-process subflows (beyond this they are not drawn)
_MAX_CHILD_EVENTS = 20_000


@dataclass
class NodeRow:
    """What the views show for one node of the run's blueprint."""

    node_id: str
    uses: str = ""
    state: str = "pending"
    visits: int = 0
    attempts: int = 0
    duration_s: float = 0.0
    worker: str | None = None
    started_at: float | None = None
    action: str | None = None
    output: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of the model, handed to front-ends (safe to read from any thread)."""

    run_id: str | None
    blueprint_id: str
    status: str  # pending | running | succeeded | failed | cancelled | expired
    rows: tuple[NodeRow, ...]
    done: int
    reachable: int
    total: int
    states: Mapping[str, str]  # for render.to_svg (subflow children as "node/child")
    error: Mapping[str, Any] | None
    result: RunResult | None
    events: int
    elapsed_s: float
    finished: bool
    seq: int  # bumped by every change

    @property
    def running(self) -> list[str]:
        return [r.node_id for r in self.rows if r.state in _ACTIVE]


class ProgressView:
    """Folds a run's events into per-node rows; notifies subscribers at most ``max_rate_hz``/s.

    Thread-safe: events may come from any thread (the runtime's loop, a follower thread).
    """

    def __init__(self, blueprint: Blueprint | Mapping[str, Any] | None = None, *,
                 run_id: str | None = None, max_rate_hz: float = 10.0) -> None:
        from ..blueprint import load

        self.blueprint: Blueprint | None = load(blueprint) if blueprint is not None else None  # type: ignore[arg-type]
        self.run_id = run_id
        self.interval_s = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rows: dict[str, NodeRow] = {}
        self._fallback_only: set[str] = set()
        self._activated: set[str] = set()  # fallback-only nodes that did take over
        self._done: set[str] = set()
        self._skipped: set[str] = set()
        self._rescued: dict[str, str] = {}  # replaced node -> its fallback
        self._child_events: list[Event] = []
        self.status = "pending"
        self.error: dict[str, Any] | None = None
        self.result: RunResult | None = None
        self._events = 0
        self._started_ts: float | None = None
        self._finished_ts: float | None = None
        self._finished = False
        self._seq = 0
        self._subs: list[Callable[[Snapshot], None]] = []
        self._dirty = False
        self._delivered_seq = -1
        self._final_delivered = False
        self._last_flush = 0.0
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()
        self._follower: threading.Thread | None = None
        #: snapshots handed to subscribers so far (the coalescing is measured on this)
        self.flushes = 0
        if self.blueprint is not None:
            self._init_rows(self.blueprint)

    def _init_rows(self, bp: Blueprint) -> None:
        for n in bp.nodes:
            self._rows.setdefault(n.id, NodeRow(n.id, uses=str(n.uses)))
        try:
            from ..graph import analyse

            g, _ = analyse(bp)
            self._fallback_only = set(getattr(g, "fallback_only", ()) or ())
        except Exception:  # noqa: BLE001 - a broken blueprint still gets a (flat) view
            self._fallback_only = set()

    def set_blueprint(self, blueprint: Blueprint | Mapping[str, Any]) -> None:
        """Give the view its blueprint later (e.g. once a distributed run's is loaded)."""
        from ..blueprint import load

        with self._lock:
            self.blueprint = load(blueprint)  # type: ignore[arg-type]
            self._init_rows(self.blueprint)
            self._changed()

    # -- input -------------------------------------------------------------------------------------
    def feed(self, event: Event) -> None:
        """Fold one event (an ``on_event`` callback: cheap, never raises)."""
        try:
            with self._lock:
                self._fold(event)
                self._events += 1
                self._changed()
        except Exception:  # noqa: BLE001 - a view must never break the run it watches
            import logging

            logging.getLogger("flownb.notebook").exception("ProgressView: cannot fold %r", event)

    __call__ = feed

    def _row(self, node: str) -> NodeRow:
        row = self._rows.get(node)
        if row is None:
            row = self._rows[node] = NodeRow(node)
        return row

    def _fold(self, e: Event) -> None:
        rid = e.run_id
        if self.run_id is None:
            self.run_id = rid
        if rid != self.run_id:
            if rid.startswith(f"{self.run_id}/") and len(self._child_events) < _MAX_CHILD_EVENTS:
                self._child_events.append(e)  # an in-process subflow: drawn as a cluster
            return
        t, node, data = e.type, e.node_id, e.data or {}
        if t == RUN_STARTED:
            self.status = "running"
            self._started_ts = e.ts
            return
        if self._started_ts is None:
            self._started_ts = e.ts
            self.status = "running"
        if t == NODE_STARTED and node:
            row = self._row(node)
            row.state = "running"
            row.visits = max(row.visits + 1, int(data.get("visit") or 0))
            row.attempts = max(1, int(data.get("attempt") or 1))
            row.started_at = e.ts
            if data.get("worker"):
                row.worker = str(data["worker"])
            self._skipped.discard(node)
            if data.get("replaces"):
                self._activated.add(node)
        elif t == NODE_RETRYING and node:
            row = self._row(node)
            row.state = "retrying"
            row.attempts = int(data.get("attempt") or row.attempts) + 1
            err = data.get("error")
            if isinstance(err, Mapping):
                row.error = f"{err.get('type', 'Error')}: {err.get('message', '')}"
        elif t == NODE_SUCCEEDED and node:
            fb = self._rescued.pop(node, None)
            row = self._row(fb) if fb is not None else self._row(node)
            row.state = "succeeded"
            row.duration_s += float(data.get("duration_s") or 0.0)
            row.attempts = int(data.get("attempt") or row.attempts or 1)
            row.action = data.get("action")
            row.output = data.get("output")
            if data.get("worker"):
                row.worker = str(data["worker"])
            self._done.add(row.node_id)
        elif t == NODE_FAILED and node:
            row = self._row(node)
            err = data.get("error")
            if isinstance(err, Mapping):
                row.error = f"{err.get('type', 'Error')}: {err.get('message', '')}"
            row.attempts = int(data.get("attempt") or row.attempts or 1)
            if row.started_at is not None:
                row.duration_s += max(0.0, e.ts - row.started_at)
            fb = data.get("fallback")
            if fb:
                row.state = "replaced"
                self._rescued[node] = str(fb)
            else:
                row.state = "failed"
            self._done.add(node)
        elif t == NODE_FALLBACK and node:
            self._activated.add(node)
            self._row(node).state = "running"
            rep = data.get("replaces")
            if rep:
                self._row(str(rep)).state = "replaced"
                self._rescued[str(rep)] = node
        elif t == NODE_SKIPPED and node:
            row = self._row(node)
            if node not in self._done:
                row.state = "skipped"
                self._skipped.add(node)
        elif t in TERMINAL:
            self._finished_ts = e.ts
            if t == RUN_FINISHED:
                self.status = "succeeded"
            else:
                self.status = "failed" if t == RUN_FAILED else "cancelled"
                for row in self._rows.values():
                    if row.state in _ACTIVE:
                        row.state = "cancelled"
                if t == RUN_FAILED:
                    err = data.get("error")
                    self.error = dict(err) if isinstance(err, Mapping) else {"message": str(err)}
                    failed = node or (self.error or {}).get("node_id")
                    if failed:
                        row = self._row(str(failed))
                        if row.state != "replaced":
                            row.state = "failed"
                        row.error = row.error or self.error.get("message")
                        self._done.add(str(failed))
                    for rep, fb in list(self._rescued.items()):
                        if fb == failed:
                            del self._rescued[rep]
        elif t == CUSTOM:
            pass

    def finish(self, result: RunResult) -> None:
        """The run's :class:`RunResult` (authoritative: status, error, outputs, node stats)."""
        with self._lock:
            self.result = result
            if self.run_id is None:
                self.run_id = result.run_id
            self.status = result.status
            if result.error:
                self.error = dict(result.error)
            for nid, st in (result.nodes or {}).items():
                row = self._row(nid)
                if row.state == "replaced":
                    continue
                if st.status and st.status != "pending":
                    row.state = st.status
                elif row.state in _ACTIVE and result.status != "running":
                    row.state = "cancelled"
                row.visits = max(row.visits, st.visits)
                row.attempts = max(row.attempts, st.attempts)
                if st.duration_s:
                    row.duration_s = st.duration_s
                row.worker = st.worker or row.worker
                if st.error:
                    row.error = st.error
                if st.status in DONE_STATES:
                    self._done.add(nid)
                if st.status == "skipped" and nid not in self._done:
                    self._skipped.add(nid)
                if nid in result.outputs and row.output is None:
                    row.output = result.outputs[nid]
            self._started_ts = self._started_ts or result.started_at or None
            self._finished_ts = result.finished_at or self._finished_ts or time.time()
            self._finished = True
            self._changed()

    # -- state -------------------------------------------------------------------------------------
    def _reachable(self) -> int:
        """Nodes the run can still reach: all, minus skipped ones and unused fallbacks; once it
        succeeded, exactly the nodes that ran (the rest were not on the path it took)."""
        if self.status == "succeeded":
            return len(self._done)
        unused_fallbacks = len(self._fallback_only - self._activated - self._done)
        reachable = len(self._rows) - len(self._skipped - self._done) - unused_fallbacks
        return max(reachable, len(self._done))

    def _states(self) -> dict[str, str]:
        states = {n: r.state for n, r in self._rows.items() if r.state != "pending"}
        if self._child_events and self.run_id:
            try:
                from ..render import states_from_events

                states.update(states_from_events(self._child_events, run_id=self.run_id))
            except Exception:  # noqa: BLE001 - drawing children is a bonus
                pass
        return states

    def snapshot(self) -> Snapshot:
        with self._lock:
            start = self._started_ts
            end = self._finished_ts if self._finished_ts else time.time()
            bp_id = self.blueprint.id if self.blueprint is not None else (
                self.result.blueprint_id if self.result is not None else "")
            return Snapshot(
                run_id=self.run_id, blueprint_id=bp_id, status=self.status,
                rows=tuple(dataclasses.replace(r) for r in self._rows.values()),
                done=len(self._done), reachable=self._reachable(), total=len(self._rows),
                states=self._states(), error=dict(self.error) if self.error else None,
                result=self.result, events=self._events,
                elapsed_s=max(0.0, end - start) if start else 0.0,
                finished=self._finished or self.status in ("succeeded", "failed", "cancelled",
                                                           "expired"),
                seq=self._seq)

    @property
    def finished(self) -> bool:
        with self._lock:
            return self._finished or self.status in ("succeeded", "failed", "cancelled", "expired")

    # -- output: coalesced notifications ---------------------------------------------------------------
    def subscribe(self, fn: Callable[[Snapshot], None], *, replay: bool = False) -> Callable[[], None]:
        """Call ``fn(snapshot)`` from the flusher thread, at most ``max_rate_hz`` times a second.

        With ``replay`` the current snapshot is delivered soon even if nothing changes.
        """
        with self._lock:
            self._subs = [*self._subs, fn]
            if replay:
                self._changed()

        def unsubscribe() -> None:
            with self._lock:
                self._subs = [s for s in self._subs if s is not fn]

        return unsubscribe

    def _changed(self) -> None:
        """Under the lock: something changed; make sure the flusher will deliver it."""
        self._seq += 1
        self._dirty = True
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_loop, name="flownb-progress-flush",
                                             daemon=True)
            self._flusher.start()
        self._cond.notify_all()

    def _flush_loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                while not self._dirty:
                    if self._closed.is_set() or (self._final_delivered and self.finished):
                        return
                    if time.monotonic() - idle_since > 5.0:
                        return  # idle: _changed() starts a new flusher when needed
                    self._cond.wait(1.0)
            wait = self._last_flush + self.interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # coalesce: everything folded meanwhile goes out in one update
            with self._cond:
                self._dirty = False
                subs = self._subs
                snap = self.snapshot()
            self._last_flush = time.monotonic()
            for fn in subs:
                try:
                    fn(snap)
                except Exception:  # noqa: BLE001 - one broken front-end must not stop the others
                    import logging

                    logging.getLogger("flownb.notebook").exception("progress subscriber %r", fn)
            with self._cond:
                self.flushes += 1
                self._delivered_seq = snap.seq
                if snap.finished:
                    self._final_delivered = True
                self._cond.notify_all()
            idle_since = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run finished *and* its final snapshot reached the subscribers."""
        deadline = None if timeout is None else time.monotonic() + timeout
        follower = self._follower
        if follower is not None and follower is not threading.current_thread():
            follower.join(timeout)  # a distributed run: its result is loaded after the last event
            if deadline is not None and time.monotonic() >= deadline and follower.is_alive():
                return False
        with self._cond:
            while not (self.finished and self._delivered_seq >= self._seq and not self._dirty):
                if self._closed.is_set():
                    return self.finished
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(0.5, left))
                if self._flusher is None or not self._flusher.is_alive():
                    if self._dirty:
                        self._changed()
        return True

    def close(self) -> None:
        """Stop following and flushing (subscribers get no more updates)."""
        self._closed.set()
        with self._cond:
            self._cond.notify_all()

    # -- distributed runs --------------------------------------------------------------------------------
    def follow(self, handle: Any) -> threading.Thread:
        """Follow a :class:`~flownb.distributed.client.RunHandle` in a daemon thread."""
        t = threading.Thread(target=self.consume, args=(handle,), name="flownb-progress-follow",
                             daemon=True)
        self._follower = t
        t.start()
        return t

    def consume(self, handle: Any, *, chunk_s: float = 1.0) -> None:
        """Read the run's event stream in *this* thread until the run ends (or :meth:`close`)."""
        if self.run_id is None:
            self.run_id = handle.run_id
        if self.blueprint is None:
            try:
                self.set_blueprint(handle.blueprint)
            except Exception:  # noqa: BLE001 - expired run: rows come from the events
                pass
        store = handle.store
        last = "0-0"
        terminal = False
        while not self._closed.is_set() and not terminal:
            for e in store.follow(handle.run_id, after=last, timeout_s=chunk_s):
                last = e.id or last
                self.feed(e)
                if e.type in TERMINAL:
                    terminal = True
                    break
                if self._closed.is_set():
                    return
            if not terminal:
                status = store.status(handle.run_id)
                if status is None:
                    with self._lock:
                        self.status = "expired"
                        self._finished = True
                        self._changed()
                    return
                if status != "running":
                    terminal = True  # its terminal event was trimmed: the result says the rest
        try:
            result = store.load_result(handle.run_id)
        except Exception:  # noqa: BLE001 - the events already told the story
            with self._lock:
                self._finished = True
                self._changed()
            return
        self.finish(result)


# -- HTML pieces (used by the widget; plain functions so they are testable without ipywidgets) ----------

_BADGE = {"pending": "#9e9e9e", "running": "#1e88e5", "retrying": "#fb8c00",
          "succeeded": "#43a047", "failed": "#e53935", "skipped": "#9e9e9e",
          "cancelled": "#616161", "replaced": "#ad1457", "expired": "#616161"}


def _fmt_duration(s: float) -> str:
    if s <= 0:
        return ""
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.2f} s"
    return f"{s / 60:.1f} min"


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _badge(state: str) -> str:
    color = _BADGE.get(state, "#616161")
    return (f"<span style='color:{color};font-weight:600'>{html.escape(state)}</span>")


def table_html(snap: Snapshot, *, max_rows: int = 200) -> str:
    """The per-node table: node, uses, state, visits, attempts, duration, worker, output."""
    esc = html.escape
    rows = snap.rows
    more = ""
    if len(rows) > max_rows:  # show the interesting ones first
        order = {"running": 0, "retrying": 0, "failed": 1, "replaced": 1}
        rows = tuple(sorted(rows, key=lambda r: order.get(r.state, 2)))[:max_rows]
        more = f"<div>… {len(snap.rows) - max_rows} more nodes</div>"
    body = []
    for r in rows:
        detail = r.error if r.state in ("failed", "replaced", "retrying") and r.error else _short(r.output)
        body.append(
            f"<tr><td><code>{esc(r.node_id)}</code></td><td>{esc(r.uses)}</td>"
            f"<td>{_badge(r.state)}</td><td style='text-align:right'>{r.visits or ''}</td>"
            f"<td style='text-align:right'>{r.attempts or ''}</td>"
            f"<td style='text-align:right'>{esc(_fmt_duration(r.duration_s))}</td>"
            f"<td>{esc(r.worker or '')}</td><td>{esc(_short(detail))}</td></tr>")
    return ("<div style='max-height:320px;overflow:auto'><table class='flownb-nodes'>"
            "<thead><tr><th>node</th><th>uses</th><th>state</th><th>visits</th><th>attempts</th>"
            "<th>duration</th><th>worker</th><th>output / error</th></tr></thead><tbody>"
            + "".join(body) + "</tbody></table>" + more + "</div>")


def status_html(snap: Snapshot) -> str:
    esc = html.escape
    run = f"run <code>{esc(snap.run_id)}</code> " if snap.run_id else ""
    bp = f"({esc(snap.blueprint_id)}) " if snap.blueprint_id else ""
    running = snap.running
    now = f" — running: {esc(', '.join(running[:5]))}{'…' if len(running) > 5 else ''}" if running else ""
    return (f"{run}{bp}{_badge(snap.status)} {snap.done}/{snap.reachable} nodes, "
            f"{snap.elapsed_s:.2f} s{now}")


def details_html(snap: Snapshot) -> str:
    """The error with its traceback, or the final output(s) once the run succeeded."""
    esc = html.escape
    parts = []
    err = snap.error
    if err:
        where = f" in node <code>{esc(str(err.get('node_id')))}</code>" if err.get("node_id") else ""
        attempt = f" (attempt {err.get('attempt')})" if err.get("attempt") else ""
        parts.append(f"<div style='color:#c62828'><b>{esc(str(err.get('type', 'Error')))}</b>"
                     f"{where}{attempt}: {esc(str(err.get('message', '')))}</div>")
        tb = err.get("traceback")
        if tb:
            parts.append(f"<details><summary>traceback</summary><pre>{esc(str(tb))}</pre></details>")
    res = snap.result
    if res is not None and res.status == "succeeded":
        try:
            text = json.dumps(res.output, indent=2, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(res.output)
        if len(text) > 20_000:
            text = text[:20_000] + "\n…"
        parts.append(f"<div><b>output</b></div><pre style='max-height:240px;overflow:auto'>"
                     f"{esc(text)}</pre>")
    return "".join(parts)


def result_html(result: RunResult) -> str:
    """A static summary of a finished run (proposed ``RunResult._repr_html_``)."""
    view = ProgressView(run_id=result.run_id)
    view.finish(result)
    snap = view.snapshot()
    view.close()
    return (f"<div class='flownb-result'>{status_html(snap)}{table_html(snap)}"
            f"{details_html(snap)}</div>")


# -- terminal front-end --------------------------------------------------------------------------------

class TqdmProgress:
    """A tqdm bar over a :class:`ProgressView` (plain tqdm to stderr in scripts)."""

    def __init__(self, view: ProgressView, *, file: TextIO | None = None,
                 notebook: bool = False) -> None:
        from ..extras import require

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
