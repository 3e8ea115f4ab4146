"""A blueprint as a Mermaid ``flowchart``: a drawing GitHub markdown, docs and JupyterLab render.

Why a second drawing format beside Graphviz: an SVG needs the ``dot`` executable and is a file
to keep; Mermaid is text that GitHub, GitLab, mkdocs-material and JupyterLab (>= 4.1, as
``text/vnd.mermaid``) draw by themselves, so a blueprint can be pasted into a README or a pull
request. It shows the same things as :func:`flownb.render.to_dot`: nodes with what they use,
entry nodes bold, action/condition edge labels, loop back edges dashed, fallbacks dotted,
subflows as nested subgraphs, and node states (``states=``) in the same colours as the SVG.

Like :mod:`flownb.render` it is part of the core (no optional imports) and deterministic; user
text only appears inside quoted labels, with Mermaid's ``#...;`` entity codes for the
characters that would end or reinterpret a label.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from ..core.settle import unreached_child
from . import (
    STATE_COLORS,
    _analysis,
    _as_blueprint,
    _blueprint_ref,
    _default_registry,
    _find_blueprint,
    _missing_endpoints,
    _truncate,
    _uses_text,
    auto_rankdir,
    states_of,
)
from .dot import _overlay
from .paths import Overlay
from .theme import NODE_TEXT

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.heat import Heat
    from ..core.registry import Registry
    from ..core.result import RunResult

__all__ = ["mermaid_block", "to_mermaid"]

_MAX_DEPTH = 4
_ENTITIES = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;", "|": "#124;",
             "`": "#96;", "[": "#91;", "]": "#93;", "{": "#123;", "}": "#125;"}


def _text(value: str) -> str:
    """User text for the inside of a quoted Mermaid label (one line, entities escaped)."""
    flat = " ".join(str(value).split())
    return "".join(_ENTITIES.get(c, c) for c in flat if c >= " ")


def _label(*lines: str) -> str:
    return '"' + "<br/>".join(_text(x) for x in lines if x) + '"'


class _Writer:
    def __init__(self, states: Mapping[str, str] | None, registry: Any, subflows: bool,
                 overlay: Overlay | None = None) -> None:
        self.states = states
        self.overlay = overlay or Overlay()  # a run's path / a batch's heat map (render.paths)
        self.links = 0  # links drawn so far: linkStyle addresses a link by this number
        self.link_styles: list[str] = []
        self.heat_classes: dict[str, tuple[str, list[str]]] = {}
        self.registry = registry
        self.subflows = subflows
        self.lines: list[str] = []
        self.classes: dict[str, list[str]] = {}
        self.bold: list[str] = []
        self.clusters = 0

    def body(self, bp: Blueprint, prefix: str, key_prefix: str, indent: str,
             stack: tuple[str, ...], child_default: str) -> dict[str, str]:
        g = _analysis(bp)
        mid = {name: f"{prefix}n{i}" for i, name in enumerate(g.nodes)}
        for i, name in enumerate(_missing_endpoints(bp, g)):
            mid[name] = f"{prefix}m{i}"
            self.lines.append(f"{indent}{mid[name]}{{{{{_label(name, '(no such node)')}}}}}")
            self.classes.setdefault("missing", []).append(mid[name])
        starts = set(g.starts)
        for name, cn in g.nodes.items():
            key = key_prefix + name
            parts = [name, _uses_text(cn.spec)]
            if self.states is not None:
                status = str(self.states.get(key, child_default if key_prefix else "pending"))
                parts.append(status)
                self.classes.setdefault(status if status in STATE_COLORS else "pending",
                                        []).append(mid[name])
            heat = self.overlay.node_class(key)  # subflow children ("sub/child") too
            if heat is not None:
                parts.append(self.overlay.node_line(key) or "")
                self.heat_classes.setdefault(heat[0], (heat[1], []))[1].append(mid[name])
            # a subflow gets its own shape (mermaid's "subroutine" box), as in the SVG
            shape = ("[[", "]]") if cn.spec.uses == "subflow" else ("(", ")")
            self.lines.append(f"{indent}{mid[name]}{shape[0]}{_label(*parts)}{shape[1]}")
            if name in starts:
                self.bold.append(mid[name])
        for ce in g.edges:
            e = ce.spec
            words = [str(e.action)] if e.action else []
            if e.condition:
                words.append(f"[{_truncate(e.condition, 38)}]")
            arrow = "-.->" if ce.back else "-->"
            if not key_prefix and self.overlay.active:
                words += self.overlay.edge_words(ce.idx)
                style = self.overlay.link_style(ce.idx)
                if style:
                    self.link_styles.append(f"  linkStyle {self.links} {style}")
            label = f"|{_label(*words)}|" if words else ""
            self.lines.append(f"{indent}{mid[ce.source]} {arrow}{label} {mid[ce.target]}")
            self.links += 1
        for name, cn in g.nodes.items():
            fb = cn.config.fallback
            if fb and fb in g.nodes and fb != name:
                self.lines.append(f'{indent}{mid[name]} -.->|"fallback"| {mid[fb]}')
                self.links += 1
        if self.subflows:
            for name, cn in g.nodes.items():
                if cn.uses == "subflow":
                    self.subflow(cn.spec, mid[name], key_prefix + name + "/", indent, stack)
        return mid

    def subflow(self, node: Any, node_mid: str, key_prefix: str, indent: str,
                stack: tuple[str, ...]) -> None:
        child = _find_blueprint(self.registry, _blueprint_ref(node))
        if child is None or child.id in stack or len(stack) > _MAX_DEPTH or not child.nodes:
            return
        parent = self.states.get(key_prefix[:-1]) if self.states is not None else None
        ran = self.states is not None and any(k.startswith(key_prefix) for k in self.states)
        default = unreached_child(parent, ran)
        k = self.clusters
        self.clusters += 1
        self.lines.append(f'{indent}subgraph c{k} [{_label(f"subflow {child.id}")}]')
        child_mid = self.body(child, f"c{k}_", key_prefix, indent + "  ", (*stack, child.id),
                              default)
        self.lines.append(f"{indent}end")
        g = _analysis(child)
        first = g.starts[0] if g.starts else next(iter(g.nodes))
        self.lines.append(f"{indent}{node_mid} === {child_mid[first]}")  # not the fallback's -.->
        self.links += 1


def to_mermaid(bp: Blueprint | Mapping[str, Any], *,
               states: Mapping[str, str] | RunResult | None = None,
               registry: Registry | None = None, subflows: bool = True,
               direction: str = "auto",
               taken: Mapping[int, int] | Collection[int] | None = None, fade: bool | None = None,
               heat: Heat | None = None) -> str:
    """Mermaid ``flowchart`` text for ``bp`` (same options as :func:`flownb.render.to_dot`).

    ``states`` colours nodes (``"sub/child"`` keys for subflow nodes); ``direction`` is
    ``"auto"`` (left to right for chains), ``"TB"`` or ``"LR"``. ``taken``/``fade``/``heat``
    draw a run's path or a batch's heat map, as in :func:`flownb.render.to_dot`.
    """
    blueprint = _as_blueprint(bp)
    if direction == "auto":
        direction = auto_rankdir(blueprint)
    if direction not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"direction must be 'auto', 'TB', 'LR', 'BT' or 'RL', got {direction!r}")
    reg = registry if registry is not None else (_default_registry() if subflows else None)
    w = _Writer(states_of(states), reg, subflows, _overlay(states, taken, fade, heat))
    w.body(blueprint, "", "", "  ", (blueprint.id,), "pending")
    out = [f"flowchart {direction}", *w.lines]
    if w.overlay.active:  # what the emphasis means (mermaid has no legend; a comment says it)
        out.append(f"  %% {w.overlay.legend().lstrip(' ·')}")
    for status, ids in w.classes.items():
        if status == "missing":
            out.append("  classDef missing stroke:#e53935,stroke-dasharray:4 3,color:#e53935")
        else:
            fill, border = STATE_COLORS[status]
            dash = ",stroke-dasharray:5 3" if status == "skipped" else ""
            out.append(f"  classDef {status} fill:{fill},stroke:{border},color:{NODE_TEXT}{dash}")
        out.append(f"  class {','.join(ids)} {status}")
    for name, (body, ids) in w.heat_classes.items():
        out.append(f"  classDef {name} {body}")
        out.append(f"  class {','.join(ids)} {name}")
    out += w.link_styles
    if w.bold:
        out.append("  classDef entry stroke-width:3px")
        out.append(f"  class {','.join(w.bold)} entry")
    return "\n".join(out) + "\n"


def mermaid_block(bp: Blueprint | Mapping[str, Any], **kw: Any) -> str:
    """:func:`to_mermaid` in a fenced ```` ```mermaid ```` block, ready for a markdown file."""
    return f"```mermaid\n{to_mermaid(bp, **kw)}```\n"
