"""A node that keeps its worker's event loop busy, for the lease tests (tests/test_worker_leases_busy.py).

It counts its executions with a Redis INCR per run in the node body (outside flownb's commit
path), so a test proves that no visit ran twice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

import flownb

_conns: dict[str, redis.Redis] = {}


@flownb.node("w-loop-busy")
async def loop_busy(ctx: Any) -> Any:
    """Burns the loop's CPU in slices of ``slice_s`` for ``s`` seconds of wall time, yielding
    between slices only: with dozens in flight the loop is never idle, as under a heavy batch."""
    url = ctx.params["redis"]
    r = _conns.get(url) or _conns.setdefault(url, redis.Redis.from_url(url))
    tag = ctx.params.get("tag", "busy")
    r.incr(f"{tag}:exec:{ctx.run_id}")
    end = time.monotonic() + float(ctx.params.get("s", 2.0))
    piece = float(ctx.params.get("slice_s", 0.01))
    while time.monotonic() < end:
        stop = time.perf_counter() + piece
        while time.perf_counter() < stop:
            pass
        await asyncio.sleep(0)
    return "ok"
