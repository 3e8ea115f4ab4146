"""Issue 19, item 4: a job hash written by an attacker with write access to Redis never makes a
flownb worker import or call a name it holds — through RQ's abandoned-job cleanup (failure
callback), success/stopped callbacks, webhooks, dependents, or the job function — at start
(a real ``flownb worker`` process) and at each maintenance round."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.distributed.worker import make_worker

from conftest import Workers

pytestmark = pytest.mark.timeout(120)

EVIL = '''
import pathlib
pathlib.Path(__file__).with_suffix(".imported").touch()

def touch(*args, **kwargs):
    pathlib.Path(__file__).with_suffix(".called").touch()
'''


@pytest.fixture
def evil(tmp_path: Path) -> tuple[str, Path]:
    """An importable module whose import and whose call each leave a file."""
    name = f"evil_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(EVIL)
    return name, tmp_path


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", hits
    srv.shutdown()


def plant(r: redis.Redis, module: str, hook: str, queue: str = "flownb") -> list[str]:
    """What an attacker writes: abandoned 'started' jobs naming their callable everywhere."""
    target = f"{module}.touch"
    ids = []
    for i in range(2):
        jid = f"evil-{uuid.uuid4().hex[:8]}"
        ids.append(jid)
        r.hset(f"rq:job:{jid}", mapping={
            "data": json.dumps([target, None, [], {}]), "status": "started", "origin": queue,
            "created_at": "2026-01-01T00:00:00.000000Z",
            "started_at": "2026-01-01T00:00:00.000000Z", "description": "evil",
            "success_callback_name": target, "failure_callback_name": target,
            "stopped_callback_name": target, "timeout": "180",
            "webhooks": json.dumps([{"url": hook, "job_status": "failed", "method": "POST"}])})
        r.zadd(f"rq:wip:{queue}", {f"{jid}:exec{i}": 1})  # expired long ago
    # a dependent waiting in another queue, which RQ would move there on the failure
    dep = f"evil-dep-{uuid.uuid4().hex[:8]}"
    r.hset(f"rq:job:{dep}", mapping={
        "data": json.dumps([target, None, [], {}]), "status": "deferred", "origin": "other",
        "created_at": "2026-01-01T00:00:00.000000Z", "dependency_ids": json.dumps([ids[0]])})
    r.sadd(f"rq:job:{ids[0]}:dependents", dep)
    r.zadd("rq:deferred:other", {dep: 1})
    # and one in the ready registry of our queue
    r.hset(f"rq:job:{dep}-r", mapping={
        "data": json.dumps([target, None, [], {}]), "status": "ready_to_enqueue",
        "origin": queue, "created_at": "2026-01-01T00:00:00.000000Z"})
    r.zadd(f"rq:ready:{queue}", {f"{dep}-r": 1})
    return ids


def assert_untouched(r: redis.Redis, module: str, where: Path, hits: list[str]) -> None:
    assert not (where / f"{module}.imported").exists(), "the worker imported the attacker's module"
    assert not (where / f"{module}.called").exists(), "the worker called the attacker's function"
    assert hits == [], "the worker sent the attacker's webhook"
    assert r.llen("rq:queue:other") == 0, "the worker enqueued the attacker's dependent"


def test_worker_start_never_calls_names_from_crafted_job_hashes(
        redis_url: str, evil: tuple[str, Path], hook_server: tuple[str, list[str]]) -> None:
    module, where = evil
    hook, hits = hook_server
    r = redis.Redis.from_url(redis_url)
    plant(r, module, hook)
    ws = Workers(redis_url, args=("--path", str(where)))
    try:
        ws.start(1)
        deadline = time.monotonic() + 20
        while r.zcard("rq:wip:flownb") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.zcard("rq:wip:flownb") == 0, "the worker's start-up maintenance did not run"
        assert r.zcard("rq:ready:flownb") == 0
        # the module is importable there: a job naming it is refused, not run
        r.hset("rq:job:evil-direct", mapping={
            "data": json.dumps([f"{module}.touch", None, [], {}]), "status": "queued",
            "origin": "flownb", "created_at": "2026-01-01T00:00:00.000000Z",
            "failure_callback_name": f"{module}.touch"})
        r.rpush("rq:queue:flownb", "evil-direct")
        ok = DistributedExecutor(redis_url).run(flownb.Blueprint.from_dict(
            {"id": "ok", "nodes": [{"id": "a", "uses": "dist-mark"}]}), timeout=30)
        assert ok.status == "succeeded"
        deadline = time.monotonic() + 10
        while r.llen("rq:queue:flownb") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert_untouched(r, module, where, hits)
        assert all(p.poll() is None for p in ws.procs)
    finally:
        ws.close()


def test_maintenance_rounds_never_call_names_from_crafted_job_hashes(
        redis_url: str, evil: tuple[str, Path], hook_server: tuple[str, list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    module, where = evil
    hook, hits = hook_server
    monkeypatch.syspath_prepend(str(where))  # importable here: only a refusal keeps it out
    r = redis.Redis.from_url(redis_url)
    worker = make_worker(r, name=f"guard-{uuid.uuid4().hex[:6]}", liveness_process=False)
    try:
        for _ in range(3):  # what RQ's loop calls every maintenance_interval
            plant(r, module, hook)
            worker.run_maintenance_tasks()
            assert r.zcard("rq:wip:flownb") == 0 and r.zcard("rq:ready:flownb") == 0
        assert_untouched(r, module, where, hits)
    finally:
        worker.flownb.stop()
