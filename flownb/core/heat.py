"""Where runs go on a graph: the edges one run took, and the heat map of many runs.

Why this lives in the core, as plain functions: the same figures are drawn by three front-ends
(the static SVG, the Mermaid text and the notebook's live views) and fed by two executors (the
in-process engine counts the edges it takes; a Redis run's history stream records them with
every commit). Keeping the arithmetic here, free of any executor or drawing, means one rule for
"which edges did this run take" and "what share of the batch took this edge", tested alone.

Edges are addressed by their index in the compiled graph (:attr:`flownb.core.graph.CEdge.idx`,
the order of ``blueprint.edges``): the scheduler and the history already speak in those indices,
and two edges between the same nodes (different actions) stay apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EdgeHeat", "Heat", "NodeHeat", "RunTrace", "add_taken", "batch_heat", "edge_counts",
           "taken_of"]

#: node statuses that mean "a run passed through this node"
_PASSED = frozenset({"succeeded", "replaced"})
_ACTIVE = frozenset({"running", "retrying"})


def add_taken(counts: dict[int, int], taken: Iterable[Any]) -> None:
    """Count one commit's taken edges (indices, as ints or digit strings) into ``counts``;
    anything that is not an edge index is ignored (events from other flownb versions)."""
    for i in taken:
        try:
            idx = int(i)
        except (TypeError, ValueError):
            continue
        if idx >= 0:
            counts[idx] = counts.get(idx, 0) + 1


def edge_counts(steps: Iterable[Any]) -> dict[int, int]:
    """Edge index -> times taken, from committed steps (objects with a ``taken`` list, as
    :class:`flownb.engine.history.Step`), so a loop's back edge counts each lap."""
    counts: dict[int, int] = {}
    for step in steps:
        add_taken(counts, getattr(step, "taken", None) or ())
    return counts


def taken_of(data: Mapping[str, Any] | None) -> list[int]:
    """The taken edge indices a ``node_succeeded`` event carries (``data["taken"]``), or []."""
    raw = (data or {}).get("taken")
    if not isinstance(raw, (list, tuple)):
        return []
    out: dict[int, int] = {}
    add_taken(out, raw)
    return sorted(out)


@dataclass(frozen=True)
class RunTrace:
    """What one run contributes to a heat map: its node statuses and the edges it took."""

    states: Mapping[str, str]
    taken: Iterable[int] = ()


@dataclass(frozen=True)
class NodeHeat:
    """One node over the runs of a batch: how many passed through it, failed there, are in it
    now, skipped it; ``share`` is ``passed / runs`` (0 when no run started)."""

    node_id: str
    passed: int = 0
    failed: int = 0
    running: int = 0
    skipped: int = 0
    share: float = 0.0


@dataclass(frozen=True)
class EdgeHeat:
    """One edge (by index) over the runs of a batch: how many runs took it at least once."""

    idx: int
    runs: int = 0
    share: float = 0.0


@dataclass(frozen=True)
class Heat:
    """A batch's heat map: ``runs`` started, per-node and per-edge figures (only nodes and edges
    some run reached are listed; a drawing shows the others as cold)."""

    runs: int = 0
    nodes: Mapping[str, NodeHeat] = field(default_factory=dict)
    edges: Mapping[int, EdgeHeat] = field(default_factory=dict)

    def node(self, node_id: str) -> NodeHeat:
        return self.nodes.get(node_id) or NodeHeat(node_id)

    def edge(self, idx: int) -> EdgeHeat:
        return self.edges.get(idx) or EdgeHeat(idx)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (the widget's model carries it): ``{"runs", "nodes": {id: {...}},
        "edges": {"<idx>": {...}}}``."""
        return {"runs": self.runs,
                "nodes": {k: dict(v.__dict__) for k, v in self.nodes.items()},
                "edges": {str(k): dict(v.__dict__) for k, v in self.edges.items()}}


def batch_heat(runs: Iterable[RunTrace]) -> Heat:
    """Fold many runs into one :class:`Heat`: per node, the runs that passed through it
    (succeeded, or failed and were rescued by a fallback), failed in it, are in it now and
    skipped it; per edge, the runs that took it at least once (a loop's lap count does not
    inflate the share). Subflow children (``"sub/child"`` keys) are counted like any node."""
    n = 0
    nodes: dict[str, list[int]] = {}  # id -> [passed, failed, running, skipped]
    edges: dict[int, int] = {}
    for run in runs:
        n += 1
        for node, status in run.states.items():
            slot = (0 if status in _PASSED else 1 if status == "failed"
                    else 2 if status in _ACTIVE else 3 if status == "skipped" else -1)
            if slot >= 0:
                nodes.setdefault(node, [0, 0, 0, 0])[slot] += 1
        for idx in set(run.taken):
            edges[idx] = edges.get(idx, 0) + 1
    return Heat(
        runs=n,
        nodes={k: NodeHeat(k, v[0], v[1], v[2], v[3], v[0] / n if n else 0.0)
               for k, v in nodes.items()},
        edges={i: EdgeHeat(i, c, c / n if n else 0.0) for i, c in sorted(edges.items())})
