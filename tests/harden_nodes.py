"""Node types for the hardening tests (issue 19), imported by real worker processes.

Each counts its executions with a Redis INCR on ``params.count`` at ``params.redis`` before it
misbehaves, so a test sees how often a node really ran, on any executor.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis

import flownb


class Custom(BaseException):
    """A BaseException subclass of a library's own (neither Exception nor SystemExit)."""


_KINDS: dict[str, type[BaseException]] = {
    "cancelled": asyncio.CancelledError, "generator-exit": GeneratorExit, "custom": Custom}


def _count(ctx: flownb.NodeContext) -> None:
    url, key = ctx.params.get("redis"), ctx.params.get("count")
    if url and key:
        redis.Redis.from_url(str(url)).incr(str(key))


@flownb.node("harden-raise-base")
def raise_base(ctx: flownb.NodeContext) -> Any:
    """Raises the BaseException named by params.kind (a sync node)."""
    _count(ctx)
    raise _KINDS[str(ctx.params["kind"])]("from the node body")


@flownb.node("harden-araise-base")
async def araise_base(ctx: flownb.NodeContext) -> Any:
    """Raises the BaseException named by params.kind after an await (an async node)."""
    _count(ctx)
    await asyncio.sleep(0)
    raise _KINDS[str(ctx.params["kind"])]("from the node body")


@flownb.node("harden-count")
def count(ctx: flownb.NodeContext) -> Any:
    """Counts its executions, returns its input."""
    _count(ctx)
    return ctx.input


@flownb.node("harden-asleep")
async def asleep(ctx: flownb.NodeContext) -> Any:
    """Counts, then sleeps params.seconds on the loop (cancellable)."""
    _count(ctx)
    await asyncio.sleep(float(ctx.params.get("seconds", 5)))
    return "slept"
