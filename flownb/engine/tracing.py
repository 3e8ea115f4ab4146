"""Where a run and a node visit open their spans, for both executors.

The attempt policy (:func:`flownb.engine.attempt.run_visit`) is the one place every node visit
goes through, in process and on a worker, so the visit span is opened there
(:func:`traced_visit`): it covers the attempts, the retries (span events) and a fallback, and
ends with the visit's status, attempt count and error type. :func:`traced_run` wraps an
in-process :class:`~flownb.engine.driver.Engine` drive; child runs (subflow, map) drive inside
their node's visit span, so they nest under it. A node that parks for a person records a
``flownb.wait`` event. Only called when :data:`flownb.core.tracing.TRACER` is set; see
:mod:`flownb.core.tracing` for why the hooks cost nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..core import events as ev
from ..core.context import NodeContext
from ..core.result import WAITING, RunResult
from ..core.tracing import Span, Tracer
from .waiting import WaitRequest

if TYPE_CHECKING:
    from ..core.graph import CNode
    from .attempt import Emit, Outcome
    from .driver import Engine

#: policy events that become span events of the visit
_SPAN_EVENTS = {ev.NODE_RETRYING: "flownb.retry", "node_fallback": "flownb.fallback"}


def _retry_attrs(data: dict[str, Any]) -> dict[str, Any]:
    err = data.get("error") or {}
    return {"flownb.attempt": data.get("attempt"), "flownb.retry.delay_s": data.get("delay_s"),
            "error.type": err.get("type"), "flownb.error.message": err.get("message"),
            "flownb.fallback.replaces": data.get("replaces")}


async def traced_visit(tracer: Tracer, cn: CNode, ctx: NodeContext, run_id: str, emit: Emit,
                       body: Callable[[Emit], Awaitable[Outcome]], span: Span | None = None
                       ) -> Outcome:
    """Run ``body`` (the policy) inside the span of this visit and record how it ended
    (``span``: the one the inline attempt opened, carried on after its failure)."""
    env = ctx._env

    def traced_emit(type_: str, node_id: str, data: dict[str, Any]) -> None:
        name = _SPAN_EVENTS.get(type_)
        if name is not None:
            tracer.event(name, _retry_attrs(data))
        emit(type_, node_id, data)

    if span is None:
        span = tracer.start_visit(run_id or env.run_id, env.blueprint_id, cn.id, cn.uses,
                                  ctx.visit, worker=env.worker)
    with tracer.use(span, end=True):
        out = await body(traced_emit)
        outcome(span, out)
        return out


def traced_inline(tracer: Tracer, cn: CNode, ctx: NodeContext,
                  body: Callable[[], tuple[bool, Any]]) -> tuple[bool, Any]:
    """The inline fast path (:func:`~flownb.engine.attempt.try_inline`) inside the visit's span.
    A success ends the span; after a failure the span rides on the ``Resume`` to the policy,
    so a retried or failed visit is still one span."""
    env = ctx._env
    span = tracer.start_visit(env.run_id, env.blueprint_id, cn.id, cn.uses, ctx.visit,
                              worker=env.worker)
    with tracer.use(span, end=False):
        ok, res = body()
    if not ok:
        res.span = span
        return ok, res
    span.set("flownb.node.attempt", 1)
    if type(res) is WaitRequest:
        span.set("flownb.node.status", "waiting")
        waiting(span, res)
    else:
        span.set("flownb.node.status", "succeeded")
    tracer.end(span)
    return ok, res


def outcome(span: Span, out: Outcome) -> None:
    """Status, attempts, fallback and error of a visit on its span."""
    span.set("flownb.node.attempt", out.attempts)
    if out.replaced is not None:
        span.set("flownb.node.fallback", out.node_id)
    if out.cancelled:
        span.set("flownb.node.status", "cancelled")
    elif out.error is not None:
        span.set("flownb.node.status", "failed")
        span.fail(str(out.error.get("type")), str(out.error.get("message")))
    elif type(out.result) is WaitRequest:
        span.set("flownb.node.status", "waiting")
        waiting(span, out.result)
    else:
        span.set("flownb.node.status", "succeeded")


def waiting(span: Span, req: WaitRequest) -> None:
    """A visit parked for a person: a ``flownb.wait`` event with what it asks."""
    span.event("flownb.wait", {"flownb.wait.prompt": req.prompt[:200] if req.prompt else None,
                               "flownb.wait.choices": list(req.choices) if req.choices else None})


async def traced_run(tracer: Tracer, engine: Engine, drive: Callable[[], Awaitable[RunResult]]
                     ) -> RunResult:
    """Drive an in-process run inside its span (the current span: the caller's, or for a child
    run its node's visit span)."""
    parent = engine.run_id.rsplit("/", 1)[0] if engine.depth else ""
    with tracer.resume(engine.trace), \
            tracer.run(engine.run_id, engine.bp.id, parent_run=parent) as span:
        if engine.trace is None:
            engine.trace = tracer.inject()
        else:  # an answer to a waiting node drives the run on: under the first drive's span
            span.set("flownb.run.resumed", True)
        res = await drive()
        run_outcome(span, res)
        if res.status == WAITING:
            span.event("flownb.run.waiting", {"flownb.wait.nodes": [n for n, _ in engine.parked]})
        return res


def run_outcome(span: Span, res: RunResult) -> None:
    """Status and error of a run on its span."""
    span.set("flownb.run.status", res.status)
    if res.error:
        span.set("flownb.node.id", res.error.get("node_id"))
        span.fail(str(res.error.get("type")), str(res.error.get("message")))


__all__ = ["outcome", "run_outcome", "traced_inline", "traced_run", "traced_visit", "waiting"]
