"""Pause for a person (flownb.engine.waiting): in process and on real Redis with real workers.

Executions are counted outside the commit path (a Redis INCR in the node body, see
``hitl_nodes``), so "the run completes once" means the downstream node body ran once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import hitl_nodes  # noqa: F401  (registers the node types in this process too)
import pytest
import redis
from conftest import ROOT
from hitl_support import hitl_workers

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.engine.waiting import ResumeError


def approval_bp(url: str = "", **ask_params: Any) -> flownb.Blueprint:
    return flownb.load({"id": "approve-reply", "nodes": [
        {"id": "draft", "uses": "hitl-draft", "params": {"redis": url}},
        {"id": "review", "uses": "approval", "params": {"prompt": "Send {{input}}?", **ask_params}},
        {"id": "send", "uses": "hitl-count", "params": {"redis": url}},
        {"id": "discard", "uses": "hitl-count", "params": {"redis": url}}],
        "edges": [{"source": "draft", "target": "review"},
                  {"source": "review", "target": "send", "action": "approve"},
                  {"source": "review", "target": "discard", "action": "reject"}]})


def count(url: str, node: str) -> int:
    return int(redis.Redis.from_url(url).get(f"count:{node}") or 0)


# -- in process ----------------------------------------------------------------------------------------

def test_in_process_run_parks_and_resumes_with_a_choice() -> None:
    res = flownb.run(approval_bp(), {"topic": "refund"})
    assert res.status == "waiting"
    assert res.nodes["review"].status == "waiting"
    [w] = res.waiting()
    assert w["node"] == "review" and w["choices"] == ["approve", "reject"]
    assert w["prompt"] == "Send [polite] reply about refund?"
    done = res.resume("review", "approve")
    assert done.status == "succeeded"
    assert done.outputs["review"] == "approve" and "send" in done.outputs
    assert done.nodes["discard"].status == "skipped"
    with pytest.raises(ResumeError, match="answered already"):
        res.resume("review", "approve")


def test_in_process_answers_are_checked_and_routed() -> None:
    res = flownb.run(approval_bp())
    with pytest.raises(ResumeError, match="not one of the choices"):
        res.resume("review", "maybe")
    with pytest.raises(ResumeError, match="not waiting"):
        res.resume("draft", "x")
    with pytest.raises(ResumeError, match="no node 'nope'"):
        res.resume("nope", "x")
    assert res.waiting(), "a refused answer changes nothing"
    done = res.resume("review", {"action": "reject", "why": "too blunt"})
    assert done.outputs["review"] == {"action": "reject", "why": "too blunt"}
    assert "discard" in done.outputs and "send" not in done.outputs


def test_schema_answers_and_default_edges() -> None:
    schema = {"type": "object", "required": ["text"], "additionalProperties": False,
              "properties": {"text": {"type": "string", "minLength": 3}}}
    bp = flownb.load({"id": "edit", "nodes": [
        {"id": "ask", "uses": "wait", "params": {"prompt": "edit it", "schema": schema}},
        {"id": "after", "uses": "passthrough"}], "edges": [{"source": "ask", "target": "after"}]})
    res = flownb.run(bp)
    for bad, msg in (({"txt": "hi"}, "missing the required property 'text'"),
                     ({"text": "hi"}, "at least 3 characters"),
                     ({"text": "hello", "x": 1}, "does not allow"), ("hello", "type object")):
        with pytest.raises(ResumeError, match=msg):
            res.resume("ask", bad)
    done = res.resume("ask", {"text": "hello"})
    assert done.outputs["after"] == {"text": "hello"}
    bad_schema = flownb.load({"id": "bad", "nodes": [
        {"id": "ask", "uses": "wait", "params": {"schema": {"type": "string", "format": "email"}}}]})
    with pytest.raises(flownb.LintError, match="format"):  # found before anything runs
        flownb.run(bad_schema, raise_on_error=False)


def test_a_join_after_a_waiting_branch_waits_for_it() -> None:
    bp = flownb.load({"id": "join", "nodes": [
        {"id": "s", "uses": "noop"}, {"id": "ask", "uses": "wait"}, {"id": "other", "uses": "noop"},
        {"id": "j", "uses": "noop"}], "edges": [
        {"source": "s", "target": "ask"}, {"source": "s", "target": "other"},
        {"source": "ask", "target": "j"}, {"source": "other", "target": "j"}]})
    res = flownb.run(bp)
    assert res.status == "waiting" and "other" in res.outputs and "j" not in res.outputs
    done = res.resume("ask", 42)
    assert done.status == "succeeded" and "j" in done.outputs


def test_any_node_may_ask_with_wait_for() -> None:
    bp = flownb.load({"id": "ask", "nodes": [{"id": "q", "uses": "hitl-ask"}]})
    res = flownb.run(bp, {"x": 1})
    [w] = res.waiting()
    assert w["choices"] == ["yes", "no"] and w["prompt"].startswith("publish")
    assert res.resume("q", "yes").outputs["q"] == "yes"


def test_on_wait_callback_and_its_timeout_default() -> None:
    seen: list[dict[str, Any]] = []

    async def answer(info: dict[str, Any]) -> Any:
        seen.append(info)
        return "approve"

    res = asyncio.run(flownb.arun(approval_bp(), on_wait=answer))
    assert res.status == "succeeded" and "send" in res.outputs and seen[0]["node"] == "review"

    async def too_slow(info: dict[str, Any]) -> Any:
        await asyncio.sleep(5)
        return "approve"

    bp = approval_bp(timeout_s=0.2, default="reject")
    res = asyncio.run(flownb.arun(bp, on_wait=too_slow, history=True))
    assert res.status == "succeeded" and "discard" in res.outputs
    assert [s.flag for s in res.history() if s.node == "review"] == ["timeout"]


def test_in_process_late_answer_is_refused_and_expire_takes_the_default() -> None:
    res = flownb.run(approval_bp(timeout_s=0.05, default="reject"))
    time.sleep(0.1)
    with pytest.raises(ResumeError, match="after timeout_s"):
        res.resume("review", "approve")
    done = res.expire()
    assert done.status == "succeeded" and "discard" in done.outputs


# -- distributed -----------------------------------------------------------------------------------------

def test_waiting_run_survives_killing_every_worker_and_the_client(redis_url: str) -> None:
    w = hitl_workers(redis_url)
    try:
        w.start(2)
        handle = DistributedExecutor(redis_url).submit(approval_bp(redis_url), {"topic": "refund"})
        res = handle.result(timeout=30)
        assert res.status == "waiting", res.error
        assert res.nodes["review"].status == "waiting"
        # no worker holds it: no lease, nothing queued
        r = redis.Redis.from_url(redis_url)
        assert r.zcard("flownb:leases") == 0
        for p in w.alive():
            w.kill(p)
        w.start(2)
        # a new client (another process in real life) re-attaches and answers
        again = flownb.attach(handle.run_id, redis=redis_url)
        assert again.status() == "waiting"
        assert [x["node"] for x in again.waiting()] == ["review"]
        again.resume("review", "approve")
        with pytest.raises(ResumeError, match="answered already"):
            again.resume("review", "approve")
        done = again.result(timeout=30)
        assert done.status == "succeeded", done.error
        assert done.outputs["review"] == "approve"
        assert count(redis_url, "send") == 1 and count(redis_url, "discard") == 0
        assert count(redis_url, "draft") == 1
        types = [e.type for e in again.events()]
        assert types.count("node_waiting") == 1 and types.count("run_waiting") == 1
        with pytest.raises(ResumeError, match="answered already"):
            again.resume("review", "reject")
    finally:
        w.close()


def test_cli_lists_waiting_run_and_resumes_it(redis_url: str, tmp_path: Any) -> None:
    w = hitl_workers(redis_url)
    try:
        w.start(1)
        handle = DistributedExecutor(redis_url).submit(approval_bp(redis_url))
        assert handle.result(timeout=30).status == "waiting"
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "flownb", *args, "--redis", redis_url],
                                  check=False, capture_output=True, text=True, timeout=60, cwd=str(ROOT), env=env)

        runs = cli("runs", "--json")
        assert json.loads(runs.stdout)[0]["status"] == "waiting"
        listing = cli("resume", handle.run_id)
        assert "review (visit 1)" in listing.stdout and "approve" in listing.stdout
        bad = cli("resume", handle.run_id, "review", "--json", '"maybe"')
        assert bad.returncode == 1 and "not one of the choices" in bad.stderr
        ok = cli("resume", handle.run_id, "review", "--json", '{"action": "reject"}')
        assert ok.returncode == 0, ok.stderr
        assert handle.result(timeout=30).status == "succeeded"
        assert count(redis_url, "discard") == 1
        twice = cli("resume", handle.run_id, "review", "--value", "approve")
        assert twice.returncode == 1 and "answered already" in twice.stderr
    finally:
        w.close()


def test_distributed_timeout_takes_the_default(redis_url: str) -> None:
    w = hitl_workers(redis_url)
    try:
        w.start(1)
        handle = DistributedExecutor(redis_url).submit(approval_bp(redis_url, timeout_s=0.5,
                                                                   default="reject"),
                                                       history=True)
        deadline = time.monotonic() + 30
        while handle.status() != "succeeded" and time.monotonic() < deadline:
            handle.wait(1)
        res = handle.result(timeout=1)
        assert res.status == "succeeded" and res.outputs["review"] == "reject"
        assert count(redis_url, "discard") == 1 and count(redis_url, "send") == 0
        assert [s.flag for s in handle.history() if s.node == "review"] == ["timeout"]
    finally:
        w.close()


def test_waiting_run_survives_a_redis_restart_with_aof() -> None:
    from flownb.distributed.server import EmbeddedRedis

    with EmbeddedRedis(appendonly=True) as srv:
        w = hitl_workers(srv.url)
        try:
            w.start(1)
            handle = DistributedExecutor(srv.url).submit(approval_bp(srv.url))
            assert handle.result(timeout=30).status == "waiting"
            srv.restart()
            again = flownb.attach(handle.run_id, redis=srv.url)
            assert again.status() == "waiting"
            again.resume("review", "approve")
            res = again.result(timeout=30)
            assert res.status == "succeeded", res.error
            assert count(srv.url, "send") == 1
        finally:
            w.close()


def test_distributed_result_resume_is_the_same_api(redis_url: str) -> None:
    w = hitl_workers(redis_url)
    try:
        w.start(1)
        res = DistributedExecutor(redis_url).submit(approval_bp(redis_url)).result(timeout=30)
        assert res.status == "waiting" and res.waiting()[0]["node"] == "review"
        done = res.resume("review", "approve")
        assert done.status == "succeeded" and "send" in done.outputs
        cancelled = DistributedExecutor(redis_url).submit(approval_bp(redis_url))
        assert cancelled.result(timeout=30).status == "waiting"
        assert cancelled.cancel() and cancelled.status() == "cancelled"
        with pytest.raises(ResumeError, match="not waiting"):
            cancelled.resume("review", "approve")
    finally:
        w.close()


def test_approval_form_buttons_and_json_box_resume_the_run() -> None:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.approval import approval_form

    res = flownb.run(approval_bp(), {"topic": "refund"})
    form = approval_form(res)
    assert [b.description for b in form.buttons] == ["approve", "reject"]
    assert "Send [polite] reply about refund?" in form.prompt.value
    form.answer_json("{not json")
    assert "not JSON" in form.status.value and form.result is None
    form.answer_json('{"action": "maybe"}')
    assert "not one of the choices" in form.status.value and form.result is None
    form.buttons[0].click()  # what a person's click does
    answered: Any = form.result
    assert answered.status == "succeeded" and "send" in answered.outputs
    assert all(b.disabled for b in form.buttons)
    with pytest.raises(flownb.FlownbError, match="not waiting"):
        approval_form(form.result)


def test_a_wait_inside_a_subflow(redis_url: str) -> None:
    reg = flownb.Registry()
    reg.add_blueprint(flownb.load({"id": "child", "nodes": [{"id": "ask", "uses": "wait"}]}))
    parent = flownb.load({"id": "parent", "nodes": [
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "child"}},
        {"id": "after", "uses": "passthrough"}], "edges": [{"source": "sub", "target": "after"}]})
    local = flownb.run(parent, registry=reg, raise_on_error=False)
    assert local.status == "failed" and "cannot park in process" in (local.error or {})["message"]
    w = hitl_workers(redis_url)
    try:
        w.start(1)
        handle = DistributedExecutor(redis_url, registry=reg).submit(parent)
        ex = DistributedExecutor(redis_url)
        deadline = time.monotonic() + 30
        while ex.store.status(f"{handle.run_id}.sub.1.0") != "waiting":
            assert time.monotonic() < deadline, "the child run never parked"
            time.sleep(0.05)
        child = ex.attach(f"{handle.run_id}.sub.1.0")
        assert child.status() == "waiting" and handle.status() == "running"
        child.resume("ask", "ok")
        res = handle.result(timeout=30)
        assert res.status == "succeeded" and res.outputs["after"] == "ok"
    finally:
        w.close()


def test_a_timeout_without_a_default_an_edge_takes_fails_clearly(redis_url: str) -> None:
    bp = approval_bp(timeout_s=5)  # no default, and no default edge: it could never end
    local = flownb.run(bp, raise_on_error=False)
    assert local.status == "failed" and (local.error or {}).get("node_id") == "review"
    assert "needs a default answer" in (local.error or {})["message"]
    w = hitl_workers(redis_url)
    try:
        w.start(1)
        res = DistributedExecutor(redis_url).submit(bp).result(timeout=30, raise_on_error=False)
        assert res.status == "failed" and "needs a default answer" in (res.error or {})["message"]
    finally:
        w.close()


def test_racing_answers_commit_once(redis_url: str) -> None:
    import threading

    w = hitl_workers(redis_url)
    try:
        w.start(1)
        handle = DistributedExecutor(redis_url).submit(approval_bp(redis_url))
        assert handle.result(timeout=30).status == "waiting"
        outcomes: list[str] = []

        def answer() -> None:
            try:
                flownb.attach(handle.run_id, redis=redis_url).resume("review", "approve")
                outcomes.append("ok")
            except ResumeError:
                outcomes.append("refused")

        threads = [threading.Thread(target=answer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["ok"] + ["refused"] * 7
        assert handle.result(timeout=30).status == "succeeded"
        assert count(redis_url, "send") == 1
    finally:
        w.close()
