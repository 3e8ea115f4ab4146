"""A worker runs the next item of a run itself, when it has a free slot, instead of queueing an
RQ job that some worker (most often itself) would dequeue a moment later.

Where: the first items of a ``subflow``'s child run (one child, started by this worker), and a
parent visit re-queued by the last of its child runs to finish (its COMMIT answers ``parent``).
Both are one run's next step, like a single successor that COMMIT already hands to the
committing worker (``claim_for``). Why: each RQ job costs a worker's main thread a dequeue
(``BLMOVE``, the job hash, RQ's state and registries), the hand-over and a lease renewal, and
the enqueue a thread hop and a transaction — py-spy on a worker running the moderation agent
(three RQ jobs per run, two of them these) put RQ's share at ~7-9% of its CPU.

What is kept: the item is held exactly as a job's items are (:meth:`WorkerRuntime.submit`): in
``running`` (its lease is renewed by this worker's heartbeat), in a slot, claimed by ``CLAIM``
when its visit starts. A worker killed before that lets the lease expire and the reaper
re-queues the item (it has no waiting job to spare it). Fan-outs and ``map`` children still go
through RQ: spreading them over the workers is the point there. No slot free, a worker shutting
down, or no runtime with slots (a plain ``NodeRunner``): the job is queued as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from .keys import lease_member

if TYPE_CHECKING:
    from .visits import WorkerStats

#: at most this many items are taken here at once (a child run with more roots is queued)
MAX_TAKEN = 4


class TakeHere:
    """Mixed into :class:`~.visits.WorkerRuntime` (before ``NodeRunner``)."""

    _slots: threading.BoundedSemaphore
    _idle: threading.Condition
    _in_flight: int
    _loop: asyncio.AbstractEventLoop | None
    running: dict[str, str]
    stats: WorkerStats
    taken_here = 0  # items run here instead of an RQ job (published in the worker info)

    if TYPE_CHECKING:  # WorkerRuntime's and BatchClaims' (not defined here: the MRO)
        def closing(self) -> bool: ...

        def _spawn(self, coro: Any) -> None: ...

        async def _guarded(self, run_id: str, node: str, visit: int, member: str,
                           body: Any = None) -> None: ...

        async def _guarded_batch(self, run_id: str, items: list[tuple[str, int]],
                                 members: list[str]) -> None: ...

    def take_here(self, run_id: str, items: Sequence[Sequence[Any]]) -> bool:
        """Run ``items`` (``[node, visit]`` of ``run_id``) on this worker if a slot is free for
        each; ``False``: nothing was taken, queue them. Safe from any thread."""
        loop = self._loop
        if not items or len(items) > MAX_TAKEN or loop is None or self.closing():
            return False
        got = 0
        while got < len(items) and self._slots.acquire(blocking=False):
            got += 1
        if got < len(items):
            for _ in range(got):
                self._slots.release()
            return False
        wanted = [(str(n), int(v)) for n, v in items]
        members = [lease_member(run_id, n, v) for n, v in wanted]
        for m in members:
            self.running[m] = run_id  # held: the heartbeat renews it until its visit ends
        with self._idle:  # the counters under the lock: a starting child's thread and the loop
            self._in_flight += len(wanted)
            self.taken_here += len(wanted)
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
        coro: Coroutine[Any, Any, None]
        if len(wanted) == 1:
            coro = self._guarded(run_id, wanted[0][0], wanted[0][1], members[0])
        else:
            coro = self._guarded_batch(run_id, wanted, members)
        try:
            if _on(loop):
                self._spawn(coro)
            else:
                loop.call_soon_threadsafe(self._spawn, coro)
        except RuntimeError:  # the loop is closed (the worker stopped): queue them after all
            coro.close()
            for m in members:
                self.running.pop(m, None)
                self._slots.release()
            with self._idle:
                self._in_flight -= len(wanted)
                self.taken_here -= len(wanted)
                self._idle.notify_all()
            return False
        return True


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = ["MAX_TAKEN", "TakeHere"]
