"""Static checks of a blueprint: every problem at once, each with a code and a location.

``flownb validate FILE`` and :meth:`Blueprint.lint` report the same list. Errors stop a run
before it starts (the lint gate, :mod:`flownb.core.lint_gate`, and the executors' compile step);
warnings describe legal but probably unintended shapes. The errors in :data:`DOWNGRADABLE` make
a run silently wrong rather than impossible, so ``strict=False`` runs them with a warning.
A problem about a key the run's inputs may give carries ``unless_input`` (see
:mod:`flownb.core.lint_reads`): :func:`for_inputs` settles it once the inputs are known.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .graph import Graph, analyse, gc_paused
from .limits import DEFAULT_MAX_CHILD_RUNS, DEFAULT_MAX_DEPTH, ENV_MAX_CHILD_RUNS, ENV_MAX_DEPTH

if TYPE_CHECKING:
    from .blueprint import Blueprint, Node
    from .registry import Registry

ERROR = "error"
WARNING = "warning"
#: not shown while the run's inputs are unknown (the key may be one of them)
HIDDEN = "hidden"
#: errors that make a run silently wrong (not impossible): ``strict=False`` runs them anyway
DOWNGRADABLE = frozenset({"unknown-param", "unknown-state-key", "unknown-condition-name",
                          "unknown-result-field", "unknown-output-node",
                          "router-routes-mismatch"})


@dataclass(frozen=True)
class Problem:
    code: str
    severity: str
    location: str
    message: str
    node_id: str | None = None
    #: the problem vanishes when the run's inputs give this key ...
    unless_input: str | None = None
    #: ... and has this severity when they are known and do not
    if_absent: str | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.location}: {self.message} [{self.code}]"


def lint(bp: Blueprint, registry: Registry | None = None,
         inputs: Collection[str] | None = None) -> list[Problem]:
    """Every problem; ``inputs``: the run's input keys, when known (see :func:`for_inputs`)."""
    return for_inputs(lint_all(bp, registry), inputs)


#: where :func:`lint_all` leaves its graph for :func:`~flownb.core.graph.compile_graph` (see there)
LINTED = "linted"


def lint_all(bp: Blueprint, registry: Registry | None = None, *,
             keep_graph: bool = False) -> list[Problem]:
    """Every problem, including those that depend on the run's inputs (:func:`for_inputs`).

    ``keep_graph``: a run compiles ``bp`` next; leave it the analysed graph, so a blueprint's
    first run is linted once, not twice."""
    with gc_paused():
        g, found = _lint(bp, registry)
    if keep_graph and registry is not None:
        bp._cache[(LINTED, id(registry), registry.version)] = (g, found)
    return found


def for_inputs(problems: list[Problem], inputs: Collection[str] | None) -> list[Problem]:
    """The problems of a run whose input keys are ``inputs`` (None: not known).

    Cheap (no lint): the gate applies it per run to the problems it cached per blueprint."""
    out: list[Problem] = []
    for p in problems:
        if p.unless_input is None:
            out.append(p)
        elif inputs is None:
            if p.severity != HIDDEN:
                out.append(p)
        elif p.unless_input not in inputs:
            out.append(p if p.severity == p.if_absent
                       else replace(p, severity=p.if_absent or WARNING))
    return out


def lint_with_graph(bp: Blueprint, registry: Registry | None = None) -> tuple[Graph, list[Problem]]:
    """:func:`lint`, plus the graph it analysed: when there is no error, that graph is the one
    :func:`~flownb.core.graph.compile_graph` needs, so compiling analyses a blueprint once, not twice."""
    with gc_paused():
        g, found = _lint(bp, registry)
    return g, for_inputs(found, None)


def _lint(bp: Blueprint, registry: Registry | None) -> tuple[Graph, list[Problem]]:
    g, issues = analyse(bp, strict_conditions=False)
    out: list[Problem] = [Problem(code, ERROR, loc, msg) for code, loc, msg in issues]
    idx = {n.id: i for i, n in reversed(list(enumerate(bp.nodes)))}

    if not bp.nodes:
        out.append(Problem("no-nodes", ERROR, "nodes", "the blueprint has no nodes"))
    elif not g.starts:
        out.append(Problem("no-start-node", ERROR, "edges",
                           "every node has an incoming edge, so nothing can start; a start node "
                           "is one with no incoming edge from another node"))
    for i, n in enumerate(bp.nodes):
        loc = f"nodes[{i}] (id {n.id!r})"
        fb = n.config.fallback
        if fb is not None:
            if fb not in g.nodes:
                out.append(Problem("unknown-fallback", ERROR, f"{loc}.config.fallback",
                                   f"fallback {fb!r} is not a node of this blueprint", n.id))
            elif fb == n.id:
                out.append(Problem("fallback-self", ERROR, f"{loc}.config.fallback",
                                   "a node cannot be its own fallback", n.id))
        if registry is not None and n.uses not in registry:
            from difflib import get_close_matches

            close = get_close_matches(n.uses, sorted(registry.names()), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(Problem("unknown-uses", ERROR, f"{loc}.uses",
                               f"no node type {n.uses!r} is registered{hint}", n.id))
        if n.uses == "subflow":
            bid = child_blueprint_id(n)
            if not bid:
                out.append(Problem("subflow-without-blueprint", ERROR, f"{loc}.params",
                                   "a subflow node needs params.blueprintId", n.id))
            elif registry is not None and not registry.has_blueprint(str(bid)):
                out.append(Problem("unknown-blueprint", ERROR, f"{loc}.params.blueprintId",
                                   f"blueprint {bid!r} is not registered "
                                   "(registry.add_blueprint)", n.id))
        if n.uses == "map":
            p = n.params
            if not (p.get("node") or p.get("uses") or child_blueprint_id(n)):
                out.append(Problem("map-without-target", ERROR, f"{loc}.params",
                                   "a map node needs params.node (a node type) or "
                                   "params.blueprintId", n.id))
        cn = g.nodes.get(n.id)
        if cn is not None and n.config.join == "any" and cn.n_fwd_in <= 1 and n.id in g.nodes \
                and idx.get(n.id) == i:
            out.append(Problem("join-on-single-edge", WARNING, f"{loc}.config.join",
                               "join 'any' has no effect on a node with one incoming edge", n.id))
    if g.starts:
        for name, i in idx.items():
            if name not in g.reachable and name not in g.fallback_only:
                out.append(Problem("orphan", WARNING, f"nodes[{i}] (id {name!r})",
                                   "no path from a start node reaches this node; it never runs",
                                   name))
    for members in g.scc_nodes.values():
        if not any(bp.nodes[idx[m]].config.max_visits for m in members):
            out.append(Problem("cycle-without-guard", WARNING, f"nodes {members}",
                               f"loop {' -> '.join(members)} has no config.max_visits on any of "
                               "its nodes; it is capped at the default (100 visits)", members[0]))
    out.extend(_recursion(bp, registry))
    seen = Counter((e.source, e.target, e.action, e.condition) for e in bp.edges)
    for i, e in enumerate(bp.edges):
        if seen[(e.source, e.target, e.action, e.condition)] > 1:
            out.append(Problem("duplicate-edge", WARNING, f"edges[{i}]",
                               f"edge {e.source} -> {e.target} appears more than once"))
            seen[(e.source, e.target, e.action, e.condition)] = 0
    from .lint_names import check_names

    out.extend(check_names(bp, registry))
    from .lint_flowcraft import check_flowcraft

    out.extend(check_flowcraft(bp, g))
    return g, out


def child_blueprint_id(n: Node) -> str | None:
    """The blueprint a ``subflow``/``map`` node starts, or None (map over a node type, or unset)."""
    p = n.params
    bid = p.get("blueprintId") or p.get("blueprint_id")
    if bid is None and n.uses == "subflow":
        bid = p.get("blueprint")
    return str(bid) if bid else None


def _recursion(bp: Blueprint, registry: Registry | None) -> list[Problem]:
    """``recursive-blueprint``: a subflow/map whose child runs lead back to this blueprint.

    A warning, not an error: recursion guarded by a condition is legitimate. Unguarded, it is
    stopped by :mod:`flownb.core.limits` at run time; the warning shows the cycle before that. Other
    blueprints are followed through ``registry`` (breadth first, so the path shown is shortest).
    """
    memo: dict[int, list[tuple[int, Node, str]]] = {}

    def children(b: Blueprint) -> list[tuple[int, Node, str]]:
        found = memo.get(id(b))
        if found is None:
            found = memo[id(b)] = [(i, n, bid) for i, n in enumerate(b.nodes) if n.uses in
                                   ("subflow", "map") and (bid := child_blueprint_id(n))]
        return found

    def lookup(bid: str) -> Blueprint | None:
        if bid == bp.id:
            return bp
        if registry is not None and registry.has_blueprint(bid):
            return registry.get_blueprint(bid)
        return None

    out: list[Problem] = []
    for i, n, first in children(bp):
        path = [bp.id, bp.id] if first == bp.id else None
        prev: dict[str, str] = {first: bp.id}
        todo = deque([first] if path is None else [])
        while todo and path is None:
            cur = todo.popleft()
            child = lookup(cur)
            for _, _, nxt in children(child) if child is not None else ():
                if nxt == bp.id:
                    path = [cur]
                    while path[-1] != bp.id:
                        path.append(prev[path[-1]])
                    path = [*reversed(path), bp.id]
                    break
                if nxt not in prev:
                    prev[nxt] = cur
                    todo.append(nxt)
        if path is not None:
            out.append(Problem(
                "recursive-blueprint", WARNING, f"nodes[{i}] (id {n.id!r}).params",
                f"{n.uses} reaches its own blueprint again: {' -> '.join(path)}; unless a "
                "condition ends the recursion, the run fails at the nesting limit "
                f"({ENV_MAX_DEPTH}, default {DEFAULT_MAX_DEPTH}) or the child-run limit "
                f"({ENV_MAX_CHILD_RUNS}, default {DEFAULT_MAX_CHILD_RUNS})", n.id))
    return out
