"""The run widget's Pause / Resume / Retry-failed-node buttons (issue 22), clicked as a person
would, on an in-process run (``flownb.start``) and on a distributed run with a real worker: each
is enabled only when its control applies, with why in the tooltip otherwise."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.notebook.control_buttons import PAUSE_TIP, RESUME_TIP

import control_nodes  # noqa: F401 - registers ctl-step
from test_run_controls_distributed import chain, counts, wait_for

pytestmark = pytest.mark.timeout(120)


def _widget(handle: Any) -> Any:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.frontend import _view_for
    from flownb.notebook.widget import RunWidget

    view, h = _view_for(handle)
    return RunWidget(view, cancel=h.cancel, controls=h)


def _settled(w: Any, pred: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w._apply(w.view.snapshot(), count=False)
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"buttons never settled: {[(b.description, b.disabled, b.tooltip) for b in w.controls.buttons]}")


def _click(button: Any) -> None:
    assert not button.disabled, button.tooltip
    button.click()


def test_buttons_in_process_pause_resume_retry(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.set("broken:n2", 1)
    h = flownb.start(chain(redis_url, first_seconds=0.6), {"path": []})
    w = _widget(h)
    c = w.controls
    _settled(w, lambda: not c.pause.disabled and c.pause.tooltip == PAUSE_TIP)
    assert c.resume.disabled and c.retry.disabled and "nothing to retry" in c.retry.tooltip
    _click(c.pause)
    _settled(w, lambda: w.view.snapshot().status == "paused" and not c.resume.disabled)
    assert c.pause.disabled and c.pause.tooltip == "paused already" and c.resume.tooltip == RESUME_TIP
    _click(c.resume)
    _settled(w, lambda: w.view.snapshot().finished and not c.retry.disabled)
    assert w.view.snapshot().status == "failed" and "run n2 again" in c.retry.tooltip
    assert c.pause.disabled and c.resume.disabled
    r.delete("broken:n2")
    _click(c.retry)
    assert h.result(20).output["path"] == ["n0", "n1", "n2", "n3"]
    _settled(w, lambda: w.view.snapshot().status == "succeeded" and c.retry.disabled)
    assert counts(redis_url) == [1, 1, 2, 1]
    w.close()


def test_buttons_on_a_distributed_run(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    r.set("broken:n1", 1)
    h = DistributedExecutor(redis_url).submit(chain(redis_url, n=3, first_seconds=0.8), {"path": []})
    w = _widget(h)
    c = w.controls
    _settled(w, lambda: not c.pause.disabled)
    wait_for(lambda: counts(redis_url, 3)[0] == 1)  # n0 runs (a pause before it would park it)
    _click(c.pause)
    _settled(w, lambda: not c.resume.disabled)
    wait_for(lambda: r.hexists(f"flownb:run:{h.run_id}:sched", "d:n0:1"))
    assert counts(redis_url, 3) == [1, 0, 0]
    _click(c.resume)
    _settled(w, lambda: not c.retry.disabled)
    assert "run n1 again" in c.retry.tooltip
    r.delete("broken:n1")
    _click(c.retry)
    _settled(w, lambda: w.view.snapshot().status == "succeeded")
    assert h.result(20).output["path"] == ["n0", "n1", "n2"]
    assert counts(redis_url, 3) == [1, 2, 1]
    w.close()
