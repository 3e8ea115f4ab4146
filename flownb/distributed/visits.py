"""A worker process's runtime: many node visits at once, leases, the reaper.

Why this shape (see docs/architecture.md, "Workers"): RQ runs one job at a time, but an agent's
nodes mostly wait on the network. So RQ stays the queue and the worker lifecycle, and a job only
*hands over* its items: :meth:`WorkerRuntime.submit` holds them (their leases are renewed by this
worker's heartbeat from then on) and passes each to one asyncio loop as soon as one of the
``concurrency`` slots is free; the job returns once every item is handed over, so RQ's own
bookkeeping stays one short job. Async nodes run on that loop; sync nodes in a bounded thread
pool. Each visit claims its item only when it starts (its running lease starts then), commits
atomically, and continues a single successor inline.

Leases and the reaper: every worker renews the leases of the items it holds or runs. Under a
short Redis lock one worker a time re-queues items whose lease expired — but first it *spares*
those that are not lost: an item whose RQ job still waits in the queue (a backlog is not a
crash), and an item whose worker's liveness key is still set. The liveness key is renewed by a
small child process (:mod:`.alive`), which a node holding the GIL for seconds cannot starve.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.errors import FlownbError
from ..core.registry import Registry, default_registry
from .async_store import fit_pool
from .capability import HandBack
from .claims import BatchClaims
from .execute import Incapable, NodeRunner, is_transient_redis_error
from .jobs import enqueue_items, make_queue
from .keys import item_field, lease_member
from .lease_beat import renew_and_read_statuses
from .ratelimit import install as install_rate_limiter
from .store import RedisStore, StoreSettings, dumps, loads
from .take_here import TakeHere
from .waiting import expire_waits

if TYPE_CHECKING:
    import redis

log = logging.getLogger("flownb.worker")

#: node visits a worker runs at once. 128: LLM-bound visits wait on the network; with 32, two
#: workers held 64 calls where plain asyncio held 200 (three 200 ms waves for 200 moderation runs,
#: not one: bench/README.md). Nodes that compute gain nothing from more: lower ``--concurrency``.
DEFAULT_CONCURRENCY = 128
#: seconds a stopping worker lets the visits in flight finish before it hands them back
#: (``flownb worker --stop-grace-s``); with RQ's own teardown a worker is gone within ~2 s
DEFAULT_STOP_GRACE_S = 1.0


def check_stop_grace(seconds: float) -> float:
    """``seconds`` if it is a usable stop grace, else a :class:`FlownbError` that says so."""
    if not 0 <= seconds <= 3600:  # NaN fails too
        raise FlownbError(f"the stop grace (--stop-grace-s / stop_grace_s) must be 0 to 3600 "
                          f"seconds, got {seconds!r}; a stopping worker hands the visits still "
                          "running after it back to other workers")
    return seconds
#: set by LocalCluster for workers that serve modules written from notebook cells
_MODULE_DIRS = os.environ.get("FLOWNB_MODULE_PATH", "")


def _preload_llm_client() -> None:
    """Import ``openai`` (and what it imports on first use) before the loop runs visits.

    Why: the first LLM visit would otherwise import it on the event loop thread, which
    measured as ~1 s during which no other visit of this worker made progress."""
    from ..llm.preload import preload

    preload()


#: the reaper checks this many expired leases a round before REQUEUE (which takes 200)
SPARE_LIMIT = 10000
#: ... in pipelines of this many
SPARE_CHUNK = 500
#: ... and also those expiring this soon (REQUEUE reads Redis's clock a moment later)
SPARE_AHEAD_MS = 2000


@dataclass
class WorkerStats:
    jobs: int = 0
    requeued: int = 0
    handed_back: int = 0
    max_in_flight: int = 0
    started_at: float = field(default_factory=time.time)


class WorkerRuntime(TakeHere, NodeRunner, HandBack, BatchClaims):
    """Per-process state shared by the jobs a worker runs: connections, graphs, leases, slots."""

    def __init__(self, conn: redis.Redis, *, name: str, registry: Registry | None = None,
                 prefix: str = "flownb", queue_name: str = "flownb",
                 settings: StoreSettings | None = None, reap_interval_s: float = 1.0,
                 concurrency: int = DEFAULT_CONCURRENCY, liveness_process: bool = False) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        fit_pool(conn, concurrency)  # before the loop's pool copies its size (.async_store)
        self.conn = conn
        self.name = name
        self.registry = registry or default_registry
        self.store = RedisStore(conn, prefix=prefix, settings=settings)
        self.queue = make_queue(conn, queue_name)
        # LLM rate limits are shared by every worker on this Redis (flownb.llm.ratelimit)
        self._limiter = install_rate_limiter(conn, prefix=prefix)
        self.reap_interval_s = reap_interval_s
        self.concurrency = concurrency
        self.liveness_process = liveness_process
        self.stats = WorkerStats()
        self._init_runner()
        self.pool: concurrent.futures.ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor(
            concurrency, thread_name_prefix=f"flownb-node-{name}")
        self._slots = threading.BoundedSemaphore(concurrency)
        self._in_flight = 0
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._closing = threading.Event()  # a warm shutdown began: take no new visit
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the visits on the loop (see _spawn)
        self._loop_thread: threading.Thread | None = None
        self._alive: subprocess.Popen[bytes] | None = None
        #: items whose node type no live worker had, since when (see _incapable)
        self._incapable_since: dict[tuple[str, str, int], float] = {}

    # -- the loop ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the event loop thread, the heartbeat/reaper thread and the liveness process."""
        if self._loop is None:
            _preload_llm_client()
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                                 name=f"flownb-loop-{self.name}")
            self._loop_thread.start()
            # the loop's Redis calls are awaited on redis.asyncio (flownb.distributed.async_store)
            self._limiter.bind(self._loop, self.astore)
        if self.liveness_process and self._alive is None:
            from .alive import spawn

            self._alive = spawn(self.conn, self.store.keys.alive(self.name),
                                self.store.settings.lease_ttl_s)
        if self._thread is None:
            self._thread = threading.Thread(target=self._background, name=f"flownb-hb-{self.name}",
                                            daemon=True)
            self._thread.start()

    start_background = start  # the name LocalCluster's thread workers know

    def submit(self, run_id: str, items: list[list[Any]]) -> None:
        """Hand a job's items to the loop; blocks only while every slot is busy."""
        self.stats.jobs += 1
        if _MODULE_DIRS:  # notebook-defined node modules: pick up edits before each job
            from .job_hooks import before_job

            before_job(self)
        self.start()
        wanted = [(str(n), int(v)) for n, v in items]
        members = [lease_member(run_id, n, v) for n, v in wanted]
        for m in members:
            self.running[m] = run_id
        try:
            self.store.renew(members)  # held: protected by this worker's heartbeat from now on
        except Exception as exc:
            if not is_transient_redis_error(exc):
                for m in members:
                    self.running.pop(m, None)
                raise
            # Redis away or full: carry on; the heartbeat renews once it is back, and every
            # member held must reach a visit below, which alone lets go of it
            log.warning("flownb worker %s: could not renew the leases of a job of run %s: %s",
                        self.name, run_id, exc)
        i = 0
        while i < len(wanted):
            while not self._slots.acquire(timeout=0.1):
                if self._closing.is_set():  # shutting down: close() hands the rest back
                    return
            k = 1  # and every other slot free now: those items are claimed together (.claims)
            while i + k < len(wanted) and self._slots.acquire(blocking=False):
                k += 1
            with self._idle:
                self._in_flight += k
                self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
            assert self._loop is not None
            if k == 1:
                node, visit = wanted[i]
                coro = self._guarded(run_id, node, visit, members[i])
            else:
                coro = self._guarded_batch(run_id, wanted[i:i + k], members[i:i + k])
            # a task made on the loop, no concurrent future (nobody reads one): half the CPU
            self._loop.call_soon_threadsafe(self._spawn, coro)
            i += k

    def _spawn(self, coro: Any) -> None:
        """On the loop: run the visit ``coro`` as a task (kept referenced until it is done)."""
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, run_id: str, node: str, visit: int, member: str,
                       body: Awaitable[None] | None = None) -> None:
        """Visit one item (``body``: what its batch claim left it to run, :mod:`.claims`),
        then free its slot."""
        try:
            await (self.visit(run_id, node, visit) if body is None else body)
        except Incapable as exc:
            await self._incapable(run_id, node, visit, exc)
        except Exception:
            # a failure inside the node, its commit or its retries is recorded by the visit
            # itself (fail_visit); what reaches here is a bug in flownb (a store call that is
            # neither done nor transient): the item stays this live worker's until it stops
            log.exception("flownb: visit %s broke outside its node (a flownb bug: please report "
                          "it); its run may wait until this worker stops and another re-runs "
                          "it", member)
        finally:
            self.running.pop(member, None)
            self._slots.release()
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def alone(self) -> bool:
        return self._in_flight <= 1

    def stopping(self) -> bool:
        return self._stop.is_set()

    def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until no visit is in flight (a warm shutdown lets running nodes commit)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._idle:
            while self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is not None else 1.0)
        return True

    def closing(self) -> bool:
        """A warm shutdown began (a signal, or :meth:`close`)."""
        return self._closing.is_set()

    def begin_close(self) -> None:
        """Take no new visit from now on (safe from a signal handler: sets one event)."""
        self._closing.set()

    def close(self, grace_s: float = DEFAULT_STOP_GRACE_S) -> int:
        """Warm shutdown: take no new visit, give those in flight ``grace_s`` to finish, hand the
        rest back, stop. Returns how many visits were handed back.

        Why not wait for every node: a worker asked to stop (SIGTERM from a process manager,
        Ctrl-C, a kernel restart) must be gone within seconds, while a node may run for minutes.
        A visit handed back is exactly a visit of a crashed worker, only found at once: its
        lease expires now and the reaper re-queues it (after this worker's liveness key is
        gone, so nothing spares it); another worker re-runs it and COMMIT keeps one result
        even if the abandoned body still finishes here before the process exits."""
        self.begin_close()
        self.drain(timeout_s=grace_s)
        left = list(self.running)
        self.stop()
        if left:
            try:
                self.store.renew(left, ttl_s=0)
                self.reap()  # at once when no other worker holds the reaper lock; else theirs
            except Exception as exc:  # noqa: BLE001 - Redis away: the leases expire anyway
                log.warning("flownb worker %s: could not hand back %d visit(s) at stop (%s); "
                            "their leases expire and they are re-run", self.name, len(left), exc)
            log.warning("flownb worker %s: stopped with %d visit(s) in flight after a %.1fs "
                        "grace; handed back for another worker: %s", self.name, len(left),
                        grace_s, left[:5])
        return len(left)

    def stop(self) -> None:
        self._stop.set()
        self._closing.set()
        if self._alive is not None:
            self._alive.terminate()
            self._alive.wait(5)
        try:
            self.conn.hdel(self.store.keys.workers, self.name)
            self.conn.delete(self.store.keys.alive(self.name))
        except Exception as exc:  # noqa: BLE001 - shutting down; both keys expire anyway
            log.debug("flownb worker %s: could not remove its info at stop: %s", self.name, exc)
        if self._loop is not None:
            if self._astore is not None and self._loop.is_running():
                try:  # the async pool's connections, closed on their own loop
                    asyncio.run_coroutine_threadsafe(self._astore.aclose(), self._loop).result(1.0)
                except Exception as exc:  # noqa: BLE001 - stopping; the sockets close with us
                    log.debug("flownb worker %s: async Redis pool not closed: %s", self.name, exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self.pool.shutdown(wait=False, cancel_futures=True)

    stop_background = stop

    # -- background: heartbeat + reaper --------------------------------------------------------------
    def _background(self) -> None:
        beat = max(0.2, self.store.settings.lease_ttl_s / 4)
        next_reap = 0.0
        while not self._stop.wait(min(beat, self.reap_interval_s)):
            try:
                members = list(self.running)
                runs = set(self.running.values())
                if members:  # one round trip, whatever the number of runs (.lease_beat)
                    for rid, status in renew_and_read_statuses(self.store, members, runs).items():
                        if status != "running":
                            r = self.runs.get(rid)
                            if r is not None:
                                r.cancelled = True
                self.publish_info()
                now = time.monotonic()
                if now >= next_reap:
                    next_reap = now + self.reap_interval_s
                    self.reap()
            except Exception as exc:  # noqa: BLE001 - keep beating through Redis hiccups
                if is_transient_redis_error(exc):
                    self.redis_errors += 1
                    self.last_redis_error = f"{type(exc).__name__}: {exc}"
                log.warning("flownb worker %s heartbeat: %s", self.name, exc)

    def reap(self) -> int:
        """Re-queue items whose lease expired and that are truly lost (one worker at a time)."""
        if not self.conn.set(self.store.keys.reaper, self.name, nx=True,
                             px=max(100, int(self.reap_interval_s * 900))):
            return 0
        self._spare_not_lost()
        items = self.store.requeue_expired()
        expire_waits(self.store, self.queue)  # waits whose timeout_s passed take their default
        by_run: dict[str, list[list[Any]]] = {}
        for run_id, node, visit in items:
            by_run.setdefault(run_id, []).append([node, visit])
        for run_id, its in by_run.items():
            log.warning("flownb: re-queueing %d item(s) of run %s whose lease expired: %s",
                        len(its), run_id, its[:5])
            enqueue_items(self.queue, run_id, its, at_front=True, keys=self.store.keys,
                          ttl_s=self.store.settings.result_ttl_s)
        self.stats.requeued += len(items)
        return len(items)

    def _spare_not_lost(self, limit: int = SPARE_LIMIT) -> int:
        """Extend the expired leases of queued items whose RQ job still waits in the queue (the
        REQUEUE script itself spares running items whose worker's liveness key is set).

        Why it looks at *every* expired lease (up to ``limit``) and :data:`SPARE_AHEAD_MS`
        ahead: REQUEUE takes the first 200 expired leases by deadline at its own clock a moment
        later. Checking only the first 200 let REQUEUE re-queue the next 200 (the spared ones
        had moved behind them), and a lease expiring between the two clocks was never checked:
        both re-queued waiting items under a backlog although no worker died."""
        r, k = self.conn, self.store.keys
        secs, micros = r.time()
        now_ms = int(secs) * 1000 + int(micros) // 1000
        expired = [m.decode() if isinstance(m, bytes) else str(m)
                   for m in r.zrangebyscore(k.leases, "-inf", now_ms + SPARE_AHEAD_MS, start=0,
                                            num=limit)]
        spared = 0
        for i in range(0, len(expired), SPARE_CHUNK):
            spared += self._spare_waiting(expired[i:i + SPARE_CHUNK])
        return spared

    def _spare_waiting(self, expired: list[str]) -> int:
        """Renew those of ``expired`` whose item is queued and whose RQ job still waits."""
        r, k, st = self.conn, self.store.keys, self.store.settings
        parsed = []
        for m in expired:
            run_id, _, rest = m.partition("|")
            node, _, vtext = rest.rpartition("|")
            if run_id and node and vtext.isdigit():
                parsed.append((m, run_id, node, int(vtext)))
        if not parsed:
            return 0
        pipe = r.pipeline(transaction=False)
        for _, run_id, node, visit in parsed:
            pipe.hget(k.pending(run_id), item_field(node, visit))
            pipe.hget(k.jobs(run_id), item_field(node, visit))
        raw = pipe.execute()
        checks: list[str] = []
        pipe = r.pipeline(transaction=False)
        from rq.job import Job

        for i, (m, _, _, _) in enumerate(parsed):
            item, job_id = raw[2 * i], raw[2 * i + 1]
            if item is None:
                continue
            it = loads(item)
            if it.get("st") == "q" and job_id is not None:
                jid = job_id.decode() if isinstance(job_id, bytes) else str(job_id)
                pipe.hget(Job.key_for(jid), "status")
                pipe.lpos(self.queue.intermediate_queue_key, jid)
                checks.append(m)
        res = pipe.execute()
        waiting = [m for i, m in enumerate(checks)  # its job still waits: a backlog, not a loss
                   if res[2 * i] in (b"queued", "queued") and res[2 * i + 1] is None]
        self.store.renew(waiting, st.queued_ttl_s)
        return len(waiting)

    def publish_info(self) -> None:
        st = self.stats
        self.conn.hset(self.store.keys.workers, self.name, dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "state": "busy" if self._in_flight else "idle",
            # an idle worker runs nothing: its last visit is "last", never "current"
            "current": self.current if self._in_flight else None, "last": self.current,
            "jobs": st.jobs, "nodes": self.nodes_done, "in_flight": self._in_flight,
            "max_in_flight": st.max_in_flight, "concurrency": self.concurrency,
            "requeued": st.requeued, "handed_back": st.handed_back, "inline": self.inline_visits,
            "claimed_together": self.claimed_together, "taken_here": self.taken_here,
            "line_calls": self._astore.line_calls if self._astore is not None else 0,
            "redis_errors": self.redis_errors, "last_redis_error": self.last_redis_error,
            "seen": time.time(), "started_at": st.started_at,
            "names": sorted(self.registry.names()), "queue": self.queue.name}))
