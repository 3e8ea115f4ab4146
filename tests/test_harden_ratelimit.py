# ruff: noqa: F811 - the llm_server fixture is imported, then named as a test parameter
"""Issue 19, item 5: the shared LLM rate limiter never waits without bound or silently.

* limits outside a sane range (NaN, inf, 0, negatives, < 1 per minute, "nan") are refused at
  lint time, by ``configure`` and when settings resolve (node params and environment);
* one 429 with ``Retry-After: 1e12`` pushes the bucket back at most the configured cap;
  ``inf`` / ``nan`` never stop the Lua script half-way, and a poisoned bucket heals;
* a call that would wait longer than allowed fails at once, clearly; a long wait is reported as
  an ``llm_rate_limited`` event by real worker processes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import Workers
from llm_server import (
    LLMServer,
    llm_server,  # noqa: F401 - the fixture
)

import flownb
from flownb import llm
from flownb.core.lint import lint
from flownb.distributed.client import DistributedExecutor
from flownb.distributed.ratelimit import RedisRateLimiter
from flownb.distributed.scripts import RATE_LIMIT
from flownb.llm import client as llm_client
from flownb.llm.errors import LLMConfigError
from flownb.llm.ratelimit import RateLimit, set_limiter

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _llm_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FLOWNB_LLM", "FLOWNB_LLM_MODEL",
                 "FLOWNB_LLM_RPM", "FLOWNB_LLM_TPM", "FLOWNB_LLM_MAX_RETRY_AFTER_S",
                 "FLOWNB_LLM_MAX_RATE_WAIT_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWNB_LLM_CACHE", "0")
    monkeypatch.setenv("FLOWNB_LLM_ALLOWED_BASE_URLS", "http://127.0.0.1:*,http://localhost:*")  # the test servers
    llm.reset()
    set_limiter(None)
    yield
    llm.reset()
    set_limiter(None)


def llm_nodes(n: int, **params: Any) -> flownb.Blueprint:
    """``n`` LLM calls in parallel after a start node."""
    nodes = [{"id": "start", "uses": "noop"}]
    nodes += [{"id": f"ask{i}", "uses": "llm-process",
               "params": {"promptTemplate": f"Say hello {i}", **params}} for i in range(n)]
    return flownb.Blueprint.from_dict({"id": "llm-par", "nodes": nodes, "edges": [
        {"source": "start", "target": f"ask{i}"} for i in range(n)]})


BAD = [0.001, 0.5, 0, -1, math.nan, math.inf, "nan", "inf", "-inf", "lots", True, 1e12]


@pytest.mark.parametrize("value", BAD)
def test_insane_limits_are_refused_at_lint_configure_and_resolve(
        value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("rpm", "tpm"):
        if isinstance(value, float) and not math.isfinite(value):  # not even a blueprint
            with pytest.raises(flownb.BlueprintError, match="NaN or infinite"):
                llm_nodes(1, **{name: value})
            with pytest.raises(LLMConfigError, match=name):
                llm.configure(**{name: value})
            continue
        bp = llm_nodes(1, **{name: value})
        problems = [p for p in lint(bp) if p.code == "bad-rate-limit"]
        assert len(problems) == 1 and problems[0].severity == "error", problems
        assert f"params.{name}" in problems[0].location and name in problems[0].message
        with pytest.raises(flownb.FlownbError, match=name):
            flownb.run(bp, {})
        with pytest.raises(LLMConfigError, match=name):
            llm.configure(**{name: value})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    if not isinstance(value, bool):
        monkeypatch.setenv("FLOWNB_LLM_RPM", str(value))
        with pytest.raises(LLMConfigError, match="rpm"):
            llm.resolve({})


def test_sane_limits_are_accepted() -> None:
    for value in (1, 60, "120", 1e6):
        assert not [p for p in lint(llm_nodes(1, rpm=value, tpm=value))
                    if p.code == "bad-rate-limit"]
    llm.configure(rpm=30, tpm=10000, rate_burst=5)
    assert llm.resolve({}).rate_limit == RateLimit(30.0, 10000.0, 5)


def test_retry_after_of_millennia_is_capped(llm_server: LLMServer, redis_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """One 429 with Retry-After 1e12 s: the bucket (shared on Redis) is pushed back by the cap."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("FLOWNB_LLM_MAX_RETRY_AFTER_S", "1.5")
    conn = redis.Redis.from_url(redis_url)
    set_limiter(RedisRateLimiter(conn))
    llm_server.script(reply="ok", fail=[429], retry_after_ms=10**15)
    bp = llm_nodes(1, base_url=llm_server.base_url, rpm=6000)

    async def main() -> list[flownb.RunResult]:
        # the SDK does not retry a Retry-After over 60 s: this call fails, the next must not wait
        out = [await flownb.arun(bp, {}, raise_on_error=False)]
        t0 = time.monotonic()
        out.append(await flownb.arun(bp, {}))
        assert time.monotonic() - t0 < 15, "the next call waited far past the cap"
        await llm_client.aclose_clients()
        return out

    results = asyncio.run(main())
    assert [r.status for r in results] == ["failed", "succeeded"]
    assert results[0].error["type"] == "LLMError" and "429" in results[0].error["message"]
    now = float(conn.time()[0])
    for key in conn.keys("flownb:llm:rate:*"):
        blocked = float(conn.hget(key, "b") or 0)
        assert blocked <= now + 2, (key, blocked - now)


@pytest.mark.parametrize("seconds", ["inf", "nan", "-inf", "1e308", "junk"])
def test_lua_backoff_never_breaks_half_way(redis_url: str, seconds: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    script = conn.register_script(RATE_LIMIT)
    key = "flownb:llm:rate:attack"
    assert script(keys=[key], args=["backoff", seconds]) in (b"0", "0")
    now = float(conn.time()[0])
    assert float(conn.hget(key, "b") or 0) <= now + 3601
    assert 0 < conn.pttl(key) <= (3600 + 61) * 1000


def test_a_poisoned_bucket_heals(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    lim = RedisRateLimiter(conn)
    key = lim.keys.llm_rate("m")
    conn.hset(key, mapping={"b": "inf", "r": "nan", "t": "1e300"})  # written before the clamps
    assert lim.reserve("m", RateLimit(rpm=60), 10) == 0.0
    lim.backoff("m", math.inf)
    assert lim.reserve("m", RateLimit(rpm=60), 10) <= 60.0


def test_a_wait_past_the_limit_fails_at_once(llm_server: LLMServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """rpm=1: the second of two parallel calls would wait ~60 s; allowed are 2 s."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("FLOWNB_LLM_MAX_RATE_WAIT_S", "2")
    llm_server.script(reply="ok")
    t0 = time.monotonic()
    res = flownb.run(llm_nodes(2, base_url=llm_server.base_url, rpm=1), {},
                     raise_on_error=False)
    assert time.monotonic() - t0 < 15
    assert res.status == "failed"
    assert res.error["type"] == "RateLimitWaitTooLong"
    assert "FLOWNB_LLM_MAX_RATE_WAIT_S" in res.error["message"]
    assert len(llm_server.requests) <= 1  # the granted call may be cancelled with the run


def test_long_waits_are_reported_by_workers(llm_server: LLMServer, redis_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two real workers, rpm=10 (one call per 6 s): the later calls wait and say so."""
    for k, v in {"OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "sk-test",
                 "FLOWNB_LLM": "openai"}.items():
        monkeypatch.setenv(k, v)
    llm_server.script(reply="ok")
    w = Workers(redis_url)
    try:
        w.start(1)
        ex = DistributedExecutor(redis_url)
        h = ex.submit(llm_nodes(2, rpm=10))
        res = h.result(timeout=60)
        events = [e for e in h.events() if e.type == "custom"
                  and (e.data or {}).get("name") == "llm_rate_limited"]
    finally:
        w.close()
    assert res.status == "succeeded"
    assert len(events) == 1, [e.data for e in h.events()]
    data = events[0].data
    assert 4.0 <= data["wait_s"] <= 6.5 and data["rpm"] == 10
    assert data["until"] > time.time() - 60
