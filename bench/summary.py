"""Tables from ``results.json``: the full per-figure table and the compact one for the README."""

from __future__ import annotations

from typing import Any

from .common import cluster_ratio_goal, fmt, fmt_fig


def _f(res: dict[str, Any], bench: str, key: str) -> dict[str, Any] | None:
    b = res.get("benchmarks", {}).get(bench)
    if not b or b.get("status") == "error":
        return None
    return b.get("figures", {}).get(key)


def _m(res: dict[str, Any], bench: str, key: str) -> float | None:
    f = _f(res, bench, key)
    return None if f is None else f.get("median")


def _v(res: dict[str, Any], bench: str, key: str, unit: str = "", digits: int = 3) -> str:
    f = _f(res, bench, key)
    if f is None or f.get("median") is None:
        return "n/a"
    return f"{fmt(f['median'], digits)}{(' ' + unit) if unit else ''}"


def _signed(x: float | None) -> str:
    if x is None:
        return "n/a"
    return ("+" if x >= 0 else "−") + fmt(abs(x))


def _ok(value: float | None, op: str, target: float) -> str:
    if value is None:
        return ""
    good = value <= target if op == "<=" else value >= target if op == ">=" else value == target
    return " ✓" if good else " ✗"


def _n(res: dict[str, Any], bench: str, key: str = "n", default: Any = "?") -> Any:
    return res.get("benchmarks", {}).get(bench, {}).get("data", {}).get(key, default)


def _status(res: dict[str, Any], bench: str) -> str | None:
    b = res.get("benchmarks", {}).get(bench)
    if b is None:
        return "not run"
    if b.get("status") == "error":
        return "error: " + (b.get("error") or "").strip().splitlines()[-1][:120] if b.get("error") else "error"
    return None


def full_table(res: dict[str, Any]) -> str:
    lines = ["| benchmark | figure | median [min–max] | n |", "|---|---|---|---|"]
    for name, b in res.get("benchmarks", {}).items():
        if b.get("status") == "error":
            err = (b.get("error") or "").strip().splitlines()
            lines.append(f"| {name} | **ERROR** | {err[-1][:150] if err else ''} | |")
            continue
        if b.get("status") == "not_available":
            lines.append(f"| {name} | (not available yet) | {b.get('notes', [''])[0][:150]} | |")
        for key, fig in b.get("figures", {}).items():
            lines.append(f"| {name} | {fig.get('label', key)} | {fmt_fig(fig)} | {fig.get('n', '')} |")
    return "\n".join(lines)


def goals_table(res: dict[str, Any]) -> str:
    lines = ["| benchmark | goal | measured (median) | met |", "|---|---|---|---|"]
    for name, b in res.get("benchmarks", {}).items():
        for g in b.get("goals", []):
            met = {True: "yes", False: "**no**", None: "-"}[g.get("ok")]
            lines.append(f"| {name} | {g['label']} | {fmt(g.get('value'))} | {met} |")
    return "\n".join(lines)


def compact_table(res: dict[str, Any]) -> str:
    """One line per question, flownb next to the peers measured in the same run."""
    rows: list[tuple[str, str, str, str]] = []

    def add(what: str, flownb: str, peers: str, goal: str) -> None:
        rows.append((what, flownb, peers, goal))

    # 1. in-process chain
    b = "inprocess_chain"
    st = _status(res, b)
    sizes = sorted({int(k.split(".")[1][1:]) for k in res.get("benchmarks", {}).get(b, {}).get("figures", {})
                    if k.startswith("flownb.n")}) if not st else []
    if st:
        add("In-process chain, µs per no-op node", st, "", "≤ 3 µs")
    for n in sizes:
        fl = _m(res, b, f"flownb.n{n}.us_per_node")
        add(f"In-process chain of {n}, µs/node",
            _v(res, b, f"flownb.n{n}.us_per_node", "µs"),
            f"LangGraph {_v(res, b, f'langgraph.n{n}.us_per_node', 'µs')} "
            f"(flownb/LG {_v(res, b, f'ratio.n{n}.flownb_over_langgraph', '×')}), "
            f"PocketFlow {_v(res, b, f'pocketflow.n{n}.us_per_node', 'µs')} "
            f"(flownb/PF {_v(res, b, f'ratio.n{n}.flownb_over_pocketflow', '×')}), "
            f"plain loop {_v(res, b, f'plain.n{n}.us_per_node', 'µs')}",
            "≤ 3 µs" + _ok(fl, "<=", 3.0))
    # 2. in-process fan-out
    b = "inprocess_fanout"
    st = _status(res, b)
    add(f"In-process fan-out {_n(res, b)} → all-join", st or
        f"{_v(res, b, 'flownb.total_ms', 'ms')} ({_v(res, b, 'flownb.us_per_branch', 'µs')}/branch)",
        "" if st else f"LangGraph {_v(res, b, 'langgraph.total_ms', 'ms')} "
        f"({_v(res, b, 'langgraph.us_per_branch', 'µs')}/branch)", "")
    # 2b. the in-process JSON check of outputs and state writes: with and without, one run
    b = "json_check"
    st = _status(res, b)
    add(f"In-process JSON check, chain of {_n(res, b)}, µs/node without / with (cost)", st or
        "; ".join(f"{shape}: {_v(res, b, f'{shape}.off.us_per_node')} / "
                  f"{_v(res, b, f'{shape}.raise.us_per_node')} µs "
                  f"({_v(res, b, f'{shape}.extra_us_per_node', 'µs')})"
                  for shape in ("none", "record", "records20")), "", "")
    # 3. distributed chain
    b = "dist_chain"
    st = _status(res, b)
    ddata = res.get("benchmarks", {}).get(b, {}).get("data", {})
    dsizes = ddata.get("sizes", []) if not st else []
    peers = ddata.get("peer_sizes", dsizes)  # RQ and raw Redis run only these
    if st:
        add("Distributed chain, ms per hop", st, "", "≤ 0.25 ms")
    for nw in (1, 2):
        for n in dsizes:
            fl = _m(res, b, f"flownb.w{nw}.n{n}.ms_per_hop")
            add(f"Distributed chain of {n}, {nw} worker{'s' if nw > 1 else ''}, ms/hop",
                _v(res, b, f"flownb.w{nw}.n{n}.ms_per_hop", "ms"),
                f"RQ {_v(res, b, f'rq.w{nw}.n{n}.ms_per_hop', 'ms')}, "
                f"raw Redis floor {_v(res, b, f'raw.w{nw}.n{n}.ms_per_hop', 'ms')}" if n in peers
                else f"flownb only; chain {n} / {max(peers)}: "
                     f"{_v(res, b, f'ratio.w{nw}.flownb_{n}_over_{max(peers)}', '×')} (≤ 1.2×)",
                "≤ 0.25 ms" + _ok(fl, "<=", 0.25))
    # 4. distributed fan-out
    b = "dist_fanout"
    st = _status(res, b)
    fl = _m(res, b, "flownb.nodes_per_s")
    add(f"Distributed fan-out {_n(res, b)} → all-join, 2 workers, nodes/s", st or _v(res, b, "flownb.nodes_per_s"),
        "" if st else f"RQ counter-join {_v(res, b, 'rq_counter.nodes_per_s')}, "
        f"RQ depends_on {_v(res, b, 'rq_depends_on.nodes_per_s')}", "≥ 2000" + _ok(fl, ">=", 2000))
    # 5. state size
    b = "dist_state"
    st = _status(res, b)
    r = _m(res, b, "ratio.1mb_over_empty")
    add(f"Per hop with 1 MB of state / empty (chain {_n(res, b)})", st or
        f"{_v(res, b, 'ratio.1mb_over_empty', '×')} ({_v(res, b, '1mb.ms_per_hop', 'ms')} vs "
        f"{_v(res, b, 'empty.ms_per_hop', 'ms')}); after the first node "
        f"{_v(res, b, 'ratio.1mb_over_empty.steady', '×')}", "", "≤ 1.2×" + _ok(r, "<=", 1.2))
    # 6. many runs
    b = "many_runs"
    st = _status(res, b)
    lost = _m(res, b, "lost")
    add(f"{_n(res, b, 'n_runs')} runs × 20 nodes submitted at once, 2 workers", st or
        f"{_v(res, b, 'runs_per_s', 'runs/s')}, p50 {_v(res, b, 'latency_p50_s', 's')}, "
        f"p99 {_v(res, b, 'latency_p99_s', 's')}, lost {_v(res, b, 'lost')}, failed {_v(res, b, 'failed')}; "
        f"{_v(res, b, 'nodes_per_s')} nodes/s, {_v(res, b, 'requeued_items')} items re-queued by the reaper",
        "", "none lost" + _ok(lost, "==", 0))
    # 7. memory
    b = "memory"
    st = _status(res, b)
    add(f"Memory per finished {_n(res, b, 'n_nodes')}-node run", st or
        f"Redis {_v(res, b, 'redis_bytes_per_run', 'KiB')}, left after TTL "
        f"{_v(res, b, 'redis_left_after_ttl', 'KiB')}; worker RSS {_v(res, b, 'worker_rss_mb', 'MiB')} "
        f"(+{_v(res, b, 'worker_rss_growth_kb_per_run', 'KiB')}/run), client "
        f"{_v(res, b, 'client_rss_mb', 'MiB')}", "", "freed after TTL")
    # 8. widget
    b = "widget"
    wb = res.get("benchmarks", {}).get(b, {})
    if wb.get("status") == "not_available":
        add(f"Widget updates, {_n(res, b)}-node run", "not available yet",
            f"(stream: {_v(res, b, 'events_per_run')} events at {_v(res, b, 'events_per_s')}/s)", "≤ 10/s")
    else:
        st = _status(res, b)
        u = _m(res, b, "sustained.updates_per_s")
        ex_w = _m(res, b, "dist.widget.excess_updates")
        ex_t = _m(res, b, "dist.tqdm.excess_updates")
        within = None if ex_t is None else (ex_t <= 0 and (ex_w is None or ex_w <= 0))
        add(f"Widget updates, {_n(res, b)}-node distributed run at full speed", st or
            f"RunWidget {_v(res, b, 'dist.widget.updates_sent')}, tqdm "
            f"{_v(res, b, 'dist.tqdm.updates_sent')} updates for a {_v(res, b, 'dist.tqdm.run_s', 's')} run "
            f"of {_v(res, b, 'events_per_run')} events; sustained {_v(res, b, 'sustained.updates_per_s')}/s "
            f"at {_v(res, b, 'sustained.events_per_s')} events/s",
            "" if st else f"in process a fed view costs {_v(res, b, 'inprocess.ratio_with_over_without', '×')} "
            "run time", "≤ 10/s" + _ok(u, "<=", 10) + ("" if within is None else "" if within else " (burst ✗)"))
    # 9. chaos
    b = "chaos"
    st = _status(res, b)
    ok = (_m(res, b, "lost") == 0 and _m(res, b, "double_commits") == 0
          and _m(res, b, "completed") == _m(res, b, "runs")) if not st else None
    add("Chaos: SIGKILL a worker every ~300 ms", st or
        f"{_v(res, b, 'completed')}/{_v(res, b, 'runs')} completed, {_v(res, b, 'lost')} lost, "
        f"{_v(res, b, 'failed')} failed, {_v(res, b, 'double_commits')} double commits, "
        f"{_v(res, b, 'kills')} kills; recovery median {_v(res, b, 'recovery_s', 's')}, "
        f"max {fmt((_f(res, b, 'recovery_s') or {}).get('max'))} s, "
        f"max extra latency {_v(res, b, 'max_extra_latency_s', 's')}", "",
        "all complete, 0 lost, 0 double" + ("" if ok is None else " ✓" if ok else " ✗"))
    # 10. redis drop
    b = "redis_drop"
    st = _status(res, b)
    if st:
        add("Redis restart / connection drop", st, "", "")
    else:
        parts = []
        for sc, label in (("restart_aof", "restart (AOF)"), ("kill9_restart_aof", "kill -9 + restart (AOF)"),
                          ("client_kill", "CLIENT KILL ×5")):
            if _f(res, b, f"{sc}.completed") is None:
                continue
            parts.append(f"{label}: {_v(res, b, f'{sc}.completed')} ok, {_v(res, b, f'{sc}.lost')} lost, "
                         f"{_v(res, b, f'{sc}.double_commits')} dup, {_signed(_m(res, b, f'{sc}.extra_s'))} s")
        add(f"Redis restart / connection drop ({_n(res, b, 'n_runs')} runs in flight)",
            "; ".join(parts), "", "")
    # 12. LLM-bound workload
    b = "llm"
    st = _status(res, b)
    cases = res.get("benchmarks", {}).get(b, {}).get("data", {}).get("cases", {}) if not st else {}
    if st:
        add("LLM-bound: agent runs at once on a 200 ms API", st, "", "")
    for key, case in cases.items():
        r = case.get("results", {})

        def wall(c: str, r: dict[str, Any] = r, n: int = case["n"]) -> str:
            x = r.get(c) or {}
            if not x:
                return "n/a"
            over = f"> {fmt(x['wall_s'])} s ({x['ok']}/{n})" if x.get("unfinished") else \
                f"{fmt(x['wall_s'])} s"
            return f"{over}, {fmt(x.get('max_in_flight'))} in flight"

        ratio = _m(res, b, f"{key}.ratio.cluster_over_plain")
        add(f"LLM-bound: {case['n']} {case['agent'].replace('_', '-')} runs at once "
            f"({case.get('calls')} calls of {fmt(res['benchmarks'][b]['data'].get('latency_s', 0) * 1000)} ms)",
            f"LocalCluster(2) {wall('cluster')}; in process {wall('inprocess')}",
            f"plain asyncio {wall('plain')}, LangGraph {wall('langgraph')}, analytic floor "
            f"{fmt(case.get('floor_s'))} s", f"cluster ≤ {cluster_ratio_goal(int(case['n']))}× plain"
            + _ok(ratio, "<=", cluster_ratio_goal(int(case["n"]))))
    # what flownb costs Redis (bench/redis_cost.py; issue 21's goals)
    b = "redis_cost"
    st = _status(res, b)
    rc_goals = res.get("benchmarks", {}).get(b, {}).get("goals", [])
    met = sum(1 for g in rc_goals if g.get("ok"))
    add(f"Redis per chain node / submit() / moderation run, {_n(res, b, 'workers')} workers", st or
        f"{_v(res, b, 'chain.cmds_per_node')} commands and {_v(res, b, 'chain.server_us_per_node', 'µs')} "
        f"redis-server CPU per node; {_v(res, b, 'submit.cmds_per_submit')} commands per submit(); "
        f"{_v(res, b, 'moderation.kib_per_run', 'KiB')} per finished moderation run; fan-out "
        f"{_v(res, b, 'fanout.nodes_per_s')} nodes/s", "",
        "≤ 12 cmds, ≤ 80 µs, ≤ 30/submit, ≤ 12 KiB, ≥ 3,000 nodes/s"
        + (f" ({met}/{len(rc_goals)} met)" if rc_goals and not st else ""))
    # where the time goes
    b = "hotpath"
    st = _status(res, b)
    add("Where a distributed hop goes", st or
        f"{_v(res, b, 'roundtrips_per_node')} round trips and {_v(res, b, 'commands_per_node')} Redis "
        f"commands per node; script {_v(res, b, 'lua_us_per_call', 'µs')} server time per commit "
        f"(empty EVALSHA round trip {_v(res, b, 'script_empty_rtt_us', 'µs')})", "", "")
    out = ["| Benchmark | flownb | Peers, same run | Goal |", "|---|---|---|---|"]
    for what, fl, peers, goal in rows:
        out.append(f"| {what} | {fl} | {peers} | {goal} |")
    return "\n".join(out)
