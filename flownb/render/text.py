"""The plain-text picture of a blueprint, for terminals and machines without Graphviz."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .common import _analysis, _as_blueprint, _loop_nodes, _node_notes, _truncate, _uses_text, states_of

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.result import RunResult


# -- text --------------------------------------------------------------------------------------------

def _summary(bp: Blueprint) -> str:
    """One line: id, counts, and the structures a reader should know about."""
    g = _analysis(bp)
    parts = [f"{len(g.nodes)} node{'s' if len(g.nodes) != 1 else ''}",
             f"{len(bp.edges)} edge{'s' if len(bp.edges) != 1 else ''}"]
    loops = len(g.scc_nodes)
    joins = sum(1 for cn in g.nodes.values() if cn.n_fwd_in > 1)
    subs = sum(1 for cn in g.nodes.values() if cn.uses == "subflow")
    for count, word in ((loops, "loop"), (joins, "join"), (subs, "subflow")):
        if count:
            parts.append(f"{count} {word}{'s' if count != 1 else ''}")
    return f"blueprint {_oneline(bp.id)!r}: " + ", ".join(parts)


def _oneline(text: Any) -> str:
    """``text`` on one line: a listing row must stay one row whatever the user wrote."""
    return re.sub(r"[\x00-\x1f]+", " ", str(text))


def text_listing(bp: Blueprint | Mapping[str, Any],
                 states: Mapping[str, str] | RunResult | None = None) -> str:
    """A plain-text picture of the blueprint for terminals and machines without Graphviz.

    Nodes come in blueprint order with what they use and their start/join/loop/fallback
    marks (and status, with ``states``); edges with their action and condition, loop back
    edges and fallbacks marked. Readable in a monospace cell, stable for diffs.
    """
    blueprint = _as_blueprint(bp)
    states = states_of(states)
    g = _analysis(blueprint)
    loops = _loop_nodes(g)
    starts = set(g.starts)
    rows: list[tuple[str, str, str]] = []
    for name, cn in g.nodes.items():
        marks = []
        if name in starts:
            marks.append("start")
        if name in loops:
            marks.append("loop")
        marks.extend(_node_notes(g, name, loops))
        if cn.config.fallback:
            marks.append(f"fallback: {cn.config.fallback}")
        if states is not None:
            marks.append(f"[{states.get(name, 'pending')}]")
        rows.append((name, _oneline(_uses_text(cn.spec)), _oneline(", ".join(marks))))
    w_id = min(28, max((len(r[0]) for r in rows), default=0))
    w_uses = min(28, max((len(r[1]) for r in rows), default=0))
    out = [_summary(blueprint), "nodes:"]
    for name, uses, notes in rows:
        out.append(f"  {name.ljust(w_id)}  {uses.ljust(w_uses)}  {notes}".rstrip())
    back = {id(ce.spec) for ce in g.edges if ce.back}
    edges: list[tuple[str, str]] = []
    for e in blueprint.edges:
        details = []
        if e.action:
            details.append(f"action: {e.action}")
        if e.condition:
            details.append(f"if {_truncate(e.condition, 80)}")
        if id(e) in back:
            details.append("(loop back)")
        if e.source not in g.nodes or e.target not in g.nodes:
            details.append("(unknown node)")
        edges.append((_oneline(f"{e.source} -> {e.target}"), _oneline("  ".join(details))))
    for name, cn in g.nodes.items():
        if cn.config.fallback:
            edges.append((f"{name} ..> {cn.config.fallback}", "fallback"))
    if edges:
        out.append("edges:")
        w_edge = min(40, max(len(a) for a, _ in edges))
        out.extend(f"  {a.ljust(w_edge)}  {b}".rstrip() for a, b in edges)
    return "\n".join(out)


def _markdown_block(text: str) -> str:
    """``text`` in a fenced code block whose fence is longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"
