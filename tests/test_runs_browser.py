"""The runs browser (``flownb.runs`` / ``cluster.runs``) and ``flownb.diff_runs``, on both
executors: listing newest first, filters, paging, opening a run, comparing two runs — with a
real Redis and real ``flownb worker`` processes for the distributed side."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import redis

import flownb
from flownb.core.graph import analyse
from flownb.distributed import runlist
from flownb.distributed.client import DistributedExecutor
from flownb.engine import runlog

pytest.importorskip("ipywidgets")

from conftest import Workers  # noqa: E402

REPLY = """
id: reply
nodes:
  - {id: draft, uses: llm-process, params: {prompt: "Write a short reply to: {{message}}"}}
  - {id: send, uses: passthrough}
edges:
  - {source: draft, target: send}
"""


@flownb.node("rb-fail")
def rb_fail(ctx: flownb.NodeContext) -> None:
    """Fails on purpose (a failed run for the status filter)."""
    raise ValueError("on purpose")


def chain(bp_id: str, *uses: str, **params: object) -> flownb.Blueprint:
    nodes = [{"id": f"n{i}", "uses": u, "params": dict(params)} for i, u in enumerate(uses)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(len(uses) - 1)]
    return flownb.Blueprint.from_dict({"id": bp_id, "nodes": nodes, "edges": edges})


@pytest.fixture
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FLOWNB_LLM", "fake")
    runlog.clear()
    yield
    runlog.clear()


def _open_buttons(browser: object) -> list[object]:
    return [row.children[1] for row in browser.table.children[1:]]  # type: ignore[attr-defined]


def _ticks(browser: object) -> list[object]:
    return [row.children[0] for row in browser.table.children[1:]]  # type: ignore[attr-defined]


# -- in process ---------------------------------------------------------------------------------
def test_in_process_runs_are_listed_newest_first_filtered_and_paged(fresh_log: None) -> None:
    ok = chain("ok-chain", "noop", "noop")
    bad = flownb.Blueprint.from_dict({"id": "bad", "nodes": [{"id": "x", "uses": "noop"}],
                                      "edges": []})
    ids = [flownb.run(ok).run_id for _ in range(5)]
    failing = flownb.Blueprint.from_dict({"id": "bad", "nodes": [{"id": "x", "uses": "rb-fail"}],
                                          "edges": []})
    assert flownb.run(failing, raise_on_error=False).status == "failed"
    flownb.run(bad)
    page = runlog.list_page(limit=3)
    assert page.total == 7 and page.pages == 3 and len(page.rows) == 3
    assert page.rows[0].blueprint_id == "bad"  # newest first
    assert [r.run_id for r in runlog.list_page(blueprint="ok-chain", limit=10).rows] == ids[::-1]
    assert [r.run_id for r in runlog.list_page(blueprint="ok-chain", offset=3, limit=3).rows] == \
        ids[1::-1]
    failed = runlog.list_page(status="failed").rows
    assert [r.status for r in failed] == ["failed"] and failed[0].blueprint_id == "bad"
    assert set(page.statuses) == {"succeeded", "failed"}
    assert page.blueprints == ["bad", "ok-chain"]
    row = runlog.list_page(blueprint="ok-chain").rows[0]
    assert row.nodes == 2 and row.duration_s is not None and row.duration_s >= 0
    with pytest.raises(flownb.FlownbError, match="limit must be an int >= 1"):
        runlog.list_page(limit=0)


def test_the_in_process_registry_is_bounded(fresh_log: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runlog, "MAX_RUNS", 4)
    ids = [flownb.run(chain("c", "noop")).run_id for _ in range(6)]
    assert [r.run_id for r in runlog.list_page().rows] == ids[:1:-1]
    with pytest.raises(flownb.FlownbError, match="remembers the last 4 runs"):
        runlog.get(ids[0])
    assert runlog.get(ids[-1]).result._run is None  # a remembered result holds no engine
    monkeypatch.setattr(runlog, "MAX_RUNS", 0)  # off
    flownb.run(chain("c", "noop"))
    assert runlog.list_page().total == 4


def test_diff_of_two_in_process_runs_with_different_prompts(fresh_log: None) -> None:
    bp = flownb.load(REPLY)
    a = flownb.run(bp, {"message": "Where is my parcel?"})
    b = flownb.run(bp, {"message": "I want a refund"})
    c = flownb.run(bp, {"message": "I want a refund"})
    d = flownb.diff_runs(a, b)
    assert d.nodes == ["draft", "send"] and d.nodes_differ == ["draft", "send"]
    assert d.outputs_a["draft"] == a.outputs["draft"] and d.outputs_b["draft"] == b.outputs["draft"]
    assert d.state_differ == ["message"] and d.state_b["message"] == "I want a refund"
    assert d.node_states() == {"draft": "differs", "send": "differs"}
    page = d._repr_html_()
    assert "<svg" in page and "#ffe0b2" in page  # the graph, differing nodes orange
    assert page.count("flownb-differs") == 3  # two nodes and one state key marked
    same = flownb.diff_runs(b.run_id, c.run_id)  # by run id: the runs of this kernel
    assert same.same and same.nodes_differ == [] and "no difference" in repr(same)
    # a prompt edited in the blueprint itself (same id, new digest) compares too
    edited = flownb.load(REPLY.replace("short reply", "long answer"))
    e = flownb.run(edited, {"message": "I want a refund"})
    assert flownb.diff_runs(c, e).nodes_differ == ["draft", "send"]


def test_diff_refuses_runs_of_different_blueprints(fresh_log: None) -> None:
    a = flownb.run(chain("one", "noop"))
    b = flownb.run(chain("two", "noop"))
    with pytest.raises(flownb.FlownbError, match=r"different blueprints.*'one'.*'two'.*pick two"):
        flownb.diff_runs(a, b)
    with pytest.raises(flownb.FlownbError, match="no in-process run 'nope'"):
        flownb.diff_runs(a.run_id, "nope")
    with pytest.raises(flownb.FlownbError, match="RunResults, RunHandles or run ids"):
        flownb.diff_runs(a, 42)


def test_widget_filters_pages_opens_and_compares_in_process(fresh_log: None) -> None:
    bp = flownb.load(REPLY)
    a = flownb.run(bp, {"message": "Where is my parcel?"})
    b = flownb.run(bp, {"message": "I want a refund"})
    for _ in range(3):
        flownb.run(chain("other", "noop"))
    w = flownb.runs(page_size=2)
    assert w.last_page is not None and w.last_page.total == 5
    assert "page 1 of 3" in w.pager.value and w.prev_button.disabled
    w.next_button.click()
    assert "page 2 of 3" in w.pager.value
    w.blueprint_filter.value = "reply"
    assert w.offset == 0 and [r.run_id for r in w.last_page.rows] == [b.run_id, a.run_id]
    assert w.next_button.disabled
    assert "<b>tokens</b>" in w.table.children[0].children[2].value
    cells = w.table.children[1].children[2].value
    tokens = re.search(r"flownb-run-tokens'[^>]*>([\d,]+)<", cells)
    assert tokens and int(tokens.group(1).replace(",", "")) > 0  # tokens of the fake LLM call
    assert "data-status='succeeded'" in cells and ">reply<" in cells
    _open_buttons(w)[1].click()
    assert w.opened is not None and w.detail.children == (w.opened.box,)
    assert a.run_id in w.opened.status.value and "<svg" in w.opened.graph.value
    assert w.compare_button.disabled
    for t in _ticks(w):
        t.value = True
    assert not w.compare_button.disabled
    w.compare_button.click()
    assert w.diff is not None and w.diff.nodes_differ == ["draft", "send"]
    assert a.run_id in w.message.value and b.run_id in w.message.value
    assert "2 node(s) differ" in w.detail.children[0].value
    assert "flownb-differs" in w.detail.children[0].value
    w.blueprint_filter.value = "(all)"
    assert w.last_page.total == 5
    for t in _ticks(w):  # now one run of each blueprint
        t.value = False
    w.selected = []
    w.blueprint_filter.value = "other"
    _ticks(w)[0].value = True
    w.blueprint_filter.value = "reply"
    _ticks(w)[0].value = True
    assert len(w.selected) == 2 and not w.compare_button.disabled
    w.compare_button.click()  # refused on the page, not raised into the kernel
    assert "different blueprints" in w.message.value and "pick two" in w.message.value


# -- on Redis, real workers --------------------------------------------------------------------
@pytest.fixture
def fake_llm_workers(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    monkeypatch.setenv("FLOWNB_LLM", "fake")  # the workers inherit it
    w = Workers(redis_url)
    yield w
    w.close()


def test_stored_runs_are_listed_filtered_paged_and_diffed(redis_url: str,
                                                          fake_llm_workers: Workers) -> None:
    fake_llm_workers.start(2)
    ex = DistributedExecutor(redis_url)
    bp = flownb.load(REPLY)
    a = ex.run(bp, {"message": "Where is my parcel?"}, timeout=60)
    b = ex.run(bp, {"message": "I want a refund"}, timeout=60)
    oks = [ex.run(chain("echo", "t-echo", "t-echo"), {"x": i}, timeout=60) for i in range(4)]
    bad = ex.run(chain("boom", "t-fail"), timeout=60, raise_on_error=False)
    assert bad.status == "failed"
    page = runlist.list_page(ex.store, limit=3)
    assert page.total == 7 and page.pages == 3
    assert [r.run_id for r in page.rows] == [bad.run_id, oks[3].run_id, oks[2].run_id]
    assert page.blueprints == ["boom", "echo", "reply"]
    assert set(page.statuses) == {"failed", "succeeded"}
    second = runlist.list_page(ex.store, blueprint="echo", offset=2, limit=2)
    assert [r.run_id for r in second.rows] == [oks[1].run_id, oks[0].run_id]
    failed = runlist.list_page(ex.store, status="failed").rows
    assert [r.run_id for r in failed] == [bad.run_id]
    reply_rows = runlist.list_page(ex.store, blueprint="reply").rows
    assert [r.run_id for r in reply_rows] == [b.run_id, a.run_id]
    assert all(r.nodes == 2 and r.tokens and r.tokens > 0 for r in reply_rows)
    assert reply_rows[0].duration_s is not None and reply_rows[0].duration_s > 0
    assert [m["run_id"] for m in ex.runs(3)] == [r.run_id for r in page.rows]  # the old API

    d = flownb.diff_runs(a.run_id, b.run_id, redis=redis_url)  # by run id, from Redis
    assert d.nodes_differ == ["draft", "send"] and d.state_differ == ["message"]
    assert d.outputs_a["draft"] == a.outputs["draft"]
    assert "<svg" in d._repr_html_()
    assert flownb.diff_runs(a, b).nodes_differ == ["draft", "send"]  # distributed results
    with pytest.raises(flownb.FlownbError, match="different blueprints"):
        flownb.diff_runs(a.run_id, bad.run_id, redis=redis_url)

    w = flownb.runs(redis=redis_url, page_size=5)
    assert "page 1 of 2 · 7 runs" in w.pager.value
    w.status_filter.value = "failed"
    assert [r.run_id for r in w.last_page.rows] == [bad.run_id]
    _open_buttons(w)[0].click()
    assert bad.run_id in w.opened.status.value
    w.status_filter.value = "(all)"
    w.blueprint_filter.value = "reply"
    for t in _ticks(w):
        t.value = True
    w.compare_button.click()
    assert w.diff is not None and w.diff.run_a == b.run_id and w.diff.nodes_differ


def test_a_live_run_opens_live_and_a_running_one_is_listed_running(
        redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    h = ex.submit(chain("slow", "t-sleep", seconds=1.5))
    w = flownb.runs(redis=redis_url)
    assert [(r.run_id, r.status, r.duration_s) for r in w.last_page.rows] == \
        [(h.run_id, "running", None)]
    widget = w.open(h.run_id)
    res = widget.wait(30)  # the opened RunWidget follows the live run to its end
    assert res is not None and res.status == "succeeded"
    w.refresh_button.click()
    assert w.last_page.rows[0].status == "succeeded"


def test_listing_10000_stored_runs_stays_fast(redis_url: str) -> None:
    """10,000 runs in Redis (created by the real ``START`` script, no workers: they stay
    ``running``; half are cancelled): opening the browser and turning a page each cost one
    index pass, measured here."""
    ex = DistributedExecutor(redis_url)
    bp = chain("many", "t-echo")
    graph, _ = analyse(bp)
    t0 = time.perf_counter()
    for i in range(10_000):
        ex.store.start_run(f"many-{i:05d}", bp, graph, {"i": i})
        if i % 2:
            ex.store.cancel(f"many-{i:05d}")
    seeded = time.perf_counter() - t0
    r = redis.Redis.from_url(redis_url)
    assert r.zcard(ex.store.keys.runs) == 10_000
    t0 = time.perf_counter()
    w = flownb.runs(redis=redis_url)
    opened = time.perf_counter() - t0
    assert w.last_page.total == 10_000 and "page 1 of 500" in w.pager.value
    t0 = time.perf_counter()
    w.next_button.click()
    paged = time.perf_counter() - t0
    t0 = time.perf_counter()
    w.status_filter.value = "cancelled"
    filtered = time.perf_counter() - t0
    assert w.last_page.total == 5_000
    assert all(row.status == "cancelled" for row in w.last_page.rows)
    print(f"\n10,000 runs: seeded in {seeded:.1f}s; open {opened * 1000:.0f} ms, "
          f"next page {paged * 1000:.0f} ms, filter {filtered * 1000:.0f} ms")
    assert opened < 3.0 and paged < 3.0 and filtered < 3.0  # generous: 2 shared cores


def test_a_resumed_waiting_run_is_listed_with_its_new_status(fresh_log: None) -> None:
    bp = flownb.Blueprint.from_dict({"id": "ask", "nodes": [
        {"id": "q", "uses": "approval", "params": {"prompt": "ok?"}},
        {"id": "done", "uses": "noop"}], "edges": [{"source": "q", "target": "done"}]})
    res = flownb.run(bp)
    assert [(r.run_id, r.status) for r in runlog.list_page().rows] == [(res.run_id, "waiting")]
    res.resume("q", "approve")
    assert [(r.run_id, r.status) for r in runlog.list_page().rows] == [(res.run_id, "succeeded")]


def test_a_started_run_is_listed_and_a_retry_updates_it(fresh_log: None) -> None:
    """``flownb.start`` runs (the steerable ones) are in the browser too, and a retry in place
    moves the listed status on (the same run id, not a new row)."""
    bp = chain("steered", "noop", "rb-fail")
    h = flownb.start(bp)
    assert h.result(10, raise_on_error=False).status == "failed"
    assert [(r.run_id, r.status) for r in runlog.list_page().rows] == [(h.run_id, "failed")]
    h.skip("n1", output={"by": "hand"})
    assert h.result(10).status == "succeeded"
    assert [(r.run_id, r.status) for r in runlog.list_page().rows] == [(h.run_id, "succeeded")]


def test_cluster_runs_lists_the_clusters_runs(redis_url: str) -> None:
    from flownb.notebook import LocalCluster

    with LocalCluster(1, mode="thread", redis=redis_url) as cluster:
        res = cluster.run(chain("on-cluster", "noop", "noop"), timeout=30)
        w = cluster.runs(page_size=5)
        assert [(r.run_id, r.status, r.nodes) for r in w.last_page.rows] == \
            [(res.run_id, "succeeded", 2)]
        w.open(res.run_id)
        assert res.run_id in w.opened.status.value
