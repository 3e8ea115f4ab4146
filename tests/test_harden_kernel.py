"""Issue 19, medium item: a process worker inside a node that holds the GIL does not outlive its
SIGKILLed kernel by the node's duration (48.7 s measured): its liveness process, which shares no
GIL with it, ends it once the kernel is gone and the worker's own warm shutdown had its grace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import redis

from conftest import ROOT, TESTS_DIR

pytestmark = pytest.mark.timeout(180)

OWNER = textwrap.dedent('''
    import json, sys, time
    sys.path.insert(0, sys.argv[2])
    import flownb
    from flownb.notebook import LocalCluster
    from flownb.distributed.client import DistributedExecutor
    c = LocalCluster(1, mode="process", redis=sys.argv[1], modules=["worker_nodes"])
    bp = flownb.Blueprint.from_dict({"id": "hog", "nodes": [{"id": "n", "uses": "w-gil-hog",
        "params": {"redis": sys.argv[1], "tag": sys.argv[3], "s": 40}}]})
    DistributedExecutor(sys.argv[1]).submit(bp)
    print(json.dumps(c.pids), flush=True)
    time.sleep(120)
''')


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def test_a_gil_holding_worker_follows_its_sigkilled_kernel(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "kernel.py"
    script.write_text(OWNER)
    tag = f"hog{os.getpid()}"
    r = redis.Redis.from_url(redis_url)
    owner = subprocess.Popen([sys.executable, str(script), redis_url, str(TESTS_DIR), tag],
                             stdout=subprocess.PIPE, cwd=str(ROOT), start_new_session=True,
                             env={**os.environ, "FLOWNB_WATCHDOG_GRACE_S": "2"})
    pids: list[int] = []
    try:
        pids = json.loads(owner.stdout.readline())  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while not int(r.get(f"{tag}:exec") or 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(r.get(f"{tag}:exec") or 0) == 1, "the GIL-holding node never started"
        time.sleep(1.0)  # well inside the 40 s node
        owner.kill()  # a kernel SIGKILL: no atexit, no finalizers
        owner.wait(5)
        t0 = time.monotonic()
        while any(_alive(p) for p in pids) and time.monotonic() - t0 < 30:
            time.sleep(0.1)
        took = time.monotonic() - t0
        assert not any(_alive(p) for p in pids), "the worker outlived its kernel by 30 s"
        assert took < 10, f"the worker outlived its kernel by {took:.1f} s (grace 2 s)"
        # its temp dirs (cluster, modules) are left by the SIGKILL, and swept by the next owner
        left = [d for d in Path(tempfile.gettempdir()).glob(f"flownb-*-{owner.pid}-*")]
        assert left, "expected the killed kernel's temp dirs (named after its pid)"
        from flownb.core.tempdirs import sweep

        for kind in ("cluster", "modules", "redis"):
            sweep(kind)
        assert not [d for d in left if d.exists()], "stale temp dirs were not swept"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(5)
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_sweep_keeps_the_dirs_of_live_owners(tmp_path: Path) -> None:
    from flownb.core.tempdirs import owned_mkdtemp, sweep

    mine = Path(owned_mkdtemp("cluster", str(tmp_path)))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"flownb-cluster-{dead.pid}-abc"
    stale.mkdir()
    live = tmp_path / f"flownb-cluster-{os.getppid()}-abc"  # our parent runs
    live.mkdir()
    other = tmp_path / "flownb-cluster-notapid-x"
    other.mkdir()
    assert sweep("cluster", str(tmp_path)) == 1
    assert mine.exists() and live.exists() and other.exists() and not stale.exists()
