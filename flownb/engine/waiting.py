"""Human in the loop: a run parks at a ``wait`` / ``approval`` node until someone answers.

Why *park* rather than *wait*: a person may answer in a minute or next week. A waiting visit is
only data — the prompt, the answer's schema or choices, the node's input — so no worker, thread
or task is held while it waits. The scheduler keeps the visit *active* (so joins after it and the
end-of-run sweep wait for it), and when nothing else is left to do the run's status is
``waiting``. The answer is committed as the node's output exactly like a normal commit, and the
node's edges route it as usual (see :mod:`flownb.core.answers`).

* In process: ``arun`` returns a :class:`~flownb.core.result.RunResult` with status ``waiting``;
  ``result.resume(node, value)`` (or ``await result.aresume(...)``) commits the answer and drives
  the same engine on. Or pass ``on_wait=`` to ``arun``: it is awaited for each answer.
* Distributed (:mod:`flownb.distributed.waiting`): the ``PARK`` script parks the visit on Redis;
  ``handle.resume`` runs the ``RESUME`` script, which checks that the visit still waits and then
  runs the ``COMMIT`` script's body — so a resumed run survives restarts of workers, clients and
  (with AOF) Redis, and a second answer is refused.

Any node may ask a person by returning :func:`wait_for` (LangGraph's ``interrupt()``, as a value).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import events as ev
from ..core.answers import AnswerError, check_answer, check_schema, route
from ..core.errors import FlownbError
from ..core.result import WAITING, RunResult
from ..core.templates import render_template
from . import runlog

if TYPE_CHECKING:
    from ..core.context import NodeContext
    from ..core.graph import CNode
    from .runtime import Engine
    from .scheduler import Item

_UNSET: Any = object()


class ResumeError(FlownbError):
    """A resume was refused (not waiting, answered already, late or unroutable answer)."""


@dataclass(frozen=True)
class WaitRequest:
    """What a node returns to park its visit until a person answers (see :func:`wait_for`)."""

    prompt: str = ""
    schema: Mapping[str, Any] | None = None
    choices: list[str] | None = None
    timeout_s: float | None = None
    default: Any = None
    has_default: bool = False


def wait_for(prompt: str = "", *, schema: Mapping[str, Any] | None = None,
             choices: list[str] | None = None, timeout_s: float | None = None,
             default: Any = _UNSET) -> WaitRequest:
    """Return this from a node to wait for a person: ``return flownb.wait_for("OK?", choices=[...])``.

    The answer becomes the node's output. ``timeout_s`` with ``default``: the default answer is
    taken when nobody answered in time (distributed: by the workers' reaper)."""
    if schema is not None:
        check_schema(schema, "wait schema")
    if choices is not None and (not isinstance(choices, list)
                                or not all(isinstance(c, str) and c for c in choices)):
        raise AnswerError(f"choices must be a list of non-empty strings, got {choices!r}")
    if timeout_s is not None and (isinstance(timeout_s, bool)
                                  or not isinstance(timeout_s, (int, float)) or timeout_s <= 0):
        raise AnswerError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    return WaitRequest(str(prompt), schema, choices, float(timeout_s) if timeout_s else None,
                       None if default is _UNSET else default, default is not _UNSET)


def wait_node(ctx: NodeContext) -> WaitRequest:
    """Built-in ``wait`` / ``approval``: params ``prompt`` (a ``{{var}}`` template over the input),
    ``schema`` or ``choices`` for the answer, ``timeout_s`` + ``default``. The answer is the output;
    ``approval`` choices default to the actions of the node's edges."""
    p = ctx.params
    prompt = p.get("prompt", "")
    if prompt:
        prompt = render_template(str(prompt), ctx.input, ctx._read, node_id=ctx.node_id)
    try:
        return wait_for(prompt, schema=p.get("schema"), choices=p.get("choices"),
                        timeout_s=p.get("timeout_s"), default=p.get("default", _UNSET))
    except AnswerError as exc:
        raise AnswerError(f"params: {exc.message}", node_id=ctx.node_id) from None


def request_info(cn: CNode, visit: int, req: WaitRequest, input_: Any) -> dict[str, Any]:
    """The JSON description of a parked visit, the same on both executors (what ``waiting()``
    lists and a widget shows)."""
    actions = sorted({e.action for e in cn.out if e.action})
    choices = req.choices
    if choices is None and req.schema is None and actions:
        choices = actions  # the answer must pick one of the node's ways out
    if req.timeout_s is not None and cn.out and not any(e.action is None for e in cn.out):
        taken = route({"choices": choices, "actions": actions}, req.default)
        if taken not in actions:  # else the timeout would leave the run waiting for ever
            raise AnswerError(f"timeout_s={req.timeout_s} needs a default answer that one of its "
                              f"edges takes: set params.default to one of {actions} (it is "
                              f"{req.default!r})", node_id=cn.id)
    return {"node": cn.id, "visit": visit, "prompt": req.prompt, "schema": req.schema,
            "choices": choices, "actions": actions, "timeout_s": req.timeout_s,
            "default": req.default, "has_default": req.has_default, "input": input_,
            "since": time.time()}


def answer_for(info: Mapping[str, Any], value: Any, *, by: str) -> tuple[Any, str | None]:
    """Check an answer (or take the default on a timeout): ``(output, action)``."""
    if by == "timeout":
        value = info.get("default")
    else:
        check_answer(info, value)
    return value, route(info, value)


# -- in process --------------------------------------------------------------------------------------

@dataclass
class _Parked:
    item: Item
    info: dict[str, Any]
    deadline: float | None


def park_local(engine: Engine, cn: CNode, item: Item, req: WaitRequest, input_: Any) -> list[Item]:
    """The in-process engine's commit hook for a :class:`WaitRequest`: park, hold nothing."""
    if engine.depth > 0:
        raise FlownbError("a wait inside a subflow/map child cannot park in process (its parent "
                          "would have to wait too); put the wait in the parent blueprint, or run "
                          "on Redis, where the child run parks and is resumed by its own id",
                          node_id=cn.id, run_id=engine.run_id)
    info = request_info(cn, item.visit, req, input_)
    deadline = time.time() + req.timeout_s if req.timeout_s else None
    engine.parked[(cn.id, item.visit)] = _Parked(item, info, deadline)
    engine._stat(cn.id).status = "waiting"
    engine._emit(ev.NODE_WAITING, cn.id, visit=item.visit, prompt=info["prompt"],
                 choices=info["choices"], schema=info["schema"], timeout_s=info["timeout_s"])
    return []


async def drive_local(engine: Engine, *, history: Any = False,
                      on_wait: Callable[[dict[str, Any]], Any] | None = None) -> RunResult:
    """Drive a new engine (``arun``): optional history recorder, then ``on_wait`` answers."""
    if history:
        from .history import Recorder

        engine.recorder = history if isinstance(history, Recorder) else Recorder(engine.inputs)
    result = await engine.drive()
    run = LocalRun(engine, result.started_at)
    result._run = run
    if on_wait is not None:
        result = await run.serve(result, on_wait)
    return result


class LocalRun:
    """The live side of an in-process result: resume its waiting visits, read its history."""

    def __init__(self, engine: Engine, started_at: float) -> None:
        self.engine = engine
        self.started_at = started_at
        self._driving = False
        self.answered: set[tuple[str, int]] = set()

    @property
    def run_id(self) -> str:
        return self.engine.run_id

    def waiting(self) -> list[dict[str, Any]]:
        return [{**p.info, "deadline": p.deadline} for p in self.engine.parked.values()]

    #: forks of an in-process run run in process unless told otherwise (flownb.fork)
    executor = "local"

    def history(self) -> list[Any]:
        rec = self.engine.recorder
        if rec is None:
            raise FlownbError("this run kept no history; run it with history=True "
                              "(flownb.run(bp, inputs, history=True))", run_id=self.run_id)
        return list(rec.steps)

    def fork_source(self) -> tuple[Any, dict[str, Any], list[Any]]:
        """What :func:`flownb.fork` replays: blueprint, inputs, steps."""
        steps = self.history()
        return self.engine.bp, dict(self.engine.recorder.inputs), steps

    def resume(self, node_id: str, value: Any, *, visit: int | None = None) -> RunResult:
        from ..core.aio import run_sync

        return run_sync(self.aresume(node_id, value, visit=visit))

    async def aresume(self, node_id: str, value: Any, *, visit: int | None = None,
                      by: str = "api") -> RunResult:
        """Commit ``value`` as the output of a waiting visit and drive the run on."""
        eng = self.engine
        key = self._find(node_id, visit)
        parked = eng.parked[key]
        if by != "timeout" and parked.deadline is not None and time.time() > parked.deadline:
            raise ResumeError(f"the answer came after timeout_s={parked.info['timeout_s']}; call "
                              "result.expire() to take the node's default answer",
                              node_id=node_id, run_id=self.run_id)
        if self._driving:
            raise ResumeError("the run is still running from the previous answer; resume after "
                              "it returns", node_id=node_id, run_id=self.run_id)
        from ..core.context import NodeContext
        from ..core.graph import select_edges
        from ..core.registry import Result
        from .runtime import _no_resolve

        try:
            output, action = answer_for(parked.info, value, by=by)
        except AnswerError as exc:
            raise ResumeError(exc.message, node_id=node_id, run_id=self.run_id) from None
        cn = eng.g.nodes[key[0]]
        input_ = parked.info["input"]
        try:  # refuse an answer no edge can take before anything changes
            select_edges(cn, action, eng._resolver(output, action, input_)
                         if cn.has_conditions else _no_resolve)
        except FlownbError as exc:
            raise ResumeError(exc.message, node_id=node_id, run_id=self.run_id) from None
        del eng.parked[key]
        self.answered.add(key)
        self._driving = True
        try:
            if eng.recorder is not None:
                eng.recorder.flag = "timeout" if by == "timeout" else "resumed"
            ctx = NodeContext(input_, cn.params, cn.id, key[1], eng._env)
            ready = eng._commit(cn, parked.item, ctx, Result(output, action), time.perf_counter())
            eng.start_items = ready
            result = await eng.drive()
        finally:
            self._driving = False
        result.started_at = self.started_at
        result._run = self
        runlog.update(self.run_id, result)  # the runs browser shows the run as it is now
        return result

    def expire(self) -> RunResult | None:
        from ..core.aio import run_sync

        return run_sync(self.aexpire())

    async def aexpire(self) -> RunResult | None:
        """Take the default answer of every wait whose ``timeout_s`` has passed."""
        result = None
        now = time.time()
        for (node, visit), p in list(self.engine.parked.items()):
            if p.deadline is not None and now > p.deadline and (node, visit) in self.engine.parked:
                result = await self.aresume(node, None, visit=visit, by="timeout")
        return result

    async def serve(self, result: RunResult, on_wait: Callable[[dict[str, Any]], Any]) -> RunResult:
        """Answer waits with ``on_wait(info)`` (sync or async) until the run stops waiting; a
        wait with ``timeout_s`` takes its default when ``on_wait`` is slower than that."""
        while result.status == WAITING:
            info = self.waiting()[0]
            timeout = info["timeout_s"]
            try:
                answer = on_wait(info)
                if inspect.isawaitable(answer):
                    answer = await asyncio.wait_for(answer, timeout)
                result = await self.aresume(info["node"], answer, visit=info["visit"])
            except TimeoutError:
                result = await self.aresume(info["node"], None, visit=info["visit"], by="timeout")
        return result

    def _find(self, node_id: str, visit: int | None) -> tuple[str, int]:
        eng = self.engine
        keys = [k for k in eng.parked if k[0] == node_id and (visit is None or k[1] == visit)]
        if len(keys) == 1:
            return keys[0]
        if len(keys) > 1:
            raise ResumeError(f"visits {sorted(k[1] for k in keys)} are waiting; pass visit=",
                              node_id=node_id, run_id=self.run_id)
        if node_id not in eng.g.nodes:
            raise ResumeError(f"the blueprint has no node {node_id!r}", node_id=node_id,
                              run_id=self.run_id)
        why = _why_not(any(n == node_id for n, _ in self.answered),
                       any(n == node_id for n, _ in eng.sched.done))
        waiting = sorted({n for n, _ in eng.parked}) or "none"
        raise ResumeError(f"cannot resume: {why} (waiting now: {waiting})", node_id=node_id,
                          run_id=self.run_id)



def _why_not(answered: bool, committed: bool) -> str:
    if answered:
        return "it was answered already"
    return "it is not waiting (it finished; only wait/approval nodes take answers)" if committed \
        else "it is not waiting"
