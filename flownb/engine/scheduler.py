"""Join bookkeeping for one run: which node visits become ready when a node finishes.

This is the in-memory twin of the Redis commit script (``flownb/distributed/scripts/``,
``COMMIT``); both implement the same algorithm and one contract suite runs against both.

The algorithm (dead-path elimination, as in BPMN inclusive gateways or Airflow trigger rules):

* Every forward incoming edge of a node is a *slot* holding a FIFO of arrivals, each *taken* or
  *dead*. A node with one slot fires on a taken arrival and is *skipped* on a dead one.
* A join fires when every slot has an arrival (one *generation*): ``all`` fires with the taken
  arrivals' sources if there is one, else the join is skipped; ``any`` fires on the first taken
  arrival of a generation and absorbs the rest. A skipped node sends dead arrivals on all its
  edges, so deadness propagates and a join over exclusive branches is always decided.
* Back edges (closing a loop) fire their target as a new visit and never count in a join.
* Edges leaving a loop are recorded and delivered once, when the loop has no work left in it.
* Safety net: when the run has no work left but a join still holds partial arrivals (a branch
  that can no longer arrive), the missing arrivals are taken as dead, so the join still fires or
  is skipped — a run never ends with a join silently waiting.

FIFOs (rather than counters) keep overlapping loop iterations apart.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from ..core.errors import MaxVisitsExceeded
from ..core.graph import CEdge, CNode, Graph


class Item(NamedTuple):
    """One visit of a node to execute; ``sources`` are the nodes whose taken edges fired it."""

    node: str
    visit: int
    sources: tuple[str, ...]


class Outcome(NamedTuple):
    ready: list[Item]
    skipped: list[str]


_NO_SKIPS: list[str] = []  # shared, never mutated: the fast path allocates nothing it need not


class Scheduler:
    """Mutable per-run scheduling state; not thread-safe (the in-process engine owns it)."""

    __slots__ = ("g", "visits", "fifos", "popped", "any_fired", "done", "active", "scc_active",
                 "exit_rec", "scc_pending", "partial")

    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.visits: dict[str, int] = {}
        self.fifos: dict[str, list[deque[bool]]] = {}
        self.popped: dict[str, int] = {}
        self.any_fired: dict[str, set[int]] = {}
        self.done: set[tuple[str, int]] = set()
        self.active = 0
        self.scc_active: dict[int, int] = {}
        self.exit_rec: dict[int, bool] = {}
        self.scc_pending: set[int] = set()
        self.partial: set[str] = set()

    # -- public ----------------------------------------------------------------------------------
    def start(self) -> list[Item]:
        ready: list[Item] = []
        for name in self.g.starts:
            self._fire(self.g.nodes[name], (), ready)
        return ready

    def complete(self, node: str, visit: int, taken: set[int] | frozenset[int]) -> Outcome | None:
        """Record that ``node``'s visit finished taking edges ``taken``; ``None`` = duplicate."""
        key = (node, visit)
        if key in self.done:
            return None
        self.done.add(key)
        cn = self.g.nodes[node]
        # fast path for the common hand-off: one plain edge, taken, into a non-join outside loops
        out = cn.out
        if len(out) == 1 and cn.scc < 0:
            e = out[0]
            if e.idx in taken and not e.back and not e.exit:
                tn = self.g.nodes[e.target]
                if tn.n_fwd_in == 1 and tn.scc < 0:
                    v = self.visits.get(tn.id, 0) + 1
                    if v <= tn.max_visits:
                        self.visits[tn.id] = v
                        return Outcome([Item(tn.id, v, (node,))], _NO_SKIPS)
        ready: list[Item] = []
        skipped: list[str] = []
        work: deque[tuple[CEdge, bool]] = deque()
        self.active -= 1
        if cn.scc >= 0:
            self.scc_active[cn.scc] -= 1
        self._resolve_out(cn, taken, work, ready)
        self._drain(work, ready, skipped)
        return Outcome(ready, skipped)

    @property
    def finished(self) -> bool:
        return self.active == 0

    # -- internals -------------------------------------------------------------------------------
    def _fire(self, cn: CNode, sources: tuple[str, ...], ready: list[Item]) -> None:
        v = self.visits.get(cn.id, 0) + 1
        if v > cn.max_visits:
            raise MaxVisitsExceeded(
                f"reached {v} visits, more than its max_visits={cn.max_visits}; raise "
                "config.max_visits or make the loop's exit condition reachable", node_id=cn.id)
        self.visits[cn.id] = v
        self.active += 1
        if cn.scc >= 0:
            self.scc_active[cn.scc] = self.scc_active.get(cn.scc, 0) + 1
        ready.append(Item(cn.id, v, sources))

    def _resolve_out(self, cn: CNode, taken: set[int] | frozenset[int],
                     work: deque[tuple[CEdge, bool]], ready: list[Item]) -> None:
        for e in cn.out:
            t = e.idx in taken
            if e.back:
                if t:
                    self._fire(self.g.nodes[e.target], (e.source,), ready)
            elif e.exit:
                self.exit_rec[e.idx] = self.exit_rec.get(e.idx, False) or t
                self.scc_pending.add(cn.scc)
            else:
                work.append((e, t))

    def _drain(self, work: deque[tuple[CEdge, bool]], ready: list[Item], skipped: list[str]) -> None:
        nodes = self.g.nodes
        while True:
            while work:
                e, t = work.popleft()
                self._deliver(nodes[e.target], e, t, work, ready, skipped)
            for s in sorted(self.scc_pending):
                # a loop is quiet when nothing in it runs and no join in it awaits an arrival
                if self.scc_active.get(s, 0) == 0 and not any(
                        m in self.partial for m in self.g.scc_nodes[s]):
                    self.scc_pending.discard(s)
                    for idx in self.g.scc_exits[s]:
                        if idx in self.exit_rec:
                            work.append((self.g.edges[idx], self.exit_rec.pop(idx)))
            if work:
                continue
            if self.active == 0 and self.partial:
                # settle one join at a time, the most upstream first: settling it may start work
                # that later feeds the joins below it
                name = min(self.partial, key=lambda n: (nodes[n].topo, n))
                for q in self.fifos[name]:
                    if not q:
                        q.append(False)
                self._pop_ready(nodes[name], work, ready, skipped)
                continue
            return

    def _deliver(self, tn: CNode, e: CEdge, t: bool, work: deque[tuple[CEdge, bool]],
                 ready: list[Item], skipped: list[str]) -> None:
        if tn.n_fwd_in == 1:
            if t:
                self._fire(tn, (e.source,), ready)
            else:
                self._skip(tn, work, ready, skipped)
            return
        fifos = self.fifos.get(tn.id)
        if fifos is None:
            fifos = self.fifos[tn.id] = [deque() for _ in range(tn.n_fwd_in)]
        q = fifos[e.pos]
        if t and tn.join == "any":
            gen = self.popped.get(tn.id, 0) + len(q)
            fired = self.any_fired.setdefault(tn.id, set())
            if gen not in fired:
                fired.add(gen)
                self._fire(tn, (e.source,), ready)
        q.append(t)
        self.partial.add(tn.id)
        self._pop_ready(tn, work, ready, skipped)

    def _pop_ready(self, tn: CNode, work: deque[tuple[CEdge, bool]], ready: list[Item],
                   skipped: list[str]) -> None:
        fifos = self.fifos[tn.id]
        while all(fifos):
            heads = [q.popleft() for q in fifos]
            gen = self.popped.get(tn.id, 0)
            self.popped[tn.id] = gen + 1
            if tn.join == "all":
                if any(heads):
                    self._fire(tn, tuple(e.source for e, h in zip(tn.fwd_in, heads) if h), ready)
                else:
                    self._skip(tn, work, ready, skipped)
            else:
                fired = self.any_fired.get(tn.id)
                if fired is not None and gen in fired:
                    fired.discard(gen)
                else:
                    self._skip(tn, work, ready, skipped)
        if not any(fifos):
            self.partial.discard(tn.id)

    def _skip(self, tn: CNode, work: deque[tuple[CEdge, bool]], ready: list[Item],
              skipped: list[str]) -> None:
        skipped.append(tn.id)
        self._resolve_out(tn, frozenset(), work, ready)
