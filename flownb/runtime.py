"""The in-process executor: run a blueprint inside this Python process.

Design for speed: the per-node path of a chain of synchronous nodes is a plain loop — no task,
no thread, no copy of the state, events built only when someone listens. Concurrency is only
paid for where it exists: when several node visits are ready at once, async nodes run as tasks on
the loop and sync nodes in threads. A node with a timeout always runs off the inline path so
the timeout is enforced (async: cancelled; sync: abandoned in its thread — Python cannot kill a
thread — and the run goes on with a :class:`~flownb.errors.NodeTimeout`).
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from . import events as ev
from .blueprint import Blueprint, load
from .context import OUTPUTS_PREFIX, NodeContext, RunEnv, resolve_inputs
from .errors import FlownbError, MaxVisitsExceeded, NodeError, NodeTimeout, RegistryError
from .events import Event, EventBus
from .graph import CNode, Graph, compile_graph, select_edges
from .limits import ChildBudget, LimitExceeded, child_limit_message
from .registry import Registry, Result, default_registry
from .result import CANCELLED, FAILED, SUCCEEDED, NodeStats, RunResult
from .scheduler import Item, Scheduler


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class CancelToken:
    """Thread-safe cancellation flag that also wakes the run's event loop."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._flag.set()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_set_done, fut)

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def future(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._flag.is_set():
                fut.set_result(None)
            else:
                self._waiters.append((loop, fut))
        return fut


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Failure(Exception):
    """Internal: a node failed for good; carries what the run's error needs."""

    def __init__(self, node_id: str, attempt: int, exc: BaseException, tb: str) -> None:
        super().__init__(str(exc))
        self.node_id = node_id
        self.attempt = attempt
        self.exc = exc
        self.tb = tb

    def to_error(self) -> dict[str, Any]:
        exc = self.exc
        message = exc.message if isinstance(exc, FlownbError) else str(exc)
        return {"node_id": self.node_id, "attempt": self.attempt, "type": type(exc).__name__,
                "message": message or type(exc).__name__, "traceback": self.tb}


class _Outputs(Mapping[str, Any]):
    """``state._outputs`` as a mapping, so conditions can say ``state._outputs.fetch.ok``."""

    __slots__ = ("_o",)

    def __init__(self, outputs: dict[str, Any]) -> None:
        self._o = outputs

    def __getitem__(self, k: str) -> Any:
        return self._o[k]

    def __iter__(self) -> Any:
        return iter(self._o)

    def __len__(self) -> int:
        return len(self._o)


class _StateMap(Mapping[str, Any]):
    """The run's state for conditions: plain keys plus ``_outputs``."""

    __slots__ = ("_s", "_o")

    def __init__(self, state: dict[str, Any], outputs: dict[str, Any]) -> None:
        self._s = state
        self._o = outputs

    def __getitem__(self, k: str) -> Any:
        if k == "_outputs":
            return _Outputs(self._o)
        if k.startswith(OUTPUTS_PREFIX):
            return self._o[k[len(OUTPUTS_PREFIX):]]
        return self._s[k]

    def __iter__(self) -> Any:
        return iter(self._s)

    def __len__(self) -> int:
        return len(self._s)


class Engine:
    """One run of one blueprint in this process (child runs of subflow/map get their own)."""

    def __init__(self, graph: Graph, inputs: Mapping[str, Any] | None, *, run_id: str,
                 registry: Registry, bus: EventBus, cancel: CancelToken,
                 max_concurrency: int | None = None, depth: int = 0,
                 budget: ChildBudget | None = None) -> None:
        self.g = graph
        self.bp = graph.blueprint
        self.inputs: dict[str, Any] = dict(inputs or {})
        self.state: dict[str, Any] = dict(self.inputs)
        self.outputs: dict[str, Any] = {}
        self.run_id = run_id
        self.registry = registry
        self.bus = bus
        self.cancel = cancel
        self.sched = Scheduler(graph)
        self.stats: dict[str, NodeStats] = {}
        self.error: dict[str, Any] | None = None
        self.depth = depth
        self._budget = budget  # shared by the root run and all its descendants; made on first use
        self._sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._replaced: dict[tuple[str, int], str] = {}
        self._env = RunEnv(run_id, self._read, self._emit_custom, self._is_cancelled, self.bp.id,
                           self._keys)
        # inline-path figures, folded into NodeStats at the end (no object per node on the hot path)
        self._dur: dict[str, float] = {}
        self._extra_attempts: dict[str, int] = {}
        self._state_map = _StateMap(self.state, self.outputs)

    # -- state access ----------------------------------------------------------------------------
    def _read(self, key: str) -> Any:
        if key.startswith(OUTPUTS_PREFIX):
            return self.outputs[key[len(OUTPUTS_PREFIX):]]
        return self.state[key]

    def _keys(self) -> Any:
        return iter(self.state)

    def _emit(self, type_: str, node_id: str | None = None, **data: Any) -> None:
        if self.bus.active:
            self.bus.emit(Event(type_, self.run_id, node_id, data))

    def _stat(self, node_id: str) -> NodeStats:
        st = self.stats.get(node_id)
        if st is None:
            st = self.stats[node_id] = NodeStats(node_id)
        return st

    # -- the drive loop --------------------------------------------------------------------------
    async def drive(self) -> RunResult:
        started = time.time()
        self._emit(ev.RUN_STARTED, blueprint_id=self.bp.id, inputs=list(self.inputs))
        status = SUCCEEDED
        running: dict[asyncio.Future[Any], Item] = {}
        cancel_fut: asyncio.Future[None] | None = None
        try:
            ready: deque[Item] = deque(self.sched.start())
            while ready or running:
                if self.cancel.cancelled:
                    status = CANCELLED
                    break
                while ready:
                    item = ready.popleft()
                    cn = self.g.nodes[item.node]
                    if cn.inline_ok and not ready and not running and cn.fallback is None:
                        ready.extend(self._run_chain(cn, item))
                        if self.cancel.cancelled:
                            break
                    else:
                        running[asyncio.ensure_future(self._run_async(cn, item))] = item
                if not running:
                    continue
                if cancel_fut is None:
                    cancel_fut = self.cancel.future()
                done, _ = await asyncio.wait([*running, cancel_fut],
                                             return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    if fut is cancel_fut:
                        continue
                    item = running.pop(fut)
                    ready.extend(fut.result())
        except _Failure as f:
            status = FAILED
            self.error = f.to_error()
            self._stat(f.node_id).status = "failed"
            self._stat(f.node_id).error = self.error["message"]
            self._emit(ev.NODE_FAILED, f.node_id, attempt=f.attempt, error=self.error)
        except MaxVisitsExceeded as exc:
            status = FAILED
            self.error = {"node_id": exc.node_id, "attempt": 1, "type": "MaxVisitsExceeded",
                          "message": exc.message, "traceback": ""}
        except FlownbError as exc:  # e.g. an action no edge knows
            status = FAILED
            if exc.node_id:
                self._stat(exc.node_id).status = "failed"
            self.error = {"node_id": exc.node_id, "attempt": 1, "type": type(exc).__name__,
                          "message": exc.message, "traceback": traceback.format_exc()}
        finally:
            for fut in running:
                fut.cancel()
            if cancel_fut is not None and not cancel_fut.done():
                cancel_fut.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        if status == SUCCEEDED and self.cancel.cancelled:
            status = CANCELLED
        if status != SUCCEEDED:
            culprit = (self.error or {}).get("node_id")
            for name, st in self.stats.items():
                if st.status in ("running", "retrying"):
                    st.status = "failed" if name == culprit else "cancelled"
        finished = time.time()
        result = RunResult(run_id=self.run_id, blueprint_id=self.bp.id, status=status,
                           outputs=self.outputs, state=self.state, error=self.error,
                           nodes=self._all_stats(), started_at=started, finished_at=finished,
                           terminal=[n for n, cn in self.g.nodes.items() if not cn.out])
        if status == SUCCEEDED:
            self._emit(ev.RUN_FINISHED, duration_s=result.duration_s)
        elif status == FAILED:
            self._emit(ev.RUN_FAILED, (self.error or {}).get("node_id"), error=self.error)
        else:
            self._emit(ev.RUN_CANCELLED)
        return result

    def _all_stats(self) -> dict[str, NodeStats]:
        """Per-node figures: the general path keeps NodeStats as it goes; inline runs are folded
        in here from the scheduler's visit counts and the duration/attempt tallies."""
        out = {}
        visits = self.sched.visits
        for n in self.g.nodes:
            st = self.stats.get(n)
            dur = self._dur.get(n)
            if st is None:
                st = NodeStats(n)
                if dur is None:
                    out[n] = st
                    continue
            if dur is not None:
                inline_runs = visits.get(n, 0) - st.visits
                st.duration_s += dur
                st.attempts += max(inline_runs, 0) + self._extra_attempts.get(n, 0)
                if st.status == "pending":
                    st.status = "succeeded"
            st.visits = visits.get(n, st.visits)
            out[n] = st
        return out

    # -- inline (sync, no timeout) -----------------------------------------------------------------
    def _run_chain(self, cn: CNode, item: Item) -> list[Item]:
        """Run sync nodes one after another while exactly one successor is ready: a chain costs
        one function call per node, no task and no thread."""
        nodes = self.g.nodes
        is_cancelled = self.cancel._flag.is_set
        while True:
            ready = self._run_inline(cn, item)
            if len(ready) != 1 or is_cancelled():
                return ready
            item = ready[0]
            cn = nodes[item.node]
            if not cn.inline_ok or cn.fallback is not None:
                return ready

    def _run_inline(self, cn: CNode, item: Item) -> list[Item]:
        impl = cn.impl
        assert impl is not None
        ctx = self._context(cn, item)
        t0 = time.perf_counter()
        if self.bus.active:
            self._emit(ev.NODE_STARTED, cn.id, visit=item.visit, attempt=1)
        try:
            prep = impl.prep(ctx) if impl.prep is not None else ctx
        except Exception as exc:  # noqa: BLE001 - user code
            raise _Failure(cn.id, 1, exc, traceback.format_exc()) from None
        attempt = 0
        base = dict(ctx._writes)
        while True:
            attempt += 1
            ctx.attempt = attempt
            if attempt > 1:  # a failed attempt's state writes are discarded
                ctx._writes = dict(base)
            try:
                res = impl.exec(prep)
                break
            except Exception as exc:  # noqa: BLE001 - user code
                if attempt > cn.retries:
                    self._extra_attempts[cn.id] = self._extra_attempts.get(cn.id, 0) + attempt - 1
                    raise _Failure(cn.id, attempt, exc, traceback.format_exc()) from None
                delay = cn.config.retry_delay(attempt)
                self._emit(ev.NODE_RETRYING, cn.id, attempt=attempt, delay_s=delay,
                           error=_err(exc))
                if delay:
                    time.sleep(delay)
        if impl.post is not None:
            try:
                res = impl.post(ctx, prep, res)
            except Exception as exc:  # noqa: BLE001 - user code
                raise _Failure(cn.id, attempt, exc, traceback.format_exc()) from None
        if attempt > 1:
            self._extra_attempts[cn.id] = self._extra_attempts.get(cn.id, 0) + attempt - 1
        return self._commit(cn, item, ctx, res, t0, inline=True)

    # -- general path ------------------------------------------------------------------------------
    async def _run_async(self, cn: CNode, item: Item) -> list[Item]:
        ctx = self._context(cn, item)
        st = self._stat(cn.id)
        st.visits += 1
        st.status = "running"
        t0 = time.perf_counter()
        self._emit(ev.NODE_STARTED, cn.id, visit=item.visit, attempt=1)
        if self._sem is not None:
            async with self._sem:
                res = await self._attempt_all(cn, ctx, item)
        else:
            res = await self._attempt_all(cn, ctx, item)
        return self._commit(cn, item, ctx, res, t0)

    async def _attempt_all(self, cn: CNode, ctx: NodeContext, item: Item) -> Any:
        try:
            return await self._attempts(cn, ctx)
        except _Failure as f:
            if cn.fallback is None:
                raise
            fb = self.g.nodes[cn.fallback]
            self._emit(ev.NODE_FAILED, cn.id, attempt=f.attempt, error=f.to_error(),
                       fallback=fb.id)
            self._emit(ev.NODE_FALLBACK, fb.id, replaces=cn.id)
            self._emit(ev.NODE_STARTED, fb.id, visit=item.visit, attempt=1, replaces=cn.id)
            self._stat(cn.id).status = "failed"
            fctx = self._context(fb, item, input_=ctx.input)
            st = self._stat(fb.id)
            st.visits += 1
            st.status = "running"
            t0 = time.perf_counter()
            try:
                res = await self._attempts(fb, fctx)
            except _Failure as f2:
                f2.tb = f"{f2.tb}\n(fallback of {cn.id!r}, which failed first with: " \
                        f"{f.to_error()['type']}: {f.to_error()['message']})"
                raise
            out, _ = _split(res)
            self.outputs[fb.id] = out
            st.status = "succeeded"
            st.duration_s += time.perf_counter() - t0
            ctx._writes = fctx._writes
            self._replaced[(cn.id, item.visit)] = fb.id
            return res

    async def _attempts(self, cn: CNode, ctx: NodeContext) -> Any:
        impl = cn.impl
        if cn.structural:
            call: Callable[[Any], Any] = self._structural_call(cn, ctx)
            is_async = True
            prep: Any = ctx
        else:
            assert impl is not None
            try:
                prep = impl.prep(ctx) if impl.prep is not None else ctx
                if impl.prep_async:
                    prep = await prep
            except Exception as exc:  # noqa: BLE001 - user code
                raise _Failure(cn.id, 1, exc, traceback.format_exc()) from None
            call = impl.exec
            is_async = impl.is_async
        timeout = cn.timeout_s
        attempt = 0
        st = self._stat(cn.id)
        base = dict(ctx._writes)
        while True:
            attempt += 1
            ctx.attempt = attempt
            st.attempts += 1
            if attempt > 1:  # a failed attempt's state writes are discarded
                ctx._writes = dict(base)
            try:
                if is_async:
                    res = await _limited(call(prep), timeout)
                else:
                    fut = asyncio.get_running_loop().run_in_executor(None, _in_thread, call, prep)
                    if timeout:
                        done, _ = await asyncio.wait({fut}, timeout=timeout)
                        if not done:  # the thread cannot be killed; it is abandoned
                            raise _TimedOut()
                    ok, res = await fut
                    if not ok:
                        raise res
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - user code
                tb = getattr(exc, "_flownb_tb", None) or traceback.format_exc()
                if isinstance(exc, _TimedOut):
                    exc = NodeTimeout(f"attempt took longer than timeout_s={timeout}",
                                      node_id=cn.id, run_id=self.run_id, attempt=attempt)
                    tb = ""
                elif isinstance(exc, NodeError) and exc.traceback:
                    tb = f"{exc.traceback.rstrip()}\n--- in the child run of {cn.id!r} ---\n{tb}"
                if attempt > cn.retries:
                    raise _Failure(cn.id, attempt, exc, tb) from None
                delay = cn.config.retry_delay(attempt)
                st.status = "retrying"
                self._emit(ev.NODE_RETRYING, cn.id, attempt=attempt, delay_s=delay, error=_err(exc))
                if delay:
                    await asyncio.sleep(delay)
        if impl is not None and impl.post is not None and not cn.structural:
            try:
                res = impl.post(ctx, prep, res)
                if impl.post_async:
                    res = await res
            except Exception as exc:  # noqa: BLE001 - user code
                raise _Failure(cn.id, attempt, exc, traceback.format_exc()) from None
        return res

    # -- commit ------------------------------------------------------------------------------------
    def _commit(self, cn: CNode, item: Item, ctx: NodeContext, res: Any, t0: float,
                inline: bool = False) -> list[Item]:
        if type(res) is Result:
            output, action = res.output, res.action
        else:
            output, action = res, None
        if ctx._writes:
            self.state.update(ctx._writes)
        self.outputs[cn.id] = output
        taken: set[int] | frozenset[int]
        if cn.out:
            taken = select_edges(cn, action, self._resolver(output, action, ctx.input)
                                 if cn.has_conditions else _no_resolve)
        else:
            taken = frozenset()
        dt = time.perf_counter() - t0
        replaced_by = None
        if inline:
            self._dur[cn.id] = self._dur.get(cn.id, 0.0) + dt
        else:
            st = self.stats[cn.id]
            st.duration_s += dt
            replaced_by = self._replaced.pop((cn.id, item.visit), None) if self._replaced else None
            st.status = "failed" if replaced_by else "succeeded"
        if self.bus.active:
            self._emit(ev.NODE_SUCCEEDED, replaced_by or cn.id, visit=item.visit,
                       attempt=ctx.attempt, duration_s=dt, action=action, output=_preview(output),
                       **({"replaces": cn.id} if replaced_by else {}))
        outcome = self.sched.complete(cn.id, item.visit, taken)
        if outcome is None:
            return []
        if outcome.skipped:
            for name in outcome.skipped:
                self._stat(name).status = "skipped"
                self._emit(ev.NODE_SKIPPED, name)
        return outcome.ready

    def _resolver(self, output: Any, action: str | None, input_: Any) -> Callable[[str], Any]:
        state_map = self._state_map

        def resolve(name: str) -> Any:
            if name == "result":
                return {"output": output, "action": action}
            if name == "output":
                return output
            if name == "action":
                return action
            if name in ("state", "context"):
                return state_map
            if name == "outputs":
                return self.outputs
            if name == "input":
                return input_
            if name in self.state:
                return self.state[name]
            return self.outputs[name]

        return resolve

    def _context(self, cn: CNode, item: Item, input_: Any = None) -> NodeContext:
        if input_ is None:
            src = item.sources
            if cn.spec.inputs is None and len(src) == 1 and cn.n_fwd_in <= 1:
                input_ = self.outputs.get(src[0])
            else:
                input_ = self._input_for(cn, item)
        return NodeContext(input_, cn.params, cn.id, item.visit, self._env)

    def _is_cancelled(self) -> bool:
        return self.cancel.cancelled

    def _emit_custom(self, node_id: str, name: str, data: dict[str, Any]) -> None:
        if self.bus.active:
            self._emit(ev.CUSTOM, node_id, name=name, **data)

    def _input_for(self, cn: CNode, item: Item) -> Any:
        if cn.spec.inputs is not None:
            return resolve_inputs(cn.spec.inputs, self._read)
        src = item.sources
        if not src:
            return self.inputs
        if len(src) == 1 and (cn.n_fwd_in <= 1 or cn.join == "any"):
            return self.outputs.get(src[0])
        return {s: self.outputs.get(s) for s in src}

    # -- subflow and map ---------------------------------------------------------------------------
    def _structural_call(self, cn: CNode, ctx: NodeContext) -> Callable[[Any], Any]:
        from . import builtins

        async def call(_: Any) -> Any:
            if cn.uses == "subflow":
                bp = self.registry.get_blueprint(builtins.subflow_blueprint_id(cn), node_id=cn.id)
                self._reserve_children(cn, 1)
                child_inputs = builtins.subflow_inputs(cn.params, ctx.input, self._read)
                res = await self._child(bp, child_inputs, f"{self.run_id}/{cn.id}.{ctx.visit}")
                _raise_child(cn, res)
                for k, v in builtins.subflow_outputs(cn.params, res).items():
                    ctx.state.set(k, v)
                return res.output
            plan = builtins.map_plan(cn, ctx.input, self._read, self.registry)
            self._reserve_children(cn, len(plan.inputs))
            sem = asyncio.Semaphore(plan.concurrency)

            async def one(i: int, child_inputs: dict[str, Any]) -> Any:
                async with sem:
                    r = await self._child(plan.blueprint, child_inputs,
                                          f"{self.run_id}/{cn.id}.{ctx.visit}[{i}]")
                _raise_child(cn, r, index=i)
                return r.output

            tasks = [asyncio.ensure_future(one(i, x)) for i, x in enumerate(plan.inputs)]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:  # one item failed: its siblings must not go on (nor recurse)
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        return call

    def _reserve_children(self, cn: CNode, n: int) -> None:
        """Count ``n`` child runs against the root run's limits (:mod:`flownb.limits`)."""
        if self._budget is None:
            self._budget = ChildBudget()
        self._budget.reserve(n, depth=self.depth + 1, node_id=cn.id, run_id=self.run_id)

    async def _child(self, bp: Blueprint, inputs: dict[str, Any], run_id: str) -> RunResult:
        graph = compile_graph(bp, self.registry)
        child = Engine(graph, inputs, run_id=run_id, registry=self.registry, bus=self.bus,
                       cancel=self.cancel, depth=self.depth + 1, budget=self._budget)
        return await child.drive()


def _in_thread(fn: Callable[[Any], Any], arg: Any) -> tuple[bool, Any]:
    """Run a sync node in a pool thread and hand back ``(ok, value_or_exception)``.

    Raising across the thread hop loses information: asyncio replaces a ``TimeoutError`` coming
    back from a thread with a new object, without the node's frames. So the exception travels as
    a value, with the traceback text of its own frames attached."""
    try:
        return True, fn(arg)
    except Exception as exc:  # noqa: BLE001 - user code
        try:
            exc._flownb_tb = traceback.format_exc()  # type: ignore[attr-defined]
        except AttributeError:
            pass
        return False, exc


class _TimedOut(Exception):
    """Internal: flownb's own time limit fired (a node's own TimeoutError is not this)."""


async def _limited(coro: Any, timeout: float | None) -> Any:
    if not timeout:
        return await coro
    try:
        async with asyncio.timeout(timeout) as cm:
            return await coro
    except TimeoutError:
        if cm.expired():
            raise _TimedOut() from None
        raise


def _no_resolve(name: str) -> Any:
    raise KeyError(name)


def _raise_child(cn: CNode, res: RunResult, index: int | None = None) -> None:
    if res.status == SUCCEEDED:
        return
    err = res.error or {}
    limit = child_limit_message(err)
    if limit is not None:  # one message from the deepest run, not one nesting per level
        raise LimitExceeded(limit, node_id=cn.id)
    which = f"item {index}" if index is not None else "child run"
    raise NodeError(f"{which} {res.run_id} {res.status}: {err.get('node_id')!r} "
                    f"{err.get('type', '')}: {err.get('message', '')}", node_id=cn.id,
                    traceback=err.get("traceback", ""))


def _split(res: Any) -> tuple[Any, str | None]:
    if type(res) is Result:
        return res.output, res.action
    return res, None


def _err(exc: BaseException) -> dict[str, str]:
    msg = exc.message if isinstance(exc, FlownbError) else str(exc)
    return {"type": type(exc).__name__, "message": msg}


def _preview(value: Any, limit: int = 200) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- public entry points -----------------------------------------------------------------------------

def _prepare(blueprint: Blueprint | Mapping[str, Any] | str, registry: Registry | None) -> tuple[Graph, Registry]:
    bp = load(blueprint)  # type: ignore[arg-type]
    reg = registry or default_registry
    return compile_graph(bp, reg), reg


async def arun(blueprint: Blueprint | Mapping[str, Any] | str, inputs: Mapping[str, Any] | None = None,
               *, registry: Registry | None = None, run_id: str | None = None,
               on_event: Callable[[Event], None] | None = None, bus: EventBus | None = None,
               cancel: CancelToken | None = None, max_concurrency: int | None = None,
               raise_on_error: bool = True) -> RunResult:
    """Run a blueprint in this process and return its :class:`RunResult`.

    ``on_event`` receives every :class:`~flownb.events.Event`; ``cancel`` lets another thread or
    task stop the run. A failed run raises :class:`~flownb.errors.RunFailed` (node id, error,
    original traceback; ``.result`` holds the :class:`RunResult`) and a cancelled one
    :class:`~flownb.errors.RunCancelled`, so failure is never silent; pass
    ``raise_on_error=False`` to get the result back whatever its status.
    """
    graph, reg = _prepare(blueprint, registry)
    bus = bus or EventBus()
    unsub = bus.subscribe(on_event) if on_event is not None else None
    try:
        engine = Engine(graph, inputs, run_id=run_id or new_run_id(), registry=reg, bus=bus,
                        cancel=cancel or CancelToken(), max_concurrency=max_concurrency)
        result = await engine.drive()
    finally:
        if unsub is not None:
            unsub()
    return result.raise_for_status() if raise_on_error else result


def run(blueprint: Blueprint | Mapping[str, Any] | str, inputs: Mapping[str, Any] | None = None,
        *, registry: Registry | None = None, run_id: str | None = None,
        on_event: Callable[[Event], None] | None = None, bus: EventBus | None = None,
        cancel: CancelToken | None = None, max_concurrency: int | None = None,
        raise_on_error: bool = True) -> RunResult:
    """Synchronous :func:`arun`, same arguments (spelled out so a typo is a type error);
    works inside Jupyter's running event loop too."""
    from .aio import run_sync

    return run_sync(arun(blueprint, inputs, registry=registry, run_id=run_id, on_event=on_event,
                         bus=bus, cancel=cancel, max_concurrency=max_concurrency,
                         raise_on_error=raise_on_error))


__all__ = ["arun", "run", "Engine", "CancelToken", "new_run_id", "RegistryError"]
