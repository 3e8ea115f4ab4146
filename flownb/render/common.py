"""Helpers every drawing shares: DOT string escaping, blueprint/analysis access, node text.

Why separate: the DOT writer, the text listing and the Mermaid output describe a node the same
way (``uses`` line, join/loop/retry notes, missing endpoints), and one behaviour lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.graph import DEFAULT_MAX_VISITS, Graph, analyse

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint, Node
    from ..core.registry import Registry
    from ..core.result import RunResult

_ANALYSIS_KEY = ("flownb.render", "analysis")


# -- escaping ----------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    """Escape ``text`` for the inside of a DOT double-quoted label string.

    Backslashes are doubled first: Graphviz reads ``\\n``, ``\\l``, ``\\N``… in labels as escape
    sequences, so a user's backslash must not start one (and must not escape the closing quote).
    ``&`` becomes ``&amp;`` because Graphviz decodes HTML entities in every label (an id such as
    ``a&lt;b`` would otherwise be drawn as ``a<b``). Newlines become DOT's centred line break;
    other control characters become spaces.
    """
    out = text.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(c if c >= " " or c == "\t" else " " for c in out).replace("\t", " ")


def _q(text: str) -> str:
    """A quoted, escaped DOT string."""
    return f'"{_esc(text)}"'


def _lines(*parts: str) -> str:
    """Several label lines as one quoted DOT string (each part escaped on its own)."""
    return '"' + "\\n".join(_esc(p) for p in parts) + '"'


def _attrs(attrs: Mapping[str, str]) -> str:
    """``[k="v", …]`` with already-quoted values, in insertion order (so output is stable)."""
    return "[" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "]"


def _truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, ending with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- shared helpers --------------------------------------------------------------------------------

def states_of(states: Mapping[str, str] | RunResult | None) -> Mapping[str, str] | None:
    """``states=`` as a mapping: a :class:`~flownb.core.result.RunResult` gives its node states with
    its subflow children's (``"sub/child"``), so a drawing of a finished run never shows a
    child that ran as pending."""
    node_states = getattr(states, "node_states", None)
    if isinstance(node_states, Mapping):
        return node_states
    return states  # type: ignore[return-value]


def _as_blueprint(bp: Any) -> Blueprint:
    """Accept a Blueprint or anything :func:`flownb.core.blueprint.load` accepts (dict, JSON, path)."""
    from ..core.blueprint import Blueprint, load

    return bp if isinstance(bp, Blueprint) else load(bp)


def _analysis(bp: Blueprint) -> Graph:
    """The graph analysis, tolerant of lint problems and memoised on the blueprint.

    Drawing must work for broken blueprints too (that is when people look at them), so bad
    conditions are kept (``strict_conditions=False``) and unknown endpoints are reported by
    :func:`_missing_endpoints` rather than raising. The widget redraws on every event; the
    blueprint is immutable, so the analysis is computed once.
    """
    g: Graph | None = bp._cache.get(_ANALYSIS_KEY)
    if g is None:
        g, _ = analyse(bp, strict_conditions=False)
        bp._cache[_ANALYSIS_KEY] = g
    return g


def _blueprint_ref(node: Node) -> str | None:
    """The blueprint id a subflow (or map) node names, under any of its accepted spellings."""
    p = node.params
    ref = p.get("blueprintId") or p.get("blueprint_id") or p.get("blueprint")
    return str(ref) if ref else None


def _uses_text(node: Node) -> str:
    """What a node does, in one short line: ``uses``, or the target of a subflow/map."""
    if node.uses == "subflow":
        ref = _blueprint_ref(node)
        return f"subflow: {ref}" if ref else "subflow: ?"
    if node.uses == "map":
        p = node.params
        target = p.get("node") or p.get("uses") or _blueprint_ref(node)
        return f"map: {target}" if target else "map: ?"
    return node.uses


def _loop_nodes(g: Graph) -> set[str]:
    """Ids of the nodes that sit on a cycle (members of a cyclic strongly connected component)."""
    return {n for members in g.scc_nodes.values() for n in members}


def _node_notes(g: Graph, node_id: str, loops: set[str]) -> list[str]:
    """Short facts that change how a node runs: join strategy, loop guard, retries, fallback."""
    cn = g.nodes[node_id]
    cfg = cn.config
    notes: list[str] = []
    if cn.n_fwd_in > 1:
        notes.append(f"join: {cn.join}")
    if node_id in loops or cfg.max_visits is not None:
        notes.append(f"max visits: {cfg.max_visits or DEFAULT_MAX_VISITS}")
    if cfg.retries:
        notes.append(f"retries: {cfg.retries}")
    if cfg.timeout_s is not None:
        notes.append(f"timeout: {cfg.timeout_s:g}s")
    return notes


def _missing_endpoints(bp: Blueprint, g: Graph) -> list[str]:
    """Edge endpoints that name no node, in order of first appearance (a typo shows as a node)."""
    seen: list[str] = []
    for e in bp.edges:
        for name in (e.source, e.target):
            if name not in g.nodes and name not in seen:
                seen.append(name)
    return seen


def _default_registry() -> Registry:
    from ..core.registry import default_registry

    return default_registry


def _find_blueprint(registry: Any, ref: str | None) -> Blueprint | None:
    """The registered blueprint ``ref``, or None; a misbehaving registry never breaks a drawing."""
    if not ref or registry is None:
        return None
    try:
        if not registry.has_blueprint(ref):
            return None
        found = registry.get_blueprint(ref)
    except Exception:  # noqa: BLE001 - drawing is best effort for subflows
        return None
    from ..core.blueprint import Blueprint

    return found if isinstance(found, Blueprint) else None

