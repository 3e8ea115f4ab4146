"""The drawing's state colours in JupyterLab's light and dark themes (issue 20 #11): the WCAG
contrast ratio, computed, of every state's text on its fill (>= 4.5:1) and of every box against
both backgrounds the transparent drawing shows through (>= 3:1 by its fill or its border), and
``pending`` is no white box glaring in the dark theme."""

from __future__ import annotations

import pytest

from flownb import render
from flownb.core.blueprint import Blueprint
from flownb.render.mermaid import to_mermaid
from flownb.render.theme import _DEFAULT_FILL, BACKGROUNDS, NODE_TEXT, STATE_COLORS


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``."""
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_formula_gives_the_known_ratios() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near-miss
    assert contrast("#123456", "#123456") == 1.0


@pytest.mark.parametrize("theme", sorted(BACKGROUNDS))
@pytest.mark.parametrize("state", sorted(STATE_COLORS))
def test_every_state_is_readable_and_visible_in_both_themes(state: str, theme: str) -> None:
    fill, border = STATE_COLORS[state]
    background = BACKGROUNDS[theme]
    # the node's text (its id, type and status) sits on the opaque fill
    assert contrast(NODE_TEXT, fill) >= 4.5, (state, fill)
    # the box stands out of the page: by its fill or by its border (WCAG 1.4.11, 3:1)
    assert max(contrast(fill, background), contrast(border, background)) >= 3.0, (state, theme)


def test_pending_is_no_white_box_in_the_dark_theme() -> None:
    dark, light = BACKGROUNDS["dark"], BACKGROUNDS["light"]
    assert _luminance(dark) < 0.02 and light == "#ffffff"  # JupyterLab's two backgrounds
    for fill in (STATE_COLORS["pending"][0], _DEFAULT_FILL):  # a run's pending, a plain drawing
        assert contrast(fill, "#ffffff") >= 1.4, fill  # visibly not white
        assert contrast(NODE_TEXT, fill) >= 4.5
    # the brightest of the fills a run starts with is no brighter than the finished ones
    assert _luminance(STATE_COLORS["pending"][0]) <= _luminance(STATE_COLORS["succeeded"][0]) + 0.1


def test_the_renderers_use_these_colours() -> None:
    bp = render_bp()
    dot = render.to_dot(bp, states={"a": "pending", "b": "succeeded"})
    assert f'fontcolor="{NODE_TEXT}"' in dot  # the node default: not graphviz's black
    fill, border = STATE_COLORS["pending"]
    assert f'fillcolor="{fill}"' in dot and f'color="{border}"' in dot
    assert "#ffffff" not in dot.lower()
    assert f"classDef pending fill:{fill},stroke:{border},color:{NODE_TEXT}" in to_mermaid(
        bp, states={"a": "pending"})
    assert "#ffffff" not in render.to_dot(bp).lower()  # no run: no white boxes either


def render_bp() -> Blueprint:
    return Blueprint.from_dict({"id": "contrast", "nodes": [{"id": "a", "uses": "noop"},
                                                            {"id": "b", "uses": "noop"}],
                                "edges": [{"source": "a", "target": "b"}]})
