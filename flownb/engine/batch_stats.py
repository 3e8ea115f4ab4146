"""The aggregate model of a batch: many runs' events in, one small snapshot out.

Why one model for all runs of a batch rather than one :class:`~flownb.notebook.ProgressView`
per run: 500 runs would be 500 views, 500 flusher threads and 500 widgets, and what a person
evaluating an agent over a dataset wants to see is the aggregate — how many are done, failed,
running, how fast, which node is slow, what it costs. So the batch folds every run's node events
into per-node latency figures and the LLM nodes' ``llm_usage`` events into token and cost totals,
while the batch itself reports each run's start and end (the counts are exact, not inferred from
events, which a distributed stream may trim).

Folding is cheap and happens in whatever thread produced the event, under a lock;
:meth:`BatchStats.snapshot` copies the figures out. How often a front-end reads snapshots is
the front-end's business (the notebook view reads at most 5 per second).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.events import CUSTOM, NODE_FAILED, NODE_SUCCEEDED, Event
from ..core.heat import Heat
from .batch_heat import BatchHeat

__all__ = ["USAGE_EVENT", "BatchSnapshot", "BatchStats", "NodeLatency"]

#: the custom event LLM nodes emit after each call (see flownb.llm.runner; not imported: the core
#: must not import the LLM package)
USAGE_EVENT = "llm_usage"
#: per-node duration samples kept for the median (the mean and max use every sample)
_MAX_SAMPLES = 10_000


@dataclass(frozen=True)
class NodeLatency:
    """One node's figures over every run of the batch (seconds)."""

    node_id: str
    count: int
    failed: int
    mean_s: float
    median_s: float
    max_s: float


@dataclass(frozen=True)
class BatchSnapshot:
    """An immutable copy of the aggregate (safe to read from any thread)."""

    total: int
    pending: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    elapsed_s: float  # of the current pass (a retry_failed() starts a new one)
    runs_per_s: float  # runs ended in the current pass per second
    nodes: tuple[NodeLatency, ...]
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None while no call reported a known price
    cost_unknown_calls: int  # calls of a model with no known price (not in cost_usd)
    errors: tuple[tuple[int, str], ...]  # (row index, "node: Type: message"), first ones
    finished: bool
    status: str  # pending | running | succeeded | failed | cancelled
    seq: int
    #: where the runs went: per node and edge, how many runs (flownb.engine.batch_heat)
    heat: Heat = field(default_factory=Heat)

    @property
    def done(self) -> int:
        """Runs that ended, whatever their status."""
        return self.succeeded + self.failed + self.cancelled

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class _Node:
    count: int = 0
    failed: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    samples: list[float] = field(default_factory=list)


class BatchStats:
    """Counts, throughput, per-node latency, tokens and cost of one batch (thread-safe)."""

    #: errors kept for the views (the batch itself keeps every item's error)
    MAX_ERRORS = 50

    def __init__(self, total: int) -> None:
        self._lock = threading.Lock()
        self.total = total
        self._status: dict[int, str] = {}
        self._nodes: dict[str, _Node] = {}
        self._errors: dict[int, str] = {}
        self.llm_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd: float | None = None
        self.cost_unknown_calls = 0
        #: the current pass: the first run of the rows, or a retry of the failed ones
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._pass_done = 0
        self._seq = 0
        self._cancelled = False
        self.heat = BatchHeat()

    # -- what the batch reports -------------------------------------------------------------------
    def begin(self) -> None:
        """The batch (or a retry of its failures) starts now."""
        with self._lock:
            self.started_at = time.time()
            self.finished_at = None
            self._pass_done = 0
            self._cancelled = False
            self._seq += 1

    def set_status(self, index: int, status: str, error: str | None = None) -> None:
        """Row ``index`` is now pending / running / succeeded / failed / cancelled."""
        with self._lock:
            if status in ("succeeded", "failed", "cancelled"):
                self._pass_done += 1
            self._status[index] = status
            if error and status == "failed":
                self._errors[index] = error
            else:
                self._errors.pop(index, None)
            self._seq += 1

    def end(self, *, cancelled: bool = False) -> None:
        with self._lock:
            self.finished_at = time.time()
            self._cancelled = self._cancelled or cancelled
            self._seq += 1

    # -- what the runs report (an on_event callback) -----------------------------------------------
    def feed(self, e: Event) -> None:
        """Fold one event of any run of the batch; never raises."""
        if self.heat.feed(e):
            with self._lock:
                self._seq += 1
        t = e.type
        if t == NODE_SUCCEEDED or t == NODE_FAILED:
            if not e.node_id:
                return
            dur = e.data.get("duration_s")
            with self._lock:
                n = self._nodes.get(e.node_id)
                if n is None:
                    n = self._nodes[e.node_id] = _Node()
                if t == NODE_FAILED:
                    n.failed += 1
                elif isinstance(dur, (int, float)):
                    d = float(dur)
                    n.count += 1
                    n.total_s += d
                    n.max_s = max(n.max_s, d)
                    if len(n.samples) < _MAX_SAMPLES:
                        n.samples.append(d)
                self._seq += 1
        elif t == CUSTOM and e.data.get("name") == USAGE_EVENT:
            self.add_usage(e.data)

    __call__ = feed

    def add_usage(self, data: Mapping[str, Any]) -> None:
        """One ``llm_usage`` event's figures (tokens, cost)."""
        with self._lock:
            self.llm_calls += 1
            self.prompt_tokens += _int(data.get("prompt_tokens"))
            self.completion_tokens += _int(data.get("completion_tokens"))
            cost = data.get("cost_usd")
            if isinstance(cost, (int, float)):
                self.cost_usd = (self.cost_usd or 0.0) + float(cost)
            else:
                self.cost_unknown_calls += 1
            self._seq += 1

    # -- reading ------------------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        return self._seq

    def snapshot(self) -> BatchSnapshot:
        with self._lock:
            counts = {"pending": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
            for s in self._status.values():
                counts[s] = counts.get(s, 0) + 1
            counts["pending"] += self.total - len(self._status)
            now = self.finished_at or time.time()
            elapsed = max(0.0, now - self.started_at) if self.started_at else 0.0
            finished = self.finished_at is not None
            if not finished:
                status = "running" if self.started_at else "pending"
            elif self._cancelled or counts["cancelled"]:
                status = "cancelled"
            else:
                status = "failed" if counts["failed"] else "succeeded"
            nodes = tuple(
                NodeLatency(k, n.count, n.failed, n.total_s / n.count if n.count else 0.0,
                            statistics.median(n.samples) if n.samples else 0.0, n.max_s)
                for k, n in self._nodes.items())
            errors = tuple(sorted(self._errors.items())[: self.MAX_ERRORS])
            heat = self.heat.heat()
            return BatchSnapshot(
                total=self.total, pending=counts["pending"], running=counts["running"],
                succeeded=counts["succeeded"], failed=counts["failed"],
                cancelled=counts["cancelled"], elapsed_s=elapsed,
                runs_per_s=self._pass_done / elapsed if elapsed > 0 else 0.0, nodes=nodes,
                llm_calls=self.llm_calls, prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens, cost_usd=self.cost_usd,
                cost_unknown_calls=self.cost_unknown_calls, errors=errors, finished=finished,
                status=status, seq=self._seq, heat=heat)


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0
