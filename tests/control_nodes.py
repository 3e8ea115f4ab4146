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


def chain(url: str, n: int = 4, seconds: float = 0.0, first_seconds: float = 0.0) -> flownb.Blueprint:
    """n0 -> n1 -> ... of ``ctl-step`` nodes counting in ``url``; n0 sleeps ``first_seconds``,
    the others ``seconds`` (time to pause the run while a node is in flight)."""
    b = flownb.Builder("ctl-chain")
    for i in range(n):
        s = first_seconds if i == 0 else seconds
        b = b.node(f"n{i}", "ctl-step", params={"redis": url, "seconds": s})
    for i in range(n - 1):
        b = b.edge(f"n{i}", f"n{i + 1}")
    return b.build()


def counts(url: str, n: int = 4) -> list[int]:
    """How often each node's body of :func:`chain` really started (the INCR counters)."""
    r = redis.Redis.from_url(url)
    return [int(r.get(f"count:n{i}") or 0) for i in range(n)]


def until(pred: Any, timeout: float = 20.0) -> None:
    """Wait until ``pred()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")
