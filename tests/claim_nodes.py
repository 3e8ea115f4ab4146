"""Node types for the batch-claim tests (tests/test_batch_claims.py). Each counts its executions
with a Redis INCR in its body, outside flownb's commit path, so a test proves what ran."""

from __future__ import annotations

import time
from typing import Any

import redis

import flownb

_conns: dict[str, redis.Redis] = {}


def _count(ctx: Any) -> None:
    url = ctx.params["redis"]
    if url not in _conns:
        _conns[url] = redis.Redis.from_url(url)
    _conns[url].incr(f"claimtest:exec:{ctx.node_id}")


@flownb.node("claim-echo")
def echo(ctx: Any) -> Any:
    """Counts, sleeps ``s`` seconds (default 0), returns its input with its own id."""
    _count(ctx)
    time.sleep(float(ctx.params.get("s", 0)))
    return {"me": ctx.node_id, "got": ctx.input}
