"""In-process speed: a chain of no-op nodes and a wide fan-out into a join, side by side with
LangGraph, PocketFlow and a plain Python loop (the floor).

Graphs are built and compiled once outside the timed span (a user builds a graph once and runs it
many times); each sample is one complete run. Repetitions of the contenders are interleaved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypedDict

from .common import Config, Report, chain_bp, fanout_bp, interleave, paired_ratio


class _LGState(TypedDict, total=False):
    n: int


def _lg_noop(state: _LGState) -> dict:
    return {}


def langgraph_chain(n: int) -> Callable[[], Any]:
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_LGState)
    for i in range(n):
        g.add_node(f"n{i}", _lg_noop)
    g.add_edge(START, "n0")
    for i in range(n - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{n - 1}", END)
    app = g.compile()
    cfg = {"recursion_limit": n + 10}
    return lambda: app.invoke({"n": 0}, cfg)


def langgraph_fanout(n: int) -> Callable[[], Any]:
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(_LGState)
    g.add_node("start", _lg_noop)
    branches = [f"b{i}" for i in range(n)]
    for b in branches:
        g.add_node(b, _lg_noop)
        g.add_edge("start", b)
    g.add_node("join", _lg_noop)
    g.add_edge(START, "start")
    g.add_edge(branches, "join")  # waits for every branch: LangGraph's all-join
    g.add_edge("join", END)
    app = g.compile()
    return lambda: app.invoke({"n": 0})


def pocketflow_chain(n: int) -> Callable[[], Any]:
    import pocketflow

    class Noop(pocketflow.Node):  # prep/exec/post all default (no-op)
        pass

    nodes = [Noop() for _ in range(n)]
    for a, b in zip(nodes, nodes[1:]):
        a >> b
    flow = pocketflow.Flow(start=nodes[0])
    return lambda: flow.run({})


def plain_chain(n: int) -> Callable[[], Any]:
    def make() -> Callable[[Any], Any]:
        def f(x: Any) -> Any:
            return x
        return f

    fns = [make() for _ in range(n)]

    def go() -> Any:
        x: Any = {}
        for f in fns:
            x = f(x)
        return x

    return go


def flownb_runner(bp: Any) -> Callable[[], Any]:
    import flownb

    def go() -> Any:
        res = flownb.run(bp, {})
        if res.status != "succeeded":
            raise RuntimeError(f"flownb run {res.status}: {res.error}")
        return res

    return go


def _timer(fn: Callable[[], Any], per: int) -> Callable[[], float]:
    def t() -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) / per
    return t


def inprocess_chain(cfg: Config) -> Report:
    rep = Report()
    sizes = cfg.pick((200, 1000), (50, 100))
    reps = cfg.pick(15, 3)
    for n in sizes:
        contenders = {
            "flownb": _timer(flownb_runner(chain_bp(n)), n),
            "langgraph": _timer(langgraph_chain(n), n),
            "pocketflow": _timer(pocketflow_chain(n), n),
            "plain": _timer(plain_chain(n), n),
        }
        out = interleave(contenders, reps, warmup=2)
        us = {k: [x * 1e6 for x in v] for k, v in out.items()}
        labels = {"flownb": "flownb.run", "langgraph": "LangGraph StateGraph.invoke",
                  "pocketflow": "PocketFlow Flow.run", "plain": "plain Python loop (floor)"}
        for k, v in us.items():
            rep.figure(f"{k}.n{n}.us_per_node", v, "µs/node", f"{labels[k]}, chain of {n}")
        paired_ratio(rep, f"ratio.n{n}.flownb_over_langgraph", us["flownb"], us["langgraph"],
                     f"flownb/LangGraph chain {n}")
        paired_ratio(rep, f"ratio.n{n}.flownb_over_pocketflow", us["flownb"], us["pocketflow"],
                     f"flownb/PocketFlow chain {n}")
        paired_ratio(rep, f"ratio.n{n}.flownb_over_plain", us["flownb"], us["plain"],
                     f"flownb/plain loop chain {n}")
        rep.goal(f"flownb chain {n} ≤ 3 µs/node", f"flownb.n{n}.us_per_node", "<=", 3.0)
    rep.note("Each sample is one whole run (flownb.run creates its event loop, result and stats; "
             "LangGraph.invoke its checkpoint-free Pregel loop); graph construction and "
             "compilation are outside the timed span for every contender.")
    return rep


def inprocess_fanout(cfg: Config) -> Report:
    rep = Report()
    n = cfg.pick(500, 50)
    reps = cfg.pick(9, 3)
    contenders = {
        "flownb": _timer(flownb_runner(fanout_bp(n)), 1),
        "langgraph": _timer(langgraph_fanout(n), 1),
    }
    out = interleave(contenders, reps, warmup=2)
    rep.data["n"] = n
    for k, label in (("flownb", "flownb.run"), ("langgraph", "LangGraph (add_edge([...500], join))")):
        rep.figure(f"{k}.total_ms", [x * 1e3 for x in out[k]], "ms", f"{label}, fan-out {n} → all-join")
        rep.figure(f"{k}.us_per_branch", [x * 1e6 / n for x in out[k]], "µs/branch",
                   f"{label}, fan-out {n}, per branch")
    paired_ratio(rep, "ratio.flownb_over_langgraph", out["flownb"], out["langgraph"],
                 f"flownb/LangGraph fan-out {n}")
    rep.note("PocketFlow's synchronous core has no parallel fan-out with a join, so it is not in "
             "this figure. Sync nodes that are ready together run in threads in flownb (and in a "
             "thread pool in LangGraph).")
    return rep
