"""Node types for the heat-map tests on real workers (imported by the worker processes).

How often a row's ``work`` really ran is counted in Redis (an INCR inside the node body), so a
heat map that counted a visit twice could be told from one that did not.
"""

from __future__ import annotations

import time
from typing import Any

import flownb


@flownb.node("heat-dist-work")
def work(ctx: flownb.NodeContext) -> Any:
    """Sleeps ``state.sleep`` seconds; fails for rows whose ``state.n`` is a multiple of 3."""
    import redis

    n = int(ctx.state.get("n"))
    redis.Redis.from_url(str(ctx.params["redis"])).incr(f"heattest:calls:{n}")
    time.sleep(float(ctx.state.get("sleep") or 0.0))
    if n % 3 == 0:
        raise ValueError(f"row {n} fails on purpose")
    return n * 2
