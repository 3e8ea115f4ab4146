"""A job's items claimed together: one ``CLAIM_MANY`` and one input read for the whole batch.

Why: a fan-out of 500 reaches the workers as at most 16 RQ jobs of ~31 items each, and each item
used to make two round trips of its own before its node ran — ``CLAIM`` and a pipelined read of
its input with the run's status — each a ``redis.asyncio`` call on the worker's loop
(py-spy on a worker during fan-outs: the claims and those reads were ~22% of the loop thread,
mostly redis-py's per-call work: connection checkout, packing, parsing, wake-ups). Here the
items a job hands over while slots are free are claimed by one ``CLAIM_MANY`` (the same checks
as ``CLAIM``, item by item: done, gone, leased by a live claim, paused, waiting for children),
and the output every single-source item reads (a fan-out branch reads its source's output) is
read once, in one ``HMGET``; each item then runs as if its commit had claimed it inline (its
input *carried*, see :meth:`~.execute.NodeRunner._run_claimed`). Per fan-out node that leaves
one round trip, its ``COMMIT``.

Nothing else changes: the claim sets each item's running lease and counts its delivery, so a
worker killed after it is detected by the reaper as before; the run's status is checked by the
claim itself a moment before the bodies start (as the single path checks it a moment before);
anything unusual — the run unknown here, a node type this worker lacks, a reply lost, an item
``busy`` (maybe this worker's own, its reply lost) — goes down the one-item path, which handles
it as it always did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from ..core import tracing
from ..core.context import OUTPUTS_PREFIX
from .runs import _NO_INPUT, Incapable, _Run

if TYPE_CHECKING:
    from .async_store import AsyncStore

log = logging.getLogger("flownb.worker")


async def _nothing() -> None:
    return None


class BatchClaims:
    """Claiming a job's batch of items at once (mixed into :class:`~.visits.WorkerRuntime`)."""

    name: str
    #: items claimed by a batch claim (published as ``claimed_together`` in ``{p}:workers``)
    claimed_together = 0

    if TYPE_CHECKING:  # provided by the runtime and the runner this is mixed into
        @property
        def astore(self) -> AsyncStore: ...

        def _guarded(self, run_id: str, node: str, visit: int, member: str,
                     body: Awaitable[None] | None = None) -> Coroutine[Any, Any, None]: ...

        def _sink(self) -> Any: ...

        async def _run(self, run_id: str) -> _Run | None: ...

        async def _run_claimed(self, run: _Run, nxt: Any) -> None: ...

        async def _start_children(self, run: _Run, cn: Any, visit: int, item: dict[str, Any],
                                  input_: Any = None) -> None: ...

    async def _guarded_batch(self, run_id: str, items: list[tuple[str, int]],
                             members: list[str]) -> None:
        """Claim ``items`` (each holding one slot) in one call, then run each in its own task.

        Every item ends in exactly one :meth:`_guarded` task, which frees its slot; if the batch
        claim cannot be made, every item takes the one-item path (its own ``CLAIM``)."""
        bodies: list[Awaitable[None] | None] = [None] * len(items)
        try:
            bodies = await self._claim_batch(run_id, items)
        except Incapable:
            pass  # the one-item path hands each item back (HandBack)
        except Exception as exc:  # noqa: BLE001 - each item retries on its own path
            log.warning("flownb worker %s: claiming %d item(s) of run %s at once failed (%s: "
                        "%s); claiming them one by one", self.name, len(items), run_id,
                        type(exc).__name__, exc)
        loop = asyncio.get_running_loop()
        for (node, visit), member, body in zip(items, members, bodies):
            loop.create_task(self._guarded(run_id, node, visit, member, body))

    async def _claim_batch(self, run_id: str, items: list[tuple[str, int]]
                           ) -> list[Awaitable[None] | None]:
        """What each item's task runs: ``None`` for the one-item path, else its body."""
        self._sink()
        run = await self._run(run_id)
        if run is None:  # unknown run: the one-item path logs it once per item
            return [None] * len(items)
        nodes = run.graph.nodes
        wanted = [(n, v) for n, v in items if n in nodes]  # an unknown node fails on its path
        replies = await self.astore.claim_many(run_id, run.digest, wanted, self.name) if wanted else []
        self.claimed_together += len(replies)
        by_item = {(str(r.get("node")), int(r.get("visit") or 0)): r for r in replies}
        carry: dict[str, Any] = {}  # source node -> its output's JSON, read once for the batch
        for n, v in wanted:
            res = by_item.get((n, v))
            src = _single_source(run, n, res)
            if src is not None:
                carry[src] = None
        if carry:
            srcs = list(carry)
            raw = await self.astore.r.hmget(self.astore.keys.state(run_id),
                                            [OUTPUTS_PREFIX + s for s in srcs])
            carry = dict(zip(srcs, raw))
        if replies:  # the claim found the run running (a run retried after it ended runs again)
            run.cancelled = False
        bodies: list[Awaitable[None] | None] = []
        for n, v in items:
            res = by_item.get((n, v)) if n in nodes else None
            kind = res.get("r") if res is not None else None
            if res is None or kind == "busy":
                bodies.append(None if n not in nodes or kind == "busy" else _nothing())
            elif kind == "create":
                bodies.append(self._start_children(run, nodes[n], v, res.get("item") or {}))
            elif kind == "ok":
                src = _single_source(run, n, res)
                carried = carry.get(src) if src is not None else None
                bodies.append(self._batch_visit(run, n, v, res["item"],
                                                _NO_INPUT if carried is None else carried))
            else:  # done, gone, stale, paused, waiting: not ours to run
                bodies.append(_nothing())
        return bodies

    async def _batch_visit(self, run: _Run, node: str, visit: int, item: dict[str, Any],
                           carried: Any) -> None:
        tr = tracing.TRACER
        if tr is not None:  # continue the trace the run was submitted in
            with tr.resume(run.trace or tracing.run_carrier(run.run_id)):
                return await self._run_claimed(run, (node, visit, item, carried))
        return await self._run_claimed(run, (node, visit, item, carried))


def _single_source(run: _Run, node: str, res: dict[str, Any] | None) -> str | None:
    """The one source whose output is a claimed item's whole input, or ``None`` when its input
    is anything else (declared inputs, the run's inputs, several sources, a structural node,
    a resumed parent): those items read their input on their own path."""
    if res is None or res.get("r") != "ok":
        return None
    item = res.get("item")
    if not isinstance(item, dict) or item.get("k") == "resume":
        return None
    cn = run.graph.nodes[node]
    src = item.get("s")
    if (cn.structural or cn.spec.inputs is not None or not isinstance(src, list)
            or len(src) != 1 or not (cn.n_fwd_in <= 1 or cn.join == "any")):
        return None
    return str(src[0])


__all__ = ["BatchClaims"]
