"""Node types whose sync body returns an awaitable, and node types whose output is not JSON data
(issue 17.4/17.5), imported by the tests and by real worker processes alike.

Executions are counted with a Redis INCR (``params.counter``: ``[redis_url, key]``) so a node
body whose coroutine ran twice — or never — shows on either executor.
"""

from __future__ import annotations

import asyncio
import datetime
import math
from collections.abc import Awaitable
from typing import Any

import flownb
from flownb.llm import llm_process


def _count(ctx: flownb.NodeContext) -> None:
    counter = ctx.params.get("counter")
    if counter:
        import redis

        url, key = counter
        redis.Redis.from_url(url).incr(key)


async def _double(ctx: flownb.NodeContext) -> Any:
    await asyncio.sleep(0.01)
    _count(ctx)
    return {"n": ctx.input["n"] * 2, "attempt": ctx.attempt}


@flownb.node("aw-double")
def double(ctx: flownb.NodeContext) -> Awaitable[Any]:
    """A sync function returning a coroutine (not an ``async def``)."""
    return _double(ctx)


@flownb.node("aw-llm")
def sync_llm(ctx: flownb.NodeContext) -> Awaitable[str]:
    """A sync wrapper around the async built-in LLM node, as a user writes one."""
    return llm_process(ctx)


async def _flaky(ctx: flownb.NodeContext) -> Any:
    _count(ctx)
    if ctx.attempt == 1:
        raise ConnectionError("first attempt fails inside the awaited coroutine")
    return f"ok on attempt {ctx.attempt}"


@flownb.node("aw-flaky")
def flaky(ctx: flownb.NodeContext) -> Awaitable[Any]:
    ctx.state[f"sync_part_{ctx.attempt}"] = True  # a failed attempt's writes are discarded
    return _flaky(ctx)


@flownb.node("aw-slow")
def slow(ctx: flownb.NodeContext) -> Awaitable[Any]:
    return asyncio.sleep(float(ctx.params.get("seconds", 5)), "late")


class Thing:
    def __repr__(self) -> str:
        return "<Thing>"


@flownb.node("aw-odd")
def odd(ctx: flownb.NodeContext) -> Any:
    """An output (or, with ``params.state``, a state write) that is not JSON data."""
    value = {"datetime": datetime.datetime(2026, 12, 4, 12, 0), "set": {1, 2},
             "object": Thing(), "nan": {"score": math.nan}}[ctx.params["kind"]]
    if ctx.params.get("state"):
        ctx.state["x"] = value
        return "wrote state"
    return value
