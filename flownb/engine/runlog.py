"""The runs this process made in process, newest last, bounded: what ``flownb.runs()`` lists.

Why a registry: an in-process run leaves nothing behind but the :class:`RunResult` its caller
kept, so "show me the runs of this kernel" needs the engine to remember them. It keeps the last
:data:`MAX_RUNS` (a batch of 10,000 rows must not hold 10,000 results forever); older entries
fall off. Tokens and cost are added up from ``llm_usage`` events only for blueprints with an LLM
node: subscribing to a run's bus makes it build events, which a plain run should not pay for.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.errors import FlownbError
from ..core.events import CUSTOM, Event, EventBus
from ..core.result import RUNNING, RunResult
from ..core.runrows import RunPage, RunRow, page_of

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint

#: how many in-process runs are remembered (the oldest fall off first); 0 turns it off (it costs
#: ~10 µs a run, against ~250 µs for the smallest run)
MAX_RUNS = 1000
_USAGE = "llm_usage"  # flownb.llm.runner.USAGE_EVENT (the engine does not import the llm layer)


@dataclass
class RunRecord:
    """One in-process run: its blueprint, its figures so far, and its result once it returned."""

    run_id: str
    blueprint: Blueprint
    started_at: float
    result: RunResult | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    _unsub: Any = field(default=None, repr=False)

    def on_event(self, e: Event) -> None:
        if e.type == CUSTOM and e.data.get("name") == _USAGE:
            self.tokens += int(e.data.get("total_tokens") or 0)
            self.cost_usd += float(e.data.get("cost_usd") or 0.0)

    def row(self) -> RunRow:
        r = self.result
        if r is None:
            return RunRow(self.run_id, self.blueprint.id, RUNNING, self.started_at,
                          tokens=self.tokens, cost_usd=self.cost_usd)
        ran = sum(1 for s in r.nodes.values() if s.visits)
        return RunRow(self.run_id, r.blueprint_id, r.status, r.started_at or self.started_at,
                      r.finished_at or None, nodes=ran, tokens=self.tokens,
                      cost_usd=self.cost_usd)


_lock = threading.Lock()
_runs: OrderedDict[str, RunRecord] = OrderedDict()


def _kept(result: RunResult) -> RunResult:
    """The result without its live side (``_run`` holds the whole engine): 1,000 remembered
    runs keep their outputs and state, not 1,000 engines."""
    kept = object.__new__(RunResult)  # not dataclasses.replace: no __post_init__ per run
    kept.__dict__.update(result.__dict__)
    kept._run = None
    return kept


def record_start(run_id: str, blueprint: Blueprint, bus: EventBus) -> RunRecord:
    """Remember a run that starts now (called by :func:`flownb.engine.runtime.arun`)."""
    rec = RunRecord(run_id, blueprint, time.time())
    if MAX_RUNS <= 0:
        return rec  # remembering is off
    uses_llm = blueprint._cache.get("runlog.llm")
    if uses_llm is None:
        uses_llm = blueprint._cache["runlog.llm"] = any(n.uses.startswith("llm-")
                                                        for n in blueprint.nodes)
    if uses_llm:
        rec._unsub = bus.subscribe(rec.on_event)
    with _lock:
        _runs[run_id] = rec
        _runs.move_to_end(run_id)
        while len(_runs) > MAX_RUNS:
            _runs.popitem(last=False)
    return rec


def record_end(rec: RunRecord, result: RunResult | None) -> None:
    """The run returned (``result``) or raised (``None``: it is dropped, nothing to show)."""
    if rec._unsub is not None:
        rec._unsub()
        rec._unsub = None
    with _lock:
        if _runs.get(rec.run_id) is not rec:
            return  # not remembered (turned off, or fallen off already)
        if result is None:
            del _runs[rec.run_id]
        else:
            rec.result = _kept(result)


def update(run_id: str, result: RunResult) -> None:
    """A remembered run moved on (a waiting run was resumed): list its new result."""
    with _lock:
        rec = _runs.get(run_id)
        if rec is not None:
            rec.result = _kept(result)


def list_page(*, status: str | None = None, blueprint: str | None = None, offset: int = 0,
              limit: int = 20) -> RunPage:
    """A page of this process's runs, newest first, filtered by status and blueprint id."""
    with _lock:
        recs = list(_runs.values())
    return page_of((r.row() for r in reversed(recs)), status=status, blueprint=blueprint,
                   offset=offset, limit=limit)


def get(run_id: str) -> RunRecord:
    """The record of an in-process run of this process, or a clear error."""
    with _lock:
        rec = _runs.get(run_id)
    if rec is None:
        raise FlownbError(f"no in-process run {run_id!r} in this process (it remembers the last "
                          f"{MAX_RUNS} runs); for a distributed run pass redis=...", run_id=run_id)
    return rec


def clear() -> None:
    """Forget every remembered run (tests; a long-lived kernel that wants the memory back)."""
    with _lock:
        _runs.clear()


__all__ = ["MAX_RUNS", "RunRecord", "clear", "get", "list_page", "record_end", "record_start", "update"]
