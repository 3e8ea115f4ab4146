"""A worker visit's Redis I/O on the loop: the awaited store, the event sink, the input reads.

:class:`LoopIO` is the part of :class:`~flownb.distributed.execute.NodeRunner` that talks to
Redis through ``redis.asyncio`` (:mod:`.async_store`), kept apart so the visit's logic
(claim -> policy -> commit) reads as before. Why awaited: see :mod:`.async_store`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..core.context import OUTPUTS_PREFIX, resolve_inputs
from ..core.graph import CNode
from .async_store import AsyncStore, EventSink
from .jobs import enqueue_items
from .reads import _ABSENT, Reader, declared_input_keys, template_read_keys
from .runs import _NO_INPUT, _Run, _storable
from .store import RedisStore, loads

if TYPE_CHECKING:
    import rq


class LoopIO:
    """The awaited Redis calls of a worker's visits (mixed into ``NodeRunner``)."""

    store: RedisStore
    queue: rq.Queue
    _astore: AsyncStore | None
    _events: EventSink | None
    _read_keys: dict[tuple[str, str], list[str]]

    def stopping(self) -> bool:
        return False

    def alone(self) -> bool:
        """Whether the visit asking is the only one in flight (the runtime says)."""
        return False

    @property
    def astore(self) -> AsyncStore:
        """The loop's ``redis.asyncio`` store (:mod:`.async_store`): every Redis call of a visit
        on the loop is awaited, never blocking the other visits in flight. Built on first use,
        from the loop: one pool per worker loop, the sync client's connection options."""
        if self._astore is None:  # a visit alone sends its script calls at once (.script_batch)
            self._astore = AsyncStore(self.store, alone=self.alone)
        return self._astore

    def _sink(self) -> EventSink:
        if self._events is None:
            self._events = EventSink(self.astore, asyncio.get_running_loop(), self.stopping)
        return self._events

    async def _flush_events(self) -> None:
        """The visits' queued events reach the stream before a COMMIT or FAIL writes its own."""
        if self._events is not None:
            await self._events.flush()

    async def _afail(self, run_id: str, digest: str, err: dict[str, Any], *,
                     stats: dict[str, Any] | None = None, event: dict[str, Any] | None = None,
                     node: str | None = None) -> None:
        """:meth:`_fail` from the loop: awaited, after the visits' queued events."""
        err, stats, event = _storable(err), _storable(stats), _storable(event)
        await self._flush_events()
        res = await self.astore.fail(run_id, digest, node or err.get("node_id") or "", err,
                                     stats=stats, event=event)
        if res.get("parent"):
            prun, pnode, pvisit = res["parent"]
            await self._enqueue(prun, [[pnode, pvisit]])

    def take_here(self, run_id: str, items: list[list[Any]]) -> bool:
        """Run ``items`` on this worker instead of an RQ job, if it can (:mod:`.take_here`)."""
        return False

    async def _enqueue_here(self, run_id: str, items: list[list[Any]]) -> int:
        """:meth:`_enqueue`, unless this worker runs the items itself (:mod:`.take_here`)."""
        return 0 if self.take_here(run_id, items) else await self._enqueue(run_id, items)

    async def _enqueue(self, run_id: str, items: list[list[Any]]) -> int:
        """RQ jobs for ``items``, queued from a thread: RQ speaks only blocking redis-py."""
        return await asyncio.to_thread(enqueue_items, self.queue, run_id, items, keys=self.store.keys)

    def _add_event(self, run_id: str, type_: str, node: str | None, data: dict[str, Any]) -> None:
        if self._events is not None:  # queued for the loop's next pipelined batch
            self._events.emit(run_id, type_, node, data)
        else:
            self.store.add_event(run_id, type_, node, data)

    async def _ainput(self, run: _Run, cn: CNode, item: dict[str, Any], reader: Reader,
                      carried: Any, status: bool) -> tuple[Any, str | None]:
        """:meth:`_input` with its Redis reads awaited in one round trip: the input's fields,
        the fields the node's templates may read (:func:`.reads.template_read_keys`, into
        ``reader``'s cache) and, when ``status``, the run's status."""
        src = item.get("s")
        sources = list(src) if isinstance(src, list) else []
        declared = cn.spec.inputs
        single = len(sources) == 1 and (cn.n_fwd_in <= 1 or cn.join == "any")
        if carried is not _NO_INPUT and single:  # the source's output, just committed here
            v = loads(carried)
            reader.cache[OUTPUTS_PREFIX + sources[0]] = (
                v if isinstance(v, (str, int, float, bool, type(None))) else loads(carried))
        keys: list[str] = []
        if declared is not None:
            keys = declared_input_keys(declared)
        elif not sources:
            keys = list(run.input_keys)
        elif not (single and carried is not _NO_INPUT):
            keys = [OUTPUTS_PREFIX + s for s in sources]
        rk = (run.digest, cn.id)
        extra = self._read_keys.get(rk)
        if extra is None:
            extra = self._read_keys[rk] = template_read_keys(cn.params)
        fetch = list(dict.fromkeys(k for k in [*keys, *extra] if k not in reader.cache))
        st: str | None = None
        vals: dict[str, Any] = {}
        if status:
            st, vals = await self.astore.status_and_state(run.run_id, fetch)
        elif fetch:
            vals = await self.astore.state_many(run.run_id, fetch)
        for k in fetch:  # the reads below, the transforms' and the node's own hit the cache
            reader.cache[k] = vals.get(k, _ABSENT)
        if declared is not None:
            return resolve_inputs(declared, reader), st
        if not sources:
            return {k: vals[k] for k in run.input_keys if k in vals}, st
        if single:
            return (loads(carried) if carried is not _NO_INPUT
                    else reader.get_output(sources[0])), st
        return {s: reader.get_output(s) for s in sources}, st
