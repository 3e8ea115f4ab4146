"""The worker loop's own connection for script calls made alone (flownb.distributed.script_line):
the same replies and errors as redis-py's ``AsyncScript``, on a real Redis — and what happens when
the server loses its scripts, the connection is killed, a call is cancelled mid-reply, or two
calls come at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.exceptions as rx

from flownb.distributed.async_store import async_client
from flownb.distributed.script_line import ScriptLine
from flownb.distributed.settings import RedisSettings

ECHO = "redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], ARGV[1], ARGV[2], ARGV[3]}"
BOOM = "return redis.error_reply('boom from the script')"
#: answers ARGV[1] after ~ARGV[2] ms of busy waiting (a reply that comes late)
SLOW = ("local s = redis.call('TIME'); repeat local n = redis.call('TIME') "
        "until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > tonumber(ARGV[2]) * 1000; "
        "return ARGV[1]")

#: a 0.2 s read timeout, not retried by redis-py: what the line's watchdog keeps
TIMEOUT_02: dict[str, Any] = {"socket_timeout_s": 0.2, "retry_on_timeout": False}


def _run(redis_url: str, body: Callable[[Any, ScriptLine], Awaitable[Any]], **settings: Any) -> Any:
    """``body(async client, its line)`` on a loop of its own; ``settings``: RedisSettings'."""
    conn = RedisSettings.from_url(redis_url, **settings).connect()

    async def go() -> Any:
        ac = async_client(conn)
        line = ScriptLine(ac)
        try:
            return await body(ac, line)
        finally:
            await line.aclose()
            await ac.aclose(close_connection_pool=True)

    return asyncio.run(go())


def test_a_call_on_the_line_answers_what_redis_py_answers_in_the_same_database(redis_url: str) -> None:
    async def body(ac: Any, line: ScriptLine) -> Any:
        s = ac.register_script(ECHO)
        theirs = await s(keys=[b"flownb-test:k2"], args=["sé", 7, b"raw"])  # loads it
        mine = await line.call(s, [b"flownb-test:k"], ["sé", 7, b"raw"])
        return mine, theirs, line.calls, line.fallbacks

    mine, theirs, calls, fallbacks = _run(redis_url, body)
    assert mine == [b"flownb-test:k", "sé".encode(), b"7", b"raw"]
    assert theirs[1:] == mine[1:]
    assert (calls, fallbacks) == (1, 0)
    # the fixture's database, not db 0: the line's connection made the same handshake
    assert RedisSettings.from_url(redis_url).connect().get("flownb-test:k") == "sé".encode()


def test_a_script_error_is_raised_as_redis_pys_and_the_line_carries_on(redis_url: str) -> None:
    async def body(ac: Any, line: ScriptLine) -> Any:
        boom, echo = ac.register_script(BOOM), ac.register_script(ECHO)
        await echo(keys=[b"k"], args=[1, 2, 3])  # both known to the server
        await ac.script_load(BOOM)
        with pytest.raises(rx.ResponseError, match="boom from the script"):
            await line.call(boom, [], [])
        return await line.call(echo, [b"k"], [1, 2, 3]), line.calls

    reply, calls = _run(redis_url, body)
    assert reply == [b"k", b"1", b"2", b"3"] and calls == 1


def test_a_server_that_lost_its_scripts_gets_the_script_again(redis_url: str) -> None:
    async def body(ac: Any, line: ScriptLine) -> Any:
        s = ac.register_script(ECHO)
        await s(keys=[b"k"], args=["a", "b", "c"])
        first = await line.call(s, [b"k"], ["a", "b", "c"])
        await ac.script_flush()
        second = await line.call(s, [b"k"], ["d", "e", "f"])  # NOSCRIPT: loaded, then run
        third = await line.call(s, [b"k"], ["g", "h", "i"])
        return first, second, third, line.calls, line.fallbacks

    first, second, third, calls, fallbacks = _run(redis_url, body)
    assert (first[1], second[1], third[1]) == (b"a", b"d", b"g")
    assert (calls, fallbacks) == (2, 1)


def test_a_killed_connection_is_replaced_and_the_call_still_answered(redis_url: str) -> None:
    async def body(ac: Any, line: ScriptLine) -> Any:
        s = ac.register_script(ECHO)
        await s(keys=[b"k"], args=["a", "b", "c"])
        await line.call(s, [b"k"], ["a", "b", "c"])
        killed = await ac.client_kill_filter(_type="normal", skipme=True)
        after = await line.call(s, [b"k"], ["d", "e", "f"])  # the line's socket was closed
        again = await line.call(s, [b"k"], ["g", "h", "i"])  # a new connection of its own
        return killed, after, again, line.calls, line.fallbacks

    killed, after, again, calls, fallbacks = _run(redis_url, body)
    assert killed >= 1
    assert (after[1], again[1]) == (b"d", b"g")
    assert (calls, fallbacks) == (2, 1)


def test_a_call_cancelled_before_its_reply_leaves_no_reply_for_the_next(redis_url: str) -> None:
    async def body(ac: Any, line: ScriptLine) -> Any:
        s = ac.register_script(SLOW)
        await s(keys=[], args=["warm", 0])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(line.call(s, [], ["late", 150]), 0.03)
        return await line.call(s, [], ["mine", 0]), line.calls

    reply, calls = _run(redis_url, body)
    assert reply == b"mine"  # not "late", the cancelled call's reply
    assert calls == 1


def test_calls_at_once_each_get_their_own_reply(redis_url: str) -> None:
    async def body(ac: Any, line: ScriptLine) -> Any:
        s = ac.register_script(SLOW)
        await s(keys=[], args=["warm", 0])
        replies = await asyncio.gather(*(line.call(s, [], [f"r{i}", 5]) for i in range(6)))
        return replies, line.calls

    replies, calls = _run(redis_url, body)
    assert replies == [f"r{i}".encode() for i in range(6)]
    assert calls == 1  # the first on the line; the others, while it was busy, the ordinary way


def test_a_call_unanswered_past_the_read_timeout_gives_up_the_line(redis_url: str) -> None:
    """The line keeps the client's ``socket_timeout`` with one watchdog timer, not one per call:
    a reply that does not come in time aborts the line's connection and the call goes the
    ordinary way (redis-py's own timeout); the next call gets its own reply."""
    import time

    async def body(ac: Any, line: ScriptLine) -> Any:
        s = ac.register_script(SLOW)
        await s(keys=[], args=["warm", 0])
        assert await line.call(s, [], ["quick", 0]) == b"quick"  # arms the watchdog
        t0 = time.monotonic()
        try:
            outcome: Any = await line.call(s, [], ["late", 350])
        except (rx.TimeoutError, rx.ConnectionError, TimeoutError) as exc:
            outcome = type(exc).__name__
        waited = time.monotonic() - t0
        await asyncio.sleep(0.8)  # the server finishes the slow script
        return outcome, waited, await line.call(s, [], ["mine", 0]), line.fallbacks

    outcome, waited, mine, fallbacks = _run(redis_url, body, **TIMEOUT_02)
    assert fallbacks == 1  # the line gave the slow call up: only the watchdog does that
    assert waited >= 0.2 and outcome != b"quick"
    assert mine == b"mine"


def test_a_chain_on_a_worker_commits_on_the_line_once_per_node(redis_url: str) -> None:
    """A real ``flownb worker`` running a chain alone: its COMMITs go on the line (published as
    ``line_calls`` in ``{p}:workers``) and each node runs once."""
    import json
    import time

    import flownb
    from flownb.distributed.client import DistributedExecutor

    from conftest import Workers

    w = Workers(redis_url)
    try:
        w.start(1)
        n = 40
        b = flownb.Builder("line-chain")
        for i in range(n):
            b.node(f"n{i}", "noop")
        b.chain(*[f"n{i}" for i in range(n)])
        handle = DistributedExecutor(redis_url).submit(b.build())
        assert handle.result(timeout=60).status == "succeeded"
        ok = [e.node_id for e in handle.events() if e.type == "node_succeeded"]
        assert sorted(ok) == sorted(f"n{i}" for i in range(n))  # each node committed once
        r = RedisSettings.from_url(redis_url).connect()
        deadline = time.monotonic() + 10
        while True:  # the heartbeat publishes the worker's counters
            [info] = [json.loads(v) for v in r.hgetall("flownb:workers").values()]
            if info["line_calls"] >= n - 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # every COMMIT but the first (maybe NOSCRIPT on a fresh server) and the first CLAIM
        assert info["line_calls"] >= n - 1, info
    finally:
        w.close()


def test_a_new_connection_after_a_broken_one_still_has_a_read_timeout(redis_url: str) -> None:
    """The watchdog of a connection that broke must not stand in for the next one's: a slow reply
    on the new connection is still given up after ``socket_timeout``, not waited for forever."""
    async def body(ac: Any, line: ScriptLine) -> Any:
        s = ac.register_script(SLOW)
        await s(keys=[], args=["warm", 0])
        assert await line.call(s, [], ["quick", 0]) == b"quick"  # arms the watchdog
        await ac.client_kill_filter(_type="normal", skipme=True)
        assert await line.call(s, [], ["again", 0]) == b"again"  # broke: sent the ordinary way
        try:
            outcome: Any = await line.call(s, [], ["late", 600])  # on a new connection
        except (rx.TimeoutError, rx.ConnectionError, TimeoutError) as exc:
            outcome = type(exc).__name__
        await asyncio.sleep(0.8)  # the server finishes the slow script
        return outcome, line.fallbacks

    outcome, fallbacks = _run(redis_url, body, **TIMEOUT_02)
    assert outcome != b"late"  # given up after the read timeout, not waited for
    assert fallbacks == 2  # the broken connection, then the watchdog
