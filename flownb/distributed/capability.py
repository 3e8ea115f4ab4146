"""How long an item waits for a worker that has its node type before its run fails.

Why wait at all: a worker that lacks a node's module hands the item back to a live worker that
has it, and fails the run when none has. But a capable worker that is still starting (importing
its modules) is not in the worker list yet: failing at once failed 13 of 20 runs during such a
start-up window. So the item is handed back for this long first (``FLOWNB_CAPABILITY_GRACE_S``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from .execute import Incapable
from .jobs import enqueue_items
from .store import loads

if TYPE_CHECKING:
    import redis
    from rq import Queue

    from .store import RedisStore

log = logging.getLogger("flownb.worker")

ENV = "FLOWNB_CAPABILITY_GRACE_S"
DEFAULT_CAPABILITY_GRACE_S = 15.0


def capability_grace_s() -> float:
    """The grace in seconds (the default when the variable is unset or not in 0..3600)."""
    try:
        value = float(os.environ.get(ENV, DEFAULT_CAPABILITY_GRACE_S))
    except ValueError:
        return DEFAULT_CAPABILITY_GRACE_S
    return value if 0 <= value <= 3600 else DEFAULT_CAPABILITY_GRACE_S


class HandBack:
    """The part of :class:`flownb.distributed.visits.WorkerRuntime` that deals with an item whose
    node type this worker lacks: hand it back to a worker that has it, wait for one during the
    grace, or fail the run. Kept here, beside the grace, so the runtime stays about visits."""

    conn: redis.Redis
    name: str
    queue: Queue
    store: RedisStore
    stats: Any
    _incapable_since: dict[tuple[str, str, int], float]

    def _fail(self, run_id: str, digest: str, err: dict[str, Any]) -> None:
        raise NotImplementedError  # the runtime's NodeRunner._fail comes first in its MRO

    async def _incapable(self, run_id: str, node: str, visit: int, exc: Incapable) -> None:
        """An item whose node type this worker lacks: hand it back, or fail the run when no
        worker has it — but only after :data:`CAPABILITY_GRACE_S` without one.

        Why the grace: a capable worker that is starting (importing its modules) is not yet in
        the worker list; failing at once failed 13 of 20 runs during such a start-up window."""
        key = (run_id, node, visit)
        first = self._incapable_since.setdefault(key, time.monotonic())
        if not self._capable(exc) and time.monotonic() - first < capability_grace_s():
            if len(self._incapable_since) > 10000:
                self._incapable_since.clear()
            log.warning("flownb: %s; no live worker has it yet: %s|%s of run %s waits up to "
                        "%.0fs for one", exc.message, node, visit, run_id, capability_grace_s())
            await asyncio.sleep(0.5)
            enqueue_items(self.queue, run_id, [[node, visit]], keys=self.store.keys,
                          ttl_s=self.store.settings.result_ttl_s)
            return
        self._incapable_since.pop(key, None)
        self._hand_back(run_id, node, visit, exc)

    def _capable(self, exc: Incapable) -> list[str]:
        return [w for w, info in self._live_workers().items()
                if w != self.name and set(exc.missing) <= set(info.get("names") or ())]

    def _hand_back(self, run_id: str, node: str, visit: int, exc: Incapable) -> None:
        """Give the item back for a worker that has the node types, or fail the run when no
        live worker has them."""
        capable = self._capable(exc)
        if not capable:
            meta = self.store.meta(run_id)
            err = {"node_id": node, "run_id": run_id, "attempt": 1, "type": "RegistryError",
                   "message": f"no live worker can run node type(s) "
                              f"{', '.join(map(repr, exc.missing))} ({exc.message}); start a "
                              "worker with --import <the module that registers them>",
                   "traceback": ""}
            log.error("flownb: run %s: %s", run_id, err["message"])
            self._fail(run_id, meta.get("blueprint", ""), err)
            return
        self.stats.handed_back += 1
        log.warning("flownb: %s; handing %s|%s of run %s back for %s", exc.message, node, visit,
                    run_id, ", ".join(capable[:3]))
        time.sleep(0.05)  # do not spin on our own hand-backs while the capable worker is busy
        enqueue_items(self.queue, run_id, [[node, visit]], keys=self.store.keys,
                      ttl_s=self.store.settings.result_ttl_s)

    def _live_workers(self) -> dict[str, dict[str, Any]]:
        out = {}
        horizon = time.time() - max(3.0, self.store.settings.lease_ttl_s)
        for k, v in self.conn.hgetall(self.store.keys.workers).items():
            try:
                info = loads(v)
            except Exception as exc:  # noqa: BLE001 - a foreign row
                log.debug("flownb: ignoring unreadable worker row %r: %s", k, exc)
                continue
            if isinstance(info, dict) and float(info.get("seen") or 0) >= horizon:
                out[k.decode() if isinstance(k, bytes) else str(k)] = info
        return out


__all__ = ["DEFAULT_CAPABILITY_GRACE_S", "ENV", "HandBack", "capability_grace_s"]
