"""Node types for the distributed batch tests (imported by real worker processes).

How often a row really ran is counted in Redis (an INCR inside the node body, outside flownb's
commit path), so a re-run of the failed rows can be told from a re-run of everything.
"""

from __future__ import annotations

import time
from typing import Any

import flownb


@flownb.node("batch-dist-flaky")
def flaky(ctx: flownb.NodeContext) -> Any:
    """Fails the first time it runs a row whose ``n`` is a multiple of 3."""
    import redis

    r = redis.Redis.from_url(str(ctx.params["redis"]))
    calls = int(r.incr(f"batchtest:calls:{ctx.input['n']}"))
    if calls == 1 and ctx.input["n"] % 3 == 0:
        raise ValueError(f"transient failure of row {ctx.input['n']}")
    time.sleep(float(ctx.input.get("sleep", 0.0)))
    return {"double": ctx.input["n"] * 2}
