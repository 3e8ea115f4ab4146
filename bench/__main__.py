"""``python -m bench [--quick] [--only NAME[,NAME]] [--out PATH] [--workers W] [--n N] [--write-docs]``:
every benchmark in one go.

Prints a markdown table of every figure, the goals, the notes, and a compact table for the
README's performance section; writes the JSON (machine, versions, every figure as
min/median/max over repetitions after a warm-up). A benchmark that fails is reported as failed
in the table and the JSON; the others still run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from .common import BENCH_DIR, Config, machine_info
from .summary import compact_table, full_table, goals_table


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    func: str
    title: str


#: every benchmark, in the order they run (cheap and in-process first)
BENCHMARKS: list[Bench] = [
    Bench("inprocess_chain", "bench.inprocess", "inprocess_chain",
          "1. in-process chain of no-op nodes vs LangGraph, PocketFlow, plain loop"),
    Bench("inprocess_fanout", "bench.inprocess", "inprocess_fanout",
          "2. in-process fan-out into an all-join vs LangGraph"),
    Bench("json_check", "bench.jsoncheck", "json_check",
          "2b. in-process JSON check of outputs/state writes: µs/node with and without"),
    Bench("dist_chain", "bench.distributed", "dist_chain",
          "3. distributed chain, 1 and 2 workers, vs plain RQ and raw Redis"),
    Bench("dist_fanout", "bench.distributed", "dist_fanout",
          "4. distributed fan-out into a join, 2 workers, vs plain RQ"),
    Bench("dist_state", "bench.distributed", "dist_state_size",
          "5. per-hop cost with an empty vs a 1 MB run state"),
    Bench("many_runs", "bench.distributed", "many_runs",
          "6. many runs of a 20-node graph at once, 2 workers"),
    Bench("memory", "bench.memory", "memory",
          "7. memory: worker/client RSS, Redis per run, freed after TTL"),
    Bench("widget", "bench.widget", "widget",
          "8. widget traffic for a 1000-node run"),
    Bench("chaos", "bench.reliability", "chaos",
          "9. chaos: workers SIGKILLed every ~300 ms"),
    Bench("redis_drop", "bench.reliability", "redis_drop",
          "10. Redis restart and dropped connections mid-run"),
    Bench("lint", "bench.lint", "lint_scale",
          "11. load, lint and compile of 20k / 300k-node blueprints"),
    Bench("llm", "bench.llm", "llm",
          "12. LLM-bound workload: 200/500 agent runs at once on a 200 ms API vs LangGraph, plain asyncio"),
    Bench("map_scale", "bench.mapscale", "map_scale",
          "13. distributed map over 2k/8k/50k items: Redis script time per item"),
    Bench("tracing", "bench.tracing", "tracing",
          "14. OpenTelemetry tracing per node: off vs on (API only) vs on (SDK), in process"),
    Bench("redis_cost", "bench.redis_cost", "redis_cost",
          "15. Redis commands, server CPU and memory per node, per submit(), per moderation run"),
    Bench("hotpath", "bench.hotpath", "hotpath",
          "where the time of a distributed hop goes (commands, scripts, profiles)"),
]


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become None, tuples become lists."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def run_one(b: Bench, cfg: Config) -> dict[str, Any]:
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    try:
        fn = getattr(importlib.import_module(b.module), b.func)
        out = fn(cfg).to_json()
    except BaseException as exc:  # noqa: BLE001 - one failure must not end the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        out = {"status": "error", "error": "".join(traceback.format_exception(exc))[-4000:],
               "figures": {}, "goals": [], "notes": [], "data": {}}
    out["title"] = b.title
    out["seconds"] = round(time.perf_counter() - t0, 2)
    # these machines are shared: the 1-minute load before and after tells a quiet run from a busy one
    out["loadavg_1m"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated benchmark names: "
                    + ", ".join(b.name for b in BENCHMARKS))
    ap.add_argument("--out", default=None, help="JSON path (default bench/results.json for a full "
                    "run; bench/results-quick.json with --quick, bench/results-partial.json with --only)")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--workers", type=int, default=None, help="worker processes for llm, "
                    "redis_cost, dist_fanout and many_runs (default 2)")
    ap.add_argument("--write-docs", action="store_true", help="after a full run, publish it "
                    "(bench/published.json) and rewrite the generated table in README.md and "
                    "bench/README.md (python -m bench.tables)")
    ap.add_argument("--n", type=int, default=None, help="llm: runs at once (instead of 200 and "
                    "500); redis_cost: chain length; many_runs: tiny runs at once (5,000)")
    args = ap.parse_args(argv)
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:18} {b.title}")
        return 0
    wanted = [x.strip() for x in args.only.split(",") if x.strip()]
    known = {b.name for b in BENCHMARKS}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    if args.write_docs and (args.quick or wanted):
        ap.error("--write-docs publishes a full run: drop --quick/--only")
    selected = [b for b in BENCHMARKS if not wanted or b.name in wanted]
    out_path = args.out or str(BENCH_DIR / ("results-quick.json" if args.quick else
                                            "results-partial.json" if wanted else "results.json"))
    for opt in ("workers", "n"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            ap.error(f"--{opt} must be at least 1, got {getattr(args, opt)}")
    cfg = Config(quick=args.quick, workers=args.workers, n=args.n)
    t_all = time.perf_counter()
    results: dict[str, Any] = {
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": machine_info(),
        "benchmarks": {},
    }
    for b in selected:
        print(f"[bench] {b.name}: {b.title} ...", file=sys.stderr, flush=True)
        res = run_one(b, cfg)
        results["benchmarks"][b.name] = res
        print(f"[bench] {b.name}: {res['status']} in {res['seconds']:.1f}s", file=sys.stderr, flush=True)
        if res["status"] == "error":
            print(res["error"][-1500:], file=sys.stderr, flush=True)
    results["duration_s"] = round(time.perf_counter() - t_all, 1)
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["compact_table"] = compact_table(results)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as fh:
        json.dump(_clean(results), fh, indent=1, ensure_ascii=False)
        fh.write("\n")

    m = results["machine"]
    v = m["versions"]
    print(f"# flownb benchmarks{' (--quick)' if args.quick else ''}\n")
    print(f"{m['cpu_count']} × {m['cpu_model']}, Python {m['python']}; flownb {v['flownb']}, "
          f"rq {v['rq']}, redis-py {v['redis-py']}, redis-server {v['redis-server']}, "
          f"langgraph {v['langgraph']}, pocketflow {v['pocketflow']}. "
          f"Figures: median [min–max] over repetitions after a warm-up. 1-minute load average "
          f"at start {m['loadavg_at_start'][0]:.2f}, at end {m['loadavg_at_end'][0]:.2f} "
          f"(per benchmark: results.json).\n")
    print(full_table(results))
    print("\n## Goals\n")
    print(goals_table(results))
    print("\n## Notes\n")
    for name, r in results["benchmarks"].items():
        for n in r.get("notes", []):
            print(f"- **{name}**: {n}")
    llm = results["benchmarks"].get("llm", {}).get("data", {})
    if llm.get("table"):
        print("\n## LLM-bound workload (wall, LLM calls in flight at most)\n")
        print(llm["table"])
        print()
        print(llm["resources_table"])
        if llm.get("cpu_table"):
            print()
            print(llm["cpu_table"])
    rc = results["benchmarks"].get("redis_cost", {}).get("data", {})
    if rc.get("table"):
        print("\n## What flownb costs Redis (issue 21 goals)\n")
        print(rc["table"])
    hp = results["benchmarks"].get("hotpath", {}).get("data", {})
    if hp:
        print("\n## Where the time of a distributed hop goes\n")
        for key in ("roundtrips_per_node_chain", "lua_commands_per_node_chain", "script_fixed_cost",
                    "worker_profile_us_per_node"):
            if key in hp:
                print(f"- {key}: {json.dumps(hp[key], ensure_ascii=False)}")
        for key in ("worker_profile_cumulative", "worker_profile_tottime"):
            if key in hp:
                print(f"\n{key}:\n```")
                print("\n".join(hp[key]))
                print("```")
    print("\n## For the README (performance section)\n")
    print(results["compact_table"])
    if args.write_docs:
        from pathlib import Path

        from .tables import publish, write_docs

        for p in write_docs(publish(Path(out_path))):
            print(f"(rewrote the bench table in {p})")
    failed = [n for n, r in results["benchmarks"].items() if r["status"] == "error"]
    print(f"\n(results in {out_path}; {results['duration_s']:.0f}s"
          + (f"; FAILED: {', '.join(failed)}" if failed else "") + ")")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
