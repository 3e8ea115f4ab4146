"""The live heat map of a batch: each row's run folded into node statuses and taken edges.

Why per row and not per event total: a heat map says how many *runs* passed through a node or
took an edge, so a loop's laps, a redelivered visit or a retried row must not count twice. Each
row keeps one :class:`~flownb.core.heat.RunTrace` (its latest run: ``retry_failed()`` replaces
it); events fill it while the run goes (the ``taken`` list a ``node_succeeded`` event carries on
both executors), and the run's :class:`~flownb.core.result.RunResult` has the last word when it
ends (events may be trimmed). The arithmetic is :func:`flownb.core.heat.batch_heat`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..core.events import (
    NODE_FAILED,
    NODE_RETRYING,
    NODE_SKIPPED,
    NODE_STARTED,
    NODE_SUCCEEDED,
    Event,
)
from ..core.heat import Heat, RunTrace, add_taken, batch_heat, taken_of

if TYPE_CHECKING:
    from ..core.result import RunResult

__all__ = ["BatchHeat"]

_STATUS = {NODE_STARTED: "running", NODE_RETRYING: "retrying", NODE_SUCCEEDED: "succeeded",
           NODE_FAILED: "failed", NODE_SKIPPED: "skipped"}


class BatchHeat:
    """Per-row node statuses and taken edges of a batch (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._row_of: dict[str, int] = {}  # run id -> row
        self._states: dict[int, dict[str, str]] = {}
        self._taken: dict[int, dict[int, int]] = {}

    def started(self, index: int, run_id: str) -> None:
        """Row ``index`` runs as ``run_id`` now (a retry forgets the row's earlier run)."""
        with self._lock:
            self._row_of[run_id] = index
            self._states[index] = {}
            self._taken[index] = {}

    def feed(self, e: Event) -> bool:
        """Fold one event of a row's run (other runs' events, child runs' included, are
        ignored: a subflow's nodes are not the blueprint's); True when the map changed."""
        status = _STATUS.get(e.type)
        if status is None or not e.node_id:
            return False
        with self._lock:
            index = self._row_of.get(e.run_id)
            if index is None:
                return False
            self._states[index][e.node_id] = status
            if e.type == NODE_SUCCEEDED:
                add_taken(self._taken[index], taken_of(e.data))
            return True

    def finished(self, index: int, result: RunResult) -> None:
        """The row's run ended: its result is authoritative (a row that never ran adds nothing)."""
        with self._lock:
            if index not in self._states:
                return
            if result.nodes:
                self._states[index] = dict(result.node_states)  # subflow children included
            if result.taken_edges or result.nodes:
                self._taken[index] = dict(result.taken_edges)

    def heat(self) -> Heat:
        with self._lock:
            traces = [RunTrace(self._states[i], list(self._taken[i])) for i in self._states]
        return batch_heat(traces)
