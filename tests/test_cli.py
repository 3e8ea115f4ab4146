"""The ``flownb`` command line, run as a subprocess against a real Redis and real workers."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import flownb
from flownb.cli import build_parser
from flownb.distributed.client import DistributedExecutor

from conftest import ROOT, TESTS_DIR, Workers

NO_REDIS_ENV = {k: v for k, v in os.environ.items() if k not in ("FLOWNB_REDIS_URL", "REDIS_URL")}


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | str = ROOT,
        timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flownb", *args], capture_output=True, text=True,
                          env=env if env is not None else NO_REDIS_ENV, cwd=str(cwd),
                          timeout=timeout)


def write_bp(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(json.dumps(spec))
    return path


EMIT = {"id": "cli-emit", "nodes": [{"id": "e", "uses": "t-emit", "params": {"count": 2}},
                                    {"id": "m", "uses": "dist-mark"}],
        "edges": [{"source": "e", "target": "m"}]}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


# -- without Redis -----------------------------------------------------------------------------------

def test_version() -> None:
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"flownb {flownb.__version__}"


def test_every_option_has_help() -> None:
    missing = [f"{name} {a.option_strings or a.dest}" for name, sp in subcommands().items()
               for a in sp._actions if not a.help and not isinstance(a, argparse._HelpAction)]
    assert not missing, f"options without help text: {missing}"


def test_duration_options_say_their_unit_and_keep_the_old_spelling() -> None:
    p = build_parser()
    for new, old, dest in (("--lease-ttl-s", "--lease-ttl", "lease_ttl"),
                           ("--reap-interval-s", "--reap-interval", "reap_interval"),
                           ("--result-ttl-s", "--result-ttl", "result_ttl")):
        assert getattr(p.parse_args(["worker", new, "3"]), dest) == 3
        assert getattr(p.parse_args(["worker", old, "4"]), dest) == 4
    assert p.parse_args(["run", "f.json", "--timeout-s", "5"]).timeout == 5
    assert p.parse_args(["run", "f.json", "--timeout", "6"]).timeout == 6


@pytest.mark.parametrize("args", [["runs"], ["events", "abc"], ["cancel", "abc"], ["workers"]])
def test_inspection_without_redis_fails_with_a_message(args: list[str]) -> None:
    """No private empty server that would answer "no runs": a clear error naming the fix."""
    out = cli(*args)
    assert out.returncode == 1, out.stdout
    assert f"'flownb {args[0]}'" in out.stderr and "--redis" in out.stderr
    assert "FLOWNB_REDIS_URL" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_validate_import_sees_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "my_cli_nodes.py").write_text(
        "import flownb\n\n@flownb.node('my-cli-node')\ndef f(ctx):\n    return 1\n")
    bp = write_bp(tmp_path / "bp.json", {"id": "v", "nodes": [{"id": "a", "uses": "my-cli-node"}]})
    out = cli("validate", str(bp), "--import", "my_cli_nodes", "--strict", cwd=tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "ok (1 nodes" in out.stdout
    bad = write_bp(tmp_path / "bad.json", {"id": "v", "nodes": [{"id": "a", "uses": "nope"}]})
    out = cli("validate", str(bad), "--import", "my_cli_nodes", cwd=tmp_path)
    assert out.returncode == 1 and "nope" in out.stdout


def test_run_in_process_prints_the_failure(tmp_path: Path) -> None:
    bp = write_bp(tmp_path / "bp.json", {"id": "f", "nodes": [{"id": "a", "uses": "t-fail"}]})
    out = cli("run", str(bp), "--import", "scenario_nodes", cwd=TESTS_DIR)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["status"] == "failed" and doc["error"]["node_id"] == "a"


# -- against a real Redis and real workers ----------------------------------------------------------

def test_run_honours_flownb_redis_url(redis_url: str, workers: Workers, tmp_path: Path) -> None:
    workers.start(1)
    bp = write_bp(tmp_path / "bp.json", EMIT)
    env = {**NO_REDIS_ENV, "FLOWNB_REDIS_URL": redis_url}
    out = cli("run", str(bp), "--timeout-s", "60", env=env, cwd=TESTS_DIR)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "succeeded"
    assert f"submitted run {doc['run_id']}" in out.stderr
    ex = DistributedExecutor(redis_url)
    assert ex.store.meta(doc["run_id"])["status"] == "succeeded"  # it ran on the workers
    local = cli("run", str(bp), "--in-process", "--import", "scenario_nodes", "--import",
                "dist_nodes", env=env, cwd=TESTS_DIR)
    assert local.returncode == 0, local.stderr
    assert not ex.store.meta(json.loads(local.stdout)["run_id"])  # --in-process: not on Redis


APPROVE = {"id": "cli-approve", "nodes": [
    {"id": "draft", "uses": "passthrough"},
    {"id": "review", "uses": "approval", "params": {"prompt": "Send it?"}},
    {"id": "send", "uses": "passthrough"}, {"id": "drop", "uses": "passthrough"}],
    "edges": [{"source": "draft", "target": "review"},
              {"source": "review", "target": "send", "action": "approve"},
              {"source": "review", "target": "drop", "action": "reject"}]}


def test_run_of_a_waiting_run_says_how_to_resume_and_exits_3(redis_url: str, workers: Workers,
                                                             tmp_path: Path) -> None:
    import shlex

    from flownb.cli.resume import EXIT_WAITING

    bp = write_bp(tmp_path / "bp.json", APPROVE)
    local = cli("run", str(bp))
    assert local.returncode == EXIT_WAITING == 3, local.stderr
    assert json.loads(local.stdout)["status"] == "waiting"
    assert "waiting: review (visit 1): Send it?" in local.stderr and "in process" in local.stderr
    workers.start(1)
    env = {**NO_REDIS_ENV, "FLOWNB_REDIS_URL": redis_url}
    out = cli("run", str(bp), "--timeout-s", "60", env=env)
    assert out.returncode == 3, out.stderr
    run_id = json.loads(out.stdout)["run_id"]
    [cmd] = [ln.split("resume with: ", 1)[1] for ln in out.stderr.splitlines() if "resume with:" in ln]
    assert cmd == f"flownb resume {run_id} review --json '\"approve\"'"
    done = cli(*shlex.split(cmd)[1:], env=env)  # the printed command, as a user pastes it
    assert done.returncode == 0, done.stderr
    ex = DistributedExecutor(redis_url)
    assert ex.attach(run_id).result(timeout=30).outputs["send"] is not None


def test_runs_events_and_workers(redis_url: str, workers: Workers, tmp_path: Path) -> None:
    workers.start(2)
    ex = DistributedExecutor(redis_url)
    res = ex.run(EMIT, {"topic": "x"}, timeout=60)
    r = ("--redis", redis_url)

    runs = cli("runs", *r)
    assert runs.returncode == 0 and res.run_id in runs.stdout and "succeeded" in runs.stdout
    rows = json.loads(cli("runs", "--json", *r).stdout)
    row = next(x for x in rows if x["run_id"] == res.run_id)
    assert isinstance(row["created_at"], float) and isinstance(row["finished_at"], float)
    assert isinstance(row["duration_s"], float) and row["duration_s"] >= 0
    assert row["input_keys"] == ["topic"] and isinstance(row["ttl"], int)
    assert row["status"] == "succeeded" and row["blueprint_id"] == "cli-emit"

    text = cli("events", res.run_id, *r).stdout
    assert 'custom e progress {"step":1,"of":2}' in text, text  # name and data, not just "custom"
    lines = [json.loads(x) for x in cli("events", res.run_id, "--json", *r).stdout.splitlines()]
    assert lines[0]["type"] == "run_started" and lines[-1]["type"] == "run_finished"
    custom = [x for x in lines if x["type"] == "custom"]
    assert [x["data"] for x in custom] == [{"name": "progress", "step": 1, "of": 2},
                                           {"name": "progress", "step": 2, "of": 2}]
    assert all(x["run_id"] == res.run_id and isinstance(x["ts"], float) for x in lines)

    info = cli("workers", *r)
    assert info.returncode == 0 and "2 live worker(s)" in info.stdout
    assert "flownb" in info.stdout and "queued" in info.stdout
    doc = json.loads(cli("workers", "--json", *r).stdout)
    assert len([w for w in doc["workers"] if w["state"] != "stale"]) == 2
    assert {w["name"] for w in doc["workers"]} == {f"test-w{i}-{os.getpid()}" for i in (1, 2)}
    assert all(isinstance(w["pid"], int) and w["jobs"] >= 0 for w in doc["workers"])
    q = next(x for x in doc["queues"] if x["queue"] == "flownb")
    assert q["queued"] == 0 and isinstance(q["failed"], int)


def test_cancel_and_follow(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    nodes = [{"id": f"n{i}", "uses": "dist-slow", "params": {"seconds": 0.3}} for i in range(20)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(19)]
    handle = ex.submit({"id": "cli-cancel", "nodes": nodes, "edges": edges})
    follower = subprocess.Popen([sys.executable, "-m", "flownb", "events", handle.run_id,
                                 "--follow", "--redis", redis_url], stdout=subprocess.PIPE,
                                text=True, env=NO_REDIS_ENV)
    try:
        time.sleep(0.5)
        out = cli("cancel", handle.run_id, "--redis", redis_url)
        assert out.returncode == 0 and out.stdout.strip() == "cancelled"
        stream, _ = follower.communicate(timeout=60)  # --follow ends with the run
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(5)
    assert "run_started" in stream and "run_cancelled" in stream.splitlines()[-1]
    assert handle.result(timeout=10, raise_on_error=False).status == "cancelled"
    again = cli("cancel", handle.run_id, "--redis", redis_url)
    assert again.stdout.strip() == "not running (cancelled)"
    missing = cli("events", "no-such-run", "--redis", redis_url)
    assert missing.returncode == 1 and "no run 'no-such-run'" in missing.stderr


def _run_cli_and_interrupt(redis_url: str, bp_file: Path, marker: Path,
                           *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``flownb run`` on Redis, wait until the slow node is running, send SIGINT."""
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "flownb", "run", str(bp_file), "--redis",
                             redis_url, *extra], cwd=str(ROOT), env=NO_REDIS_ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, "the slow node never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc, err


def test_ctrl_c_on_run_cancels_the_distributed_run(redis_url: str, workers: Workers,
                                                   tmp_path: Path) -> None:
    workers.start(1)
    marker = tmp_path / "marks"
    bp_file = write_bp(tmp_path / "slow.json", {
        "id": "cli-slow", "nodes": [
            {"id": "slow", "uses": "dist-slow", "params": {"seconds": 2, "marker": str(marker)}},
            {"id": "after", "uses": "dist-mark", "params": {"marker": str(marker)}}],
        "edges": [{"source": "slow", "target": "after"}]})
    proc, err = _run_cli_and_interrupt(redis_url, bp_file, marker)
    assert proc.returncode == 130, err
    assert "cancelled" in err and "Traceback" not in err
    run_id = err.split("submitted run ")[1].split()[0]
    ex = DistributedExecutor(redis_url)
    res = ex.attach(run_id).result(timeout=30, raise_on_error=False)
    assert res.status == "cancelled"
    time.sleep(0.5)
    assert [ln.split()[0] for ln in marker.read_text().splitlines()] == ["slow"]  # 'after' never ran


def test_ctrl_c_with_keep_running_leaves_the_run_going(redis_url: str, workers: Workers,
                                                      tmp_path: Path) -> None:
    workers.start(1)
    marker = tmp_path / "marks"
    bp_file = write_bp(tmp_path / "slow.json", {
        "id": "cli-slow2", "nodes": [
            {"id": "slow", "uses": "dist-slow", "params": {"seconds": 1, "marker": str(marker)}}],
        "edges": []})
    proc, err = _run_cli_and_interrupt(redis_url, bp_file, marker, "--keep-running")
    assert proc.returncode == 130 and "goes on" in err, err
    run_id = err.split("submitted run ")[1].split()[0]
    res = DistributedExecutor(redis_url).attach(run_id).result(timeout=30)
    assert res.status == "succeeded"
