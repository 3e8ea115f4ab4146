"""One table style for every table a notebook shows: the run table's (flownb.notebook.panels).

Why one: the run table, ``RunResult``'s HTML, the history timeline and the batch view's latency
table each had their own (or none: JupyterLab then right-aligns rendered cells, and unstyled
headers run together as "runs failed"). Here: text left-aligned, numbers right-aligned, the same
padding, zebra rows and theme colours, headers that never wrap, durations that scale
("1.61 s", not "1614.6 ms").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .panels import _BORDER, _CELL, _FONT, _HEAD_BG, _ZEBRA, _ZEBRA2, _fmt_duration

__all__ = ["duration", "styled_table"]


def duration(seconds: float) -> str:
    """A duration whose unit scales: ``0.42 ms``, ``310 ms``, ``1.61 s``, ``2.5 min``."""
    return _fmt_duration(seconds) or "0 s"


def styled_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                 numeric: Collection[int] = (), cls: str = "") -> str:
    """An HTML table; ``rows`` hold already-escaped cell HTML; columns in ``numeric`` (by
    index) are right-aligned, the others left-aligned."""
    def style(i: int) -> str:
        return f"{_CELL};text-align:{'right' if i in numeric else 'left'}"

    head = "".join(f"<th style='{style(i)};font-weight:600;background:{_HEAD_BG};"
                   f"border-bottom:1px solid {_BORDER}'>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        f"<tr style='background:{_ZEBRA if k % 2 == 0 else _ZEBRA2}'>"
        + "".join(f"<td style='{style(i)}'>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for k, row in enumerate(rows))
    return (f"<div style='display:inline-block;max-width:100%;overflow:auto;border:1px solid {_BORDER};"
            f"border-radius:3px;margin:0.4em 0;font-size:{_FONT}'>"
            f"<table class='{cls}' style='border-collapse:separate;border-spacing:0;margin:0'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
