"""Scripts never stop half-way, and a run's keys live exactly as long as the run (real Redis,
real worker processes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from conftest import Workers

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.distributed.store import RedisStore

pytestmark = pytest.mark.timeout(120)


def _slow_chain(pidfile: Path, seconds: float = 1.0) -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({
        "id": "integrity-chain",
        "nodes": [{"id": "a", "uses": "noop"},
                  {"id": "b", "uses": "dist-slow", "params": {"seconds": seconds, "pidfile": str(pidfile)}},
                  {"id": "c", "uses": "noop"}],
        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}]})


def _wait_file(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} never appeared"


@pytest.mark.parametrize(("damage", "failing"), [
    ("expired", "b"),
    ("i:b", "b"),  # the committing node's own entry
    ("o:b", "b"),  # its out edges: never read as "no out edges" (which would end the run early)
    # its successor's entry: b's commit reads c's join info from its own out edge, so b commits
    # and claims c; c's commit needs 'i:c' and fails the run, writing nothing of c's visit
    ("i:c", "c"),
])
def test_commit_with_a_damaged_graph_writes_nothing_and_fails_the_run(
        redis_url: str, workers: Workers, tmp_path: Path, damage: str, failing: str) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    pidfile = tmp_path / "pid"
    bp = _slow_chain(pidfile)
    handle = ex.submit(bp)
    _wait_file(pidfile)
    r = redis.Redis.from_url(redis_url)
    graph_key = ex.store.keys.blueprint(bp.digest)
    if damage == "expired":
        r.delete(graph_key)           # what an expiry or an eviction does
    else:
        assert r.hdel(graph_key, damage) == 1  # a stored graph that lacks a field
    res = handle.result(timeout=30, raise_on_error=False)
    assert res.status == "failed"
    assert res.error["type"] == "ExecutorError"
    assert res.error["node_id"] == failing
    assert "compiled graph of blueprint 'integrity-chain'" in res.error["message"]
    assert ("is not in Redis" if damage == "expired" else "is incomplete") in res.error["message"]
    assert "submit it again" in res.error["message"]
    sched = ex.store.keys.sched(handle.run_id)
    # nothing of the failing visit was written: no done marker, no output, no node_succeeded event
    assert not r.hexists(sched, f"d:{failing}:1")
    assert failing not in res.outputs
    succeeded = [e.node_id for e in handle.events() if e.type == "node_succeeded"]
    assert succeeded == ["a", "b"][:["a", "b", "c"].index(failing)], succeeded
    assert [e.type for e in handle.events()][-1] == "run_failed"
    assert r.hlen(ex.store.keys.pending(handle.run_id)) == 0
    assert not r.zrange(ex.store.keys.leases, 0, -1)


def test_start_with_a_missing_graph_writes_nothing(redis_url: str) -> None:
    store = RedisStore(redis.Redis.from_url(redis_url))
    bp = _slow_chain(Path("/nonexistent"))
    from flownb.core.graph import analyse

    g, _ = analyse(bp)
    digest = store.upload_blueprint(bp)
    store.r.hdel(store.keys.blueprint(digest), "i:a")
    # the stale upload cache is noticed: START refuses, the store re-uploads and retries once
    assert store.start_run("r1", bp, g, {}) == [("a", 1)]
    # a bundle blueprint that is gone: refused, and not a key written
    with pytest.raises(flownb.FlownbError, match="subflow bundle is not in Redis .*nothing was written"):
        store.start_run("r2", bp, g, {}, bundle={"child": "0" * 16})
    assert not [k for k in store.r.keys("*") if b":run:r2:" in k]


def test_blueprint_keys_live_as_long_as_the_runs_using_them(redis_url: str, workers: Workers,
                                                            tmp_path: Path) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    r = redis.Redis.from_url(redis_url)
    slow = flownb.Blueprint.from_dict({
        "id": "integrity-ttl", "nodes": [{"id": "s", "uses": "dist-slow", "params": {"seconds": 1.5}}]})
    graph_key = ex.store.keys.blueprint(slow.digest)
    long_run = ex.submit(slow)
    short_run = ex.submit(slow)
    assert r.ttl(graph_key) == -1            # held: no TTL while a run uses it
    ex.store.upload_blueprint(slow, force=True)
    assert r.ttl(graph_key) == -1            # a re-upload does not shorten it
    assert short_run.result(timeout=30).status == "succeeded"
    assert long_run.result(timeout=30).status == "succeeded"
    ttl = ex.store.settings.result_ttl_s
    assert 0 < r.ttl(graph_key) <= 2 * ttl   # the last run to end gave it its TTL
    assert r.hget(ex.store.keys.bprefs, slow.digest) is None
    for run in (long_run, short_run):
        for key in ex.store.keys.all_run_keys(run.run_id):
            if r.exists(key):                # every key of a finished run expires together
                assert 0 < r.ttl(key) <= ttl, key
    # while a run is active none of its keys has a TTL
    active = ex.submit(slow)
    time.sleep(0.3)
    for key in ex.store.keys.all_run_keys(active.run_id):
        if r.exists(key):
            assert r.ttl(key) == -1, key
    active.cancel()
    assert 0 < r.ttl(graph_key) <= 2 * ttl


def test_map_children_are_not_listed_and_their_ids_stay_out_of_the_pending_item(
        redis_url: str, workers: Workers) -> None:
    workers.start(2)
    ex = DistributedExecutor(redis_url)
    bp = flownb.Blueprint.from_dict({
        "id": "integrity-map",
        "nodes": [{"id": "items", "uses": "set", "params": {"values": {"xs": list(range(40))}}},
                  {"id": "each", "uses": "map", "params": {"items": "xs", "node": "t-echo"}}],
        "edges": [{"source": "items", "target": "each"}]})
    res = ex.run(bp, timeout=60)
    assert res.status == "succeeded"
    assert res.outputs["each"] == list(range(40))
    assert [m["run_id"] for m in ex.runs(50)] == [res.run_id]
    r = redis.Redis.from_url(redis_url)
    assert r.zcard(ex.store.keys.runs) == 1
    # the countdown fields are gone once the parent visit committed
    assert not [f for f in r.hkeys(ex.store.keys.sched(res.run_id)) if f[:3] in (b"cw:", b"ch:")]
