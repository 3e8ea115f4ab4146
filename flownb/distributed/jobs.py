"""How node work becomes RQ jobs.

A job never carries code or pickles: it is ``flownb.distributed.worker.process(run_id, items)``
with JSON arguments (RQ's ``JSONSerializer``); the worker looks the node up in the run's stored
blueprint and its own registry. One job may carry several ready items of one run, so a wide
fan-out costs a few RQ jobs rather than hundreds; a run's single ready successor is not a job at
all (the committing worker continues it inline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis
    import rq

JOB_FUNC = "flownb.distributed.worker.process"
#: a fan-out is spread over at most this many jobs (each takes its share of the items)
MAX_JOBS_PER_FANOUT = 16
#: RQ bookkeeping we do not need: results live in the run's state, failures in its events
JOB_OPTIONS: dict[str, Any] = {"result_ttl": 0, "failure_ttl": 3600, "timeout": -1}


def make_queue(conn: redis.Redis, name: str = "flownb") -> rq.Queue:
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(name, connection=conn, serializer=JSONSerializer)


def split(items: Sequence[Sequence[Any]], max_jobs: int = MAX_JOBS_PER_FANOUT) -> list[list[list[Any]]]:
    """Deal items round-robin into at most ``max_jobs`` batches (keeps branch order fair)."""
    n = min(len(items), max_jobs)
    batches: list[list[list[Any]]] = [[] for _ in range(n)]
    for i, it in enumerate(items):
        batches[i % n].append(list(it))
    return batches


def enqueue_items(queue: rq.Queue, run_id: str, items: Sequence[Sequence[Any]], *,
                  at_front: bool = False) -> int:
    """Enqueue ready ``[node, visit]`` items of one run; returns the number of jobs.

    ``at_front`` is for recovered work (a dead worker's node): it should not wait behind the
    backlog that piled up while its lease ran out."""
    if not items:
        return 0
    batches = split(items)
    if len(batches) == 1:
        queue.enqueue_call(JOB_FUNC, args=(run_id, batches[0]), at_front=at_front,
                           description=f"flownb {run_id} {batches[0][0][0]}", **JOB_OPTIONS)
        return 1
    data = [queue.prepare_data(JOB_FUNC, args=(run_id, b), at_front=at_front,
                               description=f"flownb {run_id} {b[0][0]} +{len(b) - 1}", **JOB_OPTIONS)
            for b in batches]
    queue.enqueue_many(data)
    return len(batches)
