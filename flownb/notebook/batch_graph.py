"""The batch view's graph: the blueprint drawn as a heat map of the batch's runs.

Why in the batch view: a person evaluating an agent over a dataset asks *where the runs go* —
which branch most rows take, where failures pile up, which node the running rows sit in. The
counts are :class:`~flownb.core.heat.Heat` (folded below this layer by
:mod:`flownb.engine.batch_heat`, the same on both executors); this module only draws them
(:mod:`flownb.render.paths` says how) and writes the caption that explains the encoding.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.heat import Heat

__all__ = ["heat_caption", "heat_html"]


def heat_caption(heat: Heat) -> str:
    """One line under the drawing saying what its marks mean (text, not only colour)."""
    from ..render.paths import HEAT_LEGEND

    return (f"<div class='flownb-heat-legend' style='font-size:12px'>"
            f"{html.escape(HEAT_LEGEND.format(runs=heat.runs))}</div>")


def heat_html(bp: Blueprint, heat: Heat) -> str:
    """The heat map as inline SVG (scrolls past 60% of the window), or a text listing with the
    counts when Graphviz's ``dot`` is missing; never raises."""
    from .. import render
    from ..render.fit import embed
    from ..render.paths import Overlay

    try:
        svg = render.to_svg(bp, heat=heat, legend=False)
        hint = render.INSTALL_HINT
    except Exception as exc:  # noqa: BLE001 - a drawing problem must not stop the updates
        svg, hint = None, f"(no drawing: {type(exc).__name__}: {exc})"
    if svg is not None:
        # the widget's own embedding: text >= 11 px (the box scrolls), labels coloured per theme
        return f"{embed(svg, max_height='60vh', cls='flownb-heat')}{heat_caption(heat)}"
    overlay = Overlay(heat=heat)
    lines = [f"{n.id}  {overlay.node_line(n.id)}" for n in bp.nodes]
    return (f"<pre class='flownb-heat'>{html.escape(chr(10).join(lines))}\n{html.escape(hint)}</pre>"
            f"{heat_caption(heat)}")
