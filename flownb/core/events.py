"""Typed run events and the tiny bus that carries them.

One event model for every executor: the in-process runtime publishes :class:`Event` objects on an
:class:`EventBus`; the distributed executor writes the same fields to the run's Redis stream
(``Event.to_fields`` / ``Event.from_fields``); the notebook widget and the tqdm bar consume either.
Building an event costs time, so the runtime only builds them when someone listens
(``EventBus.active``) — the chain of no-op nodes should not pay for an audience it does not have.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RUN_STARTED = "run_started"
RUN_FINISHED = "run_finished"
RUN_FAILED = "run_failed"
RUN_CANCELLED = "run_cancelled"
NODE_STARTED = "node_started"
NODE_SUCCEEDED = "node_succeeded"
NODE_FAILED = "node_failed"
NODE_RETRYING = "node_retrying"
NODE_SKIPPED = "node_skipped"
NODE_FALLBACK = "node_fallback"
CUSTOM = "custom"
NODE_WAITING = "node_waiting"  # a visit parked for a person's answer (flownb.engine.waiting)
RUN_WAITING = "run_waiting"    # nothing left to do but answers: the run is parked

#: events after which a run never changes again
TERMINAL = frozenset({RUN_FINISHED, RUN_FAILED, RUN_CANCELLED})
ALL_TYPES = frozenset({RUN_STARTED, RUN_FINISHED, RUN_FAILED, RUN_CANCELLED, NODE_STARTED,
                       NODE_SUCCEEDED, NODE_FAILED, NODE_RETRYING, NODE_SKIPPED, NODE_FALLBACK,
                       CUSTOM, NODE_WAITING, RUN_WAITING})


@dataclass(slots=True)
class Event:
    """Something that happened in a run. ``data`` is JSON-able (attempt, duration_s, error, …)."""

    type: str
    run_id: str
    node_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    id: str | None = None  # the stream entry id when read from Redis

    def to_fields(self) -> dict[str, str]:
        """Flat string fields for a Redis stream entry."""
        return {"t": self.type, "n": self.node_id or "", "ts": repr(self.ts),
                "d": json.dumps(self.data, default=str, separators=(",", ":"))}

    @classmethod
    def from_fields(cls, run_id: str, fields: dict[Any, Any], entry_id: str | None = None) -> Event:
        f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
             for k, v in fields.items()}
        try:
            data = json.loads(f.get("d") or "{}")
        except ValueError:
            data = {"raw": f.get("d")}
        return cls(type=f.get("t", "?"), run_id=run_id, node_id=f.get("n") or None, data=data,
                   ts=float(f.get("ts") or 0.0), id=entry_id)

    @classmethod
    def all_from_fields(cls, run_id: str, fields: dict[Any, Any], entry_id: str | None = None) -> list[Event]:
        """The events of one stream entry, in order: one, or two when the entry carries a second
        in fields ``t2``, ``n2``, ``d2`` (the distributed COMMIT writes a node's success and the
        start of the successor it claims inline as one entry: one command instead of two). Both
        carry the entry's id, so reading on after that id (XREAD) skips both, as it should."""
        first = cls.from_fields(run_id, fields, entry_id)
        second = fields.get("t2", fields.get(b"t2"))
        if second is None:
            return [first]
        f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
             for k, v in fields.items()}
        return [first, cls.from_fields(run_id, {"t": f["t2"], "n": f.get("n2"), "ts": f.get("ts"),
                                                "d": f.get("d2")}, entry_id)]

    def __str__(self) -> str:
        node = f" {self.node_id}" if self.node_id else ""
        if self.type == CUSTOM:  # a node's own progress report: its name and data are the point
            rest = {k: v for k, v in self.data.items() if k != "name"}
            body = f" {json.dumps(rest, default=str, separators=(',', ':'))}" if rest else ""
            return f"{self.type}{node} {self.data.get('name', '?')}{body}"
        extra = ""
        if "attempt" in self.data and self.data["attempt"] != 1:
            extra += f" attempt={self.data['attempt']}"
        if "error" in self.data:
            err = self.data["error"]
            extra += f" error={err.get('message') if isinstance(err, dict) else err}"
        return f"{self.type}{node}{extra}"


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out to subscribers; a failing subscriber never breaks the run."""

    __slots__ = ("_subs", "_lock", "active")

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()
        self.active = False

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add ``fn``; returns a function that removes it again."""
        with self._lock:
            self._subs = [*self._subs, fn]
            self.active = True

        def unsubscribe() -> None:
            with self._lock:
                self._subs = [s for s in self._subs if s is not fn]
                self.active = bool(self._subs)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for fn in self._subs:
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - observers must not fail the run
                import logging

                logging.getLogger("flownb.events").exception("event subscriber %r failed", fn)
