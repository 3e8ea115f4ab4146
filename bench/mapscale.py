"""Distributed ``map`` over 2,000 / 8,000 / 50,000 items: Redis script time per item stays flat.

A ``map`` visit starts one child run per item. Each child's start, claim, commit and
finalisation is a script call; the figure that shows whether any of them scans or re-encodes
something of the size of the whole map is the *total script time* Redis spent
(``INFO commandstats``: ``usec`` of ``evalsha`` + ``eval``), divided by the number of items.
Linear work gives the same µs per item at every size; quadratic work grows with the size (it did:
1.3 s of script time for 2,000 items, 27 s for 8,000, 50,000 never finished). ``SLOWLOG`` gives
the single slowest command.
"""

from __future__ import annotations

import time
from typing import Any

from .common import Cluster, Config, Report

DEADLINE_S = 900.0


def _script_usec(r: Any) -> tuple[int, int]:
    """(total µs, calls) of script execution so far (EVALSHA + EVAL)."""
    stats = r.info("commandstats")
    usec = calls = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        s = stats.get(name) or {}
        usec += int(s.get("usec", 0))
        calls += int(s.get("calls", 0))
    return usec, calls


def map_blueprint(n: int) -> Any:
    import flownb

    return flownb.Blueprint.from_dict({
        "id": f"bench-map-{n}",
        "nodes": [{"id": "items", "uses": "set", "params": {"values": {"xs": list(range(n))}}},
                  {"id": "each", "uses": "map", "params": {"items": "xs", "node": "noop"}}],
        "edges": [{"source": "items", "target": "each"}]})


def map_scale(cfg: Config) -> Report:
    rep = Report()
    sizes = cfg.pick([2000, 8000, 50000], [200, 1000])
    with Cluster(name="mapscale") as c:
        c.flownb_workers(2, lease_ttl=30.0)
        from flownb.distributed.client import DistributedExecutor

        ex = DistributedExecutor(c.url)
        r = c.redis()
        for n in sizes:
            # log every command slower than 1 ms (the slowest one is then exact)
            r.config_set("slowlog-log-slower-than", 1000)
            r.config_set("slowlog-max-len", 100_000)
            r.slowlog_reset()
            r.config_resetstat()
            t0 = time.perf_counter()
            h = ex.submit(map_blueprint(n))
            if not h.wait(DEADLINE_S):
                raise TimeoutError(f"map over {n} items did not finish in {DEADLINE_S}s")
            wall = time.perf_counter() - t0
            res = h.result()
            if res.status != "succeeded" or len(res.outputs["each"]) != n:
                raise RuntimeError(f"map over {n} items: {res.status} {res.error}")
            usec, calls = _script_usec(r)
            slow = r.slowlog_get(100_000)
            slowest = max((int(e["duration"]) for e in slow), default=0)
            rep.value(f"map{n}_script_s", usec / 1e6, "s", f"map over {n:,} items: Redis script time")
            rep.value(f"map{n}_script_us_per_item", usec / n, "µs",
                      f"map over {n:,} items: script time per item")
            rep.value(f"map{n}_calls_per_item", calls / n, "calls",
                      f"map over {n:,} items: script calls per item")
            rep.value(f"map{n}_slowest_ms", slowest / 1000, "ms",
                      f"map over {n:,} items: slowest single command")
            rep.value(f"map{n}_over_1ms", len(slow), "commands",
                      f"map over {n:,} items: commands slower than 1 ms")
            rep.value(f"map{n}_wall_s", wall, "s", f"map over {n:,} items: wall time, 2 workers")
        small, big = sizes[0], sizes[-1]
        rep.goal(f"script µs per item at {big:,} items <= 2x the figure at {small:,}",
                 f"map{big}_script_us_per_item", "<=",
                 2 * rep.figures[f"map{small}_script_us_per_item"]["median"])
        rep.note("Script time per item is flat when every per-item script does O(1) work: the "
                 "child-run countdown is one HINCRBY on the parent, the child ids are stored once, "
                 "and child runs are not in the runs index.")
    return rep
