"""Which Redis errors pass (a dropped or slow connection, OOM, loading, a failover), so a worker
retries or hands the visit back instead of failing the node.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("flownb.worker")

#: what a Redis error reply says when it passes: OOM under ``maxmemory``/``noeviction`` (inside a
#: script it arrives as a plain "Error running script ... -OOM ..." reply), a busy script, loading
#: after a restart, a read-only replica, a failover
_TRANSIENT_REPLIES = ("OOM ", "-OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN")


def is_transient_redis_error(exc: BaseException) -> bool:
    """A Redis error that passes: a dropped or slow connection, OOM, loading, a failover."""
    import redis.exceptions as rx

    # the builtin ones: a socket error redis.asyncio lets through (asyncio.TimeoutError is
    # TimeoutError), so the loop's awaited calls pass the same way as the blocking ones
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, rx.OutOfMemoryError,
                        rx.BusyLoadingError, rx.ReadOnlyError, rx.TryAgainError,
                        ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, rx.ResponseError) and any(t in str(exc) for t in _TRANSIENT_REPLIES)


class RedisPatience:
    """The worker's store calls after a claim, retried while Redis is away (a mixin of
    :class:`flownb.distributed.execute.NodeRunner`): a live worker never drops an item it claimed."""

    name: str
    redis_errors: int
    last_redis_error: str

    def stopping(self) -> bool:
        """Whether the worker is shutting down (a runtime with a lifecycle says)."""
        return False

    async def _stored(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """``fn(*args, **kw)``, retried with back-off while Redis is away, out of memory
        (``maxmemory`` with ``noeviction``), loading or read-only.

        Why not give up after a few tries: the reaper spares a running item as long as its
        worker is alive, so an item this live worker claimed and then dropped would be stuck for
        ever. Every store call after a claim is idempotent (the commit and the failure are
        guarded by the run's done markers), so retrying until Redis takes it is safe; only a
        stopping worker gives up (its liveness key goes, and the reaper re-runs the item)."""
        wait = 0.05
        while True:
            try:
                res = fn(*args, **kw)
                return await res if inspect.isawaitable(res) else res
            except Exception as exc:
                if not is_transient_redis_error(exc):
                    raise
                self.redis_errors += 1
                self.last_redis_error = f"{type(exc).__name__}: {exc}"
                if self.stopping():
                    raise
                if wait >= 0.4 or self.redis_errors == 1:
                    log.error("flownb worker %s: Redis refused to %s (%s); retrying in %.1fs",
                              self.name, what, self.last_redis_error, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 2.0)


__all__ = ["RedisPatience", "is_transient_redis_error"]
