"""Human in the loop on Redis: park a visit, list what waits, resume it, take defaults on timeout.

The design is in :mod:`flownb.engine.waiting`. Here: the worker's commit hook calls :func:`park` (the
``PARK`` script: the visit becomes a parked pending item with its wait info, no lease, no
worker; the run becomes ``waiting`` once nothing else is active). :func:`resume` checks the
answer, picks the edges it takes, and runs the ``RESUME`` script — which refuses unless the visit
still waits and then commits exactly like ``COMMIT`` (it *is* ``COMMIT``'s body) — and enqueues the
successors. Everything lives in Redis, so a waiting run outlives every worker and client, and a
Redis restart with AOF. The workers' reaper calls :func:`expire_waits` for ``timeout_s``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..core.answers import AnswerError
from ..core.errors import FlownbError
from ..core.graph import Graph, analyse, select_edges
from ..engine.waiting import ResumeError, WaitRequest, _why_not, answer_for, request_info
from .jobs import enqueue_items
from .keys import lease_member, stats_field
from .store import RedisStore, dumps, loads

if TYPE_CHECKING:
    import rq

    from ..core.graph import CNode

_GRAPHS: dict[str, Graph] = {}


def park(store: RedisStore, run_id: str, digest: str, cn: CNode, visit: int, input_: Any,
         req: WaitRequest, *, worker: str) -> dict[str, Any]:
    """Park ``cn``'s visit until a person answers (called by the worker instead of a commit)."""
    info = request_info(cn, visit, req, input_)
    event = {"visit": visit, "prompt": info["prompt"], "choices": info["choices"],
             "schema": info["schema"], "timeout_s": info["timeout_s"], "worker": worker}
    stats = {"status": "waiting", "visits": visit, "attempts": 1, "worker": worker,
             "started_at": info["since"]}
    timeout_ms = str(int(req.timeout_s * 1000)) if req.timeout_s else ""
    raw = store._call("PARK", run_id, digest, [cn.id, visit, dumps(info), timeout_ms, dumps(event),
                                                dumps(stats)])
    return loads(raw)  # type: ignore[no-any-return]


#: the largest answer (characters of its JSON) ``resume`` stores: an answer lands in the run's
#: state and in its history, so a 150 MB answer cost 300 MB of Redis
MAX_ANSWER_CHARS = 16 * 2**20


def waiting(store: RedisStore, run_id: str) -> list[dict[str, Any]]:
    """The run's parked visits: ``[{node, visit, prompt, schema, choices, deadline, ...}]``."""
    out = []
    for raw in store.r.hgetall(store.keys.pending(run_id)).values():
        it = loads(raw, what=f"pending item of run {run_id}")
        if not it.get("h"):
            continue
        info = loads(it.get("hj"), what=f"wait info of run {run_id}") or {}
        dl = store.r.zscore(store.keys.waits, lease_member(run_id, info["node"], info["visit"]))
        out.append({**info, "deadline": dl / 1000.0 if dl is not None else None})
    return sorted(out, key=lambda x: (x["since"], x["node"]))


def _graph(store: RedisStore, digest: str) -> Graph:
    g = _GRAPHS.get(digest)
    if g is None:
        g = _GRAPHS[digest] = analyse(store.load_blueprint(digest))[0]
    return g


def resume(store: RedisStore, queue: rq.Queue, run_id: str, node_id: str, value: Any, *,
           visit: int | None = None, by: str = "api") -> dict[str, Any]:
    """Commit ``value`` as the output of ``node_id``'s waiting visit; refuse (ResumeError) when
    it does not wait (answered already, wrong node) or the answer does not fit."""
    parked = [w for w in waiting(store, run_id)
              if w["node"] == node_id and (visit is None or w["visit"] == visit)]
    meta = store.meta(run_id)
    if not meta:
        raise ResumeError("no such run (expired, or another Redis/prefix)", run_id=run_id)
    if len(parked) != 1:
        if parked:
            raise ResumeError(f"visits {[w['visit'] for w in parked]} are waiting; pass visit=",
                              node_id=node_id, run_id=run_id)
        stats = loads(store.r.hget(store.keys.state(run_id), stats_field(node_id))
                      or store.r.hget(store.keys.nodes(run_id), node_id)) or {}
        why = _why_not(bool(stats.get("answered")), stats.get("status") == "succeeded")
        others = sorted({w["node"] for w in waiting(store, run_id)}) or "none"
        raise ResumeError(f"cannot resume: {why} (run status {meta.get('status')!r}; waiting "
                          f"now: {others})", node_id=node_id, run_id=run_id)
    info = parked[0]
    if by != "timeout" and info.get("deadline") is not None:
        sec, usec = store.r.time()  # the reaper's clock: late is late on both executors
        if int(sec) + int(usec) / 1e6 > float(info["deadline"]):
            raise ResumeError(f"the answer came after timeout_s={info.get('timeout_s')}; the "
                              "workers' reaper takes the node's default answer",
                              node_id=node_id, run_id=run_id)
    try:
        output, action = answer_for(info, value, by=by)
    except AnswerError as exc:
        raise ResumeError(exc.message, node_id=node_id, run_id=run_id) from None
    output_json = dumps(output, what=f"the answer to node {node_id!r}")
    if len(output_json) > MAX_ANSWER_CHARS:  # it is stored twice (state and history)
        raise ResumeError(f"the answer is {len(output_json):,} characters of JSON, more than the "
                          f"{MAX_ANSWER_CHARS:,} an answer may have; store big data elsewhere "
                          "and answer with a reference", node_id=node_id, run_id=run_id)
    digest = meta.get("blueprint", "")
    cn = _graph(store, digest).nodes[node_id]
    from .execute import _preview
    from .reads import resolver as _resolver

    try:
        taken = select_edges(cn, action, _resolver(store, run_id, output, action, info["input"],
                                                   {})) if cn.out else set()
    except FlownbError as exc:
        raise ResumeError(exc.message, node_id=node_id, run_id=run_id) from None
    now = time.time()
    flag = "timeout" if by == "timeout" else "resumed"
    res = store.commit(run_id, digest, node_id, int(info["visit"]), output_json=output_json,
                       taken=taken, script="RESUME",
                       stats={"status": "succeeded", "visits": info["visit"], "attempts": 1,
                              "duration_s": max(0.0, now - info["since"]), "finished_at": now,
                              "started_at": info["since"], "answered": by},
                       event={"visit": info["visit"], "attempt": 1, "action": action,
                              "output": _preview(output), "flag": flag, "by": by,
                              "duration_s": max(0.0, now - info["since"])})
    if res.get("r") == "refused":
        why = _why_not(bool(res.get("done")), False)
        raise ResumeError(f"cannot resume: {why} (run status {res.get('status')!r})",
                          node_id=node_id, run_id=run_id)
    if res.get("r") != "ok":
        raise ResumeError(f"the run is {res.get('status', 'not running')}; nothing was resumed",
                          node_id=node_id, run_id=run_id)
    if res.get("ready"):
        enqueue_items(queue, run_id, res["ready"], keys=store.keys)
    if res.get("parent"):
        prun, pnode, pvisit = res["parent"]
        enqueue_items(queue, prun, [[pnode, pvisit]], keys=store.keys)
    return res


def expire_waits(store: RedisStore, queue: rq.Queue, limit: int = 100) -> int:
    """Take the default answer of every parked wait whose ``timeout_s`` passed (the reaper)."""
    sec, usec = store.r.time()
    now_ms = int(sec) * 1000 + int(usec) // 1000
    n = 0
    for m in store.r.zrangebyscore(store.keys.waits, "-inf", now_ms, start=0, num=limit):
        member = m.decode() if isinstance(m, bytes) else str(m)
        run_id, node, visit = member.rsplit("|", 2)
        try:
            resume(store, queue, run_id, node, None, visit=int(visit), by="timeout")
            n += 1
        except FlownbError:
            pass  # cancelled, expired or answered meanwhile: nothing to take
        store.r.zrem(store.keys.waits, member)
    return n


__all__ = ["MAX_ANSWER_CHARS", "expire_waits", "park", "resume", "waiting"]
