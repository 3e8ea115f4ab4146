"""The live views' Cancel button once nothing is left to cancel (issue 20 #11): the batch view's
"Cancel batch" is disabled, with why in its tooltip, when every run of the batch ended — on the
in-process and the distributed executor — by the same rule as the run widget's Cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Workers

import flownb
from flownb.notebook.cancel_button import CANCEL_TIP, ENDED_TIP

pytestmark = pytest.mark.timeout(120)
BATCH_ENDED = ENDED_TIP.format(what="every run of the batch")


@flownb.node("cancel-button-sleep")
async def _sleep(ctx: flownb.NodeContext) -> Any:
    await asyncio.sleep(float(ctx.input["sleep"]))
    if ctx.input.get("fail"):
        raise ValueError(f"row {ctx.input['n']} fails")
    return ctx.input["n"]


def _widget(batch: Any) -> Any:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.batch_view import BatchWidget

    return BatchWidget(batch)


def test_in_process_batch_button_is_disabled_with_why_once_every_run_ended() -> None:
    bp = flownb.Builder("cancel-btn").node("work", "cancel-button-sleep").build()
    batch = flownb.run_many(bp, [{"n": i, "sleep": 0.6, "fail": i == 0} for i in range(3)])
    w = _widget(batch)
    assert not w.cancel_button.disabled and w.cancel_button.tooltip == CANCEL_TIP  # runs now
    assert w.wait(timeout=30)
    assert w.cancel_button.disabled and w.cancel_button.tooltip == BATCH_ENDED
    batch.retry_failed()  # a new pass: something to cancel again
    assert not w.cancel_button.disabled and w.cancel_button.tooltip == CANCEL_TIP
    assert w.wait(timeout=30)
    assert w.cancel_button.disabled and w.cancel_button.tooltip == BATCH_ENDED
    w.close()


def test_run_widget_uses_the_same_rule() -> None:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.progress import ProgressView
    from flownb.notebook.widget import RunWidget

    bp = flownb.Builder("cancel-btn-run").node("work", "cancel-button-sleep").build()
    view = ProgressView(bp, max_rate_hz=0)
    w = RunWidget(view, cancel=lambda: None)
    assert not w.cancel_button.disabled and w.cancel_button.tooltip == CANCEL_TIP
    res = flownb.run(bp, {"n": 1, "sleep": 0.01}, on_event=view.feed)
    view.finish(res)
    w._apply(view.snapshot(), count=False)
    assert w.cancel_button.disabled and w.cancel_button.tooltip == ENDED_TIP.format(what="the run")
    w.close()


@pytest.fixture
def batch_workers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url, modules=(*Workers.MODULES, "batch_nodes"))
    w.start(1)
    yield w
    w.close()


def test_distributed_batch_button_is_disabled_with_why_once_every_run_ended(
        redis_url: str, batch_workers: Workers) -> None:
    from flownb.distributed import DistributedExecutor

    ex = DistributedExecutor(redis_url)
    bp = flownb.Builder("cancel-btn-dist").node(
        "work", "batch-dist-flaky", params={"redis": redis_url}).build()
    batch = ex.map(bp, [{"n": i + 1, "sleep": 0.5} for i in range(2)])  # n=1, 2: never fail
    w = _widget(batch)
    assert not w.cancel_button.disabled and w.cancel_button.tooltip == CANCEL_TIP
    assert w.wait(timeout=60)
    assert [r.status for r in batch.results()] == ["succeeded", "succeeded"]
    assert w.cancel_button.disabled and w.cancel_button.tooltip == BATCH_ENDED
    w.close()
