"""Run controls on Redis with real worker processes: pause / resume_run / patch_state / retry /
skip, their refusals, and kill -9 of every worker while a run is paused (INCR-counted bodies)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.engine.controls import RunControlError

from control_nodes import chain, counts
from control_nodes import until as wait_for

pytestmark = pytest.mark.timeout(120)


def executor(url: str) -> DistributedExecutor:
    return DistributedExecutor(url)


def test_kill_every_worker_while_paused_then_resume(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(2)
    ex = executor(redis_url)
    h = ex.submit(chain(redis_url, first_seconds=1.0), {"path": []})
    wait_for(lambda: counts(redis_url)[0] == 1)  # n0 runs (in flight)
    h.pause(by="tester")
    assert h.status() == "paused"
    # the visit in flight finishes; its successor is parked, no worker holds it
    r = redis.Redis.from_url(redis_url)
    wait_for(lambda: r.hexists(f"flownb:run:{h.run_id}:sched", "d:n0:1"))
    time.sleep(1.0)
    assert counts(redis_url) == [1, 0, 0, 0]
    pending = {k.decode(): v for k, v in r.hgetall(f"flownb:run:{h.run_id}:pending").items()}
    assert list(pending) == ["n1|1"] and b'"st":"p"' in pending["n1|1"]
    assert r.zscore("flownb:leases", f"{h.run_id}|n1|1") is None
    for p in workers.alive():
        workers.kill(p)
    time.sleep(1.0)
    assert h.status() == "paused" and counts(redis_url) == [1, 0, 0, 0]
    # every listing a person reads says paused too: `flownb runs`, the runs browser
    from flownb.distributed import runlist
    assert [m["status"] for m in ex.runs(5) if m["run_id"] == h.run_id] == ["paused"]
    assert [row.status for row in runlist.all_rows(ex.store) if row.run_id == h.run_id] == ["paused"]
    workers.start(2, wait=False)
    time.sleep(1.5)  # new workers take nothing of a paused run
    assert counts(redis_url) == [1, 0, 0, 0]
    h.resume_run()
    res = h.result(30)
    assert res.status == "succeeded"
    assert res.output["path"] == ["n0", "n1", "n2", "n3"]
    assert counts(redis_url) == [1, 1, 1, 1]  # nothing lost, nothing run twice


def test_patch_state_while_paused_is_seen_downstream(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(1)
    ex = executor(redis_url)
    h = ex.submit(chain(redis_url, n=3, first_seconds=0.8), {"path": []}, history=True)
    wait_for(lambda: counts(redis_url, 3)[0] == 1)
    with pytest.raises(RunControlError, match="pause it first"):
        h.patch_state({"note": "too early"})
    h.pause()
    r = redis.Redis.from_url(redis_url)
    wait_for(lambda: r.hexists(f"flownb:run:{h.run_id}:sched", "d:n0:1"))
    h.patch_state({"note": "fixed by hand"}, by="alice")
    h.resume_run()
    res = h.result(30)
    assert res.output == {"path": ["n0", "n1", "n2"], "note": "fixed by hand"}
    hist = r.xrange(f"flownb:run:{h.run_id}:history")
    patches = [f for _, f in hist if f[b"k"] == b"patch"]
    assert len(patches) == 1 and patches[0][b"by"] == b"alice"
    assert b"fixed by hand" in patches[0][b"w"] and float(patches[0][b"at"]) > 0
    with pytest.raises(RunControlError, match="only a running or waiting run can be paused"):
        h.pause()
    with pytest.raises(RunControlError, match="not paused"):
        h.resume_run()


def test_retry_failed_node_in_place(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(2)
    r = redis.Redis.from_url(redis_url)
    r.set("broken:n2", 1)
    ex = executor(redis_url)
    h = ex.submit(chain(redis_url), {"path": []})
    res = h.result(30, raise_on_error=False)
    assert res.status == "failed" and res.error["node_id"] == "n2"
    assert counts(redis_url) == [1, 1, 1, 0]
    with pytest.raises(RunControlError, match="that node succeeded"):
        h.retry("n1")
    with pytest.raises(RunControlError, match="has no node 'nope'"):
        h.retry("nope")
    r.delete("broken:n2")  # the cause is fixed
    h.retry("n2")
    res = h.result(30)
    assert res.run_id == h.run_id and res.status == "succeeded"
    assert res.output["path"] == ["n0", "n1", "n2", "n3"]
    assert counts(redis_url) == [1, 1, 2, 1]  # no upstream body ran again
    with pytest.raises(RunControlError, match="succeeded"):
        h.retry("n2")


def test_skip_failed_node_and_refusals(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    r.set("broken:n1", 1)
    ex = executor(redis_url)
    h = ex.submit(chain(redis_url, n=3), {"path": []})
    assert h.result(30, raise_on_error=False).status == "failed"
    with pytest.raises(RunControlError, match=r"node 'n2'.*no node upstream of it \(n1\)"):
        h.retry("n2")  # n1 never produced an output: n2 would run on the wrong input
    with pytest.raises(RunControlError, match="has no node 'zz'"):
        h.skip("zz", output={})
    h.skip("n1", output={"path": ["n0", "by-hand"]})
    res = h.result(30)
    assert res.output["path"] == ["n0", "by-hand", "n2"]
    assert counts(redis_url, 3) == [1, 1, 1]
    with pytest.raises(RunControlError, match="cannot skip"):
        h.skip("n2", output=1)


def test_skip_queued_node_of_paused_run(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(1)
    ex = executor(redis_url)
    h = ex.submit(chain(redis_url, n=3, first_seconds=0.8), {"path": []})
    wait_for(lambda: counts(redis_url, 3)[0] == 1)
    h.pause()
    r = redis.Redis.from_url(redis_url)
    wait_for(lambda: r.hexists(f"flownb:run:{h.run_id}:sched", "d:n0:1"))
    h.skip("n1", output={"path": ["n0", "skipped"]})
    h.resume_run()
    res = h.result(30)
    assert res.output["path"] == ["n0", "skipped", "n2"]
    assert counts(redis_url, 3) == [1, 0, 1]


def test_skip_waiting_node_and_patch_while_waiting(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(1)
    bp = (flownb.Builder("ctl-wait")
          .node("ask", "wait", params={"prompt": "ok?"})
          .node("n1", "ctl-step", params={"redis": redis_url})
          .edge("ask", "n1").build())
    h = executor(redis_url).submit(bp, {})
    wait_for(lambda: h.status() == "waiting")
    h.patch_state({"note": "while waiting"})
    with pytest.raises(RunControlError, match="cannot skip"):
        h.skip("n1", output=1)  # not pending: nothing to skip there yet
    h.skip("ask", output={"path": ["by-hand"]})
    assert h.result(30).output == {"path": ["by-hand", "n1"], "note": "while waiting"}
    assert counts(redis_url, 2)[1] == 1


def test_retry_a_cancelled_run_from_the_node_it_stopped_at(redis_url: str, workers: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(1)
    b = flownb.Builder("ctl-cancel")
    for i, s in enumerate((0.0, 1.0, 0.0)):
        b = b.node(f"n{i}", "ctl-step", params={"redis": redis_url, "seconds": s})
    bp = b.edge("n0", "n1").edge("n1", "n2").build()
    h = executor(redis_url).submit(bp, {"path": []})
    wait_for(lambda: counts(redis_url, 3)[1] == 1)  # n1 is running
    h.cancel()
    assert h.result(30, raise_on_error=False).status == "cancelled"
    time.sleep(1.2)  # n1's late commit is discarded
    h.retry("n1")
    res = h.result(30)
    assert res.output["path"] == ["n0", "n1", "n2"]
    assert counts(redis_url, 3) == [1, 2, 1]  # n0 not again; n1 once discarded, once retried
