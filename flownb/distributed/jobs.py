"""How node work becomes RQ jobs.

A job never carries code or pickles: it is ``flownb.distributed.worker.process(run_id, items)``
with JSON arguments (RQ's ``JSONSerializer``); the worker looks the node up in the run's stored
blueprint and its own registry. One job may carry several ready items of one run, so a wide
fan-out costs a few RQ jobs rather than hundreds; a run's single ready successor is not a job at
all (the committing worker continues it inline).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .keys import item_field

if TYPE_CHECKING:
    import redis
    import rq

    from .keys import Keys

JOB_FUNC = "flownb.distributed.worker.process"
#: the only job functions a flownb worker will import and call (anything else is refused)
ALLOWED_JOB_FUNCS = frozenset({JOB_FUNC})
#: a fan-out is spread over at most this many jobs (each takes its share of the items)
MAX_JOBS_PER_FANOUT = 16
#: RQ bookkeeping we do not need: results live in the run's state, failures in its events
JOB_OPTIONS: dict[str, Any] = {"result_ttl": 0, "failure_ttl": 3600, "timeout": -1}


def make_queue(conn: redis.Redis, name: str = "flownb") -> rq.Queue:
    """flownb's queue: JSON jobs, read through :mod:`.rq_guard` (no name in a hash is called)."""
    from rq.serializers import JSONSerializer

    from .rq_guard import GuardedQueue

    return GuardedQueue(name, connection=conn, serializer=JSONSerializer)


def split(items: Sequence[Sequence[Any]], max_jobs: int = MAX_JOBS_PER_FANOUT) -> list[list[list[Any]]]:
    """Deal items round-robin into at most ``max_jobs`` batches (keeps branch order fair)."""
    n = min(len(items), max_jobs)
    batches: list[list[list[Any]]] = [[] for _ in range(n)]
    for i, it in enumerate(items):
        batches[i % n].append(list(it))
    return batches


def enqueue_items(queue: rq.Queue, run_id: str, items: Sequence[Sequence[Any]], *,
                  at_front: bool = False, keys: Keys | None = None, ttl_s: int = 86400,
                  max_jobs: int = MAX_JOBS_PER_FANOUT) -> int:
    """Enqueue ready ``[node, visit]`` items of one run; returns the number of jobs.

    ``at_front`` is for recovered work (a dead worker's node): it should not wait behind the
    backlog that piled up while its lease ran out. With ``keys``, each item's job id is recorded
    in the run's ``jobs`` hash in the same transaction, so the reaper can tell an item that still
    waits in the queue (leave it: no spurious re-run however long the backlog) from one whose
    job was lost."""
    if not items:
        return 0
    batches = split(items, max_jobs)
    ids = [f"flownb-{uuid.uuid4().hex}" for _ in batches]
    pipe = queue.connection.pipeline(transaction=True)
    data = [queue.prepare_data(JOB_FUNC, args=(run_id, b), at_front=at_front, job_id=jid,
                               description=f"flownb {run_id} {b[0][0]}"
                                           + (f" +{len(b) - 1}" if len(b) > 1 else ""),
                               **JOB_OPTIONS)
            for b, jid in zip(batches, ids)]
    queue.enqueue_many(data, pipeline=pipe)
    if keys is not None:
        jobs_key = keys.jobs(run_id)
        pipe.hset(jobs_key, mapping={item_field(str(it[0]), int(it[1])): jid
                                     for b, jid in zip(batches, ids) for it in b})
        pipe.expire(jobs_key, ttl_s)
    pipe.execute()
    return len(batches)
