"""Batches on real workers: ``DistributedExecutor.map`` / ``LocalCluster.map`` with a real
Redis and real ``flownb worker`` processes — order, failures re-run once, cancel, the DataFrame."""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Workers

import flownb

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def batch_workers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url, modules=(*Workers.MODULES, "batch_nodes"))
    w.start(2)
    yield w
    w.close()


def _executor(url: str) -> Any:
    from flownb.distributed import DistributedExecutor

    return DistributedExecutor(url)


def _calls(url: str, n: int) -> list[int]:
    import redis

    r = redis.Redis.from_url(url)
    return [int(r.get(f"batchtest:calls:{i}") or 0) for i in range(n)]


def test_map_keeps_input_order_lists_failures_and_reruns_only_them(
        redis_url: str, batch_workers: Workers) -> None:
    ex = _executor(redis_url)
    bp = flownb.Builder("batch-dist").node("work", "batch-dist-flaky",
                                           params={"redis": redis_url}).build()
    n = 10
    # early rows sleep longer, so they end after later ones
    rows = [{"n": i, "sleep": 0.05 * (n - i) / n} for i in range(n)]
    batch = ex.map(bp, rows)
    assert len(batch.run_ids) == n and all(batch.run_ids)
    results = batch.results(timeout=60)
    assert [r.run_id for r in results] == batch.run_ids
    failed = [it.index for it in batch.failures]
    assert failed == [0, 3, 6, 9]
    for i, r in enumerate(results):
        if i in failed:
            assert r.status == "failed" and r.error and r.error["node_id"] == "work"
            assert "transient failure of row" in r.error["message"]
        else:
            assert r.status == "succeeded" and r.output == {"double": i * 2}
    snap = batch.snapshot()
    assert (snap.succeeded, snap.failed, snap.running, snap.pending) == (6, 4, 0, 0)
    assert {x.node_id: x for x in snap.nodes}["work"].count == 6

    first_ids = list(batch.run_ids)
    batch.retry_failed()
    results = batch.results(timeout=60)
    assert [r.output for r in results] == [{"double": i * 2} for i in range(n)]
    assert _calls(redis_url, n) == [2 if i % 3 == 0 else 1 for i in range(n)]
    assert [rid != first for rid, first in zip(batch.run_ids, first_ids)] == [
        i % 3 == 0 for i in range(n)]
    df = pytest.importorskip("pandas") and batch.to_pandas()
    assert list(df["status"]) == ["succeeded"] * n and list(df["n"]) == list(range(n))
    assert df.loc[4, "output"] == {"double": 8}


def test_cancel_stops_every_run_of_the_batch(redis_url: str, batch_workers: Workers,
                                             tmp_path: Path) -> None:
    ex = _executor(redis_url)
    marker = tmp_path / "started"
    # a worker runs many visits at once, so all 12 runs may be in "a" together: cancel once
    # the first has started (its marker line), long before any 3 s "a" can finish
    bp = (flownb.Builder("batch-slow")
          .node("a", "dist-slow", params={"seconds": 3.0, "marker": str(marker)})
          .node("b", "dist-mark").chain("a", "b").build())
    batch = ex.map(bp, [{"i": i} for i in range(12)])
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    batch.cancel()
    assert batch.wait(timeout=30)
    statuses = [r.status for r in batch.results()]
    assert set(statuses) <= {"succeeded", "cancelled"}
    assert statuses.count("cancelled") >= 6
    assert batch.snapshot().status == "cancelled"
    for rid, st in zip(batch.run_ids, statuses):
        assert ex.store.status(rid) == st  # cancelled in Redis too, not just in the handle


def test_local_cluster_map_with_key_and_a_bad_row(redis_url: str) -> None:
    from flownb.notebook import LocalCluster

    bp = flownb.Builder("batch-cluster").node("a", "output",
                                              params={"template": "got {{text}}"}).build()
    with LocalCluster(1, mode="thread", redis=redis_url) as cluster:
        batch = cluster.map(bp, ["x", "y", {1, 2}], key="text")  # a set is not JSON
        results = batch.results(timeout=60)
    assert [r.output for r in results[:2]] == ["got x", "got y"]
    assert results[2].status == "failed" and results[2].run_id == ""
    assert "JSON" in batch.failures[0].error_text


def test_llm_usage_includes_the_subflows_child_runs(redis_url: str, batch_workers: Workers) -> None:
    from flownb import examples

    bp = examples.load("content_moderation")
    cases = list(examples.cases("content_moderation").values())
    batch = _executor(redis_url).map(bp, cases * 2)
    results = batch.results(timeout=60)
    assert all(r.ok for r in results), [r.error for r in results]
    local = flownb.run_many(bp, cases * 2)
    assert [r.output for r in results] == [r.output for r in local.results(timeout=60)]
    snap, want = batch.snapshot(), local.snapshot()
    # 3 checks + triage per run, + the LLM call inside the redact subflow (a child run)
    assert snap.llm_calls == want.llm_calls == 8 * 4 + 2
    assert snap.total_tokens == want.total_tokens
    assert "redact_text" in {n.node_id for n in snap.nodes}


def _xreads(url: str) -> int:
    import redis
    from redis_cost import commandstats

    with redis.Redis.from_url(url) as r:
        return commandstats(r)["xread"]


def _steady_batch(url: str, runs: int, nodes: int) -> tuple[int, float, Any]:
    """A batch whose runs write events all the time (chains of short sleeps): the XREADs its
    watcher sent, its wall and its snapshot."""
    ex = _executor(url)
    b = flownb.Builder(f"batch-pace-{runs}")
    for k in range(nodes):
        b.node(f"n{k}", "dist-slow", params={"seconds": 0.15})
    for k in range(nodes - 1):
        b.edge(f"n{k}", f"n{k + 1}")
    before, t0 = _xreads(url), time.monotonic()
    batch = ex.map(b.build(), [{"row": i} for i in range(runs)])
    assert batch.wait(60)
    return _xreads(url) - before, time.monotonic() - t0, batch.snapshot()


def test_the_watcher_reads_the_streams_paced_not_once_per_event(
        redis_url: str, batch_workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """One XREAD names every unfinished run's stream and costs Redis ~1 µs per stream: while
    events keep coming, the watcher waits PACE_PER_STREAM_S per stream between reads instead
    of reading again at once (issue 21: ~0.4 ms of redis-server CPU per moderation run)."""
    from flownb.distributed import batch as dbatch

    runs, nodes = 60, 8
    paced, wall, snap = _steady_batch(redis_url, runs, nodes)
    assert (snap.succeeded, snap.failed) == (runs, 0)
    # every node's events were read, however few the reads
    assert {x.node_id: x.count for x in snap.nodes} == {f"n{k}": runs for k in range(nodes)}
    bound = wall / min(dbatch.PACE_MAX_S, runs * dbatch.PACE_PER_STREAM_S)
    assert paced <= 1.5 * bound + 10, (paced, wall)

    monkeypatch.setattr(dbatch, "PACE_PER_STREAM_S", 0.0)  # the watcher as it was
    unpaced, _, snap = _steady_batch(redis_url, runs, nodes)
    assert (snap.succeeded, snap.failed) == (runs, 0)
    assert unpaced > 3 * paced, (unpaced, paced)
