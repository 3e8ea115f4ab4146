"""What a user of the distributed client sees when things go wrong: Redis restarted or down, a
port that never answers, no worker on the queue, node types a worker cannot import, bad
settings. Real Redis servers (private ones where a test restarts or stops them), real workers."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, Workers

import flownb
from flownb.distributed.client import DistributedExecutor, NoWorkersWarning
from flownb.distributed.server import EmbeddedRedis
from flownb.distributed.store import StoreSettings
from flownb.core.errors import ExecutorError, RunTimeout

pytestmark = pytest.mark.timeout(120)


def one_node(uses: str = "noop", bp_id: str = "ce") -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": bp_id, "nodes": [{"id": "a", "uses": uses}]})


@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    srv = EmbeddedRedis(appendonly=False).start()
    yield srv
    srv.stop()


def test_follow_and_result_when_redis_restarted_without_persistence(
        private_redis: EmbeddedRedis) -> None:
    ex = DistributedExecutor(private_redis.url)
    with pytest.warns(NoWorkersWarning):
        handle = ex.submit(one_node())           # no worker: the run stays running
    got: list[BaseException] = []

    def follow() -> None:
        try:
            for _ in handle.events(follow=True):
                pass
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            got.append(exc)

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    time.sleep(0.5)
    private_redis.restart()                      # no appendonly: everything is gone
    t.join(20)
    assert not t.is_alive(), "events(follow=True) still blocked after the run's data vanished"
    assert len(got) == 1 and isinstance(got[0], ExecutorError), got
    assert "the run's data is gone from Redis (restarted without persistence, or expired)" in str(got[0])
    with pytest.raises(ExecutorError, match=r"the run's data is gone from Redis \(restarted"):
        handle.result(timeout=10)
    assert handle.status() == "gone"


def test_waiting_result_with_redis_down_is_a_flownb_error(private_redis: EmbeddedRedis) -> None:
    ex = DistributedExecutor(private_redis.url)
    with pytest.warns(NoWorkersWarning):
        handle = ex.submit(one_node())
    got: list[BaseException] = []

    def wait() -> None:
        try:
            handle.result()
        except BaseException as exc:  # noqa: BLE001
            got.append(exc)

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    time.sleep(0.5)
    private_redis.stop()
    t.join(30)
    assert not t.is_alive()
    assert len(got) == 1 and type(got[0]) is ExecutorError, got
    assert "is unreachable" in str(got[0]) and "waiting for the run" in str(got[0])
    assert handle.run_id in str(got[0])
    # reprs never do I/O: they show the last known status
    assert repr(handle) == f"<RunHandle {handle.run_id} running (last seen; .status() to refresh)>"
    assert "running" in handle._repr_html_()
    for call in (handle.status, handle.cancel, lambda: list(handle.events()), ex.runs):
        with pytest.raises(ExecutorError, match="is unreachable"):
            call()


def test_repr_of_a_handle_and_a_blueprint(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(one_node())
    handle.result(timeout=30)
    assert repr(handle) == f"<RunHandle {handle.run_id} succeeded>"
    attached = DistributedExecutor(redis_url).attach(handle.run_id)
    assert repr(attached) == f"<RunHandle {handle.run_id} succeeded>"
    fresh = type(handle)(ex, "never-read")
    assert repr(fresh) == "<RunHandle never-read status unknown>"
    bp = flownb.Blueprint.from_dict({"id": "r", "nodes": [{"id": "a", "uses": "noop"},
                                                           {"id": "b", "uses": "noop"}],
                                     "edges": [{"source": "a", "target": "b"}]})
    assert repr(bp) == f"<Blueprint 'r': 2 nodes, 1 edges, digest {bp.digest}>"


def test_no_worker_on_the_queue_warns_at_submit_and_in_run_timeout(redis_url: str,
                                                                    workers: Workers) -> None:
    workers.start(1)                              # serves queue 'flownb'
    ex = DistributedExecutor(redis_url, queue_name="flownb-typo")
    with pytest.warns(NoWorkersWarning, match="0 live workers serve queue 'flownb-typo'") as rec:
        handle = ex.submit(one_node())
    assert "flownb worker --redis URL --queue flownb-typo" in str(rec[0].message)
    with pytest.raises(RunTimeout, match="0 live workers serve queue 'flownb-typo'"):
        handle.result(timeout=0.5)
    handle.cancel()
    served = DistributedExecutor(redis_url)
    assert list(served.live_workers()) and not ex.live_workers()
    slow = flownb.Blueprint.from_dict({"id": "ce-slow", "nodes": [
        {"id": "s", "uses": "dist-slow", "params": {"seconds": 3}}]})
    with pytest.raises(RunTimeout, match="1 live worker serves queue 'flownb'"):
        served.submit(slow).result(timeout=0.5)


class _Mute:
    """A TCP port that accepts connections (kernel backlog) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"


def test_a_port_that_never_answers_fails_fast_with_a_message() -> None:
    mute = _Mute()
    try:
        t0 = time.monotonic()
        with pytest.raises(ExecutorError, match="did not answer within 5 s"):
            DistributedExecutor(mute.url)
        assert time.monotonic() - t0 < 30
        for cmd in (["runs", "--redis", mute.url], ["worker", "--redis", mute.url]):
            p = subprocess.run([sys.executable, "-m", "flownb", *cmd], cwd=str(ROOT),
                               capture_output=True, text=True, timeout=60, check=False)
            assert p.returncode != 0, cmd
            assert "did not answer within 5 s" in p.stderr, (cmd, p.stderr)
    finally:
        mute.sock.close()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_lease_ttl_zero_or_negative_is_rejected(redis_url: str, value: str) -> None:
    with pytest.raises(ExecutorError, match=r"lease_ttl_s must be a finite number >= 0.5"):
        StoreSettings(lease_ttl_s=float(value))
    p = subprocess.run([sys.executable, "-m", "flownb", "worker", "--redis", redis_url,
                        "--lease-ttl", value], cwd=str(ROOT), capture_output=True, text=True,
                       timeout=60, check=False)
    assert p.returncode != 0
    assert "lease_ttl_s must be a finite number >= 0.5" in p.stderr
    assert "--lease-ttl" in p.stderr


MAIN_SCRIPT = """
import sys
import flownb
from flownb.distributed.client import DistributedExecutor

@flownb.node("ce-classify")
def classify(ctx):
    return "x"

class Shout(flownb.Node):
    def exec(self, prep):
        return "X"

flownb.node("ce-shout")(Shout)
bp = flownb.Blueprint.from_dict({"id": "ce-main", "nodes": [
    {"id": "c", "uses": "ce-classify"}, {"id": "s", "uses": "ce-shout"},
    {"id": "n", "uses": "noop"}]})
try:
    DistributedExecutor(sys.argv[1]).submit(bp)
except flownb.FlownbError as exc:
    print(exc)
    sys.exit(3)
"""


def test_submit_refuses_node_types_defined_in_main(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "main_nodes.py"
    script.write_text(MAIN_SCRIPT)
    p = subprocess.run([sys.executable, str(script), redis_url], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 3, p.stderr
    msg = p.stdout
    assert "node 'c' ('ce-classify' = __main__.classify)" in msg
    assert "node 's' ('ce-shout' = __main__.Shout.exec)" in msg
    assert "'n'" not in msg                      # built-ins are fine
    for fix in ("%%flownb_module", 'LocalCluster(mode="thread")', "modules=[", "--import"):
        assert fix in msg, fix
    import redis

    assert not redis.Redis.from_url(redis_url).keys("flownb:run:*")  # nothing was stored


THREAD_SCRIPT = """
import sys
import flownb
from flownb.notebook import LocalCluster

@flownb.node("ce-inc")
def inc(ctx):
    return ctx.input["x"] + 1

bp = flownb.Blueprint.from_dict({"id": "ce-thread", "nodes": [{"id": "i", "uses": "ce-inc"}]})
with LocalCluster(1, mode="thread", redis=sys.argv[1]) as cluster:
    print(cluster.run(bp, {"x": 41}, timeout=30).output)
"""


def test_thread_workers_of_this_process_may_run_main_nodes(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "thread_nodes.py"
    script.write_text(textwrap.dedent(THREAD_SCRIPT))
    p = subprocess.run([sys.executable, str(script), redis_url], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=90, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "42"
