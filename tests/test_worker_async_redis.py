"""The worker loop's Redis on ``redis.asyncio`` (flownb.distributed.async_store): the same server
and options as the sync client, the hiredis parser, events written in order in batches, the rate
limit awaited on the loop — on a real Redis and real ``flownb worker`` processes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import flownb
from flownb.distributed.async_store import AsyncStore, EventSink, async_client
from flownb.distributed.client import DistributedExecutor
from flownb.distributed.keys import Keys
from flownb.distributed.ratelimit import RedisRateLimiter
from flownb.distributed.settings import RedisSettings
from flownb.distributed.store import RedisStore
from flownb.llm.ratelimit import RateLimit, acquire


def test_async_client_uses_the_sync_clients_server_db_and_retry(redis_url: str) -> None:
    conn = RedisSettings.from_url(redis_url).connect()
    conn.set("flownb-test:k", "v")

    async def go() -> tuple[Any, dict[str, Any], str]:
        ac = async_client(conn)
        try:
            c = await ac.connection_pool.get_connection()
            parser = type(c._parser).__name__
            await ac.connection_pool.release(c)
            return await ac.get("flownb-test:k"), dict(ac.connection_pool.connection_kwargs), parser
        finally:
            await ac.aclose(close_connection_pool=True)

    value, kw, parser = asyncio.run(go())
    sync_kw = conn.connection_pool.connection_kwargs
    assert value == b"v"  # the same database (the fixture gives each test its own)
    assert kw["db"] == sync_kw["db"] and kw.get("socket_timeout") == sync_kw.get("socket_timeout")
    assert kw["retry"]._retries == sync_kw["retry"]._retries  # a dropped socket is retried too
    from redis.utils import HIREDIS_AVAILABLE

    assert ("Hiredis" in parser) == HIREDIS_AVAILABLE, parser


def test_events_from_the_loop_and_from_threads_keep_their_order(redis_url: str) -> None:
    conn = RedisSettings.from_url(redis_url).connect()
    store = RedisStore(conn, prefix="ordered")

    async def go() -> None:
        sink = EventSink(AsyncStore(store), asyncio.get_running_loop())
        sink.emit("r1", "custom", "n", {"name": "step", "i": 0})

        def from_thread() -> None:  # a sync node body in the worker's pool
            for i in range(1, 200):
                sink.emit("r1", "custom", "n", {"name": "step", "i": i})

        await asyncio.to_thread(from_thread)
        sink.emit("r1", "custom", "n", {"name": "step", "i": 200})
        await sink.flush()
        await sink.store.aclose()

    asyncio.run(go())
    steps = [e.data["i"] for e in store.events("r1", count=1000)]
    assert steps == list(range(201))


def test_rate_limit_is_awaited_on_the_bound_loop_and_shared_with_the_sync_path(redis_url: str) -> None:
    conn = RedisSettings.from_url(redis_url).connect()
    limiter = RedisRateLimiter(conn, prefix="rl")
    limit = RateLimit(rpm=600)  # one call per 0.1 s

    async def go() -> tuple[float, float, float]:
        astore = AsyncStore(RedisStore(conn, prefix="rl"))
        limiter.bind(asyncio.get_running_loop(), astore)
        first = await limiter.areserve("m", limit, 10)
        second = await limiter.areserve("m", limit, 10)
        waited = await acquire("m", limit, 10, limiter)  # sleeps until the bucket grants it
        await astore.aclose()
        return first, second, waited

    first, second, waited = asyncio.run(go())
    assert first == 0.0 and 0 < second <= 0.1
    assert waited > 0
    assert conn.hget(Keys("rl").llm_rate("m"), "r") is not None  # the bucket lives in Redis
    # the blocking path (a sync node body, another loop) draws from the same bucket
    assert limiter.reserve("m", limit, 10) > 0


@pytest.mark.timeout(90)
def test_a_worker_writes_each_nodes_events_before_its_end(redis_url: str, workers: Any) -> None:
    workers.start(2)
    ex = DistributedExecutor(redis_url)
    nodes = [{"id": f"e{i}", "uses": "t-emit", "params": {"count": 30}} for i in range(4)]
    edges = [{"source": f"e{i}", "target": f"e{i + 1}"} for i in range(3)]
    fan = [{"id": f"f{i}", "uses": "t-emit", "params": {"count": 10}} for i in range(8)]
    bp = flownb.Blueprint.from_dict({"id": "async-events", "nodes": nodes + fan, "edges":
                                     edges + [{"source": "e3", "target": f["id"]} for f in fan]})
    handle = ex.submit(bp)
    res = handle.result(timeout=60)
    assert res.status == "succeeded", res.error
    events = list(handle.events())
    for node, count in [*[(f"e{i}", 30) for i in range(4)], *[(f"f{i}", 10) for i in range(8)]]:
        mine = [e for e in events if e.node_id == node]
        steps = [e.data["step"] for e in mine if e.type == "custom"]
        assert steps == list(range(1, count + 1)), (node, steps)
        types = [e.type for e in mine]
        assert types[0] == "node_started" and types[-1] == "node_succeeded", (node, types)
    assert events[-1].type == "run_finished"
