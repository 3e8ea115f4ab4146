"""A run read back from Redis as a :class:`~flownb.core.result.RunResult` (finished or not).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..core.blueprint import Blueprint
from ..core.errors import ExecutorError, FlownbError
from ..core.heat import add_taken
from ..core.result import NodeStats, RunResult
from .child_states import load_child_states
from .codec import GONE, _s, loads
from .keys import STATS_PREFIX

if TYPE_CHECKING:
    from .store import RedisStore


def load_result(store: RedisStore, run_id: str) -> RunResult:
    """Everything about a run (finished or not) as a :class:`RunResult`: meta, state, outputs,
    node stats, the blueprint's terminal nodes and the child runs' node states."""
    k = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.hgetall(k.meta(run_id))
    pipe.hgetall(k.state(run_id))
    pipe.hgetall(k.nodes(run_id))
    pipe.smembers(k.children(run_id))
    pipe.hgetall(k.sched(run_id))  # the done markers hold each commit's taken edges: the path
    meta_raw, state_raw, nodes_raw, child_ids, sched_raw = pipe.execute()
    if not meta_raw:
        raise ExecutorError(f"{GONE}: finished runs are kept result_ttl_s="
                            f"{store.settings.result_ttl_s}s; or the run id, key prefix "
                            f"{store.keys.prefix!r} or Redis is wrong", run_id=run_id)
    meta = {_s(a): _s(b) for a, b in meta_raw.items()}
    outputs: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for f, v in state_raw.items():
        fs = _s(f)
        try:
            val = json.loads(v)
        except ValueError:
            val = {"corrupt": _s(v)[:80]}
        if fs.startswith("_outputs."):
            outputs[fs[len("_outputs."):]] = val
        elif fs.startswith(STATS_PREFIX):  # a node's stats (a run started before: its nodes hash)
            nodes_raw[fs[len(STATS_PREFIX):]] = v
        else:
            state[fs] = val
    nodes: dict[str, NodeStats] = {}
    terminal: list[str] = []
    bp: Blueprint | None = None
    try:
        bp = store.load_blueprint(meta.get("blueprint", ""))
        terminal = [n.id for n in bp.nodes if not any(e.source == n.id for e in bp.edges)]
        for n in bp.nodes:
            nodes[n.id] = NodeStats(n.id)
    except (ExecutorError, FlownbError):
        pass
    for f, v in nodes_raw.items():
        try:
            d = json.loads(v)
            fields = {a: b for a, b in d.items() if a in NodeStats.__dataclass_fields__}
            nodes[_s(f)] = NodeStats(node_id=_s(f), **{a: b for a, b in fields.items() if a != "node_id"})
        except (ValueError, TypeError):
            continue
    error = loads(meta["error"], what="run error") if meta.get("error") else None
    return RunResult(run_id=run_id, blueprint_id=meta.get("blueprint_id", ""),
                     status=meta.get("status", "unknown"), outputs=outputs, state=state,
                     error=error, nodes=nodes, started_at=float(meta.get("created_at", 0) or 0),
                     finished_at=float(meta.get("finished_at", 0) or 0), terminal=terminal,
                     child_states=load_child_states(store, run_id, bp, child_ids)
                     if child_ids else {}, taken_edges=_taken_edges(sched_raw))


def _taken_edges(sched: Any) -> dict[int, int]:
    """Edge index -> times taken, from the run's done markers (sched ``d:<node>:<visit>``:
    ``t`` and the taken indices, ``t0,3``, as the COMMIT script writes them; history or not).
    A marker of a run from an older flownb (``1``) says nothing about edges."""
    counts: dict[int, int] = {}
    for f, v in (sched or {}).items():
        text = _s(v)
        if _s(f).startswith("d:") and text.startswith("t") and len(text) > 1:
            add_taken(counts, text[1:].split(","))
    return counts


__all__ = ["load_result"]
