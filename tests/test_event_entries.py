"""One stream entry for two events: a node's success and the start of the successor its commit
claims inline (issue 21: one XADD instead of two per chain node). Every reader expands the entry
back to both events, in order, with the entry's id, so reading on after an id still works (real
Redis, real worker processes)."""

from __future__ import annotations

import pytest
import redis
from conftest import Workers

import flownb
from flownb.core.events import Event
from flownb.distributed.client import DistributedExecutor

pytestmark = pytest.mark.timeout(120)


def chain(n: int) -> flownb.Blueprint:
    b = flownb.Builder(f"entries-chain-{n}")
    for i in range(n):
        b.node(f"n{i}", "noop")
    b.chain(*[f"n{i}" for i in range(n)])
    return b.build()


def expected(n: int) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = [("run_started", None)]
    for i in range(n):
        out += [("node_started", f"n{i}"), ("node_succeeded", f"n{i}")]
    return [*out, ("run_finished", None)]


def test_a_success_and_the_inline_start_are_one_entry_read_as_two_events(
        redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    r = redis.Redis.from_url(redis_url)
    res = ex.run(chain(5), timeout=60)
    assert res.status == "succeeded"
    raw = r.xrange(ex.store.keys.events(res.run_id))
    merged = [f for _, f in raw if b"t2" in f]
    # n0 -> n1 ... n3 -> n4: each commit claimed its successor inline, in the same entry
    assert [(f[b"n"], f[b"n2"]) for f in merged] == [(f"n{i}".encode(), f"n{i + 1}".encode())
                                                     for i in range(4)]
    handle = ex.attach(res.run_id)
    events = list(handle.events())
    assert [(e.type, e.node_id) for e in events] == expected(5)
    assert len(events) == len(raw) + len(merged)
    # the started event carries what a separate one did (visit, worker, first delivery)
    started = [e for e in events if e.type == "node_started" and e.node_id == "n2"][0]
    assert started.data["visit"] == 1 and started.data["delivery"] == 1 and started.data["worker"]
    # both events of an entry carry its id; reading on after it gives what follows both
    succ = [e for e in events if e.type == "node_succeeded" and e.node_id == "n1"][0]
    assert started.id == succ.id
    after = ex.store.events(res.run_id, after=succ.id)
    assert [(e.type, e.node_id) for e in after] == expected(5)[6:]
    # following (blocking XREAD) gives the same events as reading them
    assert [(e.type, e.node_id, e.id) for e in ex.store.follow(res.run_id, timeout_s=10)] == \
        [(e.type, e.node_id, e.id) for e in events]
    # the in-process executor emits the same sequence
    seen: list[tuple[str, str | None]] = []
    flownb.run(chain(5), on_event=lambda e: seen.append((e.type, e.node_id)))
    assert seen == expected(5)


def test_a_skipped_branch_between_keeps_its_own_entries(redis_url: str, workers: Workers) -> None:
    """When the commit skips a branch, the events read as in process: the success, the skip,
    then the successor's start, each its own entry (no merge across the skip)."""
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    bp = flownb.load({"id": "entries-skip", "nodes": [
        {"id": "a", "uses": "set", "params": {"values": {"k": 1}}}, {"id": "b", "uses": "noop"},
        {"id": "x", "uses": "noop"}],
        "edges": [{"source": "a", "target": "b"},
                  {"source": "a", "target": "x", "condition": "state.k == 2"}]})
    res = ex.run(bp, timeout=60)
    assert res.status == "succeeded"
    types = [(e.type, e.node_id) for e in ex.attach(res.run_id).events()]
    assert types == [("run_started", None), ("node_started", "a"), ("node_succeeded", "a"),
                     ("node_skipped", "x"), ("node_started", "b"), ("node_succeeded", "b"),
                     ("run_finished", None)]


def test_batch_progress_reads_merged_entries(redis_url: str, workers: Workers) -> None:
    """The batch's watcher (one XREAD over every row's stream) reads merged entries: every
    node's success is counted once per row."""
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    batch = ex.map(chain(4), [{"i": i} for i in range(3)])
    assert batch.wait(timeout=60)
    snap = batch.stats.snapshot()
    assert snap.succeeded == 3
    assert {n.node_id: n.count for n in snap.nodes} == {f"n{i}": 3 for i in range(4)}


def test_entry_fields_expand_from_bytes_and_str() -> None:
    fields = {b"t": b"node_succeeded", b"n": b"a", b"ts": b"12.5", b"d": b'{"attempt":1}',
              b"t2": b"node_started", b"n2": b"b", b"d2": b'{"visit":1}'}
    first, second = Event.all_from_fields("r1", fields, "5-0")
    assert (first.type, first.node_id, first.data, first.id) == ("node_succeeded", "a", {"attempt": 1}, "5-0")
    assert (second.type, second.node_id, second.data, second.ts, second.id) == \
        ("node_started", "b", {"visit": 1}, 12.5, "5-0")
    one = Event.all_from_fields("r1", {"t": "run_started", "n": "", "ts": "1", "d": "{}"}, "1-0")
    assert [(e.type, e.node_id) for e in one] == [("run_started", None)]
