"""A plain chat completion goes out as one ``POST`` without the SDK's typed transform and models
(:mod:`flownb.llm.chat_post`): it must send what ``chat.completions.create`` sends and read the
answer as the SDK would. Real ``openai`` clients against ``tests/llm_server.py``; no mocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer, llm_server, real_client_env  # noqa: F401 - the fixture

import flownb
from flownb.llm import client as llm_client
from flownb.llm.chat_post import completion_from_body
from flownb.llm.config import resolve
from flownb.llm.errors import LLMError

KEY = "sk-test-chat-post"
#: headers that differ from one request to the next whatever sends them
VARYING = {"content-length", "x-stainless-retry-count", "x-stainless-read-timeout",
           "x-stainless-timeout"}


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    yield from real_client_env(monkeypatch, tmp_path, KEY)


def _settings(server: LLMServer, **params: Any) -> Any:
    return resolve({"base_url": server.base_url, "model": "test-model", "backend": "openai",
                    **params})


def test_the_post_sends_what_create_sends(llm_server: LLMServer) -> None:  # noqa: F811
    llm_server.script("fine", usage=(7, 1))
    settings = _settings(llm_server, temperature=0.3, max_tokens=20)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]

    async def both() -> Any:
        import openai

        comp = await llm_client.achat(settings, messages)
        sdk = openai.AsyncOpenAI(api_key=KEY, base_url=settings.effective_base_url)
        try:
            await sdk.chat.completions.create(
                **llm_client.request_kwargs(settings, messages, stream=False))
        finally:
            await sdk.close()
        await llm_client.aclose_clients()
        return comp

    comp = asyncio.run(both())
    assert (comp.text, comp.model, comp.prompt_tokens, comp.completion_tokens) == (
        "fine", "test-model", 7, 1)
    assert comp.finish_reason == "stop" and not comp.estimated and not comp.cached
    ours, sdks = llm_server.requests
    assert ours.path == sdks.path == "/v1/chat/completions"
    assert ours.json == sdks.json == {"model": "test-model", "messages": messages,
                                      "temperature": 0.3, "max_tokens": 20}
    assert ours.headers["authorization"] == f"Bearer {KEY}"
    assert ({k: v for k, v in ours.headers.items() if k not in VARYING}
            == {k: v for k, v in sdks.headers.items() if k not in VARYING})


def test_a_node_run_without_reported_usage_estimates_it(llm_server: LLMServer) -> None:  # noqa: F811
    llm_server.script("twelve chars", no_usage=True)
    events: list[Any] = []
    res = flownb.run({"id": "t", "nodes": [{"id": "a", "uses": "llm-process", "params": {
        "prompt": "p", "base_url": llm_server.base_url, "model": "test-model"}}]},
        {}, on_event=events.append)
    assert res.output == "twelve chars"
    [usage] = [e.data for e in events if e.type == "custom" and e.data.get("name") == "llm_usage"]
    assert usage["estimated"] is True and usage["completion_tokens"] == 3


def test_the_sync_call_reads_the_answer_too(llm_server: LLMServer) -> None:  # noqa: F811
    llm_server.script("sync answer", usage=(3, 2))
    comp = llm_client.chat(_settings(llm_server), [{"role": "user", "content": "q"}])
    assert (comp.text, comp.prompt_tokens, comp.completion_tokens) == ("sync answer", 3, 2)
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_an_error_status_is_still_the_sdks_error_turned_into_llm_error(
        llm_server: LLMServer) -> None:  # noqa: F811
    llm_server.script("never", fail=[401])
    with pytest.raises(LLMError, match=r"HTTP 401 after 1 attempt\(s\).*OPENAI_API_KEY"):
        asyncio.run(llm_client.achat(_settings(llm_server, max_retries=0),
                                     [{"role": "user", "content": "q"}]))


@pytest.mark.parametrize(("body", "says"), [
    ({"choices": [], "model": "m"}, "answered with no choices"),
    ({"model": "m"}, "answered with no choices"),
    ({"choices": [{"message": {"content": None, "refusal": "no way"}}]}, "refused: no way"),
    ({"choices": [{"message": {"content": ["a", "list"]}}]}, "content that is not text"),
    ({"choices": [{"message": {"content": [{"type": "image_url", "image_url": {}}]}}]},
     "content that is not text"),
    ("<html>a proxy page</html>", "something other than a JSON object"),
])
def test_odd_answers_fail_with_a_clear_error(body: Any, says: str) -> None:
    settings = resolve({"base_url": "http://127.0.0.1:9/v1", "model": "test-model",
                        "backend": "openai"})
    with pytest.raises(LLMError, match=says) as info:
        completion_from_body(body, settings, [{"role": "user", "content": "q"}])
    assert "test-model" in str(info.value)


@pytest.mark.parametrize("body", [
    # JSON sent as text/plain (or without a content type): the SDK hands back the text
    '{"model": "m", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}',
    b'{"model": "m", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}',
    # content as text parts
    {"model": "m", "choices": [{"message": {"content": [{"type": "text", "text": "o"},
                                                        {"type": "text", "text": "k"}]},
                                "finish_reason": "stop"}]},
])
def test_answers_the_typed_parse_read_are_read_too(body: Any) -> None:
    settings = resolve({"base_url": "http://127.0.0.1:9/v1", "model": "test-model",
                        "backend": "openai"})
    comp = completion_from_body(body, settings, [{"role": "user", "content": "q"}])
    assert (comp.text, comp.model, comp.finish_reason) == ("ok", "m", "stop")
