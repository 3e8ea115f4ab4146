"""Drawing a blueprint: Graphviz DOT text, an SVG when ``dot`` is installed, a text listing otherwise.

Why this module looks the way it does:

* It belongs to the core, which must import without graphviz, IPython or ipywidgets. DOT is plain
  text, so :func:`to_dot` needs nothing; only :func:`to_svg` needs the ``dot`` executable (and
  uses the ``graphviz`` package when it is installed, the executable directly when it is not).
* A notebook must never show a traceback because a drawing tool is missing: :func:`mimebundle`
  degrades to a readable listing plus a one-line install hint, and turns any unexpected error
  into that same fallback.
* The live run widget redraws the graph after every event. Output is therefore deterministic
  (same input, byte-identical text; Graphviz ids are ``n0``, ``n1``… in blueprint order, never
  derived from hashes or object ids), and a node's label has the same number of lines whatever
  its status, so the layout does not jump while a run progresses.
* One drawing serves JupyterLab's light and dark themes (and GitHub, and a static HTML export):
  the background is transparent, node fills are light with dark text in both themes, and lines
  and labels that sit on the background use mid-tone colours readable on white and on black.
* Long chains are drawn left to right (``rankdir="auto"``) and the live widget can draw only
  the region around the running nodes (``focus=``), so a 50-node chain stays readable and the
  running node stays in view.
* User text (ids, ``uses``, conditions) only ever appears inside quoted, escaped DOT strings.
  Node ids are *not* used as Graphviz ids: ids such as ``a"b``, ``x\\y`` or ``{z}`` would need
  DOT's idiosyncratic id quoting, and a trailing backslash could swallow a closing quote.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .graph import DEFAULT_MAX_VISITS, Graph, analyse

if TYPE_CHECKING:
    from .blueprint import Blueprint, Node
    from .events import Event
    from .registry import Registry
    from .result import RunResult

__all__ = [
    "INSTALL_HINT",
    "LEGEND",
    "STATE_COLORS",
    "STATE_STYLES",
    "auto_rankdir",
    "focus_region",
    "mimebundle",
    "states_from_events",
    "states_of",
    "text_listing",
    "to_dot",
    "to_svg",
]

#: node status -> (fill colour, border colour). The statuses are those of
#: :class:`flownb.result.NodeStats` plus ``cancelled`` (a node cut short by a cancelled or failed
#: run) and ``replaced`` (a node that failed and whose ``config.fallback`` took over).
STATE_COLORS: dict[str, tuple[str, str]] = {
    "pending": ("#ffffff", "#9e9e9e"),
    "running": ("#bbdefb", "#1e88e5"),
    "retrying": ("#ffe0b2", "#fb8c00"),
    "succeeded": ("#c8e6c9", "#43a047"),
    "failed": ("#ffcdd2", "#e53935"),
    "skipped": ("#eeeeee", "#bdbdbd"),
    "cancelled": ("#e0e0e0", "#616161"),
    "replaced": ("#f8bbd0", "#ad1457"),
}
#: extra Graphviz ``style`` words per status (a skipped node did not run: its border is dashed)
STATE_STYLES: dict[str, str] = {"skipped": "dashed"}

#: the one line shown instead of a drawing when ``dot`` is missing
INSTALL_HINT = ("(install graphviz for a drawing: apt-get install graphviz / brew install graphviz"
                " / conda install graphviz)")

#: what the drawing's marks mean (drawn under the graph; the widget shows it as a caption)
LEGEND = "bold border: entry node · dashed box: skipped · dashed arrow: loop back · dotted arrow: fallback"

_RANKDIRS = frozenset({"TB", "LR", "BT", "RL"})
_FONT = "Helvetica,Arial,sans-serif"
_DEFAULT_FILL, _DEFAULT_BORDER = "#ffffff", "#546e7a"
#: lines and text drawn on the (transparent) background: readable on white and on near-black
_ON_BACKGROUND = "#78909c"
#: a chain at least this many ranks deep, at most _CHAIN_WIDTH wide, is drawn left to right
_CHAIN_RANKS, _CHAIN_WIDTH = 6, 2
_CONDITION_LIMIT = 40
_MAX_SUBFLOW_DEPTH = 4
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
    """``states=`` as a mapping: a :class:`~flownb.result.RunResult` gives its node states with
    its subflow children's (``"sub/child"``), so a drawing of a finished run never shows a
    child that ran as pending."""
    node_states = getattr(states, "node_states", None)
    if isinstance(node_states, Mapping):
        return node_states
    return states  # type: ignore[return-value]


def _as_blueprint(bp: Any) -> Blueprint:
    """Accept a Blueprint or anything :func:`flownb.blueprint.load` accepts (dict, JSON, path)."""
    from .blueprint import Blueprint, load

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
    from .registry import default_registry

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
    from .blueprint import Blueprint

    return found if isinstance(found, Blueprint) else None


# -- DOT ---------------------------------------------------------------------------------------------

class _DotWriter:
    """Accumulates DOT lines; one instance per :func:`to_dot` call keeps cluster numbering local."""

    def __init__(self, states: Mapping[str, str] | None, registry: Any, subflows: bool,
                 focus: Collection[str] | None = None) -> None:
        self.states = states
        self.registry = registry
        self.subflows = subflows
        self.focus = set(focus) if focus is not None else None
        self.lines: list[str] = []
        self.clusters = 0
        #: status of subflow children that have none in ``states`` (see :meth:`subflow_cluster`)
        self.child_default = "pending"

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
        for name, cn in g.nodes.items():
            if name in hidden:
                continue
            node = cn.spec
            self.stmt(depth, gid[name],
                      self.node_attrs(node, g, key_prefix + name, loops, name in starts))
        for ce in g.edges:
            if ce.source in hidden or ce.target in hidden:
                continue
            self.stmt(depth, f"{gid[ce.source]} -> {gid[ce.target]}", _edge_attrs(ce.spec, ce.back))
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
        if parent == "skipped" or (parent == "succeeded" and self.states is not None
                                   and any(k.startswith(key_prefix) for k in self.states)):
            self.child_default = "skipped"
        elif parent is not None:
            self.child_default = "pending"
        k = self.clusters
        self.clusters += 1
        self.emit(depth, f"subgraph cluster_{k} {{")
        self.stmt(depth + 1, "graph", {
            "label": _q(f"subflow {child.id}"), "style": '"rounded,dashed"', "color": '"#90a4ae"',
            "fontcolor": _q(_ON_BACKGROUND), "fontsize": '"10"', "labeljust": '"l"'})
        child_gid = self.blueprint_body(child, f"s{k}_", key_prefix, depth + 1, (*stack, child.id))
        self.child_default = outer
        self.emit(depth, "}")
        cg = _analysis(child)
        first = cg.starts[0] if cg.starts else next(iter(cg.nodes))
        self.stmt(depth, f"{node_gid} -> {child_gid[first]}", {
            "lhead": _q(f"cluster_{k}"), "style": '"dotted"', "arrowhead": '"empty"',
            "color": '"#90a4ae"', "tooltip": _lines(f"{node.id} runs blueprint {child.id}")})


def _edge_attrs(e: Any, back: bool) -> dict[str, str]:
    """Label (action and/or condition), tooltip and, for loop back edges, the dashed style."""
    label: list[str] = []
    if e.action:
        label.append(str(e.action))
    if e.condition:
        label.append(f"[{_truncate(e.condition, _CONDITION_LIMIT - 2)}]")
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


def to_dot(bp: Blueprint | Mapping[str, Any], *, states: Mapping[str, str] | RunResult | None = None,
           registry: Registry | None = None, subflows: bool = True, rankdir: str = "auto",
           title: str | None = None, legend: bool = True,
           focus: Collection[str] | None = None) -> str:
    """Graphviz DOT source for ``bp`` (deterministic: same input, byte-identical text).

    ``states`` maps node ids (``"sub/child"`` for the nodes of a drawn subflow) to a status of
    :data:`STATE_COLORS`, or is a :class:`~flownb.result.RunResult` (its
    :attr:`~flownb.result.RunResult.node_states`, subflow children included); nodes missing
    from it are drawn as pending, and without ``states`` nodes are neutral. Subflows whose blueprint is in ``registry`` (default: the global one)
    are drawn as clusters unless ``subflows=False``. Nothing is fetched or executed.

    ``rankdir="auto"`` draws chains left to right (:func:`auto_rankdir`); ``legend`` adds one
    line under the graph saying what bold/dashed/dotted mean; ``focus`` (node ids) draws only
    those top-level nodes, with "… N nodes" stand-ins for the rest (:func:`focus_region`).
    """
    blueprint = _as_blueprint(bp)
    if rankdir == "auto":
        rankdir = auto_rankdir(blueprint)
    if rankdir not in _RANKDIRS:
        raise ValueError(f"rankdir must be 'auto' or one of {sorted(_RANKDIRS)}, got {rankdir!r}")
    reg = registry if registry is not None else (_default_registry() if subflows else None)
    w = _DotWriter(states_of(states), reg, subflows, focus)
    w.emit(0, "digraph flownb {")
    graph_attrs = {"rankdir": _q(rankdir), "compound": '"true"', "fontname": _q(_FONT),
                   "fontsize": '"12"', "nodesep": '"0.35"', "ranksep": '"0.45"',
                   "bgcolor": '"transparent"', "fontcolor": _q(_ON_BACKGROUND)}
    if title:
        graph_attrs.update(label=_q(title), labelloc='"t"')
    elif legend and blueprint.nodes:
        graph_attrs.update(label=_q(LEGEND), labelloc='"b"', labeljust='"l"', fontsize='"9"')
    w.stmt(1, "graph", graph_attrs)
    w.stmt(1, "node", {"shape": '"box"', "style": '"rounded,filled"', "fontname": _q(_FONT),
                       "fontsize": '"11"', "margin": '"0.15,0.06"', "fillcolor": _q(_DEFAULT_FILL),
                       "color": _q(_DEFAULT_BORDER)})
    w.stmt(1, "edge", {"fontname": _q(_FONT), "fontsize": '"9"', "color": '"#607d8b"',
                       "fontcolor": _q(_ON_BACKGROUND), "arrowsize": '"0.7"'})
    w.blueprint_body(blueprint, "", "", 1, (blueprint.id,))
    w.emit(0, "}")
    return "\n".join(w.lines) + "\n"


# -- SVG ---------------------------------------------------------------------------------------------

def to_svg(bp: Blueprint | Mapping[str, Any], **kw: Any) -> str | None:
    """The drawing as SVG text, or None when Graphviz's ``dot`` executable is not installed.

    A missing ``dot`` is an ordinary situation (pip cannot install it), so it is reported by the
    return value, not an exception. Keyword arguments are those of :func:`to_dot`. Uses the
    ``graphviz`` package when importable and runs ``dot`` directly otherwise, so the core needs
    neither the package nor IPython.
    """
    source = to_dot(bp, **kw)
    if shutil.which("dot") is None:
        return None
    try:
        import graphviz  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return _svg_via_subprocess(source)
    try:
        svg = graphviz.Source(source).pipe(format="svg", encoding="utf-8", quiet=True)
    except graphviz.ExecutableNotFound:
        return None
    return str(svg)


def _svg_via_subprocess(source: str) -> str | None:
    """Run ``dot -Tsvg`` without the graphviz package; None if the executable vanished."""
    try:
        proc = subprocess.run(["dot", "-Tsvg"], input=source.encode("utf-8"), capture_output=True,
                              check=False, timeout=60)
    except FileNotFoundError:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout.decode("utf-8")


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


def mimebundle(bp: Blueprint | Mapping[str, Any], *,
               states: Mapping[str, str] | RunResult | None = None, **kw: Any) -> dict[str, str]:
    """What a notebook shows for a blueprint (``_repr_mimebundle_``); never raises.

    With ``dot``: the SVG plus a one-line summary. Without it (or if drawing fails for any
    reason): the text listing and one line saying how to get drawings, as Markdown and plain
    text, because an exception in a repr hides the object instead of explaining it — plus the
    Mermaid text (``text/vnd.mermaid``), which JupyterLab >= 4.1 draws without graphviz. It is
    not offered beside the SVG: a front-end would pick one of the two by its own ranking.
    """
    states = states_of(states)
    try:
        svg = to_svg(bp, states=states, **kw)
        if svg is not None:
            return {"image/svg+xml": svg, "text/plain": _summary(_as_blueprint(bp))}
        hint = INSTALL_HINT
    except Exception as exc:  # noqa: BLE001 - a repr must not raise
        hint = _truncate(f"(no drawing: {type(exc).__name__}: {exc})", 200)
    try:
        listing = text_listing(bp, states)
    except Exception as exc:  # noqa: BLE001 - last resort: say what we have
        name = getattr(bp, "id", None) or (bp.get("id") if isinstance(bp, Mapping) else None)
        listing = _truncate(f"blueprint {name!r} (cannot list it: {type(exc).__name__}: {exc})",
                            400)
    bundle = {"text/markdown": _markdown_block(listing) + "\n\n" + hint,
              "text/plain": listing + "\n" + hint}
    try:  # JupyterLab >= 4.1 draws Mermaid itself: a drawing even without graphviz
        from .mermaid import to_mermaid

        bundle["text/vnd.mermaid"] = to_mermaid(bp, states=states)
    except Exception as exc:  # noqa: BLE001 - the listing is enough
        bundle["text/plain"] += f"\n(no Mermaid text either: {type(exc).__name__})"
    return bundle


# -- events -> states --------------------------------------------------------------------------------

_CHILD_RUN = re.compile(r"(?s)(.+)\.(\d+)(\[\d+\])?")


def states_from_events(events: Iterable[Event], *, run_id: str | None = None) -> dict[str, str]:
    """Fold a run's events into ``{node id: status}`` for :func:`to_dot`.

    ``node_started`` -> running, ``node_retrying`` -> retrying, ``node_succeeded`` -> succeeded,
    ``node_skipped`` -> skipped, ``node_failed`` -> failed. When a ``node_fallback`` follows a
    failure the failed node becomes ``replaced`` and the fallback node running, then succeeded
    when the runtime commits its result (the runtime reports that success under the replaced
    node's id, which stays ``replaced``). A node whose failure ends the run is only named by
    ``run_failed``, so that marks it failed; nodes still running when a run fails or is
    cancelled become ``cancelled``.

    The run is ``run_id`` or that of the first event; child runs of its subflows (run id
    ``<run>/<node>.<visit>``) are folded under ``"<node>/<child node>"`` keys, which is how
    :func:`to_dot` addresses subflow clusters. Events of map items and of unrelated runs are
    ignored, so one shared bus or stream can be passed as is.
    """
    states: dict[str, str] = {}
    prefixes: dict[str, str | None] = {}  # run id -> key prefix (None: a run we do not draw)
    rescued: dict[str, str] = {}  # replaced node key -> fallback node key
    root = run_id

    def prefix_of(rid: str) -> str | None:
        if rid in prefixes:
            return prefixes[rid]
        parent = max((k for k in prefixes if rid.startswith(k + "/")), key=len, default=None)
        result: str | None = None
        if parent is not None and prefixes[parent] is not None:
            m = _CHILD_RUN.fullmatch(rid[len(parent) + 1:])
            if m and not m.group(3):
                result = f"{prefixes[parent]}{m.group(1)}/"
        prefixes[rid] = result
        return result

    for event in events:
        rid = str(getattr(event, "run_id", "") or "")
        if root is None:
            root = rid
        if root not in prefixes:
            prefixes[root] = ""
        prefix = prefix_of(rid)
        if prefix is None:
            continue
        kind = getattr(event, "type", "")
        node = getattr(event, "node_id", None)
        data = getattr(event, "data", None) or {}
        key = f"{prefix}{node}" if node else None
        if kind == "node_started" and key:
            states[key] = "running"
            rescued.pop(key, None)
        elif kind == "node_retrying" and key:
            states[key] = "retrying"
        elif kind == "node_succeeded" and key:
            fb = rescued.pop(key, None)
            if fb is not None:
                states[fb] = "succeeded"
            else:
                states[key] = "succeeded"
        elif kind == "node_failed" and key:
            states[key] = "failed"
        elif kind == "node_fallback" and key:
            replaced = data.get("replaces") if isinstance(data, Mapping) else None
            states[key] = "running"
            if replaced:
                rkey = f"{prefix}{replaced}"
                states[rkey] = "replaced"
                rescued[rkey] = key
        elif kind == "node_skipped" and key:
            states[key] = "skipped"
        elif kind in ("run_failed", "run_cancelled"):
            for k, v in states.items():
                if k.startswith(prefix) and v in ("running", "retrying"):
                    states[k] = "cancelled"
            if kind == "run_failed" and key:
                states[key] = "failed"
                for rkey, fb in list(rescued.items()):
                    if fb == key:
                        del rescued[rkey]
    return states
