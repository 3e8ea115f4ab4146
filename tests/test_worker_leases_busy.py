"""Leases hold while a worker's event loop is kept busy by its own visits.

A worker renews the leases of every visit it runs or holds from its heartbeat thread; the
reaper re-queues an item whose lease expired (a visit running on a live worker is spared by the
liveness key, an item held for a free slot is not). When the loop's visits keep the GIL busy,
each blocking Redis round trip of that thread waits for the GIL again, so a heartbeat that
made one round trip per run in flight took seconds under load. Real workers, real Redis; each
visit counts itself with a Redis INCR in the node body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor

from conftest import Workers

pytestmark = pytest.mark.timeout(180)

RUNS = 160
CONCURRENCY = 48  # x 2 workers: 96 visits in flight, 64 held for a slot longer than a lease


@pytest.fixture
def busy_workers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url, lease_ttl_s=2.0, modules=("busy_loop_nodes",),
                args=("--concurrency", str(CONCURRENCY)))
    w.start(2)
    yield w
    w.close()


def test_every_lease_holds_under_a_busy_loop(redis_url: str, busy_workers: Workers) -> None:
    bp = flownb.Blueprint.from_dict({"id": "busy-loop", "nodes": [
        {"id": "busy", "uses": "w-loop-busy",
         "params": {"redis": redis_url, "tag": "busy", "s": 2.5}}], "edges": []})
    ex = DistributedExecutor(redis_url)
    handles = [ex.submit(bp, {}) for _ in range(RUNS)]
    results = [h.result(timeout=150) for h in handles]
    assert [r.status for r in results] == ["succeeded"] * RUNS
    r = redis.Redis.from_url(redis_url)
    runs = {h.run_id for h in handles}
    execs = {rid: int(r.get(f"busy:exec:{rid}") or 0) for rid in runs}
    assert sorted(set(execs.values())) == [1], {k: v for k, v in execs.items() if v != 1}
    deliveries = [e.data.get("delivery") for rid in runs for e in ex.store.events(rid)
                  if e.type == "node_started"]
    assert len(deliveries) == RUNS and set(deliveries) == {1}, sorted(deliveries)[-5:]
    rows = [json.loads(v) for v in r.hgetall("flownb:workers").values()]
    assert sum(row["requeued"] for row in rows) == 0
    assert max(row["max_in_flight"] for row in rows) == CONCURRENCY  # the slots were all busy


def test_more_visits_than_pooled_connections_wait_instead_of_failing(redis_url: str) -> None:
    """150 visits claiming at once on a loop whose Redis pool holds 100 connections (redis-py's
    default): each waits for a free connection. Before, the pool raised "Too many connections",
    which the visits took for Redis being away and backed off for up to 2 s each."""
    w = Workers(redis_url, modules=("worker_nodes",), args=("--concurrency", "150"))
    try:
        w.start(1)
        width = 300
        nodes = [{"id": "start", "uses": "noop"}] + [
            {"id": f"b{i}", "uses": "w-async-sleep",
             "params": {"redis": redis_url, "tag": "pool", "s": 0.3}} for i in range(width)]
        bp = flownb.Blueprint.from_dict({"id": "pool-fan", "nodes": nodes, "edges": [
            {"source": "start", "target": f"b{i}"} for i in range(width)]})
        assert DistributedExecutor(redis_url).submit(bp).result(timeout=120).status == "succeeded"
        r = redis.Redis.from_url(redis_url)
        assert int(r.get("pool:exec") or 0) == width
        rows = [json.loads(v) for v in r.hgetall("flownb:workers").values()]
        assert rows[0]["max_in_flight"] == 150
        assert rows[0]["redis_errors"] == 0, rows[0]["last_redis_error"]
    finally:
        w.close()


def test_sync_nodes_reading_state_at_once_get_a_connection_each(redis_url: str) -> None:
    """150 sync node bodies reading state through flownb's blocking client at once: the pool
    holds a connection for each (redis-py's default pool of 100 raised "Too many connections"
    past it, and the node failed with a Redis error)."""
    w = Workers(redis_url, modules=("busy_loop_nodes",), args=("--concurrency", "150"))
    try:
        w.start(1)
        width = 150
        nodes = [{"id": "start", "uses": "noop"}] + [
            {"id": f"b{i}", "uses": "w-state-reader",
             "params": {"redis": redis_url, "tag": "reads", "s": 2.0}} for i in range(width)]
        bp = flownb.Blueprint.from_dict({"id": "reads-fan", "nodes": nodes, "edges": [
            {"source": "start", "target": f"b{i}"} for i in range(width)]})
        res = DistributedExecutor(redis_url).submit(bp).result(timeout=120)
        assert res.status == "succeeded", res.error
        r = redis.Redis.from_url(redis_url)
        assert int(r.get("reads:exec") or 0) == width
        rows = [json.loads(v) for v in r.hgetall("flownb:workers").values()]
        assert rows[0]["max_in_flight"] == width
    finally:
        w.close()
