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


@flownb.node("w-state-reader")
def state_reader(ctx: Any) -> Any:
    """A sync node that reads ``n`` state fields nobody wrote, one lazy read each (flownb's
    blocking client, from the worker's node thread), for the connection-pool test."""
    r = _conns.get(ctx.params["redis"]) or _conns.setdefault(
        ctx.params["redis"], redis.Redis.from_url(ctx.params["redis"]))
    r.incr(f"{ctx.params.get('tag', 'reads')}:exec")
    end = time.monotonic() + float(ctx.params.get("s", 1.0))
    i = 0
    while time.monotonic() < end:
        ctx.state.get(f"absent-{ctx.node_id}-{i}")
        i += 1
    return i
