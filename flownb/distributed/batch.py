"""Batches on workers: ``DistributedExecutor.map(bp, rows)`` / ``LocalCluster.map(bp, rows)``.

Every row becomes one ordinary run (submitted at once, so the queue holds the backlog and any
number of workers share it); the batch only watches. One daemon thread follows the event streams
of *all* of the batch's unfinished runs with a single blocking ``XREAD`` over their keys
(chunks of :data:`STREAMS_PER_READ`), folding node and LLM-usage events into the batch's
aggregate and loading a run's result when its terminal event arrives. So a batch of 500 runs
costs the client one Redis call per wake-up, not 500 followers, and no client polls: a status
sweep every :data:`SWEEP_S` only catches runs whose terminal event was trimmed or expired.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.blueprint import Blueprint
from ..core.errors import LintError
from ..core.events import CUSTOM, TERMINAL, Event
from ..core.lint_gate import check as check_lint, row_keys
from ..engine.batch import Batch, normalise_rows

if TYPE_CHECKING:
    from .client import DistributedExecutor

log = logging.getLogger("flownb.batch")

__all__ = ["STREAMS_PER_READ", "DistributedBatch", "map_rows"]

#: event streams read by one XREAD (a command of a few KiB; Redis answers it in one pass)
STREAMS_PER_READ = 500
#: seconds between status sweeps of runs with no terminal event seen
SWEEP_S = 2.0
#: the least time from one read of the batch's streams to the next, per stream read, up to
#: :data:`PACE_MAX_S`. Why: one XREAD costs Redis 1-2 µs per stream it names, and while events
#: keep coming a watcher that reads again at once pays that for every few events — ~240 µs of
#: redis-server CPU per read of 200 runs, ~0.4 ms per moderation run, a fifth of what the runs
#: themselves cost Redis (issue 21). Paced, the watcher reads all that arrived meanwhile in one
#: go. A progress view of a few runs still updates at once; of thousands, twice a second.
PACE_PER_STREAM_S = 0.0005
PACE_MAX_S = 0.5


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``ms-seq`` as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


class DistributedBatch(Batch):
    """A batch whose rows run on the workers of ``executor``'s Redis and queue."""

    where = "distributed"

    def __init__(self, executor: DistributedExecutor, blueprint: Blueprint,
                 rows: list[dict[str, Any]], *, history: bool = False) -> None:
        super().__init__(blueprint, rows)
        self.executor = executor
        self.history = history  # every row's run records its history (submit(history=True))
        self._lock = threading.Lock()
        self._active: dict[str, tuple[int, str]] = {}  # row's run id -> (row, last event id)
        # child runs (subflow, map) of the rows, read by the watcher thread only: the last
        # event id read of every child seen, the ones still followed, and the runs that
        # announced children not listed yet (run id -> how many)
        self._child_last: dict[str, str] = {}
        self._child_live: set[str] = set()
        self._expect: dict[str, int] = {}
        self._watcher: threading.Thread | None = None
        self._wake = threading.Event()

    @property
    def run_ids(self) -> list[str | None]:
        """Each row's run id (of its latest try), in input order."""
        return [it.run_id for it in self.items]

    # -- executor hooks ---------------------------------------------------------------------------
    def _launch(self, indices: list[int]) -> None:
        """Submit every row now (a broken blueprint raises here, before any run exists)."""
        for i in indices:
            if self._cancelled:
                self._skip(i)
                continue
            try:
                handle = self.executor.submit(self.blueprint, self.items[i].input,
                                              strict=None,  # map_rows ran the lint gate
                                              history=self.history)
            except LintError:  # the blueprint itself: every row would fail the same way
                with self._cond:
                    self._running_pass = False
                    self._open = 0
                raise
            except Exception as exc:  # noqa: BLE001 - a row Redis refused (e.g. not JSON)
                self._failed_to_start(i, exc)
                continue
            self._started(i, handle.run_id)
            with self._lock:
                self._active[handle.run_id] = (i, "0-0")
            self._ensure_watcher()
        if self._cancelled:  # cancelled while we were submitting: catch the last ones too
            self._cancel_running()

    def _cancel_running(self) -> None:
        with self._lock:
            run_ids = list(self._active)
        for rid in run_ids:
            try:
                self.executor.store.cancel(rid)
            except Exception:
                log.warning("batch: cannot cancel run %s", rid, exc_info=True)
        self._wake.set()

    # -- the watcher ------------------------------------------------------------------------------
    def _ensure_watcher(self) -> None:
        w = self._watcher
        if w is None or not w.is_alive():
            self._watcher = threading.Thread(target=self._watch, daemon=True,
                                             name=f"flownb-batch-watch-{self.blueprint.id}")
            self._watcher.start()

    def _watch(self) -> None:
        store = self.executor.store
        keys = store.keys
        block_ms = store._block_cap_ms(1000)
        last_sweep = time.monotonic()
        while True:
            began = time.monotonic()
            with self._lock:
                if not self._active:
                    self._child_live.clear()
                    return
                streams = [(rid, last) for rid, (_, last) in self._active.items()]
            streams += [(cid, self._child_last[cid]) for cid in self._child_live]
            chunks = [streams[k:k + STREAMS_PER_READ]
                      for k in range(0, len(streams), STREAMS_PER_READ)]
            got = 0
            for chunk in chunks:
                req: dict[Any, Any] = {keys.events(rid): last for rid, last in chunk}
                try:
                    resp: Any = store.r.xread(req, count=200,
                                              block=block_ms if len(chunks) == 1 else None)
                except Exception:  # noqa: BLE001 - Redis restarting: try again shortly
                    time.sleep(0.2)
                    continue
                for key, entries in resp or []:
                    rid = self._run_id_of(_s(key), keys)
                    got += len(entries)
                    for entry_id, fields in entries:
                        self._on_event(rid, _s(entry_id), fields)
            self._follow_children()
            now = time.monotonic()
            if now - last_sweep >= SWEEP_S or self._wake.is_set():
                self._wake.clear()
                last_sweep = now
                self._sweep()
            if not got and len(chunks) > 1:
                time.sleep(0.05)
            elif got:  # events keep coming: let more gather before the next read (see PACE_*)
                pause = min(PACE_MAX_S, len(streams) * PACE_PER_STREAM_S)
                pause -= time.monotonic() - began
                if pause > 0:
                    time.sleep(pause)

    @staticmethod
    def _run_id_of(stream_key: str, keys: Any) -> str:
        head, tail = keys.events("\0").split("\0")
        return stream_key[len(head):len(stream_key) - len(tail)]

    def _on_event(self, rid: str, entry_id: str, fields: Mapping[Any, Any]) -> None:
        """One event of a row's run or of one of its child runs (watcher thread only)."""
        with self._lock:
            cur = self._active.get(rid)
            if cur is not None:
                self._active[rid] = (cur[0], entry_id)
            elif rid in self._child_last:
                # already counted: a child's entries can arrive twice in one wake-up, once
                # drained when its row's terminal event settled the row, once more in the
                # reply (or a later chunk's, read from the older id) that came with it
                if _entry_key(entry_id) <= _entry_key(self._child_last[rid]):
                    return
                self._child_last[rid] = entry_id
            else:
                return
        for e in Event.all_from_fields(rid, dict(fields), entry_id):
            self.stats.feed(e)
            if e.type in TERMINAL:
                if cur is not None:
                    self._settle(rid)
                else:
                    self._child_live.discard(rid)
            elif e.type == CUSTOM and e.data.get("name") == "children":
                # announced before they are started: _follow_children lists them as they appear
                self._expect[rid] = self._expect.get(rid, 0) + int(e.data.get("count") or 0)

    def _children_of(self, rids: list[str]) -> list[set[str]]:
        keys = self.executor.store.keys
        pipe = self.executor.conn.pipeline(transaction=False)
        for rid in rids:
            pipe.smembers(keys.children(rid))
        return [{_s(c) for c in members} for members in pipe.execute()]

    def _follow_children(self) -> None:
        """Runs that announced child runs (subflow, map): follow the children's streams too
        (their node and LLM events belong to the row), as they appear in the children set."""
        expect = dict(self._expect)
        if not expect:
            return
        try:
            found = self._children_of(list(expect))
        except Exception:
            log.warning("batch: cannot list child runs", exc_info=True)
            return
        for (rid, want), members in zip(expect.items(), found):
            for cid in members - self._child_last.keys():
                self._child_last[cid] = "0-0"
                self._child_live.add(cid)
            if len(members) >= want:
                self._expect.pop(rid, None)

    def _drain_children(self, rid: str) -> None:
        """Before a row counts as done, read what is left of its child runs' events, so the
        batch's figures are complete when ``wait()`` returns."""
        todo = [rid]
        while todo:
            parents, todo = todo, []
            try:
                groups = self._children_of(parents)
            except Exception:
                log.warning("batch: cannot list child runs", exc_info=True)
                return
            for parent, members in zip(parents, groups):
                self._expect.pop(parent, None)
                for cid in members:
                    last = self._child_last.get(cid, "0-0")
                    for e in self.executor.store.events(cid, after=last, count=100_000):
                        last = e.id or last
                        self.stats.feed(e)
                    self._child_last[cid] = last
                    self._child_live.discard(cid)
                    todo.append(cid)

    def _sweep(self) -> None:
        """Runs that ended without us seeing their terminal event (trimmed, expired)."""
        with self._lock:
            rids = list(self._active)
        rids += list(self._child_live)
        if not rids:
            return
        pipe = self.executor.conn.pipeline(transaction=False)
        for rid in rids:
            pipe.hget(self.executor.store.keys.meta(rid), "status")
        for rid, status in zip(rids, pipe.execute()):
            if status is None or _s(status) != "running":
                if rid in self._child_live:
                    self._child_live.discard(rid)
                else:
                    self._settle(rid, unread=True)

    def _settle(self, rid: str, unread: bool = False) -> None:
        """Row run ``rid`` ended: its result. ``unread``: found ended by the sweep, maybe before
        the watcher read its last events (it lags under load): read them first, or the batch's
        figures miss them (LLM calls: 2123 counted of 2125 in the stream)."""
        with self._lock:
            cur = self._active.pop(rid, None)
        if cur is None:
            return
        try:
            if unread:
                for e in self.executor.store.events(rid, after=cur[1], count=100_000):
                    self.stats.feed(e)
            self._drain_children(rid)
            result = self.executor.store.load_result(rid)
        except Exception as exc:  # noqa: BLE001 - expired before we read it
            self._failed_to_start(cur[0], exc)
            return
        self._finished(cur[0], result)


def map_rows(executor: DistributedExecutor, blueprint: Blueprint | Mapping[str, Any] | str,
             rows: Iterable[Any], *, key: str | None = None,
             strict: bool = True, history: bool = False) -> DistributedBatch:
    """Submit one run per row and return the :class:`DistributedBatch` (see the module doc)."""
    items = normalise_rows(rows, key=key)
    bp = check_lint(blueprint, executor.registry, row_keys(items), strict=strict,
                    on_workers=True)  # once for all rows
    batch = DistributedBatch(executor, bp, items, history=history)
    indices = list(range(len(batch.items)))
    batch._begin(indices)
    if indices:
        batch._launch(indices)
    return batch
