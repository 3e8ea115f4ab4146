"""What a flownb worker lets RQ do with a job hash: never import or call a name it holds.

Why: anyone who can write to the Redis a worker reads can write RQ job hashes, and RQ imports
and calls names stored in them on several paths besides running the job function (which
``FlownbWorker.execute_job`` checks against :data:`~.jobs.ALLOWED_JOB_FUNCS`). Measured with
rq 3.0: a hash in RQ's started-job registry (``rq:wip:<queue>``) with ``status: started`` and an
expired score made every worker, at start and at each maintenance round, import its
``failure_callback_name`` and call it (``StartedJobRegistry.cleanup``). The paths, each refused
here (see docs/architecture.md, "Threat model"):

* the job function (``Job.func``): only flownb's own, never a method of a stored instance;
* the success, failure and stopped callbacks (``*_callback_name``): flownb sets none, so none
  is ever imported — the properties RQ calls answer ``None`` and the refusal is logged;
* webhooks (``webhooks``: an HTTP request to any URL from inside the worker's network): never
  sent;
* dependents (``rq:job:<id>:dependents``: RQ moves them to their *origin* queue, any queue):
  flownb jobs have no dependencies, so none is ever enqueued;
* RQ's registry maintenance (started, deferred, ready registries: abandoned-job handling,
  dependency recovery): flownb never puts a job there (a job only hands its items over, see
  :mod:`.worker`), so their entries are foreign and are dropped without touching the jobs.

The worker and its queue use :class:`GuardedJob` and :class:`GuardedQueue` for every job hash they
read, so a path RQ adds later still meets these properties.
"""

from __future__ import annotations

import logging
from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ReadyJobRegistry,
    StartedJobRegistry,
)

from .jobs import ALLOWED_JOB_FUNCS

log = logging.getLogger("flownb.worker")


def _refused(job: Job, what: str, name: object) -> None:
    log.error("flownb: refused the %s %r of RQ job %s: a flownb worker never imports or calls "
              "names stored in a job hash (someone with write access to this Redis wrote it)",
              what, name, job.id)


class GuardedJob(Job):
    """An RQ job read from Redis by flownb: its hash may have been written by anyone."""

    @property
    def func(self) -> Any:
        name = self.func_name
        if name not in ALLOWED_JOB_FUNCS or self.instance is not None:
            _refused(self, "job function", name)
            return None
        return super().func

    @property
    def success_callback(self) -> Any:
        if self._success_callback_name:
            _refused(self, "success callback", self._success_callback_name)
        return None

    @property
    def failure_callback(self) -> Any:
        if self._failure_callback_name:
            _refused(self, "failure callback", self._failure_callback_name)
        return None

    @property
    def stopped_callback(self) -> Any:
        if self._stopped_callback_name:
            _refused(self, "stopped callback", self._stopped_callback_name)
        return None

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        for hook in self.webhooks:
            _refused(self, "webhook", getattr(hook, "url", hook))


class GuardedQueue(Queue):
    """flownb's RQ queue: jobs read through :class:`GuardedJob`, dependents never enqueued."""

    job_class = GuardedJob

    def enqueue_dependents(self, job: Job, exclude_job_id: str | None = None,
                           refresh_job_status: bool = True) -> dict[str, list[str]]:
        dependents = self.connection.smembers(job.dependents_key)
        if dependents:
            _refused(job, "dependents", sorted(x.decode() if isinstance(x, bytes) else str(x)
                                               for x in dependents)[:5])
        return {}


def clean_registries(worker: Any) -> None:
    """RQ's registry maintenance, for a flownb worker (``FlownbWorker.clean_registries``).

    Finished and failed registries only drop expired entries (as RQ does). The started,
    deferred and ready registries hold nothing of flownb's, so their entries are dropped and
    logged instead of being handled by RQ (which would call a failure callback, send webhooks,
    enqueue dependents or move a job to another queue). The intermediate queue's cleanup is
    RQ's own, on the guarded job and queue classes."""
    from rq import worker_registration
    from rq.utils import now

    for queue in worker.queues:
        if not queue.acquire_maintenance_lock():
            continue
        try:
            opts: dict[str, Any] = {"name": queue.name, "connection": queue.connection,
                                    "job_class": GuardedJob, "serializer": queue.serializer}
            FinishedJobRegistry(**opts).cleanup()
            FailedJobRegistry(**opts).cleanup()
            for registry in (StartedJobRegistry(**opts), DeferredJobRegistry(**opts),
                             ReadyJobRegistry(**opts)):
                _drop_foreign(registry)
            worker_registration.clean_worker_registry(queue)
            queue.intermediate_queue.cleanup(worker, queue)
        finally:
            queue.release_maintenance_lock()
    worker.last_cleaned_at = now()


def _drop_foreign(registry: Any) -> None:
    entries = registry.connection.zrange(registry.key, 0, -1)
    if not entries:
        return
    log.error("flownb: dropped %d foreign entr%s of RQ registry %s (a flownb queue never uses "
              "it; someone with write access to this Redis wrote them): %s", len(entries),
              "y" if len(entries) == 1 else "ies", registry.key,
              [e.decode(errors="replace") if isinstance(e, bytes) else str(e) for e in entries[:5]])
    registry.connection.zrem(registry.key, *entries)


__all__ = ["GuardedJob", "GuardedQueue", "clean_registries"]
