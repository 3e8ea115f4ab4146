"""One contract suite for every scheduler implementation: in memory and on Redis (Lua).

Both implement the same join algorithm (dead-path elimination, loop exits, end-of-run sweep);
each case drives an implementation with the same completions and compares what becomes ready,
what is skipped, and when the run is finished. A randomized test then checks the two agree step
by step on generated graphs.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import flownb
from flownb.core.graph import analyse
from flownb.engine.scheduler import Scheduler

_ids = itertools.count()


def make_bp(nodes: list[str], edges: list[tuple], joins: dict[str, str] | None = None,
            max_visits: dict[str, int] | None = None) -> flownb.Blueprint:
    joins, max_visits = joins or {}, max_visits or {}
    spec_nodes = []
    for n in nodes:
        cfg: dict[str, Any] = {}
        if n in joins:
            cfg["join"] = joins[n]
        if n in max_visits:
            cfg["max_visits"] = max_visits[n]
        spec_nodes.append({"id": n, "uses": "noop", **({"config": cfg} if cfg else {})})
    spec_edges = [{"source": e[0], "target": e[1], **({"action": e[2]} if len(e) > 2 else {})}
                  for e in edges]
    return flownb.Blueprint.from_dict({"id": f"c{next(_ids)}", "nodes": spec_nodes, "edges": spec_edges})


@pytest.fixture(params=["memory", "redis"])
def make_scheduler(request: pytest.FixtureRequest) -> Iterator[Callable[[flownb.Blueprint], Any]]:
    if request.param == "memory":
        yield lambda bp: Scheduler(analyse(bp)[0])
        return
    from flownb.distributed.redis_scheduler import RedisScheduler
    from flownb.distributed.store import RedisStore

    url = request.getfixturevalue("redis_url")
    store = RedisStore(redis.Redis.from_url(url))
    yield lambda bp: RedisScheduler(store, bp, f"contract{next(_ids)}")


def drive(sched: Any, bp: flownb.Blueprint, choose: Callable[[str, int], set[str]]) -> tuple[list[tuple[str, int]], set[str]]:
    """Complete ready items in FIFO order; ``choose(node, visit)`` names the targets taken."""
    g = analyse(bp)[0]
    ready = list(sched.start())
    ran: list[tuple[str, int]] = []
    skipped: set[str] = set()
    guard = 0
    while ready:
        guard += 1
        assert guard < 500, "did not converge"
        item = ready.pop(0)
        ran.append((item.node, item.visit))
        targets = choose(item.node, item.visit)
        taken = {e.idx for e in g.nodes[item.node].out if e.target in targets}
        out = sched.complete(item.node, item.visit, taken)
        assert out is not None
        ready.extend(out.ready)
        skipped.update(out.skipped)
    assert sched.finished
    return ran, skipped


def all_edges(bp: flownb.Blueprint) -> Callable[[str, int], set[str]]:
    return lambda node, visit: {e.target for e in bp.edges if e.source == node}


CASES = [
    # name, nodes, edges, joins, choices (node -> targets), expected ran, expected skipped
    ("chain", ["a", "b", "c"], [("a", "b"), ("b", "c")], {}, None, ["a", "b", "c"], set()),
    ("exclusive-branches-join-runs", ["r", "x", "y", "j"],
     [("r", "x"), ("r", "y"), ("x", "j"), ("y", "j")], {}, {"r": {"x"}}, ["r", "x", "j"], {"y"}),
    ("dead-path-two-levels", ["r", "x", "x2", "y", "j"],
     [("r", "x"), ("r", "y"), ("x", "x2"), ("x2", "j"), ("y", "j")], {}, {"r": {"y"}},
     ["r", "y", "j"], {"x", "x2"}),
    ("all-dead-join-skipped", ["r", "x", "y", "j", "after"],
     [("r", "x"), ("r", "y"), ("x", "j"), ("y", "j"), ("j", "after")], {}, {"r": set()},
     ["r"], {"x", "y", "j", "after"}),
    ("any-join-fires-once", ["s", "a", "b", "j"],
     [("s", "a"), ("s", "b"), ("a", "j"), ("b", "j")], {"j": "any"}, None,
     ["s", "a", "b", "j"], set()),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_contract_cases(case: tuple, make_scheduler: Callable[[flownb.Blueprint], Any]) -> None:
    _, nodes, edges, joins, choices, want_ran, want_skipped = case
    bp = make_bp(nodes, edges, joins)
    default = all_edges(bp)
    choose = (lambda n, v: choices[n] if n in choices else default(n, v)) if choices else default
    ran, skipped = drive(make_scheduler(bp), bp, choose)
    assert [n for n, _ in ran] == want_ran
    assert skipped == want_skipped


def test_contract_loop_exit_once(make_scheduler: Callable[[flownb.Blueprint], Any]) -> None:
    bp = make_bp(["s", "h", "after"], [("s", "h"), ("h", "h", "again"), ("h", "after", "done")],
                 max_visits={"h": 5})
    ran, _ = drive(make_scheduler(bp), bp,
                   lambda n, v: {"h"} if n == "h" and v < 3 else {"after"} if n == "h" else
                   {e.target for e in bp.edges if e.source == n})
    assert ran == [("s", 1), ("h", 1), ("h", 2), ("h", 3), ("after", 1)]


def test_contract_max_visits(make_scheduler: Callable[[flownb.Blueprint], Any]) -> None:
    bp = make_bp(["h"], [("h", "h", "again")], max_visits={"h": 3})
    with pytest.raises(flownb.MaxVisitsExceeded):
        drive(make_scheduler(bp), bp, lambda n, v: {"h"})


def test_contract_duplicate_completion(make_scheduler: Callable[[flownb.Blueprint], Any]) -> None:
    bp = make_bp(["a", "b", "j"], [("a", "j"), ("b", "j")])
    sched = make_scheduler(bp)
    sched.start()
    assert sched.complete("a", 1, {0}) is not None
    assert sched.complete("a", 1, {0}) is None  # counted once


@pytest.mark.parametrize("seed", range(12))
def test_memory_and_redis_agree_on_random_graphs(seed: int, redis_url: str) -> None:
    from flownb.distributed.redis_scheduler import RedisScheduler
    from flownb.distributed.store import RedisStore

    rnd = random.Random(seed)
    n = rnd.randint(4, 12)
    nodes = [f"n{i}" for i in range(n)]
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            if rnd.random() < 0.3:
                edges.append((nodes[i], nodes[j]))
    joins = {x: rnd.choice(["all", "any"]) for x in nodes}
    bp = make_bp(nodes, edges, joins)
    picks: dict[tuple[str, int], set[str]] = {}

    def choose(node: str, visit: int) -> set[str]:
        key = (node, visit)
        if key not in picks:
            outs = [e[1] for e in edges if e[0] == node]
            picks[key] = {t for t in outs if rnd.random() < 0.6}
        return picks[key]

    mem = drive(Scheduler(analyse(bp)[0]), bp, choose)
    red = drive(RedisScheduler(RedisStore(redis.Redis.from_url(redis_url)), bp, f"rand{seed}"), bp, choose)
    assert sorted(mem[0]) == sorted(red[0])
    assert mem[1] == red[1]
    assert {x for x, _ in mem[0]} | mem[1] == set(nodes), "every node ran or was skipped"
