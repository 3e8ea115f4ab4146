"""12. The LLM-bound workload: N runs of two agents at once against a 200 ms chat-completions API.

The workload flownb exists for: agents whose nodes are LLM calls. A local OpenAI-compatible
server (:mod:`bench.llm_server`, its own process, 127.0.0.1) answers every call after a fixed
latency and counts the calls in flight. N = 200 and 500 runs of the content-moderation and
blog-post agents (``flownb/examples``) are started all at once, and in the same bench run, one
after the other against the same server:

* ``plain``: plain asyncio + ``openai.AsyncOpenAI``, the agents written by hand — the measured
  floor (its wall is the openai client's own CPU once the waits overlap);
* ``langgraph``: a LangGraph async ``StateGraph`` of the same shape;
* ``inprocess``: ``flownb.run_many`` of the example blueprints in one process;
* ``cluster``: ``LocalCluster(2).map(...)`` — two worker processes on an embedded Redis
  (``concurrency=`` per worker when the worker supports it);
* the analytic floor: the agent's critical path in calls × the latency.

Each contender runs in its own process (:mod:`bench.llm_contenders`) so its peak RSS is its own.
Goals (issue 10, tightened by issue 21): flownb on 2 workers within 1.25× of plain asyncio at
200 runs, 1.15× at 500; flownb in process ahead of
LangGraph; a worker's RSS ≤ 150 MiB at 200 runs; 0 reaper re-queues; and the no-op chain hop on
the same cluster ≤ 0.3 ms. A contender still running at the deadline is stopped and reported
as ``> deadline`` with the runs it finished (its wall is then a lower bound).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any, Self

from .common import ROOT, Config, Report, cluster_ratio_goal, fmt
from .llm_contenders import CRITICAL_PATH_CALLS

AGENTS = ("content_moderation", "blog_post")
CONTENDERS = ("plain", "langgraph", "inprocess", "cluster")
LABELS = {"plain": "plain asyncio + AsyncOpenAI", "langgraph": "LangGraph async",
          "inprocess": "flownb in process (run_many)", "cluster": "flownb LocalCluster(2)",
          "floor": "analytic floor"}
MIB = 1024 * 1024


class LLMServer:
    """The bench's chat-completions server as a subprocess (stopped on exit, whatever happens)."""

    def __init__(self, latency_s: float) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "bench.llm_server", "--latency",
                                   str(latency_s)], cwd=str(ROOT), stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline() if self.p.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"bench LLM server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _call(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, int]:
        return self._call("/stats")  # type: ignore[no-any-return]

    def reset(self) -> None:
        self._call("/reset", "POST")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_contender(name: str, agent: str, n: int, base_url: str, deadline_s: float, *,
                  inline: bool = False, workers: int = 2) -> dict[str, Any]:
    """The contender in a process of its own (its peak RSS is its own), or here (``inline``,
    for --quick: no interpreter start-ups, RSS is the bench process's)."""
    if inline:
        from .llm_contenders import run

        return run(name, agent, n, base_url, deadline_s, workers)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])}
    proc = subprocess.run([sys.executable, "-m", "bench.llm_contenders", name, agent, str(n),
                           base_url, str(deadline_s), str(workers)], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=deadline_s + 120, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])  # type: ignore[no-any-return]
    raise RuntimeError(f"contender {name} ({agent}, {n}) wrote no result (rc={proc.returncode}):"
                       f"\n{proc.stderr[-3000:]}")


def _cell(r: dict[str, Any] | None, n: int) -> str:
    if r is None:
        return "-"
    wall = f"{fmt(r['wall_s'])} s"
    if r.get("unfinished"):
        wall = f"> {wall} ({r['ok']}/{n} done)"
    elif r.get("failed"):
        wall += f" ({r['failed']} failed)"
    return f"{wall}, {fmt(r['max_in_flight'])} in flight"


def _label(c: str, data: dict[str, Any]) -> str:
    w = data.get("workers", 2)
    return LABELS[c].replace("LocalCluster(2)", f"LocalCluster({w})") if c == "cluster" else LABELS[c]


def markdown_table(data: dict[str, Any]) -> str:
    head = "| agent | runs | LLM calls | " + " | ".join(_label(c, data) for c in CONTENDERS)
    lines = [head + " | analytic floor |", "|---|---|---|" + "---|" * (len(CONTENDERS) + 1)]
    for case in data["cases"].values():
        r = case["results"]
        lines.append(f"| {case['agent'].replace('_', '-')} | {case['n']} | {case['calls']} | "
                     + " | ".join(_cell(r.get(c), case["n"]) for c in CONTENDERS)
                     + f" | {fmt(case['floor_s'])} s |")
    return "\n".join(lines)


def resources_table(data: dict[str, Any]) -> str:
    head = ("| agent | runs | runs/s (plain / LangGraph / in process / cluster) | peak RSS, MiB "
            "(plain / LangGraph / in process / cluster client / cluster worker) | re-queues | "
            "cluster ÷ plain | in process ÷ LangGraph |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for case in data["cases"].values():
        r = case["results"]

        def g(c: str, k: str, scale: float = 1.0, r: dict[str, Any] = r) -> str:
            v = (r.get(c) or {}).get(k)
            return fmt(v / scale) if isinstance(v, (int, float)) else "-"

        lines.append(
            f"| {case['agent'].replace('_', '-')} | {case['n']} | "
            + " / ".join(g(c, "runs_per_s") for c in CONTENDERS) + " | "
            + " / ".join([g(c, "client_rss_peak_bytes", MIB) for c in CONTENDERS]
                         + [g("cluster", "worker_rss_peak_bytes", MIB)])
            + f" | {g('cluster', 'requeued')} | {fmt(case.get('cluster_over_plain'))} × | "
            f"{fmt(case.get('inprocess_over_langgraph'))} × |")
    return "\n".join(lines)


def cpu_table(data: dict[str, Any]) -> str:
    """CPU per LLM call beside the redis-server's CPU (issue 21: Redis is the limit)."""
    lines = ["| agent | runs | workers | CPU ms per LLM call (plain / LangGraph / in process / "
             "cluster workers) | redis-server CPU | LLM calls/s | LLM calls/s one Redis core "
             "serves |", "|---|---|---|---|---|---|---|"]
    for case in data["cases"].values():
        r = case["results"]
        cl = r.get("cluster") or {}
        ms = " / ".join(fmt((r.get(c) or {}).get("cpu_ms_per_call")) for c in CONTENDERS)
        lines.append(f"| {case['agent'].replace('_', '-')} | {case['n']} | "
                     f"{cl.get('workers', data.get('workers', 2))} | {ms} | "
                     f"{fmt(cl.get('redis_cpu_pct'))} % | {fmt(cl.get('calls_per_s'))} | "
                     f"{fmt(cl.get('calls_per_redis_core_s'))} |")
    return "\n".join(lines)


def _cpu_figures(r: dict[str, Any], calls: int) -> None:
    """CPU ms per LLM call (the contender's, or the cluster workers'), and for the cluster the
    redis-server's CPU share and the LLM calls/s one Redis core serves at that share."""
    if r.get("cpu_s") is not None and calls:
        r["cpu_ms_per_call"] = r["cpu_s"] * 1000 / calls
    if r.get("redis_cpu_s") is not None and r.get("wall_s"):
        frac = r["redis_cpu_s"] / r["wall_s"]
        r["redis_cpu_pct"] = frac * 100
        r["calls_per_s"] = calls / r["wall_s"]
        r["calls_per_redis_core_s"] = r["calls_per_s"] / frac if frac > 0 else None


def llm(cfg: Config) -> Report:
    rep = Report()
    sizes = (cfg.n,) if cfg.n else cfg.pick((200, 500), (8,))
    workers = cfg.workers or 2
    agents = cfg.pick(AGENTS, ("content_moderation",))
    latency = cfg.pick(0.2, 0.02)
    deadline = cfg.pick(float(os.environ.get("BENCH_LLM_DEADLINE_S", "120")), 20.0)
    data: dict[str, Any] = {"latency_s": latency, "deadline_s": deadline, "cases": {},
                            "workers": workers}
    rep.data.update(data)
    with LLMServer(latency) as srv:
        for agent in agents:
            for n in sizes:
                key = f"{agent}.n{n}"
                case: dict[str, Any] = {"agent": agent, "n": n, "results": {},
                                        "floor_s": CRITICAL_PATH_CALLS[agent] * latency}
                for c in CONTENDERS:
                    srv.reset()
                    r = run_contender(c, agent, n, srv.base_url, deadline, inline=cfg.quick,
                                      workers=workers)
                    st = srv.stats()
                    _cpu_figures(r, st["calls"])
                    r["max_in_flight"] = st["max_in_flight"]
                    r["calls"] = st["calls"]
                    r["runs_per_s"] = r["ok"] / r["wall_s"] if r["wall_s"] else 0.0
                    # a contender stopped at the deadline: its wall at the rate it reached
                    r["wall_est_s"] = (r["wall_s"] if not r["unfinished"]
                                       else r["wall_s"] * n / max(1, r["ok"]))
                    case["results"][c] = r
                    print(f"[bench] llm {key} {c}: {r['wall_s']:.2f}s ok={r['ok']} "
                          f"failed={r['failed']} unfinished={r['unfinished']} "
                          f"in-flight={st['max_in_flight']}", file=sys.stderr, flush=True)
                res = case["results"]
                case["calls"] = res["plain"]["calls"]
                for c, r in res.items():
                    rep.value(f"{key}.{c}.wall_s", r["wall_s"], "s", f"{key} {LABELS[c]}: wall")
                    rep.value(f"{key}.{c}.runs_per_s", r["runs_per_s"], "runs/s",
                              f"{key} {LABELS[c]}: runs/s")
                    rep.value(f"{key}.{c}.max_in_flight", r["max_in_flight"], "calls",
                              f"{key} {LABELS[c]}: LLM calls in flight at most")
                    rep.value(f"{key}.{c}.rss_mib", r["client_rss_peak_bytes"] / MIB, "MiB",
                              f"{key} {LABELS[c]}: peak RSS of the client process")
                    rep.value(f"{key}.{c}.unfinished", r["unfinished"], "runs",
                              f"{key} {LABELS[c]}: runs not finished at the deadline")
                rep.value(f"{key}.floor_s", case["floor_s"], "s", f"{key} analytic floor")
                cl = res["cluster"]
                if cl.get("worker_rss_peak_bytes"):
                    rep.value(f"{key}.cluster.worker_rss_mib", cl["worker_rss_peak_bytes"] / MIB,
                              "MiB", f"{key} flownb worker: peak RSS")
                rep.value(f"{key}.cluster.requeued", cl["requeued"], "items",
                          f"{key} reaper re-queues (no worker was killed)")
                rep.value(f"{key}.cluster.noop_hop_ms", cl["noop_chain_ms_per_hop"], "ms",
                          f"{key} no-op chain of 200 on the same cluster, per hop")
                for c, r in res.items():
                    if r.get("cpu_ms_per_call") is not None:
                        rep.value(f"{key}.{c}.cpu_ms_per_call", r["cpu_ms_per_call"], "ms/call",
                                  f"{key} {_label(c, data)}: CPU per LLM call"
                                  + (" (the workers' CPU)" if c == "cluster" else ""))
                if cl.get("calls_per_redis_core_s") is not None:
                    rep.value(f"{key}.cluster.redis_cpu_pct", cl["redis_cpu_pct"], "%",
                              f"{key} redis-server CPU over the batch (% of one core)")
                    rep.value(f"{key}.cluster.calls_per_redis_core_s",
                              cl["calls_per_redis_core_s"], "calls/s",
                              f"{key} LLM calls/s one Redis core would serve "
                              "(calls/s ÷ redis-server CPU fraction)")
                case["cluster_over_plain"] = cl["wall_est_s"] / res["plain"]["wall_est_s"]
                case["inprocess_over_langgraph"] = (res["inprocess"]["wall_est_s"]
                                                    / res["langgraph"]["wall_est_s"])
                rep.value(f"{key}.ratio.cluster_over_plain", case["cluster_over_plain"], "×",
                          f"{key} flownb cluster wall ÷ plain asyncio wall")
                rep.value(f"{key}.ratio.inprocess_over_langgraph", case["inprocess_over_langgraph"],
                          "×", f"{key} flownb in process wall ÷ LangGraph wall")
                data["cases"][key] = case
                rep.data["cases"] = data["cases"]
    first = f"{agents[0]}.n{sizes[0]}"
    for key in data["cases"]:
        target = cluster_ratio_goal(int(data["cases"][key]["n"]))
        rep.goal(f"{key}: flownb on 2 workers within {target}× of plain asyncio",
                 f"{key}.ratio.cluster_over_plain", "<=", target)
        rep.goal(f"{key}: flownb in process ahead of LangGraph",
                 f"{key}.ratio.inprocess_over_langgraph", "<=", 1.0)
        rep.goal(f"{key}: 0 reaper re-queues", f"{key}.cluster.requeued", "==", 0)
        rep.goal(f"{key}: worker CPU ≤ 4 ms per LLM call", f"{key}.cluster.cpu_ms_per_call",
                 "<=", 4.0)
    rep.goal(f"{first}: worker RSS ≤ 150 MiB", f"{first}.cluster.worker_rss_mib", "<=", 150)
    rep.goal(f"{first}: no-op chain hop ≤ 0.3 ms", f"{first}.cluster.noop_hop_ms", "<=", 0.3)
    conc = data["cases"][first]["results"]["cluster"].get("worker_concurrency", 1)
    rep.note("ratios use, for a contender stopped at the deadline, its wall extrapolated at the "
             "rate it reached (wall × runs ÷ runs done)")
    rep.note(f"latency {latency * 1000:.0f} ms per call, deadline {deadline:.0f} s per contender; "
             f"the cluster's workers ran {conc} node visit(s) at once each "
             + ("(this flownb's worker has no concurrency setting yet)" if conc == 1 else "")
             + ("; --quick: contenders ran inside the bench process (RSS is the bench's)"
                if cfg.quick else ""))
    rep.data["table"] = markdown_table(data)
    rep.data["resources_table"] = resources_table(data)
    rep.data["cpu_table"] = cpu_table(data)
    return rep


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.llm")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--n", type=int, default=None)
    args = ap.parse_args()
    from .__main__ import main as bench_main

    return bench_main(["--only", "llm", *(["--quick"] if args.quick else []),
                       *(["--workers", str(args.workers)] if args.workers else []),
                       *(["--n", str(args.n)] if args.n else [])])


if __name__ == "__main__":
    raise SystemExit(main())
