"""A worker runs a subflow's child run and the parent's resume itself when it has a free slot,
instead of an RQ job per step (:mod:`flownb.distributed.take_here`). Real Redis, real
``flownb worker`` processes; every node counts its runs with a Redis ``INCR``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import Workers

import flownb

pytestmark = pytest.mark.timeout(120)
MODULES = (*Workers.MODULES, "take_here_nodes")


def _incr(url: str, counter: str, seconds: float = 0.0) -> dict[str, Any]:
    return {"uses": "take-incr", "params": {"url": url, "counter": counter,
                                        "first_seconds": seconds}}


def _setup(url: str, child_seconds: float = 0.0) -> tuple[flownb.Blueprint, flownb.Registry]:
    reg = flownb.Registry()
    reg.add_blueprint(flownb.load({"id": "th-child", "nodes": [
        {"id": "c", **_incr(url, "count:c", child_seconds)}]}))
    top = flownb.load({"id": "th-top", "nodes": [
        {"id": "a", **_incr(url, "count:a")},
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "th-child"}},
        {"id": "b", **_incr(url, "count:b")}],
        "edges": [{"source": "a", "target": "sub"}, {"source": "sub", "target": "b"}]})
    return top, reg


def _infos(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(v) for v in r.hvals("flownb:workers")]


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url, modules=MODULES)
    w.start(2)
    yield w
    w.close()


def test_a_subflow_child_and_the_resume_run_without_rq_jobs_each_node_once(
        redis_url: str, two_workers: Workers) -> None:
    from flownb.distributed import DistributedExecutor

    top, reg = _setup(redis_url)
    ex = DistributedExecutor(redis_url, registry=reg)
    n = 20
    handles = [ex.submit(top) for _ in range(n)]
    results = [h.result(timeout=60) for h in handles]
    assert all(res.status == "succeeded" for res in results)
    r = redis.Redis.from_url(redis_url)
    assert [int(r.get(f"count:{k}") or 0) for k in "acb"] == [n, n, n]  # each node once
    time.sleep(1.2)  # the workers publish their info with each heartbeat
    infos = _infos(r)
    # one RQ job per run (the submit's); the child's node and the parent's resume ran where
    # the subflow started and where the child ended: 2 items per run taken, no job for them
    assert sum(i["jobs"] for i in infos) == n
    assert sum(i["taken_here"] for i in infos) == 2 * n
    assert sum(i["requeued"] for i in infos) == 0


def test_a_worker_killed_in_a_child_it_took_is_recovered_by_another(redis_url: str) -> None:
    from flownb.distributed import DistributedExecutor

    top, reg = _setup(redis_url, child_seconds=30.0)
    w = Workers(redis_url, modules=MODULES)
    try:
        [first] = w.start(1)
        ex = DistributedExecutor(redis_url, registry=reg)
        handle = ex.submit(top)
        r = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 30
        while int(r.get("count:c") or 0) < 1:  # the child's node runs on the only worker
            assert time.monotonic() < deadline, "the child node never started"
            time.sleep(0.05)
        while not any(i["taken_here"] for i in _infos(r)):  # published with each heartbeat
            assert time.monotonic() < deadline, "the child's item did not run where it started"
            time.sleep(0.05)
        w.kill(first)  # mid-node, in an item no RQ job carried
        w.start(1)  # the lease expires, the reaper re-queues it, this one runs it (no sleep)
        res = handle.result(timeout=90, raise_on_error=False)
    finally:
        w.close()
    assert res.status == "succeeded", res.error
    assert int(r.get("count:a") or 0) == 1
    assert int(r.get("count:c") or 0) == 2  # killed once mid-node, run once more
    assert int(r.get("count:b") or 0) == 1
