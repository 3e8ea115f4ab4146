"""Node implementations used by the executor-independent scenarios (``tests/scenarios.py``).

Importing this module registers every ``t-*`` node type in flownb's default registry. It is also
imported by separate worker processes (the distributed executor runs the same scenarios with RQ
workers that ``import scenario_nodes``), so every implementation here is:

* a module-level function or class (importable by name, no closures, no lambdas);
* deterministic: behaviour comes only from ``ctx.params``, ``ctx.input``, ``ctx.attempt``,
  ``ctx.visit`` and ``ctx.state`` — never from process-global mutable state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import flownb
from flownb import NodeContext, Result

__all__ = ["PrepExecPost", "AsyncPostNode"]


def _param(ctx: NodeContext, name: str, default: Any = None) -> Any:
    return ctx.params.get(name, default)


@flownb.node("t-const")
def t_const(ctx: NodeContext) -> Any:
    """Returns ``params.value``."""
    return _param(ctx, "value")


@flownb.node("t-echo")
def t_echo(ctx: NodeContext) -> Any:
    """Returns its input unchanged."""
    return ctx.input


@flownb.node("t-add")
def t_add(ctx: NodeContext) -> Any:
    """``input + params.n``; ``params.key`` picks the number out of a mapping input."""
    base = ctx.input
    key = _param(ctx, "key")
    if key is not None:
        base = base[key]
    return base + _param(ctx, "n", 1)


@flownb.node("t-async-add")
async def t_async_add(ctx: NodeContext) -> Any:
    """Async twin of ``t-add`` (awaits once so it really suspends)."""
    await asyncio.sleep(0)
    base = ctx.input
    key = _param(ctx, "key")
    if key is not None:
        base = base[key]
    return base + _param(ctx, "n", 1)


@flownb.node("t-double")
def t_double(ctx: NodeContext) -> Any:
    """``input * 2``; used by ``map`` over a node type."""
    return ctx.input * 2


@flownb.node("t-child")
def t_child(ctx: NodeContext) -> Any:
    """Start node of a map child blueprint: input is ``{"item": x, "index": i}``."""
    return {"index": ctx.input["index"], "value": ctx.input["item"] * 10}


@flownb.node("t-delay-echo")
async def t_delay_echo(ctx: NodeContext) -> Any:
    """Map child: awaits ``input["delay"]`` seconds, then returns ``input["v"]``."""
    await asyncio.sleep(float(ctx.input["delay"]))
    return ctx.input["v"]


@flownb.node("t-route")
def t_route(ctx: NodeContext) -> Result:
    """Picks an action: ``params.action`` if given, else ``input[params.field]`` / the input itself.

    The output is ``params.output`` when given, else the input.
    """
    action = _param(ctx, "action")
    if action is None:
        field = _param(ctx, "field")
        if field is not None and isinstance(ctx.input, Mapping):
            action = ctx.input.get(field)
        elif isinstance(ctx.input, str):
            action = ctx.input
    output = _param(ctx, "output", ctx.input)
    return Result(output, action)


@flownb.node("t-set")
def t_set(ctx: NodeContext) -> Any:
    """Writes ``params.values`` into the run's state; returns ``params.output`` (default: input)."""
    ctx.state.update(_param(ctx, "values", {}))
    return _param(ctx, "output", ctx.input)


@flownb.node("t-read")
def t_read(ctx: NodeContext) -> Any:
    """Returns the state value ``params.key`` (``params.default`` when absent)."""
    return ctx.state.get(_param(ctx, "key"), _param(ctx, "default"))


@flownb.node("t-flaky")
def t_flaky(ctx: NodeContext) -> Any:
    """Raises until ``ctx.attempt > params.fail_times``, then returns ``"ok@<attempt>"``."""
    if ctx.attempt <= _param(ctx, "fail_times", 1):
        flaky_failure(ctx.attempt)
    return f"ok@{ctx.attempt}"


def flaky_failure(attempt: int) -> None:
    raise RuntimeError(f"flaky failure on attempt {attempt}")


@flownb.node("t-dirty-flaky")
def t_dirty_flaky(ctx: NodeContext) -> Any:
    """Writes ``state["dirty@<attempt>"]`` on every attempt, then fails the first
    ``params.fail_times`` of them: a retried attempt's writes must not survive."""
    ctx.state.set(f"dirty@{ctx.attempt}", True)
    if ctx.attempt <= _param(ctx, "fail_times", 1):
        raise RuntimeError(f"dirty failure on attempt {ctx.attempt}")
    return f"clean@{ctx.attempt}"


@flownb.node("t-sleep")
def t_sleep(ctx: NodeContext) -> Any:
    """Blocks its thread for ``params.seconds``; returns ``params.value`` (default: input)."""
    time.sleep(float(_param(ctx, "seconds", 0)))
    return _param(ctx, "value", ctx.input)


@flownb.node("t-async-sleep")
async def t_async_sleep(ctx: NodeContext) -> Any:
    """Awaits ``params.seconds``; returns ``params.value`` (default: input)."""
    await asyncio.sleep(float(_param(ctx, "seconds", 0)))
    return _param(ctx, "value", ctx.input)


@flownb.node("t-fail")
def t_fail(ctx: NodeContext) -> Any:
    """Always fails, from a function whose name the traceback must show."""
    explode_on_purpose(str(_param(ctx, "message", "boom")))


def explode_on_purpose(message: str) -> None:
    raise ValueError(message)


@flownb.node("t-timeout-error")
def t_timeout_error(ctx: NodeContext) -> Any:
    """Raises the built-in ``TimeoutError`` itself (e.g. a socket timeout), immediately."""
    raise_socket_timeout()


def raise_socket_timeout() -> None:
    raise TimeoutError("socket read timed out")


@flownb.node("t-counter")
def t_counter(ctx: NodeContext) -> Result:
    """Loop body: ``i = state[key] + 1``; ``again`` while ``i < params.until``, then ``done``."""
    key = _param(ctx, "key", "i")
    i = ctx.state.get(key, 0) + 1
    ctx.state.set(key, i)
    return Result(i, "again" if i < _param(ctx, "until", 3) else "done")


@flownb.node("t-visit")
def t_visit(ctx: NodeContext) -> Any:
    """Returns ``[node_id, visit]``, handy to see how often a node ran."""
    return [ctx.node_id, ctx.visit]


@flownb.node("t-collect")
def t_collect(ctx: NodeContext) -> Any:
    """For joins: the sorted keys of a mapping input (the ids of the nodes that fed it)."""
    if isinstance(ctx.input, Mapping):
        return sorted(ctx.input)
    return []


@flownb.node("t-emit")
def t_emit(ctx: NodeContext) -> Any:
    """Emits ``params.count`` custom ``progress`` events, then returns the count."""
    n = int(_param(ctx, "count", 2))
    for i in range(n):
        ctx.emit("progress", step=i + 1, of=n)
    return n


@flownb.node("t-cancel-aware")
def t_cancel_aware(ctx: NodeContext) -> Any:
    """Sync loop that stops early once the run is cancelled (checks ``ctx.cancelled``)."""
    deadline = time.monotonic() + float(_param(ctx, "seconds", 5))
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return "stopped"
        time.sleep(0.01)
    return "finished"


@flownb.node("t-prep-exec-post")
class PrepExecPost(flownb.Node):
    """PocketFlow-style node whose ``exec`` fails ``params.fail_times`` times.

    Only ``exec`` may be retried: ``prep`` builds a fresh ``exec_attempts`` list each time it runs
    and ``exec`` appends to it, so if ``prep`` ran once the list ends ``[1, 2, …, n]``; if it were
    re-run per attempt the list would only hold the last attempt. ``post`` reports what it saw.
    Instances hold no state (one instance serves every run).
    """

    def prep(self, ctx: NodeContext) -> Any:
        return {"ctx": ctx, "prep_attempt": ctx.attempt, "exec_attempts": [],
                "fail_times": int(ctx.params.get("fail_times", 0)), "input": ctx.input}

    def exec(self, prep_res: Any) -> Any:
        attempt = prep_res["ctx"].attempt
        prep_res["exec_attempts"].append(attempt)
        if attempt <= prep_res["fail_times"]:
            raise RuntimeError(f"exec failure on attempt {attempt}")
        return f"exec-ok@{attempt}"

    def post(self, ctx: NodeContext, prep_res: Any, exec_res: Any) -> Any:
        return {"prep_attempt": prep_res["prep_attempt"],
                "exec_attempts": list(prep_res["exec_attempts"]),
                "post_attempt": ctx.attempt, "exec": exec_res}


@flownb.node("t-async-post")
class AsyncPostNode(flownb.Node):
    """Sync ``prep``/``exec`` with an ``async def post``: the runtime must await it."""

    def prep(self, ctx: NodeContext) -> Any:
        return ctx.input

    def exec(self, prep_res: Any) -> Any:
        return {"exec": prep_res}

    async def post(self, ctx: NodeContext, prep_res: Any, exec_res: Any) -> Any:
        await asyncio.sleep(0)
        return {"post": exec_res}
