"""One node visit on a worker: claim, read the input, run it by the attempt policy, commit.

:class:`NodeRunner` is the distributed executor's half of a visit; the other half, how a node is
attempted (prep/exec/post, retries, back-off, timeout, fallback), is :mod:`flownb.engine.attempt`, the
same coroutine the in-process engine uses. What is left here is what Redis adds: the claim, lazy
state reads, the one atomic COMMIT (or FAIL), inline continuation of a single successor, and
child runs for subflow/map.

Every failure of a visit — a node raising ``SystemExit``, an output Redis cannot store, a Redis
error half-way — ends in :meth:`NodeRunner.fail_visit`: the node fails once with its own error
type and message. If even that cannot reach Redis, the visit's lease is dropped so the reaper
re-runs it once Redis is back; nothing is left claimed for ever.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..engine.attempt import WORKER_ERRORS, Outcome, error_dict, run_visit, try_inline
from ..core import tracing
from ..core.context import OUTPUTS_PREFIX, NodeContext, RunEnv, resolve_inputs
from ..core.errors import FlownbError
from ..core.graph import CNode, Graph, compile_graph, select_edges
from ..core.jsondata import encode_node_data
from ..core.registry import Registry
from ..core.transforms import transformed_input
from ..engine.waiting import WaitRequest
from .bundles import meta_bundle
from .jobs import enqueue_items
from .keys import lease_member
from .async_store import AsyncStore, EventSink
from .loop_io import LoopIO
from .lost_reply import CommitsInFlight, take_up_lost_successor
from .quick import QuickNodes
from .reads import Reader, resolver
from .store import RedisStore, dumps, loads
from .waiting import park
from .children import resume_parent, start_children
from .runs import _NO_INPUT, Incapable, Next, _BundleRegistry, _err, _preview, _Run, _storable  # noqa: F401 - Incapable re-exported
from .transient import RedisPatience, is_transient_redis_error  # noqa: F401 - re-exported

if TYPE_CHECKING:
    import concurrent.futures

    import rq


log = logging.getLogger("flownb.worker")


#: a sync node type runs on the loop thread itself (no thread hop) only while its visits take
#: less than this on average: a slow one would hold up the visits arriving meanwhile
#: (``FLOWNB_WORKER_INLINE_MAX_S``; 0 turns the fast path off)
INLINE_MAX_S = float(os.environ.get("FLOWNB_WORKER_INLINE_MAX_S", "0.01"))
#: ... and, while other visits are in flight, only while they take less than this: the pool's
#: thread hop costs the loop about as much (a fan-out's no-op branches ran 14% of the loop
#: thread in it), and the others wait at most this long (``FLOWNB_WORKER_INLINE_BUSY_MAX_S``)
INLINE_BUSY_MAX_S = float(os.environ.get("FLOWNB_WORKER_INLINE_BUSY_MAX_S", "0.002"))


def _no_conditions(name: str) -> Any:  # a node without edge conditions resolves no name
    raise AssertionError(f"condition name {name!r} resolved for a node without conditions")


class NodeRunner(LoopIO, RedisPatience):
    """The per-process side of node visits: stores, compiled graphs, the leases held."""

    store: RedisStore
    queue: rq.Queue
    name: str
    registry: Registry
    pool: concurrent.futures.Executor | None

    def _init_runner(self) -> None:
        self.runs: OrderedDict[str, _Run] = OrderedDict()
        self.graphs: dict[tuple[str, str], Graph] = {}
        self.running: dict[str, str] = {}  # lease member -> run id (held or in flight)
        self.executing: set[str] = set()  # lease members a visit here is running
        self.nodes_done = 0
        self.current: str | None = None
        self.costs = QuickNodes()  # learnt visit seconds: which sync visits run on the loop
        self.inline_visits = 0  # visits run on the loop thread (published in the worker info)
        self.redis_errors = 0  # store calls Redis refused (published with the last one)
        self.last_redis_error = ""
        self._astore: AsyncStore | None = None
        self._events: EventSink | None = None
        self._read_keys: dict[tuple[str, str], list[str]] = {}  # (digest, node) -> fields
        self._commits = CommitsInFlight()  # COMMITs awaiting their reply, per run (.lost_reply)

    def alone(self) -> bool:
        """Whether the visit asking is the only one in flight (a runtime with slots says)."""
        return True

    async def _attempt(self, run: _Run, cn: CNode, ctx: NodeContext) -> Outcome:
        """Run the visit by the attempt policy; on the loop thread itself when it can be cheap.

        Why: a thread hop costs two wake-ups per node, which on a busy machine is most of a
        no-op hop (0.3 ms became 1-7 ms). So a sync node without a timeout runs right here
        when it is the only visit in flight (nothing waits on the loop meanwhile) and its type
        is known to be quick (:data:`INLINE_MAX_S`, learnt from its earlier visits, the first
        one through the pool), or, with other visits in flight, very quick for its type and
        params (:data:`INLINE_BUSY_MAX_S`: a fan-out's branches); otherwise it goes to the
        thread pool like every other visit."""
        if cn.inline_ok and self.costs.quick(cn, self.alone(), INLINE_MAX_S, INLINE_BUSY_MAX_S):
            if ctx.cancelled:
                return Outcome(cn.id, cancelled=True)
            t0 = time.perf_counter()
            ok, res = try_inline(cn, ctx, WORKER_ERRORS)
            self.inline_visits += 1
            if ok:
                dt = time.perf_counter() - t0
                self.costs.learn(cn, dt)
                return Outcome(cn.id, result=res, attempts=1, writes=ctx._writes, duration_s=dt)
            return await run_visit(cn, ctx, nodes=run.graph.nodes, resume=res, pool=self.pool,
                                   emit=self._policy_emitter(run.run_id), run_id=run.run_id)
        out = await run_visit(cn, ctx, nodes=run.graph.nodes, emit=self._policy_emitter(run.run_id),
                              run_id=run.run_id, pool=self.pool)
        if cn.inline_ok and out.ok and out.attempts == 1 and out.replaced is None:
            self.costs.learn(cn, out.duration_s)
        return out

    # -- runs ------------------------------------------------------------------------------------
    async def _run(self, run_id: str) -> _Run | None:
        r = self.runs.get(run_id)
        if r is not None:
            self.runs.move_to_end(run_id)
            return r
        ast = self.astore
        meta = await ast.meta(run_id)
        if not meta:
            log.error("flownb: job for unknown run %r (expired, or another Redis/prefix); skipped", run_id)
            return None
        digest = meta.get("blueprint", "")
        bundle = meta_bundle(meta)  # the b:<id> fields (flownb.distributed.bundles)
        key = (digest, dumps(sorted(bundle.items())))
        graph = self.graphs.get(key)
        reg = self.registry
        if bundle:
            reg = _BundleRegistry(self.registry, {bid: await ast.load_blueprint(d)
                                                  for bid, d in bundle.items()})
        if graph is None:
            try:
                bp = await ast.load_blueprint(digest)
                missing = sorted({n.uses for n in bp.nodes if n.uses not in ("subflow", "map")
                                  and n.uses not in reg})
                if missing:
                    raise Incapable(missing, f"worker {self.name} has no node type(s) "
                                    f"{', '.join(map(repr, missing))} (module not imported there)")
                graph = compile_graph(bp, reg)
            except FlownbError as exc:
                problems = getattr(exc, "problems", None) or []
                node_id = exc.node_id or next((p.node_id for p in problems if p.node_id), None)
                detail = "; ".join(str(p) for p in problems) if problems else exc.message
                err = {"node_id": node_id, "run_id": run_id, "attempt": 1,
                       "type": type(exc).__name__,
                       "message": f"worker {self.name} cannot run blueprint "
                                  f"{meta.get('blueprint_id', '')!r}: {detail}", "traceback": ""}
                log.error("flownb: run %s: %s", run_id, err["message"])
                await self._afail(run_id, digest, err)
                return None
            self.graphs[key] = graph
        r = _Run(run_id, digest, graph, reg, bundle, loads(meta.get("input_keys") or "[]") or [],
                 trace=loads(meta.get("trace") or "null", what="trace context") or None)
        self.runs[run_id] = r
        if len(self.runs) > 512:
            self.runs.popitem(last=False)
        return r

    # -- one item --------------------------------------------------------------------------------
    async def visit(self, run_id: str, node: str, visit: int) -> None:
        """Claim one queued item and run it, then each successor its commit claims inline."""
        self._sink()
        run = await self._run(run_id)
        if run is None:
            return
        tr = tracing.TRACER
        if tr is not None:  # continue the trace the run was submitted in
            with tr.resume(run.trace or tracing.run_carrier(run_id)):
                return await self._visit(run, node, visit)
        return await self._visit(run, node, visit)

    async def _visit(self, run: _Run, node: str, visit: int) -> None:
        run_id = run.run_id
        if node not in run.graph.nodes:
            await self._failed(run_id, run.digest, {
                "node_id": node, "run_id": run_id, "attempt": 1, "type": "UnknownNode",
                "message": f"job names node {node!r}, which blueprint {run.graph.blueprint.id!r} "
                           "does not have", "traceback": ""})
            return
        res = await self._stored("claim", self.astore.claim, run_id, run.digest, node, visit,
                                 self.name)
        kind = res.get("r")
        if kind == "create":
            await self._start_children(run, run.graph.nodes[node], visit, res.get("item") or {})
            return
        if kind == "busy":
            res = await self._own_claim(run_id, node, visit) or res
            kind = res.get("r")
        if kind != "ok":
            return
        await self._run_claimed(run, (node, visit, res["item"], _NO_INPUT))

    async def _run_claimed(self, run: _Run, nxt: Next) -> None:
        """Run a claimed item, then each successor its commit claims inline."""
        run_id = run.run_id
        while nxt is not None:
            node, visit = nxt[0], nxt[1]
            member = lease_member(run_id, node, visit)
            self.running[member] = run_id
            self.executing.add(member)
            try:
                nxt = await self._execute(run, *nxt)
            except Exception as exc:  # noqa: BLE001 - must end this node, never orphan it
                await self.fail_visit(run, node, exc, traceback.format_exc())
                nxt = None
            finally:
                self.executing.discard(member)
                self.running.pop(member, None)

    async def _own_claim(self, run_id: str, node: str, visit: int) -> dict[str, Any] | None:
        """The claim of an item that is already this worker's but that no visit here runs: the
        reply of an earlier CLAIM was lost (the connection dropped after Redis ran it). Left
        alone it would be stuck for ever, as the reaper spares a live worker's items."""
        if lease_member(run_id, node, visit) in self.executing:
            return None  # a duplicate job of an item running here
        item = await self._stored("read a claimed item", self.astore.pending_item, run_id, node,
                                  visit)  # given up here, the item would be stuck as well
        if isinstance(item, dict) and item.get("st") == "r" and item.get("w") == self.name:
            log.warning("flownb worker %s: taking up %s|%s of run %s, claimed by this worker "
                        "earlier (a lost reply)", self.name, node, visit, run_id)
            return {"r": "ok", "item": item}
        return None

    async def fail_visit(self, run: _Run, node: str, exc: BaseException, tb: str) -> None:
        """Fail the node of a visit that broke outside the node body (commit, Redis, encoding)."""
        err = {**error_dict(node, 1, exc, tb), "run_id": run.run_id}
        log.error("flownb: run %s node %s: %s: %s", run.run_id, node, err["type"], err["message"])
        try:
            await self._failed(run.run_id, run.digest, err, event={"attempt": 1, "error": err})
        except Exception as exc2:  # noqa: BLE001 - the worker is stopping with Redis away
            log.error("flownb: could not record the failure of %s/%s (%s); the worker is "
                      "stopping, so the node is re-run elsewhere", run.run_id, node, exc2)

    async def _failed(self, run_id: str, digest: str, err: dict[str, Any], **kw: Any) -> None:
        await self._stored("record a failure", self._afail, run_id, digest, err, **kw)

    async def _execute(self, run: _Run, node: str, visit: int, item: dict[str, Any],
                       carried: Any) -> Next:
        cn = run.graph.nodes[node]
        st = self.store
        if int(item.get("dc") or 1) > st.settings.max_deliveries:
            await self._failed(run.run_id, run.digest, {
                "node_id": node, "run_id": run.run_id, "attempt": int(item.get("dc") or 1),
                "type": "WorkerLost", "message": f"the worker running this node was lost "
                f"{int(item['dc']) - 1} times (killed or stalled); giving up", "traceback": ""})
            return None
        if item.get("k") == "resume":
            return await self._resume(run, cn, visit, item)
        reader = Reader(st, run.run_id)
        check = carried is _NO_INPUT and not cn.structural  # cancelled while the item waited?
        try:
            input_, status = await self._ainput(run, cn, item, reader, carried, check)
            if cn.transforms is not None:
                input_ = transformed_input(cn, list(item.get("s") or []), input_, reader)
        except FlownbError as exc:
            await self._failed(run.run_id, run.digest, _err(node, run.run_id, exc))
            return None
        if cn.structural:
            await self._start_children(run, cn, visit, item, input_)
            return None
        if check and (status if status is not None else await self.astore.status(run.run_id)) != "running":
            return None  # cancelled while this item waited: no node body starts after cancel()
        if carried is _NO_INPUT:  # running now: a run retried after it ended runs again
            run.cancelled = False  # (the heartbeat set the flag when it ended; run controls)
        self.current = f"{run.run_id}:{node}"
        started = time.time()
        env = RunEnv(run.run_id, reader, self._emitter(run.run_id), lambda: run.cancelled,
                     run.graph.blueprint.id, lambda: st.state_keys(run.run_id), self.name)
        ctx = NodeContext(input_, cn.params, node, visit, env)
        out = await self._attempt(run, cn, ctx)
        if out.cancelled:
            return None
        common = {"worker": self.name, "started_at": started, "finished_at": time.time()}
        if out.error is not None:
            culprit = run.graph.nodes[out.node_id]
            stats = {"status": "failed", "attempts": out.attempts, "error": out.error["message"],
                     "duration_s": out.duration_s, **common}
            await self._failed(run.run_id, run.digest, out.error, stats=stats,
                       event={"attempt": out.attempts, "error": out.error}, node=culprit.id)
            return None
        writes = dict(out.writes)
        attempts = out.attempts
        replaced_by = ""
        if out.replaced is not None:
            replaced_by = out.node_id
            writes[OUTPUTS_PREFIX + out.node_id] = out.output
            await self.astore.set_node_stats(run.run_id, out.node_id, dumps({
                "status": "succeeded", "visits": visit, "attempts": out.attempts,
                "duration_s": out.duration_s, **common}))
            attempts = out.replaced.attempts
        return await self._commit(run, cn, visit, input_, out.output, out.action, writes,
                            {"status": "failed" if replaced_by else "succeeded", "visits": visit,
                             "attempts": attempts, "duration_s": out.duration_s + (out.replaced.duration_s if out.replaced else 0.0),
                             **common,
                             **({"error": f"replaced by fallback {replaced_by!r}"} if replaced_by else {})},
                            event_node=replaced_by)

    async def _commit(self, run: _Run, cn: CNode, visit: int, input_: Any, output: Any,
                action: str | None, writes: Mapping[str, Any], stats: dict[str, Any],
                event_node: str = "", inline: bool = True) -> Next:
        """COMMIT the visit; ``inline``: claim a single successor for this worker and return it
        (the caller must run it); without, every successor is queued as an RQ job."""
        st = self.store
        try:
            if type(output) is WaitRequest:  # the node asks a person: park, hold no worker
                await self._flush_events()  # its events before the wait's
                park(st, run.run_id, run.digest, cn, visit, input_, output, worker=self.name)
                return None
            # the in-process rule too; a lone surrogate cannot be stored: say so, do not crash I/O
            output_json = encode_node_data(output, writes, utf8=True)
            taken = select_edges(cn, action, resolver(st, run.run_id, output, action, input_,
                                                      writes, node_id=cn.id)
                                 if cn.has_conditions else _no_conditions) if cn.out else set()
        except UnicodeEncodeError as exc:
            raise FlownbError(f"the output or a state write of node {cn.id!r} cannot be stored "
                              f"(not valid UTF-8: {exc.reason} at position {exc.start}); clean "
                              "the text (e.g. .encode('utf-8', 'replace').decode())",
                              node_id=cn.id, run_id=run.run_id) from None
        except FlownbError as exc:
            await self._failed(run.run_id, run.digest, _err(cn.id, run.run_id, exc))
            return None
        event = {"visit": visit, "attempt": stats.get("attempts", 1),
                 "duration_s": stats.get("duration_s", 0.0), "action": action,
                 "worker": self.name, "output": _preview(output)}
        await self._flush_events()
        with self._commits.of(run.run_id):
            res = await self._stored("commit", self.astore.commit, run.run_id, run.digest, cn.id,
                                     visit, output_json=output_json, taken=taken, stats=stats,
                                     event=event, writes=writes, claim_for=self.name if inline else "",
                                     event_node=event_node)
        self.nodes_done += 1
        if res.get("r") == "dup":  # maybe our own COMMIT, its reply lost (see .lost_reply)
            lost = await take_up_lost_successor(self.astore, self._stored, self._commits,
                                                self.running, self.name, run.run_id, cn)
            return None if lost is None else (*lost, _NO_INPUT)
        if res.get("r") != "ok":
            return None
        if res.get("ready"):
            await self._stored("queue jobs", self._enqueue, run.run_id, res["ready"])
        if res.get("parent"):
            prun, pnode, pvisit = res["parent"]
            await self._stored("queue jobs", self._enqueue_here, prun, [[pnode, pvisit]])
        claimed = res.get("claimed")
        if claimed:
            n, v, item = claimed
            return str(n), int(v), item, output_json
        return None

    def _fail(self, run_id: str, digest: str, err: dict[str, Any], *,
              stats: dict[str, Any] | None = None, event: dict[str, Any] | None = None,
              node: str | None = None) -> None:
        err, stats, event = _storable(err), _storable(stats), _storable(event)
        res = self.store.fail(run_id, digest, node or err.get("node_id") or "", err, stats=stats,
                              event=event)
        if res.get("parent"):
            prun, pnode, pvisit = res["parent"]
            enqueue_items(self.queue, prun, [[pnode, pvisit]], keys=self.store.keys)

    def _emitter(self, run_id: str) -> Callable[[str, str, dict[str, Any]], None]:
        def emit(node: str, name: str, data: dict[str, Any]) -> None:
            self._add_event(run_id, "custom", node, {"name": name, **data})

        return emit

    def _policy_emitter(self, run_id: str) -> Callable[[str, str, dict[str, Any]], None]:
        def emit(type_: str, node: str, data: dict[str, Any]) -> None:
            if type_ == "node_started":
                data = {**data, "worker": self.name}
            self._add_event(run_id, type_, node, data)

        return emit

    def _input(self, run: _Run, cn: CNode, item: dict[str, Any], reader: Reader, carried: Any) -> Any:
        if cn.spec.inputs is not None:
            return resolve_inputs(cn.spec.inputs, reader)
        src = item.get("s")
        sources = list(src) if isinstance(src, list) else []
        if not sources:
            return self.store.state_many(run.run_id, run.input_keys)
        if len(sources) == 1 and (cn.n_fwd_in <= 1 or cn.join == "any"):
            if carried is not _NO_INPUT:
                return loads(carried)
            return reader.get_output(sources[0])
        vals = self.store.state_many(run.run_id, [OUTPUTS_PREFIX + s for s in sources])
        return {s: vals.get(OUTPUTS_PREFIX + s) for s in sources}

    # -- subflow and map: child runs whose nodes are jobs like any other (flownb.distributed.children)
    async def _start_children(self, run: _Run, cn: CNode, visit: int, item: dict[str, Any],
                              input_: Any = None) -> None:
        tr = tracing.TRACER
        if tr is None:
            return await start_children(self, run, cn, visit, item, input_)
        with tr.visit(run.run_id, run.graph.blueprint.id, cn.id, cn.uses, visit,
                      worker=self.name) as span:  # the child runs' spans nest under this one
            span.set("flownb.node.status", "started-children")
            await start_children(self, run, cn, visit, item, input_)

    async def _resume(self, run: _Run, cn: CNode, visit: int, item: dict[str, Any]) -> Next:
        return await resume_parent(self, run, cn, visit, item)
