"""``flownb`` as a shell tool: pipes, stdin, ``--json``, timeouts, Ctrl-C, the progress line.

Run as subprocesses (and through a pseudo-terminal for the progress line), against the tests'
real Redis and real ``flownb worker`` processes where a worker is involved.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, TESTS_DIR, Workers
from test_cli import APPROVE, NO_REDIS_ENV, cli, write_bp

from flownb.distributed.client import DistributedExecutor

CHAIN = {"id": "cli-chain", "nodes": [{"id": "a", "uses": "passthrough"},
                                      {"id": "b", "uses": "passthrough"}],
         "edges": [{"source": "a", "target": "b"}]}
SLEEPY = {"id": "cli-sleepy", "nodes": [{"id": "nap", "uses": "sleep", "params": {"seconds": 30}}]}


def slow_chain(n: int, seconds: float) -> dict[str, object]:
    nodes = [{"id": f"s{i}", "uses": "dist-slow", "params": {"seconds": seconds}} for i in range(n)]
    edges = [{"source": f"s{i}", "target": f"s{i + 1}"} for i in range(n - 1)]
    return {"id": "cli-slow-chain", "nodes": nodes, "edges": edges}


def popen(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flownb", *args], cwd=str(ROOT), text=True,
                            env=env if env is not None else NO_REDIS_ENV, **kw)  # type: ignore[call-overload]


# -- siblings -----------------------------------------------------------------------------------

def test_a_broken_unrelated_file_beside_the_target_does_not_stop_the_run(tmp_path: Path) -> None:
    bp = write_bp(tmp_path / "main.json", CHAIN)
    (tmp_path / "broken.yaml").write_text("id: x\nnodes: [\n")  # a half-written draft
    out = cli("run", str(bp), "--inputs", '{"v": 1}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "succeeded"
    assert "broken.yaml" not in out.stderr  # not even read: nothing needed it


def test_a_broken_sibling_is_named_when_siblings_are_read_for_a_subflow(tmp_path: Path) -> None:
    write_bp(tmp_path / "child.json", {"id": "child", "nodes": [{"id": "c", "uses": "passthrough"}]})
    bp = write_bp(tmp_path / "main.json", {"id": "parent", "nodes": [
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "child"}}]})
    (tmp_path / "draft.json").write_text('{"id": "draft", "nodes": [')
    out = cli("run", str(bp), "--inputs", '{"v": 1}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == {"v": 1}
    [warning] = [ln for ln in out.stderr.splitlines() if "warning" in ln]
    assert "draft.json" in warning and "invalid JSON" in warning, out.stderr
    assert "Traceback" not in out.stderr
    (tmp_path / "child.json").unlink()  # the subflow itself missing: the run's error names it
    gone = cli("run", str(bp))
    assert gone.returncode == 1 and "'child'" in gone.stdout + gone.stderr
    assert "draft.json" in gone.stderr


# -- pipes and stdin ----------------------------------------------------------------------------

def test_head_closing_the_pipe_gives_no_traceback(tmp_path: Path) -> None:
    """More than a pipe buffer of output from each command, and a reader that stops at once."""
    bad = write_bp(tmp_path / "bad.json", {"id": "bad", "nodes": [
        {"id": f"n{i}", "uses": "nope"} for i in range(3000)]})  # 3000 problem lines
    bp = write_bp(tmp_path / "bp.json", CHAIN)
    (tmp_path / "in.json").write_text(json.dumps({"v": list(range(50_000))}))  # a long output
    for args in (["validate", str(bad), "--strict"], ["validate", str(bad), "--strict", "--json"],
                 ["run", str(bp), "--inputs", str(tmp_path / "in.json")]):
        proc = popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # what `| head -1` does
        err = proc.stderr.read()
        assert proc.wait(60) == 141, err
        assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_reader_gone_before_a_short_output_gives_no_traceback(tmp_path: Path) -> None:
    """The whole output still sits in Python's buffer when the reader is already gone."""
    bp = write_bp(tmp_path / "bp.json", CHAIN)
    proc = popen("validate", str(bp), "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| true`: nobody reads
    err = proc.stderr.read()
    assert proc.wait(60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


def test_shell_pipe_into_head(tmp_path: Path) -> None:
    bad = write_bp(tmp_path / "bad.json", {"id": "bad", "nodes": [
        {"id": f"n{i}", "uses": "nope"} for i in range(3000)]})
    out = subprocess.run(f"{sys.executable} -m flownb validate {bad} --strict --json | head -2", shell=True,
                         capture_output=True, text=True, env=NO_REDIS_ENV, timeout=60)
    assert out.stdout.splitlines()[0] == "[" and out.stderr == "", out.stderr


def test_inputs_and_validate_read_stdin(tmp_path: Path) -> None:
    bp = write_bp(tmp_path / "bp.json", CHAIN)
    out = subprocess.run([sys.executable, "-m", "flownb", "run", str(bp), "--inputs", "-"],
                         input='{"from": "stdin"}', capture_output=True, text=True,
                         env=NO_REDIS_ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == {"from": "stdin"}
    yaml_bp = "id: piped\nnodes:\n  - {id: a, uses: passthrough}\n"
    ok = subprocess.run([sys.executable, "-m", "flownb", "validate", "-"], input=yaml_bp,
                        capture_output=True, text=True, env=NO_REDIS_ENV, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "<stdin>: ok (1 nodes, 0 edges)", ok.stderr
    bad = subprocess.run([sys.executable, "-m", "flownb", "validate", "-", "--strict"],
                         input='{"id": "p", "nodes": [{"id": "a", "uses": "nope"}]}',
                         capture_output=True, text=True, env=NO_REDIS_ENV, timeout=60)
    assert bad.returncode == 1 and "<stdin>" in bad.stdout and "nope" in bad.stdout
    junk = subprocess.run([sys.executable, "-m", "flownb", "run", str(bp), "--inputs", "-"],
                          input="[1, 2]", capture_output=True, text=True, env=NO_REDIS_ENV,
                          timeout=60)
    assert junk.returncode == 1 and "--inputs must be a JSON object" in junk.stderr


def test_validate_json(tmp_path: Path) -> None:
    good = write_bp(tmp_path / "good.json", CHAIN)
    bad = write_bp(tmp_path / "bad.json", {"id": "b", "nodes": [{"id": "a", "uses": "nope"}]})
    (tmp_path / "torn.json").write_text("{")
    out = cli("validate", str(good), str(bad), str(tmp_path / "torn.json"), "--json", "--strict")
    assert out.returncode == 1 and out.stderr == ""
    doc = json.loads(out.stdout)
    assert [d["path"] for d in doc] == [str(good), str(bad), str(tmp_path / "torn.json")]
    assert doc[0]["ok"] is True and doc[0]["nodes"] == 2 and doc[0]["problems"] == []
    assert doc[1]["ok"] is False
    assert any(p["severity"] == "error" and p["node_id"] in (None, "a") and "nope" in p["message"]
               for p in doc[1]["problems"])
    assert doc[2]["ok"] is False and "invalid JSON" in doc[2]["error"]


# -- timeout and Ctrl-C in process --------------------------------------------------------------

def test_timeout_in_process_exits_124(tmp_path: Path) -> None:
    bp = write_bp(tmp_path / "sleepy.json", SLEEPY)
    t0 = time.monotonic()
    out = cli("run", str(bp), "--timeout-s", "1")
    assert time.monotonic() - t0 < 20
    assert out.returncode == 124, out.stderr
    assert json.loads(out.stdout)["status"] == "cancelled"
    assert "timeout" in out.stderr and "after 1.0s" in out.stderr and "Traceback" not in out.stderr


def test_ctrl_c_in_process_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    bp = write_bp(tmp_path / "sleepy.json", SLEEPY)
    proc = popen("run", str(bp), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(3)  # import, load, and into the 30 s sleep node
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: run ") and "cancelled" in lines[0]
    assert out == ""


# -- on Redis and workers -----------------------------------------------------------------------

def test_timeout_on_redis_exits_124_and_the_run_goes_on(redis_url: str, workers: Workers,
                                                        tmp_path: Path) -> None:
    workers.start(1)
    bp = write_bp(tmp_path / "slow.json", slow_chain(1, 3))
    out = cli("run", str(bp), "--redis", redis_url, "--timeout-s", "0.5")
    assert out.returncode == 124, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "running"
    assert f"flownb cancel {doc['run_id']}" in out.stderr and "Traceback" not in out.stderr
    res = DistributedExecutor(redis_url).attach(doc["run_id"]).result(timeout=30)
    assert res.status == "succeeded"  # it went on, as said


def test_cancel_and_resume_json(redis_url: str, workers: Workers, tmp_path: Path) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    r = ("--redis", redis_url)
    handle = ex.submit(APPROVE)
    assert handle.result(timeout=30, raise_on_error=False).status == "waiting"
    listed = cli("resume", handle.run_id, *r, "--json")
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert doc["status"] == "waiting" and [w["node"] for w in doc["waiting"]] == ["review"]
    done = cli("resume", handle.run_id, "review", "--value", "approve", *r, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resumed"] == "review"
    assert handle.result(timeout=30).status == "succeeded"
    answered = cli("resume", handle.run_id, "review", "--json", '"approve"', *r)  # the answer form
    assert answered.returncode != 0 or "resumed" not in answered.stdout  # nothing waits any more
    slow = ex.submit(slow_chain(10, 0.5))
    c = cli("cancel", slow.run_id, "--json", *r)
    assert c.returncode == 0, c.stderr
    assert json.loads(c.stdout) == {"run_id": slow.run_id, "cancelled": True,
                                    "status": "cancelled"}
    again = json.loads(cli("cancel", slow.run_id, "--json", *r).stdout)
    assert again["cancelled"] is False and again["status"] == "cancelled"


def _read_all(fd: int, proc: subprocess.Popen[str], timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the slave side closed: the process is gone
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def test_progress_line_on_a_tty_and_none_on_a_pipe(redis_url: str, workers: Workers,
                                                   tmp_path: Path) -> None:
    workers.start(1)
    bp = write_bp(tmp_path / "slow.json", slow_chain(4, 0.8))
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "flownb", "run", str(bp), "--redis", redis_url],
                            cwd=str(TESTS_DIR), text=True, env=NO_REDIS_ENV,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    try:
        err = _read_all(master, proc, 60).decode(errors="replace")
        out, _ = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["status"] == "succeeded"  # stdout: the JSON only
    run_id = json.loads(out)["run_id"]
    frames = [f.removeprefix("\x1b[K") for f in err.split("\r")]  # each redraw erases the line
    frames = [f for f in frames if f.startswith(f"run {run_id}: ")]
    assert frames, repr(err)
    assert any("running s" in f for f in frames) and any("nodes done" in f for f in frames)
    assert err.endswith("\r\x1b[K"), repr(err[-80:])  # erased before the result is printed
    piped = cli("run", str(bp), "--redis", redis_url, cwd=TESTS_DIR)
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stderr and "nodes done" not in piped.stderr
    assert piped.stderr.strip().startswith("submitted run")
