"""What flownb costs Redis: commands, server time and memory per node, per submit, per run.

Issue 21 names the goals: ≤ 12 Redis commands and ≤ 80 µs of server time per chain node, ≤ 30
commands per ``submit()``, ≤ 12 KiB of Redis per finished moderation run with the default TTLs.
Counted the way the server counts them, so the figures do not depend on the machine's speed:

* **commands**: ``INFO commandstats`` deltas (``calls`` per command). The commands a Lua script
  runs are counted there too, so an EVALSHA that runs 20 commands counts 21. Every client is
  included (workers' heartbeats and reaper, the client's wait), amortised over the span.
* **server time**: the redis-server process's CPU (``INFO cpu`` ``used_cpu_user`` +
  ``used_cpu_sys`` deltas) per node — parsing, scripts, replies, everything; beside it the
  scripts' own ``usec`` from commandstats (which already holds their inner commands).
* **memory**: the ``MEMORY USAGE`` (exact, ``SAMPLES 0``) of every key the moderation runs
  created, per run and grouped by kind (``flownb:run:*:events`` …) — the goal's figure, the
  same on every pass. Beside it the ``INFO memory`` ``used_memory`` delta per run, less the
  clients' buffers (``mem_clients_normal``), and raw: those moved by ±4 KiB per run between
  passes of the same code (buffers, allocator, what else the server freed meanwhile).

Spans: a chain of N no-op nodes on the workers (2 by default, ``--workers``); ``submit()`` of
that chain with no worker running (so only the client's commands are counted), the first submit
of a blueprint apart; a fan-out of 500 no-op nodes into an all-join; moderation runs of the
example agent against the bench's LLM server (no latency), default TTLs.
``python -m bench --only redis_cost`` runs it; ``python -m bench.redis_cost`` prints its tables.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from .common import Cluster, Config, Report, chain_bp, fanout_bp, fmt, server_cpu_s

KIB = 1024
#: the goals of issue 21 (figure key, op, target, label)
GOALS = (
    ("chain.cmds_per_node", "<=", 12, "≤ 12 Redis commands per chain node"),
    ("chain.server_us_per_node", "<=", 80, "≤ 80 µs of redis-server CPU per chain node"),
    ("submit.cmds_per_submit", "<=", 30, "≤ 30 Redis commands per submit() (chain)"),
    ("submit_moderation.cmds_per_submit", "<=", 30,
     "≤ 30 Redis commands per submit() (moderation agent)"),
    ("moderation.kib_per_run", "<=", 12, "≤ 12 KiB of Redis per finished moderation run"),
    ("fanout.nodes_per_s", ">=", 3000, "fan-out ≥ 3,000 nodes/s"),
)
TOP = 12


def _used_memory(r: Any) -> tuple[int, int]:
    """``used_memory`` without the clients' buffers, and the raw ``used_memory``."""
    m = r.info("memory")
    return int(m["used_memory"]) - int(m.get("mem_clients_normal", 0)), int(m["used_memory"])


def _server_state(r: Any) -> tuple[dict[str, dict[str, float]], float]:
    """Per-command calls/usec and the server's CPU seconds so far."""
    stats = {}
    for k, v in r.info("commandstats").items():
        name = k[len("cmdstat_"):] if k.startswith("cmdstat_") else k
        stats[name] = {"calls": float(v["calls"]), "usec": float(v["usec"])}
    return stats, server_cpu_s(r)


class Span:
    """The server's counters around a block: commands (calls, usec) and CPU seconds."""

    #: our own measuring commands, left out of the counts
    OURS = ("info", "config|resetstat", "config", "memory|usage", "scan", "dbsize")

    def __init__(self, r: Any) -> None:
        self.r = r
        self.cmds: dict[str, dict[str, float]] = {}
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def __enter__(self) -> Span:
        self._b, self._cpu0 = _server_state(self.r)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall_s = time.perf_counter() - self._t0
        after, cpu1 = _server_state(self.r)
        self.cpu_s = cpu1 - self._cpu0
        for k, v in after.items():
            b = self._b.get(k, {"calls": 0.0, "usec": 0.0})
            if k not in self.OURS and v["calls"] > b["calls"]:
                self.cmds[k] = {"calls": v["calls"] - b["calls"], "usec": v["usec"] - b["usec"]}

    @property
    def calls(self) -> float:
        return sum(v["calls"] for v in self.cmds.values())

    @property
    def script_usec(self) -> float:
        return sum(v["usec"] for k, v in self.cmds.items()
                   if k.startswith(("eval", "fcall")))

    def top(self, per: float, n: int = TOP) -> list[dict[str, Any]]:
        """The commands by count, per unit (node, submit): where the commands go."""
        rows = sorted(self.cmds.items(), key=lambda kv: -kv[1]["calls"])[:n]
        return [{"command": k, "calls": round(v["calls"] / per, 3),
                 "usec": round(v["usec"] / per, 2)} for k, v in rows]


def _record(rep: Report, key: str, span: Span, per: float, unit: str, what: str) -> None:
    rep.value(f"{key}.cmds_per_{unit}", span.calls / per, f"cmds/{unit}",
              f"{what}: Redis commands per {unit} (incl. inside scripts)")
    rep.value(f"{key}.server_us_per_{unit}", span.cpu_s / per * 1e6, f"µs/{unit}",
              f"{what}: redis-server CPU per {unit}")
    rep.value(f"{key}.script_us_per_{unit}", span.script_usec / per, f"µs/{unit}",
              f"{what}: script time per {unit} (commandstats usec of EVALSHA/FCALL)")
    rep.data[f"{key}.top_commands_per_{unit}"] = span.top(per)


@contextlib.contextmanager
def _llm_env(base_url: str) -> Iterator[None]:
    """The flownb LLM settings of the LLM bench, for the workers this process starts (restored)."""
    from .llm_contenders import _configure_flownb_llm

    saved = dict(os.environ)
    _configure_flownb_llm(base_url)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _key_kind(key: str, run_ids: set[str]) -> str:
    parts = key.split(":")
    if len(parts) >= 4 and parts[1] == "run":
        # a child run (the moderation agent's branch subflows) is named <parent>.<node>.<visit>…
        child = parts[2] not in run_ids and parts[2].split(".", 1)[0] in run_ids
        return f"{parts[0]}:run:{'<child>' if child else '*'}:{':'.join(parts[3:])}"
    if parts[0] == "rq" and len(parts) >= 3:
        return f"rq:{parts[1]}:*"
    return key


def _keys_memory(r: Any, before: set[bytes], run_ids: set[str]) -> dict[str, dict[str, float]]:
    """MEMORY USAGE (exact: SAMPLES 0) of every key created since ``before``, by kind."""
    out: dict[str, dict[str, float]] = {}
    for k in r.scan_iter(count=2000):
        if k in before:
            continue
        b = r.memory_usage(k, samples=0) or 0
        kind = _key_kind(k.decode(), run_ids)
        e = out.setdefault(kind, {"keys": 0.0, "bytes": 0.0})
        e["keys"] += 1
        e["bytes"] += b
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["bytes"]))


def _wait_all(hs: list[Any], timeout: float = 300.0) -> None:
    for h in hs:
        if not h.wait(timeout) or h.status() != "succeeded":
            raise RuntimeError(f"run {h.run_id} ended {h.status()}")


def _timed_runs(fn: Callable[[], list[Any]]) -> list[Any]:
    hs = fn()
    _wait_all(hs)
    return hs


def redis_cost(cfg: Config) -> Report:
    from flownb import examples
    from flownb.distributed.client import DistributedExecutor

    from .llm import LLMServer
    from .llm_contenders import rows_for

    rep = Report()
    n_workers = cfg.workers or 2
    n_chain = cfg.n or cfg.pick(1000, 50)
    n_fan = cfg.pick(500, 50)
    n_submit = cfg.pick(50, 5)
    n_mod = cfg.pick(200, 10)
    rep.data.update({"workers": n_workers, "chain_n": n_chain, "fanout_n": n_fan,
                     "submits": n_submit, "moderation_runs": n_mod})
    with LLMServer(0.0) as srv, _llm_env(srv.base_url), Cluster(name="rediscost") as c:
        r = c.redis()
        ex = DistributedExecutor(c.url)
        chain = chain_bp(n_chain)
        mod = examples.load("content_moderation")
        rows = rows_for("content_moderation", n_mod + 5)
        queued: list[Any] = []
        # -- submit(), no worker running: only the client's commands
        with Span(r) as first:
            queued.append(ex.submit(chain))
        with Span(r) as sub:
            queued += [ex.submit(chain) for _ in range(n_submit)]
        queued.append(ex.submit(mod, rows[0]))  # the first of this blueprint sends it
        with Span(r) as sub_mod:
            queued += [ex.submit(mod, rows[i]) for i in range(1, n_submit + 1)]
        _record(rep, "submit", sub, n_submit, "submit", f"submit() of a chain of {n_chain}")
        rep.value("submit.first_cmds", first.calls, "cmds",
                  "the first submit() of a blueprint (sends it)")
        rep.data["submit.first_top_commands"] = first.top(1)
        _record(rep, "submit_moderation", sub_mod, n_submit, "submit",
                "submit() of the moderation agent")
        # -- workers drain what was submitted (the warm-up), then the chain alone
        c.flownb_workers(n_workers)
        _wait_all(queued, 600)
        ex.run(chain, timeout=300)
        with Span(r) as ch:
            _timed_runs(lambda: [ex.submit(chain)])
        _record(rep, "chain", ch, n_chain, "node", f"chain of {n_chain} no-op nodes, "
                f"{n_workers} workers")
        rep.value("chain.ms_per_hop", ch.wall_s / n_chain * 1e3, "ms/hop",
                  f"chain of {n_chain}: submit → done per node")
        # -- fan-out n → all-join
        fan = fanout_bp(n_fan)
        ex.run(fan, timeout=300)
        with Span(r) as fo:
            _timed_runs(lambda: [ex.submit(fan)])
        _record(rep, "fanout", fo, n_fan + 2, "node", f"fan-out {n_fan} → all-join, "
                f"{n_workers} workers")
        rep.value("fanout.nodes_per_s", (n_fan + 2) / fo.wall_s, "nodes/s",
                  f"fan-out {n_fan} → all-join: nodes / (submit → done)")
        # -- Redis per finished moderation run, default TTLs
        _wait_all([ex.submit(mod, rows[-1])])
        time.sleep(0.5)  # let the last commit's follow-ups (heartbeats, RQ bookkeeping) land
        keys0 = set(r.scan_iter(count=2000))
        used0, raw0 = _used_memory(r)
        with Span(r) as md:
            hs = _timed_runs(lambda: [ex.submit(mod, rows[i]) for i in range(n_mod)])
        time.sleep(0.5)  # as before the batch: the last commits' follow-ups land
        used1, raw1 = _used_memory(r)
        run_ids = {h.run_id for h in hs}
        by_kind = _keys_memory(r, keys0, run_ids)
        llm_calls = srv.stats()["calls"]
    key_bytes = sum(v["bytes"] for v in by_kind.values())
    rep.value("moderation.kib_per_run", key_bytes / n_mod / KIB, "KiB/run",
              f"MEMORY USAGE of the keys a finished moderation run leaves ({n_mod} runs, default "
              "TTLs; its child runs included)")
    rep.value("moderation.used_kib_per_run", (used1 - used0) / n_mod / KIB, "KiB/run",
              "used_memory (less client buffers) delta per finished moderation run")
    rep.value("moderation.raw_kib_per_run", (raw1 - raw0) / n_mod / KIB, "KiB/run",
              "raw used_memory delta per finished moderation run (client buffers included)")
    _record(rep, "moderation", md, n_mod, "run", "moderation run")
    rep.data["moderation.keys_per_run"] = {
        k: {"keys": round(v["keys"] / n_mod, 2), "bytes": round(v["bytes"] / n_mod)}
        for k, v in by_kind.items()}
    rep.data["llm_calls_total"] = llm_calls
    for key, op, target, label in GOALS:
        rep.goal(label, key, op, target)
    rep.note("commands from INFO commandstats deltas (the commands inside each script counted "
             "too; every client: workers' heartbeats, the reaper, the client's wait); server time "
             "is redis-server's own CPU (INFO cpu) per node; memory per run is the MEMORY USAGE of "
             "the keys the runs created (by kind in moderation.keys_per_run), with the "
             "used_memory delta (less client buffers, and raw) beside it: that one moves by "
             "±4 KiB per run between passes of the same code")
    rep.data["table"] = cost_table(rep.to_json())
    return rep


def cost_table(res: dict[str, Any]) -> str:
    """Goals and the top commands per node / submit, as markdown (for people and other helpers)."""
    figs, data = res["figures"], res["data"]

    def v(k: str) -> str:
        return fmt(figs[k]["median"]) if k in figs else "-"

    lines = ["| span | commands | redis-server CPU, µs | scripts, µs |", "|---|---|---|---|"]
    for key, unit, what in (("chain", "node", f"chain of {data.get('chain_n')}, per node"),
                            ("fanout", "node", f"fan-out {data.get('fanout_n')} → join, per node"),
                            ("submit", "submit", "submit() of the chain"),
                            ("submit_moderation", "submit", "submit() of moderation"),
                            ("moderation", "run", "moderation run, per run")):
        lines.append(f"| {what} | {v(f'{key}.cmds_per_{unit}')} | "
                     f"{v(f'{key}.server_us_per_{unit}')} | {v(f'{key}.script_us_per_{unit}')} |")
    lines += ["", "| goal (issue 21) | measured | met |", "|---|---|---|"]
    for g in res["goals"]:
        met = {True: "met", False: "**not met**", None: "-"}[g["ok"]]
        lines.append(f"| {g['label']} | {fmt(g['value'])} | {met} |")
    for key, title in (("chain.top_commands_per_node", "Top commands per chain node"),
                       ("submit.top_commands_per_submit", "Top commands per submit()"),
                       ("submit_moderation.top_commands_per_submit",
                        "Top commands per submit() of the moderation agent"),
                       ("fanout.top_commands_per_node", "Top commands per fan-out node")):
        rows = data.get(key) or []
        lines += ["", f"{title} (calls, server µs by commandstats):", "",
                  "| command | calls | µs |", "|---|---|---|"]
        lines += [f"| {x['command']} | {fmt(x['calls'])} | {fmt(x['usec'])} |" for x in rows]
    kinds = data.get("moderation.keys_per_run") or {}
    if kinds:
        lines += ["", "Redis per moderation run, by key kind (MEMORY USAGE):", "",
                  "| key | keys/run | bytes/run |", "|---|---|---|"]
        lines += [f"| `{k}` | {fmt(x['keys'])} | {fmt(x['bytes'])} |" for k, x in kinds.items()]
    return "\n".join(lines)


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.redis_cost")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    from .__main__ import main as bench_main

    return bench_main(["--only", "redis_cost", *(["--quick"] if args.quick else []),
                       *(["--workers", str(args.workers)] if args.workers else [])])


if __name__ == "__main__":
    raise SystemExit(main())
