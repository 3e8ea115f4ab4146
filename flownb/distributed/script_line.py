"""One connection of the worker loop's own for the script calls it makes alone (a chain's hops).

Why: a chain of no-op nodes makes one ``EVALSHA`` (its ``COMMIT``) per hop, one after the other,
so every microsecond of the call is on the chain's critical path. Through redis-py's
``AsyncScript`` a call cost the worker ~80-100 µs of CPU on the 2-vCPU bench VM — the
script wrapper, the retry wrapper, a pool checkout and release (a lock, a condition, a
timeout), per-argument encoding in Python, two timeout contexts, the send/drain and
health-check paths — against ~25 µs for the same bytes written to a connection held here and
the reply read by the connection's own (hiredis) parser (`bench/README.md`, issue 21: a chain
hop was 0.31 ms, the goal 0.25).

What stays redis-py's: the connection itself (made by the loop pool's connection class with
its options: server, database, credentials, TLS, client name, timeouts), its parser (error
replies become redis-py's exceptions), and every unusual case. A call goes the ordinary way
(``await script(keys=..., args=...)``) when the line is busy with another call, when hiredis
is missing or the client speaks RESP3, when the server lost its scripts (``NOSCRIPT``: the
ordinary call loads the script), and when the line's connection failed — then the call is
sent again the ordinary way, exactly as redis-py's retry would re-send it on a new connection
(the scripts are idempotent: a commit sent twice answers ``dup``). A call cancelled while it
waits for its reply drops the connection, so no later call can read that reply as its own.

The connection's read timeout (``socket_timeout``) is kept by one watchdog timer per line, not
a timer per call (an ``asyncio.timeout`` per hop was ~5% of a chain worker's loop): a call
still unanswered after the timeout has its connection aborted, and goes the ordinary way.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis.asyncio as aredis
    from redis.commands.core import AsyncScript


def _packer() -> Any:
    """hiredis's ``pack_command`` when redis-py uses hiredis, else ``None`` (no line)."""
    try:
        from redis.utils import HIREDIS_AVAILABLE

        if not HIREDIS_AVAILABLE:
            return None
        import hiredis

        return hiredis.pack_command
    except ImportError:
        return None


class ScriptLine:
    """``await line.call(script, keys, args)``: the script's reply (see the module doc)."""

    def __init__(self, client: aredis.Redis) -> None:
        self.r = client
        self._pack = _packer()
        from redis.exceptions import ConnectionError as RConnectionError
        from redis.exceptions import NoScriptError, ResponseError
        from redis.exceptions import TimeoutError as RTimeoutError

        #: what a broken line raises (the call is sent again the ordinary way), what an error
        #: reply is, and the one error reply that is the line's to handle (imported once: a hop
        #: is ~100 µs of Python, an import statement a few)
        self._broken = (RConnectionError, RTimeoutError, OSError, EOFError)
        self._reply_error, self._noscript = ResponseError, NoScriptError
        kw = client.connection_pool.connection_kwargs
        self.enabled = self._pack is not None and kw.get("protocol") in (None, 2, "2")
        self._conn: Any = None
        self._busy = False
        self._sent = 0  # calls sent on the line so far: the watchdog tells one call from another
        self._sent_at = 0.0  # loop time the current call was sent
        self._watchdog: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Future[None]] = set()
        self.calls = 0  # calls answered on the line (for tests and the bench)
        self.fallbacks = 0  # calls sent the ordinary way after the line failed them

    async def call(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        if self._busy or not self.enabled:
            return await script(keys=keys, args=args)
        self._busy = True
        try:
            conn = self._conn
            if conn is None or not conn.is_connected:
                conn = await self._connect()
                if conn is None:
                    return await script(keys=keys, args=args)
            conn._writer.write(self._pack((b"EVALSHA", script.sha, len(keys), *keys, *args)))
            self._sent += 1
            if conn.socket_timeout:
                loop = asyncio.get_running_loop()
                self._sent_at = loop.time()
                if self._watchdog is None:
                    self._watchdog = loop.call_later(conn.socket_timeout, self._watch,
                                                     conn, self._sent)
            reply = await conn._parser.read_response()
        except self._broken:
            # the connection broke (a restart, CLIENT KILL, a timeout): drop it and send the
            # call again on the ordinary path, as redis-py's retry does on a new connection
            self._drop()
            self.fallbacks += 1
            return await script(keys=keys, args=args)
        except self._reply_error as exc:  # a parser that raises error replies: the line is fine
            reply = exc
        except BaseException:  # cancelled (or a parser bug) with a reply maybe in flight
            self._drop()
            raise
        finally:
            self._busy = False
        if isinstance(reply, self._reply_error):
            if isinstance(reply, self._noscript):  # the server lost its scripts: load it
                self.fallbacks += 1
                return await script(keys=keys, args=args)
            raise reply
        self.calls += 1
        return reply

    def _watch(self, conn: Any, sent: int) -> None:
        """Abort ``conn`` if the call in flight has waited ``socket_timeout`` for its reply; else
        look again when the current call's timeout is due (while calls go on)."""
        self._watchdog = None
        if conn is not self._conn or not self._busy:
            return
        loop = asyncio.get_running_loop()
        due = self._sent_at + conn.socket_timeout
        if self._sent == sent and loop.time() >= due:  # the same call, unanswered: give up on it
            writer = getattr(conn, "_writer", None)
            if writer is not None:
                writer.transport.abort()  # its read ends with a ConnectionError: sent again
            return
        self._watchdog = loop.call_at(max(due, loop.time() + 0.001), self._watch, conn,
                                      self._sent)

    async def _connect(self) -> Any:
        pool = self.r.connection_pool
        conn = pool.connection_class(**pool.connection_kwargs)
        await conn.connect()
        if not (hasattr(conn, "_writer") and hasattr(conn, "_parser")):  # another redis-py
            self.enabled = False
            await conn.disconnect()
            return None
        self._conn = conn
        return conn

    def _drop(self) -> None:
        # the watchdog watches one connection: the next one's first call must set its own, or a
        # call on it that never hears back would wait with no read timeout at all
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        conn, self._conn = self._conn, None
        if conn is not None:
            task = asyncio.ensure_future(conn.disconnect(nowait=True))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect()


__all__ = ["ScriptLine"]
