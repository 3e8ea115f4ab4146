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

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..events import (
    CUSTOM,
    NODE_FAILED,
    NODE_FALLBACK,
    NODE_RETRYING,
    NODE_SKIPPED,
    NODE_STARTED,
    NODE_SUCCEEDED,
    RUN_FAILED,
    RUN_FINISHED,
    RUN_STARTED,
    TERMINAL,
    Event,
)

if TYPE_CHECKING:
    from ..blueprint import Blueprint
    from ..result import RunResult

__all__ = [
    "DONE_STATES",
    "NodeRow",
    "ProgressView",
    "Snapshot",
    "TqdmProgress",
    "details_html",
    "result_html",
    "table_html",
]

#: a node in one of these states counts as done for the progress bar
DONE_STATES = frozenset({"succeeded", "failed", "replaced"})
_ACTIVE = frozenset({"running", "retrying"})
#: child-run events kept for drawing in-process subflows (beyond this they are not drawn)
_MAX_CHILD_EVENTS = 20_000
#: custom events kept for the view (the count goes on)
_MAX_CUSTOM = 50
#: kept of a node's streamed LLM text (the tail: what is arriving now)
_MAX_TOKENS_CHARS = 8000
#: custom events that are not shown as events (they are shown their own way)
_TOKEN_EVENT, _USAGE_EVENT, _CHILDREN_EVENT = "llm_token", "llm_usage", "children"


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
    #: times the node was handed to another worker because its worker was lost (not visits)
    redeliveries: int = 0
    #: a one-line note for the table ("re-delivered to w2: worker w1 lost (lease expired)")
    note: str | None = None
    #: the LLM text streamed so far by this node (``llm_token`` custom events)
    tokens: str = ""


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
    #: the last custom events (``ctx.emit``): (node id, name, data), oldest first
    custom: tuple[tuple[str | None, str, Mapping[str, Any]], ...] = ()
    custom_count: int = 0
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0

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
        self._structural: set[tuple[str, int]] = set()  # (node, visit) that started child runs
        self._custom: collections.deque[tuple[str | None, str, Mapping[str, Any]]] = \
            collections.deque(maxlen=_MAX_CUSTOM)
        self._custom_count = 0
        self._llm_tokens = 0
        self._llm_cost = 0.0
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
        except Exception:
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
            visit = int(data.get("visit") or 0)
            # a visit is a new arrival at the node; a delivery > 1 of the same visit is either
            # the resume of a subflow/map after its children or a hand-over after a lost worker
            row.visits = max(row.visits, visit) if visit else row.visits + 1
            delivery = int(data.get("delivery") or 1)
            if delivery > 1 and (node, visit) not in self._structural:
                row.redeliveries += 1
                lost = row.worker or "?"
                now = str(data.get("worker") or "another worker")
                row.note = f"re-delivered to {now}: worker {lost} lost (lease expired)"
            row.attempts = max(1, int(data.get("attempt") or 1))
            row.started_at = e.ts
            row.tokens = ""
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
            self._fold_custom(node, data)

    def _fold_custom(self, node: str | None, data: Mapping[str, Any]) -> None:
        """``llm_token`` text goes to the node's row, ``llm_usage`` to the totals, a structural
        node's ``children`` marks its next delivery as a resume; the rest is kept as events."""
        name = str(data.get("name") or "custom")
        if name == _TOKEN_EVENT and node:
            row = self._row(node)
            row.tokens = (row.tokens + str(data.get("text") or ""))[-_MAX_TOKENS_CHARS:]
            return
        if name == _USAGE_EVENT:
            self._llm_tokens += int(data.get("total_tokens") or 0)
            self._llm_cost += float(data.get("cost_usd") or 0.0)
            return
        if name == _CHILDREN_EVENT and node:
            row = self._row(node)
            self._structural.add((node, row.visits or 1))
            return
        self._custom.append((node, name, dict(data)))
        self._custom_count += 1

    def _maybe_follow_child(self, store: Any, real_id: str, mapped_id: str, e: Event,
                            depth: int) -> list[threading.Thread]:
        """A distributed subflow's child run has its own event stream: follow it too, feeding
        its events under the in-process naming (``<run>/<node>.<visit>``) so its nodes are
        drawn inside the subflow's cluster. Map items are not drawn, so not followed."""
        data = e.data or {}
        if e.type != CUSTOM or data.get("name") != _CHILDREN_EVENT or not e.node_id or depth > 3:
            return []
        bp = self.blueprint
        if depth == 0 and bp is not None:
            node = next((n for n in bp.nodes if n.id == e.node_id), None)
            if node is None or node.uses != "subflow":
                return []
        elif int(data.get("count") or 0) != 1:
            return []
        with self._lock:
            visit = max((v for n, v in self._structural if n == e.node_id), default=1) \
                if depth == 0 else 1
        child_real = f"{real_id}.{e.node_id}.{visit}.0"
        child_mapped = f"{mapped_id}/{e.node_id}.{visit}"
        t = threading.Thread(target=self._consume_child, name="flownb-progress-child",
                             args=(store, child_real, child_mapped, depth + 1), daemon=True)
        t.start()
        return [t]

    def _consume_child(self, store: Any, real_id: str, mapped_id: str, depth: int) -> None:
        grandchildren: list[threading.Thread] = []
        last, since = "0-0", time.monotonic()
        try:
            while not self._closed.is_set():
                for e in store.follow(real_id, after=last, timeout_s=1.0):
                    last = e.id or last
                    self.feed(Event(e.type, mapped_id, e.node_id, e.data, e.ts, e.id))
                    grandchildren += self._maybe_follow_child(store, real_id, mapped_id, e, depth)
                    if e.type in TERMINAL:
                        return
                status = store.status(real_id)
                if status is not None:
                    since = time.monotonic()
                if (status is not None and status != "running") or time.monotonic() - since > 30:
                    return  # ended (terminal event trimmed) or never created / expired
        except Exception:  # noqa: BLE001 - drawing a subflow's inside is a bonus
            return
        finally:
            for t in grandchildren:
                t.join(5.0)

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
                seq=self._seq, custom=tuple(self._custom), custom_count=self._custom_count,
                llm_tokens=self._llm_tokens, llm_cost_usd=self._llm_cost)

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
                except Exception:
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
        children: list[threading.Thread] = []
        while not self._closed.is_set() and not terminal:
            for e in store.follow(handle.run_id, after=last, timeout_s=chunk_s):
                last = e.id or last
                self.feed(e)
                children += self._maybe_follow_child(store, handle.run_id, handle.run_id, e, 0)
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
        for t in children:  # subflow runs end before their parent: their last events are in
            t.join(5.0)
        try:
            result = store.load_result(handle.run_id)
        except Exception:  # noqa: BLE001 - the events already told the story
            with self._lock:
                self._finished = True
                self._changed()
            return
        self.finish(result)


# the front-ends' pieces live beside the model (re-exported here: they were defined here first)
from .panels import details_html, result_html, table_html
from .terminal import TqdmProgress
