"""Load, lint and compile time of very wide blueprints (issue 11.14: lint was quadratic).

``python -m bench --only lint`` (part of the full run) or ``python -m bench.lint`` alone. Two
shapes per size: *parallel* (n independent nodes, n start nodes) and *fan-out* (start -> n
nodes -> one all-join, 2n edges). The figures are seconds per step on a fresh blueprint object
(compile = lint + the graph an executor runs; nothing memoised between repetitions).
"""

from __future__ import annotations

import json
import time
from typing import Any

import flownb
from flownb.core.graph import compile_graph

from .common import Config, Report, fmt


def wide(n: int, shape: str) -> str:
    nodes: list[dict[str, Any]] = [{"id": f"n{i}", "uses": "noop"} for i in range(n)]
    edges: list[dict[str, str]] = []
    if shape == "fanout":
        nodes += [{"id": "start", "uses": "noop"}, {"id": "join", "uses": "noop"}]
        edges = [{"source": "start", "target": f"n{i}"} for i in range(n)]
        edges += [{"source": f"n{i}", "target": "join"} for i in range(n)]
    return json.dumps({"id": f"{shape}-{n}", "nodes": nodes, "edges": edges})


def measure(text: str) -> dict[str, float]:
    t0 = time.perf_counter()
    bp = flownb.Blueprint.from_json(text)
    t1 = time.perf_counter()
    problems = bp.lint(flownb.default_registry)
    t2 = time.perf_counter()
    compile_graph(bp.model_copy())  # a copy: its own memo, so this compiles from scratch
    t3 = time.perf_counter()
    assert not [p for p in problems if p.severity == "error"], problems[:3]
    return {"load": t1 - t0, "lint": t2 - t1, "compile": t3 - t2}


def lint_scale(cfg: Config) -> Report:
    rep = Report()
    sizes = cfg.pick([20_000, 300_000], [2_000, 20_000])
    for n in sizes:
        reps = 3 if n <= 20_000 else 1
        for shape in ("parallel", "fanout"):
            text = wide(n, shape)
            runs = [measure(text) for _ in range(reps)]
            for step in ("load", "lint", "compile"):
                rep.figure(f"{shape}_{n}.{step}_s", [r[step] for r in runs], "s",
                           f"{step} of {n:,} {shape} nodes")
            rep.figure(f"{shape}_{n}.lint_us_per_node", [r["lint"] * 1e6 / n for r in runs],
                       "µs/node", f"lint per node, {n:,} {shape} nodes")
    small = sizes[0]
    rep.goal(f"lint of {small:,} parallel nodes", f"parallel_{small}.lint_s", "<=", 2.0)
    rep.note("Before the fix, lint of 20,000 parallel nodes took 18.7 s and 300,000 never finished "
             "(list membership tests in the DFS and ranking, reachability rebuilt per start node). "
             "Linear means lint µs/node stays flat from the small to the big size; the cyclic GC is "
             "paused while the graph is built (it rescans the heap as the objects pile up).")
    return rep


if __name__ == "__main__":
    import sys

    r = lint_scale(Config(quick="--quick" in sys.argv))
    for fig in r.figures.values():
        print(f"{fig['label']:45} {fmt(fig['median']):>8} {fig['unit']}")
