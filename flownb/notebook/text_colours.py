"""Text colours of the notebook views, chosen per theme so every text is >= 4.5:1 (WCAG).

Why not JupyterLab's variables alone: ``--jp-success-color1`` is 4.1:1 on white and 3.6:1 on the
dark theme's zebra rows (``--jp-layout-color2``), ``--jp-ui-font-color2`` 4.4:1 on the light
zebra rows, ``--jp-warn-color1`` 2.3:1 — measured by the browser test in both themes. No single
colour serves both themes, so each state gets a light-theme and a dark-theme colour, published as
``--flownb-<name>`` custom properties by :data:`STYLE` (JupyterLab's ``data-jp-theme-light`` first,
the reader's ``prefers-color-scheme`` elsewhere). Where :data:`STYLE` is not on the page the
JupyterLab variable used before applies (:func:`css`).
"""

from __future__ import annotations

__all__ = ["STYLE", "TEXT_COLOURS", "css"]

#: name -> (light theme, dark theme): >= 4.5:1 on JupyterLab's white/#eeeeee and #111111/#424242
#: (tests/test_theme_contrast.py)
TEXT_COLOURS: dict[str, tuple[str, str]] = {
    "running": ("#1565c0", "#90caf9"),
    "retrying": ("#a04000", "#ffb74d"),
    "succeeded": ("#256b29", "#81c784"),
    "failed": ("#c62828", "#ef9a9a"),
    "replaced": ("#ad1457", "#f8bbd0"),
    "waiting": ("#7a5c00", "#fff176"),
    "muted": ("#616161", "#bdbdbd"),  # pending, skipped, cancelled, secondary text
}
#: the layout backgrounds text sits on: (light theme, dark theme) — page, zebra row / header
BACKGROUNDS: dict[str, tuple[str, str]] = {"page": ("#ffffff", "#111111"),
                                           "zebra": ("#eeeeee", "#424242")}


def _vars(dark: bool) -> str:
    return "".join(f"--flownb-{name}:{pair[dark]};" for name, pair in TEXT_COLOURS.items())


#: defines the ``--flownb-*`` colours for the page's theme (one copy on the page is enough)
STYLE = ("<style>body{" + _vars(False) + "}"
         "@media (prefers-color-scheme: dark){body{" + _vars(True) + "}}"
         'body[data-jp-theme-light="true"]{' + _vars(False) + "}"
         'body[data-jp-theme-light="false"]{' + _vars(True) + "}</style>")


def css(name: str, fallback: str) -> str:
    """The CSS colour ``name``, falling back to ``fallback`` when :data:`STYLE` is absent."""
    return f"var(--flownb-{name}, {fallback})"
