"""The compiled form of a blueprint: what the schedulers walk at run time.

Compiling once per blueprint keeps the per-node hot path free of lookups and validation: every
edge knows its index, whether it closes a cycle (*back edge*), whether it leaves a loop (*exit
edge*), and its position among the target's forward incoming edges (the join slot it fills).

Why loops need more than back edges: a node inside a loop may not take its way out on the first
visit (``again`` this time, ``done`` next time). If the untaken exit edge counted as *dead* right
away, the node after the loop would be skipped and then run later, and a join after the loop
would see two generations and hang. So edges that leave a strongly connected component resolve
once, when the loop has gone quiet (no work left inside it): taken if any visit took them.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .blueprint import Blueprint, Node, NodeConfig
from .conditions import Condition, compile_condition
from .errors import ConditionError, FlownbError

if TYPE_CHECKING:
    from .registry import NodeImpl, Registry

#: visits allowed to a node whose config sets no ``max_visits``
DEFAULT_MAX_VISITS = 100


class CEdge:
    """A compiled edge. ``pos`` is its slot in the target's join (-1 for back/exit edges)."""

    __slots__ = ("idx", "source", "target", "action", "condition", "back", "exit", "pos", "spec")

    def __init__(self, idx: int, source: str, target: str, action: str | None,
                 condition: Condition | None, spec: Any) -> None:
        self.idx = idx
        self.source = source
        self.target = target
        self.action = action
        self.condition = condition
        self.back = False
        self.exit = False
        self.pos = -1
        self.spec = spec

    def __repr__(self) -> str:
        kind = " back" if self.back else " exit" if self.exit else ""
        act = f" [{self.action}]" if self.action else ""
        return f"<edge {self.idx} {self.source}->{self.target}{act}{kind}>"


class CNode:
    """A compiled node. ``impl`` is resolved from the registry when the graph is compiled."""

    __slots__ = ("id", "spec", "uses", "params", "config", "out", "fwd_in", "n_fwd_in", "join",
                 "max_visits", "scc", "impl", "has_conditions", "timeout_s", "retries", "fallback",
                 "inline_ok", "structural", "default_taken", "topo", "transforms")

    def __init__(self, spec: Node) -> None:
        self.id = spec.id
        self.spec = spec
        self.uses = spec.uses
        self.params = spec.params
        self.config: NodeConfig = spec.config
        self.out: list[CEdge] = []
        self.fwd_in: list[CEdge] = []
        self.n_fwd_in = 0
        self.join = spec.config.join
        self.max_visits = spec.config.max_visits or DEFAULT_MAX_VISITS
        self.scc = -1
        self.impl: NodeImpl | None = None
        self.has_conditions = False
        self.timeout_s = spec.config.timeout_s
        self.retries = spec.config.retries
        self.fallback = spec.config.fallback
        self.inline_ok = False
        self.structural = False
        self.default_taken: frozenset[int] = frozenset()
        self.topo = 0
        #: source id -> compiled edge ``transform`` (see flownb.core.transforms); None when there is none
        self.transforms: dict[str, Condition] | None = None

    def __repr__(self) -> str:
        return f"<node {self.id} uses={self.uses}>"


class Graph:
    """Nodes, edges, start nodes and loops of one blueprint."""

    def __init__(self, bp: Blueprint) -> None:
        self.blueprint = bp
        self.nodes: dict[str, CNode] = {}
        self.edges: list[CEdge] = []
        self.starts: list[str] = []
        self.fallback_only: set[str] = set()
        self.scc_nodes: dict[int, list[str]] = {}
        self.scc_exits: dict[int, list[int]] = {}
        self.reachable: set[str] = set()

    def __repr__(self) -> str:
        return f"<Graph {self.blueprint.id}: {len(self.nodes)} nodes, {len(self.edges)} edges>"


def analyse(bp: Blueprint, *, strict_conditions: bool = True) -> tuple[Graph, list[tuple[str, str, str]]]:
    """Build the graph, tolerating problems; returns the graph and ``(code, location, message)``
    for each structural problem found on the way (lint turns these into Problems).

    Linear in nodes + edges. The cyclic garbage collector is paused meanwhile: the graph is
    hundreds of thousands of small objects made at once, and full collections triggered by
    their allocation would otherwise scan the whole heap again and again (3x the time at
    300,000 nodes); nothing cyclic is left behind as garbage here.
    """
    with gc_paused():
        return _analyse(bp, strict_conditions)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a big acyclic structure is built (see :func:`analyse`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _analyse(bp: Blueprint, strict_conditions: bool) -> tuple[Graph, list[tuple[str, str, str]]]:
    g = Graph(bp)
    issues: list[tuple[str, str, str]] = []
    for i, spec in enumerate(bp.nodes):
        if spec.id in g.nodes:
            issues.append(("duplicate-id", f"nodes[{i}]", f"node id {spec.id!r} is used twice"))
            continue
        g.nodes[spec.id] = CNode(spec)
    for i, e in enumerate(bp.edges):
        ok = True
        for end, name in (("source", e.source), ("target", e.target)):
            if name not in g.nodes:
                issues.append((f"unknown-{end}", f"edges[{i}].{end}",
                               f"{end} {name!r} is not a node of blueprint {bp.id!r}"))
                ok = False
        cond = None
        if e.condition is not None:
            try:
                cond = compile_condition(e.condition, where=f"edges[{i}].condition")
            except ConditionError as exc:
                issues.append(("bad-condition", f"edges[{i}].condition", exc.message.splitlines()[0]))
                if strict_conditions:
                    ok = False
        transform = None
        if e.transform is not None:
            try:
                transform = compile_condition(e.transform, where=f"edges[{i}].transform")
            except ConditionError as exc:
                issues.append(("bad-transform", f"edges[{i}].transform",
                               exc.message.splitlines()[0]))
                ok = False
        if not ok:
            continue
        if transform is not None:
            target = g.nodes[e.target]
            target.transforms = {**(target.transforms or {}), e.source: transform}
        ce = CEdge(len(g.edges), e.source, e.target, e.action, cond, e)
        g.edges.append(ce)
        g.nodes[e.source].out.append(ce)
    fallbacks = {n.config.fallback for n in bp.nodes if n.config.fallback}
    has_in = {e.target for e in g.edges if e.source != e.target}  # a self-loop does not count
    g.fallback_only = {f for f in fallbacks if f in g.nodes and f not in has_in
                       and not g.nodes[f].out}
    g.starts = [n for n in g.nodes if n not in has_in and n not in g.fallback_only]
    _classify_back_edges(g)
    _find_loops(g)
    for ce in g.edges:
        cn = g.nodes[ce.target]
        if not ce.back and not ce.exit:
            ce.pos = len(cn.fwd_in)
            cn.fwd_in.append(ce)
    _rank(g)
    for cn in g.nodes.values():
        cn.n_fwd_in = len(cn.fwd_in)
        cn.has_conditions = any(e.condition is not None for e in cn.out)
        cn.default_taken = frozenset(e.idx for e in cn.out if e.action is None)
    # exits count as incoming slots of their target too (they arrive once per loop activation)
    for ce in g.edges:
        if ce.exit:
            cn = g.nodes[ce.target]
            ce.pos = len(cn.fwd_in)
            cn.fwd_in.append(ce)
            cn.n_fwd_in += 1
    return g, issues


def _rank(g: Graph) -> None:
    """Topological rank over forward edges (back edges removed, so this is a DAG): the end-of-run
    sweep settles the most upstream waiting join first."""
    indeg = {n: 0 for n in g.nodes}
    for e in g.edges:
        if not e.back:
            indeg[e.target] += 1
    order = [n for n, d in indeg.items() if d == 0]
    i = 0
    while i < len(order):
        for e in g.nodes[order[i]].out:
            if not e.back:
                indeg[e.target] -= 1
                if indeg[e.target] == 0:
                    order.append(e.target)
        i += 1
    for name in g.nodes:  # nodes on cycles the DFS did not break (orphans) rank last
        g.nodes[name].topo = len(order)
    for r, name in enumerate(order):
        g.nodes[name].topo = r


def _classify_back_edges(g: Graph) -> None:
    """Iterative DFS from the start nodes (then from anything unvisited): an edge into a node on
    the current DFS path closes a cycle."""
    state: dict[str, int] = {}  # 1 = on path, 2 = finished
    starts = set(g.starts)
    order = list(g.starts) + [n for n in g.nodes if n not in starts]
    for k, root in enumerate(order):
        if k == len(g.starts):  # every start node searched: what was seen is what runs
            g.reachable.update(state)
        if root in state:
            continue
        stack: list[tuple[str, Iterable[CEdge]]] = [(root, iter(g.nodes[root].out))]
        state[root] = 1
        while stack:
            name, it = stack[-1]
            advanced = False
            for e in it:
                st = state.get(e.target)
                if st == 1:
                    e.back = True
                elif st is None:
                    state[e.target] = 1
                    stack.append((e.target, iter(g.nodes[e.target].out)))
                    advanced = True
                    break
            if not advanced:
                state[name] = 2
                stack.pop()
    if len(order) == len(g.starts):
        g.reachable.update(state)


def _find_loops(g: Graph) -> None:
    """Tarjan's strongly connected components, iteratively; marks exit edges of each loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    scc_id = 0
    for root in g.nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            name, i = work.pop()
            if i == 0:
                index[name] = low[name] = counter
                counter += 1
                stack.append(name)
                on_stack.add(name)
            out = g.nodes[name].out
            recursed = False
            while i < len(out):
                t = out[i].target
                i += 1
                if t not in index:
                    work.append((name, i))
                    work.append((t, 0))
                    recursed = True
                    break
                if t in on_stack:
                    low[name] = min(low[name], index[t])
            if recursed:
                continue
            if low[name] == index[name]:
                members = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    members.append(w)
                    if w == name:
                        break
                cyclic = len(members) > 1 or any(e.target == name for e in g.nodes[name].out)
                if cyclic:
                    for m in members:
                        g.nodes[m].scc = scc_id
                    g.scc_nodes[scc_id] = members[::-1]
                    scc_id += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[name])
    for sid in g.scc_nodes:
        g.scc_exits[sid] = []
    for e in g.edges:
        s = g.nodes[e.source].scc
        if s >= 0 and g.nodes[e.target].scc != s and not e.back:
            e.exit = True
            g.scc_exits[s].append(e.idx)


def compile_graph(bp: Blueprint, registry: Registry | None = None) -> Graph:
    """Compile (memoised on the blueprint per registry); raises LintError on any error."""
    from .lint import lint_with_graph
    from .registry import default_registry

    reg = registry if registry is not None else default_registry
    key = ("graph", id(reg), reg.version)
    cached = bp._cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from .lint import DOWNGRADABLE, LINTED

    linted = bp._cache.pop((LINTED, id(reg), reg.version), None)  # the lint gate's, unused yet
    g, found = linted or lint_with_graph(bp, reg)  # a fresh graph: with no error, the strict one

    # the silently-wrong kinds are the lint gate's to refuse (strict) or warn about (strict=False)
    problems = [p for p in found if p.severity == "error" and p.code not in DOWNGRADABLE]
    if problems:
        from .errors import LintError

        raise LintError(problems, path=f"blueprint {bp.id!r}")
    for cn in g.nodes.values():
        if cn.uses in ("subflow", "map"):
            cn.structural = True
            continue
        if cn.uses == "llm-router" and not any(k in cn.params for k in ("routes", "choices")):
            # the router may only answer with an action one of its edges knows
            cn.params = {**cn.params, "_actions": sorted({e.action for e in cn.out if e.action})}
        cn.impl = reg.get(cn.uses, node_id=cn.id)
        cn.inline_ok = not cn.impl.any_async and cn.timeout_s is None
    bp._cache[key] = g
    return g


Resolver = Callable[[str], Any]


def select_edges(cn: CNode, action: str | None, resolve: Resolver) -> set[int]:
    """The indices of the edges a finished node takes.

    Edges whose action equals the returned action and whose condition holds; when none is taken,
    the default edges (no action) whose condition holds. An explicit action that no edge knows,
    with no default edge to fall back on, is an error rather than a silent stop.
    """
    out = cn.out
    if not out:
        return set()
    if action == "default":
        action = None
    if not cn.has_conditions:
        if action is None and cn.default_taken:
            return cn.default_taken  # type: ignore[return-value]
        if action is not None:
            taken = {e.idx for e in out if e.action == action}
            if taken:
                return taken
        taken = {e.idx for e in out if e.action is None}
        if not taken and action is not None:
            _unknown_action(cn, action)
        return taken
    taken = set()
    if action is not None:
        taken = {e.idx for e in out if e.action == action and _holds(e, resolve)}
        if taken:
            return taken
    defaults = [e for e in out if e.action is None]
    if not defaults and action is not None and not any(e.action == action for e in out):
        _unknown_action(cn, action)
    return {e.idx for e in defaults if _holds(e, resolve)}


def _holds(e: CEdge, resolve: Resolver) -> bool:
    return e.condition is None or e.condition.evaluate(resolve)


def _unknown_action(cn: CNode, action: str) -> None:
    known = sorted({e.action for e in cn.out if e.action})
    raise FlownbError(f"returned action {action!r}, but its edges only know {known} and it has "
                      "no default edge", node_id=cn.id)
