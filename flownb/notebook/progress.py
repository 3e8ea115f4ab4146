"""The live view of a run: a :class:`RunModel` that hands coalesced snapshots to front-ends.

Why coalescing lives here: events can arrive by the thousand per second (a loop of no-op
nodes, a map over 10,000 items) while Jupyter Server throttles IOPub at 1000 messages/s and a
redraw of the graph costs a ``dot`` call. :class:`ProgressView` folds every event immediately
(:mod:`~flownb.notebook.progress_model`: cheap, under a lock, in whatever thread produced it)
but hands snapshots to its subscribers from one flusher thread, at most ``max_rate_hz`` (10)
times per second whatever the event rate, and always once more after the run ends so the final
state is never lost.

Sources: ``view.feed`` is an ``on_event`` callback for in-process runs (``flownb.run(...,
on_event=view.feed)`` or ``EventBus.subscribe(view.feed)``); :meth:`ProgressView.follow` reads a
distributed run's Redis stream (:mod:`~flownb.notebook.progress_follow`) in a background thread,
or in the calling thread with :meth:`ProgressView.consume`. The front-ends themselves are
:mod:`~flownb.notebook.widget` (Jupyter), :mod:`~flownb.notebook.terminal` (tqdm) and the HTML
pieces of :mod:`~flownb.notebook.panels`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import progress_follow
from .progress_model import DONE_STATES, NodeRow, RunModel, Snapshot

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint

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


class ProgressView(RunModel):
    """Folds a run's events into per-node rows; notifies subscribers at most ``max_rate_hz``/s.

    Thread-safe: events may come from any thread (the runtime's loop, a follower thread).
    """

    def __init__(self, blueprint: Blueprint | Mapping[str, Any] | None = None, *,
                 run_id: str | None = None, max_rate_hz: float = 10.0) -> None:
        super().__init__(blueprint, run_id=run_id)
        self.interval_s = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
        self._cond = threading.Condition(self._lock)
        self._subs: list[Callable[[Snapshot], None]] = []
        self._dirty = False
        self._delivered_seq = -1
        self._final_delivered = False
        self._last_flush = 0.0
        self._flusher: threading.Thread | None = None
        self._follower: threading.Thread | None = None
        #: snapshots handed to subscribers so far (the coalescing is measured on this)
        self.flushes = 0

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
        super()._changed()
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
            # a distributed run: its result is loaded after the last event; a parked run's
            # follower goes on reading (for the resume), so waiting ends there too
            while follower.is_alive() and self.status != "waiting":
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                follower.join(0.2 if left is None else min(0.2, left))
        with self._cond:
            while not ((self.finished or self.status == "waiting")
                       and self._delivered_seq >= self._seq and not self._dirty):
                if self._closed.is_set():
                    return self.finished
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(0.5, left))
                if (self._flusher is None or not self._flusher.is_alive()) and self._dirty:
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
        progress_follow.consume(self, handle, chunk_s=chunk_s)


# the front-ends' pieces live beside the model (re-exported here: they were defined here first)
from .panels import details_html, result_html, table_html  # noqa: E402
from .terminal import TqdmProgress  # noqa: E402
