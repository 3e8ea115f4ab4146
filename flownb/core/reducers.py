"""How node writes to the shared state are combined: reducers, and conflicting writes.

The state is one mapping per run; a node's writes are buffered and applied when its visit
commits. Sequential writes simply replace each other. Parallel branches are the hard case: two
visits that run at the same time and write the same key would lose one write, silently, with
"last write wins" (LangGraph raises there; it was flownb's behaviour before). So:

* a blueprint may declare a **reducer** per key (``"reducers": {"log": "append"}``), applied at
  commit to the stored value and the written one:

  ============  ==============================================================================
  ``append``    a list: a written list is concatenated, any other value appended as one item
  ``merge``     a mapping: the written mapping's keys are set on it (shallow ``{**old, **new}``)
  ``sum``       a number: the written number is added (a missing key counts as 0)
  ``replace``   the written value replaces the stored one, also between parallel writers
  ============  ==============================================================================

* a key **without** a reducer may not be written by two visits that ran at the same time: a
  visit that was already fired (queued or running) when another visit's write of the key
  committed could not have seen that write, so the second commit fails the run with
  :class:`~flownb.core.errors.StateConflict`, naming the key, both nodes and the fix.

"At the same time" is made exact with a commit counter: each commit increments ``seq``; a
visit remembers the ``seq`` at which it was fired; a key remembers the ``seq`` of its last
write. A commit writing a key whose last write is newer than the visit's firing is a conflict.
This module is the in-process implementation; the ``COMMIT`` Lua script applies the same rules
on Redis (``flownb/distributed/scripts/``), and the shared scenario suite proves them equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import StateConflict, StateReducerError

__all__ = ["REDUCERS", "StateWriter", "conflict_message", "reduce_value"]

REDUCERS = ("append", "merge", "sum", "replace")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def reduce_value(key: str, reducer: str, old: Any, present: bool, new: Any, *,
                 node_id: str | None = None) -> Any:
    """The value ``key`` holds after ``new`` is written under ``reducer``."""
    if reducer == "replace":
        return new
    if reducer == "append":
        if not present:
            old = []
        if not isinstance(old, list):
            raise StateReducerError(f"state key {key!r} has reducer 'append' but holds a "
                                    f"{type(old).__name__}, not a list", node_id=node_id)
        return [*old, *new] if isinstance(new, list) else [*old, new]
    if reducer == "merge":
        if not present:
            old = {}
        if not isinstance(old, dict) or not isinstance(new, dict):
            bad = old if not isinstance(old, dict) else new
            raise StateReducerError(f"state key {key!r} has reducer 'merge', which needs mappings; "
                                    f"got a {type(bad).__name__}", node_id=node_id)
        return {**old, **new}
    if reducer == "sum":
        if not present:
            old = 0
        if not _is_number(old) or not _is_number(new):
            bad = old if not _is_number(old) else new
            raise StateReducerError(f"state key {key!r} has reducer 'sum', which needs numbers; "
                                    f"got a {type(bad).__name__}", node_id=node_id)
        return old + new
    raise StateReducerError(f"unknown reducer {reducer!r} for state key {key!r}; use one of "
                            f"{', '.join(REDUCERS)}", node_id=node_id)


def conflict_message(key: str, node: str, other: str) -> str:
    """The one text both executors use (the Lua COMMIT builds the same string)."""
    return (f"state key {key!r} was written by node {node!r} and by node {other!r}, which ran "
            f"at the same time: one write would be lost. Declare how to combine them in the "
            f"blueprint, e.g. \"reducers\": {{\"{key}\": \"append\"}} (or merge, sum, replace)")


class StateWriter:
    """Applies a run's commits to its state mapping (in process), with reducers and conflict
    detection. Call :meth:`fired` with the items the scheduler makes ready, :meth:`apply` with a
    visit's writes when it commits."""

    __slots__ = ("_fired", "_last", "reducers", "seq")

    def __init__(self, reducers: Mapping[str, str] | None = None) -> None:
        self.reducers = dict(reducers or {})
        self.seq = 0
        self._fired: dict[tuple[str, int], int] = {}
        self._last: dict[str, tuple[int, str]] = {}  # key -> (seq of its last write, node)

    def fired(self, items: Iterable[Any]) -> None:
        for it in items:
            self._fired[(it.node, it.visit)] = self.seq

    def apply(self, state: dict[str, Any], node: str, visit: int, writes: Mapping[str, Any]) -> None:
        """Check every write first, then apply them all (a failing commit changes nothing)."""
        fired_at = self._fired.pop((node, visit), self.seq)
        self.seq += 1
        if not writes:
            return
        new: dict[str, Any] = {}
        for key, value in writes.items():
            reducer = self.reducers.get(key)
            if reducer is None:
                last = self._last.get(key)
                if last is not None and last[0] > fired_at:
                    raise StateConflict(conflict_message(key, node, last[1]), node_id=node)
                new[key] = value
            else:
                new[key] = reduce_value(key, reducer, state.get(key), key in state, value,
                                        node_id=node)
        state.update(new)
        for key in new:
            self._last[key] = (self.seq, node)
