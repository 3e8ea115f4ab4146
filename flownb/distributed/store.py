"""The Redis implementation of a run's storage: the twin of the in-memory scheduler + state.

:class:`RedisStore` wraps one redis-py client, the key layout (:mod:`.keys`) and the Lua scripts
(:mod:`.scripts`). Every method is one round trip or one script call; nothing here reads a whole
run state on the hot path (a node reads the fields it touches).

Values cross Redis as JSON only — never pickle — so any worker, any language, any version can
read them, and a corrupt field is reported as such rather than executed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..core import tracing
from ..core.blueprint import Blueprint
from ..core.errors import ExecutorError, FlownbError
from ..core.events import TERMINAL, Event
from ..core.graph import Graph, analyse
from ..core.jsondata import dumps as _strict_dumps
from ..core.limits import Limits
from ..core.result import RunResult
from . import childruns, scripts
from .keys import Keys, item_field, lease_member
from .codec import GONE, _s, dumps, loads  # noqa: F401 - re-exported
from .results import load_result
from .store_args import (add_resume_children, commit_args, decode_meta, decode_state, event_fields,
                         fail_args, resume_fields, run_script_args, shown_status)
from .store_settings import StoreSettings

if TYPE_CHECKING:
    import redis


_UNSET = object()


class RedisStore:
    """Runs, items and events on one Redis; shared by the client and the workers."""

    def __init__(self, client: redis.Redis, *, prefix: str = "flownb",
                 settings: StoreSettings | None = None) -> None:
        self.r = client
        self.keys = Keys(prefix)
        self.settings = settings or StoreSettings()
        self._scripts = {name: client.register_script(src) for name, src in scripts.ALL.items()}
        self._uploaded: dict[str, float] = {}  # digest -> when we uploaded it (monotonic)
        self._blueprints: OrderedDict[str, Blueprint] = OrderedDict()

    # -- script plumbing -------------------------------------------------------------------------
    def _run_args(self, run_id: str) -> tuple[list[str], list[Any]]:
        return run_script_args(self.keys, self.settings, run_id, None)

    def _call(self, name: str, run_id: str, graph_digest: str | None, extra: list[Any]) -> Any:
        keys, args = run_script_args(self.keys, self.settings, run_id, graph_digest)
        return self._scripts[name](keys=keys, args=[*args, *extra])

    # -- blueprints ------------------------------------------------------------------------------
    def upload_blueprint(self, bp: Blueprint, *, force: bool = False) -> str:
        """Store the blueprint and its compiled graph under its digest (idempotent).

        The TTL is only set while no active run holds the blueprint (``UPLOAD``), so a re-upload
        never shortens the life of a graph a long run still needs."""
        digest = bp.digest
        key = self.keys.blueprint(digest)
        upload = self._scripts["UPLOAD"]
        ttl = self.settings.result_ttl_s * 2
        at = self._uploaded.get(digest)
        if at is not None and not force and time.monotonic() - at < self.settings.result_ttl_s:
            # still within its TTL (2x this); START checks it is there and re-uploads if evicted
            return digest
        g, _ = analyse(bp)
        # Any keys: redis-py types hash mappings with an invariant key union
        fields: dict[Any, str] = {"json": bp.to_json(indent=None), "id": bp.id,
                                  "starts": dumps(g.starts)}
        # join info per node ("c": a subflow/map, the only visits with child-run fields); each
        # out edge carries its target's too, so a commit reads one field to route its output
        info = {name: {"n": cn.n_fwd_in, "j": cn.join, "m": cn.max_visits, "s": cn.scc,
                       "t": cn.topo, "c": 1 if cn.uses in ("subflow", "map") else 0}
                for name, cn in g.nodes.items()}
        for name, cn in g.nodes.items():
            fields[f"o:{name}"] = dumps([[e.idx, e.target, 1 if e.back else 2 if e.exit else 0, e.pos,
                                          info[e.target]] for e in cn.out])
            fields[f"i:{name}"] = dumps(info[name])
            if cn.n_fwd_in > 1:  # read only when the join fires, not at every arrival
                fields[f"src:{name}"] = dumps([e.source for e in cn.fwd_in])
        for sid, exits in g.scc_exits.items():
            fields[f"x:{sid}"] = dumps([[i, g.edges[i].target, g.edges[i].pos, g.edges[i].source]
                                        for i in exits])
            fields[f"n:{sid}"] = dumps(g.scc_nodes[sid])
        # the COMMIT script applies them (flownb.core.reducers); written even when empty, so a
        # commit that reads it with the node's fields knows it is there (no HLEN check)
        fields["reducers"] = dumps(dict(bp.reducers or {}))
        fields["L"] = "1" if g.scc_exits else "0"  # no loops: COMMIT skips the loop-exit check
        fields["hlen"] = str(len(fields) + 1)  # the scripts' proof that no field is missing
        flat: list[str] = []
        for f, v in fields.items():
            flat += [f, v]
        upload(keys=[key, self.keys.bprefs], args=[digest, ttl, *flat])
        self._uploaded[digest] = time.monotonic()
        return digest

    def load_blueprint(self, digest: str) -> Blueprint:
        """The blueprint stored under ``digest`` (cached: a digest names one content for ever, and
        a parent gathering 50,000 map results must not parse the same blueprint 50,000 times)."""
        bp = self._blueprints.get(digest)
        if bp is not None:
            return bp
        return self.cache_blueprint(digest, self.r.hget(self.keys.blueprint(digest), "json"))

    def cache_blueprint(self, digest: str, raw: bytes | str | None) -> Blueprint:
        """Parse the stored JSON ``raw`` of blueprint ``digest`` into the cache (the async
        store of a worker's loop reads it and lands here too: one parser, one cache)."""
        if raw is None:
            raise ExecutorError(f"blueprint {digest} is not in Redis (expired or never submitted)")
        bp = Blueprint.from_json(raw, path=f"redis blueprint {digest}")
        self._blueprints[digest] = bp
        if len(self._blueprints) > 64:
            self._blueprints.popitem(last=False)
        return bp

    # -- run lifecycle ---------------------------------------------------------------------------
    def start_run(self, run_id: str, bp: Blueprint, graph: Graph, inputs: Mapping[str, Any], *,
                  parent: str = "", bundle: Mapping[str, str] | None = None,
                  history: bool = False) -> list[tuple[str, int]]:
        """Create the run (``START``) and return its queued ``(node, visit)`` items. With tracing
        on, the run's span is opened here and its context stored in the run's meta, so every
        worker continues one trace (:mod:`flownb.core.tracing`). ``history``: record the run's
        history stream (time travel; a child run records it when its parent does)."""
        tr = tracing.TRACER
        if tr is None:
            return self._start_run(run_id, bp, graph, inputs, parent, bundle, "", history)
        with tr.run(run_id, bp.id, parent_run=parent.split("|")[0], executor="distributed"):
            return self._start_run(run_id, bp, graph, inputs, parent, bundle, dumps(tr.inject()),
                                   history)

    def _start_run(self, run_id: str, bp: Blueprint, graph: Graph, inputs: Mapping[str, Any],
                   parent: str, bundle: Mapping[str, str] | None, trace: str,
                   history: bool = False) -> list[tuple[str, int]]:
        # not uploaded first: START refuses (writing nothing) when the graph is not in Redis, and
        # only then is it uploaded — a digest stored by an earlier process costs no upload
        digest = bp.digest
        flat: list[str] = []
        for k, v in inputs.items():
            if not isinstance(k, str) or k.startswith("_outputs"):
                raise FlownbError(f"input key {k!r} must be a string not starting with '_outputs'",
                                  run_id=run_id)
            flat += [k, _strict_dumps(v, what=f"inputs[{k!r}]")]  # as flownb.run says it
        dumps(list(inputs), what=f"the input names of run {run_id}")  # a lone surrogate in a key
        parent_children = ""
        if parent:
            parent_children = self.keys.children(parent.split("|")[0])
        event = dumps({"blueprint_id": bp.id, "inputs": list(inputs), "parent": parent or None})
        args = [digest, bp.id, parent, dumps(graph.starts), dumps(dict(bundle or {})),
                event, parent_children, dumps(list(inputs)), trace, "1" if history else "", *flat]

        def start() -> Any:
            raw = self._call("START", run_id, digest, args)
            if raw in (b"exists", "exists", b"parent-ended", "parent-ended"):
                return _s(raw)
            return loads(raw)

        res = start()
        if isinstance(res, dict) and res.get("code") == "graph":
            # the graph is not in Redis (never uploaded, expired or evicted): upload, try once more
            self.upload_blueprint(bp, force=True)
            res = start()
        if res == "exists":
            raise ExecutorError(f"run id {run_id!r} already exists", run_id=run_id)
        if res == "parent-ended":
            raise ExecutorError(f"parent run of {run_id!r} has ended; the child run is not "
                                "started", run_id=run_id)
        if isinstance(res, dict):
            raise ExecutorError(f"cannot start run {run_id!r} of blueprint {bp.id!r}: "
                                f"{res.get('err')}; nothing was written", run_id=run_id)
        return [(n, int(v)) for n, v in res]

    def claim(self, run_id: str, digest: str, node: str, visit: int, worker: str) -> dict[str, Any]:
        res: dict[str, Any] = loads(self._call("CLAIM", run_id, digest, [node, visit, worker]))
        self._with_children(run_id, node, visit, res)
        return res

    def claim_many(self, run_id: str, digest: str, items: list[tuple[str, int]],
                   worker: str) -> list[dict[str, Any]]:
        flat: list[Any] = []
        for node, visit in items:
            flat += [node, visit]
        out: list[dict[str, Any]] = loads(self._call("CLAIM_MANY", run_id, digest, [worker, *flat]))
        for res in out:
            self._with_children(run_id, str(res.get("node")), int(res.get("visit") or 0), res)
        return out

    def _with_children(self, run_id: str, node: str, visit: int, res: dict[str, Any]) -> None:
        """A resumed subflow/map visit gets its child ids (``ch``) and first failed child
        (``cf``), which the scripts keep outside the pending item (see :mod:`.scripts`)."""
        fields = resume_fields(res, node, visit)
        if fields is not None:
            ch, cf = self.r.hmget(self.keys.sched(run_id), fields)
            add_resume_children(res["item"], run_id, node, ch, cf)

    def _block_cap_ms(self, wanted_ms: int) -> int:
        """A blocking read must end before the client's socket timeout (redis-py 8 defaults
        to 5 s on each connection), else the read itself fails with a TimeoutError."""
        cap = self.__dict__.get("_sock_timeout", _UNSET)
        if cap is _UNSET:
            cap = self.r.connection_pool.connection_kwargs.get("socket_timeout")
            if cap is None:
                try:
                    conn = self.r.connection_pool.get_connection()
                    cap = conn.socket_timeout
                    self.r.connection_pool.release(conn)
                except Exception:  # noqa: BLE001 - fall back to a safe value
                    cap = 5.0
            self._sock_timeout = cap
        if not cap:
            return wanted_ms
        return max(50, min(wanted_ms, int(float(cap) * 1000) - 500))

    def wait_done(self, run_id: str, timeout_s: float | None) -> bool:
        """Block (no polling) until the run's done list has its entry; False on timeout.

        The list holds one entry (the status) once the run ends or waits; ``BLMOVE`` from the
        list to itself returns it and puts it back, so every waiter wakes and a later one
        returns at once. A list of one costs ~175 bytes of Redis, a one-entry stream ~650."""
        key = self.keys.done(run_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        # never block longer than the client's own socket timeout (redis-py 8 defaults to 5 s),
        # or the blocking read itself would time out
        block_cap_ms = self._block_cap_ms(5000)
        while True:
            wait_ms = block_cap_ms
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait_ms = max(1, min(wait_ms, int(left * 1000)))
            got: Any
            try:  # Redis >= 6 takes the timeout in seconds as a decimal (redis-py types it int)
                got = self.r.blmove(key, key, wait_ms / 1000, "RIGHT", "LEFT")  # type: ignore[arg-type]
            except Exception as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
                # the done stream of a run an older flownb wrote (before the list)
                got = self.r.xread({key: "0-0"}, count=1, block=wait_ms) or None
            if got is not None:
                return True
            if self.status(run_id) in (None, "succeeded", "failed", "cancelled"):
                return True  # finished before the done stream existed, or expired

    def commit(self, run_id: str, digest: str, node: str, visit: int, *, output_json: str,
               taken: Iterable[int], stats: Mapping[str, Any], event: Mapping[str, Any],
               writes: Mapping[str, Any] | None = None, claim_for: str = "",
               event_node: str = "", script: str = "COMMIT") -> dict[str, Any]:
        """``script="RESUME"``: the same commit, for a visit parked for a person (it refuses
        unless the visit still waits; see flownb.distributed.waiting)."""
        raw = self._call(script, run_id, digest, commit_args(
            node, visit, output_json=output_json, taken=taken, stats=stats, event=event,
            writes=writes, claim_for=claim_for, event_node=event_node))
        return loads(raw)  # type: ignore[no-any-return]

    def fail(self, run_id: str, digest: str, node: str, error: Mapping[str, Any], *,
             stats: Mapping[str, Any] | None = None, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        raw = self._call("FAIL", run_id, digest, fail_args(node, error, stats, event))
        return loads(raw)  # type: ignore[no-any-return]

    def cancel(self, run_id: str) -> int:
        return int(self._call("CANCEL", run_id, None, []))

    def wait_children(self, run_id: str, digest: str, node: str, visit: int, children: list[str]) -> str:
        return _s(self._call("WAIT_CHILDREN", run_id, digest, [node, visit, len(children), dumps(children)]))

    def reserve_children(self, run_id: str, node: str, visit: int, n: int,
                         limits: Limits | None = None) -> None:
        """Count ``n`` child runs of item ``node|visit`` against the root run's limits, or raise
        :class:`~flownb.core.errors.LimitExceeded` (atomic across workers: :mod:`.childruns`)."""
        childruns.reserve(self, self._scripts["RESERVE_CHILDREN"], run_id, node, visit, n, limits)

    def requeue_expired(self, limit: int = 200) -> list[tuple[str, str, int]]:
        raw = self._scripts["REQUEUE"](keys=[self.keys.leases],
                                        args=[self.keys.prefix, int(self.settings.queued_ttl_s * 1000), limit,
                                              int(self.settings.lease_ttl_s * 1000)])
        return [(r, n, int(v)) for r, n, v in loads(raw)]

    def renew(self, members: list[str], ttl_s: float | None = None) -> int:
        """Push the lease deadlines of ``members`` to now + ``ttl_s`` (default: the lease TTL)."""
        if not members:
            return 0
        ttl = self.settings.lease_ttl_s if ttl_s is None else ttl_s
        return int(self._scripts["RENEW"](keys=[self.keys.leases], args=[int(ttl * 1000), *members]))

    def add_event(self, run_id: str, type_: str, node: str | None, data: Mapping[str, Any]) -> None:
        self.r.xadd(self.keys.events(run_id), event_fields(run_id, type_, node, data),  # type: ignore[arg-type]
                    maxlen=self.settings.events_maxlen, approximate=True)

    # -- reads -----------------------------------------------------------------------------------
    def meta(self, run_id: str) -> dict[str, str]:
        return decode_meta(self.r.hgetall(self.keys.meta(run_id)))

    def status(self, run_id: str) -> str | None:
        v = self.r.hget(self.keys.meta(run_id), "status")
        return _s(v) if v is not None else None

    def state_get(self, run_id: str, key: str) -> Any:
        """One state field; raises KeyError when absent (the StateView contract)."""
        raw = self.r.hget(self.keys.state(run_id), key)
        if raw is None:
            raise KeyError(key)
        return loads(raw, what=f"state field {key!r} of run {run_id}")

    def state_many(self, run_id: str, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        return decode_state(run_id, keys, self.r.hmget(self.keys.state(run_id), keys))

    def state_keys(self, run_id: str) -> Iterator[str]:
        for k in self.r.hkeys(self.keys.state(run_id)):
            ks = _s(k)
            if not ks.startswith("_outputs"):  # outputs, and node stats (keys.STATS_PREFIX)
                yield ks

    def pending_item(self, run_id: str, node: str, visit: int) -> dict[str, Any] | None:
        raw = self.r.hget(self.keys.pending(run_id), item_field(node, visit))
        return loads(raw) if raw is not None else None
    def load_result(self, run_id: str) -> RunResult:
        """Everything about a run (finished or not) as a :class:`RunResult`."""
        return load_result(self, run_id)

    # -- events ----------------------------------------------------------------------------------
    def events(self, run_id: str, *, after: str = "0-0", count: int = 1000) -> list[Event]:
        raw: Any = self.r.xrange(self.keys.events(run_id), min=f"({after}" if after != "0-0" else "-",
                            count=count)
        return [e for i, f in raw for e in Event.all_from_fields(run_id, f, _s(i))]

    def follow(self, run_id: str, *, after: str = "0-0", block_ms: int = 1000,
               stop_at_terminal: bool = True, timeout_s: float | None = None,
               raise_if_gone: bool = False) -> Iterator[Event]:
        """Yield events as they are written (blocking XREAD: no polling loop on the client).

        ``raise_if_gone``: raise :class:`ExecutorError` when the run's keys vanish (a Redis
        restarted without persistence), since a blocking read on them would never end; without
        it the caller checks the status itself after ``timeout_s``."""
        key = self.keys.events(run_id)
        last = after
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        block_ms = self._block_cap_ms(block_ms)
        while True:
            wait = block_ms
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = max(1, min(block_ms, int(left * 1000)))
            resp: Any = self.r.xread({key: last}, count=500, block=wait)
            if not resp:
                status = self.status(run_id)
                if status is None and raise_if_gone:  # a read on a vanished key never ends
                    raise ExecutorError(f"{GONE}; no more events will come", run_id=run_id)
                if stop_at_terminal and status not in (None, "running"):
                    # the terminal event may have been trimmed or expired: stop anyway
                    tail = self.r.xrevrange(key, count=1)
                    if not tail or _s(tail[0][0]) == last:
                        return
                continue
            for _, entries in resp:
                for entry_id, fields in entries:
                    last = _s(entry_id)
                    for e in Event.all_from_fields(run_id, fields, last):
                        yield e
                        if stop_at_terminal and e.type in TERMINAL:
                            return

    def list_runs(self, limit: int = 20) -> list[dict[str, str]]:
        ids = [_s(x) for x in self.r.zrevrange(self.keys.runs, 0, limit * 3)]
        out: list[dict[str, str]] = []
        pipe = self.r.pipeline(transaction=False)
        for rid in ids:
            pipe.hgetall(self.keys.meta(rid))
        stale = []
        for rid, meta in zip(ids, pipe.execute()):
            if not meta:
                stale.append(rid)
                continue
            m = {_s(a): _s(b) for a, b in meta.items()}
            if m.get("parent"):
                continue
            m["run_id"] = rid
            m["status"] = shown_status(m.get("status"), m.get("paused")) or ""
            out.append(m)
            if len(out) >= limit:
                break
        if stale:
            self.r.zrem(self.keys.runs, *stale)
        return out


__all__ = ["GONE", "RedisStore", "StoreSettings", "dumps", "lease_member", "loads"]
