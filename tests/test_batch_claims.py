"""Items of a job claimed together (flownb/distributed/claims.py) and script calls of one loop
turn sent as one pipeline (flownb/distributed/script_batch.py): real Redis, real workers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor

from conftest import Workers

pytestmark = pytest.mark.timeout(120)


def fan(n: int, url: str, s: float = 0.0) -> flownb.Blueprint:
    b = flownb.Builder(f"claims-fan-{n}")
    b.node("start", "claim-echo", params={"redis": url})
    for i in range(n):
        b.node(f"b{i}", "claim-echo", params={"redis": url, "s": s})
        b.edge("start", f"b{i}")
    b.node("join", "noop", join="all")
    for i in range(n):
        b.edge(f"b{i}", "join")
    return b.build()


def _workers_info(url: str) -> dict[str, dict]:
    r = redis.Redis.from_url(url)
    return {k.decode(): json.loads(v) for k, v in r.hgetall("flownb:workers").items()}


def _execs(url: str, n: int) -> list[int]:
    r = redis.Redis.from_url(url)
    return [int(r.get(f"claimtest:exec:b{i}") or 0) for i in range(n)]


def test_fanout_branches_claimed_together_run_once_with_their_input(redis_url: str) -> None:
    w = Workers(redis_url, modules=("claim_nodes",))
    try:
        w.start(1)
        ex = DistributedExecutor(redis_url)
        n = 64  # 16 jobs of 4 items: each job's items are claimed by one CLAIM_MANY
        handle = ex.submit(fan(n, redis_url))
        res = handle.result(timeout=60)
        assert res.status == "succeeded", res.error
        start_out = res.outputs["start"]
        assert start_out == {"me": "start", "got": {}}
        for i in range(n):  # the source's output, read once per batch, is each branch's input
            assert res.outputs[f"b{i}"] == {"me": f"b{i}", "got": start_out}
        assert _execs(redis_url, n) == [1] * n
        ok = [e.node_id for e in handle.events() if e.type == "node_succeeded"]
        assert sorted(ok) == sorted(["start", "join", *[f"b{i}" for i in range(n)]])
        time.sleep(1.0)  # the heartbeat publishes the worker's counters
        [info] = _workers_info(redis_url).values()
        assert info["claimed_together"] >= n - 16, info
    finally:
        w.close()


def test_batch_claimed_items_are_recovered_after_kill9(redis_url: str) -> None:
    """A worker killed while it runs items it claimed together: the reaper re-queues them, each
    runs again once on another worker and commits exactly once."""
    w = Workers(redis_url, modules=("claim_nodes",))
    try:
        [victim] = w.start(1)
        ex = DistributedExecutor(redis_url)
        n = 24  # 16 jobs of 1-2 items; all run at once (32 slots)
        handle = ex.submit(fan(n, redis_url, s=8.0))
        deadline = time.monotonic() + 20
        while sum(_execs(redis_url, n)) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _execs(redis_url, n) == [1] * n, "the branches did not all start"
        assert not [e for e in handle.events() if e.type == "node_succeeded"
                    and e.node_id.startswith("b")], "a branch finished before the kill"
        w.kill(victim)
        w.start(1)
        res = handle.result(timeout=90)
        assert res.status == "succeeded", res.error
        time.sleep(1.0)  # a heartbeat publishes the new worker's counters (the victim's stay)
        info = _workers_info(redis_url)
        assert sum(i["claimed_together"] for i in info.values()) >= 2, info
        assert _execs(redis_url, n) == [2] * n  # killed once, re-run once
        evs = list(handle.events())
        for i in range(n):
            node = f"b{i}"
            assert sum(1 for e in evs if e.type == "node_succeeded" and e.node_id == node) == 1
            starts = [e for e in evs if e.type == "node_started" and e.node_id == node]
            assert [e.data.get("delivery") for e in starts] == [1, 2], node
        assert sum(1 for e in evs if e.type == "node_succeeded" and e.node_id == "join") == 1
    finally:
        w.close()


def test_script_calls_of_one_loop_turn_share_a_pipeline(redis_url: str) -> None:
    """Each call keeps its own reply or error, also when the server lost its scripts."""
    import redis.asyncio as aredis

    from flownb.distributed.script_batch import ScriptBatcher

    async def main() -> None:
        r = aredis.Redis.from_url(redis_url)
        try:
            ok = r.register_script("return ARGV[1] .. redis.call('GET', KEYS[1])")
            bad = r.register_script("return redis.error_reply('nope: ' .. ARGV[1])")
            await r.set("sb:k", "!")
            b = ScriptBatcher(r)
            for flushed in (False, True):
                if flushed:
                    await r.script_flush()  # NOSCRIPT for each: each is sent again alone
                got = await asyncio.gather(b.call(ok, ["sb:k"], ["a"]), b.call(bad, [], ["x"]),
                                           b.call(ok, ["sb:k"], ["b"]), return_exceptions=True)
                assert got[0] == b"a!" and got[2] == b"b!", got
                assert isinstance(got[1], redis.ResponseError) and "nope: x" in str(got[1])
            assert b.batches == 2
            assert await b.call(ok, ["sb:k"], ["c"]) == b"c!"  # alone: sent as it is
            assert b.batches == 2
        finally:
            await r.aclose()

    asyncio.run(main())


def test_with_visits_in_flight_only_a_node_seen_quick_runs_on_the_loop() -> None:
    """The busy rule learns per type and params: a quick start node does not make its sleepy
    branches of the same type "quick" (on the loop they would hold up every visit in flight)."""
    from flownb.core.graph import compile_graph
    from flownb.core.registry import default_registry
    from flownb.distributed.quick import QuickNodes

    b = flownb.Builder("quick-rule")
    b.node("start", "noop").node("b0", "noop", params={"s": 8}).node("b1", "noop", params={"s": 8})
    b.edge("start", "b0").edge("start", "b1")
    nodes = compile_graph(b.build(), default_registry).nodes
    q = QuickNodes()
    assert not q.quick(nodes["start"], True, 0.01, 0.002)  # never seen: through the pool
    q.learn(nodes["start"], 0.0001)
    assert q.quick(nodes["start"], False, 0.01, 0.002)
    assert q.quick(nodes["b0"], True, 0.01, 0.002)  # alone: the type's average, as before
    assert not q.quick(nodes["b0"], False, 0.01, 0.002)  # busy: b0's own params never seen
    q.learn(nodes["b1"], 8.0)
    assert not q.quick(nodes["b0"], False, 0.01, 0.002)  # same type and params as b1: slow
    assert not q.quick(nodes["start"], False, 0.01, 0.0)  # FLOWNB_WORKER_INLINE_BUSY_MAX_S=0
