"""Batches in process: ``flownb.run_many`` / ``arun_many`` — order, bounds, failures re-run,
cancel, the DataFrame, the aggregate figures and the live view's widget state."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from typing import Any

import pytest

import flownb
from flownb import examples
from flownb.core.errors import FlownbError, LintError, RunFailed

pytestmark = pytest.mark.timeout(60)

_lock = threading.Lock()
_live = {"now": 0, "max": 0}
_calls: dict[str, int] = {}


@flownb.node("batch-delay")
async def batch_delay(ctx: flownb.NodeContext) -> Any:
    """Sleeps longer for earlier rows, so runs end in the reverse order of the input."""
    with _lock:
        _live["now"] += 1
        _live["max"] = max(_live["max"], _live["now"])
    try:
        await asyncio.sleep(float(ctx.input["sleep"]))
    finally:
        with _lock:
            _live["now"] -= 1
    return ctx.input["n"] * 10


@flownb.node("batch-flaky")
def batch_flaky(ctx: flownb.NodeContext) -> Any:
    """Fails the first time it sees a row whose ``n`` is a multiple of 3 (a transient error)."""
    key = f"{ctx.params['tag']}:{ctx.input['n']}"
    with _lock:
        _calls[key] = _calls.get(key, 0) + 1
        first = _calls[key] == 1
    if first and ctx.input["n"] % 3 == 0:
        raise ValueError(f"transient failure of row {ctx.input['n']}")
    return {"double": ctx.input["n"] * 2}


def _bp(uses: str, **params: Any) -> flownb.Blueprint:
    return flownb.Builder(f"batch-{uses}").node("work", uses, params=params or None).build()


def test_results_come_back_in_input_order_and_concurrency_is_bounded() -> None:
    _live.update(now=0, max=0)
    n = 12
    rows = [{"n": i, "sleep": 0.5 if i == 0 else 0.01 * (n - i)} for i in range(n)]
    batch = flownb.run_many(_bp("batch-delay"), rows, concurrency=4)
    results = batch.results(timeout=30)
    assert [r.output for r in results] == [i * 10 for i in range(n)]
    assert [r.status for r in results] == ["succeeded"] * n
    assert batch.outputs() == [i * 10 for i in range(n)]
    # row 0 (the longest sleep) finished last: order is the input's, not completion's
    ends = [r.finished_at for r in results]
    assert max(ends) == ends[0]
    assert 1 <= _live["max"] <= 4
    snap = batch.snapshot()
    assert (snap.total, snap.succeeded, snap.failed, snap.running, snap.pending) == (n, n, 0, 0, 0)
    assert snap.finished and snap.status == "succeeded" and snap.runs_per_s > 0
    node = {x.node_id: x for x in snap.nodes}["work"]
    assert node.count == n and node.max_s >= 0.5
    assert len({r.run_id for r in results}) == n


def test_failures_are_listed_and_retry_failed_reruns_only_them() -> None:
    tag = "retry"
    rows = [{"n": i} for i in range(7)]
    batch = flownb.run_many(_bp("batch-flaky", tag=tag), rows)
    results = batch.results(timeout=30)
    failed = [it.index for it in batch.failures]
    assert failed == [0, 3, 6]
    assert [r.status for r in results] == ["failed" if i in failed else "succeeded" for i in range(7)]
    it = batch.failures[1]
    assert it.input == {"n": 3} and it.error and it.error["node_id"] == "work"
    assert it.error_text == "work: ValueError: transient failure of row 3"
    assert batch.snapshot().status == "failed"
    assert dict(batch.snapshot().errors)[3] == it.error_text
    with pytest.raises(RunFailed, match="row 0"):
        batch.results(raise_on_error=True)

    assert batch.retry_failed() is batch
    results = batch.results(timeout=30)
    assert [r.status for r in results] == ["succeeded"] * 7
    assert [r.output for r in results] == [{"double": i * 2} for i in range(7)]
    # each row that failed ran twice, each other row once: nothing that worked ran again
    assert {k: v for k, v in _calls.items() if k.startswith(tag)} == {
        f"{tag}:{i}": 2 if i % 3 == 0 else 1 for i in range(7)}
    assert [it.tries for it in batch.items] == [2 if i % 3 == 0 else 1 for i in range(7)]
    assert batch.failures == [] and batch.snapshot().status == "succeeded"
    assert batch.retry_failed().results(timeout=5) == results  # nothing to do: same results


def test_cancel_stops_the_whole_batch() -> None:
    rows = [{"n": i, "sleep": 0.3} for i in range(40)]
    batch = flownb.run_many(_bp("batch-delay"), rows, concurrency=2)
    deadline = time.monotonic() + 10
    while batch.snapshot().running == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    batch.cancel()
    assert batch.wait(timeout=10)
    results = batch.results()
    statuses = [r.status for r in results]
    assert statuses.count("cancelled") >= 36
    assert set(statuses) <= {"succeeded", "cancelled"}
    snap = batch.snapshot()
    assert snap.status == "cancelled" and snap.cancelled == statuses.count("cancelled")
    assert batch.cancelled
    # the cancelled rows can be run again
    batch.retry_failed(include_cancelled=True)
    assert batch.wait(timeout=30)
    assert [r.output for r in batch.results()] == [i * 10 for i in range(40)]


def test_to_pandas_has_one_row_per_input_with_outputs_status_and_error() -> None:
    pd = pytest.importorskip("pandas")
    rows = [{"n": i, "status": "mine"} for i in range(4)]
    batch = flownb.run_many(_bp("batch-flaky", tag="pandas"), rows)
    batch.wait(30)
    df = batch.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 4
    assert list(df.columns) == ["n", "input.status", "output", "status", "error", "error_node",
                                "run_id", "duration_s"]
    assert list(df["n"]) == [0, 1, 2, 3]
    assert list(df["status"]) == ["failed", "succeeded", "succeeded", "failed"]
    assert df.loc[1, "output"] == {"double": 2}
    assert df.loc[0, "error"] == "work: ValueError: transient failure of row 0"
    assert df.loc[0, "error_node"] == "work" and df.loc[0, "output"] is None
    assert df["run_id"].notna().all()
    with_nodes = batch.to_pandas(nodes=True)
    assert with_nodes.loc[2, "node.work"] == {"double": 4}
    # a DataFrame goes back in as rows
    again = flownb.run_many(_bp("batch-flaky", tag="pandas-in"), df[["n"]])
    assert [it.input for it in again.items] == [{"n": i} for i in range(4)]
    again.wait(30)


def test_to_pandas_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = flownb.run_many(_bp("batch-flaky", tag="nopandas"), [{"n": 1}])
    batch.wait(30)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(FlownbError, match=r"flownb\[pandas\]"):
        batch.to_pandas()


def test_rows_are_checked_and_key_wraps_plain_values() -> None:
    bp = _bp("batch-flaky", tag="key")
    with pytest.raises(FlownbError, match="row 1 is a str.*key='text'"):
        flownb.run_many(bp, [{"n": 1}, "hello"])
    with pytest.raises(FlownbError, match="list"):
        flownb.run_many(bp, {"n": 1})
    with pytest.raises(FlownbError, match="concurrency"):
        flownb.run_many(bp, [{"n": 1}], concurrency=0)
    broken = flownb.Builder("broken").node("a", "no-such-node-type").build()
    with pytest.raises(LintError):
        flownb.run_many(broken, [{"n": 1}])
    batch = flownb.run_many(bp, [1, 2, 4], key="n")
    assert [r.output for r in batch.results(30)] == [{"double": 2}, {"double": 4}, {"double": 8}]
    empty = flownb.run_many(bp, [])
    assert empty.done() and empty.results() == []


def test_arun_many_runs_on_the_callers_loop() -> None:
    async def main() -> Any:
        rows = [{"n": i, "sleep": 0.01} for i in range(10)]
        batch = await flownb.arun_many(_bp("batch-delay"), rows, concurrency=None)
        assert batch.done()
        return await batch

    results = asyncio.run(main())
    assert [r.output for r in results] == [i * 10 for i in range(10)]


def test_llm_usage_of_every_run_is_summed() -> None:
    bp = examples.load("content_moderation")
    cases = list(examples.cases("content_moderation").values())
    batch = flownb.run_many(bp, cases * 2)
    results = batch.results(timeout=60)
    assert all(r.ok for r in results)
    assert [r.output for r in results[:4]] == [r.output for r in results[4:]]
    snap = batch.snapshot()
    # 3 checks + triage per run, + the redact subflow's one LLM call (2 of the 8 rows redact)
    assert snap.llm_calls == 8 * 4 + 2 * 1
    assert snap.prompt_tokens > 0 and snap.completion_tokens > 0
    assert snap.cost_usd == 0.0 and snap.cost_unknown_calls == 0  # the fake model is free
    assert {"check_pii", "check_hate", "check_spam", "triage", "final_log"} <= {
        n.node_id for n in snap.nodes}


def test_widget_shows_counts_latency_tokens_and_failures() -> None:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.batch_view import BatchWidget

    rows = [{"n": i} for i in range(6)]
    batch = flownb.run_many(_bp("batch-flaky", tag="widget"), rows)
    w = BatchWidget(batch)
    assert w.wait(timeout=30)
    assert w.progress.value == 6 and w.progress.max == 6
    assert w.progress.description == "6/6" and w.progress.bar_style == "danger"
    assert "4 succeeded, 2 failed" in w.status.value and "runs/s" in w.status.value
    assert "<code>work</code>" in w.nodes.value
    assert "row 0: work: ValueError" in w.errors.value and "row 3" in w.errors.value
    assert "retry_failed()" in w.errors.value
    assert w.cancel_button.disabled
    sent = w.updates_sent
    batch.retry_failed()
    assert w.wait(timeout=30)
    assert w.updates_sent > sent  # the view wakes up for the retry
    assert w.progress.bar_style == "success" and w.errors.value == ""
    assert "6 succeeded, 0 failed" in w.status.value
    w.close()


def test_widget_updates_are_coalesced() -> None:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.batch_view import MAX_UPDATES_PER_S, BatchWidget

    rows = [{"n": i, "sleep": 0.002} for i in range(300)]
    t0 = time.monotonic()
    batch = flownb.run_many(_bp("batch-delay"), rows, concurrency=8)
    w = BatchWidget(batch)
    assert w.wait(timeout=60)
    elapsed = time.monotonic() - t0
    # 600 node events and 600 row status changes; the ticker reads at most 5 snapshots a second
    assert 1 <= w.updates_sent <= elapsed * MAX_UPDATES_PER_S + 2
    assert w.progress.value == 300
    w.close()


def test_terminal_bar_and_repr() -> None:
    pytest.importorskip("tqdm")
    from flownb.notebook.batch_view import BatchTqdm

    out = io.StringIO()
    batch = flownb.run_many(_bp("batch-flaky", tag="tqdm"), [{"n": i} for i in range(4)])
    bar = BatchTqdm(batch, file=out)
    assert bar.wait(timeout=30)
    bar.close()
    text = out.getvalue()
    assert "4/4" in text and "failed=2" in text
    assert "2 succeeded, 2 failed" in repr(batch)
    shown = batch.show(file=io.StringIO())  # not in a kernel: a bar, returned at once
    assert type(shown).__name__ == "BatchTqdm"
    shown.close()
