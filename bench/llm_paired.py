"""Paired A/B of the LLM workload's cluster contender between two source trees, interleaved.

``python -m bench.llm_paired BEFORE_TREE AFTER_TREE [--reps 3] [--n 200]`` (e.g. a ``git archive``
of each commit unpacked in a directory): per repetition and agent, plain asyncio, the cluster of
BEFORE and the cluster of AFTER run one after the other against one LLM server (200 ms), in an
order that rotates every repetition, each in its own process with that tree first on its path.
Prints one JSON line per pair and the medians of the ratios (cluster ÷ plain asyncio of the same
repetition) and of the workers' CPU per LLM call. Why: on a shared machine a whole ``python -m
bench --only llm`` per tree is one sample each, minutes apart; pairs minutes apart are not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from .llm import LLMServer

AGENTS = ("content_moderation", "blog_post")


def _contender(tree: str, name: str, agent: str, n: int, url: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": tree}
    p = subprocess.run([sys.executable, "-m", "bench.llm_contenders", name, agent, str(n), url,
                        "120", "2"], cwd=tree, env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])  # type: ignore[no-any-return]
    raise RuntimeError(f"{name} in {tree} wrote no result:\n{p.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.llm_paired")
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with LLMServer(0.2) as srv:
        for rep in range(args.reps):
            for agent in AGENTS:
                order = [("plain", args.after, "plain"), ("before", args.before, "cluster"),
                         ("after", args.after, "cluster")]
                order = order[rep % 3:] + order[:rep % 3]
                res: dict[str, dict[str, float]] = {}
                for label, tree, name in order:
                    srv.reset()
                    r = _contender(tree, name, agent, args.n, srv.base_url)
                    st = srv.stats()
                    res[label] = {"wall_s": r["wall_s"], "inflight": st["max_in_flight"],
                                  "cpu_ms_per_call": (r.get("cpu_s") or 0) * 1000 / max(1, st["calls"])}
                row = {"rep": rep, "agent": agent, **res,
                       "before_over_plain": res["before"]["wall_s"] / res["plain"]["wall_s"],
                       "after_over_plain": res["after"]["wall_s"] / res["plain"]["wall_s"]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    for agent in AGENTS:
        mine = [r for r in rows if r["agent"] == agent]
        med = statistics.median
        print(f"{agent} x{args.n}: cluster ÷ plain before {med(r['before_over_plain'] for r in mine):.2f}× "
              f"after {med(r['after_over_plain'] for r in mine):.2f}×; workers' CPU ms per LLM call "
              f"before {med(r['before']['cpu_ms_per_call'] for r in mine):.2f} after "
              f"{med(r['after']['cpu_ms_per_call'] for r in mine):.2f} (plain asyncio "
              f"{med(r['plain']['cpu_ms_per_call'] for r in mine):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
