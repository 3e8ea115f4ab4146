"""Time travel: every committed step of a run, and forks that replay them.

A *step* is one committed node visit: node, visit, output, action, the state keys it wrote (its
diff) and the edges it took. In process the engine's commit hands each step to a
:class:`Recorder` when asked (``arun(..., history=True)``; streams and forks always record). On
Redis the ``COMMIT`` script appends the step to the run's history stream in the same atomic call
that commits it, so the history can never disagree with the state, and it expires with the run.

A fork (:func:`fork`) replays: a new run starts with the same inputs, the recorded steps before the
fork point are committed again in their order *without running their nodes*, the edits are
applied, and the run goes on — the fork node runs again (seeing ``state=`` edits), or takes
``output=`` as its output without running. Scheduling is deterministic given the order of
commits, so the replayed prefix reaches the same visits, joins and ready set the original run had
at that point; work that was ready but not yet committed then runs for real.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..core import events as ev
from ..core.blueprint import Blueprint
from ..core.context import OUTPUTS_PREFIX
from ..core.errors import FlownbError
from ..core.events import Event, EventBus
from ..core.executors import ForkingExecutor

if TYPE_CHECKING:
    from ..core.registry import Registry
    from ..core.result import RunResult
    from .runtime import Engine
    from .scheduler import Item

_UNSET: Any = object()


@dataclass
class Step:
    """One committed node visit. ``flag``: ``""``, ``resumed`` / ``timeout`` (a person's answer
    or a wait's default), ``replayed`` (copied by a fork), ``edited`` (a fork's ``output=``)."""

    index: int
    node: str
    visit: int
    output: Any
    action: str | None = None
    writes: dict[str, Any] = field(default_factory=dict)
    taken: list[int] = field(default_factory=list)
    flag: str = ""
    ts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, state: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Apply this step to a run's state and outputs (replays, ``values`` streams)."""
        for k, v in self.writes.items():
            if k.startswith(OUTPUTS_PREFIX):
                outputs[k[len(OUTPUTS_PREFIX):]] = v
            else:
                state[k] = v
        outputs[self.node] = self.output

    def __repr__(self) -> str:
        extra = f" {self.flag}" if self.flag else ""
        act = f" action={self.action!r}" if self.action else ""
        return f"<Step {self.index} {self.node}#{self.visit}{act} writes={sorted(self.writes)}{extra}>"


class Recorder:
    """Collects the steps of one in-process run (the engine calls :meth:`commit`)."""

    def __init__(self, inputs: Mapping[str, Any]) -> None:
        self.inputs = dict(inputs)
        self.steps: list[Step] = []
        self.flag = ""  # set by resume/fork for the next commit only
        self.last: Step | None = None

    def commit(self, node: str, visit: int, output: Any, action: str | None,
               writes: Mapping[str, Any], taken: Any) -> None:
        step = Step(len(self.steps), node, visit, output, action, dict(writes), sorted(taken),
                    self.flag, time.time())
        self.flag = ""
        self.steps.append(step)
        self.last = step


@dataclass
class ForkPlan:
    """What a fork replays and changes; executor-neutral (JSON-able values only)."""

    blueprint: Blueprint
    inputs: dict[str, Any]
    replay: list[Step]
    node: str
    visit: int
    state: dict[str, Any]
    output: Any
    action: str | None
    source_run: str


def make_plan(source: Any, *, from_node: str, visit: int | None = None,
              state: Mapping[str, Any] | None = None, output: Any = _UNSET,
              action: str | None = None) -> ForkPlan:
    """Find the fork point in ``source``'s history (a result, handle, or their live run)."""
    live = getattr(source, "_run", None) or source
    if not hasattr(live, "fork_source"):
        raise FlownbError(f"cannot fork {source!r}: pass a RunResult of flownb.run(..., "
                          "history=True), a distributed RunHandle, or flownb.attach(run_id)")
    bp, inputs, steps = live.fork_source()
    run_id = str(getattr(live, "run_id", ""))
    if from_node not in {n.id for n in bp.nodes}:
        raise FlownbError(f"blueprint {bp.id!r} has no node {from_node!r} to fork from",
                          run_id=run_id)
    at = next((i for i, s in enumerate(steps)
               if s.node == from_node and (visit is None or s.visit == visit)), None)
    if at is None:
        failed = _failed_visit(source, live, from_node, steps, visit)
        if failed is not None:  # fork from the node the run failed at: replay everything before
            _check_state_keys(state, run_id)
            return ForkPlan(bp, dict(inputs), list(steps), from_node, failed, dict(state or {}),
                            output, action, run_id)
        done = sorted({f"{s.node}#{s.visit}" for s in steps})
        which = f"{from_node!r}" + (f" visit {visit}" if visit is not None else "")
        raise FlownbError(f"node {which} never committed in run {run_id}, so there is no point "
                          f"to fork from (committed: {done})", node_id=from_node, run_id=run_id)
    _check_state_keys(state, run_id)
    return ForkPlan(bp, dict(inputs), steps[:at], from_node, steps[at].visit, dict(state or {}),
                    output, action, run_id)


def _check_state_keys(state: Mapping[str, Any] | None, run_id: str) -> None:
    for k in state or {}:
        if not isinstance(k, str) or not k or k.startswith("_outputs"):
            raise FlownbError(f"fork state key {k!r} must be a non-empty string not starting "
                              "with '_outputs' (edit a node's output with output=)", run_id=run_id)


def _failed_visit(source: Any, live: Any, node: str, steps: list[Step],
                  visit: int | None) -> int | None:
    """The visit of ``node`` that ``source``'s run failed at (never committed), else ``None``."""
    err = getattr(source, "error", None)
    if err is None and hasattr(live, "result"):
        try:
            err = live.result(timeout=0.1, raise_on_error=False).error
        except FlownbError:
            return None  # still running, or gone
    if not isinstance(err, Mapping) or err.get("node_id") != node:
        return None
    failed = 1 + sum(1 for s in steps if s.node == node)
    return failed if visit in (None, failed) else None


def fork(source: Any, *, from_node: str, visit: int | None = None,
         state: Mapping[str, Any] | None = None, output: Any = _UNSET, action: str | None = None,
         executor: Any = None, registry: Registry | None = None, run_id: str | None = None,
         on_event: Any = None) -> Any:
    """Start a new run from ``source``'s history at ``from_node`` with edited values.

    ``state=``: keys written before ``from_node`` runs again; ``output=`` (with ``action=``):
    ``from_node``'s new output, without running it. Upstream nodes are never re-run. The fork
    runs where ``source`` ran (a :class:`RunResult` in process, a handle on its Redis), or on
    ``executor`` (``"local"`` or a :class:`~flownb.distributed.DistributedExecutor`). Returns the
    new run's :class:`RunResult` in process, a ``RunHandle`` on Redis."""
    plan = make_plan(source, from_node=from_node, visit=visit, state=state, output=output,
                     action=action)
    target = _target(source, executor)
    if target == "local":
        from ..core.aio import run_sync

        return run_sync(afork_local(plan, registry=registry, run_id=run_id, on_event=on_event))
    return _forking(target).fork(plan, run_id=run_id)


async def afork(source: Any, *, from_node: str, visit: int | None = None,
                state: Mapping[str, Any] | None = None, output: Any = _UNSET,
                action: str | None = None, executor: Any = None,
                registry: Registry | None = None, run_id: str | None = None,
                on_event: Any = None) -> Any:
    """:func:`fork` for ``async`` code (in process the fork is driven on this loop)."""
    plan = make_plan(source, from_node=from_node, visit=visit, state=state, output=output,
                     action=action)
    target = _target(source, executor)
    if target == "local":
        return await afork_local(plan, registry=registry, run_id=run_id, on_event=on_event)
    import asyncio

    return await asyncio.to_thread(_forking(target).fork, plan, run_id=run_id)


def _forking(target: Any) -> ForkingExecutor:
    # the executor starts its own fork (flownb.core.executors): this module knows no executor but
    # the in-process one
    return cast(ForkingExecutor, target)


def _target(source: Any, executor: Any) -> Any:
    if executor is not None:
        return executor
    return getattr(getattr(source, "_run", None) or source, "executor", "local")


async def afork_local(plan: ForkPlan, *, registry: Registry | None = None,
                      run_id: str | None = None, on_event: Any = None) -> RunResult:
    """Replay ``plan`` on a new in-process engine, then drive it on."""
    from ..core.registry import Result
    from .runtime import CancelToken, Engine, _prepare, new_run_id
    from .waiting import LocalRun

    graph, reg = _prepare(plan.blueprint, registry)
    bus = EventBus()
    unsub = bus.subscribe(on_event) if on_event is not None else None
    try:
        eng = Engine(graph, plan.inputs, run_id=run_id or new_run_id(), registry=reg, bus=bus,
                     cancel=CancelToken())
        eng.recorder = Recorder(plan.inputs)
        started = time.time()
        eng._emit(ev.RUN_STARTED, blueprint_id=plan.blueprint.id, inputs=list(plan.inputs),
                  forked_from=plan.source_run, from_node=plan.node)
        pool: list[Item] = list(eng.sched.start())
        for step in plan.replay:
            _take(pool, step.node, step.visit, plan)
            pool += _replay_local(eng, step)
        item = _take(pool, plan.node, plan.visit, plan)
        eng.state.update(plan.state)
        # a start node's input is the run's inputs; on Redis it is read from the state, so an
        # edited input key must reach it here too
        eng.inputs.update({k: v for k, v in plan.state.items() if k in eng.inputs})
        if plan.output is _UNSET:
            pool.insert(0, item)
        else:
            cn = graph.nodes[plan.node]
            eng.recorder.flag = "edited"
            eng._stat(cn.id)
            pool += eng._commit(cn, item, eng._context(cn, item), Result(plan.output, plan.action),
                                time.perf_counter())
        eng.start_items = pool
        result = await eng.drive()
    finally:
        if unsub is not None:
            unsub()
    result.started_at = started
    result._run = LocalRun(eng, started)
    return result


def _take(pool: list[Item], node: str, visit: int, plan: ForkPlan) -> Item:
    for i, it in enumerate(pool):
        if it.node == node and it.visit == visit:
            return pool.pop(i)
    raise FlownbError(f"the history of run {plan.source_run} does not replay on blueprint "
                      f"{plan.blueprint.id!r}: {node}#{visit} is not ready at that point (ready: "
                      f"{[f'{i.node}#{i.visit}' for i in pool]})", node_id=node)


def _replay_local(eng: Engine, step: Step) -> list[Item]:
    """Commit a recorded step without running its node: state, output, scheduler, events."""
    step.apply(eng.state, eng.outputs)
    eng._stat(step.node).status = "succeeded"
    assert eng.recorder is not None
    eng.recorder.flag = "replayed"
    eng.recorder.commit(step.node, step.visit, step.output, step.action, step.writes, step.taken)
    eng._emit(ev.NODE_SUCCEEDED, step.node, visit=step.visit, attempt=0, duration_s=0.0,
              action=step.action, output=_preview(step.output), flag="replayed", replayed=True,
              taken=sorted(step.taken))
    for i in step.taken:  # the replayed prefix is part of the fork's path
        eng.taken[i] = eng.taken.get(i, 0) + 1
    outcome = eng.sched.complete(step.node, step.visit, frozenset(step.taken))
    if outcome is None:
        return []
    for name in outcome.skipped:
        eng._stat(name).status = "skipped"
        eng._emit(ev.NODE_SKIPPED, name)
    return outcome.ready


def _preview(value: Any) -> Any:
    from .runtime import _preview as preview

    return preview(value)


__all__ = ["Event", "ForkPlan", "Recorder", "Step", "afork", "afork_local", "fork", "make_plan"]
