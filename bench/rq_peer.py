"""The plain-RQ peer: job functions run by ``rq worker -w rq.worker.SimpleWorker --serializer
rq.serializers.JSONSerializer`` subprocesses (importable as ``bench.rq_peer``).

* a chain is a job that enqueues the next job (``chain_step``); the last one pushes to a list the
  client waits on with BLPOP — the same "submit → done notification" span flownb is timed on;
* a fan-out is 500 ``noop`` jobs plus a join job, either with RQ's own ``depends_on`` (all 500
  parents) or with a counter (each branch INCRs; the one that reaches n enqueues the join: what
  Flowcraft's BullMQ adapter does, and the closest honest equivalent of flownb's join).

Jobs use ``result_ttl=0`` where nothing reads the result (flownb's own jobs do the same), so RQ is
not charged for storing results nobody wants. ``depends_on`` needs the parents' status, so the
parents of the depends_on fan-out keep RQ's default result TTL.
"""

from __future__ import annotations

import time
from typing import Any

_queues: dict[tuple[int, str], Any] = {}


def _queue(job: Any) -> Any:
    from rq import Queue
    from rq.serializers import JSONSerializer

    key = (id(job.connection), job.origin)
    q = _queues.get(key)
    if q is None:
        q = _queues[key] = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
    return q


def _job() -> Any:
    from rq import get_current_job

    return get_current_job()


def chain_step(done_key: str, i: int, n: int) -> None:
    job = _job()
    if i + 1 < n:
        _queue(job).enqueue_call("bench.rq_peer.chain_step", args=(done_key, i + 1, n),
                                 result_ttl=0)
    else:
        job.connection.lpush(done_key, repr(time.time()))


def noop() -> None:
    return None


def counted(counter_key: str, n: int, done_key: str) -> None:
    job = _job()
    if job.connection.incr(counter_key) == n:
        _queue(job).enqueue_call("bench.rq_peer.done", args=(done_key,), result_ttl=0)


def done(done_key: str) -> None:
    _job().connection.lpush(done_key, repr(time.time()))
