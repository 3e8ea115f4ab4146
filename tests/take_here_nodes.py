"""Node types for tests/test_take_here.py (imported by real worker processes): a node that counts
its runs with a Redis ``INCR`` (a counter survives a killed worker; process memory would not)."""

from __future__ import annotations

import time
from typing import Any

import redis

import flownb


@flownb.node("take-incr")
def incr(ctx: flownb.NodeContext) -> Any:
    """``INCR params.counter`` on ``params.url``; the first run of all then sleeps
    ``params.first_seconds`` (default 0: long enough to kill its worker mid-node)."""
    r = redis.Redis.from_url(str(ctx.params["url"]))
    n = r.incr(str(ctx.params["counter"]))
    if n == 1:
        time.sleep(float(ctx.params.get("first_seconds", 0)))
    return {"node": ctx.node_id, "n": int(n)}
