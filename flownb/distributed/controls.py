"""Run controls on Redis: pause / resume_run / patch_state / retry / skip of a distributed run.

Each control is one script call (:mod:`flownb.distributed.scripts.controls`), so it is atomic
against the workers: a paused run's items are parked in Redis (no lease, no worker holds them),
which is why killing every worker while a run is paused loses nothing — new workers take the
items once :func:`resume_run` queues them again. What is refused, and why, is decided by the
script from what it finds; this module turns the refusal into a :class:`RunControlError` that says
what to do instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from ..core.errors import FlownbError
from ..core.graph import select_edges
from ..engine.controls import RunControlError, default_by, refuse
from .codec import dumps, loads
from .jobs import enqueue_items
from .runs import _preview
from .scripts.controls import CONTROLS
from .store import RedisStore
from .store_args import shown_status

if TYPE_CHECKING:
    import rq

    from ..core.graph import Graph

__all__ = ["patch_state", "pause", "resume_run", "retry", "run_status", "skip"]

#: why a revival (retry / skip of a failed run) was refused -> the fix
_REVIVE_WHY = {
    "child": "it is a child run (subflow/map); retry the parent run's node instead",
    "unknown": "the blueprint has no such node; pass one of its node ids",
    "succeeded": "that node succeeded; retry the node that failed (flownb inspect RUN shows it)",
    "max_visits": "the node already had its max_visits; raise config.max_visits and submit again",
    "raced": "another control changed the run meanwhile; look at its status and try again",
}


def _register(store: RedisStore, name: str) -> None:
    """Register a control script on ``store`` once, beside its core scripts (``store._call`` and
    ``store.commit`` then call it by name)."""
    if name not in store._scripts:
        store._scripts[name] = store.r.register_script(CONTROLS[name])


def _call(store: RedisStore, name: str, run_id: str, digest: str | None, extra: list[Any]) -> dict[str, Any]:
    _register(store, name)
    out: dict[str, Any] = loads(store._call(name, run_id, digest, extra))
    return out


def run_status(store: RedisStore, run_id: str) -> str:
    """The status a person sees: ``paused`` while a running (or waiting) run is paused."""
    raw = store.r.hmget(store.keys.meta(run_id), ["status", "paused"])
    st = raw[0].decode() if isinstance(raw[0], bytes) else raw[0]
    return shown_status(st, raw[1]) or "gone"


def _meta(store: RedisStore, run_id: str) -> dict[str, str]:
    meta = store.meta(run_id)
    if not meta:
        raise RunControlError("no such run (expired, or another Redis/prefix)", run_id=run_id)
    return meta


def pause(store: RedisStore, run_id: str, *, by: str | None = None) -> dict[str, Any]:
    """Start no new visit of the run; visits in flight finish. Returns ``{parked, running}``."""
    _meta(store, run_id)
    res = _call(store, "PAUSE", run_id, None, [by or default_by()])
    if res["r"] == "already":
        raise refuse("pause", "paused already", "resume it with handle.resume_run() "
                     f"(flownb resume-run {run_id})", run_id=run_id)
    if res["r"] != "ok":
        raise refuse("pause", res["status"], "only a running or waiting run can be paused",
                     run_id=run_id)
    return res


def resume_run(store: RedisStore, queue: rq.Queue, run_id: str, *, by: str | None = None) -> int:
    """Queue the parked items of a paused run again; returns how many."""
    _meta(store, run_id)
    res = _call(store, "RESUME_RUN", run_id, None, [by or default_by()])
    if res["r"] != "ok":
        raise refuse("resume the run", f"{res['status']}, not paused",
                     "resume_run() continues a paused run (resume(node, value) answers a "
                     "waiting node)", run_id=run_id)
    if res["ready"]:
        enqueue_items(queue, run_id, res["ready"], keys=store.keys)
    return len(res["ready"])


def patch_state(store: RedisStore, run_id: str, values: Mapping[str, Any], *,
                by: str | None = None) -> None:
    """Merge ``values`` into the state of a paused or waiting run (recorded in its history)."""
    _meta(store, run_id)
    flat = _state_pairs(values, run_id)
    res = _call(store, "PATCH_STATE", run_id, None, [by or default_by(), *flat])
    if res["r"] != "ok":
        if res.get("running") and res.get("paused"):
            raise refuse("patch the state", f"paused with {res['running']} visit(s) still "
                         "running", "wait until they finish (the status shows them), then patch",
                         run_id=run_id)
        st = "running" if res["status"] == "running" else res["status"]
        raise refuse("patch the state", st, "pause it first (handle.pause()); only a paused or "
                     "waiting run's state can be patched", run_id=run_id)


def _state_pairs(values: Mapping[str, Any], run_id: str) -> list[str]:
    if not isinstance(values, Mapping) or not values:
        raise RunControlError("patch_state takes a non-empty dict of state keys to values",
                              run_id=run_id)
    flat: list[str] = []
    for k, v in values.items():
        if not isinstance(k, str) or not k or k.startswith("_outputs"):
            raise RunControlError(f"cannot patch state key {k!r}: keys are non-empty strings, and "
                                  "node outputs are changed with skip(node, output=...)",
                                  run_id=run_id)
        flat += [k, dumps(v, what=f"the patched value of state key {k!r}")]
    return flat


def _graph(store: RedisStore, meta: Mapping[str, str]) -> Graph:
    from .waiting import _graph as graph_of

    return graph_of(store, meta.get("blueprint", ""))


def _node(store: RedisStore, meta: Mapping[str, str], run_id: str, node: str, what: str) -> Any:
    g = _graph(store, meta)
    if node not in g.nodes:
        raise RunControlError(f"cannot {what}: the blueprint has no node {node!r} (nodes: "
                              f"{', '.join(sorted(g.nodes))})", run_id=run_id, node_id=node)
    return g.nodes[node]


def retry(store: RedisStore, queue: rq.Queue, run_id: str, node: str, *,
          by: str | None = None) -> int:
    """Re-run ``node`` of a failed or cancelled run in place; returns the new visit number."""
    meta = _meta(store, run_id)
    cn = _node(store, meta, run_id, node, "retry")
    state = store.r.hgetall(store.keys.state(run_id))
    have = {k.decode() if isinstance(k, bytes) else k for k in state}
    sources = [e.source for e in cn.fwd_in if f"_outputs.{e.source}" in have]
    _check_upstream(cn, sources, run_id)
    res = _call(store, "RETRY", run_id, meta.get("blueprint"), [node, dumps(sources), by or default_by()])
    if res["r"] != "ok":
        raise _revive_refusal("retry", res, run_id, node)
    enqueue_items(queue, run_id, res["ready"], keys=store.keys)
    return int(res["ready"][0][1])


def _check_upstream(cn: Any, sources: list[str], run_id: str) -> None:
    """A node whose upstream never produced an output would run on the wrong input: refuse."""
    if cn.fwd_in and not sources:
        ups = sorted({e.source for e in cn.fwd_in})
        raise RunControlError(f"cannot retry: no node upstream of it ({', '.join(ups)}) has an "
                              "output yet; retry the node that failed (flownb inspect RUN)",
                              run_id=run_id, node_id=cn.id)


def _revive_refusal(what: str, res: Mapping[str, Any], run_id: str, node: str) -> RunControlError:
    why = res.get("why")
    if why == "status":
        fix = ("only a failed or cancelled run's node is retried or skipped; pause a running "
               "run, skip a waiting or queued node, or fork a finished run (flownb.fork)")
        if what == "skip":
            fix = "a running or paused run's node can be skipped only while it waits or is queued"
        return refuse(what, res.get("status", "?"), fix, run_id=run_id, node_id=node)
    if why == "graph":
        return refuse(what, res.get("status", "?"), f"its compiled graph {res.get('problem')}",
                      run_id=run_id, node_id=node)
    return refuse(what, res.get("status", "?"), _REVIVE_WHY.get(str(why), str(why)),
                  run_id=run_id, node_id=node)


def skip(store: RedisStore, queue: rq.Queue, run_id: str, node: str, output: Any = None, *,
         by: str | None = None) -> None:
    """Mark ``node`` completed by hand with ``output``: a waiting or queued visit of a running,
    paused or waiting run, or the failed node of a failed or cancelled run; the run goes on."""
    meta = _meta(store, run_id)
    cn = _node(store, meta, run_id, node, "skip")
    who = by or default_by()
    output_json = dumps(output, what=f"the output given to node {node!r}")
    status = meta.get("status", "")
    from .reads import resolver

    try:
        taken = select_edges(cn, None, resolver(store, run_id, output, None, None, {})) \
            if cn.out else set()
    except FlownbError as exc:
        raise RunControlError(f"cannot skip: {exc.message}", run_id=run_id, node_id=node) from None
    now = time.time()
    event = {"attempt": 1, "action": None, "flag": "skipped", "by": who, "duration_s": 0.0,
             "output": _preview(output)}
    stats = {"status": "succeeded", "visits": 1, "attempts": 0, "duration_s": 0.0,
             "finished_at": now, "started_at": now, "skipped_by": who}
    if status in ("failed", "cancelled"):
        visit = int(store.r.hget(store.keys.sched(run_id), f"v:{node}") or 0) + 1
        script = "SKIP_FAILED"
    else:
        pend = [(k.decode() if isinstance(k, bytes) else k) for k in
                store.r.hkeys(store.keys.pending(run_id))]
        visits = [int(f.rsplit("|", 1)[1]) for f in pend if f.rsplit("|", 1)[0] == node]
        if not visits:
            raise refuse("skip", run_status(store, run_id), "only a node that waits, is queued "
                         "or failed can be skipped; this one is not pending now",
                         run_id=run_id, node_id=node)
        visit = min(visits)
        waiting = loads(store.r.hget(store.keys.pending(run_id), f"{node}|{visit}")) or {}
        script = "RESUME" if waiting.get("h") else "SKIP_PENDING"
    event["visit"] = visit
    res = store.commit(run_id, meta.get("blueprint", ""), node, visit, output_json=output_json,
                       taken=taken, stats=stats, event=event, script=script) \
        if script == "RESUME" else _commit(store, script, run_id, meta, node, visit, output_json,
                                           taken, stats, event)
    if res.get("r") == "refused":
        if script == "SKIP_FAILED":
            raise _revive_refusal("skip", res, run_id, node)
        raise refuse("skip", str(res.get("status")), f"its visit is {res.get('item', 'gone')!s} "
                     "now (a visit that started running cannot be skipped; let it finish)",
                     run_id=run_id, node_id=node)
    if res.get("r") != "ok":
        raise refuse("skip", str(res.get("status", "not running")), "nothing was skipped",
                     run_id=run_id, node_id=node)
    if res.get("ready"):
        enqueue_items(queue, run_id, res["ready"], keys=store.keys)
    if res.get("parent"):
        prun, pnode, pvisit = res["parent"]
        enqueue_items(queue, prun, [[pnode, pvisit]], keys=store.keys)


def _commit(store: RedisStore, script: str, run_id: str, meta: Mapping[str, str], node: str,
            visit: int, output_json: str, taken: set[int], stats: Mapping[str, Any],
            event: Mapping[str, Any]) -> dict[str, Any]:
    _register(store, script)
    return store.commit(run_id, meta.get("blueprint", ""), node, visit, output_json=output_json,
                        taken=taken, stats=stats, event=event, script=script)


class HandleControls:
    """The run controls of a :class:`~flownb.distributed.client.RunHandle` (mixed in there, so
    the handle module stays about submitting and waiting); refusals are RunControlError."""

    run_id: str
    executor: Any
    last_status: str | None

    @property
    def store(self) -> RedisStore:
        raise NotImplementedError

    def _redis(self, what: str) -> Any:
        raise NotImplementedError

    def pause(self, *, by: str | None = None) -> Self:
        """Start no new visit; visits in flight finish; no worker is held while paused."""
        with self._redis("pausing the run"):
            pause(self.store, self.run_id, by=by)
        return self

    def resume_run(self, *, by: str | None = None) -> Self:
        """Continue a paused run (``resume(node, value)`` answers a waiting node instead)."""
        with self._redis("resuming the run"):
            resume_run(self.store, self.executor.queue, self.run_id, by=by)
        return self

    def patch_state(self, values: Mapping[str, Any], *, by: str | None = None) -> Self:
        """Merge ``values`` into a paused or waiting run's state (the history records who/when)."""
        with self._redis("patching the run's state"):
            patch_state(self.store, self.run_id, values, by=by)
        return self

    def retry(self, node_id: str, *, by: str | None = None) -> Self:
        """Re-run ``node_id`` of a failed or cancelled run in place (same run id, upstream
        outputs kept, the nodes after it run again)."""
        with self._redis(f"retrying node {node_id!r}"):
            retry(self.store, self.executor.queue, self.run_id, node_id, by=by)
        self.last_status = "running"
        return self

    def skip(self, node_id: str, *, output: Any = None, by: str | None = None) -> Self:
        """Mark ``node_id`` (failed, waiting or queued) completed by hand with ``output``."""
        with self._redis(f"skipping node {node_id!r}"):
            skip(self.store, self.executor.queue, self.run_id, node_id, output, by=by)
        return self
