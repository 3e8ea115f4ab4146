"""LocalCluster with a real embedded Redis and real worker processes / threads.

Every test checks that the workers it started are gone afterwards; the orphan test SIGKILLs the
process that owns a cluster (as Jupyter does to a kernel) and checks its workers follow it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

import flownb
from flownb.core.errors import ExecutorError
from flownb.notebook import LocalCluster
from flownb.notebook.modules import load_module, write_module

pytestmark = pytest.mark.timeout(90)


def alive(pid: int) -> bool:
    """True if ``pid`` runs; zombies count as dead."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def chain(uses: str, n: int = 3, bp_id: str = "lc-chain", **params: object) -> flownb.Blueprint:
    nodes = [{"id": f"n{i}", "uses": uses, "params": dict(params)} for i in range(n)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(n - 1)]
    return flownb.Blueprint.from_dict({"id": bp_id, "nodes": nodes, "edges": edges})


NODE_MODULE = '''
import os, time
import flownb

@flownb.node("{name}-inc")
def inc(ctx):
    x = ctx.input if isinstance(ctx.input, int) else int(ctx.input["x"])
    return x + 1

@flownb.node("{name}-pid")
def pid(ctx):
    return os.getpid()

@flownb.node("{name}-slow")
def slow(ctx):
    with open(ctx.params["pidfile"], "a") as fh:
        fh.write(f"{{os.getpid()}}\\n")
    time.sleep(float(ctx.params.get("seconds", 1.5)))
    return ctx.input if isinstance(ctx.input, int) else 0
'''


@pytest.fixture
def node_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A node module in a tmp dir on sys.path (LocalCluster passes user paths to its workers)."""
    name = f"lc_nodes_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(NODE_MODULE.format(name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.fixture
def cluster_factory(redis_url: str) -> Iterator[object]:
    made: list[LocalCluster] = []

    def make(n: int = 2, mode: str = "process", **kw: object) -> LocalCluster:
        c = LocalCluster(n, mode=mode, redis=redis_url, lease_ttl_s=kw.pop("lease_ttl_s", 2.0),
                         **kw)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        pids = c.pids if c.mode == "process" else []
        c.close()
        assert not wait_gone(pids, 5), "workers survived close()"


def test_process_cluster_runs_nodes_from_a_module_and_close_leaves_nothing(
        cluster_factory, node_module: str, redis_url: str) -> None:
    c = cluster_factory(2, modules=[node_module])
    pids = c.pids
    assert len(pids) == 2 and os.getpid() not in pids
    res = c.run(chain(f"{node_module}-inc"), {"x": 1}, timeout=30)
    assert res.ok, res.error
    assert res.output == 4
    # the nodes really ran in the worker processes
    res2 = c.run(chain(f"{node_module}-pid", n=1), timeout=30)
    assert res2.output in pids
    # worker info comes from what the workers publish in Redis (about once a second)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(w["jobs"] for w in c.workers) < 2:
        time.sleep(0.1)
    assert sum(w["jobs"] for w in c.workers) >= 2
    assert {w["state"] for w in c.workers} <= {"idle", "busy"}
    html = c._repr_html_()
    for w in c.workers:
        assert w["name"] in html and str(w["pid"]) in html
    assert "unix://" in html or "redis://" in html
    assert repr(c).startswith("<LocalCluster")
    logs = c.logs(10)
    assert set(logs) == {w["name"] for w in c.workers}
    assert all("serving queue" in text for text in logs.values()), str(logs)
    c.close()
    assert not wait_gone(pids, 5)
    assert c.closed
    c.close()  # idempotent


def test_thread_cluster_runs_in_kernel_threads(cluster_factory, node_module: str) -> None:
    import threading

    @flownb.node("lc-thread-only")  # registered here only: thread workers share the registry
    def here(ctx: flownb.NodeContext) -> int:
        return threading.get_ident()

    before = {t.ident for t in threading.enumerate()}
    c = cluster_factory(2, mode="thread", modules=[node_module])
    assert c.pids == [os.getpid(), os.getpid()]
    res = c.run(chain(f"{node_module}-inc"), {"x": 10}, timeout=30)
    assert res.output == 13
    res2 = c.run(chain("lc-thread-only", n=1), timeout=30)
    assert res2.ok and res2.output != threading.get_ident()
    t0 = time.monotonic()
    c.close()
    assert time.monotonic() - t0 < 5
    workers_left = [t for t in threading.enumerate()
                    if t.name.startswith("flownb-worker-") and t.ident not in before]
    assert not workers_left


def test_scale_up_and_down(cluster_factory, node_module: str) -> None:
    c = cluster_factory(1, modules=[node_module])
    first = c.pids
    c.scale(3)
    assert len(c.pids) == 3 and first[0] in c.pids
    grown = c.pids
    c.scale(1)
    assert c.n_workers == 1
    removed = [p for p in grown if p not in c.pids]
    assert len(removed) == 2 and not wait_gone(removed, 5)
    assert c.run(chain(f"{node_module}-inc"), {"x": 0}, timeout=30).output == 3


def test_dead_worker_is_restarted_and_the_run_completes(cluster_factory, node_module: str,
                                                        tmp_path: Path) -> None:
    c = cluster_factory(2, modules=[node_module])
    pidfile = tmp_path / "slow.pid"
    bp = flownb.Blueprint.from_dict({"id": "lc-kill", "nodes": [
        {"id": "a", "uses": f"{node_module}-inc"},
        {"id": "slow", "uses": f"{node_module}-slow", "params": {"pidfile": str(pidfile),
                                                                 "seconds": 1.5}},
        {"id": "c", "uses": f"{node_module}-inc"}],
        "edges": [{"source": "a", "target": "slow"}, {"source": "slow", "target": "c"}]})
    h = c.submit(bp, {"x": 1})
    deadline = time.monotonic() + 15
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    victim = int(pidfile.read_text().split()[0])
    assert victim in c.pids
    os.kill(victim, signal.SIGKILL)
    res = h.result(timeout=30)
    assert res.ok, res.error
    assert res.output == 3
    # the slot was restarted with a fresh worker
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(c.pids) < 2 or victim in c.pids):
        time.sleep(0.05)
    assert len(c.pids) == 2 and victim not in c.pids
    assert sum(w["restarts"] for w in c.workers) == 1
    assert len(pidfile.read_text().split()) == 2  # the slow node ran again elsewhere


def test_a_worker_that_cannot_start_is_reported_not_restarted_forever(redis_url: str) -> None:
    with pytest.raises(ExecutorError, match="no_such_module_for_flownb"):
        LocalCluster(1, redis=redis_url, modules=["no_such_module_for_flownb"],
                     startup_timeout_s=30)


def test_process_workers_pick_up_a_rewritten_session_module(cluster_factory) -> None:
    name = f"lc_session_{uuid.uuid4().hex[:8]}"
    src = "import flownb\n@flownb.node('{n}-v')\ndef v(ctx):\n    return {v}\n"
    load_module(name, write_module(name, src.format(n=name, v=1)))
    c = cluster_factory(1)  # started before/without --import: the worker imports it by itself
    bp = chain(f"{name}-v", n=1, bp_id="lc-reload")
    assert c.run(bp, timeout=30).output == 1
    load_module(name, write_module(name, src.format(n=name, v=2)))  # same size, same second
    assert c.run(bp, timeout=30).output == 2
    # a module written after the workers started
    late = f"lc_late_{uuid.uuid4().hex[:8]}"
    load_module(late, write_module(late, src.format(n=late, v=7)))
    assert c.run(chain(f"{late}-v", n=1, bp_id="lc-late"), timeout=30).output == 7


ORPHAN_CHILD = textwrap.dedent('''
    import json, signal, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # survive the group SIGINT below
    from flownb.notebook import LocalCluster
    c = LocalCluster(2, mode="process", redis=sys.argv[1])
    print(json.dumps(c.pids), flush=True)
    time.sleep(120)
''')


def test_workers_survive_a_group_interrupt_but_not_a_sigkilled_owner(redis_url: str,
                                                                     tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(ORPHAN_CHILD)
    owner = subprocess.Popen([sys.executable, str(script), redis_url], stdout=subprocess.PIPE,
                             cwd=str(ROOT), start_new_session=True)
    try:
        line = owner.stdout.readline()  # type: ignore[union-attr]
        pids = json.loads(line)
        assert len(pids) == 2 and all(alive(p) for p in pids)
        # Jupyter's interrupt goes to the kernel's process group: workers are not in it
        os.killpg(owner.pid, signal.SIGINT)
        time.sleep(0.7)
        assert all(alive(p) for p in pids), "a group SIGINT reached the workers"
        owner.kill()  # like a kernel restart: no atexit, no finalizers
        owner.wait(5)
        left = wait_gone(pids, 10)
        assert not left, f"workers {left} outlived their SIGKILLed owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(5)
        for p in pids if "pids" in locals() else []:
            if alive(p):
                os.kill(p, signal.SIGKILL)


# -- one cluster per queue, never giving up (issues 14.7, 11.11) ------------------------------------------

def _rq_workers(url: str, queue: str = "flownb") -> list[str]:
    import redis as redis_lib
    from rq import Queue, Worker

    conn = redis_lib.Redis.from_url(url)
    return [w.name for w in Worker.all(queue=Queue(queue, connection=conn))]


def test_rerunning_the_cluster_cell_replaces_the_old_cluster(redis_url: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    first = LocalCluster(2, redis=redis_url, lease_ttl_s=2)
    old_pids = first.pids
    second = LocalCluster(2, redis=redis_url, lease_ttl_s=2)  # the same cell run again
    try:
        assert first.closed and not wait_gone(old_pids, 5)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"closing the previous LocalCluster {first.name}" in err
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_rq_workers(redis_url)) != 2:
            time.sleep(0.1)
        assert sorted(_rq_workers(redis_url)) == sorted(w["name"] for w in second.workers)
        assert len(second.pids) == 2
        other = LocalCluster(1, redis=redis_url, queue_name="other-queue", lease_ttl_s=2)
        try:  # another queue is another cluster: both stay
            assert not second.closed and len(second.pids) == 2
        finally:
            other.close()
    finally:
        pids = second.pids
        second.close()
        assert not wait_gone(pids, 5)


def test_killed_workers_are_restarted_with_back_off_and_reported(cluster_factory,
                                                                 node_module: str) -> None:
    c = cluster_factory(1, modules=[node_module])
    assert c.serving_warning() is None
    for kill in range(4):  # each dies right after starting: quick deaths, growing back-off
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not c.pids:
            time.sleep(0.02)
        assert c.pids, f"slot not restarted after kill {kill}"
        os.kill(c.pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and c.n_alive:
            time.sleep(0.02)
        if kill == 3:
            while time.monotonic() < deadline and not c.deaths[3:]:
                time.sleep(0.02)
            problem = c.serving_warning()
            assert problem is not None and "no worker" in problem and "restart" in problem
            assert "no worker" in repr(c) and "no worker" in c._repr_html_()
            with pytest.warns(RuntimeWarning, match="no worker of LocalCluster"):
                h = c.submit(chain(f"{node_module}-inc"), {"x": 1})
    deaths = c.deaths
    assert len(deaths) == 4 and all(d["signal"] == "SIGKILL" for d in deaths)
    delays = [d["restart_in_s"] for d in deaths]  # 0.5, 1, 2, 4 unless a start took > 5 s
    assert delays == sorted(delays) and delays[-1] > 0, delays
    assert "SIGKILL" in c._repr_html_()
    # never gave up: the slot comes back and serves the run submitted while it was dead
    assert h.result(timeout=30).output == 4
    assert c.n_alive == 1 and c.workers[0]["restarts"] == 4
