"""Issue 19, medium items: answer-schema patterns (checked at lint and park, matched in linear
time on both executors) and lone surrogates (a clear FlownbError, never a raw
UnicodeEncodeError), with real Redis and a real worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import flownb
from flownb.core.answers import AnswerError
from flownb.distributed.client import DistributedExecutor, NoWorkersWarning
from flownb.core.lint import lint

from conftest import ROOT, Workers

pytestmark = pytest.mark.timeout(120)

EVIL = "^(a+)+$"  # exponential with re: 31 a's and a b took 103 s


def ask(schema: dict) -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "ask", "nodes": [
        {"id": "q", "uses": "wait", "params": {"prompt": "?", "schema": schema}},
        {"id": "after", "uses": "noop"}], "edges": [{"source": "q", "target": "after"}]})


def test_a_backtracking_pattern_answers_at_once_in_process() -> None:
    res = flownb.run(ask({"type": "string", "pattern": EVIL}), {})
    assert res.status == "waiting"
    t0 = time.monotonic()
    with pytest.raises(flownb.FlownbError, match="must match the pattern"):
        res.resume("q", "a" * 31 + "b")
    with pytest.raises(flownb.FlownbError, match="must match the pattern"):
        res.resume("q", "a" * 20000 + "b")
    assert time.monotonic() - t0 < 5
    assert res.resume("q", "aaa").status == "succeeded"


def test_a_backtracking_pattern_answers_at_once_on_a_worker(redis_url: str,
                                                            workers: Workers) -> None:
    workers.start(1)
    h = DistributedExecutor(redis_url).submit(ask({"type": "string", "pattern": EVIL}))
    deadline = time.monotonic() + 30
    while not h.waiting() and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    with pytest.raises(flownb.FlownbError, match="must match the pattern"):
        h.resume("q", "a" * 31 + "b")
    assert time.monotonic() - t0 < 5
    h.resume("q", "aa")
    assert h.result(timeout=30).outputs["q"] == "aa"


@pytest.mark.parametrize(("pattern", "why"), [
    ("(", "does not compile"), ("a{2,1}", "does not compile"), (r"(a)\1", "not supported"),
    ("(?=a)b", "not supported"), ("(?i)abc", "inline flags"), ("a{100000}", "does not compile|too large"),
    (3, "must be a string")])
def test_bad_patterns_are_refused_at_lint_and_park(pattern: object, why: str) -> None:
    bp = ask({"type": "string", "pattern": pattern})
    problems = [p for p in lint(bp) if p.code == "bad-answer-schema"]
    assert len(problems) == 1 and problems[0].severity == "error", lint(bp)
    assert problems[0].location.endswith("params.schema")
    import re
    assert re.search(why, problems[0].message), problems[0].message
    with pytest.raises(AnswerError, match="pattern"):
        flownb.wait_for("?", schema={"type": "string", "pattern": pattern})


def test_lone_surrogates_are_clear_errors(redis_url: str, workers: Workers) -> None:
    ex = DistributedExecutor(redis_url)
    bp = flownb.Blueprint.from_dict({"id": "s", "nodes": [{"id": "a", "uses": "noop"}]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoWorkersWarning)
        for call, what in [(lambda: ex.submit(bp, {"x": "a\ud800"}), r"inputs\['x'\]"),
                           (lambda: ex.submit(bp, {"x\ud800": 1}), "input names"),
                           (lambda: ex.submit(bp, {}, run_id="r\ud800"), "run id"),
                           (lambda: flownb.Blueprint.from_dict(
                               {"id": "s", "nodes": [{"id": "a\ud800", "uses": "noop"}]}),
                            "id")]:
            with pytest.raises(flownb.FlownbError, match=what):
                call()
    workers.start(1)
    h = ex.submit(ask({"type": "string"}))
    deadline = time.monotonic() + 30
    while not h.waiting() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(flownb.FlownbError, match="lone surrogate"):
        h.resume("q", "\udfff")
    assert h.waiting(), "a refused answer changed nothing"
    assert flownb.run(ask({"type": "string"}), {}).resume("q", "ok\ud800").status == "succeeded"


# -- the CLI and load_dir with hostile files -------------------------------------------------------

def _flownb(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flownb", *args], cwd=str(cwd), text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_a_non_utf8_env_file_does_not_break_the_cli(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"OPENAI_API_KEY=\xff\xfe\x00bad\n")
    (tmp_path / "bp.json").write_text(json.dumps({"id": "x", "nodes": [{"id": "a", "uses": "noop"}]}))
    p = _flownb("validate", "bp.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "ok (1 nodes" in p.stdout and "Traceback" not in p.stderr
    assert "ignoring" in p.stderr and ".env" in p.stderr


def test_deeply_nested_json_on_the_cli_is_a_clear_error(tmp_path: Path) -> None:
    deep = "[" * 20000 + "]" * 20000
    p = _flownb("resume", "some-run", "q", "--json", deep, cwd=tmp_path)
    assert p.returncode == 1 and "nested too deeply" in p.stderr and "Traceback" not in p.stderr
    p = _flownb("run", "noop", "--inputs", deep, cwd=tmp_path)
    assert "Traceback" not in p.stderr and "nested too deeply" in p.stderr, p.stderr


def test_load_dir_never_parses_a_file_over_the_size_limit(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNB_MAX_BLUEPRINT_BYTES", "2000")
    (tmp_path / "main.json").write_text(json.dumps({"id": "m", "nodes": [{"id": "a", "uses": "noop"}]}))
    (tmp_path / "data.json").write_text("[" + "1," * 5000)  # big, and not even JSON
    lib = flownb.load_dir(tmp_path, registry=flownb.Registry())
    assert list(lib) == ["m"] and lib.skipped == [str(tmp_path / "data.json")]
    (tmp_path / "huge.json").write_text(json.dumps({"id": "h", "nodes": [
        {"id": f"n{i}", "uses": "noop"} for i in range(200)]}))
    with pytest.raises(flownb.FlownbError, match="FLOWNB_MAX_BLUEPRINT_BYTES"):
        flownb.load_dir(tmp_path, registry=flownb.Registry())


def test_runs_wait_for_a_capable_worker_that_is_starting(redis_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker lacking the node's module holds the item back for a grace period instead of
    failing the run while the capable worker is still starting."""
    import redis as redis_mod
    import uuid

    monkeypatch.setenv("FLOWNB_CAPABILITY_GRACE_S", "30")
    lacking = Workers(redis_url)  # no harden_nodes
    capable = Workers(redis_url, modules=(*Workers.MODULES, "harden_nodes"))
    capable._n = 100
    key = f"cap:{uuid.uuid4().hex}"
    bp = flownb.Blueprint.from_dict({"id": "cap", "nodes": [
        {"id": "a", "uses": "harden-count", "params": {"redis": redis_url, "count": key}}]})
    try:
        lacking.start(1)
        ex = DistributedExecutor(redis_url)
        handles = [ex.submit(bp) for _ in range(8)]
        time.sleep(1.5)  # the lacking worker has seen them; nobody can run them yet
        assert all(h.status() == "running" for h in handles)
        capable.start(1)
        results = [h.result(timeout=60, raise_on_error=False) for h in handles]
    finally:
        lacking.close()
        capable.close()
    assert [r.status for r in results] == ["succeeded"] * 8, [r.error for r in results][:2]
    assert int(redis_mod.Redis.from_url(redis_url).get(key) or 0) == 8


def _doubling_loop() -> flownb.Blueprint:
    loop = {"max_visits": 100}
    return flownb.Blueprint.from_dict({"id": "amp", "nodes": [
        {"id": "s", "uses": "passthrough"}, {"id": "a", "uses": "passthrough", "config": loop},
        {"id": "b", "uses": "passthrough", "config": loop},
        {"id": "c", "uses": "passthrough", "config": loop}], "edges": [
        {"source": "s", "target": "a", "transform": "input.x"},
        {"source": "a", "target": "b", "transform": "input + input"},
        {"source": "b", "target": "c", "transform": "input + input"},
        {"source": "c", "target": "a", "transform": "input + input"}]})


def test_a_doubling_transform_loop_stops_at_the_size_limit(redis_url: str,
                                                           workers: Workers) -> None:
    import redis as redis_mod

    t0 = time.monotonic()
    res = flownb.run(_doubling_loop(), {"x": "y" * 1000}, raise_on_error=False)
    assert time.monotonic() - t0 < 10
    assert res.status == "failed" and res.error["type"] == "ConditionError"
    assert "more than the limit of 10,000,000" in res.error["message"]
    workers.start(1)
    r = redis_mod.Redis.from_url(redis_url)
    out = DistributedExecutor(redis_url).run(_doubling_loop(), {"x": "y" * 1000}, timeout=60,
                                             raise_on_error=False)
    assert out.status == "failed" and "more than the limit" in out.error["message"]
    assert int(r.info("memory")["used_memory"]) < 200 * 2**20  # was ~880 MB


def test_late_and_huge_answers_are_refused_on_redis(redis_url: str) -> None:
    from flownb.distributed.waiting import MAX_ANSWER_CHARS

    ws = Workers(redis_url)
    ex = DistributedExecutor(redis_url)
    bp = flownb.Blueprint.from_dict({"id": "late", "nodes": [
        {"id": "q", "uses": "wait", "params": {"prompt": "?", "timeout_s": 6.0,
                                               "default": "d"}}]})
    try:
        ws.start(1)
        big = ex.submit(ask({"type": "string"}))
        late = ex.submit(bp)
        deadline = time.monotonic() + 30
        while not (big.waiting() and late.waiting()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        ws.close()  # no reaper from here on: only the answer's own check can refuse it
    with pytest.raises(flownb.FlownbError, match="more than the 16,777,216"):
        big.resume("q", "x" * (MAX_ANSWER_CHARS + 1))
    assert big.waiting(), "a refused answer changed nothing"
    [row] = late.waiting()
    time.sleep(max(0.0, row["deadline"] - time.time()) + 0.3)
    with pytest.raises(flownb.FlownbError, match="came after timeout_s=6.0"):
        late.resume("q", "too late")
    assert late.waiting()


def test_resume_reads_the_answer_from_stdin(redis_url: str, workers: Workers) -> None:
    """Issue 19, low item: ``flownb resume RUN NODE --json -`` (and ``--value -``) read stdin."""
    workers.start(1)
    h = DistributedExecutor(redis_url).submit(ask({"type": "object"}))
    deadline = time.monotonic() + 30
    while not h.waiting() and time.monotonic() < deadline:
        time.sleep(0.05)
    p = subprocess.run([sys.executable, "-m", "flownb", "resume", h.run_id, "q", "--json", "-",
                        "--redis", redis_url], input='{"text": "from a pipe"}', text=True,
                       capture_output=True, cwd=str(ROOT), timeout=60)
    assert p.returncode == 0, p.stderr
    assert h.result(timeout=30).outputs["q"] == {"text": "from a pipe"}
