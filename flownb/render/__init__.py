"""The render layer: drawings of a blueprint or a run — Graphviz DOT (``dot``), SVG (``svg``), a text
listing (``text``), Mermaid (``mermaid``), the colours (``theme``), shared node text (``common``)
and run events -> node states (``events``). It may import :mod:`flownb.core` and the standard
library (and runs the ``dot`` executable when it is there) — never ``flownb.engine``,
``flownb.llm``, ``flownb.distributed``, ``flownb.notebook`` or ``flownb.cli``, nor graphviz,
IPython or ipywidgets as a hard dependency. Importing it registers a blueprint's notebook display
and its ``to_dot``/``to_mermaid`` in :mod:`flownb.core.display`.

Drawing a blueprint: Graphviz DOT text, an SVG when ``dot`` is installed, a text listing otherwise.

Why this module looks the way it does:

* ``import flownb`` imports it, and must work without graphviz, IPython or ipywidgets. DOT is plain
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

The parts live in their own modules and are re-exported here: ``theme`` (colours, marks),
``common`` (escaping, node text), ``dot`` (DOT building, layout direction, focus),
``svg`` (running Graphviz), ``text`` (the text listing) and ``events``
(events -> node states). This module keeps the notebook repr, :func:`mimebundle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.display import register as _register_view

# re-exported: every name below stays importable from flownb.render
from .common import (  # noqa: F401
    _ANALYSIS_KEY,
    _analysis,
    _as_blueprint,
    _attrs,
    _blueprint_ref,
    _default_registry,
    _esc,
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
from .dot import _DotWriter, _edge_attrs, _levels, auto_rankdir, focus_region, to_dot  # noqa: F401
from .events import _CHILD_RUN, states_from_events  # noqa: F401
from .paths import path_of
from .svg import _svg_via_subprocess, to_svg  # noqa: F401
from .text import _markdown_block, _oneline, _summary, text_listing  # noqa: F401
from .theme import (  # noqa: F401 - re-exported
    _CHAIN_RANKS,
    _CHAIN_WIDTH,
    _CONDITION_LIMIT,
    _DEFAULT_BORDER,
    _DEFAULT_FILL,
    _FONT,
    _MAX_SUBFLOW_DEPTH,
    _ON_BACKGROUND,
    _RANKDIRS,
    INSTALL_HINT,
    LEGEND,
    STATE_COLORS,
    STATE_STYLES,
)

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.result import RunResult

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


def mimebundle(bp: Blueprint | Mapping[str, Any], *,
               states: Mapping[str, str] | RunResult | None = None, **kw: Any) -> dict[str, str]:
    """What a notebook shows for a blueprint (``_repr_mimebundle_``); never raises.

    With ``dot``: the drawing as HTML (:func:`flownb.render.fit.embed`: inside a box that scrolls
    rather than shrink text below 11 px, its legend coloured for the light or dark theme) and as
    the bare SVG, plus a one-line summary. Without it (or if drawing fails for any
    reason): the text listing and one line saying how to get drawings, as Markdown and plain
    text, because an exception in a repr hides the object instead of explaining it — plus the
    Mermaid text (``text/vnd.mermaid``), which JupyterLab >= 4.1 draws without graphviz. It is
    not offered beside the SVG: a front-end would pick one of the two by its own ranking.
    """
    if "taken" not in kw and "heat" not in kw:  # a finished run keeps its path on the drawing
        path, ended = path_of(states)
        if path is not None:
            kw.update(taken=path, fade=ended)
    states = states_of(states)
    try:
        svg = to_svg(bp, states=states, **kw)
        if svg is not None:  # the HTML (front-ends prefer it) scrolls, keeps text >= 11 px, is themed
            from .fit import embed

            return {"text/html": embed(svg), "image/svg+xml": svg,
                    "text/plain": _summary(_as_blueprint(bp))}
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

        bundle["text/vnd.mermaid"] = to_mermaid(bp, states=states, taken=kw.get("taken"),
                                                fade=kw.get("fade"), heat=kw.get("heat"))
    except Exception as exc:  # noqa: BLE001 - the listing is enough
        bundle["text/plain"] += f"\n(no Mermaid text either: {type(exc).__name__})"
    return bundle


def _to_mermaid(bp: Blueprint | Mapping[str, Any], **kw: Any) -> str:
    from .mermaid import to_mermaid  # mermaid imports this module

    return to_mermaid(bp, **kw)


# a Blueprint draws itself through these (flownb.core.display): the core does not import this layer
_register_view("blueprint.dot", to_dot)
_register_view("blueprint.mermaid", _to_mermaid)
_register_view("blueprint.mimebundle", mimebundle)
