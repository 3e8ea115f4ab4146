"""Issue 19, item 1: a node raising a BaseException other than SystemExit/KeyboardInterrupt
(a CancelledError leaked from async code, GeneratorExit, a library's own subclass) fails that
node, once, with its type — in process, in a batch and on real worker processes — while
flownb's own cancellation (a timeout, a cancel) still stops a visit."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor

import harden_nodes  # noqa: F401 - registers the node types in this process too
from conftest import Workers

pytestmark = pytest.mark.timeout(120)

KINDS = {"cancelled": "CancelledError", "generator-exit": "GeneratorExit", "custom": "Custom"}
CASES = [(kind, uses) for kind in KINDS for uses in ("harden-raise-base", "harden-araise-base")]


def _bp(redis_url: str, count: str, kind: str, uses: str) -> flownb.Blueprint:
    params = {"redis": redis_url, "count": count, "kind": kind}
    return flownb.Blueprint.from_dict({
        "id": "base-exc", "nodes": [
            {"id": "a", "uses": "harden-count", "params": {"redis": redis_url, "count": count + ":a"}},
            {"id": "boom", "uses": uses, "params": params, "config": {"retries": 2}},
            {"id": "after", "uses": "harden-count",
             "params": {"redis": redis_url, "count": count + ":after"}}],
        "edges": [{"source": "a", "target": "boom"}, {"source": "boom", "target": "after"}]})


def _check(r: redis.Redis, count: str, res: flownb.RunResult, kind: str) -> None:
    assert res.status == "failed", res
    assert res.error is not None and res.error["node_id"] == "boom"
    assert res.error["type"] == KINDS[kind]
    assert int(r.get(count) or 0) == 1, "a BaseException is not retried: the node ran once"
    assert int(r.get(count + ":a") or 0) == 1
    assert r.get(count + ":after") is None


@pytest.mark.parametrize(("kind", "uses"), CASES)
def test_in_process_base_exception_fails_the_node(redis_url: str, kind: str, uses: str) -> None:
    r = redis.Redis.from_url(redis_url)
    count = f"count:{uuid.uuid4().hex}"
    res = flownb.run(_bp(redis_url, count, kind, uses), {}, raise_on_error=False)
    _check(r, count, res, kind)
    with pytest.raises(flownb.RunFailed) as ei:  # a FlownbError, never the raw BaseException
        flownb.run(_bp(redis_url, count + "x", kind, uses), {})
    assert KINDS[kind] in str(ei.value)


def test_in_process_batch_with_base_exceptions_finishes(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    count = f"count:{uuid.uuid4().hex}"
    bp = _bp(redis_url, count, "cancelled", "harden-araise-base")
    t0 = time.monotonic()
    batch = flownb.run_many(bp, [{"i": i} for i in range(6)], concurrency=3)
    results = batch.results()
    assert time.monotonic() - t0 < 30
    assert [x.status for x in results] == ["failed"] * 6
    assert {x.error["type"] for x in results if x.error} == {"CancelledError"}
    assert int(r.get(count) or 0) == 6


def test_in_process_timeout_still_cancels_an_async_node(redis_url: str) -> None:
    """flownb's own cancellation of a visit is not mistaken for a node's CancelledError."""
    bp = flownb.Blueprint.from_dict({"id": "t", "nodes": [
        {"id": "s", "uses": "harden-asleep", "params": {"seconds": 30}, "config": {"timeout_s": 0.3}}]})
    t0 = time.monotonic()
    res = flownb.run(bp, {}, raise_on_error=False)
    assert time.monotonic() - t0 < 10
    assert res.status == "failed" and res.error["type"] == "NodeTimeout"


@pytest.mark.parametrize(("kind", "uses"), CASES)
def test_worker_base_exception_fails_the_node(redis_url: str, kind: str, uses: str) -> None:
    ws = Workers(redis_url, modules=(*Workers.MODULES, "harden_nodes"))
    try:
        ws.start(1)
        r = redis.Redis.from_url(redis_url)
        count = f"count:{uuid.uuid4().hex}"
        ex = DistributedExecutor(redis_url)
        t0 = time.monotonic()
        res = ex.submit(_bp(redis_url, count, kind, uses)).result(timeout=30, raise_on_error=False)
        assert time.monotonic() - t0 < 30
        _check(r, count, res, kind)
        # the worker lives on and runs the next run
        ok = ex.submit(flownb.Blueprint.from_dict({"id": "ok", "nodes": [
            {"id": "a", "uses": "harden-count", "params": {}}]}), {}).result(timeout=30)
        assert ok.status == "succeeded"
        assert all(p.poll() is None for p in ws.procs)
    finally:
        ws.close()


def test_worker_timeout_and_cancel_still_stop_async_nodes(redis_url: str) -> None:
    ws = Workers(redis_url, modules=(*Workers.MODULES, "harden_nodes"))
    try:
        ws.start(1)
        ex = DistributedExecutor(redis_url)
        bp = flownb.Blueprint.from_dict({"id": "t", "nodes": [
            {"id": "s", "uses": "harden-asleep", "params": {"seconds": 30}, "config": {"timeout_s": 0.5}}]})
        res = ex.submit(bp).result(timeout=30, raise_on_error=False)
        assert res.status == "failed" and res.error["type"] == "NodeTimeout"
        h = ex.submit(flownb.Blueprint.from_dict({"id": "t2", "nodes": [
            {"id": "s", "uses": "harden-asleep", "params": {"seconds": 30}}]}))
        time.sleep(1.0)
        h.cancel()
        assert h.result(timeout=20, raise_on_error=False).status == "cancelled"
    finally:
        ws.close()
