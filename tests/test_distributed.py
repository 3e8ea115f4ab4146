"""The distributed executor with real Redis and real worker processes: guarantees and bad input."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.distributed.jobs import enqueue_items
from flownb.distributed.store import StoreSettings

from conftest import ROOT, Workers

pytestmark = pytest.mark.timeout(120)


def bp(nodes: list[dict], edges: list[dict], id_: str = "t") -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": id_, "nodes": nodes, "edges": edges})


def succeeded_events(handle, node: str) -> int:
    return sum(1 for e in handle.events() if e.type == "node_succeeded" and e.node_id == node)


def test_kill9_mid_node_reruns_it_once_and_join_counts_once(redis_url: str, workers: Workers,
                                                            tmp_path: Path) -> None:
    marker, pidfile = tmp_path / "marks", tmp_path / "pid"
    blueprint = bp(
        [{"id": "start", "uses": "dist-mark", "params": {"marker": str(marker)}},
         {"id": "slow", "uses": "dist-slow",
          "params": {"seconds": 3.0, "marker": str(marker), "pidfile": str(pidfile)}},
         {"id": "quick", "uses": "dist-mark", "params": {"marker": str(marker)}},
         {"id": "join", "uses": "dist-mark", "params": {"marker": str(marker)}}],
        [{"source": "start", "target": "slow"}, {"source": "start", "target": "quick"},
         {"source": "slow", "target": "join"}, {"source": "quick", "target": "join"}])
    [victim] = workers.start(1)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(blueprint)
    deadline = time.monotonic() + 15
    # kill while "slow" runs and once "quick" (running beside it) has committed: a visit still in
    # flight at the kill is rightly re-run, which is not what this test counts
    while not (pidfile.exists() and succeeded_events(handle, "quick")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pidfile.exists(), "slow node never started"
    assert int(pidfile.read_text()) == victim.pid
    assert succeeded_events(handle, "slow") == 0, "slow finished before the kill (machine too slow)"
    workers.kill(victim)
    killed_at = time.monotonic()
    workers.start(1)
    res = handle.result(timeout=30)
    assert res.status == "succeeded", res.error
    lines = marker.read_text().split()
    # the slow node ran twice (killed once), everything else once; each committed exactly once
    assert lines.count("slow") == 2
    assert lines.count("join") == 1 and lines.count("quick") == 1 and lines.count("start") == 1
    for node in ("start", "slow", "quick", "join"):
        assert succeeded_events(handle, node) == 1, node
    assert res.outputs["join"] == "join"
    assert set(res.state) == set()
    restarts = [e for e in handle.events() if e.type == "node_started" and e.node_id == "slow"]
    assert len(restarts) == 2 and restarts[1].data.get("delivery") == 2
    assert time.monotonic() - killed_at < 20  # lease 2 s + reaper + 3 s sleep, with margin


def test_duplicate_commit_is_ignored(redis_url: str) -> None:
    from flownb.distributed.redis_scheduler import RedisScheduler
    from flownb.distributed.store import RedisStore

    store = RedisStore(redis.Redis.from_url(redis_url))
    blueprint = bp([{"id": "a", "uses": "noop"}, {"id": "b", "uses": "noop"}, {"id": "c", "uses": "noop"}],
                   [{"source": "a", "target": "c"}, {"source": "b", "target": "c"}])
    sched = RedisScheduler(store, blueprint, "dup1")
    ready = sched.start()
    assert {i.node for i in ready} == {"a", "b"}
    first = sched.complete("a", 1, {0})
    assert first is not None and first.ready == []
    assert sched.complete("a", 1, {0}) is None  # a redelivered commit counts nothing
    out = sched.complete("b", 1, {1})
    assert out is not None and [i.node for i in out.ready] == ["c"]


def test_worker_survives_bad_jobs_and_unknown_uses(redis_url: str, workers: Workers) -> None:
    workers.start(2)
    ex = DistributedExecutor(redis_url)
    # a job for a run that does not exist
    enqueue_items(ex.queue, "no-such-run", [["a", 1]])
    # a blueprint naming a node type no worker registered
    bad = ex.submit(bp([{"id": "a", "uses": "definitely-not-registered"}], []))
    with pytest.raises(flownb.RunFailed) as info:  # loud by default, as in process
        bad.result(timeout=20)
    assert info.value.node_id == "a" and info.value.run_id == bad.run_id
    res = bad.result(timeout=20, raise_on_error=False)
    assert res.status == "failed" and info.value.result.status == "failed"
    assert "definitely-not-registered" in res.error["message"]
    assert any(e.type == "run_failed" for e in bad.events())
    # a job naming a node the run's blueprint does not have
    slow = ex.submit(bp([{"id": "a", "uses": "dist-slow", "params": {"seconds": 3}}], []))
    time.sleep(0.3)  # one worker is busy with 'a'; the other takes the bogus job
    enqueue_items(ex.queue, slow.run_id, [["ghost", 1]])
    res = slow.result(timeout=20, raise_on_error=False)
    assert res.status == "failed" and "ghost" in res.error["message"]
    # and the worker still serves
    ok = ex.run(bp([{"id": "a", "uses": "dist-mark"}], []), timeout=20)
    assert ok.status == "succeeded"
    assert all(p.poll() is None for p in workers.procs)


def test_corrupt_state_field_fails_the_run_clearly(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(bp([{"id": "wait", "uses": "dist-slow", "params": {"seconds": 0.6}},
                           {"id": "read", "uses": "dist-read", "params": {"key": "k"}}],
                          [{"source": "wait", "target": "read"}]))
    r = redis.Redis.from_url(redis_url)
    r.hset(ex.store.keys.state(handle.run_id), "k", "{not json")
    res = handle.result(timeout=20, raise_on_error=False)
    assert res.status == "failed"
    assert res.error["node_id"] == "read"
    assert "corrupt state field 'k'" in res.error["message"]


def test_cancel_stops_the_run_on_workers(redis_url: str, workers: Workers, tmp_path: Path) -> None:
    workers.start(2)
    marker = tmp_path / "marks"
    nodes = [{"id": f"n{i}", "uses": "dist-slow", "params": {"seconds": 0.3, "marker": str(marker)}}
             for i in range(10)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(9)]
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(bp(nodes, edges))
    while not marker.exists():
        time.sleep(0.02)
    assert handle.cancel()
    res = handle.result(timeout=10, raise_on_error=False)
    assert res.status == "cancelled"
    with pytest.raises(flownb.RunCancelled):
        handle.result(timeout=10)

    async def wait() -> None:
        await handle

    with pytest.raises(flownb.RunCancelled):  # ``await handle`` raises like result()
        asyncio.run(wait())
    assert asyncio.run(handle.aresult(10, raise_on_error=False)).status == "cancelled"
    time.sleep(0.8)
    ran = marker.read_text().split()
    assert len([x for x in ran if x.startswith("n")]) <= 2  # the in-flight node at most
    assert not handle.cancel()  # already over
    assert any(e.type == "run_cancelled" for e in handle.events())


def test_attach_from_another_process_and_runs_listing(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(bp([{"id": "a", "uses": "dist-slow", "params": {"seconds": 0.3}}], [], "attached"))
    code = ("import flownb; h = flownb.attach(%r, redis=%r); r = h.result(timeout=20); "
            "print(r.status, r.outputs['a']['node'])" % (handle.run_id, redis_url))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(ROOT))
    assert out.stdout.split() == ["succeeded", "a"], out.stderr
    listing = subprocess.run([sys.executable, "-m", "flownb", "runs", "--redis", redis_url],
                             capture_output=True, text=True, timeout=60)
    assert handle.run_id in listing.stdout and "attached" in listing.stdout
    with pytest.raises(flownb.ExecutorError, match="no run"):
        ex.attach("nope")


def test_results_expire_after_ttl(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url, settings=StoreSettings(result_ttl_s=1))
    res = ex.run(bp([{"id": "a", "uses": "dist-mark"}], []), timeout=20)
    assert res.status == "succeeded"
    r = redis.Redis.from_url(redis_url)
    assert r.exists(ex.store.keys.state(res.run_id))
    time.sleep(1.6)
    assert not any(r.exists(k) for k in ex.store.keys.run_keys(res.run_id))


def test_fan_out_spreads_over_workers(redis_url: str, workers: Workers, tmp_path: Path) -> None:
    workers.start(2)
    marker = tmp_path / "marks"
    nodes = [{"id": "s", "uses": "dist-mark"}, {"id": "j", "uses": "dist-mark"}]
    nodes += [{"id": f"b{i}", "uses": "dist-slow", "params": {"seconds": 0.1, "marker": str(marker)}}
              for i in range(12)]
    edges = [{"source": "s", "target": f"b{i}"} for i in range(12)]
    edges += [{"source": f"b{i}", "target": "j"} for i in range(12)]
    res = DistributedExecutor(redis_url).run(bp(nodes, edges), timeout=30)
    assert res.status == "succeeded"
    assert set(res.outputs["j"] if isinstance(res.outputs["j"], list) else [res.outputs["j"]]) == {"j"}
    pids = {line.split()[2] for line in marker.read_text().splitlines()}
    assert len(pids) == 2, "both workers should have run branches"


def test_redis_restart_mid_run_workers_reconnect(tmp_path: Path) -> None:
    from flownb.distributed.server import EmbeddedRedis

    with EmbeddedRedis(appendonly=True) as srv:
        w = Workers(srv.url)
        try:
            w.start(1)
            marker = tmp_path / "marks"
            nodes = [{"id": f"n{i}", "uses": "dist-slow",
                      "params": {"seconds": 0.25, "marker": str(marker)}} for i in range(8)]
            edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(7)]
            ex = DistributedExecutor(srv.url)
            handle = ex.submit(bp(nodes, edges))
            while not marker.exists() or len(marker.read_text().split()) < 6:
                time.sleep(0.02)
            srv.restart()
            res = handle.result(timeout=60)
            assert res.status == "succeeded", res.error
            assert len(res.outputs) == 8
            assert all(p.poll() is None for p in w.procs), "worker should reconnect, not exit"
        finally:
            w.close()


def test_per_key_state_no_clobbering_between_parallel_branches(redis_url: str, workers: Workers) -> None:
    workers.start(2)
    nodes = [{"id": "s", "uses": "noop"}, {"id": "j", "uses": "noop"}]
    nodes += [{"id": f"w{i}", "uses": "set", "params": {"values": {f"key{i}": i}}} for i in range(8)]
    edges = [{"source": "s", "target": f"w{i}"} for i in range(8)]
    edges += [{"source": f"w{i}", "target": "j"} for i in range(8)]
    res = DistributedExecutor(redis_url).run(bp(nodes, edges), timeout=30)
    assert res.status == "succeeded"
    assert {k: v for k, v in res.state.items() if k.startswith("key")} == {f"key{i}": i for i in range(8)}


def test_worker_cli_requires_redis() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FLOWNB_REDIS_URL", "REDIS_URL")}
    out = subprocess.run([sys.executable, "-m", "flownb", "worker"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 1 and "needs a Redis" in out.stderr


def test_wait_longer_than_the_clients_socket_timeout(redis_url: str, workers: Workers) -> None:
    """redis-py 8 connections time out reads after 5 s by default; waiting on a longer run
    through such a client must still work (the blocking reads stay under that limit)."""
    workers.start(1)
    client = redis.Redis.from_url(redis_url)  # default socket timeout
    ex = DistributedExecutor(client)
    res = ex.run(bp([{"id": "a", "uses": "dist-slow", "params": {"seconds": 5.6}}], []), timeout=30)
    assert res.status == "succeeded"
