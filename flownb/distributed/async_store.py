"""The worker loop's Redis: the hot-path twin of :class:`~flownb.distributed.store.RedisStore` on
``redis.asyncio``.

Why: a worker runs up to 32 visits on one asyncio loop. With the blocking redis-py client every
claim, commit, failure, event and state read stopped that loop for a whole round trip, so all the
visits in flight waited on each one (py-spy: ~42% of the loop thread in those calls). Here each
call is awaited: the loop serves the other visits (their HTTP answers, their own Redis replies)
while one waits. The parser is hiredis when it is installed (``redis.utils.HIREDIS_AVAILABLE``).

One behaviour, one place: the same Lua script constants (:mod:`.scripts`, run by ``EVALSHA`` with
a ``NOSCRIPT`` fallback: ``register_script``), the same argument layouts and decoders
(:mod:`.store_args`), the same blueprint cache (the sync store's). The blocking store stays for
the client API, the heartbeat thread and sync node bodies running in threads.

:class:`EventSink` batches the events a loop's visits emit (``ctx.emit``, LLM usage, retries)
into one pipelined ``XADD`` round trip, and is flushed before a visit commits or fails, so a
run's stream keeps its order (a node's events before its ``node_finished``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.blueprint import Blueprint
from . import scripts
from .codec import _s, loads
from .keys import item_field, stats_field
from .script_batch import ScriptBatcher
from .store_args import (add_resume_children, commit_args, decode_meta, decode_state,
                         event_fields, fail_args, resume_fields, run_script_args)
from .transient import is_transient_redis_error

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aredis

    from .store import RedisStore

log = logging.getLogger("flownb.worker")

#: the scripts a worker's visits run from the loop
HOT_SCRIPTS = ("CLAIM", "CLAIM_MANY", "COMMIT", "FAIL")
#: seconds a visit waits for a free connection of the loop's pool before it counts as a Redis
#: error (and is retried: :class:`.transient.RedisPatience`)
POOL_WAIT_S = 30.0
#: connection options that mean the same on redis.asyncio as on the sync client
_PORTABLE = ("host", "port", "path", "db", "username", "password", "socket_timeout",
             "socket_connect_timeout", "socket_keepalive", "socket_keepalive_options",
             "retry_on_timeout", "health_check_interval", "client_name", "encoding",
             "encoding_errors", "credential_provider", "protocol")


def async_client(conn: redis.Redis) -> aredis.Redis:
    """A ``redis.asyncio`` client for the server, database, credentials, TLS, timeouts and
    retry policy of the sync client ``conn`` (one pool: build it once per loop)."""
    import redis.asyncio as aredis
    from redis.asyncio.connection import (BlockingConnectionPool, SSLConnection,
                                          UnixDomainSocketConnection)
    from redis.asyncio.retry import Retry

    pool = conn.connection_pool
    kw = pool.connection_kwargs
    opts: dict[str, Any] = {k: kw[k] for k in _PORTABLE if kw.get(k) is not None}
    cls: type[Any] = aredis.Connection
    if opts.get("path"):
        cls = UnixDomainSocketConnection
        opts.pop("host", None)
        opts.pop("port", None)
        opts.pop("socket_keepalive", None)
        opts.pop("socket_keepalive_options", None)
    else:
        opts.pop("path", None)
        if "SSL" in getattr(pool, "connection_class", type(None)).__name__:
            cls = SSLConnection
            opts.update({k: v for k, v in kw.items() if k.startswith("ssl_") and v is not None})
    sync_retry = kw.get("retry")
    if sync_retry is not None and getattr(sync_retry, "_backoff", None) is not None:
        opts["retry"] = Retry(sync_retry._backoff, getattr(sync_retry, "_retries", 0),
                              tuple(getattr(sync_retry, "_supported_errors", ())) or
                              (aredis.ConnectionError, aredis.TimeoutError))
    # a visit waits for a free connection instead of failing: with a plain pool, 128 visits
    # awaiting Redis at once on a pool of 100 (redis-py's default size) raised "Too many
    # connections", which the visits took for Redis being away and backed off for up to 2 s
    # each (a worker of 128 visits was slower than one of 32). The cap stays the sync pool's.
    apool = BlockingConnectionPool(connection_class=cls, timeout=POOL_WAIT_S,
                                   max_connections=getattr(pool, "max_connections", None) or 100,
                                   **opts)
    return aredis.Redis(connection_pool=apool)


def fit_pool(conn: redis.Redis, concurrency: int) -> None:
    """Let the blocking client's pool hold a connection for every thread of a worker of
    ``concurrency`` visits: sync node bodies (their lazy state reads), RQ's thread, the heartbeat,
    the enqueues. Why: redis-py's pool (100 by default) raises "Too many connections" past its
    size instead of waiting, which a node reading state would take for a Redis failure. A
    blocking pool waits already and is left alone."""
    import redis as redis_mod

    pool = conn.connection_pool
    need = concurrency + 16
    if (type(pool) is redis_mod.ConnectionPool and isinstance(pool.max_connections, int)
            and pool.max_connections < need):
        log.info("flownb worker: Redis pool raised from %d to %d connections (%d visits at once)",
                 pool.max_connections, need, concurrency)
        pool.max_connections = need


def _wire(values: list[Any]) -> list[Any]:
    """``values`` as redis-py would send them (str as UTF-8, int and float by ``repr``)."""
    return [v.encode() if isinstance(v, str) else repr(v).encode()
            if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in values]


class AsyncStore:
    """The calls a worker's visits make from the loop, awaited (see the module docstring)."""

    def __init__(self, store: RedisStore, client: aredis.Redis | None = None,
                 alone: Callable[[], bool] | None = None) -> None:
        self.sync = store
        self.keys = store.keys
        self.settings = store.settings
        self.r = client if client is not None else async_client(store.r)
        self._scripts = {n: self.r.register_script(scripts.ALL[n]) for n in HOT_SCRIPTS}
        self._rate = self.r.register_script(scripts.RATE_LIMIT)
        self._batch = ScriptBatcher(self.r, alone)  # the calls of one loop turn: one pipeline
        self._args: dict[tuple[str, str | None], tuple[list[Any], list[Any]]] = {}

    async def _call(self, name: str, run_id: str, digest: str | None, extra: list[Any]) -> Any:
        ka = self._args.get((run_id, digest))
        if ka is None:  # the same for every visit of a run: built once (the loop's CPU is the cost)
            ks, args = run_script_args(self.keys, self.settings, run_id, digest)
            # as bytes: redis-py packs bytes as they are, a str or int it encodes on every call
            ka = self._args[(run_id, digest)] = (_wire(ks), _wire(args))
            if len(self._args) > 1024:
                self._args.pop(next(iter(self._args)))
        return await self._batch.call(self._scripts[name], ka[0], [*ka[1], *extra])

    @property
    def line_calls(self) -> int:
        """Script calls answered on the loop's own connection (:mod:`.script_line`)."""
        return self._batch.line.calls

    async def aclose(self) -> None:
        await self._batch.line.aclose()
        await self.r.aclose(close_connection_pool=True)

    # -- the visit --------------------------------------------------------------------------------
    async def claim(self, run_id: str, digest: str, node: str, visit: int, worker: str) -> dict[str, Any]:
        res: dict[str, Any] = loads(await self._call("CLAIM", run_id, digest, [node, visit, worker]))
        fields = resume_fields(res, node, visit)
        if fields is not None:
            ch, cf = await self.r.hmget(self.keys.sched(run_id), fields)
            add_resume_children(res["item"], run_id, node, ch, cf)
        return res

    async def claim_many(self, run_id: str, digest: str, items: list[tuple[str, int]],
                         worker: str) -> list[dict[str, Any]]:
        """``CLAIM_MANY``: :meth:`claim` for several items of one run in one script call (a
        job's batch, :mod:`.claims`); each reply names its ``node`` and ``visit``. An empty list
        when the run is not running (CLAIM would answer ``stale`` for each)."""
        flat: list[Any] = [x for n, v in items for x in (n, v)]
        out = loads(await self._call("CLAIM_MANY", run_id, digest, [worker, *flat]))
        if not isinstance(out, list):  # Lua's cjson encodes the empty table as {}
            return []
        for res in out:
            node, visit = str(res.get("node")), int(res.get("visit") or 0)
            fields = resume_fields(res, node, visit)
            if fields is not None:
                ch, cf = await self.r.hmget(self.keys.sched(run_id), fields)
                add_resume_children(res["item"], run_id, node, ch, cf)
        return out

    async def commit(self, run_id: str, digest: str, node: str, visit: int, *, output_json: str,
                     taken: Iterable[int], stats: Mapping[str, Any], event: Mapping[str, Any],
                     writes: Mapping[str, Any] | None = None, claim_for: str = "",
                     event_node: str = "") -> dict[str, Any]:
        raw = await self._call("COMMIT", run_id, digest, commit_args(
            node, visit, output_json=output_json, taken=taken, stats=stats, event=event,
            writes=writes, claim_for=claim_for, event_node=event_node))
        return loads(raw)  # type: ignore[no-any-return]

    async def fail(self, run_id: str, digest: str, node: str, error: Mapping[str, Any], *,
                   stats: Mapping[str, Any] | None = None,
                   event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        raw = await self._call("FAIL", run_id, digest, fail_args(node, error, stats, event))
        return loads(raw)  # type: ignore[no-any-return]

    # -- reads ------------------------------------------------------------------------------------
    async def meta(self, run_id: str) -> dict[str, str]:
        return decode_meta(await self.r.hgetall(self.keys.meta(run_id)))

    async def status(self, run_id: str) -> str | None:
        v = await self.r.hget(self.keys.meta(run_id), "status")
        return _s(v) if v is not None else None

    async def state_many(self, run_id: str, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        return decode_state(run_id, keys, await self.r.hmget(self.keys.state(run_id), keys))

    async def status_and_state(self, run_id: str, keys: list[str]) -> tuple[str | None, dict[str, Any]]:
        """The run's status and state fields ``keys`` in one pipelined round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(self.keys.meta(run_id), "status")
        if keys:
            pipe.hmget(self.keys.state(run_id), keys)
        res = await pipe.execute()
        status = _s(res[0]) if res[0] is not None else None
        return status, decode_state(run_id, keys, res[1]) if keys else {}

    async def pending_item(self, run_id: str, node: str, visit: int) -> dict[str, Any] | None:
        raw = await self.r.hget(self.keys.pending(run_id), item_field(node, visit))
        return loads(raw) if raw is not None else None

    async def load_blueprint(self, digest: str) -> Blueprint:
        """The sync store's cached blueprint, read from Redis without blocking the loop."""
        bp = self.sync._blueprints.get(digest)
        if bp is not None:
            return bp
        return self.sync.cache_blueprint(digest, await self.r.hget(self.keys.blueprint(digest), "json"))

    async def set_node_stats(self, run_id: str, node: str, stats: str) -> None:
        await self.r.hset(self.keys.state(run_id), stats_field(node), stats)

    # -- events and rate limits ---------------------------------------------------------------------
    async def add_events(self, batch: list[tuple[str, dict[str, str]]]) -> None:
        """XADD each ``(stream key, fields)`` in order, in one pipelined round trip."""
        pipe = self.r.pipeline(transaction=False)
        for key, fields in batch:
            pipe.xadd(key, fields, maxlen=self.settings.events_maxlen,  # type: ignore[arg-type]
                      approximate=True)
        await pipe.execute()

    async def rate_limit(self, bucket_key: str, args: list[Any]) -> Any:
        """One ``RATE_LIMIT`` script call (:mod:`.ratelimit` builds the arguments)."""
        return await self._rate(keys=[bucket_key], args=args)


class EventSink:
    """Events of one loop's visits, sent in pipelined batches in emission order.

    Why not one XADD each: a streaming LLM node emits up to ten token events a second and every
    node a usage event; with 32 visits in flight one round trip per event was a large share of
    the loop's time. ``emit`` only encodes and queues (from any thread: a sync node body in the
    pool hands its events to the loop); one task drains the queue; :meth:`flush` waits until
    everything emitted so far is in Redis (called before COMMIT and FAIL)."""

    def __init__(self, store: AsyncStore, loop: asyncio.AbstractEventLoop,
                 stopping: Any = None) -> None:
        self.store = store
        self.loop = loop
        self._stopping = stopping or (lambda: False)
        self._buf: list[tuple[str, dict[str, str]]] = []
        self._task: asyncio.Task[None] | None = None

    def emit(self, run_id: str, type_: str, node: str | None, data: Mapping[str, Any]) -> None:
        entry = (self.store.keys.events(run_id), event_fields(run_id, type_, node, data))
        if self._on_loop():
            self._add(entry)
            return
        try:
            self.loop.call_soon_threadsafe(self._add, entry)
        except RuntimeError:  # the loop is closed (the worker stopped): write it directly
            self.store.sync.r.xadd(entry[0], entry[1],  # type: ignore[arg-type]
                                   maxlen=self.store.settings.events_maxlen, approximate=True)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _add(self, entry: tuple[str, dict[str, str]]) -> None:
        self._buf.append(entry)
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        wait = 0.05
        while self._buf:
            batch, self._buf = self._buf, []
            try:
                await self.store.add_events(batch)
                wait = 0.05
            except Exception as exc:  # noqa: BLE001 - events must not kill the loop's task
                if is_transient_redis_error(exc) and not self._stopping():
                    log.warning("flownb: could not write %d event(s) (%s); retrying in %.1fs",
                                len(batch), exc, wait)
                    self._buf[:0] = batch
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, 2.0)
                    continue
                log.error("flownb: dropped %d event(s) Redis refused: %s", len(batch), exc)

    async def flush(self) -> None:
        """Wait until every event emitted so far (on this loop) is written."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


__all__ = ["AsyncStore", "EventSink", "async_client", "fit_pool"]
