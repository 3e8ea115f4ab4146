"""Node types for the worker concurrency / hardening tests. Each counts its executions with a
Redis INCR in the node body (outside flownb's commit path), so a test can prove what ran."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import redis

import flownb

_conns: dict[str, redis.Redis] = {}
# INCR the in-flight counter and keep its maximum in one atomic step
_ENTER = "local c = redis.call('INCR', KEYS[1]); " \
         "if c > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], c) end " \
         "redis.call('INCR', KEYS[3]); return c"


def _r(ctx: Any) -> redis.Redis:
    url = ctx.params["redis"]
    if url not in _conns:
        _conns[url] = redis.Redis.from_url(url)
    return _conns[url]


def _enter(ctx: Any) -> redis.Redis:
    r = _r(ctx)
    tag = ctx.params.get("tag", "t")
    r.eval(_ENTER, 3, f"{tag}:cur", f"{tag}:max", f"{tag}:exec")
    return r


def _leave(ctx: Any, r: redis.Redis) -> None:
    r.decr(f"{ctx.params.get('tag', 't')}:cur")


@flownb.node("w-async-sleep")
async def async_sleep(ctx: Any) -> Any:
    r = _enter(ctx)
    try:
        await asyncio.sleep(float(ctx.params.get("s", 0.2)))
    finally:
        _leave(ctx, r)
    return ctx.params.get("value", "ok")


@flownb.node("w-sync-sleep")
def sync_sleep(ctx: Any) -> Any:
    r = _enter(ctx)
    try:
        time.sleep(float(ctx.params.get("s", 0.2)))
    finally:
        _leave(ctx, r)
    return ctx.params.get("value", "ok")


@flownb.node("w-gate")
def gate(ctx: Any) -> Any:
    """Runs until the test sets ``<tag>:open`` (at most ``max_s``): in flight for as long as the
    test needs, however slow the machine, without a guessed duration."""
    r = _enter(ctx)
    try:
        end = time.monotonic() + float(ctx.params.get("max_s", 120.0))
        while not r.exists(f"{ctx.params.get('tag', 't')}:open") and time.monotonic() < end:
            time.sleep(0.02)
    finally:
        _leave(ctx, r)
    return "ok"


@flownb.node("w-blob")
def blob(ctx: Any) -> Any:
    """An output of ``size`` characters (fills a Redis at maxmemory)."""
    r = _enter(ctx)
    _leave(ctx, r)
    return "x" * int(ctx.params.get("size", 100_000))


@flownb.node("w-gil-hog")
def gil_hog(ctx: Any) -> Any:
    """Holds the GIL for ``s`` seconds: no other thread of the worker runs meanwhile."""
    r = _enter(ctx)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        end = time.perf_counter() + float(ctx.params.get("s", 3.0))
        n = 0
        while time.perf_counter() < end:
            n += 1
    finally:
        sys.setswitchinterval(old)
    _leave(ctx, r)
    return n > 0


@flownb.node("w-raise")
def raiser(ctx: Any) -> Any:
    r = _enter(ctx)
    kind = ctx.params["kind"]
    if kind == "pass":
        _leave(ctx, r)
        return kind
    if kind == "exit":
        sys.exit("library called sys.exit")
    if kind == "kbint":
        raise KeyboardInterrupt("interrupted inside a node")
    if kind == "surrogate":
        return "bad \ud800 text"
    raise ValueError(kind)
