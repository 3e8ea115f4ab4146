"""A long chain wrapped into rows, like a paragraph, instead of one line wider than the cell.

Why: a chain is drawn left to right (a 20-step chain top to bottom is taller than any screen),
but past ~7 steps one line is wider than a notebook cell, and shrinking it to fit made its text
~7 px (issue 20 #5). Wrapped, each row is at most :data:`ROW_WIDTH_PT` wide (a cell at 100%
zoom, before :func:`flownb.render.fit.embed` lets it shrink a little), rows stack top to bottom,
and the edge from a row's last node to the next row's first one is drawn as a return sweep.

How, in DOT: ``rankdir=TB``; the nodes of a row share a rank (``subgraph wrapK {rank=same}``,
kept in order by the chain's own edges); the rows are stacked by invisible edges between their first
nodes; the real edges that cross rows do not constrain the ranking (``constraint=false``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: the widest a row may be, in points (4/3 CSS px): a JupyterLab cell is ~800-1000 px wide
ROW_WIDTH_PT = 640.0
#: average glyph width of 11 pt Helvetica, and a box's margins plus the gap to the next box
_CHAR_PT, _BOX_PT = 5.5, 22.0 + 25.0
#: average glyph width of an edge label (10 pt)
EDGE_CHAR_PT = 5.2
#: the longest status word a box may show (its width must not change while a run progresses)
_STATUS_CHARS = len("succeeded")


def box_width_pt(lines: Sequence[str]) -> float:
    """A box's estimated width (with the gap after it) from its label lines."""
    return max([len(s) for s in lines] + [_STATUS_CHARS]) * _CHAR_PT + _BOX_PT


def wrap_rows(levels: Mapping[str, int], widths: Mapping[str, float],
              order: Sequence[str], width: float = ROW_WIDTH_PT) -> list[list[str]] | None:
    """Nodes in rows of whole levels, each row at most ``width`` wide (a level wider than that
    gets a row of its own), in level then ``order`` order; None when one row holds them all."""
    by_level: dict[int, list[str]] = {}
    for name in order:
        by_level.setdefault(levels[name], []).append(name)
    rows: list[list[str]] = [[]]
    used = 0.0
    for lv in sorted(by_level):
        need = sum(widths[n] for n in by_level[lv])
        if rows[-1] and used + need > width:
            rows.append([])
            used = 0.0
        rows[-1].extend(by_level[lv])
        used += need
    return rows if len(rows) > 1 else None


def row_subgraphs(rows: Mapping[int, Sequence[str]]) -> list[str]:
    """Each row's node statements in a ``rank=same`` subgraph (the chain's own edges keep them
    in order, left to right)."""
    out: list[str] = []
    for k in sorted(rows):
        out += [f"subgraph wrap{k} {{", '  graph [rank="same"];', *(f"  {ln}" for ln in rows[k]), "}"]
    return out


def row_heads(rows: Sequence[Sequence[str]], gid: Mapping[str, str]) -> list[str]:
    """Invisible edges between the rows' first nodes: the rows stack top to bottom."""
    heads = [gid[row[0]] for row in rows]
    return [f'{a} -> {b} [style="invis"];' for a, b in zip(heads, heads[1:], strict=False)]
