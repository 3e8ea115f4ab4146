"""Tests for flownb.llm: the LLM node types, the offline fake, the cache and settings.

Real-client tests drive the actual ``openai`` SDK against ``tests/llm_server.py`` on 127.0.0.1 —
no monkeypatching of the SDK — so retries, timeouts and streaming behave as in production. Every
test gets a private cache directory and a clean environment (no key, no base URL, no FLOWNB_LLM).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer, llm_server  # noqa: F401 - the fixture

import flownb
import flownb.llm as llm
from flownb.core.events import Event
from flownb.llm import client as llm_client
from flownb.llm.config import LLMSettings
from flownb.llm.nodes import match_choice, normalise_choice, parse_bool
from flownb.llm.prices import price_for

ENV_VARS = ("FLOWNB_LLM", "FLOWNB_LLM_MODEL", "FLOWNB_LLM_CACHE", "FLOWNB_LLM_CACHE_DIR",
            "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
            "OPENAI_CUSTOM_HEADERS", "OPENAI_ADMIN_KEY", "XDG_CACHE_HOME")


@pytest.fixture(autouse=True)
def clean_llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    cache_dir = tmp_path / "llm-cache"
    monkeypatch.setenv("FLOWNB_LLM_CACHE_DIR", str(cache_dir))
    # 127.0.0.1 must never go through a proxy a CI machine may define
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    llm.reset()
    yield cache_dir
    llm.reset()
    llm_client.close_clients()


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
    return "sk-test-dummy"


def one_node(uses: str, server: LLMServer | None = None, **params: Any) -> dict[str, Any]:
    if server is not None:
        params = {"base_url": server.base_url, "model": "test-model", **params}
    return {"id": "t", "nodes": [{"id": "a", "uses": uses, "params": params}]}


def run(bp: dict[str, Any], inputs: dict[str, Any] | None = None) -> tuple[flownb.RunResult, list[Event]]:
    events: list[Event] = []
    # the tests inspect failed runs as results; test_runtime proves failures raise by default
    res = flownb.run(bp, inputs or {}, on_event=events.append, raise_on_error=False)
    return res, events


def error(res: flownb.RunResult) -> dict[str, Any]:
    assert res.error is not None, f"expected a failed run, got {res.status}"
    return res.error


def custom(events: list[Event], name: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == "custom" and e.data.get("name") == name]


# -- the real client against the local server ---------------------------------------------------------

def test_plain_completion(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("A short summary.", usage=(12, 4))
    res, events = run(one_node("llm-process", llm_server, prompt="Summarise {{text}}",
                               system="You are terse about {{topic}}.", temperature=0.2,
                               max_tokens=50),
                      {"text": "hello world", "topic": "greetings"})
    assert res.ok, res.error
    assert res.output == "A short summary."
    assert len(llm_server.requests) == 1
    req = llm_server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {api_key}"
    assert req.json["model"] == "test-model"
    assert req.json["messages"] == [
        {"role": "system", "content": "You are terse about greetings."},
        {"role": "user", "content": "Summarise hello world"}]
    assert req.json["temperature"] == 0.2 and req.json["max_tokens"] == 50
    assert "stream" not in req.json
    [usage] = custom(events, "llm_usage")
    assert usage["model"] == "test-model"
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (12, 4)
    assert usage["cached"] is False and usage["cost_usd"] is None  # test-model has no price
    assert not custom(events, "llm_token")


def test_streamed_emits_coalesced_tokens(llm_server: LLMServer, api_key: str) -> None:
    reply = "Streaming works one little piece at a time, " * 3
    llm_server.script(reply, chunk_size=3, chunk_delay_s=0.01, usage=(20, 30))
    res, events = run(one_node("llm-process", llm_server, prompt="Tell me {{x}}", stream=True,
                               model="gpt-4o-mini"), {"x": "a story"})
    assert res.ok, res.error
    assert res.output == reply
    req = llm_server.requests[0].json
    assert req["stream"] is True and req["stream_options"] == {"include_usage": True}
    tokens = custom(events, "llm_token")
    n_chunks = -(-len(reply) // 3)
    assert tokens and "".join(t["text"] for t in tokens) == reply
    # ~0.45 s of chunks at ≤10 events/s: far fewer events than chunks
    assert len(tokens) < n_chunks / 2
    [usage] = custom(events, "llm_usage")
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (20, 30)
    assert usage["cost_usd"] == pytest.approx((20 * 0.15 + 30 * 0.60) / 1e6)
    # usage comes after the last token
    names = [e.data["name"] for e in events if e.type == "custom"]
    assert names[-1] == "llm_usage"


def test_stream_without_server_usage_is_estimated(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("twelve chars", no_usage=True)
    res, events = run(one_node("llm-process", llm_server, prompt="p", stream=True))
    assert res.output == "twelve chars"
    [usage] = custom(events, "llm_usage")
    assert usage["estimated"] is True and usage["completion_tokens"] == 3


def test_429_is_retried_then_succeeds(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("finally", fail=[429, 429])
    t0 = time.monotonic()
    res, _ = run(one_node("llm-process", llm_server, prompt="hi", max_retries=2))
    assert res.ok, res.error
    assert res.output == "finally"
    assert len(llm_server.requests) == 3
    assert time.monotonic() - t0 < 5
    # the SDK's retries, not a second loop of ours: the node ran once
    assert res.nodes["a"].attempts == 1


def test_500_once_then_success(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("ok now", fail=[500])
    res, _ = run(one_node("llm-process", llm_server, prompt="hi"))
    assert res.output == "ok now"
    assert len(llm_server.requests) == 2


def test_persistent_500_fails_with_clear_message(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("never", fail=[500] * 10)
    res, _ = run(one_node("llm-process", llm_server, prompt="hi", max_retries=2))
    assert res.status == "failed"
    assert len(llm_server.requests) == 3
    err = error(res)
    assert err["node_id"] == "a" and err["type"] == "LLMError"
    msg = err["message"]
    assert "HTTP 500" in msg and "after 3 attempt(s)" in msg and "max_retries=2" in msg
    assert "scripted failure 500" in msg and llm_server.base_url in msg
    with pytest.raises(flownb.RunFailed, match="HTTP 500"):
        res.raise_for_status()


def test_retries_exhausted_on_429(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("never", fail=[429] * 10)
    res, _ = run(one_node("llm-process", llm_server, prompt="hi", max_retries=1))
    assert res.status == "failed"
    assert len(llm_server.requests) == 2
    assert "HTTP 429" in error(res)["message"] and "rate limited" in error(res)["message"]


def test_client_error_is_not_retried(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("never", fail=[400])
    res, _ = run(one_node("llm-process", llm_server, prompt="hi", max_retries=3))
    assert res.status == "failed"
    assert len(llm_server.requests) == 1
    assert "HTTP 400 after 1 attempt(s)" in error(res)["message"]


def test_timeout_fails(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("too late", sleep_s=5)
    t0 = time.monotonic()
    res, _ = run(one_node("llm-process", llm_server, prompt="hi", timeout_s=0.3, max_retries=1))
    elapsed = time.monotonic() - t0
    assert res.status == "failed"
    assert "timed out" in error(res)["message"] and "timeout_s=0.3" in error(res)["message"]
    assert len(llm_server.requests) == 2  # timeouts are retried by the SDK too
    assert elapsed < 4


def test_connection_refused_fails(api_key: str) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res, _ = run(one_node("llm-process", prompt="hi", base_url=f"http://127.0.0.1:{port}/v1",
                          max_retries=0, timeout_s=2))
    assert res.status == "failed"
    assert "could not connect" in error(res)["message"]


def test_cache_hit_on_identical_call(llm_server: LLMServer, api_key: str,
                                     clean_llm_env: Path) -> None:
    llm_server.script("cached answer", usage=(100, 10))
    bp = one_node("llm-process", llm_server, prompt="Summarise {{text}}", model="gpt-4o-mini")
    r1, e1 = run(bp, {"text": "same"})
    r2, e2 = run(bp, {"text": "same"})
    assert r1.output == r2.output == "cached answer"
    assert len(llm_server.requests) == 1
    [u1], [u2] = custom(e1, "llm_usage"), custom(e2, "llm_usage")
    assert u1["cached"] is False and u1["cost_usd"] > 0
    assert u2["cached"] is True and u2["cost_usd"] == 0.0
    assert (u2["prompt_tokens"], u2["completion_tokens"]) == (100, 10)
    files = list(clean_llm_env.glob("*/*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["text"] == "cached answer"
    assert not list(clean_llm_env.glob("*/.tmp-*"))  # atomic writes leave no temp files
    # anything that changes the answer misses: input, temperature, model
    run(bp, {"text": "different"})
    run(one_node("llm-process", llm_server, prompt="Summarise {{text}}", model="gpt-4o-mini",
                 temperature=0.5), {"text": "same"})
    run(one_node("llm-process", llm_server, prompt="Summarise {{text}}", model="gpt-4o"),
        {"text": "same"})
    assert len(llm_server.requests) == 4


def test_cached_stream_emits_the_whole_answer(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("streamed then cached")
    bp = one_node("llm-process", llm_server, prompt="p", stream=True)
    run(bp)
    _, events = run(bp)
    assert len(llm_server.requests) == 1
    assert [t["text"] for t in custom(events, "llm_token")] == ["streamed then cached"]


@pytest.mark.parametrize("how", ["env", "configure", "param"])
def test_cache_off(llm_server: LLMServer, api_key: str, clean_llm_env: Path,
                   monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    llm_server.script("fresh")
    params: dict[str, Any] = {"prompt": "same prompt"}
    if how == "env":
        monkeypatch.setenv("FLOWNB_LLM_CACHE", "0")
    elif how == "configure":
        llm.configure(cache=False)
    else:
        params["cache"] = False
    bp = one_node("llm-process", llm_server, **params)
    run(bp)
    _, events = run(bp)
    assert len(llm_server.requests) == 2
    assert custom(events, "llm_usage")[0]["cached"] is False
    assert not list(clean_llm_env.glob("*/*.json"))


def test_configured_memory_cache(llm_server: LLMServer, api_key: str, clean_llm_env: Path) -> None:
    mem = llm.MemoryCache()
    llm.configure(cache=mem)
    llm_server.script("in memory")
    bp = one_node("llm-process", llm_server, prompt="p")
    run(bp)
    run(bp)
    assert len(llm_server.requests) == 1 and len(mem) == 1
    assert not clean_llm_env.exists()


class FakeRedis:
    """Just enough of redis.Redis for RedisCache."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.ttls: dict[str, int | None] = {}

    def get(self, name: str) -> bytes | None:
        return self.data.get(name)

    def set(self, name: str, value: str, ex: int | None = None) -> bool:
        self.data[name] = value.encode()
        self.ttls[name] = ex
        return True


def test_redis_cache(llm_server: LLMServer, api_key: str) -> None:
    r = FakeRedis()
    llm.configure(cache=llm.RedisCache(r, ttl_s=3600))
    llm_server.script("shared")
    bp = one_node("llm-process", llm_server, prompt="p")
    run(bp)
    _, events = run(bp)
    assert len(llm_server.requests) == 1
    [(k, ttl)] = r.ttls.items()
    assert k.startswith("flownb:llm:") and ttl == 3600
    assert custom(events, "llm_usage")[0]["cached"] is True


def test_disk_cache_details(tmp_path: Path) -> None:
    cache = llm.DiskCache(tmp_path / "c")
    key = llm.cache_key("m", [{"role": "user", "content": "x"}], None, None, "http://h/v1/")
    assert key == llm.cache_key("m", [{"role": "user", "content": "x"}], None, None, "http://h/v1")
    assert key != llm.cache_key("m", [{"role": "user", "content": "x"}], 0.0, None, "http://h/v1")
    assert cache.get(key) is None
    cache.set(key, {"text": "t"})
    assert cache.get(key)["text"] == "t"  # type: ignore[index]
    path = next((tmp_path / "c").glob("*/*.json"))
    path.write_text("{torn")
    assert cache.get(key) is None  # an unreadable entry is a miss, not an error
    assert cache.clear() == 1


def test_fake_is_not_cached(clean_llm_env: Path) -> None:
    res, events = run(one_node("llm-process", prompt="Write about {{t}}"), {"t": "tea"})
    assert res.ok
    assert custom(events, "llm_usage")[0]["model"] == "fake"
    assert not clean_llm_env.exists()


def test_async_chat(llm_server: LLMServer, api_key: str) -> None:
    settings = llm.resolve({"base_url": llm_server.base_url, "model": "test-model"})
    llm_server.script("async reply", usage=(3, 2))
    msgs = [{"role": "user", "content": "hi"}]
    comp = asyncio.run(llm.achat(settings, msgs))
    assert comp.text == "async reply" and comp.prompt_tokens == 3 and not comp.cached
    pieces: list[str] = []
    comp = asyncio.run(llm.achat(settings, msgs, on_token=pieces.append))
    assert comp.text == "async reply" and "".join(pieces) == "async reply"
    assert llm_server.requests[1].json["stream"] is True
    llm_server.script("x", fail=[500] * 5)
    with pytest.raises(llm.LLMError, match="HTTP 500"):
        asyncio.run(llm.achat(LLMSettings(**{**settings.__dict__, "max_retries": 0}), msgs))


def test_complete_helper(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script(lambda body: body["messages"][-1]["content"].upper())
    assert llm.complete("shout", base_url=llm_server.base_url) == "SHOUT"
    assert llm_server.requests[0].json["model"] == "gpt-4o-mini"


# -- condition and router through the real client ---------------------------------------------------

def branching(uses: str, server: LLMServer | None, actions: list[str], **params: Any) -> dict[str, Any]:
    if server is not None:
        params = {"base_url": server.base_url, "model": "test-model", **params}
    nodes = [{"id": "a", "uses": uses, "params": params}]
    edges = []
    for act in actions:
        nodes.append({"id": f"on_{act}", "uses": "output",
                      "params": {"template": act}})
        edges.append({"source": "a", "target": f"on_{act}", "action": act})
    return {"id": "branch", "nodes": nodes, "edges": edges}


@pytest.mark.parametrize("reply,expected", [("Yes, it is.", True), ("TRUE", True),
                                            ("**true**", True), ("No.", False),
                                            ("false - it is not", False)])
def test_llm_condition_actions(llm_server: LLMServer, api_key: str, reply: str,
                               expected: bool) -> None:
    llm_server.script(reply)
    res, _ = run(branching("llm-condition", llm_server, ["true", "false"],
                           prompt="Is {{review}} positive?"), {"review": "great"})
    assert res.ok, res.error
    assert res.outputs["a"] is expected
    taken = "on_true" if expected else "on_false"
    assert res.output == taken[3:]
    assert res.nodes["on_true" if not expected else "on_false"].status == "skipped"
    sent = llm_server.requests[0].json["messages"][-1]["content"]
    assert sent.startswith("Is great positive?") and "true or false" in sent


def test_llm_condition_unparseable_reply(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("Maybe, hard to say.")
    res, _ = run(branching("llm-condition", llm_server, ["true", "false"], prompt="Is it?"))
    assert res.status == "failed"
    err = error(res)
    assert err["node_id"] == "a" and err["type"] == "NodeError"
    assert "'Maybe, hard to say.'" in err["message"] and "yes/true or no/false" in err["message"]


@pytest.mark.parametrize("reply", ["approve", "  'Approve.' ", "**APPROVE**", "Action: approve",
                                   '"approve"\nbecause it is fine'])
def test_llm_router_normalises_reply(llm_server: LLMServer, api_key: str, reply: str) -> None:
    llm_server.script(reply)
    res, _ = run(branching("llm-router", llm_server, ["approve", "ban"],
                           prompt="Moderate: {{text}}", routes=["approve", "ban"]),
                 {"text": "nice post"})
    assert res.ok, res.error
    assert res.outputs["a"] == reply.strip()
    assert res.output == "approve"
    sent = llm_server.requests[0].json["messages"][-1]["content"]
    assert "Answer with exactly one of: approve, ban." in sent


def test_llm_router_invalid_answer(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("escalate")
    res, _ = run(branching("llm-router", llm_server, ["approve", "ban"], prompt="Moderate",
                           routes=["approve", "ban"]))
    assert res.status == "failed"
    assert error(res)["node_id"] == "a"
    assert error(res)["message"] == "router returned 'escalate'; expected one of ['approve', 'ban']"


def test_llm_router_route_descriptions_and_hyphens(llm_server: LLMServer, api_key: str) -> None:
    llm_server.script("Delete spam")
    routes = {"approve": "fine", "delete-spam": "adverts and links"}
    res, _ = run(branching("llm-router", llm_server, list(routes), prompt="Moderate",
                           routes=routes))
    assert res.ok, res.error
    assert res.output == "delete-spam"
    sent = llm_server.requests[0].json["messages"][-1]["content"]
    assert "- delete-spam: adverts and links" in sent


def test_llm_router_needs_routes() -> None:
    # no params.routes and no edge with an action to learn them from
    res, _ = run(one_node("llm-router", prompt="Moderate"))
    assert res.status == "failed"
    assert "needs params.routes" in error(res)["message"]


def test_llm_router_routes_from_edges(llm_server: LLMServer, api_key: str) -> None:
    # without params.routes the runtime passes the edges' actions as params._actions
    llm_server.script("Ban")
    res, _ = run(branching("llm-router", llm_server, ["approve", "ban"], prompt="Moderate"))
    assert res.ok, res.error
    assert res.output == "ban"
    sent = llm_server.requests[0].json["messages"][-1]["content"]
    assert "Answer with exactly one of: approve, ban." in sent


def test_llm_router_reads_runtime_actions() -> None:
    res, _ = run(branching("llm-router", None, ["approve", "ban"], prompt="Moderate {{t}}",
                           _actions=["approve", "ban"]), {"t": "you idiot"})
    assert res.ok, res.error
    assert res.output == "ban"


def test_reply_parsers() -> None:
    assert parse_bool("yes") is True and parse_bool("  'True'.") is True
    assert parse_bool("not sure") is None and parse_bool("nope") is None
    assert parse_bool("No way") is False
    assert normalise_choice(" `Delete_Spam`!\nmore") == "delete-spam"
    assert match_choice("BAN.", ["approve", "ban"]) == "ban"
    assert match_choice("I would ban", ["approve", "ban"]) is None


# -- the offline fake ---------------------------------------------------------------------------------

def test_no_key_means_fake() -> None:
    assert llm.resolve().backend == "fake"
    res, events = run(one_node("llm-process", prompt="Write an outline about {{topic}}"),
                      {"topic": "container orchestration"})
    assert res.ok
    assert res.output.startswith("Outline:\n1. ")
    assert "container" in res.output
    [usage] = custom(events, "llm_usage")
    assert usage["model"] == "fake" and usage["cost_usd"] == 0.0 and usage["estimated"]
    assert usage["completion_tokens"] == len(res.output) // 4


def test_fake_is_deterministic() -> None:
    fake = llm.FakeLLM()
    prompts = ["Give me 3 titles for a post about {x}", "Summarise: {x}", "Tell me about {x}",
               "Is {x} good?"]
    for p in prompts:
        msgs = [{"role": "user", "content": p.format(x="rust async runtimes")}]
        assert fake.complete(msgs) == fake.complete(msgs) == llm.FakeLLM().complete(msgs)
    titles = fake.complete([{"role": "user", "content": "Suggest titles for a post on Python typing"}])
    assert titles.startswith("1. ") and len(titles.splitlines()) == 3
    summary = fake.complete([{"role": "user", "content":
                              "Summarise this:\nThe cat sat on the mat. It was warm."}])
    assert summary.startswith("Summary: The cat sat on the mat.")


def test_fake_reads_the_task_from_the_instruction() -> None:
    # the draft's prompt contains an outline, yet it asks for a post: the answer is a draft
    bp = {"id": "blog", "nodes": [
        {"id": "outline", "uses": "llm-process",
         "params": {"prompt": "Write a short outline for a blog post about: {{topic}}"}},
        {"id": "draft", "uses": "llm-process",
         "params": {"prompt": "Write a draft blog post following this outline:\n{{outline}}"}},
        {"id": "titles", "uses": "llm-process",
         "params": {"prompt": "Suggest 5 SEO-friendly titles for this blog post:\n{{draft}}"}},
    ], "edges": [{"source": "outline", "target": "draft"}, {"source": "draft", "target": "titles"}]}
    res = flownb.run(bp, {"topic": "Home composting"})
    assert res.ok, res.error
    assert res.outputs["outline"].startswith("Outline:\n1. Introduction: why home composting")
    draft = res.outputs["draft"]
    assert not draft.startswith("Outline:") and draft.count("\n\n") >= 5
    titles = res.outputs["titles"].splitlines()
    assert len(titles) == 5 and all(t.startswith(f"{i}. ") for i, t in enumerate(titles, 1))


@pytest.mark.parametrize("text,rating", [("What a lovely photo", "none"),
                                         ("You idiot.", "moderate"),
                                         ("You are an idiot and a worthless moron", "severe")])
def test_fake_rates_on_a_scale(text: str, rating: str) -> None:
    res = flownb.run(one_node("llm-process", prompt="Rate the hate speech in this text as none, "
                                                    "moderate or severe: {{text}}"), {"text": text})
    assert res.output == rating


REVIEW_BP = {"id": "review", "nodes": [
    {"id": "check", "uses": "llm-condition",
     "params": {"prompt": "Is this customer review positive?\n\n{{review}}"}},
    {"id": "thank", "uses": "output", "params": {"template": "thank"}},
    {"id": "apologise", "uses": "output", "params": {"template": "apologise"}},
], "edges": [{"source": "check", "target": "thank", "action": "true"},
             {"source": "check", "target": "apologise", "action": "false"}]}


@pytest.mark.parametrize("review,branch", [
    ("I love it, works great and arrived fast. Highly recommend!", "thank"),
    ("Terrible. Broken on arrival, support was rude, I want a refund.", "apologise"),
    ("Not good at all, very disappointed.", "apologise"),
])
def test_fake_condition_branch_follows_input(review: str, branch: str) -> None:
    res = flownb.run(REVIEW_BP, {"review": review})
    assert res.ok, res.error
    assert res.output == branch


def test_fake_condition_counts_required_skills() -> None:
    bp = {"id": "q", "nodes": [{"id": "q", "uses": "llm-condition", "params": {
        "prompt": "Does the candidate have at least 2 of the required skills: python, sql, "
                  "docker?\n\nResume: {{resume}}"}}]}
    strong = flownb.run(bp, {"resume": "5 years of Python and SQL, some Docker."})
    weak = flownb.run(bp, {"resume": "Marketing lead, Excel wizard, knows a little SQL."})
    assert strong.output is True and weak.output is False


MODERATION = ["approve", "redact", "ban", "delete-spam"]


@pytest.mark.parametrize("text,route", [
    ("Thanks for the helpful article!", "approve"),
    ("Contact me at jane.doe@example.com for details", "redact"),
    ("Call me on +1 415 555 0134 tonight", "redact"),
    ("You are an idiot and your post is trash", "ban"),
    ("BUY NOW!!! click here http://cheap.example.biz", "delete-spam"),
])
def test_fake_router_moderation(text: str, route: str) -> None:
    res = flownb.run(branching("llm-router", None, MODERATION,
                               prompt="Moderate this comment:\n{{text}}", routes=MODERATION),
                     {"text": text})
    assert res.ok, res.error
    assert res.output == route


def test_fake_handler_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def handler(messages: Any, params: Any) -> str | None:
        seen.append(dict(params))
        return "ban" if params.get("task") == "router" else None

    llm.configure(fake=llm.FakeLLM(handler))
    res = flownb.run(branching("llm-router", None, ["approve", "ban"], prompt="Moderate {{t}}",
                               routes=["approve", "ban"]), {"t": "lovely"})
    assert res.output == "ban"
    assert seen[0]["task"] == "router" and seen[0]["choices"] == ["approve", "ban"]
    assert seen[0]["content"] == "lovely"
    # returning None falls back to the built-in behaviour
    res = flownb.run(one_node("llm-process", prompt="Write an outline on {{t}}"), {"t": "x"})
    assert res.output.startswith("Outline:")


def test_fake_streams_tokens() -> None:
    res, events = run(one_node("llm-process", prompt="Tell me about {{t}}", stream=True),
                      {"t": "sourdough baking"})
    tokens = custom(events, "llm_token")
    assert tokens and "".join(t["text"] for t in tokens) == res.output


def test_fake_forced_even_with_key(monkeypatch: pytest.MonkeyPatch, llm_server: LLMServer) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("FLOWNB_LLM", "fake")
    res, _ = run(one_node("llm-process", llm_server, prompt="hello"))
    assert res.ok and not llm_server.requests


# -- settings and describe() ----------------------------------------------------------------------------

def test_describe_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert llm.describe() == ("LLM: offline fake model (set OPENAI_API_KEY or FLOWNB_LLM=openai "
                              "for a real one)")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert llm.describe() == "LLM: gpt-4o-mini at https://api.openai.com/v1"
    monkeypatch.setenv("FLOWNB_LLM_MODEL", "gpt-4.1-mini")
    assert llm.describe() == "LLM: gpt-4.1-mini at https://api.openai.com/v1"
    monkeypatch.setenv("FLOWNB_LLM_MODEL", "gpt-4o")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    assert llm.describe() == "LLM: gpt-4o at http://127.0.0.1:9/v1"
    llm.configure(model="my-model", base_url="http://localhost:8000/v1")
    assert llm.describe() == "LLM: my-model at http://localhost:8000/v1"
    assert llm.describe({"model": "node-model"}) == "LLM: node-model at http://localhost:8000/v1"
    monkeypatch.setenv("FLOWNB_LLM", "fake")
    assert llm.describe().startswith("LLM: offline fake model")
    llm.configure(backend="openai")  # code beats the environment
    assert llm.describe() == "LLM: my-model at http://localhost:8000/v1"


def test_base_url_alone_selects_real_client() -> None:
    s = llm.resolve({"base_url": "http://127.0.0.1:1234/v1"})
    assert s.backend == "openai" and s.api_key  # a placeholder key for local servers


def test_forced_openai_without_key_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNB_LLM", "openai")
    assert "no API key" in llm.describe()
    res, _ = run(one_node("llm-process", prompt="hi"))
    assert res.status == "failed" and "OPENAI_API_KEY" in error(res)["message"]


def test_bad_params_are_explained() -> None:
    res, _ = run(one_node("llm-process", prompt="hi", temperature="hot"))
    assert res.status == "failed" and "params.temperature must be a number" in error(res)["message"]
    res, _ = run(one_node("llm-process"), {"not": "a string"})
    assert res.status == "failed" and "needs params.prompt" in error(res)["message"]


def test_prompt_defaults_to_string_input_and_key_writes_state() -> None:
    bp = {"id": "chain", "nodes": [
        {"id": "first", "uses": "output", "params": {"template": "Write an outline on {{t}}"}},
        {"id": "second", "uses": "llm-process", "params": {"key": "draft"}},
    ], "edges": [{"source": "first", "target": "second"}]}
    res = flownb.run(bp, {"t": "kites"})
    assert res.ok, res.error
    assert res.output.startswith("Outline:") and res.state["draft"] == res.output


# -- prices ----------------------------------------------------------------------------------------------

def test_cost_computation() -> None:
    assert llm.cost_usd("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert llm.cost_usd("gpt-4o", 2000, 1000) == pytest.approx((2000 * 2.5 + 1000 * 10) / 1e6)
    assert llm.cost_usd("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert price_for("openai/gpt-4o") == llm.PRICES["gpt-4o"]
    assert llm.cost_usd("some-local-model", 10, 10) is None
    assert llm.cost_usd("fake", 10, 10) == 0.0
    llm.PRICES["house-model"] = (1.0, 2.0)
    try:
        assert llm.cost_usd("house-model", 500_000, 250_000) == pytest.approx(1.0)
    finally:
        del llm.PRICES["house-model"]


def test_token_coalescer_limits_rate() -> None:
    out: list[str] = []
    c = llm.TokenCoalescer(out.append, interval_s=0.1)
    for i in range(200):
        c.add(f"{i} ")
    c.flush()
    assert len(out) == 2 and out[0] == "0 "  # the first piece at once, the rest batched
    assert "".join(out) == "".join(f"{i} " for i in range(200))


# -- import hygiene ----------------------------------------------------------------------------------------

def test_core_and_fake_work_without_openai(tmp_path: Path) -> None:
    code = """
import sys
sys.modules['openai'] = None  # make `import openai` fail
import flownb, flownb.llm
res = flownb.run({"id": "t", "nodes": [{"id": "a", "uses": "llm-process",
                  "params": {"prompt": "Is {{x}} great?"}}]}, {"x": "this"})
assert res.ok, res.error
res = flownb.run({"id": "t", "nodes": [{"id": "a", "uses": "llm-process",
                  "params": {"prompt": "hi", "base_url": "http://127.0.0.1:9/v1"}}]},
                 raise_on_error=False)
assert res.status == "failed"
print(res.error["message"])
"""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["FLOWNB_LLM_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'flownb[llm]'" in out.stdout


def test_import_flownb_does_not_import_openai() -> None:
    code = "import sys, flownb; flownb.run({'id':'t','nodes':[{'id':'a','uses':'noop'}]}); " \
           "print('openai' in sys.modules, 'flownb.llm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr
