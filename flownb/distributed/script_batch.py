"""Script calls made by a worker loop's visits in one loop turn, sent as one pipeline.

Why: a fan-out's branches of one batch (:mod:`.claims`) start together, run together (a quick
node runs on the loop itself) and so ``COMMIT`` together — thirty-odd ``EVALSHA`` calls, each
paying redis-py's per-call work on the loop (connection checkout and health check, the retry
wrapper, one socket write, one wake-up for its reply) and redis-server's per-read work. Queued
for the rest of the current loop turn and written in one non-transactional pipeline, they cost
one checkout, one write and one read of all the replies (py-spy on a worker during fan-outs:
``COMMIT`` calls were ~29% of the loop thread, most of it that per-call work). The first call
of a turn is not held back: it goes at once, as it did before, and a chain (one visit in flight,
one call per turn) pays nothing — and goes on the loop's own connection
(:mod:`.script_line`), not through redis-py's pool.

Each call keeps its own meaning: its own reply, or its own error (a script error, ``NOSCRIPT``
— that call alone is sent again with the script, as redis-py's ``Script`` does). A connection
that fails fails every call of the batch, and each caller retries as it would have alone
(:class:`~.transient.RedisPatience`; the scripts are idempotent: a commit run twice answers
``dup``). Nothing is delayed beyond the current loop turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .script_line import ScriptLine

if TYPE_CHECKING:
    import redis.asyncio as aredis
    from redis.commands.core import AsyncScript

_Call = tuple["AsyncScript", list[Any], list[Any], "asyncio.Future[Any]"]
#: the reply of a call alone in its loop turn: "send it yourself"
_ALONE = object()


class ScriptBatcher:
    """``await batcher.call(script, keys, args)``: the script's reply (see the module doc)."""

    def __init__(self, client: aredis.Redis, alone: Callable[[], bool] | None = None) -> None:
        self.r = client
        #: whether one visit alone is in flight (a chain): its calls go at once, no turn kept
        self.alone = alone or (lambda: False)
        self.line = ScriptLine(client)  # the calls sent alone: a connection of their own
        self._queue: list[_Call] = []
        self._turn_open = False  # a call was made in the current loop turn
        self._tasks: set[asyncio.Future[None]] = set()  # the loop holds tasks weakly
        self.batches = 0  # pipelines sent (more than one call each): for tests and the bench

    async def call(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        if self.alone():  # nothing to batch with: not even a callback to close the turn
            return await self.line.call(script, keys, args)
        loop = asyncio.get_running_loop()
        if not self._turn_open:  # the first call of a loop turn goes at once (a chain: always)
            self._turn_open = True
            loop.call_soon(self._end_turn)
            return await self.line.call(script, keys, args)
        fut: asyncio.Future[Any] = loop.create_future()  # later ones: together, at its end
        self._queue.append((script, keys, args, fut))
        res = await fut
        if res is _ALONE:  # the only one queued in its turn: its caller sends it (no task)
            return await self.line.call(script, keys, args)
        return res

    def _end_turn(self) -> None:
        self._turn_open = False
        batch, self._queue = self._queue, []
        if len(batch) == 1:
            if not batch[0][3].done():
                batch[0][3].set_result(_ALONE)
        elif batch:
            self._spawn(self._many(batch))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _one(call: _Call) -> None:  # as redis-py's Script: NOSCRIPT loads it, once
        script, keys, args, fut = call
        try:
            res = await script(keys=keys, args=args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, as if it called
            if not fut.done():
                fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not fut.done():
            fut.set_result(res)

    async def _many(self, batch: list[_Call]) -> None:
        from redis.exceptions import NoScriptError

        self.batches += 1
        pipe = self.r.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # noqa: BLE001 - every caller gets it and retries alone
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for call, reply in zip(batch, replies):
            fut = call[3]
            if isinstance(reply, NoScriptError):  # the server lost its scripts (restart, flush)
                self._spawn(self._one(call))
            elif fut.done():
                continue  # its caller was cancelled
            elif isinstance(reply, Exception):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)


__all__ = ["ScriptBatcher"]
