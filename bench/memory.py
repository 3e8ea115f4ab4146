"""Memory: worker and client RSS, Redis memory per finished run, and that it is freed after the TTL.

Workers are started with ``StoreSettings(result_ttl_s=2)`` through ``bench.worker_proc`` (the
``flownb worker`` CLI has no option for the result TTL), and the client uses the same settings.
"""

from __future__ import annotations

import os
from typing import Any

from .common import Cluster, Config, Report, chain_bp, wait_until

TTL_S = 2


def _used(r: Any) -> int:
    return int(r.info("memory")["used_memory"])


def _keys_by_kind(r: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in r.scan_iter(count=1000):
        s = k.decode()
        parts = s.split(":")
        kind = ":".join(parts[:2]) if parts[0] in ("flownb", "rq") else parts[0]
        if parts[0] == "flownb" and parts[1] == "run" and len(parts) >= 4:
            kind = "flownb:run:*:" + parts[-1]
        out[kind] = out.get(kind, 0) + 1
    return dict(sorted(out.items()))


def memory(cfg: Config) -> Report:
    import psutil

    from flownb.distributed.client import DistributedExecutor
    from flownb.distributed.store import StoreSettings

    rep = Report()
    n_nodes = cfg.pick(200, 50)
    batches = cfg.pick(5, 1)
    per_batch = cfg.pick(10, 3)
    me = psutil.Process(os.getpid())
    with Cluster(name="memory") as c:
        [w] = c.flownb_workers(1, result_ttl=TTL_S)
        wp = psutil.Process(w.pid)
        ex = DistributedExecutor(c.url, settings=StoreSettings(result_ttl_s=TTL_S))
        r = c.redis()
        bp = chain_bp(n_nodes)

        def batch(k: int) -> list[str]:
            hs = [ex.submit(bp) for _ in range(k)]
            for h in hs:
                if not h.wait(120) or h.status() != "succeeded":
                    raise RuntimeError(f"run {h.run_id} {h.status()}")
            return [h.run_id for h in hs]

        def settle() -> int:
            """Wait for every run key to expire (active expiry), return used_memory."""
            wait_until(lambda: not any(True for _ in r.scan_iter("flownb:run:*", count=1000)),
                       TTL_S * 10 + 10, interval=0.2, what="run keys to expire")
            return _used(r)

        batch(2)  # warm-up: imports, compiled graph cache, script cache, connection buffers
        base = settle()
        base_keys = _keys_by_kind(r)
        w_rss0, c_rss0 = wp.memory_info().rss, me.memory_info().rss
        per_run, freed_left, w_rss, c_rss = [], [], [], []
        for _ in range(batches):
            before = _used(r)
            batch(per_batch)
            after = _used(r)
            per_run.append((after - before) / per_batch)
            w_rss.append(wp.memory_info().rss)
            c_rss.append(me.memory_info().rss)
            freed_left.append(settle() - base)
        after_keys = _keys_by_kind(r)
        runs_index = r.zcard(ex.store.keys.runs)
        runs_index_bytes = r.memory_usage(ex.store.keys.runs) or 0
        total_runs = 2 + batches * per_batch
    rep.data["n_nodes"] = n_nodes
    rep.figure("redis_bytes_per_run", [x / 1024 for x in per_run], "KiB/run",
               f"Redis used_memory delta per finished {n_nodes}-node run")
    rep.figure("redis_left_after_ttl", [x / 1024 for x in freed_left], "KiB",
               f"used_memory after every run key expired (TTL {TTL_S}s) minus the baseline")
    rep.figure("worker_rss_mb", [x / 2**20 for x in w_rss], "MiB", "worker RSS after each batch")
    rep.figure("client_rss_mb", [x / 2**20 for x in c_rss], "MiB", "client (bench process) RSS after each batch")
    rep.value("worker_rss_growth_kb_per_run", (w_rss[-1] - w_rss0) / 1024 / (batches * per_batch),
              "KiB/run", "worker RSS growth per run over all batches")
    rep.value("client_rss_growth_kb_per_run", (c_rss[-1] - c_rss0) / 1024 / (batches * per_batch),
              "KiB/run", "client RSS growth per run over all batches")
    rep.value("runs_index_entries_left", float(runs_index), "entries",
              f"members of flownb:runs after {total_runs} runs expired")
    rep.value("runs_index_bytes", float(runs_index_bytes), "B",
              f"MEMORY USAGE of flownb:runs after {total_runs} runs (grows forever)")
    rep.data["keys_at_baseline"] = base_keys
    rep.data["keys_after_expiry"] = after_keys
    rep.note(f"Per-run bytes: used_memory right after a batch of {per_batch} runs minus right "
             "before (the run's meta/state/sched/nodes/events/done keys; RQ job hashes are deleted "
             "at once: result_ttl=0). 'left after TTL' should be ~0: what remains is the "
             "flownb:runs index (one zset member per run, never removed by finalize) and "
             "allocator noise (the Lua VM's memory is not in used_memory).")
    return rep
