"""Nodes that will never run end as ``cancelled``/``skipped`` — never "pending" for ever — and the
run's result, the notebook widget's model and the drawing agree (issue 20, defect 2), on both
executors. One rule: flownb.core.settle."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

import flownb
from flownb.core.settle import settled, unreached_child
from flownb.distributed.client import DistributedExecutor
from flownb.engine.support import CancelToken
from flownb.notebook.progress import ProgressView
from flownb.render import to_dot

from conftest import Workers

UNFINISHED = {"pending", "running", "retrying", "waiting"}


def _chain(n: int = 20, seconds: float = 0.2) -> flownb.Blueprint:
    b = flownb.Builder("long-chain")
    for i in range(n):
        b.node(f"step{i}", "sleep", params={"seconds": seconds})
    b.chain(*[f"step{i}" for i in range(n)])
    return b.build()


def _failing_fanout() -> flownb.Blueprint:
    """start -> (boom | slow0..3) -> all-join -> after: boom fails while its siblings sleep."""
    nodes: list[dict[str, Any]] = [{"id": "start", "uses": "noop"},
                                   {"id": "boom", "uses": "fail", "params": {"message": "no"}},
                                   {"id": "join", "uses": "noop"},
                                   {"id": "after", "uses": "noop"}]
    edges = [{"source": "start", "target": "boom"}, {"source": "boom", "target": "join"},
             {"source": "join", "target": "after"}]
    for i in range(4):
        nodes.append({"id": f"slow{i}", "uses": "sleep", "params": {"seconds": 1.0}})
        edges += [{"source": "start", "target": f"slow{i}"}, {"source": f"slow{i}", "target": "join"}]
    return flownb.Blueprint.from_dict({"id": "failing-fanout", "nodes": nodes, "edges": edges})


def _drawn_states(bp: flownb.Blueprint, states: dict[str, str]) -> dict[str, str]:
    """The state each node's box is drawn with in the DOT drawing (its tooltip says it)."""
    found = re.findall(r'tooltip="([^"\\]+)\\nstatus: (\w+)"', to_dot(bp, states=states))
    return dict(found)


def _agree(bp: flownb.Blueprint, res: flownb.RunResult, model: ProgressView) -> dict[str, str]:
    nodes = {n: s.status for n, s in res.nodes.items()}
    assert not UNFINISHED & set(nodes.values()), nodes
    snap = model.snapshot()
    widget = {r.node_id: r.state for r in snap.rows}
    assert widget == nodes, (widget, nodes)
    assert {n: snap.states.get(n) for n in nodes} == nodes  # what the widget's graph is coloured by
    drawn = _drawn_states(bp, res.node_states)
    assert drawn == nodes, (drawn, nodes)
    return nodes


def test_the_rule() -> None:
    assert settled("pending", "cancelled") == "cancelled"
    assert settled("pending", "failed") == "cancelled"
    assert settled("pending", "succeeded") == "skipped"
    assert settled("running", "failed") == "cancelled"
    assert settled("running", "failed", culprit=True) == "failed"
    assert settled("waiting", "cancelled") == "cancelled"
    assert settled("pending", "running") == "pending"  # still going: may run
    assert settled("pending", "waiting") == "pending"
    assert settled("succeeded", "cancelled") == "succeeded"
    assert unreached_child("cancelled", True) == "cancelled"
    assert unreached_child("succeeded", True) == "skipped"
    assert unreached_child("running", True) == "pending"


def test_cancelled_in_process_run_leaves_nothing_pending() -> None:
    bp = _chain()
    model = ProgressView(bp, max_rate_hz=0)
    token = CancelToken()
    threading.Timer(0.5, token.cancel).start()
    res = flownb.run(bp, cancel=token, on_event=model.feed, raise_on_error=False)
    model.finish(res)
    assert res.status == "cancelled"
    nodes = _agree(bp, res, model)
    assert 0 < list(nodes.values()).count("succeeded") < 20
    assert list(nodes.values()).count("cancelled") == 20 - list(nodes.values()).count("succeeded")


def test_widget_settles_on_the_terminal_event_before_the_result() -> None:
    """The live view must not wait for the result to stop showing "pending"."""
    bp = _chain(5, 0.05)
    model = ProgressView(bp, max_rate_hz=0)
    token = CancelToken()
    threading.Timer(0.08, token.cancel).start()
    flownb.run(bp, cancel=token, on_event=model.feed, raise_on_error=False)
    states = {r.node_id: r.state for r in model.snapshot().rows}
    assert not UNFINISHED & set(states.values()), states
    assert "cancelled" in states.values()


def test_failing_fanout_in_process() -> None:
    bp = _failing_fanout()
    model = ProgressView(bp, max_rate_hz=0)
    res = flownb.run(bp, on_event=model.feed, raise_on_error=False)
    model.finish(res)
    assert res.status == "failed"
    nodes = _agree(bp, res, model)
    assert nodes["boom"] == "failed"
    assert nodes["join"] == nodes["after"] == "cancelled"
    assert {nodes[f"slow{i}"] for i in range(4)} == {"cancelled"}


def test_unused_branch_of_a_succeeded_run_is_skipped_not_pending() -> None:
    bp = flownb.Blueprint.from_dict({"id": "fb", "nodes": [
        {"id": "a", "uses": "noop", "config": {"fallback": "spare"}}, {"id": "b", "uses": "noop"},
        {"id": "spare", "uses": "noop"}],
        "edges": [{"source": "a", "target": "b"}]})
    res = flownb.run(bp)
    assert res.ok
    assert res.nodes["spare"].status == "skipped"


@pytest.mark.slow
def test_cancelled_and_failed_distributed_runs_agree(redis_url: str, workers: Workers) -> None:
    workers.start(2)
    ex = DistributedExecutor(redis_url)
    bp = _chain(20, 0.2)
    handle = ex.submit(bp)
    model = ProgressView(bp, max_rate_hz=0)
    model.follow(handle)
    deadline = time.monotonic() + 20
    while not any(r.state == "succeeded" for r in model.snapshot().rows):
        assert time.monotonic() < deadline, "no node finished"
        time.sleep(0.05)
    assert handle.cancel()
    res = handle.result(timeout=20, raise_on_error=False)
    assert res.status == "cancelled"
    deadline = time.monotonic() + 20
    while not model.snapshot().finished or model.result is None:
        assert time.monotonic() < deadline, "the view did not end"
        time.sleep(0.05)
    nodes = _agree(bp, model.result, model)
    assert "cancelled" in nodes.values() and "succeeded" in nodes.values()

    bp2 = _failing_fanout()
    h2 = ex.submit(bp2)
    m2 = ProgressView(bp2, max_rate_hz=0)
    m2.follow(h2)
    res2 = h2.result(timeout=30, raise_on_error=False)
    assert res2.status == "failed"
    deadline = time.monotonic() + 20
    while m2.result is None:
        assert time.monotonic() < deadline, "the view did not end"
        time.sleep(0.05)
    nodes2 = _agree(bp2, m2.result, m2)
    assert nodes2["boom"] == "failed" and nodes2["after"] == "cancelled"


def test_run_widget_cancel_button_stops_the_run() -> None:
    """The run widget has a Cancel button (the batch view had one; issue 20 #11); the cancelled
    widget then shows no node pending."""
    pytest.importorskip("ipywidgets")
    from flownb.notebook.widget import RunWidget

    bp = _chain(10, 0.2)
    view = ProgressView(bp, max_rate_hz=0)
    token = CancelToken()
    w = RunWidget(view, cancel=token.cancel)
    assert not w.cancel_button.disabled
    out: list[flownb.RunResult] = []
    t = threading.Thread(target=lambda: out.append(
        flownb.run(bp, cancel=token, on_event=view.feed, raise_on_error=False)))
    t.start()
    time.sleep(0.5)
    w.cancel_button.click()  # what a person's click does
    t.join(10)
    view.finish(out[0])
    assert out[0].status == "cancelled"
    w._apply(view.snapshot(), count=False)
    assert w.cancel_button.disabled and w.cancel_button.layout.display == "none"
    assert 'data-state=\'pending\'' not in w.table.value and "data-state='cancelled'" in w.table.value
    assert RunWidget(ProgressView(bp)).cancel_button.layout.display == "none"  # nothing to cancel
