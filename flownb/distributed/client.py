"""The client of the distributed executor: submit, wait, follow, cancel, re-attach.

``submit`` returns at once with a :class:`RunHandle`; waiting uses a blocking ``XREAD`` on the
run's event stream, so no client polls. The handle holds nothing but the run id and a
connection, which is why :func:`attach` from another process or kernel gives the same object.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..core.blueprint import Blueprint
from ..core.display import RunView, view
from ..core.errors import ExecutorError, RunTimeout
from ..core.events import Event
from ..core.graph import analyse
from ..core.inputs import as_inputs
from ..core.lint_gate import check as check_lint
from ..core.registry import Registry, default_registry
from ..core.result import RunResult
from .controls import HandleControls, run_status
from .jobs import MAX_JOBS_PER_FANOUT, enqueue_items, make_queue
from .preflight import main_defined_error, main_defined_nodes
from .run_ids import check_run_id
from .settings import RedisSettings, check_server, mask_url, redis_errors
from .store import GONE, RedisStore, StoreSettings

if TYPE_CHECKING:
    import redis


def _connect(redis_: str | RedisSettings | redis.Redis | None) -> tuple[redis.Redis, str]:
    if redis_ is None or isinstance(redis_, str):
        settings = RedisSettings.from_url(redis_)
        url = settings.resolved_url()
        client = RedisSettings.from_url(url).connect()
        return client, url
    if isinstance(redis_, RedisSettings):
        return redis_.connect(), redis_.resolved_url()
    kw = redis_.connection_pool.connection_kwargs
    url = f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}" if "host" in kw \
        else f"unix://{kw.get('path', '?')}?db={kw.get('db', 0)}"
    return redis_, url


#: a run's start items are queued in jobs of up to this many: a job's items run side by side on
#: one worker's loop, and each job costs three Redis commands to queue (and more to take), so a
#: submit of an agent with three parallel checks queues one job, not three
START_ITEMS_PER_JOB = 4
#: a worker whose heartbeat (``{p}:workers``) is older than this is not counted as live
LIVE_WORKER_S = 30.0
#: submit checks for live workers at most this often (it costs two round trips)
WORKER_CHECK_S = 5.0
_TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")


class NoWorkersWarning(UserWarning):
    """A run was submitted to a queue no live worker serves: it waits until one starts."""


class DistributedExecutor:
    """Runs blueprints on Redis with RQ workers (start them with ``flownb worker`` or a
    :class:`~flownb.notebook.LocalCluster`). With ``redis=None`` it uses ``FLOWNB_REDIS_URL`` /
    ``REDIS_URL``, else a private embedded ``redis-server``."""

    def __init__(self, redis: str | RedisSettings | Any | None = None, *,
                 registry: Registry | None = None, prefix: str = "flownb",
                 queue_name: str = "flownb", settings: StoreSettings | None = None,
                 check: bool = True) -> None:
        self.conn, self.url = _connect(redis)
        if check:
            check_server(self.conn)
        self.registry = registry or default_registry
        self.prefix = prefix
        self.queue_name = queue_name
        self.store = RedisStore(self.conn, prefix=prefix, settings=settings)
        self.queue = make_queue(self.conn, queue_name)
        self._live_cache: tuple[float, list[tuple[str, int]]] = (0.0, [])

    def __repr__(self) -> str:
        return f"<DistributedExecutor {mask_url(self.url)} queue={self.queue_name!r}>"

    def _redis(self, what: str, run_id: str | None = None) -> Any:
        return redis_errors(self.conn, what, run_id=run_id)

    # -- submit -------------------------------------------------------------------------------------
    def submit(self, blueprint: Blueprint | Mapping[str, Any] | str,
               inputs: Mapping[str, Any] | None = None, *, run_id: str | None = None,
               strict: bool | None = True, history: bool = False) -> RunHandle:
        """Store the blueprint and inputs, queue the start nodes, return immediately.

        ``history=True`` records every committed step in the run's history stream (and its
        subflow/map child runs' too), as ``flownb.run(..., history=True)`` does in process: what
        ``handle.history()``, :func:`flownb.fork` and the ``updates``/``values`` stream modes
        read. Off by default: it is a Redis write per step and most of a finished run's memory.

        Lint runs first, as for :func:`flownb.run` (``strict``), except that node types need not
        be registered here. Refuses node types defined in ``__main__`` (a script or a notebook
        cell) unless every live worker is a thread of this process, and warns
        (:class:`NoWorkersWarning`) when no live worker serves the queue."""
        inputs = as_inputs(inputs)
        bp = check_lint(blueprint, self.registry, inputs, strict=strict, on_workers=True)
        run_id = uuid.uuid4().hex[:12] if run_id is None else check_run_id(run_id)
        with self._redis(f"submitting blueprint {bp.id!r}", run_id):
            live = self._live_worker_pids()
            self._check_importable(bp, live)
            bundle = self._bundle(bp)
            graph = bp._cache.get("analysed")
            if graph is None:
                graph = bp._cache["analysed"] = analyse(bp)[0]
            ready = self.store.start_run(run_id, bp, graph, inputs, bundle=bundle, history=history)
            enqueue_items(self.queue, run_id, [list(x) for x in ready], keys=self.store.keys,
                          ttl_s=self.store.settings.result_ttl_s,
                          max_jobs=min(MAX_JOBS_PER_FANOUT, -(-len(ready) // START_ITEMS_PER_JOB)))
        if not live:
            warnings.warn(f"run {run_id}: {self.no_workers_hint()}", NoWorkersWarning, stacklevel=2)
        return RunHandle(self, run_id, bp, status="running")

    def _check_importable(self, bp: Blueprint, live: list[tuple[str, int]]) -> None:
        """Node types from ``__main__`` reach no worker process: one error naming all of them."""
        here = (socket.gethostname(), os.getpid())
        if live and all(w == here for w in live):
            return  # every live worker is a thread of this process: it sees __main__
        key = ("main-defined", id(self.registry), self.registry.version)
        found = bp._cache.get(key)
        if found is None:
            found = bp._cache[key] = main_defined_nodes(bp, self.registry)
        if found:
            raise main_defined_error(bp, found)

    def _live_worker_pids(self) -> list[tuple[str, int]]:
        """(host, pid) of the live workers serving this queue; a non-empty answer is reused for
        a few seconds (submitting many runs must not cost two more round trips each)."""
        at, cached = self._live_cache
        if cached and time.monotonic() - at < WORKER_CHECK_S:
            return cached
        live = [(str(i.get("host", "")), int(i.get("pid", 0))) for i in self.live_workers().values()]
        self._live_cache = (time.monotonic(), live)
        return live

    def live_workers(self) -> dict[str, dict[str, Any]]:
        """Workers serving this executor's queue that are alive (name -> info with host, pid).

        flownb's heartbeat thread writes ``{p}:workers`` (with the queue it serves) every
        ``lease_ttl_s / 4``, even while a node runs; a worker killed with SIGKILL stops writing and
        drops out after ``LIVE_WORKER_S``. A worker that just started is known to RQ (its
        ``rq:workers:<queue>`` set and its ``rq:worker:<name>`` hash, which expires ~17 s after
        its last RQ heartbeat) before its first flownb heartbeat, so both are consulted."""
        from rq.worker_registration import WORKERS_BY_QUEUE_KEY

        out: dict[str, dict[str, Any]] = {}
        for name, info in self.workers().items():
            if info.get("queue", self.queue_name) == self.queue_name:
                out[name] = info
        with self._redis(f"listing the workers of queue {self.queue_name!r}"):
            rq_keys = [_text(k) for k in self.conn.smembers(WORKERS_BY_QUEUE_KEY % self.queue_name)]
            new = [k for k in rq_keys if k.removeprefix("rq:worker:") not in out]
            pipe = self.conn.pipeline(transaction=False)
            for k in new:
                pipe.hmget(k, ["hostname", "pid"])
            for k, (host, pid) in zip(new, pipe.execute() if new else []):
                if pid is not None:  # the hash expires with RQ's worker TTL
                    out[k.removeprefix("rq:worker:")] = {"host": _text(host or ""), "pid": int(pid)}
        return out

    def no_workers_hint(self) -> str:
        """What to say when no worker serves the queue (used by submit and RunTimeout)."""
        return (f"0 live workers serve queue {self.queue_name!r} on {mask_url(self.url)}; the run "
                f"waits until one starts. Start one: flownb worker --redis URL --queue "
                f"{self.queue_name} --import YOUR_NODE_MODULE (or flownb.notebook.LocalCluster"
                f"(queue_name={self.queue_name!r}) in a notebook); a different --queue or --prefix "
                "on the worker is the usual cause")

    def _bundle(self, bp: Blueprint) -> dict[str, str]:
        """Every blueprint a subflow/map may start, stored by digest with the run."""
        from .bundles import reachable

        return {bid: self.store.upload_blueprint(child) for bid, child in reachable(bp, self.registry)}

    def run(self, blueprint: Blueprint | Mapping[str, Any] | str,
            inputs: Mapping[str, Any] | None = None, *, timeout: float | None = None,
            raise_on_error: bool = True, strict: bool = True, history: bool = False) -> RunResult:
        """Submit and wait: the distributed twin of :func:`flownb.run` (raises
        :class:`~flownb.core.errors.RunFailed` / :class:`~flownb.core.errors.RunCancelled` unless
        ``raise_on_error=False``)."""
        handle = self.submit(blueprint, inputs, strict=strict, history=history)
        return handle.result(timeout, raise_on_error=raise_on_error)

    def map(self, blueprint: Blueprint | Mapping[str, Any] | str, rows: Any, *,
            key: str | None = None, strict: bool = True, history: bool = False) -> Any:
        """One run per row, submitted at once; returns a :class:`~flownb.distributed.batch.
        DistributedBatch` (live view, ``results()`` in input order, ``to_pandas()``,
        ``retry_failed()``, ``cancel()``). ``key="text"`` runs plain values as ``{"text": v}``.
        Lint runs once for the batch; ``history=True``: every run records its history."""
        from .batch import map_rows

        return map_rows(self, blueprint, rows, key=key, strict=strict, history=history)

    def fork(self, plan: Any, *, run_id: str | None = None) -> RunHandle:
        """Start a fork (:func:`flownb.fork`) on this Redis; the handle returns at once."""
        from .history import fork_on

        return fork_on(self, plan, run_id=run_id)

    def attach(self, run_id: str) -> RunHandle:
        with self._redis("attaching to the run", run_id):
            status = self.store.status(run_id)
        if status is None:
            raise ExecutorError(f"no run {run_id!r} in {mask_url(self.url)} (prefix {self.prefix!r}): "
                                f"{GONE}, or the id, prefix or Redis is wrong", run_id=run_id)
        return RunHandle(self, run_id, status=status)

    def runs(self, limit: int = 20) -> list[dict[str, str]]:
        with self._redis("listing runs"):
            return self.store.list_runs(limit)

    def workers(self) -> dict[str, dict[str, Any]]:
        """Every worker of this prefix with a fresh heartbeat, whatever queue it serves."""
        with self._redis("listing workers"):
            raw = self.conn.hgetall(self.store.keys.workers)
        out = {}
        for k, v in raw.items():
            info = json.loads(v)
            if time.time() - float(info.get("seen", 0)) < LIVE_WORKER_S:
                out[_text(k)] = info
        return out


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RunHandle(HandleControls):
    """A submitted run. ``result()`` / ``await handle`` wait without polling."""

    def __init__(self, executor: DistributedExecutor, run_id: str, blueprint: Blueprint | None = None,
                 *, status: str | None = None) -> None:
        self.executor = executor
        self.run_id = run_id
        self._blueprint = blueprint
        #: the last status read from Redis (reprs show it: they never do I/O that can fail)
        self.last_status: str | None = status

    def _redis(self, what: str) -> Any:
        return redis_errors(self.executor.conn, what, run_id=self.run_id)

    def _shown_status(self) -> str:
        st = self.last_status
        if st is None:
            return "status unknown"
        return st if st in _TERMINAL_STATUSES else f"{st} (last seen; .status() to refresh)"

    def __repr__(self) -> str:
        return f"<RunHandle {self.run_id} {self._shown_status()}>"

    @property
    def store(self) -> RedisStore:
        return self.executor.store

    @property
    def blueprint(self) -> Blueprint:
        if self._blueprint is None:
            with self._redis("loading the run's blueprint"):
                meta = self.store.meta(self.run_id)
                if not meta:
                    raise ExecutorError(GONE, run_id=self.run_id)
                self._blueprint = self.store.load_blueprint(meta.get("blueprint", ""))
        return self._blueprint

    def status(self) -> str:
        """``running``, ``paused``, ``waiting``, ``succeeded``, ``failed``, ``cancelled``, or
        ``gone`` (no data in Redis)."""
        with self._redis("reading the run's status"):
            st = run_status(self.store, self.run_id)  # "paused" while paused (run controls)
        self.last_status = st
        return st

    def done(self) -> bool:
        return self.status() not in ("running", "paused")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or ``timeout`` passes (False)."""
        with self._redis("waiting for the run"):
            return self.store.wait_done(self.run_id, timeout)

    def result(self, timeout: float | None = None, *, raise_on_error: bool = True) -> RunResult:
        """Wait for the run and return its :class:`RunResult`.

        A failed run raises :class:`~flownb.core.errors.RunFailed` and a cancelled one
        :class:`~flownb.core.errors.RunCancelled` (both carry the result as ``.result``);
        ``raise_on_error=False`` returns the result whatever its status. ``timeout`` passing
        raises :class:`~flownb.core.errors.RunTimeout` and leaves the run going.
        """
        if not self.wait(timeout):
            live = self.executor.live_workers()
            served = (f"{len(live)} live worker{'s' if len(live) != 1 else ''} serve"
                      f"{'s' if len(live) == 1 else ''} queue {self.executor.queue_name!r}"
                      if live else self.executor.no_workers_hint())
            raise RunTimeout(f"still running after {timeout}s (the run goes on; wait again, or "
                             f"cancel it); {served}", run_id=self.run_id)
        with self._redis("reading the run's result"):
            res = self.store.load_result(self.run_id)
        self.last_status = res.status
        res._run = self  # result.resume / .waiting / .history act on this run
        return res.raise_for_status() if raise_on_error else res

    def __await__(self) -> Generator[Any, None, RunResult]:
        """``await handle``: :meth:`result` without a timeout, raising on failure."""
        return asyncio.to_thread(self.result).__await__()

    async def aresult(self, timeout: float | None = None, *, raise_on_error: bool = True) -> RunResult:
        """Async :meth:`result`."""
        return await asyncio.to_thread(self.result, timeout, raise_on_error=raise_on_error)

    def cancel(self) -> bool:
        """Stop the run on every worker: queued nodes never start, running ones are discarded."""
        with self._redis("cancelling the run"):
            return self.store.cancel(self.run_id) > 0

    def events(self, *, follow: bool = False, after: str = "0-0",
               timeout: float | None = None) -> Iterator[Event]:
        """The run's events; with ``follow`` new ones as they come, until the run ends (or
        ``timeout``). Raises :class:`ExecutorError` when the run's data vanishes from Redis."""
        with self._redis("reading the run's events"):
            if follow:
                yield from self.store.follow(self.run_id, after=after, timeout_s=timeout,
                                             raise_if_gone=True)
            else:
                yield from self.store.events(self.run_id, after=after, count=100_000)

    def widget(self) -> RunView:
        """A live ipywidgets view of this run (graph coloured by state, progress, nodes, error),
        fed from the run's event stream in a background thread; a tqdm bar outside Jupyter."""
        widget: RunView = view("run.widget")(self)
        return widget

    def _repr_html_(self) -> str:
        return (f"<b>flownb run</b> <code>{self.run_id}</code> — {html.escape(self._shown_status())} "
                f"(<code>handle.widget()</code> for a live view, <code>handle.result()</code> to wait)")

    def on_event(self, fn: Callable[[Event], None], *, timeout: float | None = None) -> None:
        for e in self.events(follow=True, timeout=timeout):
            fn(e)

    # -- human in the loop, streaming, time travel (flownb.distributed.waiting / .history) -------
    def waiting(self) -> list[dict[str, Any]]:
        """Visits waiting for a person: ``[{node, visit, prompt, schema, choices, deadline, …}]``."""
        from .waiting import waiting

        with self._redis("reading the visits waiting for a person"):
            return waiting(self.store, self.run_id)

    def resume(self, node_id: str, value: Any, *, visit: int | None = None) -> RunHandle:
        """Answer a waiting node from any process: ``value`` becomes its output and the run goes
        on; refused (ResumeError) when the node does not wait (e.g. answered already)."""
        from .waiting import resume

        with self._redis(f"answering node {node_id!r}"):
            resume(self.store, self.executor.queue, self.run_id, node_id, value, visit=visit)
        return self

    async def aresume(self, node_id: str, value: Any, *, visit: int | None = None) -> RunHandle:
        return await asyncio.to_thread(self.resume, node_id, value, visit=visit)

    def stream(self, mode: str | list[str] = "updates", *,
               timeout: float | None = None) -> Iterator[Any]:
        """Chunks (``updates``, ``values``, ``events``, ``tokens``) from the run's first event on;
        ends when the run ends or waits (see :mod:`flownb.stream`). ``updates`` and ``values`` are
        built from the run's history: they need a run submitted with ``history=True``. Raises
        :class:`ExecutorError` within about a second when the run's data is gone from Redis
        (expired, Redis restarted without persistence, an unknown run id) or Redis is down."""
        from .history import stream_run

        with self._redis("streaming the run"):
            yield from stream_run(self, mode, timeout=timeout)

    def history(self) -> list[Any]:
        """Every committed step (node, visit, output, action, state diff), in commit order; the
        run must have been submitted with ``history=True`` (else :class:`~flownb.distributed.
        history.NoHistory` says so)."""
        from .history import read_history

        with self._redis("reading the run's history"):
            return read_history(self.store, self.run_id)[1]

    def fork_source(self) -> tuple[Blueprint, dict[str, Any], list[Any]]:
        from .history import read_history

        with self._redis("reading the run's history"):
            inputs, steps = read_history(self.store, self.run_id, "flownb.fork")
            return self.blueprint, inputs, steps


def attach(run_id: str, *, redis: str | RedisSettings | Any | None = None,
           prefix: str = "flownb", queue_name: str = "flownb") -> RunHandle:
    """Re-attach to a run from any process or kernel that reaches the same Redis."""
    return DistributedExecutor(redis, prefix=prefix, queue_name=queue_name).attach(run_id)
