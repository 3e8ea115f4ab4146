"""The LLM rate limiter shared by every worker on one Redis.

Same contract and algorithm as :class:`flownb.llm.ratelimit.MemoryRateLimiter` (GCRA), but the
bucket lives in Redis and each decision is one Lua script call (``RATE_LIMIT`` in
:mod:`flownb.distributed.scripts`) on the server's clock: eight workers of 32 concurrent calls
share one requests-per-minute budget instead of each spending its own. A worker installs it at
start (:func:`install`), so the LLM nodes — which only know the :class:`RateLimiter`
interface — need no Redis import.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..llm.ratelimit import RateLimit, clamp_backoff, set_limiter
from .keys import Keys
from .scripts import RATE_LIMIT

if TYPE_CHECKING:
    from .async_store import AsyncStore


class RedisRateLimiter:
    """Buckets at ``{prefix}:llm:rate:<bucket>``; thread-safe (redis-py's pool)."""

    def __init__(self, conn: Any, *, prefix: str = "flownb") -> None:
        self.conn = conn
        self.keys = Keys(prefix)
        self._script = conn.register_script(RATE_LIMIT)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._astore: AsyncStore | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, astore: AsyncStore) -> None:
        """Calls made on ``loop`` (the worker's) await ``astore`` instead of blocking it."""
        self._loop, self._astore = loop, astore

    def reserve(self, key: str, limit: RateLimit, tokens: int) -> float:
        raw = self._script(keys=[self.keys.llm_rate(key)], args=_reserve_args(limit, tokens))
        return float(raw.decode() if isinstance(raw, bytes) else raw)

    async def areserve(self, key: str, limit: RateLimit, tokens: int) -> float:
        """:meth:`reserve` awaited on the worker's loop; on any other loop (a node body's own
        ``asyncio.run`` in a thread) the blocking call, which blocks only that thread."""
        if self._astore is None or asyncio.get_running_loop() is not self._loop:
            return self.reserve(key, limit, tokens)
        raw = await self._astore.rate_limit(self.keys.llm_rate(key), _reserve_args(limit, tokens))
        return float(raw.decode() if isinstance(raw, bytes) else raw)

    def backoff(self, key: str, seconds: float) -> None:
        self._script(keys=[self.keys.llm_rate(key)], args=["backoff", clamp_backoff(seconds)])

    def __repr__(self) -> str:
        return f"<RedisRateLimiter {self.keys.llm_rate('*')}>"


def _reserve_args(limit: RateLimit, tokens: int) -> list[Any]:
    return ["reserve", limit.rpm or 0, limit.tpm or 0, max(1, limit.burst), max(0, int(tokens))]


def install(conn: Any, *, prefix: str = "flownb") -> RedisRateLimiter:
    """Make every LLM call of this process draw from the buckets on ``conn``'s Redis."""
    limiter = RedisRateLimiter(conn, prefix=prefix)
    set_limiter(limiter)
    return limiter
