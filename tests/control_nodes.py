"""Node types for the run-control tests (imported by real worker processes and in process).

``ctl-step`` INCRs ``count:<node>`` in the Redis database ``params.redis`` when its body starts (so
a test proves how often a body really ran, across processes), sleeps ``params.seconds``, fails
while the Redis key ``broken:<node>`` exists (the "cause" a person fixes before a retry), and
returns its input with its own id appended, plus the state key ``note`` when set.
"""

from __future__ import annotations

import time
from typing import Any

import redis

import flownb


@flownb.node("ctl-step")
def step(ctx: flownb.NodeContext) -> Any:
    r = redis.Redis.from_url(str(ctx.params["redis"]))
    r.incr(f"count:{ctx.node_id}")
    time.sleep(float(ctx.params.get("seconds", 0.0)))
    if r.exists(f"broken:{ctx.node_id}"):
        raise RuntimeError(f"{ctx.node_id} is broken (key broken:{ctx.node_id})")
    path = list(ctx.input.get("path", [])) if isinstance(ctx.input, dict) else []
    return {"path": [*path, ctx.node_id], "note": ctx.state.get("note")}
