"""Static checks of a blueprint: every problem at once, each with a code and a location.

``flownb validate FILE`` and :meth:`Blueprint.lint` report the same list. Errors stop a run
before it starts (an executor compiles the blueprint first); warnings describe legal but
probably unintended shapes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .graph import analyse

if TYPE_CHECKING:
    from .blueprint import Blueprint
    from .registry import Registry

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    code: str
    severity: str
    location: str
    message: str
    node_id: str | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.location}: {self.message} [{self.code}]"


def lint(bp: Blueprint, registry: Registry | None = None) -> list[Problem]:
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
            bid = n.params.get("blueprintId") or n.params.get("blueprint_id") or n.params.get("blueprint")
            if not bid:
                out.append(Problem("subflow-without-blueprint", ERROR, f"{loc}.params",
                                   "a subflow node needs params.blueprintId", n.id))
            elif registry is not None and not registry.has_blueprint(str(bid)):
                out.append(Problem("unknown-blueprint", ERROR, f"{loc}.params.blueprintId",
                                   f"blueprint {bid!r} is not registered "
                                   "(registry.add_blueprint)", n.id))
        if n.uses == "map":
            p = n.params
            if not (p.get("node") or p.get("uses") or p.get("blueprintId") or p.get("blueprint_id")):
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
    for sid, members in g.scc_nodes.items():
        if not any(bp.nodes[idx[m]].config.max_visits for m in members):
            out.append(Problem("cycle-without-guard", WARNING, f"nodes {members}",
                               f"loop {' -> '.join(members)} has no config.max_visits on any of "
                               "its nodes; it is capped at the default (100 visits)", members[0]))
    seen = Counter((e.source, e.target, e.action, e.condition) for e in bp.edges)
    for i, e in enumerate(bp.edges):
        if seen[(e.source, e.target, e.action, e.condition)] > 1:
            out.append(Problem("duplicate-edge", WARNING, f"edges[{i}]",
                               f"edge {e.source} -> {e.target} appears more than once"))
            seen[(e.source, e.target, e.action, e.condition)] = 0
    from .lint_names import check_names

    out.extend(check_names(bp, registry))
    return out
