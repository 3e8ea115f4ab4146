"""The drawing's colours, marks and fixed texts, shared by DOT, Mermaid and the live widget.

Why one module: the light/dark theme choices (light fills with dark text, mid-tone lines on the
transparent background) must be the same in every drawing, so they live in one place.
"""

from __future__ import annotations

#: :class:`flownb.core.result.NodeStats` plus ``cancelled`` (a node cut short by a cancelled or failed
#: run) and ``replaced`` (a node that failed and whose ``config.fallback`` took over).
#: (fill, border). The drawing's background is transparent, so one palette serves both themes:
#: every fill carries :data:`NODE_TEXT` at >= 4.5:1, and every box stands out of both
#: :data:`BACKGROUNDS` at >= 3:1 by its fill or its border (tests/test_theme_contrast.py).
#: ``pending`` is blue-grey, not white: a graph of white boxes glared in JupyterLab's dark theme.
STATE_COLORS: dict[str, tuple[str, str]] = {
    "pending": ("#cfd8dc", "#78909c"),
    "running": ("#bbdefb", "#1e88e5"),
    "retrying": ("#ffe0b2", "#ef6c00"),
    "succeeded": ("#c8e6c9", "#43a047"),
    "failed": ("#ffcdd2", "#e53935"),
    "skipped": ("#eeeeee", "#8d8d8d"),
    "cancelled": ("#e0e0e0", "#616161"),
    "replaced": ("#f8bbd0", "#ad1457"),
    "waiting": ("#fff9c4", "#b8860b"),  # parked for a person's answer (flownb.engine.waiting)
    "differs": ("#ffe0b2", "#ef6c00"),  # a run diff: output differs between runs (core.rundiff)
}
#: the text inside a node box (drawn on its opaque fill, so the same in light and dark themes)
NODE_TEXT = "#212121"
#: what shows through the transparent drawing: JupyterLab 4's ``--jp-layout-color0`` in its
#: light and dark themes (the backgrounds the colours above are checked against)
BACKGROUNDS: dict[str, str] = {"light": "#ffffff", "dark": "#111111"}
#: extra Graphviz ``style`` words per status (a skipped node did not run: its border is dashed)
STATE_STYLES: dict[str, str] = {"skipped": "dashed"}

#: the one line shown instead of a drawing when ``dot`` is missing
INSTALL_HINT = ("(install graphviz for a drawing: apt-get install graphviz / brew install graphviz"
                " / conda install graphviz)")

#: what the drawing's marks mean (drawn under the graph; the widget shows it as a caption)
LEGEND = "bold border: entry node · dashed box: skipped · dashed arrow: loop back · dotted arrow: fallback"
#: added to the legend of a drawing with a subflow: a subflow has its own shape (never dashed,
#: which says "skipped"), and its blueprint is drawn in a frame its solid grey arrow points at
LEGEND_SUBFLOW = " · tabbed box: subflow (its blueprint in the frame)"
#: Graphviz shape of a subflow node (a box with two tabs, the usual "component" mark)
SUBFLOW_SHAPE = "component"

_RANKDIRS = frozenset({"TB", "LR", "BT", "RL"})
_FONT = "Helvetica,Arial,sans-serif"
#: a drawing with no run states: the pending fill (a white box glares in the dark theme too)
_DEFAULT_FILL, _DEFAULT_BORDER = STATE_COLORS["pending"][0], "#546e7a"
#: lines and text drawn on the (transparent) background: readable on white and on near-black
_ON_BACKGROUND = "#78909c"
#: text drawn on the transparent background, per DOT colour: (light theme, dark theme). No grey is
#: 4.5:1 on white and on near-black both, so the DOT keeps the mid-tone (a viewer without CSS)
#: and :func:`flownb.render.fit.theme_style` recolours these per theme (tests/test_theme_contrast.py)
ON_BACKGROUND_TEXT: dict[str, tuple[str, str]] = {
    _ON_BACKGROUND: ("#546e7a", "#90a4ae"),  # legend, edge and subflow labels, "… N nodes"
    "#8d6e63": ("#6d4c41", "#a1887f"),  # the "fallback" edge label
    "#e53935": ("#c62828", "#ef9a9a"),  # an edge endpoint that is no node
}
#: a chain at least this many ranks deep, at most _CHAIN_WIDTH wide, is drawn left to right
_CHAIN_RANKS, _CHAIN_WIDTH = 6, 2
_CONDITION_LIMIT = 40
_MAX_SUBFLOW_DEPTH = 4
