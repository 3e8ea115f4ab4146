"""A Graphviz SVG made fit for a notebook page: readable text in both themes, never shrunk
below :data:`MIN_TEXT_PX`, scrolling inside the output instead of spilling out of the cell.

Why this exists (issue 20 #5 and the legend's contrast):

* A drawing scaled down to the cell's width shrinks its text with it: a 12-node chain drawn left
  to right came out at ~7 px. :func:`embed` lets the SVG shrink to fit only as far as its
  smallest text stays >= 11 CSS px; past that the box around it scrolls (sideways for a long
  chain, down for a tall graph), so the whole graph is there and legible at 100% zoom.
* Text drawn straight on the transparent background (legend, edge and cluster labels, the
  "fallback" and "no such node" marks) cannot be one colour readable at 4.5:1 on white *and* on
  JupyterLab's near-black: no grey does both. The DOT keeps a mid-tone colour (the fallback for
  viewers without CSS); :func:`theme_style` adds a ``<style>`` that recolours exactly those
  texts per theme — JupyterLab's ``body[data-jp-theme-light]`` first, the reader's
  ``prefers-color-scheme`` elsewhere (a static HTML export, GitHub's dark mode).
"""

from __future__ import annotations

import math
import re

from .theme import ON_BACKGROUND_TEXT

__all__ = ["MIN_TEXT_PX", "PT_PX", "embed", "min_width_pt", "theme_style"]

#: the smallest text a drawing may show, in CSS px at 100% zoom
MIN_TEXT_PX = 11.0
#: CSS px per point: Graphviz sizes the SVG in points and its fonts in the same user units
PT_PX = 4 / 3

_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_WIDTH = re.compile(r'\bwidth="([0-9.]+)pt"')
_VIEWBOX = re.compile(r'\bviewBox="[-0-9.]+ [-0-9.]+ ([0-9.]+) [0-9.]+"')
_FONT_SIZE = re.compile(r'<text\b[^>]*\bfont-size="([0-9.]+)"')
_SCALE = re.compile(r'<g id="graph0" class="graph" transform="scale\(([0-9.]+)')
_CLASS = "flownb-drawing"


def theme_style() -> str:
    """A ``<style>`` recolouring the background texts per theme (selectors scoped to flownb's
    drawings, so nothing else on the page changes)."""
    def rules(prefix: str, dark: bool) -> str:
        return "".join(f'{prefix}svg.{_CLASS} text[fill="{dot}"]{{fill:{pair[dark]}}}'
                       for dot, pair in ON_BACKGROUND_TEXT.items())
    return ("<style>" + rules("", False)
            + "@media (prefers-color-scheme: dark){" + rules("", True) + "}"
            + rules('body[data-jp-theme-light="true"] ', False)
            + rules('body[data-jp-theme-light="false"] ', True) + "</style>")


def min_width_pt(svg: str) -> float | None:
    """The narrowest the drawing may be shown (in pt) with its smallest text >= 11 px, or None
    when the SVG says nothing about its size or fonts."""
    width = _WIDTH.search(svg)
    sizes = [float(s) for s in _FONT_SIZE.findall(svg)]
    if width is None or not sizes:
        return None
    w = float(width.group(1))
    box = _VIEWBOX.search(svg)
    per_unit = w / float(box.group(1)) if box and float(box.group(1)) else 1.0  # pt per user unit
    scale = _SCALE.search(svg)
    inner = float(scale.group(1)) if scale else 1.0  # Graphviz's own size= scaling
    smallest_px = min(sizes) * inner * per_unit * PT_PX
    return w * MIN_TEXT_PX / smallest_px


def embed(svg: str, *, max_height: str | None = None, cls: str = "flownb-graph") -> str:
    """``svg`` (Graphviz's output) as HTML for a notebook: in a box that scrolls, shrinking to
    the cell's width no further than :func:`min_width_pt`, with :func:`theme_style`."""
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg  # the XML prolog/doctype do not belong in HTML
    floor = min_width_pt(svg)
    style = "max-width:100%;height:auto" + (f";min-width:{math.ceil(floor)}pt" if floor else "")
    svg = _SVG_OPEN.sub(lambda m: m.group(0)[:-1] + f" class='{_CLASS}' style='{style}'>"
                        + theme_style(), svg, count=1)
    height = f"max-height:{max_height};" if max_height else ""
    return (f"<div class='{cls}' style='max-width:100%;{height}overflow:auto;"
            f"background:transparent'>{svg}</div>")
