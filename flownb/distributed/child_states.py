"""The node states of a distributed run's child runs (subflow, map), for ``RunResult.child_states``.

Why: a drawing of a finished run colours a subflow's inside from the result alone; without
these states its child nodes stayed "pending" after the run. Child runs are runs of their own
(``<parent>.<node>.<visit>.<i>``, listed in the parent's ``children`` set), so their node
statuses are read here, one pipelined round trip per nesting level, and keyed the way the
in-process engine keys them (:class:`flownb.core.result.ChildStates`): ``"<node>/<child>"`` for
a subflow, ``"<node>[i]/<child>"`` for map items, the latest visit of a node winning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..core.errors import FlownbError
from ..core.result import ChildStates
from .keys import STATS_PREFIX

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from .store import RedisStore

__all__ = ["load_child_states"]

#: nesting levels read (deeper runs are left out; flownb.core.limits caps nesting well below this)
MAX_LEVELS = 16
#: HSCAN's COUNT for a child's node stats (``keys.STATS_PREFIX`` fields of its state hash)
_SCAN = 1000


def load_child_states(store: RedisStore, run_id: str, blueprint: Blueprint | None,
                      child_ids: Iterable[str]) -> dict[str, str]:
    """``RunResult.child_states`` of run ``run_id`` (whose ``children`` set is ``child_ids``)."""
    statuses: dict[str, dict[str, str]] = {}  # child run id -> node -> status
    children: dict[str, list[str]] = {run_id: sorted(_text(c) for c in child_ids)}
    digests: dict[str, str] = {}
    frontier = list(children[run_id])
    for _ in range(MAX_LEVELS):
        if not frontier:
            break
        pipe = store.r.pipeline(transaction=False)
        for cid in frontier:
            pipe.hgetall(store.keys.nodes(cid))  # (a run started before the stats moved)
            pipe.hscan(store.keys.state(cid), 0, match=STATS_PREFIX + "*", count=_SCAN)
            pipe.smembers(store.keys.children(cid))
            pipe.hget(store.keys.meta(cid), "blueprint")
        raw = pipe.execute()
        nxt: list[str] = []
        for i, cid in enumerate(frontier):
            nodes_raw, (cursor, stats), kids, digest = raw[4 * i: 4 * i + 4]
            if cursor:  # a state with more fields than one scan returns: the rest
                stats = dict(store.r.hscan_iter(store.keys.state(cid), match=STATS_PREFIX + "*",
                                                count=_SCAN))
            statuses[cid] = {_text(f): _status(v) for f, v in (nodes_raw or {}).items()}
            statuses[cid].update({_text(f)[len(STATS_PREFIX):]: _status(v) for f, v in stats.items()})
            children[cid] = sorted(_text(k) for k in kids or ())
            if digest:
                digests[cid] = _text(digest)
            nxt += children[cid]
        frontier = nxt
    blueprints: dict[str, Blueprint | None] = {}

    def blueprint_of(rid: str) -> Blueprint | None:
        if rid == run_id:
            return blueprint
        digest = digests.get(rid, "")
        if digest not in blueprints:
            try:
                blueprints[digest] = store.load_blueprint(digest)
            except FlownbError:  # expired: its children cannot be placed
                blueprints[digest] = None
        return blueprints[digest]

    def states_of(rid: str) -> dict[str, str]:
        kids = children.get(rid) or []
        bp = blueprint_of(rid) if kids else None
        uses = {n.id: n.uses for n in bp.nodes} if bp is not None else {}
        out = ChildStates()
        for cid in sorted(kids, key=lambda c: _visit_index(rid, c)):  # the latest visit last
            node, visit, index = _parts(rid, cid)
            if node not in uses or cid not in statuses:
                continue
            prefix = f"{node}/" if uses[node] == "subflow" else f"{node}[{index}]/"
            out.add(node, visit, prefix, statuses[cid], states_of(cid))
        return out.states()

    return states_of(run_id)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _status(raw: Any) -> str:
    try:
        d = json.loads(raw)
    except (ValueError, TypeError):
        return ""
    return str(d.get("status") or "") if isinstance(d, dict) else ""


def _parts(parent: str, child: str) -> tuple[str, int, int]:
    """``<parent>.<node>.<visit>.<i>`` -> (node, visit, i); node ids may contain dots."""
    parts = child[len(parent) + 1:].rsplit(".", 2) if child.startswith(parent + ".") else []
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return "", 0, 0
    return parts[0], int(parts[1]), int(parts[2])


def _visit_index(parent: str, child: str) -> tuple[int, int]:
    _, visit, index = _parts(parent, child)
    return visit, index
