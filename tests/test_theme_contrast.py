"""The drawing's state colours in JupyterLab's light and dark themes (issue 20 #11): the WCAG
contrast ratio, computed, of every state's text on its fill (>= 4.5:1) and of every box against
both backgrounds the transparent drawing shows through (>= 3:1 by its fill or its border), and
``pending`` is no white box glaring in the dark theme; the text drawn straight on the background
(legend, edge labels) is >= 4.5:1 in both themes by a colour per theme."""

from __future__ import annotations

import re

import pytest

from flownb import render
from flownb.core.blueprint import Blueprint
from flownb.notebook.text_colours import BACKGROUNDS as VIEW_BACKGROUNDS
from flownb.notebook.text_colours import STYLE, TEXT_COLOURS
from flownb.render.fit import embed, theme_style
from flownb.render.mermaid import to_mermaid
from flownb.render.theme import _DEFAULT_FILL, BACKGROUNDS, NODE_TEXT, ON_BACKGROUND_TEXT, STATE_COLORS


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


# -- text on the transparent background: legend, edge and subflow labels (issue 20) -------------

@pytest.mark.parametrize("dot_colour", sorted(ON_BACKGROUND_TEXT))
def test_background_text_is_recoloured_per_theme_to_at_least_4_5(dot_colour: str) -> None:
    on_light, on_dark = ON_BACKGROUND_TEXT[dot_colour]
    assert contrast(on_light, BACKGROUNDS["light"]) >= 4.5, on_light
    assert contrast(on_dark, BACKGROUNDS["dark"]) >= 4.5, on_dark
    css = theme_style()
    rule = f'svg.flownb-drawing text[fill="{dot_colour}"]'
    # JupyterLab's theme decides first, the reader's colour scheme elsewhere
    assert f'body[data-jp-theme-light="true"] {rule}{{fill:{on_light}}}' in css
    assert f'body[data-jp-theme-light="false"] {rule}{{fill:{on_dark}}}' in css
    assert "@media (prefers-color-scheme: dark){" in css


def test_no_single_grey_would_do_so_the_theme_must_choose() -> None:
    """Why per-theme colours: no grey is 4.5:1 on white and on JupyterLab's dark background."""
    best = max(min(contrast(f"#{v:02x}{v:02x}{v:02x}", BACKGROUNDS["light"]),
                   contrast(f"#{v:02x}{v:02x}{v:02x}", BACKGROUNDS["dark"])) for v in range(256))
    assert best < 4.5


def test_every_text_colour_on_the_background_is_one_the_theme_recolours() -> None:
    """Every text the DOT draws outside a filled box (graph/legend, edge labels, subflow frame
    titles, "… N nodes", "fallback", "no such node") has its colour in ON_BACKGROUND_TEXT."""
    bp = Blueprint.from_dict({
        "id": "marks", "nodes": [{"id": "a", "uses": "noop", "config": {"fallback": "b"}},
                                 {"id": "b", "uses": "noop"}],
        "edges": [{"source": "a", "target": "b", "action": "go"},
                  {"source": "a", "target": "ghost"}]})
    dot = render.to_dot(bp, states={"a": "succeeded"})
    filled = re.findall(r'fontcolor="(#[0-9a-f]{6})"', dot)
    assert filled and NODE_TEXT in filled
    assert set(filled) - {NODE_TEXT} == set(ON_BACKGROUND_TEXT)  # each one, and no other


def test_drawings_in_a_notebook_carry_the_theme_style() -> None:
    html = embed('<svg width="10pt" viewBox="0 0 10 10"><text font-size="10" fill="#78909c">x</text></svg>')
    assert "class='flownb-drawing'" in html and theme_style() in html


# -- the notebook views' text (run table, status line, details) ---------------------------------

@pytest.mark.parametrize("name", sorted(TEXT_COLOURS))
def test_view_text_colours_are_4_5_on_every_background_of_their_theme(name: str) -> None:
    on_light, on_dark = TEXT_COLOURS[name]
    for light_bg, dark_bg in VIEW_BACKGROUNDS.values():
        assert contrast(on_light, light_bg) >= 4.5, (name, on_light, light_bg)
        assert contrast(on_dark, dark_bg) >= 4.5, (name, on_dark, dark_bg)
    assert f"--flownb-{name}:{on_light};" in STYLE and f"--flownb-{name}:{on_dark};" in STYLE


def test_every_state_of_the_views_uses_a_themed_colour() -> None:
    from flownb.notebook.panels import STATE_CSS

    for state, value in STATE_CSS.items():
        assert value.startswith("var(--flownb-"), (state, value)
        assert value.split("(", 1)[1].split(",", 1)[0][len("--flownb-"):] in TEXT_COLOURS
    assert STYLE.index('body[data-jp-theme-light="false"]') > STYLE.index("prefers-color-scheme")
