"""Redis in trouble mid-run (issue 11.1, 11.9): an outage of seconds, and a Redis at maxmemory
with ``noeviction``. Each test has its own real redis-server; the nodes count their executions
in the session's Redis (a different server), so the counts survive the trouble they prove."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
import redis

from flownb.distributed.client import DistributedExecutor, NoWorkersWarning, RunHandle
from flownb.distributed.server import EmbeddedRedis

from conftest import Workers
from test_worker_concurrency import MODS, fanout, worker_rows

pytestmark = pytest.mark.timeout(240)


def until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition (generous timeouts: only a hung system misses them)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def commits_per_node(handle: RunHandle) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in handle.events():
        if e.type == "node_succeeded":
            out[e.node_id] = out.get(e.node_id, 0) + 1
    return out


def test_redis_outage_of_seconds_mid_run_completes(redis_url: str) -> None:
    counters = redis.Redis.from_url(redis_url)
    with EmbeddedRedis(appendonly=True) as srv:
        w = Workers(srv.url, modules=MODS, args=("--concurrency", "8"))
        try:
            w.start(1)
            ex = DistributedExecutor(srv.url)
            handle = ex.submit(fanout("w-sync-sleep", redis_url, "o", 40, s=0.2))
            until(lambda: int(counters.get("o:exec") or 0) >= 8, 60, "the first visits")
            pid = srv.pid
            assert pid is not None
            os.kill(pid, signal.SIGTERM)  # redis-server shuts down (AOF written), clients drop
            until(lambda: not srv.running, 30, "redis-server to stop")
            time.sleep(5.0)  # the outage: longer than redis-py's own reconnect retries
            srv.start()
            res = handle.result(timeout=180, raise_on_error=False)
            assert res.status == "succeeded", res.error
            assert len(res.outputs) == 41
            assert set(commits_per_node(handle).values()) == {1}  # each node committed once
            executed = int(counters.get("o:exec") or 0)
            assert 40 <= executed <= 40 + 8  # at most the visits in flight at the outage re-ran
            assert w.alive(), "the worker died in the outage"
            r = redis.Redis.from_url(srv.url)
            until(lambda: any(row.get("redis_errors", 0) > 0 for row in worker_rows(r)), 30,
                  "the worker to report the Redis errors it rode out")
        finally:
            w.close()


def test_redis_at_maxmemory_noeviction_workers_survive_and_runs_continue(redis_url: str) -> None:
    counters = redis.Redis.from_url(redis_url)
    with EmbeddedRedis() as srv:
        r = redis.Redis.from_url(srv.url)
        r.config_set("maxmemory-policy", "noeviction")
        w = Workers(srv.url, modules=MODS, args=("--concurrency", "4"))
        try:
            w.start(2)
            ex = DistributedExecutor(srv.url)
            bp = fanout("w-blob", redis_url, "m", 20, size=200_000)
            handles = [ex.submit(bp) for _ in range(3)]  # 60 outputs of 200 kB: 12 MB
            r.config_set("maxmemory", int(r.info("memory")["used_memory"]) + 1_000_000)

            def ooms() -> int:
                return int(r.info("errorstats").get("errorstat_OOM", {}).get("count", 0))

            until(lambda: ooms() >= 20, 120, "the workers to hit Redis' maxmemory")
            assert len(w.alive()) == 2, "a worker died of an OOM error"
            assert all(h.status() == "running" for h in handles)  # nothing failed, nothing lost
            r.config_set("maxmemory", 0)  # memory frees up
            results = [h.result(timeout=180, raise_on_error=False) for h in handles]
            assert [x.status for x in results] == ["succeeded"] * 3, [x.error for x in results]
            assert all(len(x.outputs) == 21 for x in results)
            assert all(len(x.outputs[f"b{i}"]) == 200_000 for x in results for i in range(20))
            for h in handles:
                assert set(commits_per_node(h).values()) == {1}
            assert 60 <= int(counters.get("m:exec") or 0) <= 60 + 8
            assert len(w.alive()) == 2
            until(lambda: any("maxmemory" in row.get("last_redis_error", "")  # OOM, both forms
                              and row.get("redis_errors", 0) > 0 for row in worker_rows(r)),
                  30, "a worker to report the OOM errors in its info")
        finally:
            w.close()


def test_claim_whose_reply_was_lost_is_taken_up_by_its_worker(redis_url: str) -> None:
    """CLAIM ran but its reply never reached the worker (the connection dropped in between):
    the item is this live worker's, which the reaper spares; the worker must take it up."""
    counters = redis.Redis.from_url(redis_url)
    w = Workers(redis_url, modules=MODS)
    try:
        ex = DistributedExecutor(redis_url)
        bp = fanout("w-sync-sleep", redis_url, "lost", 2, s=0.01)
        with pytest.warns(NoWorkersWarning):  # no worker yet: the job waits in the queue
            handle = ex.submit(bp)
        name = f"test-w1-{os.getpid()}"  # the name Workers gives its first worker
        digest = ex.store.meta(handle.run_id)["blueprint"]
        assert ex.store.claim(handle.run_id, digest, "start", 1, name)["r"] == "ok"  # "lost"
        w.start(1)
        res = handle.result(timeout=120, raise_on_error=False)
        assert res.status == "succeeded", res.error
        assert set(commits_per_node(handle).values()) == {1}
        assert int(counters.get("lost:exec") or 0) == 2
    finally:
        w.close()
