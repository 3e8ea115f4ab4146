"""The in-process executor: run a blueprint inside this Python process.

Design for speed: the per-node path of a chain of synchronous nodes is a plain loop — no task,
no thread, no copy of the state, events built only when someone listens. Concurrency is only
paid for where it exists: when several node visits are ready at once, async nodes run as tasks on
the loop and sync nodes in threads. A node with a timeout always runs off the inline path so
the timeout is enforced (async: cancelled; sync: abandoned in its thread — Python cannot kill a
thread — and the run goes on with a :class:`~flownb.core.errors.NodeTimeout`). How a visit is
attempted (retries, back-off, timeout, fallback) is :mod:`flownb.engine.attempt`, shared with the workers.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ..core import events as ev
from ..core import tracing
from .attempt import IN_PROCESS_ERRORS, Resume, run_visit, try_inline
from ..core.blueprint import Blueprint
from ..core.context import OUTPUTS_PREFIX, NodeContext, RunEnv, condition_resolver, resolve_inputs
from ..core.errors import FlownbError, MaxVisitsExceeded
from ..core.events import Event, EventBus
from ..core.graph import CNode, Graph, compile_graph, select_edges
from ..core.jsondata import check_inputs, check_mode, check_node_data
from ..core.limits import ChildBudget
from ..core.reducers import StateWriter
from ..core.registry import Registry, Result
from ..core.result import CANCELLED, FAILED, SUCCEEDED, WAITING, ChildStates, NodeStats, RunResult
from .scheduler import Item, Scheduler
from ..core.transforms import transformed_input
from .waiting import WaitRequest, park_local
from .children import structural_call
from .tracing import traced_run
from .support import CancelToken, _Failure, _no_resolve, _preview, _StateMap, sync_pool
from .controls import RunControl, hold


#: one ``(cn, item, ctx, resume)`` whose inline attempt failed: the policy finishes it
_Handoff = tuple[CNode, Item, NodeContext, Resume]


class Engine:
    """One run of one blueprint in this process (child runs of subflow/map get their own)."""

    def __init__(self, graph: Graph, inputs: Mapping[str, Any] | None, *, run_id: str,
                 registry: Registry, bus: EventBus, cancel: CancelToken,
                 max_concurrency: int | None = None, depth: int = 0,
                 budget: ChildBudget | None = None, check_json: str | None = None) -> None:
        self.g = graph
        self.bp = graph.blueprint
        self.inputs: dict[str, Any] = dict(inputs or {})
        self.state: dict[str, Any] = dict(self.inputs)
        self.outputs: dict[str, Any] = {}
        self.run_id = run_id
        self.registry = registry
        self.bus = bus
        self.cancel = cancel
        #: pause / resume_run (flownb.engine.controls); ``held``: the ready visits while paused
        self.control = cancel if isinstance(cancel, RunControl) else None
        self.held: deque[Item] | None = None
        self.sched = Scheduler(graph)
        self.writer = StateWriter(self.bp.reducers)  # reducers + conflicting parallel writes
        self.stats: dict[str, NodeStats] = {}
        self.taken: dict[int, int] = {}  # edge index -> times taken (RunResult.taken_edges)
        self.error: dict[str, Any] | None = None
        self.depth = depth
        #: what a node output / state write that is not JSON data does (flownb.jsondata)
        self.check_json = check_mode(check_json)
        if depth == 0:  # what submit refuses in a run's inputs (a child's come from JSON data)
            check_inputs(self.inputs, self.check_json)
        self._budget = budget  # shared by the root run and all its descendants; made on first use
        self._sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._env = RunEnv(run_id, self._read, self._emit_custom, self._is_cancelled, self.bp.id,
                           self._keys)
        # inline-path figures, folded into NodeStats at the end (no object per node on the hot path)
        self._dur: dict[str, float] = {}
        self._state_map = _StateMap(self.state, self.outputs)
        #: node states of finished child runs, for RunResult.child_states
        self._children = ChildStates()
        # human in the loop and time travel (flownb.engine.waiting, flownb.engine.history): visits parked for
        # an answer, the optional recorder of committed steps, and where a resumed or forked
        # drive starts instead of the start nodes
        self.parked: dict[tuple[str, int], Any] = {}
        self.recorder: Any = None
        self.start_items: list[Item] | None = None
        #: the trace context of the first drive: a resumed drive continues that trace
        self.trace: dict[str, str] | None = None

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
        tr = tracing.TRACER
        if tr is not None:  # in the run's span (flownb.engine.tracing)
            return await traced_run(tr, self, self._drive)
        return await self._drive()

    async def _drive(self) -> RunResult:
        started = time.time()
        if self.start_items is None:
            self._emit(ev.RUN_STARTED, blueprint_id=self.bp.id, inputs=list(self.inputs))
        status = SUCCEEDED
        running: dict[asyncio.Future[Any], Item] = {}
        cancel_fut: asyncio.Future[None] | None = None
        try:
            ready: deque[Item] = deque(self.sched.start() if self.start_items is None
                                       else self.start_items)
            self.start_items = None
            self.writer.fired(ready)
            while ready or running:
                if self.cancel.cancelled:
                    status = CANCELLED
                    break
                ctl = self.control
                if ctl is not None and ctl.paused and not running:  # hold no slot until resumed
                    await hold(self, ready)
                    continue
                while ready and not (ctl is not None and ctl.paused):
                    item = ready.popleft()
                    cn = self.g.nodes[item.node]
                    if cn.inline_ok and not ready and not running:
                        more, handoff = self._run_chain(cn, item)
                        ready.extend(more)
                        if handoff is not None:
                            hcn, hitem, hctx, resume = handoff
                            running[asyncio.ensure_future(
                                self._run_async(hcn, hitem, hctx, resume))] = hitem
                        elif self.cancel.cancelled:
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
            self.error = {k: v for k, v in f.error.items() if k != "run_id"}
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
        if status == SUCCEEDED and self.parked:
            status = WAITING
        if status not in (SUCCEEDED, WAITING):
            culprit = (self.error or {}).get("node_id")
            for name, st in self.stats.items():
                if st.status in ("running", "retrying"):
                    st.status = "failed" if name == culprit else "cancelled"
        finished = time.time()
        result = RunResult(run_id=self.run_id, blueprint_id=self.bp.id, status=status,
                           outputs=self.outputs, state=self.state, error=self.error,
                           nodes=self._all_stats(), started_at=started, finished_at=finished,
                           terminal=[n for n, cn in self.g.nodes.items() if not cn.out],
                           child_states=self._children.states(), taken_edges=dict(self.taken))
        if status == SUCCEEDED:
            self._emit(ev.RUN_FINISHED, duration_s=result.duration_s)
        elif status == WAITING:
            self._emit(ev.RUN_WAITING, nodes=[n for n, _ in self.parked])
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
                st.attempts += max(inline_runs, 0)
                if st.status == "pending":
                    st.status = "succeeded"
            st.visits = visits.get(n, st.visits)
            out[n] = st
        return out

    # -- inline (sync, no timeout) -----------------------------------------------------------------
    def _run_chain(self, cn: CNode, item: Item) -> tuple[list[Item], _Handoff | None]:
        """Run sync nodes one after another while exactly one successor is ready: a chain costs
        one function call per node, no task and no thread. A node that fails is handed to the
        attempt policy (retries, fallback, error) on the general path."""
        nodes = self.g.nodes
        is_cancelled = self.cancel._flag.is_set
        active = self.bus.active
        while True:
            ctx = self._context(cn, item)
            t0 = time.perf_counter()
            if active:
                self._emit(ev.NODE_STARTED, cn.id, visit=item.visit, attempt=1)
            ok, res = try_inline(cn, ctx)  # Ctrl-C is not a node error here: it cancels
            if not ok:
                return [], (cn, item, ctx, res)
            ready = self._commit(cn, item, ctx, res, t0, inline=True)
            if len(ready) != 1 or is_cancelled() or (self.control is not None and self.control.paused):
                return ready, None
            item = ready[0]
            cn = nodes[item.node]
            if not cn.inline_ok:
                return ready, None

    # -- general path ------------------------------------------------------------------------------
    async def _run_async(self, cn: CNode, item: Item, ctx: NodeContext | None = None,
                         resume: Resume | None = None) -> list[Item]:
        st = self._stat(cn.id)
        st.visits += 1
        st.status = "running"
        if ctx is None:
            ctx = self._context(cn, item)
            self._emit(ev.NODE_STARTED, cn.id, visit=item.visit, attempt=1)
        t0 = resume.t0 if resume is not None else time.perf_counter()
        call = self._structural_call(cn, ctx) if cn.structural else None
        if self._sem is not None:
            async with self._sem:
                out = await self._policy(cn, ctx, call, resume)
        else:
            out = await self._policy(cn, ctx, call, resume)
        if out.cancelled:
            st.status = "cancelled"
            return []
        replaced_by = None
        if out.replaced is not None:  # the fallback took over
            st.attempts += out.replaced.attempts
            st.status = "failed"
            fst = self._stat(out.node_id)
            fst.visits += 1
            fst.attempts += out.attempts
            fst.duration_s += out.duration_s
            if out.error is None:
                fst.status = "succeeded"
                self.outputs[out.node_id] = out.output
                replaced_by = out.node_id
        else:
            st.attempts += out.attempts
        if out.error is not None:
            raise _Failure(out.error)
        ctx._writes = out.writes
        return self._commit(cn, item, ctx, out.result, t0, replaced_by=replaced_by)

    def _policy(self, cn: CNode, ctx: NodeContext, call: Callable[[Any], Any] | None,
                resume: Resume | None) -> Any:
        return run_visit(cn, ctx, nodes=self.g.nodes, emit=self._policy_event, run_id=self.run_id,
                         pool=sync_pool(), call=call, resume=resume, catch=IN_PROCESS_ERRORS)

    def _policy_event(self, type_: str, node_id: str, data: dict[str, Any]) -> None:
        if type_ == ev.NODE_RETRYING:
            self._stat(node_id).status = "retrying"
        self._emit(type_, node_id, **data)

    # -- commit ------------------------------------------------------------------------------------
    def _commit(self, cn: CNode, item: Item, ctx: NodeContext, res: Any, t0: float,
                inline: bool = False, replaced_by: str | None = None) -> list[Item]:
        if type(res) is WaitRequest:  # the node asks a person: park the visit, hold nothing
            return park_local(self, cn, item, res, ctx.input)
        if type(res) is Result:
            output, action = res.output, res.action
        else:
            output, action = res, None
        if self.check_json != "off":  # what a worker's commit refuses fails here too
            check_node_data(output, ctx._writes, self.check_json, node_id=replaced_by or cn.id,
                            run_id=self.run_id)
        self.writer.apply(self.state, cn.id, item.visit, ctx._writes)
        self.outputs[cn.id] = output
        taken: set[int] | frozenset[int]
        if cn.out:
            taken = select_edges(cn, action, self._resolver(output, action, ctx.input)
                                 if cn.has_conditions else _no_resolve)
        else:
            taken = frozenset()
        for i in taken:  # the run's path (flownb.core.heat), kept for its result and drawings
            self.taken[i] = self.taken.get(i, 0) + 1
        dt = time.perf_counter() - t0
        if inline:
            self._dur[cn.id] = self._dur.get(cn.id, 0.0) + dt
        else:
            st = self.stats[cn.id]
            st.duration_s += dt
            st.status = "failed" if replaced_by else "succeeded"
        if self.recorder is not None:  # the values written (after reducers), so replays set them
            self.recorder.commit(cn.id, item.visit, output, action,
                                 {k: self.state.get(k, v) for k, v in ctx._writes.items()}, taken)
        if self.bus.active:
            self._emit(ev.NODE_SUCCEEDED, replaced_by or cn.id, visit=item.visit,
                       attempt=ctx.attempt, duration_s=dt, action=action, output=_preview(output),
                       taken=sorted(taken), **({"replaces": cn.id} if replaced_by else {}))
        outcome = self.sched.complete(cn.id, item.visit, taken)
        if outcome is None:
            return []
        self.writer.fired(outcome.ready)
        if outcome.skipped:
            for name in outcome.skipped:
                self._stat(name).status = "skipped"
                self._emit(ev.NODE_SKIPPED, name)
        return outcome.ready

    def _resolver(self, output: Any, action: str | None, input_: Any) -> Callable[[str], Any]:
        return condition_resolver(output, action, input_, self._state_map, self.outputs)

    def _context(self, cn: CNode, item: Item, input_: Any = None) -> NodeContext:
        if input_ is None:
            src = item.sources
            if cn.spec.inputs is None and len(src) == 1 and cn.n_fwd_in <= 1:
                input_ = self.outputs.get(src[0])
            else:
                input_ = self._input_for(cn, item)
            if cn.transforms is not None:
                input_ = transformed_input(cn, src, input_, self._read)
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
        return structural_call(self, cn, ctx)

    def _note_child(self, node: str, visit: int, prefix: str, res: RunResult) -> None:
        """Keep a finished child run's node states for the drawing of the parent's result."""
        self._children.add(node, visit, prefix, {n: st.status for n, st in res.nodes.items()},
                           res.child_states)

    def _reserve_children(self, cn: CNode, n: int) -> None:
        """Count ``n`` child runs against the root run's limits (:mod:`flownb.core.limits`)."""
        if self._budget is None:
            self._budget = ChildBudget()
        self._budget.reserve(n, depth=self.depth + 1, node_id=cn.id, run_id=self.run_id)

    async def _child(self, bp: Blueprint, inputs: dict[str, Any], run_id: str) -> RunResult:
        graph = compile_graph(bp, self.registry)
        child = Engine(graph, inputs, run_id=run_id, registry=self.registry, bus=self.bus,
                       cancel=self.cancel, depth=self.depth + 1, budget=self._budget,
                       check_json=self.check_json)
        return await child.drive()


__all__ = ["Engine"]
