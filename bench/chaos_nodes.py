"""Node types for the reliability benchmarks (imported by worker subprocesses with
``--import bench.chaos_nodes``). Deterministic and idempotent: a node killed half-way and run again
does the same thing, so any difference in the results is the engine's doing."""

from __future__ import annotations

import time
from typing import Any

import flownb
from flownb import NodeContext, Result

_COUNTERS: dict[str, Any] = {}


def _count_execution(ctx: NodeContext) -> None:
    """With ``params.exec_redis`` (a URL), count this execution of the node body outside the
    commit path: ``HINCRBY benchexec:<run> <node>|<visit> 1``. A body run again after a crash
    counts twice here but commits once, so executions − commits is the re-run work."""
    url = ctx.params.get("exec_redis")
    if not url:
        return
    r = _COUNTERS.get(url)
    if r is None:
        import redis

        r = _COUNTERS[url] = redis.Redis.from_url(url)
    r.hincrby(f"benchexec:{ctx.run_id}", f"{ctx.node_id}|{ctx.visit}", 1)


def _nap(ctx: NodeContext) -> None:
    _count_execution(ctx)
    ms = float(ctx.params.get("ms", 0))
    if ms:
        time.sleep(ms / 1000.0)


@flownb.node("chaos-work")
def work(ctx: NodeContext) -> Any:
    """Sleeps ``params.ms`` then passes its input on (long enough to be killed mid-node)."""
    _nap(ctx)
    return ctx.input


@flownb.node("chaos-route")
def route(ctx: NodeContext) -> Any:
    """Action ``a`` for an even ``input.x``, ``b`` for an odd one: exclusive branches."""
    _nap(ctx)
    x = int((ctx.input or {}).get("x", 0))
    return Result({"x": x}, "a" if x % 2 == 0 else "b")


@flownb.node("chaos-count")
def count(ctx: NodeContext) -> Any:
    """Loop body: state.i += 1 (a re-run after a crash reads the committed value again)."""
    _nap(ctx)
    i = int(ctx.state.get("i", 0)) + 1
    ctx.state["i"] = i
    return i


def chaos_blueprint(ms: float = 15.0, loops: int = 3, exec_redis: str | None = None) -> flownb.Blueprint:
    """start → (route ‖ side); route →a left | →b right; left, right, side → join (all);
    join → body ⟲ (guard: state.i < loops, max_visits 10) → end. 8 node visits, 1 skipped.
    ``exec_redis``: count every execution of a node body there (see ``_count_execution``)."""
    p: dict[str, Any] = {"ms": ms}
    if exec_redis:
        p["exec_redis"] = exec_redis
    b = (flownb.Builder("bench-chaos", metadata={"state": ["i"]})  # chaos-count writes state.i
         .node("start", "chaos-work", params=p)
         .node("route", "chaos-route", params=p)
         .node("side", "chaos-work", params=p)
         .node("left", "chaos-work", params=p)
         .node("right", "chaos-work", params=p)
         .node("join", "chaos-work", params=p, join="all")
         .node("body", "chaos-count", params=p, max_visits=10)
         .node("end", "chaos-work", params=p)
         .chain("start", "route").chain("start", "side")
         .edge("route", "left", action="a").edge("route", "right", action="b")
         .chain("left", "join").chain("right", "join").chain("side", "join")
         .chain("join", "body")
         .edge("body", "body", condition=f"state.i < {loops}")
         .edge("body", "end", condition=f"state.i >= {loops}"))
    return b.build()


def chain_blueprint(n: int, ms: float) -> flownb.Blueprint:
    b = flownb.Builder(f"bench-slow-chain-{n}")
    for i in range(n):
        b.node(f"n{i}", "chaos-work", params={"ms": ms})
    b.chain(*[f"n{i}" for i in range(n)])
    return b.build()
