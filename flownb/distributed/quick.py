"""Which sync node visits a worker runs on its loop thread: costs learnt from earlier visits.

Why (see :meth:`~.execute.NodeRunner._attempt`): a thread hop costs the loop about as much as a
no-op node, so a node known to be quick runs on the loop itself. Alone in flight, a type's
moving average decides (nothing else waits behind it); with other visits in flight only a very
quick one may, and its cost is learnt per type *and params*: one type's visits may differ by
their params (a quick start node, then sleepy branches of the same type), and a slow visit on
the loop would hold up every other visit of the worker for its whole length.
"""

from __future__ import annotations

from ..core.graph import CNode


class QuickNodes:
    """Moving averages of visit seconds, per node type and per (type, params)."""

    def __init__(self) -> None:
        self.by_type: dict[str, float] = {}
        self.by_node: dict[tuple[str, str], float] = {}
        self._keys: dict[int, tuple[str, str]] = {}  # id(CNode) -> its by_node key

    def learn(self, cn: CNode, seconds: float) -> None:
        prev = self.by_type.get(cn.uses)
        self.by_type[cn.uses] = seconds if prev is None else 0.8 * prev + 0.2 * seconds
        key = self._key(cn)
        prev = self.by_node.get(key)
        self.by_node[key] = seconds if prev is None else 0.8 * prev + 0.2 * seconds

    def quick(self, cn: CNode, alone: bool, alone_max_s: float, busy_max_s: float) -> bool:
        """Whether a visit of ``cn`` may run on the loop (``alone``: no other visit in flight);
        a node never seen is not quick."""
        if alone:
            return self.by_type.get(cn.uses, 1.0) < alone_max_s
        return self.by_node.get(self._key(cn), 1.0) < min(alone_max_s, busy_max_s)

    def _key(self, cn: CNode) -> tuple[str, str]:
        key = self._keys.get(id(cn))
        if key is None:  # once per compiled node (graphs stay cached in the worker)
            if len(self._keys) > 10000:
                self._keys.clear()
            key = self._keys[id(cn)] = (cn.uses, repr(sorted(cn.params.items(), key=repr)))
        return key


__all__ = ["QuickNodes"]
