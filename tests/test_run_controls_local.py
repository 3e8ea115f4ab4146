"""Run controls in process (``flownb.start``): pause holds no new visit, patch/retry/skip go on in
place, and every refusal names the run, the node and the fix. Bodies are INCR-counted in Redis."""

from __future__ import annotations

import time

import pytest
import redis

import flownb
from flownb import RunControlError

from control_nodes import chain, counts, until  # (importing it registers ctl-step)

pytestmark = pytest.mark.timeout(60)


def test_pause_patch_resume(redis_url: str) -> None:
    h = flownb.start(chain(redis_url, first_seconds=0.5), {"path": []})
    until(lambda: counts(redis_url)[0] == 1)
    with pytest.raises(RunControlError, match="pause it first"):
        h.patch_state({"note": "x"})
    h.pause()
    assert h.status() == "paused"
    until(lambda: h.engine.held is not None)  # n0 finished, nothing in flight
    time.sleep(0.3)
    assert counts(redis_url) == [1, 0, 0, 0]
    with pytest.raises(RunControlError, match="paused already"):
        h.pause()
    h.patch_state({"note": "patched"}, by="bob")
    assert h.patches[0]["by"] == "bob" and h.patches[0]["values"] == {"note": "patched"}
    h.resume_run()
    res = h.result(10)
    assert res.output == {"path": ["n0", "n1", "n2", "n3"], "note": "patched"}
    assert counts(redis_url) == [1, 1, 1, 1]
    types = [e.type for e in h.events]
    assert "run_paused" in types and "run_resumed" in types and "state_patched" in types
    paused = next(e for e in h.events if e.type == "run_paused")
    assert paused.data["by"].count("@") == 1  # who paused: user@host by default
    with pytest.raises(RunControlError, match="only a running run can be paused"):
        h.pause()
    with pytest.raises(RunControlError, match="not paused"):
        h.resume_run()


def test_retry_in_place_runs_no_upstream_body_again(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.set("broken:n2", 1)
    h = flownb.start(chain(redis_url), {"path": []})
    res = h.result(10, raise_on_error=False)
    assert res.status == "failed" and res.error["node_id"] == "n2"
    with pytest.raises(RunControlError, match="that node succeeded"):
        h.retry("n0")
    with pytest.raises(RunControlError, match="has no node 'nope'"):
        h.retry("nope")
    r.delete("broken:n2")
    h.retry("n2")
    res = h.result(10)
    assert res.run_id == h.run_id and res.output["path"] == ["n0", "n1", "n2", "n3"]
    assert counts(redis_url) == [1, 1, 2, 1]
    with pytest.raises(RunControlError, match="the run is succeeded"):
        h.retry("n3")


def test_skip_failed_and_queued(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    r.set("broken:n1", 1)
    h = flownb.start(chain(redis_url, n=3), {"path": []})
    assert h.result(10, raise_on_error=False).status == "failed"
    h.skip("n1", output={"path": ["n0", "by-hand"]})
    assert h.result(10).output["path"] == ["n0", "by-hand", "n2"]
    assert counts(redis_url, 3) == [1, 1, 1]
    r.delete("broken:n1")
    r.flushdb()
    h2 = flownb.start(chain(redis_url, n=3, first_seconds=0.4), {"path": []})
    until(lambda: counts(redis_url, 3)[0] == 1)
    h2.pause()
    until(lambda: h2.engine.held is not None)
    h2.skip("n1", output={"path": ["n0", "skipped"]})
    h2.resume_run()
    assert h2.result(10).output["path"] == ["n0", "skipped", "n2"]
    assert counts(redis_url, 3) == [1, 0, 1]


def test_skip_waiting_node_and_patch_while_waiting(redis_url: str) -> None:
    bp = (flownb.Builder("ctl-wait")
          .node("ask", "wait", params={"prompt": "ok?"})
          .node("n1", "ctl-step", params={"redis": redis_url})
          .edge("ask", "n1").build())
    h = flownb.start(bp, {})
    assert h.result(10, raise_on_error=False).status == "waiting"
    h.patch_state({"note": "while waiting"})  # a waiting run's state may be patched
    with pytest.raises(RunControlError, match="has no node 'zz'"):
        h.skip("zz")
    h.skip("ask", output={"path": ["by-hand"]})
    assert h.result(10).output == {"path": ["by-hand", "n1"], "note": "while waiting"}
    assert counts(redis_url, 2)[1] == 1


def test_retry_a_cancelled_run_in_process(redis_url: str) -> None:
    b = flownb.Builder("ctl-cancel")
    for i, s in enumerate((0.0, 0.6, 0.0)):
        b = b.node(f"n{i}", "ctl-step", params={"redis": redis_url, "seconds": s})
    h = flownb.start(b.edge("n0", "n1").edge("n1", "n2").build(), {"path": []})
    until(lambda: counts(redis_url, 3)[1] == 1)
    h.cancel()  # n1 (a sync node, running) finishes; n2 never starts
    res = h.result(10, raise_on_error=False)
    assert res.status == "cancelled" and "n2" not in res.outputs
    with pytest.raises(RunControlError, match="that node succeeded"):
        h.retry("n1")
    h.retry("n2")
    assert h.result(10).output["path"] == ["n0", "n1", "n2"]
    assert counts(redis_url, 3) == [1, 1, 1]
