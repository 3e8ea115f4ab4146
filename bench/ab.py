"""Two versions of the workers side by side: ``python -m bench.ab TREE_A TREE_B [--kind fan]``.

Why: on a shared 2-vCPU machine a wall figure from another minute means little, so a change to
the worker is measured against the code before it in one session, repetitions interleaved. Each
tree (a checkout of flownb, e.g. ``git worktree add /tmp/before main`` or ``git archive main |
tar -x -C /tmp/before``) gets its own embedded Redis and ``--workers`` worker processes started
from that tree; the client is this checkout's. Per repetition and tree: the wall of one run
(``fan``: 500 → all-join; ``chain``: 1000 no-op nodes; ``tiny``: ``--n`` runs of 3 no-op nodes
submitted at once, first ``created_at`` → last ``finished_at``), the workers' CPU (psutil, user
+ system) and redis-server's (``INFO cpu``), each per node (per run for ``tiny``).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

from .common import Cluster, chain_bp, fanout_bp, server_cpu_s


def _workers(c: Cluster, tree: str, n: int, tag: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": tree, "PYTHONUNBUFFERED": "1"}
    procs = []
    for i in range(n):
        name = f"ab{tag}w{i}-{os.getpid()}"
        log = open(os.path.join(c.tmp, f"{name}.log"), "ab")  # noqa: SIM115 - the child keeps it
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "flownb", "worker", "--redis", c.url, "--name", name,
             "--log-level", "WARNING"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL))
    r = c.redis()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and r.hlen("flownb:workers") < n:
        time.sleep(0.1)
    return procs


def _cpu(pids: list[int]) -> float:
    import psutil

    return sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)


def _one(ex: Any, bp: Any, kind: str, n: int) -> float:
    if kind != "tiny":
        t0 = time.perf_counter()
        h = ex.submit(bp)
        if not h.wait(300) or h.status() != "succeeded":
            raise RuntimeError(f"run {h.run_id} ended {h.status()}")
        return time.perf_counter() - t0
    hs = [ex.submit(bp) for _ in range(n)]
    for h in hs:
        if not h.wait(300) or h.status() != "succeeded":
            raise RuntimeError(f"run {h.run_id} ended {h.status()}")
    metas = [ex.store.meta(h.run_id) for h in hs]
    return (max(float(m["finished_at"]) for m in metas)
            - min(float(m["created_at"]) for m in metas))


def main(argv: list[str] | None = None) -> int:
    from flownb.distributed.client import DistributedExecutor

    from .distributed import tiny_bp

    ap = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    ap.add_argument("trees", nargs="+", help="flownb checkouts whose workers are compared")
    ap.add_argument("--kind", choices=("fan", "chain", "tiny"), default="fan")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n", type=int, default=None, help="fan-out width / chain length / tiny runs")
    a = ap.parse_args(argv)
    n = a.n or {"fan": 500, "chain": 1000, "tiny": 5000}[a.kind]
    bp = fanout_bp(n) if a.kind == "fan" else chain_bp(n) if a.kind == "chain" else tiny_bp()
    per = n + 2 if a.kind == "fan" else n
    unit = "run" if a.kind == "tiny" else "node"
    setups: list[tuple[str, Cluster, list[subprocess.Popen[bytes]], Any]] = []
    res: dict[str, dict[str, list[float]]] = {}
    try:
        for k, tree in enumerate(a.trees):
            c = Cluster(name=f"ab{k}").__enter__()
            setups.append((tree, c, _workers(c, os.path.abspath(tree), a.workers, str(k)),
                           DistributedExecutor(c.url)))
            setups[-1][3].run(bp if a.kind != "tiny" else tiny_bp(), timeout=300)  # warm-up
            res[tree] = {"wall": [], "workers": [], "redis": []}
        for rep in range(a.reps):
            for tree, c, procs, ex in (setups if rep % 2 == 0 else setups[::-1]):
                r = c.redis()
                pids = [p.pid for p in procs]
                time.sleep(0.3)
                w0, s0 = _cpu(pids), server_cpu_s(r)
                wall = _one(ex, bp, a.kind, n)
                res[tree]["wall"].append(wall)
                res[tree]["workers"].append(_cpu(pids) - w0)
                res[tree]["redis"].append(server_cpu_s(r) - s0)
    finally:
        for _, c, procs, _ in setups:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            c.close()
    print(f"| tree ({a.kind}, n={n}, {a.workers} workers, {a.reps} reps interleaved) | "
          f"{unit}s/s median [min–max] | worker CPU ms/{unit} | redis-server µs/{unit} |")
    print("|---|---|---|---|")
    for tree, v in res.items():
        rates = [per / x for x in v["wall"]]
        print(f"| {tree} | {statistics.median(rates):,.0f} [{min(rates):,.0f}–{max(rates):,.0f}] | "
              f"{statistics.median(x / per * 1e3 for x in v['workers']):.3f} | "
              f"{statistics.median(x / per * 1e6 for x in v['redis']):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
