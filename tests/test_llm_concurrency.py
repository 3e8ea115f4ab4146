# ruff: noqa: F811 - the llm_server fixture is imported, then named as a test parameter
"""Async LLM nodes and rate limits, with the real openai client against the tests' own server.

* one shared ``AsyncOpenAI`` per event loop: 50 concurrent in-process runs keep many calls in
  flight (the server records its peak) over a single client;
* the rate limiter contract, run against both implementations (in memory and Redis);
* a 429's ``Retry-After`` pushes the bucket back for the other calls;
* two real worker processes share one requests-per-minute budget through Redis.

Timing assertions here are lower bounds only (a limit makes calls *later*), so a loaded machine
cannot make them fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Workers
from llm_server import (
    LLMServer,
    llm_server,  # noqa: F401 - the fixture (tests name it as a parameter)
)

import flownb
from flownb import llm
from flownb.distributed.client import DistributedExecutor
from flownb.llm import client as llm_client
from flownb.llm.ratelimit import (
    MemoryRateLimiter,
    RateLimit,
    RateLimiter,
    acquire,
    set_limiter,
)


@pytest.fixture(autouse=True)
def _llm_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FLOWNB_LLM", "FLOWNB_LLM_MODEL",
                 "FLOWNB_LLM_RPM", "FLOWNB_LLM_TPM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWNB_LLM_CACHE", "0")
    monkeypatch.setenv("FLOWNB_LLM_ALLOWED_BASE_URLS", "http://127.0.0.1:*,http://localhost:*")  # the test servers
    llm.reset()
    set_limiter(None)
    yield
    llm.reset()
    set_limiter(None)


def one_llm_node(**params: Any) -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "one-llm", "nodes": [
        {"id": "ask", "uses": "llm-process",
         "params": {"promptTemplate": "Say hello to {{name}}", "inputs": {"name": "name"},
                    **params}}]})


# -- one pool, many calls in flight ----------------------------------------------------------------

def test_fifty_concurrent_runs_share_one_client(llm_server: LLMServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm_server.script(reply=lambda body: "hi " + body["messages"][-1]["content"][-5:],
                      sleep_s=0.3)
    bp = one_llm_node(base_url=llm_server.base_url)

    async def main() -> tuple[list[flownb.RunResult], int]:
        results = await asyncio.gather(*(flownb.arun(bp, {"name": f"p{i:04d}"})
                                         for i in range(50)))
        clients = len(llm_client._aclients[asyncio.get_running_loop()])
        await llm_client.aclose_clients()
        return list(results), clients

    results, clients = asyncio.run(main())
    assert [r.status for r in results] == ["succeeded"] * 50
    assert sorted(r.output for r in results) == sorted(f"hi p{i:04d}" for i in range(50))
    assert len(llm_server.requests) == 50
    assert llm_server.max_in_flight > 1, "LLM calls must overlap, not queue one by one"
    assert clients == 1  # one AsyncOpenAI (one connection pool) for the loop


def test_sync_runs_on_different_loops_never_share_a_client(llm_server: LLMServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """flownb.run in a plain thread, then inside a running loop (the notebook's helper thread):
    each loop gets its own pool, so no 'attached to a different loop' errors."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm_server.script(reply="hello")
    bp = one_llm_node(base_url=llm_server.base_url)
    assert flownb.run(bp, {"name": "a"}).output == "hello"

    async def inside_a_loop() -> Any:
        return flownb.run(bp, {"name": "b"})  # what a notebook cell does

    assert asyncio.run(inside_a_loop()).output == "hello"
    assert flownb.run(bp, {"name": "c"}).output == "hello"
    assert len(llm_server.requests) == 3


def test_streaming_and_usage_still_reported(llm_server: LLMServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm_server.script(reply="a streamed answer of several words", chunk_size=3, usage=(11, 7))
    events: list[flownb.Event] = []
    res = flownb.run(one_llm_node(base_url=llm_server.base_url, stream=True), {"name": "x"},
                     on_event=events.append)
    assert res.output == "a streamed answer of several words"
    custom = [e for e in events if e.type == "custom"]
    tokens = "".join(e.data["text"] for e in custom if e.data.get("name") == "llm_token")
    usage = [e.data for e in custom if e.data.get("name") == "llm_usage"]
    assert tokens == res.output
    assert usage and usage[0]["prompt_tokens"] == 11 and usage[0]["completion_tokens"] == 7


# -- the limiter contract: one suite, both implementations --------------------------------------------

@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return MemoryRateLimiter()
    import redis

    from flownb.distributed.ratelimit import RedisRateLimiter

    url = request.getfixturevalue("redis_url")
    return RedisRateLimiter(redis.Redis.from_url(url), prefix="rltest")


def test_contract_requests_are_spaced(limiter: RateLimiter) -> None:
    lim = RateLimit(rpm=600)  # one per 0.1 s
    assert limiter.reserve("k", lim, 0) == 0.0
    wait = limiter.reserve("k", lim, 0)
    assert 0.0 < wait <= 0.1 + 1e-3
    assert limiter.reserve("other", lim, 0) == 0.0  # buckets are independent
    time.sleep(wait + 0.01)
    assert limiter.reserve("k", lim, 0) == 0.0  # a refusal charged nothing


def test_contract_burst(limiter: RateLimiter) -> None:
    lim = RateLimit(rpm=60, burst=3)
    assert [limiter.reserve("b", lim, 0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.reserve("b", lim, 0) > 0.5


def test_contract_tokens_per_minute(limiter: RateLimiter) -> None:
    lim = RateLimit(tpm=600)  # a minute holds 600 tokens; refills 10 per second
    assert limiter.reserve("t", lim, 600) == 0.0
    wait = limiter.reserve("t", lim, 60)
    assert 5.5 < wait <= 6.0 + 1e-3
    assert limiter.reserve("t", RateLimit(tpm=600), 0) == 0.0  # an empty call costs nothing


def test_contract_backoff(limiter: RateLimiter) -> None:
    lim = RateLimit(rpm=60000)
    limiter.backoff("x", 0.5)
    wait = limiter.reserve("x", lim, 0)
    assert 0.4 < wait <= 0.5 + 1e-3
    limiter.backoff("x", 0.1)  # a shorter backoff never shortens a longer one
    assert limiter.reserve("x", lim, 0) > 0.3


def test_contract_acquire_waits(limiter: RateLimiter) -> None:
    lim = RateLimit(rpm=1200)  # 0.05 s apart

    async def three() -> float:
        t0 = time.monotonic()
        for _ in range(3):
            await acquire("w", lim, 0, limiter)
        return time.monotonic() - t0

    assert asyncio.run(three()) >= 0.09


# -- 429 Retry-After pushes the bucket back --------------------------------------------------------

def test_429_retry_after_backs_off_other_calls(llm_server: LLMServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm_server.script(reply="ok", fail=[429], retry_after_ms=1000)
    bp = one_llm_node(base_url=llm_server.base_url, rpm=60000)

    async def main() -> list[flownb.RunResult]:
        async def later() -> flownb.RunResult:
            await asyncio.sleep(0.3)  # starts while the first call is blocked by its 429
            return await flownb.arun(bp, {"name": "b"})
        res = await asyncio.gather(flownb.arun(bp, {"name": "a"}), later())
        await llm_client.aclose_clients()
        return list(res)

    results = asyncio.run(main())
    assert [r.output for r in results] == ["ok", "ok"]
    first, *rest = sorted(r.at for r in llm_server.requests)
    assert len(rest) == 2  # the retry of the first call, and the second call
    assert all(t - first >= 0.9 for t in rest), [t - first for t in rest]


# -- two real workers, one budget ------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_rate_limit_shared_by_two_workers(llm_server: LLMServer, redis_url: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rpm = 120  # one call every 0.5 s, whichever worker makes it
    n = 8
    for k, v in {"OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "sk-test",
                 "FLOWNB_LLM": "openai", "FLOWNB_LLM_RPM": str(rpm)}.items():
        monkeypatch.setenv(k, v)
    llm_server.script(reply="ok")
    w = Workers(redis_url)
    try:
        w.start(2)
        ex = DistributedExecutor(redis_url)
        # warm up: each worker's first call imports openai and opens its connection, a latency
        # the limiter cannot see; measure the steady state after it
        for h in [ex.submit(one_llm_node(), {"name": f"warm{i}"}) for i in range(4)]:
            h.result(timeout=60)
        llm_server.requests.clear()
        handles = [ex.submit(one_llm_node(), {"name": f"w{i}"}) for i in range(n)]
        results = [h.result(timeout=90) for h in handles]
    finally:
        w.close()
    assert [r.status for r in results] == ["succeeded"] * n
    workers = {s.worker for r in results for s in r.nodes.values()}
    assert len(workers) == 2, "both workers took part"
    times = sorted(r.at for r in llm_server.requests)
    assert len(times) == n
    interval = 60.0 / rpm
    span = times[-1] - times[0]
    # slots are granted 0.5 s apart; arrival times add each request's own latency, hence a
    # little slack
    assert span >= (n - 1) * interval * 0.95, f"{n} calls in {span:.2f} s break {rpm}/min"
    observed = (n - 1) / span * 60
    assert observed <= rpm * 1.06, observed
