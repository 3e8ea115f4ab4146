"""Where the time of a distributed hop goes.

1. Redis commands per node of a 1000-node chain: ``INFO commandstats`` deltas (server side; the
   commands a Lua script calls are counted too) and, in a second pass, ``MONITOR`` to split the
   round trips a client makes (top-level commands) from the commands run inside scripts.
2. Server time per hop: ``usec_per_call`` of ``evalsha`` over the chain.
3. cProfile of the worker process over a chain (``bench.worker_proc --profile --burst``: the
   profile covers ``worker.work()`` only), top entries by cumulative and by own time.
4. The same for the many-runs graph (20 nodes with a fan-out of 5): commands and round trips per
   run, which shows what a fan-out costs as RQ jobs.
5. cProfile of the client's ``submit()`` and of the in-process ``flownb.run`` chain.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

from .common import ROOT, Cluster, Config, Proc, Report, chain_bp, fanout_bp


def _cmdstats(r: Any) -> dict[str, dict[str, float]]:
    out = {}
    for k, v in r.info("commandstats").items():
        name = k[len("cmdstat_"):] if k.startswith("cmdstat_") else k
        out[name] = {"calls": float(v["calls"]), "usec": float(v["usec"])}
    return out


def _delta(before: dict, after: dict) -> dict[str, dict[str, float]]:
    out = {}
    for k, v in after.items():
        b = before.get(k, {"calls": 0.0, "usec": 0.0})
        calls = v["calls"] - b["calls"]
        if calls > 0:
            out[k] = {"calls": calls, "usec": v["usec"] - b["usec"]}
    return out


class _Monitor:
    """Counts commands seen by MONITOR, split by source: 'lua' (inside scripts) or a client."""

    def __init__(self, r: Any) -> None:
        self.r = r
        self.counts: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True, name="bench-monitor")

    def _run(self) -> None:
        with self.r.monitor() as m:
            self._ready.set()
            while not self._stop.is_set():
                try:
                    cmd = m.next_command()
                except Exception:  # noqa: BLE001 - connection closed at the end
                    return
                words = cmd["command"].split(" ", 1)
                name = words[0].strip('"').lower()
                if name in ("monitor",):
                    continue
                self.counts[("lua" if cmd["client_type"] == "lua" else "client", name)] += 1

    def __enter__(self) -> _Monitor:
        self._th.start()
        self._ready.wait(5)
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.r.ping()  # one more line so the reader wakes up and sees the stop flag
        self._th.join(5)


def _top(stats: pstats.Stats, key: str, n: int = 10) -> list[str]:
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats(key).print_stats(n)
    lines = [ln.rstrip() for ln in buf.getvalue().splitlines()]
    # keep the table: the header line and the rows after it
    try:
        i = next(i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls"))
    except StopIteration:
        return lines
    rows = [ln.replace(str(ROOT) + "/", "").replace(sys.prefix + "/lib/python3.11/site-packages/", "")
            for ln in lines[i:] if ln.strip()]
    base = os.path.dirname(os.__file__) + "/"
    return [ln.replace(base, "") for ln in rows]


#: (file suffix, function) → what it is, for the per-node breakdown of the worker profile
_BREAKDOWN = [
    ("execute.py", "_execute", "whole node: context, call, commit (cumulative)"),
    ("loop_io.py", "_ainput", "the node's input (carried from the last commit, or read)"),
    ("execute.py", "_attempt", "the node by the attempt policy (inline or via the pool)"),
    ("execute.py", "_commit", "commit: JSON, edges, script call, reply"),
    ("async_store.py", "commit", "AsyncStore.commit (args + EVALSHA + json.loads)"),
    ("store_args.py", "commit_args", "COMMIT's ARGV: stats and event JSON"),
    ("script_line.py", "call", "a script call on the loop's own connection (pack, write, read)"),
    ("commands/core.py", "__call__", "redis-py Script.__call__ (calls not on the line)"),
    ("~", "<method 'send' of '_socket.socket' objects>", "socket send (includes being descheduled while Redis runs)"),
    ("~", "<method 'recv' of '_socket.socket' objects>", "socket receive"),
    ("codec.py", "loads", "json.loads of replies and carried outputs"),
    ("graph.py", "select_edges", "edge choice"),
    ("context.py", "__init__", "NodeContext construction"),
]


def _breakdown(stats: pstats.Stats, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for suffix, fn, label in _BREAKDOWN:
        cum = 0.0
        for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in raw.items():
            if name == fn and (file.endswith(suffix) or suffix == "~" and file == "~"):
                cum += ct
        if cum:
            out[f"{fn} — {label}"] = round(cum / n * 1e6, 1)
    return out


def _per(d: dict[str, dict[str, float]], n: int) -> dict[str, float]:
    return {k: round(v["calls"] / n, 3) for k, v in sorted(d.items(), key=lambda kv: -kv[1]["calls"])}


def _script_costs(r: Any, calls: int) -> dict[str, dict[str, float]]:
    from flownb.distributed import scripts as fscripts
    from flownb.distributed.store import RedisStore

    st = RedisStore(r, prefix="benchlua")
    keys, args = st._run_args("no-such-run")
    keys[9] = "benchlua:bp:none"
    extra = ["n1", 1, '{"x":1}', '{"0":true}', '{"a":1}', '{"b":2}', "w"]
    out = {}
    for name, src in (("empty", "return 1"), ("prelude", fscripts._LIB + "\nreturn 1"),
                      ("commit_refused", fscripts.COMMIT)):
        script = r.register_script(src)
        for _ in range(100):
            script(keys=keys, args=[*args, *extra])
        r.config_resetstat()
        t0 = time.perf_counter()
        for _ in range(calls):
            script(keys=keys, args=[*args, *extra])
        dt = time.perf_counter() - t0
        e = r.info("commandstats")["cmdstat_evalsha"]
        out[name] = {"server_us": round(float(e["usec_per_call"]), 2),
                     "rtt_us": round(dt / calls * 1e6, 1)}
    return out


def hotpath(cfg: Config) -> Report:
    from flownb.distributed.client import DistributedExecutor

    from .distributed import mixed_bp

    rep = Report()
    n = cfg.pick(1000, 100)
    n_mixed = cfg.pick(100, 10)
    with Cluster(name="hotpath") as c:
        r = c.redis()
        ex = DistributedExecutor(c.url)
        bp = chain_bp(n)
        # -- 3. profile first: a burst worker started after the job is queued runs it and exits
        prof_path = os.path.join(c.tmp, "worker.prof")
        h = ex.submit(bp)
        p = Proc("flownb", "prof", [sys.executable, "-m", "bench.worker_proc", "--redis", c.url,
                                    "--name", "bench-prof", "--profile", prof_path, "--burst"], c.tmp)
        c.procs.append(p)
        if not h.wait(120) or h.status() != "succeeded":
            raise RuntimeError(f"profiled run {h.status()}: {p.log_tail()}")
        t_done = time.perf_counter()
        try:  # a --burst worker leaves once the queue is empty; the profile is written then
            p.p.wait(15)
        except subprocess.TimeoutExpired:  # never wait a minute for it: a warm stop writes it too
            p.kill(signal.SIGTERM)
            p.p.wait(30)
        rep.value("burst_exit_s", time.perf_counter() - t_done, "s",
                  "profiled --burst worker: run done → process exited (SIGTERM after 15 s)")
        wstats = pstats.Stats(prof_path)
        rep.data["worker_profile_cumulative"] = _top(wstats, "cumulative", 10)
        rep.data["worker_profile_tottime"] = _top(wstats, "tottime", 12)
        rep.data["worker_profile_us_per_node"] = _breakdown(wstats, n)
        # a worker that runs visits on an event-loop thread is profiled there: its waits in the
        # selector are idle time, not work
        idle = sum(v[2] for k, v in wstats.stats.items()  # type: ignore[attr-defined]
                   if k[0] == "~" and any(w in k[2] for w in ("select", "epoll", "time.sleep")))
        rep.value("profiled_us_per_node", (wstats.total_tt - idle) / n * 1e6, "µs/node",  # type: ignore[attr-defined]
                  f"worker time on flownb's job path per node under cProfile, idle waits "
                  f"excluded (chain {n})")

        # -- 1./2. commandstats around a chain with a normal worker
        [w] = c.flownb_workers(1)
        ex.run(bp, timeout=120)  # warm-up: graph compiled and cached in the worker
        r.config_resetstat()
        before = _cmdstats(r)
        t0 = time.perf_counter()
        h = ex.submit(bp)
        h.wait(120)
        wall = time.perf_counter() - t0
        after = _cmdstats(r)
        d = _delta(before, after)
        d.pop("info", None)
        d.pop("config", None)
        per_node = _per(d, n)
        total_calls = sum(v["calls"] for k, v in d.items())
        evalsha = d.get("evalsha", {"calls": 0, "usec": 0})
        rep.value("commands_per_node", total_calls / n, "cmds/node",
                  f"all Redis commands per node (incl. inside scripts), chain {n}")
        rep.value("evalsha_per_node", evalsha["calls"] / n, "calls/node", "script calls per node")
        rep.value("lua_us_per_node", evalsha["usec"] / max(1, evalsha["calls"]) *
                  (evalsha["calls"] / n), "µs/node", "server time in scripts per node (commandstats usec)")
        rep.value("lua_us_per_call", evalsha["usec"] / max(1, evalsha["calls"]), "µs/call",
                  "server time per EVALSHA")
        rep.value("hop_ms", wall / n * 1e3, "ms/hop", "the same chain, submit→done")
        rep.data["commandstats_per_node_chain"] = per_node
        rep.data["commandstats_usec_per_call_chain"] = {
            k: round(v["usec"] / v["calls"], 2) for k, v in d.items() if v["calls"]}

        # -- 1b. MONITOR: round trips (client) vs inside scripts
        with _Monitor(c.redis()) as mon:
            h = ex.submit(bp)
            h.wait(120)
        client_cmds = {k[1]: v for k, v in mon.counts.items() if k[0] == "client"}
        lua_cmds = {k[1]: v for k, v in mon.counts.items() if k[0] == "lua"}
        rt = sum(client_cmds.values())
        rep.value("roundtrips_per_node", rt / n, "round trips/node",
                  f"top-level commands (all clients) per node, chain {n}")
        rep.data["roundtrips_per_node_chain"] = {k: round(v / n, 3) for k, v in
                                                 sorted(client_cmds.items(), key=lambda kv: -kv[1])}
        rep.data["lua_commands_per_node_chain"] = {k: round(v / n, 3) for k, v in
                                                   sorted(lua_cmds.items(), key=lambda kv: -kv[1])}

        # -- 4. a 20-node graph with a fan-out of 5 (the many-runs graph), 1 worker
        mbp = mixed_bp()
        ex.run(mbp, timeout=60)
        r.config_resetstat()
        before = _cmdstats(r)
        with _Monitor(c.redis()) as mon:
            hs = [ex.submit(mbp) for _ in range(n_mixed)]
            for hh in hs:
                hh.wait(120)
        d = _delta(before, _cmdstats(r))
        d.pop("info", None)
        d.pop("config", None)
        client_m = {k[1]: v for k, v in mon.counts.items() if k[0] == "client"}
        rep.value("mixed_commands_per_run", sum(v["calls"] for v in d.values()) / n_mixed,
                  "cmds/run", "all commands per run of the 20-node fan-out graph (monitor on)")
        rep.value("mixed_roundtrips_per_run", sum(client_m.values()) / n_mixed, "round trips/run",
                  "top-level commands per run of the 20-node graph (client + workers)")
        rep.data["mixed_roundtrips_per_run"] = {k: round(v / n_mixed, 2) for k, v in
                                                sorted(client_m.items(), key=lambda kv: -kv[1])}
        rep.data["mixed_commandstats_per_run"] = _per(d, n_mixed)

        # -- 4b. a fan-out of nf branches into an all-join, 1 worker: what one branch costs
        nf = cfg.pick(500, 50)
        fbp = fanout_bp(nf)
        ex.run(fbp, timeout=60)
        r.config_resetstat()
        before = _cmdstats(r)
        with _Monitor(c.redis()) as mon:
            ex.submit(fbp).wait(120)
        d = _delta(before, _cmdstats(r))
        d.pop("info", None)
        d.pop("config", None)
        client_f = {k[1]: v for k, v in mon.counts.items() if k[0] == "client"}
        ev = d.get("evalsha", {"calls": 0, "usec": 0})
        rep.value("fanout_roundtrips_per_branch", sum(client_f.values()) / nf, "round trips/branch",
                  f"top-level commands per branch, fan-out {nf} → join, 1 worker")
        rep.value("fanout_commands_per_branch", sum(v["calls"] for v in d.values()) / nf, "cmds/branch",
                  "all commands per branch (incl. inside scripts; monitor on)")
        rep.value("fanout_lua_us_per_call", ev["usec"] / max(1, ev["calls"]), "µs/call",
                  "server time per EVALSHA in the fan-out")
        rep.data["fanout_roundtrips_per_branch"] = {k: round(v / nf, 3) for k, v in
                                                    sorted(client_f.items(), key=lambda kv: -kv[1])}
        rep.data["fanout_lua_commands_per_branch"] = {
            k[1]: round(v / nf, 3) for k, v in sorted(mon.counts.items(), key=lambda kv: -kv[1])
            if k[0] == "lua"}

        # -- 2b. the fixed cost of a script call: empty script, the shared prelude alone, and the
        # COMMIT script refused at its first check (run not running), same KEYS/ARGV shape
        rep.data["script_fixed_cost"] = _script_costs(r, cfg.pick(3000, 300))
        for name, v in rep.data["script_fixed_cost"].items():
            rep.value(f"script_{name}_server_us", v["server_us"], "µs", f"EVALSHA {name}: server time")
            rep.value(f"script_{name}_rtt_us", v["rtt_us"], "µs", f"EVALSHA {name}: client round trip")

        # -- 5. client submit() and in-process run profiles
        prof = cProfile.Profile()
        k = cfg.pick(200, 20)
        prof.enable()
        hs = [ex.submit(mbp) for _ in range(k)]
        prof.disable()
        for hh in hs:
            hh.wait(120)
        st = pstats.Stats(prof)
        rep.value("submit_ms", st.total_tt / k * 1e3, "ms", "client submit() of the 20-node graph (under cProfile)")
        rep.data["submit_profile_tottime"] = _top(st, "tottime", 12)
        rep.data["submit_profile_cumulative"] = _top(st, "cumulative", 12)
        c.stop([w])

    import flownb

    cbp = chain_bp(n)
    flownb.run(cbp, {})
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(20):
        flownb.run(cbp, {})
    prof.disable()
    st = pstats.Stats(prof)
    rep.data["inprocess_profile_tottime"] = _top(st, "tottime", 12)
    rep.note("commands_per_node counts what the server executes, including the commands inside "
             "each script; roundtrips_per_node counts only top-level commands (what costs a "
             "network/IPC round trip), from MONITOR. Heartbeats, the reaper and the client's "
             "XREAD are included, amortised over the chain.")
    return rep
