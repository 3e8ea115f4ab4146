"""flownb workers: RQ workers that hand node visits to a concurrent runtime.

Lifecycle of one item (a node visit), see also :mod:`.scripts` and :mod:`.visits`::

    queued (pending entry; its RQ job waits)  --job-->  held by a worker (lease renewed)
        --CLAIM (when a slot is free)-->  running (lease renewed by the heartbeat)
        --COMMIT--> done; successors queued (or the single one claimed inline)
        --FAIL-->   run failed
    worker killed: the lease expires -> the reaper re-queues -> another worker CLAIMs (delivery + 1)

Why a subclass of RQ's ``SimpleWorker``: RQ gives the worker lifecycle, registries, the queue and
the CLI conventions; flownb adds what RQ lacks. ``SimpleWorker`` runs jobs in-process: no fork
per job (17 ms per hop with forking on our machines), and safe inside a multi-threaded notebook
kernel. The job only hands its items to :class:`~.visits.WorkerRuntime`, which runs up to
``concurrency`` visits at once on its own event loop and thread pool.

What the subclass guards (each was a way to stop a worker or run foreign code):

* only flownb's own job function is ever imported or called (``job.func_name`` is checked
  against :data:`~.jobs.ALLOWED_JOB_FUNCS` first); anything else is refused, logged and failed;
* a job hash that cannot be read (malformed, foreign) is skipped, not fatal;
* Redis errors while dequeueing (OOM under ``maxmemory``/``noeviction``, a dropped connection,
  a timeout) are logged and retried with back-off instead of ending the worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ..core.errors import FlownbError
from ..core.registry import Registry
from .jobs import ALLOWED_JOB_FUNCS, JOB_OPTIONS, make_queue
from .store import StoreSettings
from .visits import DEFAULT_CONCURRENCY, DEFAULT_STOP_GRACE_S, WorkerRuntime, check_stop_grace

if TYPE_CHECKING:
    import redis

log = logging.getLogger("flownb.worker")

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
        rt.start()
        _runtimes[threading.get_ident()] = rt
    return rt


def process(run_id: str, items: list[list[Any]]) -> None:
    """The RQ job: hand these ready items of one run to this worker (JSON arguments only)."""
    current_runtime().submit(run_id, items)


#: RQ's worker heartbeat and suspension check run at most this often (not after every job)
BOOKKEEPING_EVERY_S = 1.0
#: how long RQ's command-channel thread (``rq shutdown``, stop-job) blocks in one read. RQ uses
#: 60 s, and redis-py >= 8.2 joins that thread at teardown, so an idle worker took up to 60 s
#: to exit on SIGTERM; a short read bounds the join. An idle read sends no command to Redis.
PUBSUB_POLL_S = 0.25


def _redis_errors() -> type[BaseException]:
    import redis

    return redis.exceptions.RedisError  # type: ignore[no-any-return]


def make_worker(conn: redis.Redis, *, name: str | None = None, queue_name: str = "flownb",
                prefix: str = "flownb", registry: Registry | None = None,
                settings: StoreSettings | None = None, reap_interval_s: float = 1.0,
                concurrency: int = DEFAULT_CONCURRENCY, liveness_process: bool | None = None,
                stop_grace_s: float = DEFAULT_STOP_GRACE_S) -> Any:
    """An RQ ``SimpleWorker`` wired to a :class:`WorkerRuntime` (works off the main thread too).

    ``liveness_process`` (default: on for a worker in the main thread) starts the child process
    that keeps this worker's liveness key while a node holds the GIL. ``stop_grace_s``: on a
    warm shutdown (SIGTERM, Ctrl-C) the visits in flight get this long to commit; the rest are
    handed back to other workers (:meth:`WorkerRuntime.close`)."""
    check_stop_grace(stop_grace_s)
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    class FlownbWorker(SimpleWorker):  # type: ignore[misc]
        flownb: WorkerRuntime
        stop_grace_s: float = DEFAULT_STOP_GRACE_S
        _last_beat = 0.0  # monotonic time of the last RQ heartbeat / suspension check
        _last_suspension_check = 0.0

        def _install_signal_handlers(self) -> None:
            if threading.current_thread() is threading.main_thread():
                super()._install_signal_handlers()

        def work(self, *args: Any, **kwargs: Any) -> bool:
            if threading.current_thread() is not threading.main_thread():
                from rq.timeouts import TimerDeathPenalty

                self.death_penalty_class = TimerDeathPenalty  # SIGALRM is main-thread only
            _runtimes[threading.get_ident()] = self.flownb
            self.flownb.start()
            from rq.exceptions import StopRequested

            burst = bool(kwargs.get("burst") or (args[0] if args else False))
            worked = False
            try:
                worked = bool(super().work(*args, **kwargs))
                while (burst and not self.flownb.closing() and self.flownb.drain()
                       and self._queue_len()):
                    worked = bool(super().work(*args, **kwargs)) or worked  # visits queued more
                if not self.flownb.closing():  # burst done / max_jobs: let running visits commit
                    self.flownb.drain(timeout_s=max(1.0, self.flownb.store.settings.lease_ttl_s))
            except StopRequested:  # a signal while flownb (not RQ's loop) was waiting
                pass
            finally:
                self.flownb.close(self.stop_grace_s)
                _runtimes.pop(threading.get_ident(), None)
            return worked

        def handle_warm_shutdown_request(self) -> None:
            super().handle_warm_shutdown_request()
            self.flownb.begin_close()  # a hand-over waiting for a free slot returns at once

        def subscribe(self) -> None:
            """RQ's own ``subscribe`` with a short read (:data:`PUBSUB_POLL_S`), nothing else."""
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
                sleep_time=PUBSUB_POLL_S, daemon=True,
                exception_handler=self._pubsub_exception_handler)

        def _queue_len(self) -> int:
            return int(self.connection.llen(self.queues[0].key))

        def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                         max_idle_time: int | None = None) -> Any:
            wait = 0.5
            while True:
                try:
                    return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
                except _redis_errors() as exc:
                    log.error("flownb worker %s: Redis error while taking a job (%s); retrying "
                              "in %.1fs", self.name, exc, wait)
                except Exception as exc:
                    job_id = getattr(exc, "job_id", None)
                    if job_id is None:
                        raise
                    log.error("flownb worker %s: skipping malformed job %s: %s", self.name,
                              job_id, exc)
                    self._drop(str(job_id))
                    continue
                if self._stop_requested:
                    return None
                time.sleep(wait)
                wait = min(wait * 2, 10.0)

        def _drop(self, job_id: str) -> None:
            try:
                self.connection.lrem(self.queues[0].intermediate_queue_key, 1, job_id)
            except _redis_errors() as exc:  # best effort: RQ cleans its intermediate queue too
                log.debug("flownb worker %s: could not drop job %s: %s", self.name, job_id, exc)

        def _ride_out(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
            """RQ bookkeeping that may fail while Redis is away or full: the next round will do
            (RQ itself would end the worker on any error here)."""
            try:
                fn(*args, **kwargs)
            except _redis_errors() as exc:
                self.flownb.redis_errors += 1
                self.flownb.last_redis_error = f"{type(exc).__name__}: {exc}"
                log.error("flownb worker %s: RQ %s failed: %s", self.name, what, exc)
                time.sleep(0.5)

        def heartbeat(self, *args: Any, **kwargs: Any) -> None:
            # RQ beats after every job; a flownb job is a hand-over of a few ms, so a beat per
            # job was most of a worker's Redis traffic. Once a second keeps the worker key
            # (ttl ``worker_ttl``) just as alive.
            now = time.monotonic()
            if now - self._last_beat < BOOKKEEPING_EVERY_S and not args and not kwargs:
                return
            self._last_beat = now
            self._ride_out("heartbeat", super().heartbeat, *args, **kwargs)

        def run_maintenance_tasks(self) -> None:
            self._ride_out("maintenance", super().run_maintenance_tasks)

        def check_for_suspension(self, burst: bool) -> None:
            now = time.monotonic()  # once a second, not once per job (see heartbeat)
            if now - self._last_suspension_check < BOOKKEEPING_EVERY_S:
                return
            self._last_suspension_check = now
            self._ride_out("suspension check", super().check_for_suspension, burst)

        def execute_job(self, job: Any, queue: Any) -> Any:
            try:
                func_name = job.func_name
            except Exception as exc:  # noqa: BLE001 - undecodable job data
                func_name = f"<unreadable: {exc}>"
            if func_name not in ALLOWED_JOB_FUNCS:
                return self._refuse(job, queue, func_name)
            try:
                return self._hand_over(job, queue)
            except _redis_errors() as exc:
                log.error("flownb worker %s: Redis error around job %s: %s (its items' leases "
                          "expire and they are re-run)", self.name, job.id, exc)
                time.sleep(0.5)
                return None

        def _hand_over(self, job: Any, queue: Any) -> None:
            """Run a flownb job without RQ's per-job registries.

            Why: a flownb job only hands its items to the runtime (:meth:`WorkerRuntime.submit`,
            a few ms); the visits, their leases and their outcome live in flownb's own keys.
            RQ's ``perform_job`` costs ~15 Redis round trips per job (execution registry,
            started/finished registries, job heartbeats, state changes), which measured as half
            of a worker's CPU under an LLM-bound load. So the job is called here and then
            removed in one round trip: its hash and its entry in the intermediate queue (where
            RQ's dequeue moved it). Until then the job is in that intermediate queue, so the
            reaper still tells it from a job that waits (kill -9 mid-hand-over: its items'
            leases expire and they are re-run). A job that raises is recorded as failed in
            RQ's failed registry, like RQ does."""
            try:
                run_id, items = job.args
                process(run_id, items)
            except _redis_errors():
                raise
            except Exception as exc:  # noqa: BLE001 - recorded as RQ records a failed job
                log.exception("flownb worker %s: job %s failed", self.name, job.id)
                try:
                    job.set_status("failed")
                    queue.failed_job_registry.add(job, ttl=JOB_OPTIONS["failure_ttl"],
                                                  exc_string=f"{type(exc).__name__}: {exc}")
                finally:
                    self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
                return
            pipe = self.connection.pipeline(transaction=False)
            pipe.delete(job.key)
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.execute()

        def _refuse(self, job: Any, queue: Any, func_name: str) -> None:
            msg = (f"refused job {job.id}: {func_name!r} is not a flownb job function "
                   f"(allowed: {', '.join(sorted(ALLOWED_JOB_FUNCS))}); someone with write access "
                   "to this Redis enqueued it")
            log.error("flownb worker %s: %s", self.name, msg)
            try:
                job.set_status("failed")
                queue.failed_job_registry.add(job, ttl=3600, exc_string=msg)
                self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
            except Exception as exc:  # noqa: BLE001 - the refusal stands even if this fails
                log.error("flownb worker %s: could not record the refusal: %s", self.name, exc)

    wname = name or f"flownb-{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10000}"
    worker = FlownbWorker([make_queue(conn, queue_name)], connection=conn, name=wname,
                          serializer=JSONSerializer, worker_ttl=17)
    worker.stop_grace_s = stop_grace_s
    if liveness_process is None:
        liveness_process = threading.current_thread() is threading.main_thread()
    worker.flownb = WorkerRuntime(conn, name=wname, registry=registry, prefix=prefix,
                                  queue_name=queue_name, settings=settings,
                                  reap_interval_s=reap_interval_s, concurrency=concurrency,
                                  liveness_process=liveness_process)
    return worker


__all__ = ["DEFAULT_CONCURRENCY", "WorkerRuntime", "current_runtime", "make_worker", "process"]
