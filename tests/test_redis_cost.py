"""Redis commands per node and per submit stay bounded (issue 21: Redis was the bottleneck).

Counted as the server counts them (``INFO commandstats`` deltas, which include the commands the
Lua scripts run), on real workers. Counts are deterministic where timings are not, so these
bounds catch a script or a client path that starts costing more commands per node. The figures
measured when the bounds were set are in the comments; a bound leaves a little room for the
background traffic (heartbeats, the reaper) that :func:`redis_cost.measure` subtracts as a rate.
"""

from __future__ import annotations

import warnings

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor

from conftest import Workers
from redis_cost import measure, total

pytestmark = pytest.mark.timeout(120)


def chain(n: int) -> flownb.Blueprint:
    b = flownb.Builder(f"cost-chain-{n}")
    for i in range(n):
        b.node(f"n{i}", "noop")
    b.chain(*[f"n{i}" for i in range(n)])
    return b.build()


def fan(n: int) -> flownb.Blueprint:
    b = flownb.Builder(f"cost-fan-{n}")
    b.node("start", "noop")
    for i in range(n):
        b.node(f"b{i}", "noop")
        b.edge("start", f"b{i}")
    b.node("join", "noop", join="all")
    for i in range(n):
        b.edge(f"b{i}", "join")
    return b.build()


#: per chain node: 35.5 before issue 21's cuts, 18.5 after (the COMMIT script, its inline claim,
#: the worker's lease renewals and the client's wait, amortised); 15.8 once COMMIT reads ahead
#: (no HLEN, no HINCRBY of the successor's visits, success + inline start as one XADD); 12.7
#: once the node's stats go with its output (one HSET) and COMMIT reads the run's status with its
#: scheduling fields (no meta HMGET): 11 per node in the steady state (issue 21: <= 12)
CHAIN_MAX = 13.5
#: per submit() of a 3-node chain, no worker running: 30 before, 27 after (START, the RQ job, its job id),
#: 22 once START wrote the start items in one HSET/ZADD and trimmed the runs index now and then
SUBMIT_MAX = 24
#: per node of a 200-wide fan-out and its join: 53.6 before, 36-38 after, 25.3 once an arrival
#: at the join is read ahead and written with the done marker and the firing join reads its
#: slots in a few commands (not two per slot); 17.6 with the cuts of CHAIN_MAX's 12.7
FAN_MAX = 19


def test_commands_per_chain_node_and_fanout_node(redis_url: str) -> None:
    # a lease long enough that no queued item of the fan-out expires while it waits its turn
    # (the reaper's checks of such items are a backlog's cost, not a node's)
    workers = Workers(redis_url, lease_ttl_s=10.0, modules=())
    try:
        workers.start(2)
        _chain_and_fanout(redis_url)
    finally:
        workers.close()


def _chain_and_fanout(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    bp = chain(50)
    assert ex.run(bp, timeout=60).status == "succeeded"  # warm: blueprint uploaded, graphs compiled
    runs = []
    d, _ = measure(r, lambda: runs.append(ex.run(bp, timeout=60)))
    assert runs[0].status == "succeeded"
    per_node = total(d) / 50
    assert per_node <= CHAIN_MAX, (per_node, dict(d.most_common()))
    assert d["evalsha"] <= 50 + 5, d  # one script call per node: the successor is claimed inline
    # a plain commit reads its graph fields in one HMGET (no HLEN: START's and the last node's
    # only) and counts its successor's visit with its done marker (no HINCRBY per node)
    assert d["hlen"] <= 3 and d["hincrby"] <= 4, d
    assert d["xadd"] <= 2 * 50 + 5, d  # one event entry per node (+ its history entry)
    # per commit: one HMGET of the graph, one of sched (the run's status with it: no meta read);
    # HSETs of state (output and stats together), the successor's item and sched
    assert d["hmget"] <= 2 * 50 + 5 and d["hset"] <= 3 * 50 + 15, d

    fb = fan(200)
    assert ex.run(fb, timeout=60).status == "succeeded"
    runs.clear()
    d, _ = measure(r, lambda: runs.append(ex.run(fb, timeout=60)))
    assert runs[0].status == "succeeded"
    per_node = total(d) / 202
    assert per_node <= FAN_MAX, (per_node, dict(d.most_common()))
    assert d["hlen"] <= 4 and d["hincrby"] <= 6, d  # the arrivals at the join: none per branch


def test_commands_per_submit(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    bp = chain(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no worker: NoWorkersWarning, by design here
        ex.submit(bp)  # warm: the blueprint's upload and the live-worker check are cached
        handles = []
        d, _ = measure(r, lambda: handles.extend(ex.submit(bp) for _ in range(20)))
    assert len({h.run_id for h in handles}) == 20
    per_submit = total(d) / 20
    assert per_submit <= SUBMIT_MAX, (per_submit, dict(d.most_common()))
    assert d["evalsha"] == 20, d  # START only: the blueprint is not uploaded again


def test_a_new_process_does_not_upload_a_stored_blueprint_again(redis_url: str) -> None:
    """A client in a new process (a new executor) starts runs of a blueprint already in Redis
    without uploading it: START finds its graph; only a missing graph is uploaded."""
    r = redis.Redis.from_url(redis_url)
    bp = chain(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        DistributedExecutor(redis_url, check=False).submit(bp)  # uploads: the graph was missing
        assert r.exists(f"flownb:bp:{bp.digest}")
        handles = []
        d, _ = measure(r, lambda: handles.extend(
            DistributedExecutor(redis_url, check=False).submit(bp) for _ in range(10)))
    assert len(handles) == 10
    assert d["evalsha"] == 10, d  # START only, no UPLOAD
    per_submit = total(d) / 10
    # 32: 27 plus the live-worker check and the connection setup of a new executor; before,
    # 58: the upload again, one HSET per graph field (more for a bigger blueprint)
    assert per_submit <= SUBMIT_MAX + 5, (per_submit, dict(d.most_common()))


def test_a_finished_run_holds_little_redis_memory(redis_url: str, workers: Workers) -> None:
    """The streams of a finished run are compacted (their last node no longer takes 4 KiB
    whatever it holds) and keep every entry and the run's TTL."""
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    res = ex.run(chain(3), timeout=60, history=True)  # its three streams
    assert res.status == "succeeded"
    keys = list(r.scan_iter(f"flownb:run:{res.run_id}:*"))
    used = sum(r.memory_usage(k) or 0 for k in keys)
    # 15.5 KiB before issue 21 (three streams of 4.7 KiB each), 5.0 KiB after
    assert used <= 8 * 1024, {k: r.memory_usage(k) for k in keys}
    assert all(0 < r.ttl(k) <= ex.store.settings.result_ttl_s for k in keys)
    types = [e.type for e in ex.attach(res.run_id).events()]
    assert types.count("node_succeeded") == 3 and types[-1] == "run_finished", types
    assert [s.node for s in ex.attach(res.run_id).history()] == ["n0", "n1", "n2"]


def test_a_graph_stored_in_the_older_layout_still_runs(redis_url: str, workers: Workers) -> None:
    """A graph uploaded before these cuts (no 'L' field, no 'c' flag, out edges without their
    target's join info) is read the old way, so runs of it still finish: the scripts fall back
    to a read per successor, the own item and the loop-exit set."""
    import json

    workers.start(1)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    ex = DistributedExecutor(redis_url)
    bp = fan(3)
    ex.store.upload_blueprint(bp)
    key = ex.store.keys.blueprint(bp.digest)
    for f, v in r.hgetall(key).items():
        if f.startswith("o:"):
            r.hset(key, f, json.dumps([e[:4] for e in json.loads(v)]))
        elif f.startswith("i:"):
            info = json.loads(v)
            info.pop("c")
            r.hset(key, f, json.dumps(info))
    r.hdel(key, "L")
    r.hset(key, "hlen", r.hlen(key))
    res = ex.run(bp, timeout=60)
    assert res.status == "succeeded", res.error
    assert sorted(res.outputs) == ["b0", "b1", "b2", "join", "start"]
    assert "L" not in r.hkeys(key)  # START used the stored graph: nothing was uploaded again


#: per submit() of the moderation agent (three start nodes, a subflow bundle of three blueprints),
#: no worker running: 51 before issue 21's START/submit cuts, 27 after (the graph and start nodes
#: in one HMGET, the bundle in one EXISTS, one HSET/ZADD for the start items, one RQ job for them)
MODERATION_SUBMIT_MAX = 30


def test_commands_per_submit_of_the_moderation_agent(redis_url: str) -> None:
    from flownb import examples

    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    bp = examples.load("content_moderation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no worker: NoWorkersWarning, by design here
        ex.submit(bp, {"text": "warm"})  # the blueprints' uploads, once
        handles = []
        d, _ = measure(r, lambda: handles.extend(ex.submit(bp, {"text": f"t{i}"})
                                                 for i in range(10)))
    assert len({h.run_id for h in handles}) == 10
    per_submit = total(d) / 10
    assert per_submit <= MODERATION_SUBMIT_MAX, (per_submit, dict(d.most_common()))
    assert d["evalsha"] == 10 and d["persist"] == 0, d  # START only; blueprints held already
