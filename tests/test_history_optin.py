"""Distributed history only when asked (issue 21): ``submit(..., history=True)`` records every
step, as ``flownb.run(..., history=True)`` does in process; without it no history stream is
written, and what needs the steps (``handle.history()``, a fork, the ``updates``/``values``
stream modes) says so, naming the run and the fix. The run's path (``taken_edges``), its result
and the ``events`` stream do not need it. Child runs (subflow, map items) inherit the flag.
"""

from __future__ import annotations

import warnings

import pytest
import redis

import flownb
from flownb.distributed import DistributedExecutor
from flownb.distributed.history import NoHistory

from conftest import Workers

pytestmark = pytest.mark.timeout(120)


def branchy() -> flownb.Blueprint:
    """a -> (yes | no) -> end, with a condition: a path for taken_edges to show."""
    return flownb.load({"id": "hist-optin", "nodes": [
        {"id": "a", "uses": "output", "params": {"template": "go"}},
        {"id": "yes", "uses": "noop"}, {"id": "no", "uses": "noop"},
        {"id": "end", "uses": "noop", "config": {"join": "any"}}],
        "edges": [{"source": "a", "target": "yes", "condition": "output == 'go'"},
                  {"source": "a", "target": "no", "condition": "output != 'go'"},
                  {"source": "yes", "target": "end"}, {"source": "no", "target": "end"}]})


def with_subflow() -> tuple[flownb.Blueprint, flownb.Registry]:
    reg = flownb.Registry()
    reg.add_blueprint(flownb.load({"id": "optin-child", "nodes": [
        {"id": "c1", "uses": "noop"}, {"id": "c2", "uses": "noop"}],
        "edges": [{"source": "c1", "target": "c2"}]}))
    top = flownb.load({"id": "optin-top", "nodes": [
        {"id": "a", "uses": "noop"},
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "optin-child"}},
        {"id": "b", "uses": "noop"}],
        "edges": [{"source": "a", "target": "sub"}, {"source": "sub", "target": "b"}]})
    return top, reg


def test_without_history_nothing_is_written_and_what_needs_it_says_so(
        redis_url: str, workers: Workers) -> None:
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    h = ex.submit(branchy())
    res = h.result(timeout=30)
    assert res.status == "succeeded"
    assert r.exists(f"flownb:run:{h.run_id}:history") == 0
    assert r.hget(f"flownb:run:{h.run_id}:meta", "history") is None
    # the path does not need the history: it rides on the done markers
    assert res.taken_edges == flownb.run(branchy()).taken_edges == {0: 1, 2: 1}
    for call in (h.history, lambda: flownb.fork(h, from_node="yes"),
                 lambda: list(h.stream("updates")), lambda: list(h.stream(["events", "values"]))):
        with pytest.raises(NoHistory, match=rf"run {h.run_id}: .*submitted without it; submit it "
                                            r"with history=True"):
            call()
    assert isinstance(NoHistory("x"), flownb.FlownbError)
    # the events-only modes need no history
    types = [c.data.type for c in h.stream("events", timeout=10)]
    assert types[0] == "run_started" and types[-1] == "run_finished", types


def test_with_history_steps_forks_and_streams_work(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    h = ex.submit(branchy(), history=True)
    assert h.result(timeout=30).status == "succeeded"
    assert r.hget(f"flownb:run:{h.run_id}:meta", "history") == b"1"
    assert [s.node for s in h.history()] == ["a", "yes", "end"]
    assert [c.node for c in h.stream("updates", timeout=10)] == ["a", "yes", "end"]
    fork = flownb.fork(h, from_node="yes", output="edited").result(timeout=30)
    assert fork.outputs["yes"] == "edited"
    # a fork records its history too: it can be forked again
    again = flownb.fork(ex.attach(fork.run_id), from_node="end", output="x").result(timeout=30)
    assert again.outputs["end"] == "x"


def test_child_runs_inherit_the_flag(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    top, reg = with_subflow()
    ex = DistributedExecutor(redis_url, registry=reg)
    on = ex.submit(top, history=True)
    off = ex.submit(top)
    assert on.result(timeout=30).status == off.result(timeout=30).status == "succeeded"
    child_on, child_off = f"{on.run_id}.sub.1.0", f"{off.run_id}.sub.1.0"
    assert r.hget(f"flownb:run:{child_on}:meta", "history") == b"1"
    assert [s.node for s in ex.attach(child_on).history()] == ["c1", "c2"]
    assert r.exists(f"flownb:run:{child_off}:history") == 0
    with pytest.raises(NoHistory, match=child_off):
        ex.attach(child_off).history()
    # the bundle: one short field per blueprint on the parent; the child reaches none
    meta = {k.decode(): v.decode() for k, v in r.hgetall(f"flownb:run:{on.run_id}:meta").items()}
    assert meta["b:optin-child"] == reg.get_blueprint("optin-child").digest and "bundle" not in meta
    assert not [k for k in r.hkeys(f"flownb:run:{child_on}:meta") if k.startswith(b"b:")]
    assert on.result().child_states == {"sub/c1": "succeeded", "sub/c2": "succeeded"}


def test_map_rows_record_history_when_asked(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = ex.map(branchy(), [{"i": 1}, {"i": 2}], history=True)
        plain = ex.map(branchy(), [{"i": 3}])
    assert [x.status for x in batch.results(timeout=60)] == ["succeeded", "succeeded"]
    assert [x.status for x in plain.results(timeout=60)] == ["succeeded"]
    for rid in batch.run_ids:
        assert [s.node for s in ex.attach(str(rid)).history()] == ["a", "yes", "end"]
    with pytest.raises(NoHistory):
        ex.attach(str(plain.run_ids[0])).history()


def test_a_run_from_before_the_status_copy_keeps_recording_after_a_wait(
        redis_url: str, workers: Workers) -> None:
    """A run started by an older version has no copy of its status and flags in its sched hash
    (COMMIT reads them from its meta then). Its first status change writes the copy: the history
    flag must come with it, or a history run answered after an upgrade stops recording."""
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    bp = flownb.load({"id": "hist-wait", "nodes": [
        {"id": "a", "uses": "noop"}, {"id": "ask", "uses": "wait"}, {"id": "b", "uses": "noop"}],
        "edges": [{"source": "a", "target": "ask"}, {"source": "ask", "target": "b"}]})
    h = DistributedExecutor(redis_url).submit(bp, history=True)
    assert h.result(timeout=30).status == "waiting"
    sched = f"flownb:run:{h.run_id}:sched"
    assert r.hdel(sched, "st", "hy") == 2  # as a run started before the copy existed
    h.resume("ask", "fine")
    assert h.result(timeout=30).status == "succeeded"
    assert [s.node for s in h.history()] == ["a", "ask", "b"]
