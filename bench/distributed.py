"""Distributed speed: chains, a wide fan-out, state size, and many runs at once.

Every contender runs against the same embedded Redis (unix socket) with its own worker
subprocesses, all alive at the same time, and repetitions are interleaved so a noisy neighbour
hits all of them. A hop is timed end to end: from the client's submit/enqueue call to the
"done" notification the client blocks on (flownb: the run's done stream via ``handle.wait``; RQ and
raw Redis: a BLPOP on a list the last job pushes to). For flownb the span inside the run (the
``created_at`` → ``finished_at`` timestamps the scripts take from Redis ``TIME``) is reported too.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .common import (Cluster, Config, Report, chain_bp, fanout_bp, interleave, paired_ratio, pct,
                     requeued_items)

DEADLINE_S = 300.0


def _executor(c: Cluster, **kw: Any) -> Any:
    from flownb.distributed.client import DistributedExecutor

    return DistributedExecutor(c.url, **kw)


def _meta_span(ex: Any, run_id: str) -> float:
    m = ex.store.meta(run_id)
    return float(m["finished_at"]) - float(m["created_at"])


def _flownb_run(ex: Any, bp: Any, inputs: dict | None = None, sink: dict | None = None) -> float:
    t0 = time.perf_counter()
    h = ex.submit(bp, inputs or {})
    t_sub = time.perf_counter()
    if not h.wait(DEADLINE_S):
        raise TimeoutError(f"flownb run {h.run_id} did not finish in {DEADLINE_S}s")
    t1 = time.perf_counter()
    status = h.status()
    if status != "succeeded":
        raise RuntimeError(f"flownb run {h.run_id} {status}: {ex.store.meta(h.run_id).get('error')}")
    if sink is not None:
        sink.setdefault("in_run", []).append(_meta_span(ex, h.run_id))
        sink.setdefault("submit", []).append(t_sub - t0)
        sink.setdefault("run_ids", []).append(h.run_id)
    return t1 - t0


def _rq_queue(c: Cluster, name: str = "rqpeer") -> Any:
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=c.redis(), serializer=JSONSerializer)


# -- 3. chain --------------------------------------------------------------------------------------

#: issue 21's chain goals: ms per hop at every size, and flat (the longest / 1000 nodes)
CHAIN_GOAL_MS = 0.25
CHAIN_FLAT_MAX = 1.2


def dist_chain(cfg: Config) -> Report:
    rep = Report()
    sizes = cfg.pick((200, 1000), (20, 50))  # flownb, RQ and raw Redis
    # flownb alone: an RQ chain of 10,000 takes ~36 s a repetition on the 2-vCPU VM
    long_sizes = cfg.pick((10000,), (200,))
    reps = cfg.pick(5, 2)
    all_sizes = (*sizes, *long_sizes)
    rep.data["sizes"] = list(all_sizes)
    rep.data["peer_sizes"] = list(sizes)
    for nw in (1, 2):
        with Cluster(name=f"chain{nw}") as c:
            c.flownb_workers(nw, wait=False)
            c.rq_workers(nw, wait=False)
            c.raw_workers(nw, wait=False)
            c.wait_all()
            r = c.redis()
            ex = _executor(c)
            q = _rq_queue(c)
            bps = {n: chain_bp(n) for n in all_sizes}
            sinks: dict[int, dict] = {n: {} for n in all_sizes}

            def flownb_c(n: int) -> Any:
                return lambda: _flownb_run(ex, bps[n], sink=sinks[n]) / n

            def rq_c(n: int) -> Any:
                def go() -> float:
                    key = f"rqdone:{uuid.uuid4().hex}"
                    t0 = time.perf_counter()
                    q.enqueue_call("bench.rq_peer.chain_step", args=(key, 0, n), result_ttl=0)
                    if r.blpop([key], timeout=DEADLINE_S) is None:
                        raise TimeoutError(f"rq chain of {n} did not finish")
                    return (time.perf_counter() - t0) / n
                return go

            def raw_c(n: int) -> Any:
                def go() -> float:
                    key = f"rawdone:{uuid.uuid4().hex}"
                    t0 = time.perf_counter()
                    r.lpush("rawpeer:ready", f"0|{n}|{key}")
                    if r.blpop([key], timeout=DEADLINE_S) is None:
                        raise TimeoutError(f"raw chain of {n} did not finish")
                    return (time.perf_counter() - t0) / n
                return go

            contenders = {}
            for n in all_sizes:
                contenders[f"flownb.{n}"] = flownb_c(n)
                if n in sizes:
                    contenders[f"rq.{n}"] = rq_c(n)
                    contenders[f"raw.{n}"] = raw_c(n)
            out = interleave(contenders, reps, warmup=1)
            for n in all_sizes:
                k = f"w{nw}.n{n}"
                fl = [x * 1e3 for x in out[f"flownb.{n}"]]
                rep.figure(f"flownb.{k}.ms_per_hop", fl, "ms/hop",
                           f"flownb chain {n}, {nw} worker(s), submit→done")
                in_run = sinks[n].get("in_run", [])[-reps:]
                rep.figure(f"flownb.{k}.ms_per_hop_in_run", [x / n * 1e3 for x in in_run], "ms/hop",
                           f"flownb chain {n}, {nw} worker(s), inside the run (Redis TIME)")
                rep.figure(f"flownb.{k}.submit_ms", [x * 1e3 for x in sinks[n].get("submit", [])[-reps:]],
                           "ms", f"flownb submit() of a {n}-node chain")
                if n not in sizes:
                    continue
                rq_ = [x * 1e3 for x in out[f"rq.{n}"]]
                raw = [x * 1e3 for x in out[f"raw.{n}"]]
                rep.figure(f"rq.{k}.ms_per_hop", rq_, "ms/hop", f"plain RQ chain {n}, {nw} worker(s)")
                rep.figure(f"raw.{k}.ms_per_hop", raw, "ms/hop",
                           f"raw Redis hand-off {n}, {nw} process(es) (floor)")
                paired_ratio(rep, f"ratio.{k}.flownb_over_rq", fl, rq_, f"flownb/RQ chain {n}, {nw}w")
                paired_ratio(rep, f"ratio.{k}.flownb_over_raw", fl, raw, f"flownb/raw chain {n}, {nw}w")
    longest, base = max(all_sizes), max(sizes)
    for nw in (1, 2):
        a = rep.figures[f"flownb.w{nw}.n{longest}.ms_per_hop"]["samples"]
        b = rep.figures[f"flownb.w{nw}.n{base}.ms_per_hop"]["samples"]
        paired_ratio(rep, f"ratio.w{nw}.flownb_{longest}_over_{base}", a, b,
                     f"flownb per-hop, chain {longest} / chain {base} ({nw}w): flatness")
    for nw in (1, 2):
        for n in all_sizes:
            rep.goal(f"flownb chain {n}, {nw}w ≤ {CHAIN_GOAL_MS} ms/hop",
                     f"flownb.w{nw}.n{n}.ms_per_hop", "<=", CHAIN_GOAL_MS)
        rep.goal(f"flat: chain {longest}/{base} ≤ {CHAIN_FLAT_MAX}× ({nw}w)",
                 f"ratio.w{nw}.flownb_{longest}_over_{base}", "<=", CHAIN_FLAT_MAX)
    rep.note("A flownb chain runs on one worker however many there are: each commit claims the "
             "single successor for the committing worker (inline continuation), so there is no "
             "queue hop; the second worker only matters for RQ and raw Redis, which alternate.")
    rep.note("Per-hop = (submit→done) / n; it includes submit (lint, compile, upload, START) "
             "amortised over n nodes; '.in_run' is created_at→finished_at from the run's meta.")
    rep.note(f"The {', '.join(map(str, long_sizes))}-node chain is flownb's alone (issue 21: "
             "≤ 0.25 ms/hop flat to 10,000 nodes); RQ and raw Redis run the shorter ones.")
    return rep


# -- 4. fan-out ------------------------------------------------------------------------------------

def dist_fanout(cfg: Config) -> Report:
    rep = Report()
    n = cfg.pick(500, 50)
    reps = cfg.pick(5, 2)
    total_nodes = n + 2
    with Cluster(name="fanout") as c:
        nw = cfg.workers or 2
        c.flownb_workers(nw, wait=False)
        c.rq_workers(nw, wait=False)
        c.wait_all()
        ex = _executor(c)
        r = c.redis()
        q = _rq_queue(c)
        bp = fanout_bp(n)
        sink: dict = {}

        def flownb_f() -> float:
            return _flownb_run(ex, bp, sink=sink)

        def rq_depends() -> float:
            from rq import Queue

            key = f"rqdone:{uuid.uuid4().hex}"
            t0 = time.perf_counter()
            data = [Queue.prepare_data("bench.rq_peer.noop", args=(), result_ttl=600)
                    for _ in range(n)]
            jobs = q.enqueue_many(data)
            q.enqueue_call("bench.rq_peer.done", args=(key,), depends_on=jobs, result_ttl=0)
            if r.blpop([key], timeout=DEADLINE_S) is None:
                raise TimeoutError("rq depends_on fan-out did not finish")
            return time.perf_counter() - t0

        def rq_counter() -> float:
            from rq import Queue

            key = f"rqdone:{uuid.uuid4().hex}"
            ctr = f"rqctr:{uuid.uuid4().hex}"
            t0 = time.perf_counter()
            data = [Queue.prepare_data("bench.rq_peer.counted", args=(ctr, n, key), result_ttl=0)
                    for _ in range(n)]
            q.enqueue_many(data)
            if r.blpop([key], timeout=DEADLINE_S) is None:
                raise TimeoutError("rq counter fan-out did not finish")
            return time.perf_counter() - t0

        out = interleave({"flownb": flownb_f, "rq_counter": rq_counter, "rq_depends_on": rq_depends},
                         reps, warmup=1)
    fl, rc, rd = out["flownb"], out["rq_counter"], out["rq_depends_on"]
    rep.data["n"] = n
    rep.data["workers"] = nw
    rep.figure("flownb.total_s", fl, "s", f"flownb fan-out {n} → all-join, {nw} workers")
    rep.figure("flownb.nodes_per_s", [total_nodes / x for x in fl], "nodes/s",
               f"flownb fan-out {n}: ({n}+2 nodes) / (submit→done)")
    rep.figure("flownb.in_run_s", sink.get("in_run", [])[-reps:], "s", "flownb fan-out, inside the run")
    rep.figure("rq_counter.total_s", rc, "s", f"RQ {n} jobs + counter join, {nw} workers")
    rep.figure("rq_counter.nodes_per_s", [(n + 1) / x for x in rc], "nodes/s",
               f"RQ {n} jobs + counter join ({n}+1 jobs)")
    rep.figure("rq_depends_on.total_s", rd, "s", f"RQ {n} jobs + join with depends_on={n} parents")
    rep.figure("rq_depends_on.nodes_per_s", [(n + 1) / x for x in rd], "nodes/s",
               f"RQ {n} jobs + depends_on join ({n}+1 jobs)")
    paired_ratio(rep, "ratio.flownb_over_rq_counter.nodes_per_s",
                 [total_nodes / x for x in fl], [(n + 1) / x for x in rc], "flownb/RQ(counter) nodes/s")
    paired_ratio(rep, "ratio.flownb_over_rq_depends_on.nodes_per_s",
                 [total_nodes / x for x in fl], [(n + 1) / x for x in rd], "flownb/RQ(depends_on) nodes/s")
    rep.goal("flownb fan-out ≥ 2000 nodes/s", "flownb.nodes_per_s", ">=", 2000)
    rep.note("RQ depends_on with all n parents works in RQ 3.0: on each parent's success RQ "
             "re-reads the status of every parent of the dependent in one pipeline "
             "(Job.dependencies_are_met), O(n²) commands in all, which at n=500 costs less than "
             "RQ's own per-job overhead (compare the two RQ figures). The counter join (each job "
             "INCRs, the n-th enqueues the join) is the closest equivalent of flownb's join. RQ "
             "parents of the depends_on join keep a result TTL (needed for the status check); "
             "all other RQ jobs use result_ttl=0 like flownb's.")
    return rep


# -- 5. state size --------------------------------------------------------------------------------

def _steady_hop(ex: Any, run_id: str, n: int) -> float:
    """Seconds per hop after the first node: first node_succeeded → run_finished, / (n-1)."""
    evs = ex.store.events(run_id, count=10 * n + 10)
    first = next(e.ts for e in evs if e.type == "node_succeeded")
    last = next(e.ts for e in reversed(evs) if e.type == "run_finished")
    return (last - first) / max(1, n - 1)


def dist_state_size(cfg: Config) -> Report:
    rep = Report()
    n = cfg.pick(200, 50)
    reps = cfg.pick(7, 2)
    keys, size = cfg.pick((1000, 1000), (1000, 1000))
    big = {f"k{i}": "x" * size for i in range(keys)}
    with Cluster(name="state") as c:
        c.flownb_workers(1)
        ex = _executor(c)
        bp = chain_bp(n)
        sinks: dict[str, dict] = {"empty": {}, "1mb": {}}
        out = interleave({
            "empty": lambda: _flownb_run(ex, bp, {}, sinks["empty"]) / n,
            "1mb": lambda: _flownb_run(ex, bp, big, sinks["1mb"]) / n,
        }, reps, warmup=1)
        steady = {k: [_steady_hop(ex, rid, n) for rid in sinks[k]["run_ids"][-reps:]] for k in sinks}
        r = c.redis()
        state_bytes = r.memory_usage(ex.store.keys.state(sinks["1mb"]["run_ids"][-1])) or 0
    rep.data["n"] = n
    e = [x * 1e3 for x in out["empty"]]
    b = [x * 1e3 for x in out["1mb"]]
    ie = [x / n * 1e3 for x in sinks["empty"]["in_run"][-reps:]]
    ib = [x / n * 1e3 for x in sinks["1mb"]["in_run"][-reps:]]
    rep.figure("empty.ms_per_hop", e, "ms/hop", f"chain {n}, empty state, submit→done")
    rep.figure("1mb.ms_per_hop", b, "ms/hop", f"chain {n}, 1 MB state ({keys}×{size} B inputs), submit→done")
    rep.figure("empty.ms_per_hop_in_run", ie, "ms/hop", "empty state, inside the run")
    rep.figure("1mb.ms_per_hop_in_run", ib, "ms/hop", "1 MB state, inside the run")
    rep.figure("empty.ms_per_hop_steady", [x * 1e3 for x in steady["empty"]], "ms/hop",
               "empty state, after the first node")
    rep.figure("1mb.ms_per_hop_steady", [x * 1e3 for x in steady["1mb"]], "ms/hop",
               "1 MB state, after the first node")
    rep.figure("1mb.submit_ms", [x * 1e3 for x in sinks["1mb"]["submit"][-reps:]], "ms",
               "submit() with 1 MB of inputs")
    rep.figure("empty.submit_ms", [x * 1e3 for x in sinks["empty"]["submit"][-reps:]], "ms",
               "submit() with no inputs")
    rep.value("1mb.state_hash_bytes", float(state_bytes), "B", "MEMORY USAGE of the run's state hash")
    paired_ratio(rep, "ratio.1mb_over_empty", b, e, "per hop 1 MB / empty (submit→done)")
    paired_ratio(rep, "ratio.1mb_over_empty.in_run", ib, ie, "per hop 1 MB / empty (inside the run)")
    paired_ratio(rep, "ratio.1mb_over_empty.steady", steady["1mb"], steady["empty"],
                 "per hop 1 MB / empty (after the first node)")
    rep.goal("per-hop 1 MB / empty ≤ 1.2×", "ratio.1mb_over_empty", "<=", 1.2)
    rep.note("The start node's input is the whole run input (worker._input → state_many of every "
             "input key), so a 1 MB input is read once per run by the first node even if it never "
             "looks at it; '.steady' excludes that node.")
    return rep


# -- 6. many runs -----------------------------------------------------------------------------------

def mixed_bp(bp_id: str = "bench-mixed-20") -> Any:
    """20 nodes: a chain of 8, a fan-out of 5 into an all-join, then a chain of 6."""
    import flownb

    b = flownb.Builder(bp_id)
    head = [f"a{i}" for i in range(8)]
    fan = [f"f{i}" for i in range(5)]
    tail = [f"z{i}" for i in range(6)]
    for x in head + fan + tail:
        b.node(x, "noop")
    b.node("join", "noop", join="all")
    b.chain(*head)
    for f in fan:
        b.edge(head[-1], f).edge(f, "join")
    b.chain("join", *tail)
    bpx = b.build()
    assert len(bpx.nodes) == 20
    return bpx


def tiny_bp() -> Any:
    """The "tiny run" of issue 21: three no-op nodes in a chain."""
    import flownb

    return flownb.Builder("bench-tiny").node("a", "noop").node("b", "noop").node("c", "noop") \
        .chain("a", "b", "c").build()


def many_runs(cfg: Config) -> Report:
    rep = Report()
    n_runs = cfg.pick(1000, 25)
    n_tiny = cfg.n or cfg.pick(5000, 100)
    reps = cfg.pick(3, 2)
    bp = mixed_bp()
    tiny_rates: list[float] = []
    tiny_lost = 0
    rates, node_rates, p50s, p99s, maxs, submit_rates, client_rates = [], [], [], [], [], [], []
    lost_total, failed_total = 0, 0
    with Cluster(name="many") as c:
        nw = cfg.workers or 2
        c.flownb_workers(nw)
        ex = _executor(c)
        r = c.redis()

        def batch(count: int, graph: Any = bp) -> dict[str, Any]:
            t0 = time.perf_counter()
            handles = [ex.submit(graph) for _ in range(count)]
            t_sub = time.perf_counter() - t0
            deadline = time.monotonic() + DEADLINE_S
            for h in handles:
                h.wait(max(0.01, deadline - time.monotonic()))
            t_all = time.perf_counter() - t0
            pipe = r.pipeline(transaction=False)
            for h in handles:
                pipe.hmget(ex.store.keys.meta(h.run_id), "status", "created_at", "finished_at")
            metas = pipe.execute()
            ok = [(float(m[1]), float(m[2])) for m in metas if m[0] == b"succeeded"]
            failed = sum(1 for m in metas if m[0] in (b"failed", b"cancelled"))
            lost = count - len(ok) - failed
            lat = [f - s for s, f in ok]
            span = (max(f for _, f in ok) - min(s for s, _ in ok)) if ok else float("nan")
            return {"lat": lat, "span": span, "t_sub": t_sub, "t_all": t_all, "ok": len(ok),
                    "failed": failed, "lost": lost}

        batch(min(50, n_runs))  # warm-up
        requeued_before = requeued_items(c.procs)
        for _ in range(reps):
            res = batch(n_runs)
            rates.append(res["ok"] / res["span"])
            node_rates.append(res["ok"] * 20 / res["span"])
            client_rates.append(res["ok"] / res["t_all"])
            submit_rates.append(n_runs / res["t_sub"])
            p50s.append(pct(res["lat"], 50) or 0.0)
            p99s.append(pct(res["lat"], 99) or 0.0)
            maxs.append(max(res["lat"]) if res["lat"] else 0.0)
            lost_total += res["lost"]
            failed_total += res["failed"]
        tiny = tiny_bp()
        batch(min(50, n_tiny), tiny)  # warm-up
        for _ in range(cfg.pick(2, 1)):
            res = batch(n_tiny, tiny)
            tiny_rates.append(res["ok"] / res["span"])
            tiny_lost += res["lost"] + res["failed"]
        requeued = requeued_items(c.procs) - requeued_before
    rep.data["n_runs"] = n_runs
    rep.data["n_tiny"] = n_tiny
    rep.figure("tiny.runs_per_s", tiny_rates, "runs/s", f"{n_tiny} tiny runs (3 no-op nodes) "
               f"submitted at once, {nw} workers (first created → last finished)")
    rep.value("tiny.lost", float(tiny_lost), "runs", "tiny runs lost or failed (all reps)")
    rep.goal(f"{n_tiny} tiny runs at once ≥ 500 runs/s", "tiny.runs_per_s", ">=", 500)
    rep.figure("runs_per_s", rates, "runs/s", f"{n_runs} runs of a 20-node graph, {nw} workers "
               "(first created → last finished)")
    rep.figure("nodes_per_s", node_rates, "nodes/s", "same, node visits per second")
    rep.figure("runs_per_s_client", client_rates, "runs/s", "same, first submit → last wait() returned")
    rep.figure("submit_per_s", submit_rates, "runs/s", "client submit() rate (one thread)")
    rep.figure("latency_p50_s", p50s, "s", "run latency p50 (created_at → finished_at)")
    rep.figure("latency_p99_s", p99s, "s", "run latency p99")
    rep.figure("latency_max_s", maxs, "s", "run latency max")
    rep.value("lost", float(lost_total), "runs", f"runs not finished within {DEADLINE_S:.0f}s (all reps)")
    rep.value("failed", float(failed_total), "runs", "runs failed (all reps)")
    rep.value("requeued_items", float(requeued), "items",
              "items the reaper re-queued (queued lease expired while waiting in the backlog)")
    rep.goal("no run lost", "lost", "==", 0)
    rep.goal("no run failed", "failed", "==", 0)
    rep.note("Latency is queueing-dominated: all runs are submitted at once and 2 workers drain "
             "them, so p50 ≈ half the batch time. The client submits from one thread while the "
             "workers run, on the same 2 CPUs.")
    return rep
