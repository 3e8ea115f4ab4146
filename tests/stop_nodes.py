"""Node types for the worker-shutdown tests (imported by real worker processes).

Each INCRs ``count:<node>`` in the Redis database ``params.redis`` when its body starts, so a
test counts executions across processes (a visit handed back at stop runs again elsewhere).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

import flownb


def _count(ctx: flownb.NodeContext) -> None:
    redis.Redis.from_url(str(ctx.params["redis"])).incr(f"count:{ctx.node_id}")


@flownb.node("stop-sleep")
def sleep_sync(ctx: flownb.NodeContext) -> Any:
    """Counts, then sleeps ``params.seconds`` in a pool thread (a sync node cannot be cancelled)."""
    _count(ctx)
    time.sleep(float(ctx.params.get("seconds", 1.0)))
    return ctx.node_id


@flownb.node("stop-sleep-async")
async def sleep_async(ctx: flownb.NodeContext) -> Any:
    """Counts, then sleeps ``params.seconds`` on the worker's event loop."""
    _count(ctx)
    await asyncio.sleep(float(ctx.params.get("seconds", 1.0)))
    return ctx.node_id
