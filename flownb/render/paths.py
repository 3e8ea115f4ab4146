"""A run's path and a batch's heat map, laid over a drawing (DOT and Mermaid alike).

Why an overlay rather than new drawings: the path of a finished run and the heat map of a batch
are the same blueprint drawing with different emphasis, and the layout must not move when the
emphasis changes (a live view redraws the same graph as runs advance). So :func:`to_dot` and
:func:`to_mermaid` draw the graph as always and ask an :class:`Overlay` how to restyle each
top-level node and edge. The figures come from :mod:`flownb.core.heat`.

Encoding (every mark is also words, for colour blindness and print):

* path — a taken edge is thick and teal (``×3`` when a loop took it three times); once the run
  ended, an edge it did not take is thin and faint (its label stays readable).
* heat — a node's fill warms with the share of runs that passed through it, and its label says
  ``37/50 ran · 2 failed · 3 running``; a red border means failures there, a blue one runs in it
  now. An edge's width and label give the share of runs that took it; an edge no run took is faint.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..core.heat import Heat
from ..core.settle import ENDED
from .common import _lines, _q

__all__ = ["FADED", "FADED_ALPHA", "HEAT_FILLS", "HEAT_LEGEND", "PATH_LEGEND", "TAKEN", "Overlay",
           "heat_fill", "path_of"]

#: a taken edge (and a used edge of a heat map): readable on white and on near-black (>= 3:1)
TAKEN = "#00897b"
#: an edge not taken: the usual edge grey at low opacity, so it recedes on both backgrounds
FADED, FADED_ALPHA = "#78909c", 0.35
#: heat fills, cold to hot: share of runs that passed through a node (0, <25%, <50%, <75%, <100%,
#: all); :data:`flownb.render.theme.NODE_TEXT` reads on each at >= 4.5:1, and none is a white box
#: glaring in the dark theme (cold is the blue-grey of "pending")
HEAT_FILLS = ("#cfd8dc", "#ffd180", "#ffc05c", "#ffab40", "#ff9100", "#ff6d00")
#: node borders of a heat map: failures there, runs in it now, neither
HEAT_FAILED, HEAT_RUNNING, HEAT_BORDER = "#e53935", "#1e88e5", "#546e7a"
PATH_LEGEND = " · thick teal arrow: taken (×n: times) · faint arrow: not taken"
HEAT_LEGEND = ("heat map of {runs} runs: warmer fill = more runs passed through · red border: "
               "failures · blue border: running now · arrow width and n/N: runs that took it")


def heat_fill(share: float) -> str:
    """The fill of a node that ``share`` (0..1) of the runs passed through."""
    if share <= 0:
        return HEAT_FILLS[0]
    if share >= 1:
        return HEAT_FILLS[-1]
    return HEAT_FILLS[1 + min(3, int(share * 4))]


def _faded_hex() -> str:
    return FADED + f"{round(FADED_ALPHA * 255):02x}"


def path_of(states: Any) -> tuple[Mapping[int, int] | None, bool]:
    """``(taken, fade)`` a :class:`~flownb.core.result.RunResult` passed as ``states=`` implies:
    its taken edges, faded others once it ended; ``(None, False)`` for anything else."""
    taken = getattr(states, "taken_edges", None)
    if not isinstance(taken, Mapping):
        return None, False
    return taken, getattr(states, "status", "") in ENDED


class Overlay:
    """How the top-level nodes and edges of one drawing are restyled (nothing when inactive)."""

    def __init__(self, *, taken: Mapping[int, int] | Collection[int] | None = None,
                 fade: bool = True, heat: Heat | None = None) -> None:
        if taken is not None and not isinstance(taken, Mapping):
            taken = dict.fromkeys(taken, 1)
        self.taken: Mapping[int, int] | None = taken
        self.fade = fade
        self.heat = heat

    @property
    def active(self) -> bool:
        return self.taken is not None or self.heat is not None

    def legend(self) -> str:
        if self.heat is not None:
            return " · " + HEAT_LEGEND.format(runs=self.heat.runs)
        return PATH_LEGEND if self.taken is not None else ""

    # -- nodes ----------------------------------------------------------------------------------
    def node_line(self, node_id: str) -> str | None:
        """The heat map's count line of a node (None without a heat map)."""
        if self.heat is None:
            return None
        h = self.heat.node(node_id)
        words = [f"{h.passed}/{self.heat.runs} ran"]
        if h.failed:
            words.append(f"{h.failed} failed")
        if h.running:
            words.append(f"{h.running} running")
        return " · ".join(words)

    def node_colours(self, node_id: str) -> tuple[str, str, str]:
        """(fill, border, penwidth) of a node in the heat map."""
        assert self.heat is not None
        h = self.heat.node(node_id)
        border = HEAT_FAILED if h.failed else HEAT_RUNNING if h.running else HEAT_BORDER
        return heat_fill(h.share), border, "2.5" if h.failed or h.running else "1"

    def node_dot(self, node_id: str, attrs: dict[str, str], label: list[str]) -> None:
        """Restyle a node's DOT attributes in place (``label``: its lines without a status)."""
        line = self.node_line(node_id)
        if line is None:
            return
        fill, border, width = self.node_colours(node_id)
        attrs["label"] = _lines(*label, line)
        attrs["tooltip"] = _lines(node_id, line)
        attrs.update(fillcolor=_q(fill), color=_q(border), style='"rounded,filled"')
        if width != "1":
            attrs["penwidth"] = _q(width)

    # -- edges ----------------------------------------------------------------------------------
    def edge_words(self, idx: int) -> list[str]:
        """Words added to an edge's label: ``×3`` (times a run took it) or ``37/50``."""
        if self.heat is not None:
            e = self.heat.edge(idx)
            return [f"{e.runs}/{self.heat.runs} ({e.share:.0%})"] if self.heat.runs else []
        n = (self.taken or {}).get(idx, 0)
        return [f"×{n}"] if n > 1 else []

    def _weight(self, idx: int) -> float | None:
        """Stroke width of an emphasised edge, 0 for a faded one, None to leave it alone."""
        if self.heat is not None:
            e = self.heat.edge(idx)
            return round(1.2 + 4.0 * e.share, 1) if e.runs else 0.0
        if self.taken is None:
            return None
        if self.taken.get(idx, 0):
            return 2.5
        return 0.0 if self.fade else None

    def edge_dot(self, idx: int, attrs: dict[str, str], label: list[str]) -> None:
        """Restyle an edge's DOT attributes in place (``label``: its action/condition lines)."""
        words = self.edge_words(idx)
        if words:
            attrs["label"] = _lines(*label, *words)
        w = self._weight(idx)
        if w is None:
            return
        if w:
            attrs.update(color=_q(TAKEN), penwidth=_q(f"{w:g}"))
            attrs["tooltip"] = attrs.get("tooltip", '""')[:-1] + "\\n" + (
                f"taken by {words[0]}" if self.heat is not None and words else "taken") + '"'
        else:
            attrs.update(color=_q(_faded_hex()), penwidth='"0.8"', arrowsize='"0.5"')
            attrs["tooltip"] = attrs.get("tooltip", '""')[:-1] + "\\nnot taken" + '"'

    def link_style(self, idx: int) -> str | None:
        """A Mermaid ``linkStyle`` body for an edge, or None to leave it alone."""
        w = self._weight(idx)
        if w is None:
            return None
        if w:
            return f"stroke:{TAKEN},stroke-width:{w:g}px"
        return f"stroke:{FADED},stroke-opacity:{FADED_ALPHA},stroke-width:1px"

    def node_class(self, node_id: str) -> tuple[str, str] | None:
        """(Mermaid class name, classDef body) of a node in the heat map."""
        if self.heat is None:
            return None
        fill, border, width = self.node_colours(node_id)
        name = f"heat{HEAT_FILLS.index(fill)}" + ("f" if border == HEAT_FAILED else
                                                  "r" if border == HEAT_RUNNING else "")
        return name, f"fill:{fill},stroke:{border},stroke-width:{width}px,color:#212121"
