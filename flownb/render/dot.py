"""Graphviz DOT text for a blueprint (deterministic, escaped; see :mod:`flownb.render`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from ..core.graph import Graph
from ..core.settle import unreached_child
from .common import (
    _analysis,
    _as_blueprint,
    _attrs,
    _blueprint_ref,
    _default_registry,
    _find_blueprint,
    _lines,
    _loop_nodes,
    _missing_endpoints,
    _node_notes,
    _q,
    _truncate,
    _uses_text,
    states_of,
)
from .paths import Overlay, path_of
from .theme import (
    _CHAIN_RANKS,
    _CHAIN_WIDTH,
    _CONDITION_LIMIT,
    _DEFAULT_BORDER,
    _DEFAULT_FILL,
    _FONT,
    _MAX_SUBFLOW_DEPTH,
    _ON_BACKGROUND,
    _RANKDIRS,
    LEGEND,
    LEGEND_SUBFLOW,
    NODE_TEXT,
    SUBFLOW_SHAPE,
    STATE_COLORS,
    STATE_STYLES,
)

from .wrap import EDGE_CHAR_PT, box_width_pt, row_heads, row_subgraphs, wrap_rows

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint, Node
    from ..core.heat import Heat
    from ..core.registry import Registry
    from ..core.result import RunResult


# -- DOT ---------------------------------------------------------------------------------------------

class _DotWriter:
    """Accumulates DOT lines; one instance per :func:`to_dot` call keeps cluster numbering local."""

    def __init__(self, states: Mapping[str, str] | None, registry: Any, subflows: bool,
                 focus: Collection[str] | None = None, overlay: Overlay | None = None) -> None:
        self.states = states
        self.overlay = overlay or Overlay()  # a run's path / a batch's heat map (render.paths)
        self.registry = registry
        self.subflows = subflows
        self.focus = set(focus) if focus is not None else None
        self.lines: list[str] = []
        self.clusters = 0
        #: status of subflow children that have none in ``states`` (see :meth:`subflow_cluster`)
        self.child_default = "pending"
        #: top-level node -> its row, when a long chain is wrapped (flownb.render.wrap)
        self.row_of: dict[str, int] = {}

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text)

    def stmt(self, depth: int, target: str, attrs: Mapping[str, str]) -> None:
        """One DOT statement: ``target [attrs];`` (a node, an edge, or graph/node/edge defaults)."""
        self.emit(depth, f"{target} {_attrs(attrs)};")

    def node_attrs(self, node: Node, g: Graph, key: str, loops: set[str],
                   start: bool) -> dict[str, str]:
        """Label, colours and border of one node; ``key`` is its id in ``states``."""
        label = [node.id, _uses_text(node), *_node_notes(g, node.id, loops)]
        style = ["rounded", "filled"]
        tooltip = [node.id]
        if node.label and node.label != node.id:
            tooltip.append(node.label)
        if node.description:
            tooltip.append(node.description)
        if self.states is not None:
            status = str(self.states.get(key, self.child_default if "/" in key else "pending"))
            fill, border = STATE_COLORS.get(status, STATE_COLORS["pending"])
            extra = STATE_STYLES.get(status)
            if extra:
                style.append(extra)
            label.append(status)  # colour alone is not enough (colour blindness, print)
            tooltip.append(f"status: {status}")
        else:
            fill, border = _DEFAULT_FILL, _DEFAULT_BORDER
        attrs = {"label": _lines(*label), "fillcolor": _q(fill), "color": _q(border),
                 "style": _q(",".join(style)), "tooltip": _lines(*tooltip)}
        if start:
            attrs["penwidth"] = '"2.5"'
        if node.uses == "subflow":  # its own shape: a dashed frame would read "skipped"
            attrs["shape"] = _q(SUBFLOW_SHAPE)
        self.overlay.node_dot(key, attrs, label)  # a heat map counts subflow children too
        return attrs

    def blueprint_body(self, bp: Blueprint, prefix: str, key_prefix: str, depth: int,
                       stack: tuple[str, ...]) -> dict[str, str]:
        """Nodes, edges and subflow clusters of ``bp``; returns node id -> Graphviz id.

        ``prefix`` makes Graphviz ids unique across clusters, ``key_prefix`` is how the nodes
        of a subflow are addressed in ``states`` (``"<subflow node id>/<child node id>"``).
        """
        g = _analysis(bp)
        loops = _loop_nodes(g)
        gid = {name: f"{prefix}n{i}" for i, name in enumerate(g.nodes)}
        hidden: set[str] = set()
        if self.focus is not None and depth == 1:
            hidden = set(g.nodes) - self.focus
            self.placeholders(bp, g, gid, hidden, depth)
        for i, name in enumerate(_missing_endpoints(bp, g)):
            gid[name] = f"{prefix}m{i}"
            self.stmt(depth, gid[name], {
                "label": _lines(name, "(no such node)"), "shape": '"box"',
                "style": '"dashed"', "color": '"#e53935"', "fontcolor": '"#e53935"',
                "tooltip": _lines(f"edge endpoint {name!r} is not a node of {bp.id!r}")})
        starts = set(g.starts)
        rows: dict[int, list[str]] = {}  # a wrapped chain's node statements, per row
        for name, cn in g.nodes.items():
            if name in hidden:
                continue
            node = cn.spec
            attrs = self.node_attrs(node, g, key_prefix + name, loops, name in starts)
            if depth == 1 and name in self.row_of:
                rows.setdefault(self.row_of[name], []).append(f"{gid[name]} {_attrs(attrs)};")
            else:
                self.stmt(depth, gid[name], attrs)
        for line in row_subgraphs(rows):
            self.emit(depth, line)
        for ce in g.edges:
            if ce.source in hidden or ce.target in hidden:
                continue
            attrs = _edge_attrs(ce.spec, ce.back)
            if depth == 1 and self.row_of.get(ce.source) != self.row_of.get(ce.target):
                attrs["constraint"] = '"false"'  # a wrapped chain's return sweep to the next row
            if not key_prefix and self.overlay.active:
                self.overlay.edge_dot(ce.idx, attrs, _edge_label(ce.spec))
            self.stmt(depth, f"{gid[ce.source]} -> {gid[ce.target]}", attrs)
        drawn = {id(ce.spec) for ce in g.edges}
        for e in bp.edges:  # edges analyse() dropped because an endpoint is missing
            if id(e) not in drawn and e.source in gid and e.target in gid \
                    and e.source not in hidden and e.target not in hidden:
                attrs = _edge_attrs(e, False)
                attrs["color"] = '"#e53935"'
                self.stmt(depth, f"{gid[e.source]} -> {gid[e.target]}", attrs)
        for name, cn in g.nodes.items():
            fb = cn.config.fallback
            if fb and fb in g.nodes and fb != name and name not in hidden and fb not in hidden:
                self.stmt(depth, f"{gid[name]} -> {gid[fb]}", {
                    "label": '"fallback"', "style": '"dotted"', "color": '"#8d6e63"',
                    "fontcolor": '"#8d6e63"', "tooltip": _lines(f"{name} fails -> {fb} takes over")})
        if self.subflows:
            for name, cn in g.nodes.items():
                if cn.uses == "subflow" and name not in hidden:
                    self.subflow_cluster(cn.spec, gid[name], key_prefix + name + "/", depth, stack)
        return gid

    def placeholders(self, bp: Blueprint, g: Graph, gid: dict[str, str], hidden: set[str],
                     depth: int) -> None:
        """Stand-ins for the nodes a focused drawing leaves out: one box "… N before" feeding
        the shown region and one "N after …" it feeds, so the cut stays visible."""
        shown = set(g.nodes) - hidden
        levels = _levels(g)
        fwd = [ce for ce in g.edges if not ce.back]
        into = sorted({ce.target for ce in fwd if ce.source in hidden and ce.target in shown},
                      key=list(g.nodes).index)
        out_of = sorted({ce.source for ce in fwd if ce.source in shown and ce.target in hidden},
                        key=list(g.nodes).index)
        first = min((levels[n] for n in shown), default=0)
        n_before = sum(1 for n in hidden if levels[n] < first)
        n_after = len(hidden) - n_before
        style = {"shape": '"plaintext"', "style": '""', "fontcolor": _q(_ON_BACKGROUND)}
        if n_before and into:
            self.stmt(depth, "hb", {"label": _q(f"… {n_before} node{'s' * (n_before != 1)}"),
                                    **style})
            for n in into:
                self.stmt(depth, f"hb -> {gid[n]}", {"style": '"dashed"'})
        if n_after and out_of:
            self.stmt(depth, "ha", {"label": _q(f"{n_after} node{'s' * (n_after != 1)} …"),
                                    **style})
            for n in out_of:
                self.stmt(depth, f"{gid[n]} -> ha", {"style": '"dashed"'})

    def subflow_cluster(self, node: Node, node_gid: str, key_prefix: str, depth: int,
                        stack: tuple[str, ...]) -> None:
        """The referenced blueprint as ``subgraph cluster_<k>``, linked from the subflow node.

        Recursion stops at blueprints already being drawn (a subflow that includes itself) and
        at a fixed depth, so a drawing always terminates.
        """
        ref = _blueprint_ref(node)
        child = _find_blueprint(self.registry, ref)
        if child is None or child.id in stack or len(stack) > _MAX_SUBFLOW_DEPTH or not child.nodes:
            return
        # a skipped subflow ran none of its nodes; a finished one whose child events we have
        # ran exactly those: the others were skipped inside it (never "pending" after the run)
        outer = self.child_default
        parent = self.states.get(key_prefix[:-1]) if self.states is not None else None
        if parent is not None:
            self.child_default = unreached_child(parent, self.states is not None and any(
                k.startswith(key_prefix) for k in self.states))
        k = self.clusters
        self.clusters += 1
        self.emit(depth, f"subgraph cluster_{k} {{")
        self.stmt(depth + 1, "graph", {
            "label": _q(f"subflow {child.id}"), "style": '"rounded"', "color": '"#90a4ae"',
            "fontcolor": _q(_ON_BACKGROUND), "fontsize": '"10"', "labeljust": '"l"'})
        child_gid = self.blueprint_body(child, f"s{k}_", key_prefix, depth + 1, (*stack, child.id))
        self.child_default = outer
        self.emit(depth, "}")
        cg = _analysis(child)
        first = cg.starts[0] if cg.starts else next(iter(cg.nodes))
        self.stmt(depth, f"{node_gid} -> {child_gid[first]}", {
            "lhead": _q(f"cluster_{k}"), "style": '"solid"', "arrowhead": '"empty"',
            "color": '"#90a4ae"', "penwidth": '"1.5"', "tooltip": _lines(f"{node.id} runs blueprint {child.id}")})


def _edge_label(e: Any) -> list[str]:
    """The lines of an edge's label: its action and/or its (shortened) condition."""
    label: list[str] = []
    if e.action:
        label.append(str(e.action))
    if e.condition:
        label.append(f"[{_truncate(e.condition, _CONDITION_LIMIT - 2)}]")
    return label


def _edge_attrs(e: Any, back: bool) -> dict[str, str]:
    """Label (action and/or condition), tooltip and, for loop back edges, the dashed style."""
    label = _edge_label(e)
    tip = [f"{e.source} -> {e.target}"]
    if e.action:
        tip.append(f"action: {e.action}")
    if e.condition:
        tip.append(f"if {e.condition}")
    if back:
        tip.append("loop back edge")
    attrs: dict[str, str] = {}
    if label:
        attrs["label"] = _lines(*label)
    if back:
        attrs["style"] = '"dashed"'
        attrs["constraint"] = '"false"'
    attrs["tooltip"] = _lines(*tip)
    return attrs


def _levels(g: Graph) -> dict[str, int]:
    """Longest-path depth of every node over forward edges (entry nodes are level 0)."""
    order = sorted(g.nodes, key=lambda n: g.nodes[n].topo)
    level = dict.fromkeys(g.nodes, 0)
    for name in order:
        for ce in g.nodes[name].out:
            if not ce.back and g.nodes[ce.target].topo > g.nodes[name].topo:
                level[ce.target] = max(level[ce.target], level[name] + 1)
    return level


def auto_rankdir(bp: Blueprint | Mapping[str, Any]) -> str:
    """``"LR"`` for a long, narrow graph (a chain: at least 6 levels, at most 2 nodes wide),
    else ``"TB"``: a 20-step chain drawn top to bottom is taller than any screen."""
    g = _analysis(_as_blueprint(bp))
    if not g.nodes:
        return "TB"
    levels = _levels(g)
    widths: dict[int, int] = {}
    for lv in levels.values():
        widths[lv] = widths.get(lv, 0) + 1
    if len(widths) >= _CHAIN_RANKS and max(widths.values()) <= _CHAIN_WIDTH:
        return "LR"
    return "TB"


def _chain_rows(bp: Blueprint) -> list[list[str]] | None:
    """A chain (one node per level) too wide for one line, in rows
    (:func:`flownb.render.wrap.wrap_rows`), or None."""
    g = _analysis(bp)
    loops = _loop_nodes(g)
    widths = {name: box_width_pt([name, _uses_text(cn.spec), *_node_notes(g, name, loops)])
              for name, cn in g.nodes.items()}
    # an edge label widens the gaps between boxes: Graphviz then spaces a whole row by it
    gap = max((len(t) * EDGE_CHAR_PT for ce in g.edges if not ce.back
               for t in _edge_attrs(ce.spec, False).get("label", '""')[1:-1].split("\\n")),
              default=0.0)
    widths = {name: w + gap for name, w in widths.items()}
    levels = _levels(g)
    if _missing_endpoints(bp, g) or len(set(levels.values())) != len(levels):
        return None  # branches, or stand-ins for missing nodes: a plain layout reads better
    return wrap_rows(levels, widths, list(g.nodes))


def focus_region(bp: Blueprint | Mapping[str, Any], states: Mapping[str, str], *,
                 limit: int = 12, radius: int = 2) -> set[str] | None:
    """The nodes a live drawing of a big blueprint should show: those within ``radius`` steps
    of the running ones (of the last finished ones before/after), or None to draw everything
    (``limit`` nodes or fewer)."""
    g = _analysis(_as_blueprint(bp))
    if len(g.nodes) <= limit:
        return None
    top = {k: v for k, v in states.items() if "/" not in k and k in g.nodes}
    centre = [n for n, st in top.items() if st in ("running", "retrying")]
    if not centre:
        done = [n for n, st in top.items() if st not in ("pending", "skipped")]
        levels = _levels(g)
        if done:
            deepest = max(levels[n] for n in done)
            centre = [n for n in done if levels[n] == deepest]
        else:
            centre = list(g.starts[:1]) or [next(iter(g.nodes))]
    near = {n: set() for n in g.nodes}  # type: dict[str, set[str]]
    for ce in g.edges:
        near[ce.source].add(ce.target)
        near[ce.target].add(ce.source)
    region = set(centre)
    frontier = set(centre)
    for _ in range(radius):
        frontier = {m for n in frontier for m in near[n]} - region
        region |= frontier
        if len(region) >= limit:
            break
    return region


def _overlay(states: Any, taken: Mapping[int, int] | Collection[int] | None, fade: bool | None,
             heat: Heat | None) -> Overlay:
    """The path/heat overlay of a drawing: explicit arguments, else a RunResult's own path."""
    if taken is None and heat is None:
        taken, ended = path_of(states)
        fade = ended if fade is None else fade
    return Overlay(taken=taken, fade=True if fade is None else fade, heat=heat)


def to_dot(bp: Blueprint | Mapping[str, Any], *, states: Mapping[str, str] | RunResult | None = None,
           registry: Registry | None = None, subflows: bool = True, rankdir: str = "auto",
           title: str | None = None, legend: bool = True,
           focus: Collection[str] | None = None,
           taken: Mapping[int, int] | Collection[int] | None = None, fade: bool | None = None,
           heat: Heat | None = None) -> str:
    """Graphviz DOT source for ``bp`` (deterministic: same input, byte-identical text).

    ``states`` maps node ids (``"sub/child"`` for the nodes of a drawn subflow) to a status of
    :data:`STATE_COLORS`, or is a :class:`~flownb.core.result.RunResult` (its
    :attr:`~flownb.core.result.RunResult.node_states`, subflow children included); nodes missing
    from it are drawn as pending, and without ``states`` nodes are neutral. Subflows whose blueprint is in ``registry`` (default: the global one)
    are drawn as clusters unless ``subflows=False``. Nothing is fetched or executed.

    ``rankdir="auto"`` draws chains left to right (:func:`auto_rankdir`), wrapped into rows when
    one line would be wider than a notebook cell (:mod:`flownb.render.wrap`); ``legend`` adds one
    line under the graph saying what bold/dashed/dotted mean; ``focus`` (node ids) draws only
    those top-level nodes, with "… N nodes" stand-ins for the rest (:func:`focus_region`).

    ``taken`` (edge index -> times, or indices) draws a run's path: taken edges thick, the
    others faint when ``fade`` (default: yes; a finished RunResult as ``states`` implies its path).
    ``heat`` (:func:`flownb.core.heat.batch_heat`) draws a batch's heat map instead of states
    (:mod:`flownb.render.paths`).
    """
    blueprint = _as_blueprint(bp)
    rows = None
    if rankdir == "auto":
        rankdir = auto_rankdir(blueprint)
        if rankdir == "LR" and focus is None and not (
                subflows and any(n.uses == "subflow" for n in blueprint.nodes)):
            rows = _chain_rows(blueprint)  # too long for one line: wrapped, top to bottom
            rankdir = "TB" if rows else rankdir
    if rankdir not in _RANKDIRS:
        raise ValueError(f"rankdir must be 'auto' or one of {sorted(_RANKDIRS)}, got {rankdir!r}")
    reg = registry if registry is not None else (_default_registry() if subflows else None)
    w = _DotWriter(states_of(states), reg, subflows, focus, _overlay(states, taken, fade, heat))
    w.emit(0, "digraph flownb {")
    graph_attrs = {"rankdir": _q(rankdir), "compound": '"true"', "fontname": _q(_FONT),
                   "fontsize": '"12"', "nodesep": '"0.35"', "ranksep": '"0.45"',
                   "bgcolor": '"transparent"', "fontcolor": _q(_ON_BACKGROUND)}
    if title:
        graph_attrs.update(label=_q(title), labelloc='"t"')
    elif legend and blueprint.nodes:
        text = LEGEND + (LEGEND_SUBFLOW if subflows and any(n.uses == "subflow" for n in blueprint.nodes)
                         else "") + w.overlay.legend()
        graph_attrs.update(label=_q(text), labelloc='"b"', labeljust='"l"', fontsize='"10"')
    w.stmt(1, "graph", graph_attrs)
    w.stmt(1, "node", {"shape": '"box"', "style": '"rounded,filled"', "fontname": _q(_FONT),
                       "fontsize": '"11"', "margin": '"0.15,0.06"', "fillcolor": _q(_DEFAULT_FILL),
                       "fontcolor": _q(NODE_TEXT),
                       "color": _q(_DEFAULT_BORDER)})
    w.stmt(1, "edge", {"fontname": _q(_FONT), "fontsize": '"10"', "color": '"#607d8b"',
                       "fontcolor": _q(_ON_BACKGROUND), "arrowsize": '"0.7"'})
    if rows:
        w.row_of = {n: k for k, row in enumerate(rows) for n in row}
    gid = w.blueprint_body(blueprint, "", "", 1, (blueprint.id,))
    for line in row_heads(rows, gid) if rows else ():
        w.emit(1, line)
    w.emit(0, "}")
    return "\n".join(w.lines) + "\n"

