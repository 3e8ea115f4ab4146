"""A worker's heartbeat round trip: renew every lease it holds and read its runs' statuses at once.

Why one pipelined round trip: the heartbeat thread speaks blocking redis-py while the worker's
event loop keeps the GIL busy with its visits, so every round trip of that thread waits for the
GIL again (~5-10 ms on a busy loop, measured). It used to make one ``HGET status`` per run in
flight after the ``RENEW``: with 50 runs a beat took 0.5 s, growing with the worker's
concurrency, and a lease held for a free slot is re-queued by the reaper once it expires. Now a
beat costs the same whatever the number of runs (tests/test_worker_leases_busy.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .codec import _s

if TYPE_CHECKING:
    from .store import RedisStore


def renew_and_read_statuses(store: RedisStore, members: list[str],
                            run_ids: Iterable[str]) -> dict[str, str | None]:
    """Renew the leases of ``members`` (the lease TTL from now) and return each run's status,
    in one pipelined round trip (``RENEW`` by ``EVALSHA``; the script is loaded if Redis lost it)."""
    rids = list(run_ids)
    if not members and not rids:
        return {}
    pipe = store.r.pipeline(transaction=False)
    if members:
        store._scripts["RENEW"](keys=[store.keys.leases],
                                args=[int(store.settings.lease_ttl_s * 1000), *members], client=pipe)
    for rid in rids:
        pipe.hget(store.keys.meta(rid), "status")
    res = pipe.execute()[1 if members else 0:]
    return {rid: (_s(v) if v is not None else None) for rid, v in zip(rids, res)}


__all__ = ["renew_and_read_statuses"]
