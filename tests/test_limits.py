"""Recursion bombs (issue 11.3): child-run depth and count limits on both executors, and the lint
that points at a blueprint reaching itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import flownb
from flownb.core.aio import _thread_loop
from flownb.core.errors import FlownbError
from flownb.core.limits import (
    DEFAULT_MAX_CHILD_RUNS,
    DEFAULT_MAX_DEPTH,
    ChildBudget,
    LimitExceeded,
    Limits,
    current_limits,
    set_limits,
)


def self_subflow() -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "selfsub", "nodes": [
        {"id": "again", "uses": "subflow", "params": {"blueprintId": "selfsub"}}]})


def self_map() -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "selfmap", "nodes": [
        {"id": "s", "uses": "set", "params": {"values": {"xs": [1, 2, 3]}}},
        {"id": "m", "uses": "map", "params": {"items": "xs", "blueprintId": "selfmap"}}],
        "edges": [{"source": "s", "target": "m"}]})


@pytest.fixture
def reg() -> flownb.Registry:
    r = flownb.Registry()
    for name in ("set", "noop"):
        r.add(name, flownb.default_registry.get(name).exec)
    r.add_blueprint(self_subflow())
    r.add_blueprint(self_map())
    return r


@pytest.fixture(autouse=True)
def _reset_limits() -> Iterator[None]:
    set_limits()
    yield
    set_limits()


# -- the policy -------------------------------------------------------------------------------------

def test_defaults_env_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWNB_MAX_DEPTH", raising=False)
    monkeypatch.delenv("FLOWNB_MAX_CHILD_RUNS", raising=False)
    assert current_limits() == Limits(DEFAULT_MAX_DEPTH, DEFAULT_MAX_CHILD_RUNS) == Limits(10, 10_000)
    monkeypatch.setenv("FLOWNB_MAX_DEPTH", "3")
    monkeypatch.setenv("FLOWNB_MAX_CHILD_RUNS", "50")
    assert current_limits() == Limits(3, 50)
    assert set_limits(max_child_runs=7) == Limits(3, 7)
    assert set_limits() == Limits(3, 50)
    monkeypatch.setenv("FLOWNB_MAX_DEPTH", "lots")
    with pytest.raises(FlownbError, match="FLOWNB_MAX_DEPTH='lots' is not a whole number"):
        current_limits()
    with pytest.raises(FlownbError, match="max_child_runs must be a positive integer"):
        Limits(max_child_runs=0)


def test_budget_refuses_and_stays_refused() -> None:
    b = ChildBudget(Limits(max_depth=3, max_child_runs=5))
    b.reserve(1000, depth=1, node_id="m", run_id="r")  # the root's own children are not counted
    b.reserve(3, depth=2, node_id="m", run_id="r")
    with pytest.raises(LimitExceeded, match="would make 6 nested child runs under its root run; "
                                            "the limit is 5 per root run"):
        b.reserve(3, depth=3, node_id="m", run_id="r")
    with pytest.raises(LimitExceeded):  # a smaller request after a refusal is refused too
        b.reserve(1, depth=2, node_id="m", run_id="r")
    with pytest.raises(LimitExceeded, match="nest runs 3 deep; the limit is 2"):
        ChildBudget(Limits(max_depth=2)).reserve(1, depth=3, node_id="x", run_id="r")


# -- in process -----------------------------------------------------------------------------------

def _started(events: list[flownb.Event]) -> int:
    return sum(1 for e in events if e.type == "run_started")


def test_self_subflow_in_process_stops_at_the_depth_limit(reg: flownb.Registry) -> None:
    seen: list[flownb.Event] = []
    res = flownb.run(self_subflow(), registry=reg, on_event=seen.append, raise_on_error=False)
    assert res.status == "failed"
    assert res.error is not None and res.error["type"] == "LimitExceeded"
    msg = res.error["message"]
    assert "node 'again' of run " in msg and "nest runs 11 deep; the limit is 10" in msg
    assert "FLOWNB_MAX_DEPTH" in msg and "set_limits(max_depth=" in msg
    assert _started(seen) == 11  # the root and 10 nested child runs, no more
    assert msg.count("child run") <= 1  # one message from the deepest run, not 10 nested ones


def test_self_map_in_process_stops_at_the_child_run_limit(reg: flownb.Registry) -> None:
    set_limits(max_child_runs=100)
    seen: list[flownb.Event] = []
    res = flownb.run(self_map(), registry=reg, on_event=seen.append, raise_on_error=False)
    assert res.status == "failed" and res.error is not None
    assert res.error["type"] == "LimitExceeded", res.error
    assert "nested child runs under its root run; the limit is 100 per root run" in res.error["message"]
    assert "FLOWNB_MAX_CHILD_RUNS" in res.error["message"]
    started = _started(seen)
    assert 1 < started <= 1 + 3 + 100  # the root, its own 3 children, at most 100 nested ones
    # nothing keeps going in the background: the loop holds no task, a later run starts none
    assert not [t for t in asyncio.all_tasks(_thread_loop()) if not t.done()]
    flownb.run({"id": "other", "nodes": [{"id": "n", "uses": "noop"}]}, registry=reg)
    assert _started(seen) == started


def test_env_limit_raises_the_depth(reg: flownb.Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNB_MAX_DEPTH", "4")
    seen: list[flownb.Event] = []
    res = flownb.run(self_subflow(), registry=reg, on_event=seen.append, raise_on_error=False)
    assert res.error is not None and "nest runs 5 deep; the limit is 4" in res.error["message"]
    assert _started(seen) == 5


def test_bounded_recursion_within_the_limits_succeeds() -> None:
    """A blueprint may call itself while a condition holds: the limits only stop runaways."""
    reg = flownb.Registry()
    reg.add("dec", lambda ctx: {"n": int(ctx.input["n"]) - 1})
    bp = flownb.Blueprint.from_dict({"id": "countdown", "nodes": [
        {"id": "dec", "uses": "dec"},
        {"id": "again", "uses": "subflow", "params": {"blueprintId": "countdown"}}],
        "edges": [{"source": "dec", "target": "again", "condition": "output.n > 0"}]})
    reg.add_blueprint(bp)
    res = flownb.run(bp, {"n": 5}, registry=reg, raise_on_error=False)
    assert res.status == "succeeded", res.error


# -- lint -------------------------------------------------------------------------------------------

def test_lint_flags_a_blueprint_reaching_itself(reg: flownb.Registry) -> None:
    [p] = [p for p in self_subflow().lint(reg) if p.code == "recursive-blueprint"]
    assert p.severity == "warning" and p.node_id == "again"
    assert "selfsub -> selfsub" in p.message and "FLOWNB_MAX_DEPTH" in p.message
    # without a registry the direct self-reference is still seen
    assert [p.code for p in self_map().lint() if p.code == "recursive-blueprint"]


def test_lint_reports_the_cycle_path_through_other_blueprints() -> None:
    reg = flownb.Registry()
    a = flownb.Blueprint.from_dict({"id": "a", "nodes": [
        {"id": "to_b", "uses": "subflow", "params": {"blueprintId": "b"}}]})
    b = flownb.Blueprint.from_dict({"id": "b", "nodes": [
        {"id": "each", "uses": "map", "params": {"blueprintId": "c"}}]})
    c = flownb.Blueprint.from_dict({"id": "c", "nodes": [
        {"id": "back", "uses": "subflow", "params": {"blueprintId": "a"}}]})
    for x in (a, b, c):
        reg.add_blueprint(x)
    [p] = [p for p in a.lint(reg) if p.code == "recursive-blueprint"]
    assert "a -> b -> c -> a" in p.message and "to_b" in p.location
    plain = flownb.Blueprint.from_dict({"id": "plain", "nodes": [
        {"id": "x", "uses": "subflow", "params": {"blueprintId": "b2"}}]})
    reg.add_blueprint(flownb.Blueprint.from_dict({"id": "b2", "nodes": [{"id": "n", "uses": "noop"}]}))
    assert not [p for p in plain.lint(reg) if p.code == "recursive-blueprint"]


# -- distributed, with real workers ---------------------------------------------------------------

def _run_keys(url: str) -> int:
    import redis

    return len(redis.Redis.from_url(url).keys("flownb:run:*:meta"))


def _quiet_after(url: str, seconds: float = 1.5) -> tuple[int, int]:
    before = _run_keys(url)
    time.sleep(seconds)
    return before, _run_keys(url)


@pytest.mark.timeout(120)
def test_self_subflow_distributed_stops_at_the_depth_limit(redis_url: str, workers, reg) -> None:
    from flownb.distributed.client import DistributedExecutor

    workers.start(2)
    ex = DistributedExecutor(redis_url, registry=reg)
    t0 = time.monotonic()
    res = ex.submit(self_subflow()).result(timeout=60, raise_on_error=False)
    assert time.monotonic() - t0 < 60
    assert res.status == "failed" and res.error is not None
    assert res.error["type"] == "LimitExceeded", res.error
    msg = res.error["message"]
    assert "node 'again' of run " in msg and "nest runs 11 deep; the limit is 10" in msg
    assert "FLOWNB_MAX_DEPTH" in msg
    before, after = _quiet_after(redis_url)
    assert before == after == 11  # the root and 10 nested runs; nothing created since


@pytest.mark.timeout(120)
def test_self_map_distributed_stops_at_the_child_run_limit(
        redis_url: str, workers, reg, monkeypatch: pytest.MonkeyPatch) -> None:
    from flownb.distributed.client import DistributedExecutor

    monkeypatch.setenv("FLOWNB_MAX_CHILD_RUNS", "60")  # the workers read their own environment
    workers.start(2)
    ex = DistributedExecutor(redis_url, registry=reg)
    res = ex.submit(self_map()).result(timeout=60, raise_on_error=False)
    assert res.status == "failed" and res.error is not None
    assert res.error["type"] == "LimitExceeded", res.error
    assert "the limit is 60 per root run" in res.error["message"]
    assert "FLOWNB_MAX_CHILD_RUNS" in res.error["message"]
    before, after = _quiet_after(redis_url)
    assert before == after
    assert 1 < after <= 1 + 3 + 60  # root, its 3 children, the limit: atomic across workers
    import redis

    r = redis.Redis.from_url(redis_url)
    statuses = {r.hget(k, "status") for k in r.keys("flownb:run:*:meta")}
    assert b"running" not in statuses, statuses  # the root failed at once, everything under it stopped


def test_a_wide_map_of_the_roots_own_items_is_not_limited(reg: flownb.Registry) -> None:
    """The root's direct children are its own data (linear); only nesting counts."""
    set_limits(max_child_runs=5)
    bp = flownb.Blueprint.from_dict({"id": "wide", "nodes": [
        {"id": "m", "uses": "map", "params": {"node": "noop"}}]})
    res = flownb.run(bp, {"items": list(range(50))}, registry=reg, raise_on_error=False)
    assert res.status == "succeeded", res.error
    assert len(res.outputs["m"]) == 50
