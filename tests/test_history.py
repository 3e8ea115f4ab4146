"""Time travel (flownb.engine.history): recorded steps and forks that re-run only what is downstream.

Executions are counted with a Redis INCR in the node body (``hitl_nodes``), in process too, so
"only downstream nodes re-ran" is measured, not inferred from events.
"""

from __future__ import annotations

from typing import Any

import hitl_nodes  # noqa: F401
import pytest
import redis
from hitl_support import hitl_workers

import flownb
from flownb.distributed.client import DistributedExecutor


def chain(url: str) -> flownb.Blueprint:
    """a → b → c → d, with a side branch b → s and a join j over c and s at the end."""
    def n(i: str) -> dict[str, Any]:
        return {"id": i, "uses": "hitl-count", "params": {"redis": url, "text": i.upper()}}

    return flownb.load({"id": "fork-me", "nodes": [n("a"), n("b"), n("c"), n("d"), n("s"), n("j")],
                        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"},
                                  {"source": "c", "target": "d"}, {"source": "b", "target": "s"},
                                  {"source": "d", "target": "j"}, {"source": "s", "target": "j"}]})


def counts(url: str) -> dict[str, int]:
    r = redis.Redis.from_url(url)
    return {k: int(r.get(f"count:{k}") or 0) for k in "abcdsj"}


def reset(url: str) -> None:
    r = redis.Redis.from_url(url)
    for k in "abcdsj":
        r.delete(f"count:{k}")


def s_reruns(steps: list[flownb.Step], fork_node: str) -> int:
    """The side branch ``s`` runs in parallel with ``c``: a fork at ``fork_node`` replays it if
    it committed before, and runs it again if it committed after."""
    order = [st.node for st in steps]
    return 0 if order.index("s") < order.index(fork_node) else 1


def test_in_process_history_lists_steps_with_state_diffs(redis_url: str) -> None:
    res = flownb.run(chain(redis_url), {"x": 1}, history=True)
    steps = res.history()
    assert [s.node for s in steps][:2] == ["a", "b"] and len(steps) == 6
    assert steps[0].output == "A()" and steps[0].writes == {"seen_a": 1}
    assert steps[0].visit == 1 and steps[0].flag == ""
    with pytest.raises(flownb.FlownbError, match="history=True"):
        flownb.run(chain(redis_url)).history()


def test_in_process_fork_reruns_only_downstream(redis_url: str) -> None:
    res = flownb.run(chain(redis_url), history=True)
    reset(redis_url)
    forked = flownb.fork(res, from_node="c", state={"extra": "edited"})
    assert forked.status == "succeeded" and forked.run_id != res.run_id
    assert counts(redis_url) == {"a": 0, "b": 0, "s": s_reruns(res.history(), "c"), "c": 1, "d": 1,
                                 "j": 1}
    assert forked.state["extra"] == "edited" and forked.outputs["a"] == "A()"
    flags = [(s.node, s.flag) for s in forked.history()]
    assert ("a", "replayed") in flags and ("c", "") in flags
    reset(redis_url)
    edited = flownb.fork(res, from_node="c", output="C-EDITED")
    assert edited.outputs["c"] == "C-EDITED" and edited.outputs["d"] == "D(C-EDITED)"
    assert counts(redis_url) == {"a": 0, "b": 0, "s": s_reruns(res.history(), "c"), "c": 0, "d": 1,
                                 "j": 1}
    with pytest.raises(flownb.FlownbError, match="no node 'zz'"):
        flownb.fork(res, from_node="zz")


def test_distributed_history_and_fork_rerun_only_downstream(redis_url: str) -> None:
    w = hitl_workers(redis_url)
    try:
        w.start(2)
        ex = DistributedExecutor(redis_url)
        handle = ex.submit(chain(redis_url), {"x": 1}, history=True)
        res = handle.result(timeout=30)
        assert res.status == "succeeded"
        steps = handle.history()
        assert sorted(s.node for s in steps) == sorted("abcdsj")
        assert next(s for s in steps if s.node == "a").writes == {"seen_a": 1}
        assert res.history() == steps  # the result of a handle reads the same history
        reset(redis_url)
        fork = flownb.fork(handle, from_node="c", state={"extra": "edited"})
        out = fork.result(timeout=30)
        assert out.status == "succeeded", out.error
        assert out.state["extra"] == "edited" and out.outputs["a"] == "A()"
        c = counts(redis_url)
        assert c["a"] == c["b"] == 0 and c["c"] == c["d"] == c["j"] == 1
        assert c["s"] == s_reruns(steps, "c")
        # a fork of the in-process history, on Redis (and the other way round)
        local = flownb.run(chain(redis_url), {"x": 1}, history=True)
        reset(redis_url)
        cross = flownb.fork(local, from_node="d", output="D!", executor=ex).result(timeout=30)
        assert cross.outputs["d"] == "D!" and counts(redis_url)["c"] == 0
        back = flownb.fork(handle, from_node="d", output="D?", executor="local")
        assert back.outputs["d"] == "D?" and back.status == "succeeded"
    finally:
        w.close()


def test_fork_from_a_node_that_never_committed_is_refused() -> None:
    bp = flownb.load({"id": "wait", "nodes": [{"id": "a", "uses": "noop"}, {"id": "ask", "uses": "wait"}],
                      "edges": [{"source": "a", "target": "ask"}]})
    res = flownb.run(bp, history=True)
    with pytest.raises(flownb.FlownbError, match="never committed"):
        flownb.fork(res, from_node="ask")
    done = res.resume("ask", "ok")
    assert [s.flag for s in done.history()] == ["", "resumed"]
    forked = flownb.fork(done, from_node="ask", output="changed")
    assert forked.outputs["ask"] == "changed"


def test_fork_state_edits_reach_a_start_nodes_input() -> None:
    bp = flownb.load({"id": "tone", "nodes": [
        {"id": "draft", "uses": "output", "params": {"template": "a {{tone}} reply"}},
        {"id": "ask", "uses": "wait"}], "edges": [{"source": "draft", "target": "ask"}]})
    res = flownb.run(bp, {"tone": "friendly"}, history=True)
    forked = flownb.fork(res, from_node="draft", state={"tone": "formal"})
    assert forked.outputs["draft"] == "a formal reply" and forked.status == "waiting"


def test_timeline_shows_each_step_and_where_it_came_from() -> None:
    from flownb.notebook.timeline import timeline

    bp = flownb.load({"id": "t", "nodes": [{"id": "a", "uses": "noop"}, {"id": "ask", "uses": "approval"},
                                          {"id": "ok", "uses": "noop"}],
                      "edges": [{"source": "a", "target": "ask"},
                                {"source": "ask", "target": "ok", "action": "approve"}]})
    done = flownb.run(bp, history=True).resume("ask", "approve")
    tl = timeline(done)
    assert len(tl) == 3
    html = tl._repr_html_()
    assert "answered" in html and "<b>ask</b>#1" in html and "approve" in html
    assert "ask#1 -> approve [answered]" in str(tl)
