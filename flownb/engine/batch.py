"""Batches: one blueprint over many inputs ("run my agent over 500 reviews"), in input order.

:func:`run_many` / :func:`arun_many` run the rows in this process with a bounded number of runs
at once; ``DistributedExecutor.map`` / ``LocalCluster.map`` run them on workers
(:mod:`flownb.distributed.batch`). Both return a :class:`Batch`, the one handle a notebook
needs for a dataset: an aggregate live view (``batch`` as a cell's last line, or
``batch.show()``), ``results()`` in input order, ``to_pandas()``, the failures with their error,
``retry_failed()`` and ``cancel()``.

Why a handle and not a list of results: a dataset run takes minutes, some rows fail (a rate
limit, a malformed answer), and the person running it wants to watch, stop, fix and re-run the
failed rows — without re-running (and re-paying for) the rows that worked. The executor-specific
part is small (start these rows, cancel what runs); everything else lives here once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .batch_retry import NothingToRetryWarning, nothing_to_retry
from .batch_stats import BatchSnapshot, BatchStats
from ..core.blueprint import Blueprint, load
from ..core.display import view
from ..core.errors import FlownbError, RunTimeout
from ..core.events import EventBus
from ..core.graph import compile_graph
from ..core.lint_gate import check as check_lint, row_keys
from ..core.registry import Registry, default_registry
from ..core.result import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED, RunResult
from .batch_rows import BatchItem, normalise_rows

log = logging.getLogger("flownb.batch")

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Batch",
    "BatchItem",
    "LocalBatch",
    "arun_many",
    "normalise_rows",
    "run_many",
]

#: runs at once in process when not told otherwise: I/O-bound agents gain from many, and a
#: bound keeps a 10,000-row batch from opening 10,000 connections to one API
DEFAULT_CONCURRENCY = 32
#: columns ``to_pandas`` adds after the input columns
RESULT_COLUMNS = ("output", "status", "error", "error_node", "run_id", "duration_s")


class Batch:
    """Handle of a batch of runs of one blueprint; the executor-specific subclasses only start
    rows (:meth:`_launch`) and cancel what runs (:meth:`_cancel_running`)."""

    where = "batch"

    def __init__(self, blueprint: Blueprint, rows: list[dict[str, Any]]) -> None:
        self.blueprint = blueprint
        self.items = [BatchItem(i, row) for i, row in enumerate(rows)]
        self.stats = BatchStats(len(self.items))
        self._cond = threading.Condition()
        self._open = 0  # rows started and not finished in the current pass
        self._passes = 0
        self._running_pass = False
        self._cancelled = False
        self._on_pass: list[Callable[[], None]] = []

    # -- what subclasses call --------------------------------------------------------------------
    def _begin(self, indices: list[int]) -> None:
        with self._cond:
            if self._running_pass:
                raise FlownbError(f"batch of {self.blueprint.id!r} is still running; wait for it "
                                  "(batch.wait()) or cancel it (batch.cancel()) first")
            self._running_pass = True
            self._cancelled = False
            self._passes += 1
            self._open = len(indices)
            self.stats.begin()
            for i in indices:
                it = self.items[i]
                it.status, it.result, it.error, it.run_id = PENDING, None, None, None
                self.stats.set_status(i, PENDING)
            if not indices:
                self._end_pass()
        for fn in list(self._on_pass):
            try:
                fn()
            except Exception:
                log.exception("batch view hook %r failed", fn)

    def _started(self, index: int, run_id: str) -> None:
        it = self.items[index]
        with self._cond:
            it.status, it.run_id = RUNNING, run_id
            it.tries += 1
        self.stats.heat.started(index, run_id)
        self.stats.set_status(index, RUNNING)

    def _finished(self, index: int, result: RunResult) -> None:
        it = self.items[index]
        with self._cond:
            if it.status in (SUCCEEDED, FAILED, CANCELLED):
                return  # reported twice (a cancel raced the end): the first one stands
            it.result = result
            it.run_id = result.run_id or it.run_id
            it.status = result.status if result.status in (SUCCEEDED, FAILED, CANCELLED) else FAILED
            it.error = dict(result.error) if result.error else None
            self.stats.heat.finished(index, result)
            self.stats.set_status(index, it.status, it.error_text or None)
            self._open -= 1
            if self._open <= 0:
                self._end_pass()

    def _failed_to_start(self, index: int, exc: BaseException) -> None:
        """A row that never became a run (bad input, Redis refused it): failed, with why."""
        msg = exc.message if isinstance(exc, FlownbError) else str(exc)
        err = {"node_id": None, "attempt": 0, "type": type(exc).__name__,
               "message": msg or type(exc).__name__, "traceback": traceback.format_exc()}
        self._finished(index, self._synthetic(index, FAILED, err))

    def _skip(self, index: int) -> None:
        """A row the batch was cancelled before it started."""
        self._finished(index, self._synthetic(index, CANCELLED, None))

    def _synthetic(self, index: int, status: str, error: dict[str, Any] | None) -> RunResult:
        now = time.time()
        return RunResult(run_id=self.items[index].run_id or "", blueprint_id=self.blueprint.id,
                         status=status, error=error, started_at=now, finished_at=now)

    def _end_pass(self) -> None:
        """Under the lock."""
        self._running_pass = False
        self.stats.end(cancelled=self._cancelled)
        self._cond.notify_all()

    # -- executor hooks ---------------------------------------------------------------------------
    def _launch(self, indices: list[int]) -> None:
        raise NotImplementedError

    def _cancel_running(self) -> None:
        raise NotImplementedError

    # -- public API -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def done(self) -> bool:
        with self._cond:
            return not self._running_pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every row ended (True) or ``timeout`` passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._running_pass:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(0.5, left))
        return True

    def results(self, timeout: float | None = None, *,
                raise_on_error: bool = False) -> list[RunResult]:
        """Every row's :class:`RunResult`, in input order (waits for the batch to end).

        A row that could not start, or was cancelled before it started, has a result with that
        status and no run id. ``raise_on_error`` raises the first failed row's ``RunFailed``.
        """
        if not self.wait(timeout):
            snap = self.stats.snapshot()
            raise RunTimeout(f"batch of {self.blueprint.id!r} still running after {timeout}s "
                             f"({snap.done}/{snap.total} done); wait again or cancel it")
        out = [it.result if it.result is not None else self._synthetic(it.index, PENDING, None)
               for it in self.items]
        if raise_on_error:
            for r in out:
                r.raise_for_status()
        return out

    def outputs(self, timeout: float | None = None) -> list[Any]:
        """Every row's output in input order (``None`` where the run did not succeed)."""
        return [r.output if r.ok else None for r in self.results(timeout)]

    @property
    def failures(self) -> list[BatchItem]:
        """The rows that failed (not the cancelled ones), each with its error."""
        return [it for it in self.items if it.status == FAILED]

    def retry_failed(self, *, include_cancelled: bool = False) -> Batch:
        """Run the failed rows again (and the cancelled ones with ``include_cancelled``), in
        place: their results, the counts and the DataFrame are replaced; the rows that
        succeeded are not run again. Returns the batch at once, like the call that started it.

        With nothing to retry (every row succeeded, or only cancelled rows without
        ``include_cancelled``) it warns :class:`NothingToRetryWarning`, saying what the rows
        are, and returns the batch unchanged: no pass starts, the results stay."""
        states = {FAILED, CANCELLED} if include_cancelled else {FAILED}
        todo = [it.index for it in self.items if it.status in states]
        if not todo and not self._running_pass:  # say so, rather than a pass that does nothing
            warnings.warn(nothing_to_retry(self.blueprint.id, [it.status for it in self.items],
                                           include_cancelled), NothingToRetryWarning, stacklevel=2)
            return self
        self._begin(todo)
        if todo:
            self._launch(todo)
        return self

    def cancel(self) -> None:
        """Stop the whole batch: rows not started never start, running runs are cancelled."""
        with self._cond:
            if not self._running_pass:
                return
            self._cancelled = True
        self._cancel_running()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def snapshot(self) -> BatchSnapshot:
        """The aggregate figures now (counts, runs/s, per-node latency, tokens, cost)."""
        return self.stats.snapshot()

    def to_pandas(self, *, nodes: bool = False, wait: bool = False,
                  timeout: float | None = None) -> Any:
        """One row per input: the input columns, then ``output``, ``status``, ``error``,
        ``error_node``, ``run_id``, ``duration_s``; with ``nodes`` one ``node.<id>`` column per
        node output too. An input column named like one of those is kept as ``input.<name>``.

        A **snapshot**: called while the batch runs (``run_many`` returns at once), rows not
        done yet show ``status`` ``pending``/``running`` and no output, and the DataFrame does
        not change afterwards — call it again, or pass ``wait=True`` to wait for the batch to
        end first (``timeout`` seconds at most, then :class:`~flownb.core.errors.RunTimeout`)."""
        if wait and not self.wait(timeout):
            snap = self.stats.snapshot()
            raise RunTimeout(f"batch of {self.blueprint.id!r} still running after {timeout}s "
                             f"({snap.done}/{snap.total} done); to_pandas() without wait gives "
                             "the rows so far")
        try:
            import pandas as pd  # type: ignore[import-untyped]
        except ImportError:
            raise FlownbError("Batch.to_pandas() needs pandas, which is not installed: "
                              "pip install 'flownb[pandas]' (or pip install pandas)") from None
        records = []
        for it in self.items:
            rec = {(f"input.{k}" if k in RESULT_COLUMNS else k): v for k, v in it.input.items()}
            res = it.result
            rec.update({"output": it.output if it.status == SUCCEEDED else None,
                        "status": it.status, "error": it.error_text or None,
                        "error_node": (it.error or {}).get("node_id"), "run_id": it.run_id,
                        "duration_s": res.duration_s if res is not None else None})
            if nodes:
                for n in self.blueprint.nodes:
                    rec[f"node.{n.id}"] = (res.outputs.get(n.id) if res is not None else None)
            records.append(rec)
        return pd.DataFrame.from_records(records, index=pd.RangeIndex(len(records), name="row"))

    # -- views ------------------------------------------------------------------------------------
    def widget(self) -> Any:
        """The aggregate live view: an ipywidgets box (not displayed; return it from a cell)."""
        return view("batch.widget")(self)

    def show(self, *, file: Any = None) -> Any:
        """Show the live view and return at once: a widget in Jupyter, a tqdm bar elsewhere."""
        return view("batch.show")(self, file=file)

    def _ipython_display_(self) -> None:
        view("batch.display")(self)

    def __await__(self) -> Any:
        return asyncio.to_thread(self.results).__await__()

    def __repr__(self) -> str:
        s = self.stats.snapshot()
        return (f"<{type(self).__name__} {self.blueprint.id} {s.total} rows {s.status}: "
                f"{s.succeeded} succeeded, {s.failed} failed, {s.cancelled} cancelled, "
                f"{s.running} running, {s.pending} pending; {s.runs_per_s:.1f} runs/s>")


class LocalBatch(Batch):
    """A batch run in this process: at most ``concurrency`` runs at once on one event loop."""

    where = "in process"

    def __init__(self, blueprint: Blueprint, rows: list[dict[str, Any]], *,
                 registry: Registry | None, concurrency: int | None,
                 max_concurrency: int | None = None) -> None:
        super().__init__(blueprint, rows)
        self.registry = registry or default_registry
        compile_graph(blueprint, self.registry)  # a broken blueprint fails here, once
        self.concurrency = concurrency
        self.max_concurrency = max_concurrency
        self.bus = EventBus()
        self.bus.subscribe(self.stats.feed)
        self._token: Any = None
        self._thread: threading.Thread | None = None

    def _launch(self, indices: list[int]) -> None:
        """Run the rows on a private event loop in a daemon thread (returns at once)."""
        t = threading.Thread(target=asyncio.run, args=(self.drive(indices, started=True),),
                             name=f"flownb-batch-{self.blueprint.id}", daemon=True)
        self._thread = t
        t.start()

    async def drive(self, indices: list[int], *, started: bool = False) -> None:
        """Run the rows on the running loop; returns when all ended."""
        from .runtime import CancelToken, arun, new_run_id

        if not started:
            self._begin(indices)
        token = self._token = CancelToken()
        if self._cancelled:
            token.cancel()
        sem = asyncio.Semaphore(self.concurrency) if self.concurrency else None

        async def one(i: int) -> None:
            if sem is not None:
                async with sem:
                    await run_one(i)
            else:
                await run_one(i)

        async def run_one(i: int) -> None:
            if token.cancelled:
                self._skip(i)
                return
            run_id = new_run_id()
            self._started(i, run_id)
            try:
                res = await arun(self.blueprint, self.items[i].input, registry=self.registry,
                                 run_id=run_id, bus=self.bus, cancel=token,
                                 max_concurrency=self.max_concurrency, raise_on_error=False,
                                 strict=None)  # the batch ran the lint gate for every row
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the batch
                self._failed_to_start(i, exc)
                return
            self._finished(i, res)

        await asyncio.gather(*(one(i) for i in indices))

    def _cancel_running(self) -> None:
        if self._token is not None:
            self._token.cancel()


def _local(blueprint: Blueprint | Mapping[str, Any] | str, rows: Iterable[Any], *,
           key: str | None, registry: Registry | None, concurrency: int | None,
           max_concurrency: int | None, strict: bool = True) -> LocalBatch:
    if concurrency is not None and concurrency < 1:
        raise FlownbError(f"concurrency must be >= 1 (or None for no bound), got {concurrency}")
    bp = load(blueprint)  # type: ignore[arg-type]
    items = normalise_rows(rows, key=key)
    check_lint(bp, registry, row_keys(items), strict=strict)  # once for all rows
    return LocalBatch(bp, items, registry=registry,
                      concurrency=concurrency, max_concurrency=max_concurrency)


def run_many(blueprint: Blueprint | Mapping[str, Any] | str, rows: Iterable[Any], *,
             key: str | None = None, concurrency: int | None = DEFAULT_CONCURRENCY,
             registry: Registry | None = None, max_concurrency: int | None = None,
             strict: bool = True) -> LocalBatch:
    """Run ``blueprint`` once per row in this process and return the :class:`Batch` at once.

    ``rows``: mappings of input names to values (or a DataFrame; or plain values with ``key``).
    At most ``concurrency`` runs at once (``None``: all of them). ``batch.results()`` waits.
    Lint runs once for the whole batch (``strict``: see :func:`flownb.run`).
    """
    batch = _local(blueprint, rows, key=key, registry=registry, concurrency=concurrency,
                   max_concurrency=max_concurrency, strict=strict)
    indices = list(range(len(batch.items)))
    batch._begin(indices)
    if indices:
        batch._launch(indices)
    return batch


async def arun_many(blueprint: Blueprint | Mapping[str, Any] | str, rows: Iterable[Any], *,
                    key: str | None = None, concurrency: int | None = DEFAULT_CONCURRENCY,
                    registry: Registry | None = None, max_concurrency: int | None = None,
                    show: bool = False, strict: bool = True) -> LocalBatch:
    """The async twin of :func:`run_many`: runs on the caller's event loop and returns the
    finished :class:`Batch` (``show=True`` displays the live view meanwhile)."""
    batch = _local(blueprint, rows, key=key, registry=registry, concurrency=concurrency,
                   max_concurrency=max_concurrency, strict=strict)
    indices = list(range(len(batch.items)))
    batch._begin(indices)
    if show:
        batch.show()
    await batch.drive(indices, started=True)
    return batch
