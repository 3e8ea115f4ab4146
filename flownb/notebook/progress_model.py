"""The model of a run's progress: events folded into per-node rows, copied out as snapshots.

Why one fold for every front-end: the same per-node state (attempts, duration, worker, visits
versus re-deliveries), done / reachable counts, the error and the final outputs serve the
Jupyter widget, the terminal bar and tests. Folding is cheap and happens under a lock in
whatever thread produced the event; *when* front-ends are told is decided by
:class:`~flownb.notebook.progress.ProgressView`, which adds the coalescing on top of this model.
A run's :class:`~flownb.core.result.RunResult` (:meth:`RunModel.finish`) has the last word: events
may be trimmed or arrive out of order, the result is authoritative.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.events import (
    CUSTOM,
    NODE_FAILED,
    NODE_FALLBACK,
    NODE_RETRYING,
    NODE_SKIPPED,
    NODE_STARTED,
    NODE_SUCCEEDED,
    NODE_WAITING,
    RUN_FAILED,
    RUN_FINISHED,
    RUN_STARTED,
    RUN_WAITING,
    TERMINAL,
    Event,
)
from ..core.heat import add_taken, taken_of
from ..core.settle import settled
from .control_buttons import fold_control
from .progress_rows import _ACTIVE, DONE_STATES, NodeRow, Snapshot

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.result import RunResult


__all__ = ["CHILDREN_EVENT", "DONE_STATES", "NodeRow", "RunModel", "Snapshot"]


#: child-run events kept for drawing in-process subflows (beyond this they are not drawn)
_MAX_CHILD_EVENTS = 20_000
#: custom events kept for the view (the count goes on)
_MAX_CUSTOM = 50
#: kept of a node's streamed LLM text (the tail: what is arriving now)
_MAX_TOKENS_CHARS = 8000
#: custom events that are not shown as events (they are shown their own way)
_TOKEN_EVENT, _USAGE_EVENT, CHILDREN_EVENT = "llm_token", "llm_usage", "children"


class RunModel:
    """Folds a run's events into per-node rows (thread-safe: events may come from any thread).

    Subclasses learn of every change through :meth:`_changed` (called under the lock).
    """

    def __init__(self, blueprint: Blueprint | Mapping[str, Any] | None = None, *,
                 run_id: str | None = None) -> None:
        from ..core.blueprint import load

        self.blueprint: Blueprint | None = load(blueprint) if blueprint is not None else None  # type: ignore[arg-type]
        self.run_id = run_id
        self._lock = threading.RLock()
        self._rows: dict[str, NodeRow] = {}
        self._fallback_only: set[str] = set()
        self._activated: set[str] = set()  # fallback-only nodes that did take over
        self._done: set[str] = set()
        self._skipped: set[str] = set()
        self._rescued: dict[str, str] = {}  # replaced node -> its fallback
        self._child_events: list[Event] = []
        self._structural: set[tuple[str, int]] = set()  # (node, visit) that started child runs
        self._taken: dict[int, int] = {}  # the run's path so far: edge index -> times taken
        self._custom: collections.deque[tuple[str | None, str, Mapping[str, Any]]] = \
            collections.deque(maxlen=_MAX_CUSTOM)
        self._custom_count = 0
        self._llm_tokens = 0
        self._llm_cost = 0.0
        self.status = "pending"
        self.error: dict[str, Any] | None = None
        #: what answers a waiting run (``.waiting()`` / ``.resume()``): the RunHandle being
        #: followed, or a waiting in-process RunResult; the widget's approval form uses it
        self.resume_target: Any = None
        self._resumed_bus: Any = None
        self.result: RunResult | None = None
        self._events = 0
        self._started_ts: float | None = None
        self._finished_ts: float | None = None
        self._finished = False
        #: the last stream entry folded (a follower started again after a retry reads on from it)
        self.last_event_id = "0-0"
        self._seq = 0
        #: set when no more input is wanted (followers of a distributed run stop on it)
        self._closed = threading.Event()
        if self.blueprint is not None:
            self._init_rows(self.blueprint)

    def _init_rows(self, bp: Blueprint) -> None:
        for n in bp.nodes:
            self._rows.setdefault(n.id, NodeRow(n.id, uses=str(n.uses)))
        try:
            from ..core.graph import analyse

            g, _ = analyse(bp)
            self._fallback_only = set(getattr(g, "fallback_only", ()) or ())
        except Exception:  # noqa: BLE001 - a broken blueprint still gets a (flat) view
            self._fallback_only = set()

    def set_blueprint(self, blueprint: Blueprint | Mapping[str, Any]) -> None:
        """Give the view its blueprint later (e.g. once a distributed run's is loaded)."""
        from ..core.blueprint import load

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
        self.last_event_id = e.id or self.last_event_id
        if fold_control(self, e):  # pause / resume / retry (flownb.notebook.control_buttons)
            return
        if t == RUN_STARTED:
            self.status = "running"
            self._started_ts = e.ts
            return
        if self._started_ts is None:
            self._started_ts = e.ts
            self.status = "running"
        if self.status == "waiting" and t in (NODE_STARTED, NODE_SUCCEEDED):
            self.status = "running"  # answered: the run goes on
        if t == NODE_WAITING and node:
            row = self._row(node)
            row.state, row.prompt = "waiting", str(data.get("prompt") or "(no prompt)")
            return
        if t == RUN_WAITING:
            self.status = "waiting"
            return
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
            add_taken(self._taken, taken_of(data))
            row.duration_s += float(data.get("duration_s") or 0.0)
            row.attempts = int(data.get("attempt") or row.attempts or 1)
            row.action = data.get("action")
            row.output = data.get("output")
            row.prompt = None
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
            self._settle_rows()
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
        if name == CHILDREN_EVENT and node:
            row = self._row(node)
            self._structural.add((node, row.visits or 1))
            return
        self._custom.append((node, name, dict(data)))
        self._custom_count += 1


    def finish(self, result: RunResult) -> None:
        """The run's :class:`RunResult` (authoritative: status, error, outputs, node stats)."""
        with self._lock:
            self.result = result
            if self.run_id is None:
                self.run_id = result.run_id
            self.status = result.status
            if result.status == "waiting":  # parked, not finished: its answer resumes the view
                self._finish_waiting(result)
                return
            if result.error:
                self.error = dict(result.error)
            if result.taken_edges or result.nodes:  # the result's path is the whole one
                self._taken = dict(result.taken_edges)
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
            self._settle_rows()
            self._started_ts = self._started_ts or result.started_at or None
            self._finished_ts = result.finished_at or self._finished_ts or time.time()
            self._finished = True
            self._changed()

    def _settle_rows(self) -> None:
        """Under the lock: once the run ended, no row stays pending/running (the rule of
        flownb.core.settle, the same the RunResult's nodes follow)."""
        failed = (self.error or {}).get("node_id")
        for row in self._rows.values():
            row.state = settled(row.state, self.status, culprit=row.node_id == failed)
            if row.state == "skipped" and row.node_id not in self._done:
                self._skipped.add(row.node_id)

    def _finish_waiting(self, result: RunResult) -> None:
        """Under the lock: an in-process run returned parked on ``wait``/``approval`` nodes."""
        self.resume_target = result
        # flownb.run's on_event ends with the call: the answer's part of the run is read from
        # the engine's own bus (in process), so the view follows the resumed run
        bus = getattr(getattr(result._run, "engine", None), "bus", None)
        if bus is not None and self._resumed_bus is not bus:
            self._resumed_bus = bus
            bus.subscribe(self.feed)
        waits = result.waiting() if result._run is not None else []
        for w in waits:
            row = self._row(str(w["node"]))
            row.state, row.prompt = "waiting", str(w.get("prompt") or "(no prompt)")
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
            from ..render import states_from_events

            with contextlib.suppress(Exception):  # drawing children is a bonus
                states.update(states_from_events(self._child_events, run_id=self.run_id))
        if self.result is not None:  # authoritative, and complete when child events were not
            states.update(self.result.child_states)
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
                llm_tokens=self._llm_tokens, llm_cost_usd=self._llm_cost,
                taken=dict(self._taken))

    @property
    def finished(self) -> bool:
        with self._lock:
            return self._finished or self.status in ("succeeded", "failed", "cancelled", "expired")

    @property
    def closed(self) -> bool:
        """No more input wanted (:meth:`ProgressView.close`): followers stop reading."""
        return self._closed.is_set()

    def _changed(self) -> None:
        """Under the lock: something changed (subclasses also schedule a delivery)."""
        self._seq += 1

    def end_without_result(self, status: str | None = None) -> None:
        """The run ended but its result cannot be had (expired, unreadable): end the view with
        what the events told, optionally setting the status (``"expired"``)."""
        with self._lock:
            if status is not None:
                self.status = status
            self._finished = True
            self._changed()

    def structural_visit(self, node: str) -> int:
        """The latest visit of ``node`` that started child runs (1 when none did yet)."""
        with self._lock:
            return max((v for n, v in self._structural if n == node), default=1)
