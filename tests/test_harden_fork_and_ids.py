"""Issue 19, items 3 and 6: a fork that raised leaves nothing in Redis for a worker or the
reaper to run, and a user run id can never take the place of a generated one (a map child id)
— with real workers, executions counted with Redis INCR."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.distributed.store import StoreSettings
from flownb.core.errors import ExecutorError, FlownbError

import harden_nodes  # noqa: F401 - registers the node types in this process too
from conftest import Workers

pytestmark = pytest.mark.timeout(120)
MODS = (*Workers.MODULES, "harden_nodes")


def chain(url: str, tag: str) -> flownb.Blueprint:
    def n(i: str) -> dict:
        return {"id": i, "uses": "harden-count", "params": {"redis": url, "count": f"{tag}:{i}"}}

    return flownb.Blueprint.from_dict({"id": "forky", "nodes": [n("a"), n("b"), n("c")],
                                       "edges": [{"source": "a", "target": "b"},
                                                 {"source": "b", "target": "c"}]})


def counts(r: redis.Redis, tag: str) -> dict[str, int]:
    return {i: int(r.get(f"{tag}:{i}") or 0) for i in "abc"}


def test_a_refused_fork_never_runs(redis_url: str) -> None:
    ws = Workers(redis_url, modules=MODS)
    r = redis.Redis.from_url(redis_url)
    tag = uuid.uuid4().hex
    try:
        ws.start(1)
        # queued items nobody claimed are re-queued by the reaper after 1 s here
        ex = DistributedExecutor(redis_url, settings=StoreSettings(queued_ttl_s=1.0))
        h = ex.submit(chain(redis_url, tag), {"x": 1}, history=True)
        assert h.result(timeout=30).status == "succeeded"
        assert counts(r, tag) == {"a": 1, "b": 1, "c": 1}
        bad: list[dict] = [{"state": {"k": object()}}, {"state": {"k": float("nan")}},
                           {"state": {"k": "x\ud800"}}, {"state": {"k\ud800": 1}},
                           {"output": object()}, {"output": float("inf")},
                           {"output": ["\udfff"]}, {"output": "ok", "action": 3}]
        for i, edit in enumerate(bad):
            fid = f"refused-{i}"
            with pytest.raises(FlownbError) as ei:
                flownb.fork(h, from_node="b", run_id=fid, **edit)
            assert "nothing was started" in str(ei.value), ei.value
            assert not r.keys(f"*{fid}*"), f"fork {edit} wrote to Redis before it raised"
        time.sleep(4)  # several reaper rounds, and past queued_ttl_s
        assert counts(r, tag) == {"a": 1, "b": 1, "c": 1}, "a refused fork ran"
        # a fork that is fine still runs, and only downstream of the fork point
        ok = flownb.fork(h, from_node="b", state={"k": "v"}, run_id="fine-1").result(timeout=30)
        assert ok.status == "succeeded" and ok.state["k"] == "v"
        assert counts(r, tag) == {"a": 1, "b": 2, "c": 2}
    finally:
        ws.close()


@pytest.mark.parametrize("run_id", ["parent.m.1.0", "a.b", "x|y", "", "sp ace", "nl\n",
                                    "s\ud800", "x" * 201])
def test_reserved_or_bad_run_ids_are_refused_at_submit(redis_url: str, run_id: str) -> None:
    ex = DistributedExecutor(redis_url)
    with pytest.raises(ExecutorError) as ei:
        ex.submit(chain(redis_url, "unused"), {}, run_id=run_id)
    assert "run id" in str(ei.value)
    r = redis.Redis.from_url(redis_url)
    assert not r.keys("flownb:run:*")


def test_a_user_run_id_cannot_shadow_a_map_child(redis_url: str) -> None:
    """The attack: submit 'parent.m.1.0' first, then the parent whose map would start it."""
    ws = Workers(redis_url, modules=MODS)
    r = redis.Redis.from_url(redis_url)
    tag = uuid.uuid4().hex
    try:
        ws.start(1)
        ex = DistributedExecutor(redis_url)
        with pytest.raises(ExecutorError, match=r"reserved for the ids flownb generates"):
            ex.submit(chain(redis_url, tag), {}, run_id="parent.m.1.0")
        with pytest.raises(ExecutorError, match=r"reserved"):
            flownb.fork(ex.submit(chain(redis_url, tag), {}, history=True).result(timeout=30), from_node="b",
                        output="x", run_id="p.m.1.0")
        ok = ex.submit(chain(redis_url, tag), {}, run_id="parent-ok_1:2").result(timeout=30)
        assert ok.status == "succeeded" and ok.run_id == "parent-ok_1:2"
        assert counts(r, tag) == {"a": 2, "b": 2, "c": 2}
    finally:
        ws.close()


def failing_chain(url: str, tag: str) -> flownb.Blueprint:
    def n(i: str) -> dict:
        return {"id": i, "uses": "harden-count", "params": {"redis": url, "count": f"{tag}:{i}"}}

    return flownb.Blueprint.from_dict({"id": "fails", "nodes": [
        n("a"), {"id": "b", "uses": "harden-raise-base",
                 "params": {"redis": url, "count": f"{tag}:b", "kind": "custom"}}, n("c")],
        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}]})


def test_fork_from_the_node_the_run_failed_at(redis_url: str) -> None:
    """Issue 19, low item: the failed node itself is a fork point (its output edited)."""
    r = redis.Redis.from_url(redis_url)
    tag = uuid.uuid4().hex
    res = flownb.run(failing_chain(redis_url, tag), {}, history=True, raise_on_error=False)
    assert res.status == "failed" and res.error["node_id"] == "b"
    fixed = flownb.fork(res, from_node="b", output="fixed by hand")
    assert fixed.status == "succeeded" and fixed.outputs["b"] == "fixed by hand"
    assert counts(r, tag) == {"a": 1, "b": 1, "c": 1}  # a not re-run, b not run, c ran
    ws = Workers(redis_url, modules=MODS)
    try:
        ws.start(1)
        ex = DistributedExecutor(redis_url)
        h = ex.submit(failing_chain(redis_url, tag), history=True)
        assert h.result(timeout=30, raise_on_error=False).status == "failed"
        out = flownb.fork(h, from_node="b", output="fixed").result(timeout=30)
        assert out.status == "succeeded" and out.outputs["b"] == "fixed"
        assert counts(r, tag) == {"a": 2, "b": 2, "c": 2}
    finally:
        ws.close()
