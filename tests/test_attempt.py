"""The attempt policy in process: what the inline fast path hands over, what a node may raise,
how many sync nodes run at once, and what Ctrl-C does to a run."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import textwrap

import pytest

import flownb

from conftest import ROOT

pytestmark = pytest.mark.timeout(60)


def test_inline_node_that_fails_every_attempt_reports_its_attempts() -> None:
    reg = flownb.Registry()
    calls: list[int] = []

    @reg.register("boom")
    def boom(ctx):  # type: ignore[no-untyped-def]
        calls.append(ctx.attempt)
        ctx.state["half"] = True  # a failed attempt's writes are discarded
        raise ValueError("no")

    bp = flownb.Builder("t").node("a", "boom", retries=2).build()
    res = flownb.run(bp, {}, registry=reg, raise_on_error=False)
    assert res.status == "failed"
    assert calls == [1, 2, 3]
    assert res.nodes["a"].attempts == 3 == res.error["attempt"]
    assert res.nodes["a"].status == "failed"
    assert "half" not in res.state


def test_inline_node_recovering_on_retry_and_fallback() -> None:
    reg = flownb.Registry()

    @reg.register("flaky")
    def flaky(ctx):  # type: ignore[no-untyped-def]
        if ctx.attempt < 2:
            raise RuntimeError("first time")
        return "second"

    @reg.register("always")
    def always(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("never")

    @reg.register("plan-b")
    def plan_b(ctx):  # type: ignore[no-untyped-def]
        return "b"

    bp = (flownb.Builder("t").node("a", "flaky", retries=1).node("b", "always", fallback="c")
          .node("c", "plan-b").edge("a", "b").build())
    res = flownb.run(bp, {}, registry=reg, raise_on_error=False)
    assert res.status == "succeeded", res.error
    assert res.nodes["a"].attempts == 2
    assert res.nodes["b"].status == "failed" and res.nodes["c"].status == "succeeded"
    assert res.outputs["c"] == "b"


def test_system_exit_in_a_node_fails_only_that_node_once() -> None:
    reg = flownb.Registry()
    calls: list[int] = []

    @reg.register("quit")
    def quit_(ctx):  # type: ignore[no-untyped-def]
        calls.append(1)
        sys.exit("a library gave up")

    bp = flownb.Builder("t").node("a", "quit", retries=3).build()
    res = flownb.run(bp, {}, registry=reg, raise_on_error=False)
    assert res.status == "failed"
    assert res.error["type"] == "SystemExit" and "a library gave up" in res.error["message"]
    assert calls == [1]


def test_many_runs_of_sync_nodes_are_not_capped_by_a_small_pool() -> None:
    reg = flownb.Registry()
    lock = threading.Lock()
    now = [0, 0]

    @reg.register("wait")
    def wait(ctx):  # type: ignore[no-untyped-def]
        with lock:
            now[0] += 1
            now[1] = max(now[1], now[0])
        time.sleep(0.2)
        with lock:
            now[0] -= 1
        return 1

    bp = flownb.Builder("t").node("a", "wait", timeout_s=5).build()  # a timeout: off the inline path

    async def main() -> list[flownb.RunResult]:
        return await asyncio.gather(*(flownb.arun(bp, {}, registry=reg) for _ in range(60)))

    results = asyncio.run(main())
    assert all(r.status == "succeeded" for r in results)
    assert now[1] >= 30, f"only {now[1]} sync nodes ran at once"


def test_timed_out_sync_attempt_is_abandoned_and_its_late_result_discarded() -> None:
    reg = flownb.Registry()

    @reg.register("slow")
    def slow(ctx):  # type: ignore[no-untyped-def]
        if ctx.attempt == 1:
            time.sleep(0.5)
            ctx.state["late"] = True
            return "late"
        return "fast"

    bp = flownb.Builder("t").node("a", "slow", timeout_s=0.1, retries=1).build()
    res = flownb.run(bp, {}, registry=reg)
    assert res.outputs["a"] == "fast" and res.nodes["a"].attempts == 2
    time.sleep(0.6)
    assert "late" not in res.state


SCRIPT = textwrap.dedent("""
    import sys, time, flownb
    reg = flownb.Registry()
    @reg.register("long")
    def long(ctx):
        print("started", flush=True)
        end = time.monotonic() + 20
        while time.monotonic() < end and not ctx.cancelled:
            time.sleep(0.01)
        print("node saw cancelled:", ctx.cancelled, flush=True)
        return 1
    bp = flownb.Builder("t").node("a", "long").node("b", "long").edge("a", "b").build()
    try:
        flownb.run(bp, {}, registry=reg)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
""")


@pytest.mark.parametrize("where", ["script", "running-loop"])
def test_ctrl_c_cancels_the_run_and_ends_cleanly(where: str) -> None:
    code = SCRIPT
    if where == "running-loop":  # as in Jupyter: a loop runs, the interrupt raises in the cell
        code = code.replace("    flownb.run(bp, {}, registry=reg)",
                            "    import asyncio, signal\n"
                            "    async def cell():\n"
                            "        signal.signal(signal.SIGINT, signal.default_int_handler)\n"
                            "        flownb.run(bp, {}, registry=reg)\n"
                            "    asyncio.run(cell())")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=str(ROOT), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "started"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert "node saw cancelled: True" in out
    assert out.count("started") == 0  # node b never started
    assert "interrupted" in out
    assert "Task was destroyed" not in err and "Traceback" not in err, err
