"""flownb workers: RQ workers that execute node visits and commit them atomically.

Lifecycle of one item (a node visit), see also :mod:`.scripts`::

    queued (pending entry + lease)  --CLAIM-->  running (lease renewed by heartbeat)
        --COMMIT--> done; successors queued (or the single one claimed inline)
        --FAIL-->   run failed
    worker killed: the lease expires -> the reaper re-queues -> another worker CLAIMs (delivery + 1)

Why a subclass of RQ's ``SimpleWorker``: RQ gives the worker lifecycle, registries, the queue, the
death penalty and the CLI conventions; flownb adds the lease heartbeat and the reaper, which
bound crash detection to ``lease_ttl_s`` (RQ's own abandoned-job check runs every ~10 minutes).
``SimpleWorker`` runs jobs in-process: no fork per job (17 ms per hop with forking on our
machines), and safe inside a multi-threaded notebook kernel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import builtins
from ..blueprint import Blueprint
from ..context import OUTPUTS_PREFIX, NodeContext, RunEnv, resolve_inputs
from ..errors import FlownbError, NodeTimeout
from ..graph import CNode, Graph, compile_graph, select_edges
from ..registry import Registry, Result, default_registry
from .jobs import enqueue_items, make_queue
from .keys import lease_member
from .store import RedisStore, StoreSettings, dumps, loads

if TYPE_CHECKING:
    import redis
    import rq

log = logging.getLogger("flownb.worker")


class _Failure(Exception):
    def __init__(self, node_id: str, attempt: int, exc: BaseException, tb: str) -> None:
        super().__init__(str(exc))
        self.node_id = node_id
        self.attempt = attempt
        self.exc = exc
        self.tb = tb

    def error(self, run_id: str) -> dict[str, Any]:
        exc = self.exc
        msg = exc.message if isinstance(exc, FlownbError) else str(exc)
        return {"node_id": self.node_id, "run_id": run_id, "attempt": self.attempt,
                "type": type(exc).__name__, "message": msg or type(exc).__name__,
                "traceback": self.tb}


class _NodeTimeoutSignal(BaseException):
    """Raised into a node by the death penalty; BaseException so user code rarely swallows it."""


@dataclass
class _Run:
    run_id: str
    digest: str
    graph: Graph
    registry: Registry
    bundle: dict[str, str]
    input_keys: list[str]
    cancelled: bool = False


class _BundleRegistry(Registry):
    """The worker's registry, with the run's own copies of its subflow blueprints."""

    def __init__(self, base: Registry, blueprints: dict[str, Blueprint]) -> None:
        super().__init__()
        self._base = base
        self._blueprints = dict(blueprints)

    def get(self, name: str, *, node_id: str | None = None) -> Any:
        return self._base.get(name, node_id=node_id)

    def __contains__(self, name: object) -> bool:
        return name in self._base

    def names(self) -> Any:
        return self._base.names()


@dataclass
class WorkerStats:
    jobs: int = 0
    nodes: int = 0
    current: str | None = None
    state: str = "idle"
    started_at: float = field(default_factory=time.time)


class WorkerRuntime:
    """Per-process state shared by the jobs a worker runs: connections, graphs, leases."""

    def __init__(self, conn: redis.Redis, *, name: str, registry: Registry | None = None,
                 prefix: str = "flownb", queue_name: str = "flownb",
                 settings: StoreSettings | None = None, reap_interval_s: float = 1.0,
                 in_main_thread: bool | None = None) -> None:
        self.conn = conn
        self.name = name
        self.registry = registry or default_registry
        self.store = RedisStore(conn, prefix=prefix, settings=settings)
        self.queue: rq.Queue = make_queue(conn, queue_name)
        self.runs: OrderedDict[str, _Run] = OrderedDict()
        self.graphs: dict[tuple[str, str], Graph] = {}
        self.running: dict[str, str] = {}  # lease member -> run id
        self.reap_interval_s = reap_interval_s
        self.stats = WorkerStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.in_main_thread = (threading.current_thread() is threading.main_thread()
                               if in_main_thread is None else in_main_thread)

    # -- background: heartbeat + reaper --------------------------------------------------------------
    def start_background(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._background, name=f"flownb-hb-{self.name}",
                                            daemon=True)
            self._thread.start()

    def stop_background(self) -> None:
        self._stop.set()
        try:
            self.conn.hdel(self.store.keys.workers, self.name)
        except Exception:  # noqa: BLE001 - shutting down
            pass

    def _background(self) -> None:
        beat = max(0.2, self.store.settings.lease_ttl_s / 4)
        next_reap = 0.0
        while not self._stop.wait(min(beat, self.reap_interval_s)):
            try:
                with self._lock:
                    members = list(self.running)
                    runs = set(self.running.values())
                if members:
                    self.store.renew(members)
                    for rid in runs:
                        if self.store.status(rid) != "running":
                            r = self.runs.get(rid)
                            if r is not None:
                                r.cancelled = True
                self.publish_info()
                now = time.monotonic()
                if now >= next_reap:
                    next_reap = now + self.reap_interval_s
                    self.reap()
            except Exception as exc:  # noqa: BLE001 - keep beating through Redis hiccups
                log.warning("flownb worker %s heartbeat: %s", self.name, exc)

    def reap(self) -> int:
        """Re-queue expired items (one worker at a time, guarded by a short lock)."""
        if not self.conn.set(self.store.keys.reaper, self.name, nx=True,
                             px=max(100, int(self.reap_interval_s * 900))):
            return 0
        items = self.store.requeue_expired()
        by_run: dict[str, list[list[Any]]] = {}
        for run_id, node, visit in items:
            by_run.setdefault(run_id, []).append([node, visit])
        for run_id, its in by_run.items():
            log.warning("flownb: re-queueing %d item(s) of run %s whose lease expired: %s",
                        len(its), run_id, its[:5])
            enqueue_items(self.queue, run_id, its, at_front=True)
        return len(items)

    def publish_info(self) -> None:
        st = self.stats
        self.conn.hset(self.store.keys.workers, self.name, dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "state": st.state,
            "current": st.current, "jobs": st.jobs, "nodes": st.nodes, "seen": time.time(),
            "started_at": st.started_at, "queue": self.queue.name}))

    # -- runs ------------------------------------------------------------------------------------
    def _run(self, run_id: str) -> _Run | None:
        r = self.runs.get(run_id)
        if r is not None:
            self.runs.move_to_end(run_id)
            return r
        meta = self.store.meta(run_id)
        if not meta:
            log.error("flownb: job for unknown run %r (expired, or another Redis/prefix); skipped", run_id)
            return None
        digest = meta.get("blueprint", "")
        bundle = loads(meta.get("bundle") or "{}", what="bundle") or {}
        key = (digest, dumps(sorted(bundle.items())))
        graph = self.graphs.get(key)
        reg = self.registry
        if bundle:
            reg = _BundleRegistry(self.registry, {bid: self.store.load_blueprint(d)
                                                  for bid, d in bundle.items()})
        if graph is None:
            try:
                bp = self.store.load_blueprint(digest)
                graph = compile_graph(bp, reg)
            except FlownbError as exc:
                problems = getattr(exc, "problems", None) or []
                node_id = exc.node_id or next((p.node_id for p in problems if p.node_id), None)
                detail = "; ".join(str(p) for p in problems) if problems else exc.message
                err = {"node_id": node_id, "run_id": run_id, "attempt": 1,
                       "type": type(exc).__name__,
                       "message": f"worker {self.name} cannot run blueprint "
                                  f"{meta.get('blueprint_id', '')!r}: {detail}",
                       "traceback": ""}
                log.error("flownb: run %s: %s", run_id, err["message"])
                self._fail(run_id, digest, err)
                return None
            self.graphs[key] = graph
        r = _Run(run_id, digest, graph, reg, bundle, loads(meta.get("input_keys") or "[]") or [])
        self.runs[run_id] = r
        if len(self.runs) > 512:
            self.runs.popitem(last=False)
        return r

    # -- the job -----------------------------------------------------------------------------------
    def process(self, run_id: str, items: list[list[Any]]) -> None:
        self.stats.jobs += 1
        if _MODULE_DIRS:  # notebook-defined node modules: pick up edits before each job
            from ..notebook.modules import before_job

            before_job(self)
        run = self._run(run_id)
        if run is None:
            return
        wanted: list[tuple[str, int]] = []
        for raw_node, raw_visit in items:
            node, visit = str(raw_node), int(raw_visit)
            if node not in run.graph.nodes:
                self._fail(run_id, run.digest, {
                    "node_id": node, "run_id": run_id, "attempt": 1, "type": "UnknownNode",
                    "message": f"job names node {node!r}, which blueprint {run.graph.blueprint.id!r} "
                               "does not have", "traceback": ""})
                continue
            wanted.append((node, visit))
        if not wanted:
            return
        if len(wanted) == 1:
            claims = [{**self.store.claim(run_id, run.digest, *wanted[0], self.name),
                       "node": wanted[0][0], "visit": wanted[0][1]}]
        else:
            claims = self.store.claim_many(run_id, run.digest, wanted, self.name)
            with self._lock:  # the heartbeat keeps the whole batch's leases alive
                for c in claims:
                    if c.get("r") == "ok":
                        self.running[lease_member(run_id, c["node"], c["visit"])] = run_id
        for res in claims:
            node, visit = str(res["node"]), int(res["visit"])
            kind = res.get("r")
            if kind == "create":
                self._start_children(run, run.graph.nodes[node], visit, res.get("item") or {})
                continue
            if kind != "ok":
                continue
            nxt: tuple[str, int, dict[str, Any], Any] | None = (node, visit, res["item"], _NO_INPUT)
            while nxt is not None:
                nxt = self._execute(run, *nxt)

    def _execute(self, run: _Run, node: str, visit: int, item: dict[str, Any],
                 carried: Any) -> tuple[str, int, dict[str, Any], Any] | None:
        cn = run.graph.nodes[node]
        st = self.store
        if int(item.get("dc") or 1) > st.settings.max_deliveries:
            self._fail(run.run_id, run.digest, {
                "node_id": node, "run_id": run.run_id, "attempt": int(item.get("dc") or 1),
                "type": "WorkerLost", "message": f"the worker running this node was lost "
                f"{int(item['dc']) - 1} times (killed or stalled); giving up", "traceback": ""})
            return None
        if item.get("k") == "resume":
            return self._resume(run, cn, visit, item)
        reader = _Reader(st, run.run_id)
        try:
            input_ = self._input(run, cn, item, reader, carried)
        except FlownbError as exc:
            self._fail(run.run_id, run.digest, _err(node, run.run_id, exc))
            return None
        if cn.structural:
            self._start_children(run, cn, visit, item, input_)
            return None
        member = lease_member(run.run_id, node, visit)
        with self._lock:
            self.running[member] = run.run_id
        self.stats.current = f"{run.run_id}:{node}"
        self.stats.state = "busy"
        t0 = time.perf_counter()
        started = time.time()
        env = RunEnv(run.run_id, reader, self._emitter(run.run_id), lambda: run.cancelled,
                     run.graph.blueprint.id, lambda: st.state_keys(run.run_id), self.name)
        ctx = NodeContext(input_, cn.params, node, visit, env)
        writes: dict[str, Any] = {}
        replaced_by = ""
        try:
            res, attempts = self._attempts(run, cn, ctx)
        except _Failure as f:
            if cn.fallback is None:
                self._node_failed(run, cn, f, t0, started)
                return None
            fb = run.graph.nodes[cn.fallback]
            st.add_event(run.run_id, "node_failed", node, {"attempt": f.attempt, "fallback": fb.id,
                                                           "error": f.error(run.run_id)})
            st.add_event(run.run_id, "node_fallback", fb.id, {"replaces": node})
            st.add_event(run.run_id, "node_started", fb.id, {"visit": visit, "attempt": 1,
                                                            "replaces": node, "worker": self.name})
            fctx = NodeContext(input_, fb.params, fb.id, visit, env)
            try:
                res, attempts = self._attempts(run, fb, fctx)
            except _Failure as f2:
                f2.tb += f"\n(fallback of {node!r}, which failed first with {f.error('')['message']})"
                self._node_failed(run, fb, f2, t0, started)
                return None
            ctx._writes = dict(fctx._writes)
            replaced_by = fb.id
            out_fb, _ = _split(res)
            writes[OUTPUTS_PREFIX + fb.id] = out_fb
            st.r.hset(st.keys.nodes(run.run_id), fb.id, dumps({
                "status": "succeeded", "visits": visit, "attempts": attempts, "worker": self.name,
                "duration_s": time.perf_counter() - t0, "started_at": started,
                "finished_at": time.time()}))
        finally:
            with self._lock:
                self.running.pop(member, None)
            self.stats.state = "idle"
            self.stats.current = None
        output, action = _split(res)
        dt = time.perf_counter() - t0
        return self._commit(run, cn, visit, input_, output, action, {**ctx._writes, **writes},
                            {"status": "failed" if replaced_by else "succeeded", "visits": visit,
                             "attempts": attempts, "duration_s": dt, "worker": self.name,
                             "started_at": started, "finished_at": time.time(),
                             **({"error": f"replaced by fallback {replaced_by!r}"} if replaced_by else {})},
                            event_node=replaced_by)

    def _commit(self, run: _Run, cn: CNode, visit: int, input_: Any, output: Any,
                action: str | None, writes: Mapping[str, Any], stats: dict[str, Any],
                event_node: str = "") -> tuple[str, int, dict[str, Any], Any] | None:
        st = self.store
        try:
            output_json = dumps(output)
            taken = select_edges(cn, action, _resolver(st, run.run_id, output, action, input_,
                                                       writes)) if cn.out else set()
        except FlownbError as exc:
            self._fail(run.run_id, run.digest, _err(cn.id, run.run_id, exc))
            return None
        event = {"visit": visit, "attempt": stats.get("attempts", 1),
                 "duration_s": stats.get("duration_s", 0.0), "action": action,
                 "worker": self.name, "output": _preview(output)}
        res = st.commit(run.run_id, run.digest, cn.id, visit, output_json=output_json, taken=taken,
                        stats=stats, event=event, writes=writes, claim_for=self.name,
                        event_node=event_node)
        self.stats.nodes += 1
        if res.get("r") != "ok":
            return None
        if res.get("ready"):
            enqueue_items(self.queue, run.run_id, res["ready"])
        if res.get("parent"):
            prun, pnode, pvisit = res["parent"]
            enqueue_items(self.queue, prun, [[pnode, pvisit]])
        claimed = res.get("claimed")
        if claimed:
            n, v, item = claimed
            return str(n), int(v), item, output_json
        return None

    def _node_failed(self, run: _Run, cn: CNode, f: _Failure, t0: float, started: float) -> None:
        err = f.error(run.run_id)
        stats = {"status": "failed", "attempts": f.attempt, "duration_s": time.perf_counter() - t0,
                 "worker": self.name, "started_at": started, "finished_at": time.time(),
                 "error": err["message"]}
        self._fail(run.run_id, run.digest, err, stats=stats,
                   event={"attempt": f.attempt, "error": err})

    def _fail(self, run_id: str, digest: str, err: dict[str, Any], *,
              stats: dict[str, Any] | None = None, event: dict[str, Any] | None = None) -> None:
        res = self.store.fail(run_id, digest, err.get("node_id") or "", err, stats=stats, event=event)
        if res.get("parent"):
            prun, pnode, pvisit = res["parent"]
            enqueue_items(self.queue, prun, [[pnode, pvisit]])

    # -- node execution ----------------------------------------------------------------------------
    def _attempts(self, run: _Run, cn: CNode, ctx: NodeContext) -> tuple[Any, int]:
        impl = cn.impl
        assert impl is not None
        try:
            prep = self._call(impl.prep, ctx, None) if impl.prep is not None else ctx
        except Exception as exc:  # noqa: BLE001 - user code
            raise _Failure(cn.id, 1, exc, traceback.format_exc()) from None
        attempt = 0
        base = dict(ctx._writes)
        while True:
            attempt += 1
            ctx.attempt = attempt
            if attempt > 1:  # a failed attempt's state writes are discarded
                ctx._writes = dict(base)
            try:
                res = self._call(impl.exec, prep, cn.timeout_s)
                break
            except _NodeTimeoutSignal:
                exc: BaseException = NodeTimeout(f"attempt took longer than timeout_s={cn.timeout_s}",
                                                 node_id=cn.id, run_id=run.run_id, attempt=attempt)
                tb = ""
            except Exception as e:  # noqa: BLE001 - user code
                exc, tb = e, traceback.format_exc()
            if attempt > cn.retries or run.cancelled:
                raise _Failure(cn.id, attempt, exc, tb)
            delay = cn.config.retry_delay(attempt)
            self.store.add_event(run.run_id, "node_retrying", cn.id, {
                "attempt": attempt, "delay_s": delay,
                "error": {"type": type(exc).__name__, "message": str(exc)}})
            if delay:
                time.sleep(delay)
        if impl.post is not None:
            try:
                res = self._call(impl.post, ctx, None, prep, res)
            except Exception as exc2:  # noqa: BLE001 - user code
                raise _Failure(cn.id, attempt, exc2, traceback.format_exc()) from None
        return res, attempt

    def _call(self, fn: Callable[..., Any], arg: Any, timeout: float | None, *more: Any) -> Any:
        if asyncio.iscoroutinefunction(fn):
            loop = self._loop
            if loop is None or loop.is_closed():
                loop = self._loop = asyncio.new_event_loop()
            from ..runtime import _limited, _TimedOut

            try:
                return loop.run_until_complete(_limited(fn(arg, *more), timeout))
            except _TimedOut:
                raise _NodeTimeoutSignal() from None
        if not timeout:
            return fn(arg, *more)
        from rq.timeouts import TimerDeathPenalty

        penalty = _itimer_penalty() if self._main_thread() else TimerDeathPenalty
        with penalty(timeout, _NodeTimeoutSignal):
            return fn(arg, *more)

    def _main_thread(self) -> bool:
        return threading.current_thread() is threading.main_thread()

    def _emitter(self, run_id: str) -> Callable[[str, str, dict[str, Any]], None]:
        def emit(node: str, name: str, data: dict[str, Any]) -> None:
            self.store.add_event(run_id, "custom", node, {"name": name, **data})

        return emit

    def _input(self, run: _Run, cn: CNode, item: dict[str, Any], reader: _Reader, carried: Any) -> Any:
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

    # -- subflow and map: child runs whose nodes are jobs like any other -----------------------------
    def _start_children(self, run: _Run, cn: CNode, visit: int, item: dict[str, Any],
                        input_: Any = None) -> None:
        st = self.store
        reader = _Reader(st, run.run_id)
        try:
            if input_ is None:
                input_ = self._input(run, cn, item, reader, _NO_INPUT)
            if cn.uses == "subflow":
                bp = run.registry.get_blueprint(builtins.subflow_blueprint_id(cn), node_id=cn.id)
                child_inputs = [builtins.subflow_inputs(cn.params, input_, reader)]
            else:
                plan = builtins.map_plan(cn, input_, reader, run.registry)
                bp, child_inputs = plan.blueprint, plan.inputs
            graph = compile_graph(bp, run.registry)
        except FlownbError as exc:
            self._fail(run.run_id, run.digest, _err(cn.id, run.run_id, exc))
            return
        base = f"{run.run_id}.{cn.id}.{visit}"
        child_ids = [f"{base}.{i}" for i in range(len(child_inputs))]
        if not child_ids:
            self._commit(run, cn, visit, input_, [], None, {}, {"status": "succeeded", "visits": visit,
                                                               "attempts": 1, "worker": self.name})
            return
        st.wait_children(run.run_id, run.digest, cn.id, visit, child_ids)
        st.add_event(run.run_id, "custom", cn.id, {"name": "children", "count": len(child_ids),
                                                   "blueprint_id": bp.id})
        parent = f"{run.run_id}|{cn.id}|{visit}"
        for cid, inputs in zip(child_ids, child_inputs):
            try:
                ready = st.start_run(cid, bp, graph, inputs, parent=parent, bundle=run.bundle)
            except FlownbError as exc:
                if "already exists" in exc.message:
                    continue
                self._fail(run.run_id, run.digest, _err(cn.id, run.run_id, exc))
                return
            enqueue_items(self.queue, cid, [list(x) for x in ready])
        self.conn.zrem(st.keys.leases, lease_member(run.run_id, cn.id, visit))

    def _resume(self, run: _Run, cn: CNode, visit: int, item: dict[str, Any]) -> Any:
        st = self.store
        children = list(item.get("ch") or [])
        if item.get("cf"):
            child = st.load_result(str(item["cf"]))
            cerr = child.error or {}
            err = {"node_id": cn.id, "run_id": run.run_id, "attempt": 1, "type": "ChildRunFailed",
                   "message": f"child run {child.run_id} {child.status}: node "
                              f"{cerr.get('node_id')!r} {cerr.get('type', '')}: {cerr.get('message', '')}",
                   "traceback": cerr.get("traceback", "")}
            self._fail(run.run_id, run.digest, err, event={"attempt": 1, "error": err})
            return None
        results = [st.load_result(c) for c in children]
        writes: dict[str, Any] = {}
        if cn.uses == "subflow":
            output = results[0].output
            writes = builtins.subflow_outputs(cn.params, results[0])
        else:
            output = [r.output for r in results]
        started = min((r.started_at for r in results), default=time.time())
        return self._commit(run, cn, visit, None, output, None, writes, {
            "status": "succeeded", "visits": visit, "attempts": 1, "worker": self.name,
            "duration_s": max(0.0, time.time() - started), "finished_at": time.time()})


_NO_INPUT = object()
_PENALTY: Any = None
#: set by LocalCluster for workers that serve modules written from notebook cells
_MODULE_DIRS = os.environ.get("FLOWNB_MODULE_PATH", "")


def _itimer_penalty() -> Any:
    """RQ's SIGALRM death penalty, with ``setitimer`` so ``timeout_s`` may be fractional
    (``signal.alarm`` takes whole seconds). SIGALRM interrupts blocking calls such as
    ``time.sleep`` too, which a timer thread cannot."""
    global _PENALTY
    if _PENALTY is None:
        import signal

        from rq.timeouts import UnixSignalDeathPenalty

        class ITimerDeathPenalty(UnixSignalDeathPenalty):  # type: ignore[misc]
            def setup_death_penalty(self) -> None:
                signal.signal(signal.SIGALRM, self.handle_death_penalty)
                signal.setitimer(signal.ITIMER_REAL, float(self._timeout))

            def cancel_death_penalty(self) -> None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)

        _PENALTY = ITimerDeathPenalty
    return _PENALTY


class _Reader:
    """Lazy, cached reads of a run's state fields (a node pays only for what it touches)."""

    __slots__ = ("store", "run_id", "cache")

    def __init__(self, store: RedisStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.cache: dict[str, Any] = {}

    def __call__(self, key: str) -> Any:
        if key in self.cache:
            v = self.cache[key]
            if v is _ABSENT:
                raise KeyError(key)
            return v
        try:
            v = self.store.state_get(self.run_id, key)
        except KeyError:
            self.cache[key] = _ABSENT
            raise
        self.cache[key] = v
        return v

    def get_output(self, node: str) -> Any:
        try:
            return self(OUTPUTS_PREFIX + node)
        except KeyError:
            return None


_ABSENT = object()


class _LazyState(Mapping[str, Any]):
    """``state`` in conditions: fields fetched on first use."""

    def __init__(self, reader: _Reader, writes: Mapping[str, Any]) -> None:
        self._r = reader
        self._w = writes

    def __getitem__(self, k: str) -> Any:
        if k in self._w:
            return self._w[k]
        if k == "_outputs":
            return _LazyOutputs(self._r)
        return self._r(k)

    def __iter__(self) -> Iterator[str]:
        return iter(self._r.store.state_keys(self._r.run_id))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _LazyOutputs(Mapping[str, Any]):
    def __init__(self, reader: _Reader) -> None:
        self._r = reader

    def __getitem__(self, k: str) -> Any:
        return self._r(OUTPUTS_PREFIX + k)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _resolver(store: RedisStore, run_id: str, output: Any, action: str | None, input_: Any,
              writes: Mapping[str, Any]) -> Callable[[str], Any]:
    reader = _Reader(store, run_id)
    state = _LazyState(reader, writes)

    def resolve(name: str) -> Any:
        if name == "result":
            return {"output": output, "action": action}
        if name == "output":
            return output
        if name == "action":
            return action
        if name in ("state", "context"):
            return state
        if name == "outputs":
            return _LazyOutputs(reader)
        if name == "input":
            return input_
        try:
            return state[name]
        except KeyError:
            return reader(OUTPUTS_PREFIX + name)

    return resolve


def _split(res: Any) -> tuple[Any, str | None]:
    if type(res) is Result:
        return res.output, res.action
    return res, None


def _err(node: str, run_id: str, exc: FlownbError) -> dict[str, Any]:
    return {"node_id": exc.node_id or node, "run_id": run_id, "attempt": 1,
            "type": type(exc).__name__, "message": exc.message, "traceback": ""}


def _preview(value: Any, limit: int = 200) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the RQ side -----------------------------------------------------------------------------------------

_runtime: WorkerRuntime | None = None
_runtimes: dict[int, WorkerRuntime] = {}


def current_runtime() -> WorkerRuntime:
    """The runtime of the worker executing this job (per thread, for in-kernel thread workers)."""
    rt = _runtimes.get(threading.get_ident()) or _runtime
    if rt is None:
        from rq import get_current_job

        job = get_current_job()
        if job is None:
            raise FlownbError("flownb.distributed.worker.process must run inside an RQ job")
        rt = WorkerRuntime(job.connection, name=f"rq-{os.getpid()}")
        rt.start_background()
        _runtimes[threading.get_ident()] = rt
    return rt


def process(run_id: str, items: list[list[Any]]) -> None:
    """The RQ job: execute these ready items of one run (JSON arguments only)."""
    current_runtime().process(run_id, items)


def make_worker(conn: redis.Redis, *, name: str | None = None, queue_name: str = "flownb",
                prefix: str = "flownb", registry: Registry | None = None,
                settings: StoreSettings | None = None, reap_interval_s: float = 1.0) -> Any:
    """An RQ ``SimpleWorker`` wired to a :class:`WorkerRuntime` (works off the main thread too)."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    class FlownbWorker(SimpleWorker):  # type: ignore[misc]
        def _install_signal_handlers(self) -> None:
            if threading.current_thread() is threading.main_thread():
                super()._install_signal_handlers()

        def work(self, *args: Any, **kwargs: Any) -> bool:
            if threading.current_thread() is not threading.main_thread():
                from rq.timeouts import TimerDeathPenalty

                self.death_penalty_class = TimerDeathPenalty  # SIGALRM is main-thread only
            _runtimes[threading.get_ident()] = self.flownb
            self.flownb.start_background()
            try:
                return bool(super().work(*args, **kwargs))
            finally:
                self.flownb.stop_background()
                _runtimes.pop(threading.get_ident(), None)

    wname = name or f"flownb-{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10000}"
    worker = FlownbWorker([make_queue(conn, queue_name)], connection=conn, name=wname,
                          serializer=JSONSerializer, worker_ttl=17)
    worker.flownb = WorkerRuntime(conn, name=wname, registry=registry, prefix=prefix,
                                  queue_name=queue_name, settings=settings,
                                  reap_interval_s=reap_interval_s)
    return worker
