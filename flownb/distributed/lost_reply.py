"""A COMMIT whose reply was lost: take up the successor it claimed for this worker.

Why this exists: the worker's Redis clients re-send a command whose connection dropped (redis-py's
``Retry``, and :meth:`~.execute.NodeRunner._stored` on top). When a connection is killed after
Redis ran a COMMIT but before its reply reached the worker (``CLIENT KILL``, a proxy or load
balancer closing idle sockets, a network blip), the re-sent COMMIT finds the visit's done marker
and answers ``"dup"``. The first COMMIT may already have claimed the single successor *for this
worker* (``claim_for``: the inline continuation, state ``r``, ``w`` = this worker, no RQ job).
Nobody runs that item: the reaper spares a running item while its worker is alive, and the
worker forgot it with the lost reply, so the run hung for ever ("lost" in the bench's
``redis_drop``). :func:`take_up_lost_successor` finds such an item and hands it back to the
visit loop, exactly as the lost reply would have.

Telling a lost reply from another worker's commit (a zombie whose lease expired): only an item
claimed by *this* worker that no visit here holds is taken. Another visit of the same run on
this loop may have a COMMIT in flight that claims the same successor (a join) for this worker:
:class:`CommitsInFlight` counts them, and the look waits until they have all been answered, so
their claimed items are already in the runner's ``running`` map (no await lies between a
COMMIT's reply and that entry).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .codec import loads
from .keys import lease_member

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..core.graph import CNode
    from .async_store import AsyncStore

log = logging.getLogger("flownb.worker")


class CommitsInFlight:
    """How many COMMITs of each run this loop has sent and not yet had answered."""

    def __init__(self) -> None:
        self._n: dict[str, int] = {}

    def __contains__(self, run_id: object) -> bool:
        return bool(self._n.get(str(run_id)))

    def of(self, run_id: str) -> _Counted:
        """Count a COMMIT of ``run_id`` from before it is sent until its reply is in (a class,
        not a generator context manager: it is entered once per chain hop)."""
        return _Counted(self._n, run_id)


class _Counted:
    __slots__ = ("_n", "_run_id")

    def __init__(self, n: dict[str, int], run_id: str) -> None:
        self._n, self._run_id = n, run_id

    def __enter__(self) -> None:
        self._n[self._run_id] = self._n.get(self._run_id, 0) + 1

    def __exit__(self, *exc: object) -> None:
        n = self._n.get(self._run_id, 0) - 1
        if n > 0:
            self._n[self._run_id] = n
        else:
            self._n.pop(self._run_id, None)


def _successors(cn: CNode) -> set[str]:
    return {e.target for e in cn.out}


def _orphans(raw: dict[Any, Any], succ: set[str], run_id: str, worker: str,
             held: Callable[[str], bool]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for field, val in raw.items():
        f = field.decode() if isinstance(field, bytes) else str(field)
        node, _, visit = f.rpartition("|")
        if node not in succ or not visit.isdigit():
            continue
        it = loads(val, what="pending item")
        if (isinstance(it, dict) and it.get("st") == "r" and it.get("w") == worker
                and not held(lease_member(run_id, node, int(visit)))):
            yield node, int(visit), it


async def take_up_lost_successor(astore: AsyncStore, stored: Any, commits: CommitsInFlight,
                                 running: dict[str, str], worker: str, run_id: str,
                                 cn: CNode) -> tuple[str, int, dict[str, Any]] | None:
    """After a ``"dup"`` COMMIT of ``cn``: the successor item this worker claimed but runs no
    visit of (the lost reply's ``claimed``), as ``(node, visit, item)``, or ``None``.

    ``stored`` is the runner's retry-while-Redis-away wrapper; ``running`` its map of the lease
    members held here."""
    succ = _successors(cn)
    if not succ:
        return None
    while run_id in commits:  # their claimed items reach ``running`` with their replies
        await asyncio.sleep(0.005)
    raw = await stored("read the pending items", astore.r.hgetall, astore.keys.pending(run_id))
    for node, visit, it in _orphans(raw or {}, succ, run_id, worker, running.__contains__):
        log.warning("flownb worker %s: taking up %s|%s of run %s, claimed for this worker by "
                    "the commit of %s whose reply was lost", worker, node, visit, run_id, cn.id)
        return node, visit, it
    return None


__all__ = ["CommitsInFlight", "take_up_lost_successor"]
