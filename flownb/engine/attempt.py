"""The attempt policy: how one node visit runs, for every executor.

One coroutine, :func:`run_visit`, owns the node contract — ``prep`` once, ``exec`` retried with
back-off and bounded by ``timeout_s``, ``post`` once — plus the fallback node and the cancellation
check. The in-process :class:`~flownb.engine.runtime.Engine` and the Redis worker both call it, so a
blueprint means the same thing wherever it runs; the executors only differ in how they read
state, claim work and commit the :class:`Outcome`.

Why async-first: an I/O-bound agent (an LLM node waiting on the network) must not hold a thread
or a worker process while it waits. Async nodes run on the caller's event loop and are cancelled
at their timeout; sync nodes run in a bounded thread pool and, because Python cannot kill a
thread, a timed-out sync attempt is *abandoned*: the visit is marked timed out at once and the
thread's late result is discarded.

:func:`try_inline` is the in-process fast path for chains of sync nodes: it calls a node directly
(no task, no thread) and, the moment anything goes wrong, hands its state to :func:`run_visit`
(``resume=``) so retries, fallbacks and errors still follow this one policy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import tracing
from ..core.context import NodeContext
from ..core.errors import FlownbError, NodeError, NodeTimeout
from ..core.registry import Result
from .tracing import traced_inline, traced_visit

if TYPE_CHECKING:
    from ..core.graph import CNode

#: ``emit(event_type, node_id, data)``: how the policy reports retries and fallbacks
Emit = Callable[[str, str, dict[str, Any]], None]


@dataclass
class Outcome:
    """What one node visit came to. ``error`` is set when it failed for good; ``cancelled`` when
    the run was cancelled before an attempt started (nothing is to be committed then)."""

    node_id: str
    result: Any = None
    attempts: int = 0
    writes: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    cancelled: bool = False
    duration_s: float = 0.0
    #: set when a fallback took over: the original node's failed outcome
    replaced: Outcome | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled

    @property
    def output(self) -> Any:
        return self.result.output if type(self.result) is Result else self.result

    @property
    def action(self) -> str | None:
        return self.result.action if type(self.result) is Result else None


@dataclass
class Resume:
    """State handed from :func:`try_inline` to :func:`run_visit` after a first failure, or when
    a sync ``exec`` returned an awaitable (``phase == "await"``, ``pending`` set)."""

    prep: Any
    phase: str  # "prep" | "exec" | "post" | "await"
    exc: BaseException | None
    tb: str
    t0: float
    pending: Awaitable[Any] | None = None
    #: with ``pending``: the state writes from before exec (a retry starts again from these)
    base: dict[str, Any] | None = None
    #: the visit's span, when tracing is on (:func:`flownb.engine.tracing.traced_inline`)
    span: Any = None


#: result types that are never awaitable: checked first so the hot path pays one set lookup
_NOT_AWAITABLE = frozenset({str, int, float, bool, type(None), dict, list, tuple, Result, bytes})


def awaits(value: Any) -> bool:
    """Whether a sync node's return value must be awaited (a sync wrapper around an async
    function, e.g. ``def f(ctx): return flownb.llm.llm_process(ctx)``). Why here: both
    executors must await it the same way, or a coroutine becomes an in-process "output" and a
    worker's JSON error."""
    return type(value) not in _NOT_AWAITABLE and inspect.isawaitable(value)


def error_dict(node_id: str, attempt: int, exc: BaseException, tb: str) -> dict[str, Any]:
    """The error record of a failed node, the same on every executor."""
    msg = exc.message if isinstance(exc, FlownbError) else str(exc)
    return {"node_id": node_id, "attempt": attempt, "type": type(exc).__name__,
            "message": msg or type(exc).__name__, "traceback": tb}


def short_error(exc: BaseException) -> dict[str, str]:
    msg = exc.message if isinstance(exc, FlownbError) else str(exc)
    return {"type": type(exc).__name__, "message": msg}


class _TimedOut(Exception):
    """flownb's own time limit fired (a node's own TimeoutError is not this)."""


class _Fail(Exception):
    def __init__(self, attempt: int, exc: BaseException, tb: str) -> None:
        super().__init__(str(exc))
        self.attempt, self.exc, self.tb = attempt, exc, tb


#: exceptions a node body may raise that still end only that node (SystemExit in a library must
#: not take a worker down with it). A worker also counts a KeyboardInterrupt *raised by a node*
#: as that node's error; in process, Ctrl-C arrives as one and must cancel the run instead.
#: Any other BaseException a node raises (GeneratorExit, a custom subclass, an
#: ``asyncio.CancelledError`` leaked from async code) is that node's error too: see
#: :func:`is_node_error`.
_USER_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit, KeyboardInterrupt)
WORKER_ERRORS = _USER_ERRORS
IN_PROCESS_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


def _being_cancelled() -> bool:
    """Whether flownb (or the caller) asked the running task to stop: a timeout, a cancel."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: the inline path, nothing can cancel it
        return False
    return task is not None and task.cancelling() > 0


def is_node_error(exc: BaseException, catch: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc``, raised while a node body ran, ends only that node.

    Why every BaseException by default: a node that raised ``GeneratorExit`` or its own
    BaseException subclass escaped the policy before, which left its item claimed for ever on a
    worker and froze a batch in process. Two kinds are not the node's: a KeyboardInterrupt
    where ``catch`` does not list it (Ctrl-C in process cancels the run), and a CancelledError
    while the visit's task is really being cancelled (flownb's timeout or cancel, or the
    caller's). A CancelledError the node body raised on its own, with no cancel pending, is an
    error like any other."""
    if isinstance(exc, asyncio.CancelledError):
        return not _being_cancelled()
    if isinstance(exc, KeyboardInterrupt):
        return KeyboardInterrupt in catch
    return True


def in_thread(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """Run a sync phase in a pool thread and hand back ``(ok, value_or_exception)``.

    Raising across the thread hop loses information (asyncio replaces a ``TimeoutError`` from a
    thread with a new object), so the exception travels as a value with its traceback text."""
    try:
        return True, fn(*args)
    except BaseException as exc:  # noqa: BLE001 - user code; SystemExit too
        try:
            exc._flownb_tb = traceback.format_exc()  # type: ignore[attr-defined]
        except AttributeError:
            pass
        return False, exc


async def limited(aw: Awaitable[Any], timeout: float | None) -> Any:
    """Await ``aw`` under flownb's time limit (raises :class:`_TimedOut` when it fires)."""
    if not timeout:
        return await aw
    try:
        async with asyncio.timeout(timeout) as cm:
            return await aw
    except TimeoutError:
        if cm.expired():
            raise _TimedOut() from None
        raise


async def _call(fn: Callable[..., Any], args: tuple[Any, ...], is_async: bool,
                timeout: float | None, pool: concurrent.futures.Executor | None) -> Any:
    if is_async:
        return await limited(fn(*args), timeout)
    t0 = time.monotonic()
    tr = tracing.TRACER  # a pool thread does not inherit the visit's context: hand it over
    run = in_thread if tr is None else tr.bind(in_thread)
    fut = asyncio.get_running_loop().run_in_executor(pool, run, fn, *args)
    if timeout:
        done, _ = await asyncio.wait({fut}, timeout=timeout)
        if not done:  # the thread cannot be killed: abandoned, its late result discarded
            raise _TimedOut()
    ok, res = await fut
    if not ok:
        raise res
    if awaits(res):  # a sync function that returned a coroutine: awaited within the same limit
        return await limited(res, max(timeout - (time.monotonic() - t0), 1e-3) if timeout else None)
    return res


def try_inline(cn: CNode, ctx: NodeContext,
               catch: tuple[type[BaseException], ...] = IN_PROCESS_ERRORS,
               _traced: bool = False) -> tuple[bool, Any]:
    """Run a sync node without a timeout right here. ``(True, result)`` on success, else
    ``(False, Resume)`` for :func:`run_visit` to finish by the policy (a worker passes
    ``catch=WORKER_ERRORS``: there a node's KeyboardInterrupt is that node's error)."""
    if tracing.TRACER is not None and not _traced:  # in the visit's span (one read when off)
        return traced_inline(tracing.TRACER, cn, ctx, lambda: try_inline(cn, ctx, catch, True))
    impl = cn.impl
    assert impl is not None
    t0 = time.perf_counter()
    phase = "prep"
    prep: Any = ctx
    try:
        if impl.prep is not None:
            prep = impl.prep(ctx)
        phase = "exec"
        base = ctx._writes.copy() if ctx._writes else None
        res = impl.exec(prep)
        if type(res) not in _NOT_AWAITABLE and inspect.isawaitable(res):  # awaits(), inlined
            return False, Resume(prep, "await", None, "", t0, res, base or {})
        phase = "post"
        if impl.post is not None:
            res = impl.post(ctx, prep, res)
        return True, res
    except BaseException as exc:  # noqa: BLE001 - user code: see is_node_error
        if not is_node_error(exc, catch):
            raise
        if phase == "exec":
            ctx._writes = base or {}
        return False, Resume(prep, phase, exc, traceback.format_exc(), t0)


async def run_visit(cn: CNode, ctx: NodeContext, *, nodes: Mapping[str, CNode], emit: Emit,
                    run_id: str = "", pool: concurrent.futures.Executor | None = None,
                    call: Callable[[Any], Awaitable[Any]] | None = None,
                    resume: Resume | None = None,
                    catch: tuple[type[BaseException], ...] = _USER_ERRORS) -> Outcome:
    """Run one visit of ``cn`` by the policy; its fallback (if any) takes over a failure.

    ``call`` replaces the node's exec (subflow/map: an async call starting child runs);
    ``pool`` runs sync phases (``None``: the loop's default executor).
    With tracing on (:mod:`flownb.core.tracing`) the visit runs inside its span."""
    tr = tracing.TRACER
    if tr is not None:
        return await traced_visit(tr, cn, ctx, run_id, emit, lambda em: _visit(
            cn, ctx, nodes, em, run_id, pool, call, resume, catch),
            resume.span if resume is not None else None)
    return await _visit(cn, ctx, nodes, emit, run_id, pool, call, resume, catch)


async def _visit(cn: CNode, ctx: NodeContext, nodes: Mapping[str, CNode], emit: Emit, run_id: str,
                 pool: concurrent.futures.Executor | None,
                 call: Callable[[Any], Awaitable[Any]] | None, resume: Resume | None,
                 catch: tuple[type[BaseException], ...]) -> Outcome:
    out = await _attempts(cn, ctx, emit, run_id, pool, call, resume, catch)
    if out.ok or out.cancelled or cn.fallback is None:
        return out
    fb = nodes[cn.fallback]
    assert out.error is not None
    emit("node_failed", cn.id, {"attempt": out.attempts, "error": out.error, "fallback": fb.id})
    emit("node_fallback", fb.id, {"replaces": cn.id})
    emit("node_started", fb.id, {"visit": ctx.visit, "attempt": 1, "replaces": cn.id})
    fctx = NodeContext(ctx.input, fb.params, fb.id, ctx.visit, ctx._env)
    fout = await _attempts(fb, fctx, emit, run_id, pool, None, None, catch)
    fout.replaced = out
    if fout.error is not None:
        first = out.error
        fout.error["traceback"] = (f"{fout.error['traceback']}\n(fallback of {cn.id!r}, which "
                                   f"failed first with: {first['type']}: {first['message']})")
    return fout


async def _attempts(cn: CNode, ctx: NodeContext, emit: Emit, run_id: str,
                    pool: concurrent.futures.Executor | None,
                    call: Callable[[Any], Awaitable[Any]] | None, resume: Resume | None,
                    catch: tuple[type[BaseException], ...]) -> Outcome:
    t0 = resume.t0 if resume is not None else time.perf_counter()
    out = Outcome(cn.id)
    try:
        res = await _phases(cn, ctx, emit, run_id, pool, call, resume, out, catch)
    except _Fail as f:
        tb = f.tb
        exc = f.exc
        if isinstance(exc, NodeError) and exc.traceback:
            tb = f"{exc.traceback.rstrip()}\n--- in the child run of {cn.id!r} ---\n{tb}"
        out.error = {**error_dict(cn.id, f.attempt, exc, tb), "run_id": run_id}
        out.attempts = f.attempt
    else:
        if not out.cancelled:
            out.result = res
            out.writes = ctx._writes
    out.duration_s = time.perf_counter() - t0
    return out


async def _phases(cn: CNode, ctx: NodeContext, emit: Emit, run_id: str,
                  pool: concurrent.futures.Executor | None,
                  call: Callable[[Any], Awaitable[Any]] | None, resume: Resume | None,
                  out: Outcome, catch: tuple[type[BaseException], ...]) -> Any:
    impl = cn.impl
    attempt = 0
    first: tuple[BaseException, str] | None = None
    #: what the inline first attempt's sync exec returned, still to be awaited
    pending: Awaitable[Any] | None = None
    if call is not None:
        exec_fn: Callable[..., Any] = call
        is_async = True
        prep: Any = ctx
    else:
        assert impl is not None
        exec_fn, is_async = impl.exec, impl.is_async
        if resume is not None:
            prep = resume.prep
            if resume.phase == "await":
                pending = resume.pending
            else:
                assert resume.exc is not None
                if resume.phase == "prep":
                    raise _Fail(1, resume.exc, resume.tb)
                if resume.phase == "post":
                    out.attempts = 1
                    raise _Fail(1, resume.exc, resume.tb)
                first = (resume.exc, resume.tb)
        else:
            if ctx.cancelled:
                out.cancelled = True
                return None
            try:
                prep = ctx
                if impl.prep is not None:
                    prep = await _call(impl.prep, (ctx,), impl.prep_async, None, pool) \
                        if impl.prep_async else impl.prep(ctx)
            except BaseException as exc:  # noqa: BLE001 - user code: see is_node_error
                if not is_node_error(exc, catch):
                    raise
                raise _Fail(1, exc, getattr(exc, "_flownb_tb", None) or traceback.format_exc()) from None
    base = resume.base if resume is not None and resume.base is not None else dict(ctx._writes)
    timeout = cn.timeout_s
    err: BaseException
    tb: str
    while True:
        attempt += 1
        ctx.attempt = attempt
        out.attempts = attempt
        if attempt > 1:  # a failed attempt's state writes are discarded
            ctx._writes = dict(base)
        if first is not None:
            err, tb = first
            first = None
        else:
            if attempt > 1 and ctx.cancelled:
                out.cancelled = True
                return None
            try:
                if pending is not None:
                    aw, pending = pending, None
                    res = await limited(aw, timeout)
                else:
                    res = await _call(exec_fn, (prep,), is_async, timeout, pool)
                break
            except _TimedOut:
                err = NodeTimeout(f"attempt took longer than timeout_s={timeout}", node_id=cn.id,
                                  run_id=run_id or None, attempt=attempt)
                tb = ""
            except BaseException as e:  # noqa: BLE001 - user code: see is_node_error
                if not is_node_error(e, catch):
                    raise
                err, tb = e, getattr(e, "_flownb_tb", None) or traceback.format_exc()
        if attempt > cn.retries or not isinstance(err, Exception):
            raise _Fail(attempt, err, tb)  # a BaseException (SystemExit, ...): not retried
        delay = cn.config.retry_delay(attempt)
        emit("node_retrying", cn.id, {"attempt": attempt, "delay_s": delay, "error": short_error(err)})
        if delay:
            await asyncio.sleep(delay)
    if impl is not None and impl.post is not None and call is None:
        try:
            res = await _call(impl.post, (ctx, prep, res), True, None, pool) if impl.post_async \
                else impl.post(ctx, prep, res)
            if awaits(res):  # a sync post that returned a coroutine
                res = await res
        except BaseException as exc:  # noqa: BLE001 - user code: see is_node_error
            if not is_node_error(exc, catch):
                raise
            raise _Fail(attempt, exc, traceback.format_exc()) from None
    return res


__all__ = [
    "IN_PROCESS_ERRORS",
    "WORKER_ERRORS",
    "Outcome",
    "Resume",
    "awaits",
    "error_dict",
    "in_thread",
    "is_node_error",
    "limited",
    "run_visit",
    "short_error",
    "try_inline",
]
