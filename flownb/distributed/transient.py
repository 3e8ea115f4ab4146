"""Which Redis errors pass (a dropped or slow connection, OOM, loading, a failover), so a worker
retries or hands the visit back instead of failing the node.
"""

from __future__ import annotations


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


__all__ = ["is_transient_redis_error"]
