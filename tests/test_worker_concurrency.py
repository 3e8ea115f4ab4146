"""Concurrent workers and their hardening, with real Redis and real ``flownb worker`` processes.

Every "ran once" claim is proved by a Redis INCR inside the node body (tests/worker_nodes.py),
outside flownb's commit path; in-flight figures come from a Redis counter, never from wall time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.distributed.jobs import make_queue
from flownb.distributed.visits import DEFAULT_CONCURRENCY

from conftest import Workers

pytestmark = pytest.mark.timeout(180)

MODS = ("scenario_nodes", "dist_nodes", "worker_nodes")


def one_node(uses: str, url: str, tag: str, **params: object) -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": f"w-{uses}", "nodes": [
        {"id": "n", "uses": uses, "params": {"redis": url, "tag": tag, **params}}], "edges": []})


def fanout(uses: str, url: str, tag: str, width: int, **params: object) -> flownb.Blueprint:
    nodes = [{"id": "start", "uses": "noop"}]
    nodes += [{"id": f"b{i}", "uses": uses, "params": {"redis": url, "tag": tag, **params}}
              for i in range(width)]
    edges = [{"source": "start", "target": f"b{i}"} for i in range(width)]
    return flownb.Blueprint.from_dict({"id": f"fan-{uses}-{width}", "nodes": nodes, "edges": edges})


def counter(r: redis.Redis, key: str) -> int:
    return int(r.get(key) or 0)


def worker_rows(r: redis.Redis) -> list[dict]:
    return [json.loads(v) for v in r.hgetall("flownb:workers").values()]


@pytest.fixture
def cworkers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url, lease_ttl_s=2.0, modules=MODS)
    yield w
    w.close()


def test_one_worker_runs_many_async_visits_at_once(redis_url: str, cworkers: Workers) -> None:
    cworkers.args = ("--concurrency", "32")
    cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(fanout("w-async-sleep", redis_url, "a", 100, s=0.2))  # 100 ready at once
    assert handle.result(timeout=60).status == "succeeded"
    assert counter(r, "a:exec") == 100
    assert counter(r, "a:max") >= 16, "async visits did not overlap on one worker"
    assert max(row["max_in_flight"] for row in worker_rows(r)) <= 32


def test_sync_nodes_share_a_bounded_pool(redis_url: str, cworkers: Workers) -> None:
    cworkers.args = ("--concurrency", "8")
    cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(fanout("w-sync-sleep", redis_url, "s", 40, s=0.2))
    assert handle.result(timeout=60).status == "succeeded"
    assert counter(r, "s:exec") == 40
    assert 4 <= counter(r, "s:max") <= 8


def test_kill9_reruns_each_in_flight_visit_once(redis_url: str, cworkers: Workers) -> None:
    cworkers.args = ("--concurrency", "32")
    [victim] = cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    bp = one_node("w-gate", redis_url, "k")  # each visit runs until the test opens the gate
    handles = [ex.submit(bp) for _ in range(24)]
    deadline = time.monotonic() + 120  # a condition, not a speed: only a hung worker misses it
    while counter(r, "k:cur") < 24 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counter(r, "k:cur") == 24, "the worker did not run 24 visits at once"
    cworkers.kill(victim)
    in_flight = counter(r, "k:cur")  # the victim never decremented these
    assert in_flight == 24 and counter(r, "k:exec") == 24
    r.set("k:open", 1)
    cworkers.start(1)
    results = [h.result(timeout=120) for h in handles]
    assert all(res.status == "succeeded" for res in results), [x.error for x in results]
    commits = sum(1 for h in handles for e in h.events() if e.type == "node_succeeded")
    assert commits == 24  # nothing committed twice
    assert counter(r, "k:exec") == commits + in_flight  # each killed visit re-ran exactly once


def test_quick_sync_chain_runs_on_the_loop_and_keeps_the_policy(
        redis_url: str, cworkers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain of quick sync nodes runs on the worker's loop thread (no thread hop per node);
    a SystemExit/KeyboardInterrupt raised there still fails that node once, the worker lives."""
    # "quick" is learnt from measured durations: a generous bound keeps a loaded machine from
    # deciding whether this test takes the inline path
    monkeypatch.setenv("FLOWNB_WORKER_INLINE_MAX_S", "30")
    cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    for kind, type_ in (("exit", "SystemExit"), ("kbint", "KeyboardInterrupt")):
        tag = f"inl-{kind}"
        nodes = [{"id": f"n{i}", "uses": "w-raise",
                  "params": {"redis": redis_url, "tag": tag, "kind": "pass"}} for i in range(6)]
        nodes[-1]["params"]["kind"] = kind
        bp = flownb.Blueprint.from_dict({"id": f"inline-{kind}", "nodes": nodes, "edges": [
            {"source": f"n{i}", "target": f"n{i + 1}"} for i in range(5)]})
        res = ex.submit(bp).result(timeout=60, raise_on_error=False)
        assert res.status == "failed" and res.error["type"] == type_, res.error
        assert res.error["node_id"] == "n5"
        assert counter(r, f"{tag}:exec") == 6  # each node ran once, the failing one too
        assert cworkers.alive(), "the worker died"
    time.sleep(1.0)  # one more beat publishes the stats
    assert sum(row.get("inline", 0) for row in worker_rows(r)) >= 5


def test_backlog_causes_no_requeue(redis_url: str) -> None:
    w = Workers(redis_url, lease_ttl_s=1.0, modules=MODS, args=("--concurrency", "4"))
    try:
        w.start(1)
        r = redis.Redis.from_url(redis_url)
        ex = DistributedExecutor(redis_url)
        # 300 queued items, 4 at a time x 0.1 s: the last wait ~7 s, past the 5 s queued lease
        handle = ex.submit(fanout("w-sync-sleep", redis_url, "b", 300, s=0.1))
        assert handle.result(timeout=120).status == "succeeded"
        assert counter(r, "b:exec") == 300
        time.sleep(1.0)  # one more beat publishes the final stats
        assert sum(row["requeued"] for row in worker_rows(r)) == 0
    finally:
        w.close()


@pytest.mark.parametrize("kind, type_", [("exit", "SystemExit"), ("kbint", "KeyboardInterrupt"),
                                          ("surrogate", "JSONDataError")])
def test_base_exceptions_and_unstorable_outputs_fail_the_node_once(
        redis_url: str, cworkers: Workers, kind: str, type_: str) -> None:
    cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(fanout("w-raise", redis_url, "x", 20, kind=kind))
    res = handle.result(timeout=30, raise_on_error=False)
    assert res.status == "failed"
    assert res.error["type"] == type_, res.error
    assert "WorkerLost" not in res.error["message"]
    if kind == "exit":
        assert "library called sys.exit" in res.error["message"]
    time.sleep(1.0)
    assert counter(r, "x:exec") <= 20  # nothing ran twice; the run ended (no orphaned claims)
    assert cworkers.alive(), "the worker died"
    ok = ex.submit(one_node("w-async-sleep", redis_url, "y", s=0.01))
    assert ok.result(timeout=30).status == "succeeded"


def test_worker_refuses_foreign_job_functions(redis_url: str, cworkers: Workers,
                                              tmp_path: Path) -> None:
    cworkers.start(1)
    target = tmp_path / "pwned"
    q = make_queue(redis.Redis.from_url(redis_url))
    job = q.enqueue_call("os.system", args=(f"touch {target}",))
    ex = DistributedExecutor(redis_url)
    ok = ex.submit(one_node("w-async-sleep", redis_url, "z", s=0.01))
    assert ok.result(timeout=30).status == "succeeded"  # the worker keeps serving
    time.sleep(0.5)
    assert not target.exists()
    job.refresh()
    assert job.get_status() == "failed"
    assert job.id in q.failed_job_registry.get_job_ids()


def test_malformed_job_hash_is_skipped(redis_url: str, cworkers: Workers) -> None:
    cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    r.hset("rq:job:broken", mapping={"data": b"\xff\x00not json", "status": "queued"})
    r.rpush("rq:queue:flownb", "broken")
    time.sleep(0.5)
    ex = DistributedExecutor(redis_url)
    ok = ex.submit(one_node("w-async-sleep", redis_url, "m", s=0.01))
    assert ok.result(timeout=30).status == "succeeded"
    assert cworkers.alive()


def test_no_node_body_starts_after_cancel(redis_url: str, cworkers: Workers) -> None:
    cworkers.args = ("--concurrency", "8")
    cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(fanout("w-async-sleep", redis_url, "c", 200, s=0.2))
    deadline = time.monotonic() + 20
    while counter(r, "c:exec") < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    handle.cancel()
    # a visit that read "running" just before the cancel landed is past its gate: its body's
    # INCR may arrive a few ms after cancel() returns (the worker's loop runs 8 visits at once).
    # Nothing may start after that: uncancelled, ~8 new bodies would start every 0.2 s here.
    time.sleep(0.1)
    started = counter(r, "c:exec")
    time.sleep(1.5)
    assert counter(r, "c:exec") == started, "node bodies started after cancel() returned"
    assert started < 200


def test_gil_bound_node_is_not_run_twice(redis_url: str) -> None:
    w = Workers(redis_url, lease_ttl_s=1.0, modules=MODS)
    try:
        w.start(2)
        r = redis.Redis.from_url(redis_url)
        ex = DistributedExecutor(redis_url)
        handle = ex.submit(one_node("w-gil-hog", redis_url, "g", s=4.0))
        assert handle.result(timeout=60).status == "succeeded"
        assert counter(r, "g:exec") == 1, "\n".join(f"{e.type} {e.node_id} {e.data}"
                                                      for e in handle.events())
    finally:
        w.close()


def test_worker_lacking_a_module_hands_the_node_back(redis_url: str) -> None:
    capable = Workers(redis_url, modules=MODS)
    lacking = Workers(redis_url, modules=("scenario_nodes",))
    lacking._n = 100  # distinct worker names
    try:
        lacking.start(1)
        capable.start(1, wait=False)
        capable.wait_ready(2)  # both rows: the capable worker serves too
        ex = DistributedExecutor(redis_url)
        bp = one_node("w-async-sleep", redis_url, "h", s=0.01)
        results = [h.result(timeout=60) for h in [ex.submit(bp) for _ in range(20)]]
        assert all(res.status == "succeeded" for res in results), [x.error["message"] for x in results
                                                                   if x.error][:2]
        capable.close()
        time.sleep(3.5)  # the capable worker's row is gone
        res = ex.submit(bp).result(timeout=30, raise_on_error=False)
        assert res.status == "failed"
        assert "no live worker can run node type(s) 'w-async-sleep'" in res.error["message"]
    finally:
        lacking.close()
        capable.close()


def test_requeue_count_is_published(redis_url: str, cworkers: Workers) -> None:
    cworkers.start(1)
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 10
    while not worker_rows(r) and time.monotonic() < deadline:
        time.sleep(0.05)
    row = worker_rows(r)[0]
    assert row["requeued"] == 0 and row["concurrency"] == DEFAULT_CONCURRENCY and "w-async-sleep" in row["names"]
    assert os.getpid() != row["pid"]
