"""Reliability under failure: workers killed with SIGKILL while runs are in flight (chaos), and
Redis connections dropped (server restart with AOF, server SIGKILL + restart, CLIENT KILL).

What is counted, from each run's own event stream (``flownb:run:<id>:events``) and meta:

* completed: status ``succeeded``; failed: ``failed``/``cancelled`` (with the error type);
* lost: not finished within the deadline;
* double commits: more than one ``node_succeeded`` event for the same (node, visit);
* redeliveries: ``node_started`` events with ``delivery`` > 1 (a node run again after a crash).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from typing import Any

from .common import Cluster, Config, Proc, Report, pct, requeued_items

LEASE_TTL = 2.0
REAP_S = 0.5


def _audit(ex: Any, run_ids: list[str]) -> dict[str, Any]:
    """Outcome, double commits and timings of runs, from Redis."""
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    doubles: list[dict[str, Any]] = []
    redeliveries = 0
    latencies: list[float] = []
    started: dict[tuple[str, str, int], list[tuple[float, str]]] = {}
    succeeded: dict[tuple[str, str, int], list[tuple[float, str]]] = {}
    for rid in run_ids:
        meta = ex.store.meta(rid)
        st = meta.get("status", "missing")
        if st == "running":
            st = "lost"
        statuses[st] += 1
        if st in ("failed", "cancelled") and meta.get("error"):
            try:
                errors[json.loads(meta["error"]).get("type", "?")] += 1
            except ValueError:
                errors["?"] += 1
        if meta.get("finished_at"):
            latencies.append(float(meta["finished_at"]) - float(meta["created_at"]))
        per: Counter[tuple[str, int]] = Counter()
        for e in ex.store.events(rid, count=100_000):
            if e.type == "node_succeeded":
                v = int(e.data.get("visit", 0))
                per[(e.node_id or "", v)] += 1
                succeeded.setdefault((rid, e.node_id or "", v), []).append((e.ts, e.data.get("worker", "")))
            elif e.type == "node_started":
                v = int(e.data.get("visit", 0))
                if int(e.data.get("delivery", 1)) > 1:
                    redeliveries += 1
                started.setdefault((rid, e.node_id or "", v), []).append((e.ts, e.data.get("worker", "")))
        for (node, visit), k in per.items():
            if k > 1:
                doubles.append({"run": rid, "node": node, "visit": visit, "commits": k})
    return {"statuses": dict(statuses), "errors": dict(errors), "doubles": doubles,
            "redeliveries": redeliveries, "latencies": latencies, "started": started,
            "succeeded": succeeded}


def _executions(admin: Any, run_ids: list[str]) -> tuple[int, int]:
    """(node bodies executed, visits executed more than once), from the nodes' own counters."""
    pipe = admin.pipeline(transaction=False)
    for rid in run_ids:
        pipe.hvals(f"benchexec:{rid}")
    counts = [int(v) for vals in pipe.execute() for v in vals]
    return sum(counts), sum(1 for c in counts if c > 1)


def _recovery(audit: dict[str, Any], kills: list[tuple[float, str]]) -> list[float]:
    """For each kill of worker w at t: the items w had started and never committed were in
    flight; their recovery time is the commit by another worker minus t."""
    return [x for per in _recovery_per_kill(audit, kills) for x in per]


def _recovery_per_kill(audit: dict[str, Any], kills: list[tuple[float, str]]) -> list[list[float]]:
    res = []
    for t_kill, name in kills:
        out: list[float] = []
        res.append(out)
        for key, starts in audit["started"].items():
            if not any(w == name for _, w in starts):
                continue
            commits = audit["succeeded"].get(key, [])
            if any(w == name for _, w in commits):
                continue  # w finished it before it died
            later = [ts for ts, w in commits if ts >= t_kill]
            if later:
                out.append(min(later) - t_kill)
            elif not commits:
                out.append(float("inf"))  # never recommitted (run lost or failed)
    return res


# -- 9. chaos ------------------------------------------------------------------------------------------

def chaos(cfg: Config) -> Report:
    from flownb.distributed.client import DistributedExecutor
    from flownb.distributed.store import StoreSettings

    from .chaos_nodes import chaos_blueprint

    rep = Report()
    n_runs = cfg.pick(100, 10)
    kill_window = cfg.pick(20.0, 4.0)
    deadline_s = cfg.pick(180.0, 30.0)
    # --quick: nodes long enough that a batch outlives the first kills (15 ms nodes finished the
    # quick batch before the first kill: a chaos check that killed nobody and passed)
    ms = cfg.pick(15.0, 150.0)
    min_kills = cfg.pick(10, 2)
    rng = random.Random(1234)
    with Cluster(name="chaos") as c:
        bp = chaos_blueprint(ms, exec_redis=c.url)
        wkw = dict(lease_ttl=LEASE_TTL, reap_interval=REAP_S, imports=("bench.chaos_nodes",))
        workers: list[Proc] = c.flownb_workers(3, **wkw)
        ex = DistributedExecutor(c.url, settings=StoreSettings(lease_ttl_s=LEASE_TTL, queued_ttl_s=5.0))
        admin = c.redis()

        def batch() -> tuple[list[str], float]:
            t0 = time.time()
            hs = [ex.submit(bp, {"x": i}) for i in range(n_runs)]
            end = time.monotonic() + deadline_s
            for h in hs:
                h.wait(max(0.01, end - time.monotonic()))
            return [h.run_id for h in hs], time.time() - t0

        # baseline: same batch, nobody killed
        base_ids, base_t = batch()
        base = _audit(ex, base_ids)

        kills: list[tuple[float, str]] = []
        qlen: list[int] = []
        stop = threading.Event()

        def killer() -> None:
            # the window, or up to 3× as long while fewer than min_kills workers were killed
            # (a loaded machine restarts workers slowly, and only registered ones are killed)
            t_start = time.monotonic()
            while not stop.is_set() and (
                    time.monotonic() < t_start + kill_window
                    or len(kills) < min_kills and time.monotonic() < t_start + 3 * kill_window):
                stop.wait(rng.uniform(0.2, 0.4))
                if stop.is_set():
                    break
                # a worker still booting has nothing in flight: pick among registered ones
                live = [p for p in workers if p.alive() and admin.exists(f"rq:worker:{p.name}")]
                if not live:
                    continue
                victim = rng.choice(live)
                t = time.time()
                victim.kill(signal.SIGKILL)
                victim.p.wait()
                kills.append((t, victim.name))
                try:
                    qlen.append(int(admin.llen("rq:queue:flownb")))
                except Exception:  # noqa: BLE001
                    qlen.append(-1)
                workers.extend(c.flownb_workers(1, wait=False, **wkw))  # restart at once

        th = threading.Thread(target=killer, name="bench-chaos-killer", daemon=True)
        th.start()
        try:
            ids, total_t = batch()
            # on a loaded machine the batch can end before enough kills (restarted workers are
            # slow to register): run it again under the same killer while its window lasts, so
            # the check kills enough workers instead of failing (or passing) on too few
            while len(kills) < min_kills and th.is_alive() and len(ids) < 5 * n_runs:
                more, more_t = batch()
                ids += more
                total_t += more_t
        finally:
            stop.set()
            th.join(10)
        audit = _audit(ex, ids)
        audit["executions"] = _executions(admin, ids)
        base["executions"] = _executions(admin, base_ids)
        alive_after = sum(1 for p in workers if p.alive())
        requeued = requeued_items(workers)
    rec = [x for x in _recovery(audit, kills) if x != float("inf")]
    never = sum(1 for x in _recovery(audit, kills) if x == float("inf"))
    st = audit["statuses"]
    lat, blat = audit["latencies"], base["latencies"]
    rep.value("runs", float(len(ids)), "runs", f"runs submitted under chaos ({len(ids) // n_runs} "
              f"batch(es) of {n_runs})")
    rep.value("completed", float(st.get("succeeded", 0)), "runs", "runs succeeded")
    rep.value("failed", float(st.get("failed", 0) + st.get("cancelled", 0)), "runs",
              f"runs failed ({audit['errors'] or 'none'})")
    rep.value("lost", float(st.get("lost", 0) + st.get("missing", 0)), "runs",
              f"runs not finished within {deadline_s:.0f}s")
    rep.value("double_commits", float(len(audit["doubles"])), "(node, visit)",
              ">1 node_succeeded event for one (node, visit)")
    rep.value("kills", float(len(kills)), "SIGKILLs", f"workers killed (every ~300 ms for {kill_window:.0f}s, up to "
              f"{3 * kill_window:.0f}s until {min_kills} were killed)")
    rep.value("redeliveries", float(audit["redeliveries"]), "node runs", "node_started with delivery > 1")
    ex_total, ex_multi = audit["executions"]
    commits = sum(len(v) for v in audit["succeeded"].values())
    rep.value("node_executions", float(ex_total), "bodies",
              "node bodies executed (external HINCRBY in the node, outside the commit path)")
    rep.value("node_commits", float(commits), "commits", "node visits committed (node_succeeded)")
    rep.value("executions_beyond_commits", float(ex_total - commits), "bodies",
              "node bodies run again after a kill (executions − commits)")
    rep.value("visits_executed_twice_or_more", float(ex_multi), "(node, visit)",
              "visits whose body ran more than once")
    rep.value("node_executions_baseline", float(base["executions"][0]), "bodies",
              "node bodies executed in the batch without kills (= its commits)")
    rep.value("inflight_never_recommitted", float(never), "items", "in-flight items of killed workers never committed")
    if rec:
        rep.figure("recovery_s", rec, "s", "kill → commit of an in-flight node by another worker")
    else:
        rep.value("recovery_s", 0.0, "s", "kill → commit of an in-flight node (no node was in flight at a kill)")
    rep.figure("latency_chaos_s", lat, "s", "run latency under chaos (created → finished)")
    rep.figure("latency_baseline_s", blat, "s", "run latency, same batch without kills")
    rep.value("max_extra_latency_s", (max(lat) if lat else 0) - (max(blat) if blat else 0), "s",
              "max latency under chaos − max latency without")
    rep.value("batch_s_chaos", total_t, "s", "whole chaos batch (submit → last run finished)")
    rep.value("batch_s_baseline", base_t, "s", "whole batch without kills")
    rep.value("workers_alive_after", float(alive_after), "workers", "worker processes alive at the end")
    rep.value("requeued_items", float(requeued), "items", "items re-queued by the reapers (from the worker logs)")
    rep.goal("all runs complete", "completed", "==", len(ids))
    rep.goal("0 lost", "lost", "==", 0)
    rep.goal("0 double commits", "double_commits", "==", 0)
    rep.goal(f"at least {min_kills} workers killed", "kills", ">=", min_kills)
    lost = st.get("lost", 0) + st.get("missing", 0)
    problems = [f"only {len(kills)} worker(s) killed (at least {min_kills} needed: else the check "
                "proves nothing)"] if len(kills) < min_kills else []
    if lost:
        problems.append(f"{lost} run(s) lost (not finished within {deadline_s:.0f}s)")
    if audit["doubles"]:
        problems.append(f"{len(audit['doubles'])} visit(s) committed twice: {audit['doubles'][:5]}")
    if problems:  # the bench reports an error, and `python -m bench` exits 1
        raise AssertionError("chaos check failed: " + "; ".join(problems))
    rep.data["kills"] = [{"t": t, "worker": w, "rq_queue_len": q} for (t, w), q in zip(kills, qlen)]
    per_kill = _recovery_per_kill(audit, kills)
    rep.data["recovery_per_kill"] = [
        {"t": t, "worker": w, "rq_queue_len": q, "items_in_flight": len(v),
         "max_recovery_s": max(v) if v else None}
        for (t, w), q, v in zip(kills, qlen, per_kill)]
    if qlen:
        rep.figure("rq_queue_len_at_kill", [float(q) for q in qlen], "jobs",
                   "RQ jobs waiting in the flownb queue at each kill (backlog a re-queued node waits behind)")
    rep.data["doubles"] = audit["doubles"][:50]
    rep.data["errors"] = audit["errors"]
    rep.data["recovery_p50_s"] = pct(rec, 50)
    rep.note(f"{n_runs} runs of an 8-visit graph (parallel branch + exclusive branches into an all-join, "
             f"a 3-turn guarded loop), every node sleeping {ms:.0f} ms, 3 workers with lease TTL "
             f"{LEASE_TTL:.0f}s and reap interval {REAP_S}s; a killed worker is replaced at once.")
    rep.note("node_executions counts every run of a node body with an external HINCRBY inside the "
             "node (not from flownb's own events): executions − commits is the work re-done after "
             "kills; each kill can re-run at most the visits the killed worker had in flight.")
    rep.note("recovery_s: for each kill, the nodes the killed worker had started and not committed "
             "(its node_started events without its node_succeeded) were in flight; the figure is "
             "the time from the kill to their commit by another worker (bounded below by the lease "
             "TTL). An RQ job a worker had dequeued but not claimed yet is recovered by the queued "
             "lease (5 s) instead and shows only in the extra latency.")
    return rep


# -- 10. Redis connection drop -------------------------------------------------------------------------

def _drop_batch(c: Cluster, ex: Any, bp: Any, n_runs: int, deadline_s: float,
                disrupt: Any = None, delay: float = 0.3) -> dict[str, Any]:
    """Submit ``n_runs``, disrupt from a thread ``delay`` s later, wait for every run; the batch
    time is first created_at → last finished_at (Redis TIME), so the disruption's own pauses do
    not count unless they delay the runs."""
    ids = [ex.submit(bp).run_id for _ in range(n_runs)]
    info: dict[str, Any] = {}
    th = None
    if disrupt is not None:
        def go() -> None:
            time.sleep(delay)
            admin = c.redis()
            try:
                info["in_flight_at_disruption"] = sum(
                    1 for rid in ids if admin.hget(ex.store.keys.meta(rid), "status") == b"running")
            except Exception:  # noqa: BLE001
                info["in_flight_at_disruption"] = None
            try:
                info.update(disrupt() or {})
            except Exception as exc:  # noqa: BLE001
                info["disrupt_error"] = f"{type(exc).__name__}: {exc}"[:300]

        th = threading.Thread(target=go, name="bench-disrupt", daemon=True)
        th.start()
    end = time.monotonic() + deadline_s
    for rid in ids:
        try:
            ex.store.wait_done(rid, max(0.01, end - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - the client itself may fail: report it
            info.setdefault("client_errors", []).append(f"{type(exc).__name__}: {exc}"[:200])
    if th is not None:
        th.join(30)
    audit = _audit(ex, ids)
    created, finished = [], []
    for rid in ids:
        m = ex.store.meta(rid)
        if m.get("created_at"):
            created.append(float(m["created_at"]))
        if m.get("finished_at"):
            finished.append(float(m["finished_at"]))
    total = (max(finished) - min(created)) if created and finished else float("nan")
    return {"ids": ids, "total_s": total, "audit": audit, **info}


def redis_drop(cfg: Config) -> Report:
    from flownb.distributed.client import DistributedExecutor
    from flownb.distributed.store import StoreSettings

    from .chaos_nodes import chain_blueprint

    rep = Report()
    n_runs = cfg.pick(10, 4)
    n_nodes = cfg.pick(200, 60)
    ms = 5.0
    deadline_s = cfg.pick(90.0, 30.0)
    bp = chain_blueprint(n_nodes, ms)
    scenarios: dict[str, dict[str, Any]] = {}
    with Cluster(name="redisdrop", appendonly=True) as c:
        workers = c.flownb_workers(2, lease_ttl=LEASE_TTL, reap_interval=REAP_S,
                                   imports=("bench.chaos_nodes",))
        ex = DistributedExecutor(c.url, settings=StoreSettings(lease_ttl_s=LEASE_TTL, queued_ttl_s=5.0))
        admin = c.redis()

        def restart() -> dict[str, Any]:
            t = time.perf_counter()
            c.srv.restart()
            return {"outage_s": time.perf_counter() - t}

        def kill9_restart() -> dict[str, Any]:
            t = time.perf_counter()
            os.kill(c.srv.pid, signal.SIGKILL)
            time.sleep(0.05)
            c.srv.restart()
            return {"outage_s": time.perf_counter() - t}

        def client_kill() -> dict[str, Any]:
            killed = 0
            for _ in range(5):
                killed += int(admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
                time.sleep(0.2)
            return {"connections_killed": killed}

        scenarios["baseline"] = _drop_batch(c, ex, bp, n_runs, deadline_s)
        for name, fn in (("restart_aof", restart), ("kill9_restart_aof", kill9_restart),
                         ("client_kill", client_kill)):
            try:
                scenarios[name] = _drop_batch(c, ex, bp, n_runs, deadline_s, fn)
            except Exception as exc:  # noqa: BLE001 - report what broke, go on with the next
                scenarios[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            scenarios[name]["workers_alive"] = sum(1 for p in workers if p.alive())
            dead = [p for p in workers if not p.alive()]
            if dead:  # replace dead workers so the next scenario starts from the same place
                scenarios[name]["worker_log_tail"] = dead[0].log_tail(600)
                workers = [p for p in workers if p.alive()]
                workers += c.flownb_workers(len(dead), lease_ttl=LEASE_TTL, reap_interval=REAP_S,
                                            imports=("bench.chaos_nodes",))
    rep.data["n_runs"] = n_runs
    base_t = scenarios["baseline"]["total_s"]
    summary_rows = []
    for name, s in scenarios.items():
        if "error" in s:
            rep.note(f"{name}: the benchmark itself failed: {s['error']}")
            rep.value(f"{name}.completed", 0.0, "runs", f"{name}: runs succeeded (scenario errored)")
            continue
        a = s["audit"]
        st = a["statuses"]
        ok = st.get("succeeded", 0)
        lost = st.get("lost", 0) + st.get("missing", 0)
        failed = st.get("failed", 0) + st.get("cancelled", 0)
        rep.value(f"{name}.completed", float(ok), "runs", f"{name}: runs succeeded of {n_runs}")
        rep.value(f"{name}.lost", float(lost), "runs", f"{name}: runs lost")
        rep.value(f"{name}.failed", float(failed), "runs", f"{name}: runs failed {a['errors'] or ''}")
        rep.value(f"{name}.double_commits", float(len(a["doubles"])), "(node, visit)",
                  f"{name}: double commits")
        rep.value(f"{name}.batch_s", s["total_s"], "s", f"{name}: batch time")
        if name != "baseline":
            rep.value(f"{name}.extra_s", s["total_s"] - base_t, "s", f"{name}: batch time − baseline (first created → last finished)")
            rep.value(f"{name}.workers_alive", float(s.get("workers_alive", 0)), "workers",
                      f"{name}: workers alive after (of 2)")
        if s.get("in_flight_at_disruption") is not None:
            rep.value(f"{name}.in_flight", float(s["in_flight_at_disruption"]), "runs",
                      f"{name}: runs still running when the disruption started")
        if "outage_s" in s:
            rep.value(f"{name}.outage_s", s["outage_s"], "s", f"{name}: server down (stop → PING ok)")
        summary_rows.append(f"{name}: {ok}/{n_runs} succeeded, {failed} failed, {lost} lost, "
                            f"{len(a['doubles'])} double commits, {a['redeliveries']} redeliveries, "
                            f"batch {s['total_s']:.2f}s (baseline {base_t:.2f}s)"
                            + (f", workers alive after: {s.get('workers_alive')}/2" if name != "baseline" else "")
                            + (f", {s['in_flight_at_disruption']} runs in flight at the disruption"
                               if s.get("in_flight_at_disruption") is not None else "")
                            + (f", disruption error: {s['disrupt_error']}" if s.get("disrupt_error") else "")
                            + (f", client errors: {s['client_errors'][:2]}" if s.get("client_errors") else "")
                            + (f", {s['connections_killed']} connections killed" if "connections_killed" in s else ""))
    rep.data["scenarios"] = {k: {kk: vv for kk, vv in v.items() if kk not in ("audit", "ids")}
                             | ({"errors": v["audit"]["errors"], "doubles": v["audit"]["doubles"][:20]}
                                if "audit" in v else {}) for k, v in scenarios.items()}
    for row in summary_rows:
        rep.note(row)
    rep.note(f"Workload per scenario: {n_runs} runs of a {n_nodes}-node chain (each node sleeps "
             f"{ms:.0f} ms) on 2 workers; the disruption starts 0.3 s after the submits. "
             "restart_aof: EmbeddedRedis.restart() (SHUTDOWN, start on the same socket, AOF "
             "replayed); kill9_restart_aof: SIGKILL of redis-server, then restart; client_kill: "
             "CLIENT KILL TYPE normal (every worker and client connection) 5× at 200 ms intervals.")
    return rep
