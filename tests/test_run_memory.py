"""Redis per finished run stays small (issue 21: ≤ 12 KiB per finished moderation run).

``MEMORY USAGE`` (exact: ``SAMPLES 0``) of every key a finished run leaves is deterministic for
a given blueprint and inputs, so a bound catches a key that starts to cost more or to outlive
the run. What a finished run keeps: meta (a compact hash: no value over 64 bytes), state,
nodes, sched (the done markers hold the path), events, and a one-entry ``done`` list; not its
jobs hash, and no history stream unless it was submitted with ``history=True``.
"""

from __future__ import annotations

import pytest
import redis

import flownb
from flownb.distributed import DistributedExecutor

from conftest import Workers

pytestmark = pytest.mark.timeout(120)


def with_subflow() -> tuple[flownb.Blueprint, flownb.Registry]:
    reg = flownb.Registry()
    for i in range(3):  # a bundle of three, like the moderation agent's
        reg.add_blueprint(flownb.load({"id": f"mem-child-{i}", "nodes": [
            {"id": "c1", "uses": "noop"}, {"id": "c2", "uses": "noop"}],
            "edges": [{"source": "c1", "target": "c2"}]}))
    nodes = [{"id": f"check{i}", "uses": "noop"} for i in range(3)]
    nodes += [{"id": "triage", "uses": "noop", "config": {"join": "all"}, "inputs": "check0"}]
    nodes += [{"id": f"sub{i}", "uses": "subflow", "params": {"blueprintId": f"mem-child-{i}"}}
              for i in range(3)]
    edges = [{"source": f"check{i}", "target": "triage"} for i in range(3)]
    edges += [{"source": "triage", "target": "sub0", "condition": "true"},
              {"source": "triage", "target": "sub1", "condition": "false"},
              {"source": "triage", "target": "sub2", "condition": "false"}]
    return flownb.load({"id": "mem-top", "nodes": nodes, "edges": edges}), reg


def usage(r: redis.Redis, run_id: str) -> dict[str, int]:
    return {k.decode().split(":", 2)[2]: int(r.memory_usage(k, samples=0) or 0)
            for k in r.scan_iter(f"flownb:run:{run_id}:*")}


def test_a_finished_run_and_its_child_keep_only_what_they_need(
        redis_url: str, workers: Workers) -> None:
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    top, reg = with_subflow()
    ex = DistributedExecutor(redis_url, registry=reg)
    h = ex.submit(top, {"text": "hello"})
    assert h.result(timeout=30).status == "succeeded"
    child = f"{h.run_id}.sub0.1.0"
    parent_keys, child_keys = usage(r, h.run_id), usage(r, child)
    kinds = {k.rsplit(":", 1)[1] for k in parent_keys}
    # no "nodes" hash: a node's stats are a field of the state (keys.stats_field)
    assert kinds == {"meta", "state", "sched", "events", "done", "children"}, kinds
    assert {k.rsplit(":", 1)[1] for k in child_keys} == {"meta", "state", "sched", "events", "done"}
    res = h.result(timeout=30)
    assert res.nodes["triage"].status == "succeeded" and res.nodes["sub1"].status == "skipped"
    assert res.child_states and all(s == "succeeded" for s in res.child_states.values())
    for run in (h.run_id, child):
        assert r.type(f"flownb:run:{run}:done") == b"list"
        assert r.object("encoding", f"flownb:run:{run}:meta") == b"ziplist"
        assert 0 < r.ttl(f"flownb:run:{run}:meta") <= ex.store.settings.result_ttl_s
    # 13,986 bytes before issue 21's cuts (history streams, jobs hashes, 650-byte done streams,
    # meta hashes turned into hash tables by the bundle JSON), 8,188 after; 8,590 once node stats
    # are fields of the state (small outputs: the state hash is no longer compact; a run whose
    # outputs were large already, moderation, takes 0.3 KiB less)
    total = sum(parent_keys.values()) + sum(child_keys.values())
    assert total <= 9 * 1024, (total, parent_keys, child_keys)
    # with history=True the two history streams come back (and nothing else)
    h2 = ex.submit(top, {"text": "hello"}, history=True)
    assert h2.result(timeout=30).status == "succeeded"
    assert r.type(f"flownb:run:{h2.run_id}:history") == b"stream"
    assert r.type(f"flownb:run:{h2.run_id}.sub0.1.0:history") == b"stream"


def test_a_child_run_carries_the_bundle_it_reaches_and_nested_subflows_run(
        redis_url: str, workers: Workers) -> None:
    """The parent's bundle is one ``b:<id>`` meta field per blueprint; a child gets only what its
    own blueprint can start (its subflow's blueprint, nested ones too), a leaf child none."""
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    reg = flownb.Registry()
    reg.add_blueprint(flownb.load({"id": "nest-leaf", "nodes": [{"id": "x", "uses": "noop"}]}))
    reg.add_blueprint(flownb.load({"id": "nest-mid", "nodes": [
        {"id": "m", "uses": "noop"},
        {"id": "deeper", "uses": "subflow", "params": {"blueprintId": "nest-leaf"}}],
        "edges": [{"source": "m", "target": "deeper"}]}))
    top = flownb.load({"id": "nest-top", "nodes": [
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "nest-mid"}}]})
    h = DistributedExecutor(redis_url, registry=reg).submit(top)
    res = h.result(timeout=30)
    assert res.status == "succeeded"
    assert res.child_states == {"sub/m": "succeeded", "sub/deeper": "succeeded",
                                "sub/deeper/x": "succeeded"}

    def bundle(run: str) -> dict[str, str]:
        return {k.decode()[2:]: v.decode() for k, v in r.hgetall(f"flownb:run:{run}:meta").items()
                if k.startswith(b"b:")}

    digest = {i: reg.get_blueprint(i).digest for i in ("nest-mid", "nest-leaf")}
    assert bundle(h.run_id) == digest
    assert bundle(f"{h.run_id}.sub.1.0") == {"nest-leaf": digest["nest-leaf"]}
    assert bundle(f"{h.run_id}.sub.1.0.deeper.1.0") == {}
    # every blueprint reference was dropped when the runs ended
    assert not {k.decode(): v for k, v in r.hgetall("flownb:bprefs").items()
                if k.decode() in digest.values() and int(v) > 0}


def test_keys_an_older_flownb_wrote_still_read(redis_url: str) -> None:
    """A run started before these changes: its done stream ends a wait at once, its bundle JSON
    is still its bundle."""
    import time

    from flownb.distributed.bundles import meta_bundle

    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    r.hset("flownb:run:older-1:meta", mapping={"status": "succeeded"})
    r.xadd("flownb:run:older-1:done", {"s": "succeeded"})
    t0 = time.monotonic()
    assert ex.store.wait_done("older-1", 5) and time.monotonic() - t0 < 1
    assert meta_bundle({"bundle": '{"a": "0123456789abcdef"}'}) == {"a": "0123456789abcdef"}
    assert meta_bundle({"b:a": "0123456789abcdef", "blueprint": "x"}) == {"a": "0123456789abcdef"}
    assert meta_bundle({}) == {}
