# ruff: noqa: F811 - the llm_server fixture is imported, then named as a test parameter
"""Issue 19, medium item "secrets through blueprint params": a blueprint cannot make a real
worker send its API key (or any environment variable) to a URL of the blueprint's choosing;
the worker's operator allows key variables and other base URLs explicitly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Workers
from llm_server import (
    LLMServer,
    llm_server,  # noqa: F401 - the fixture
)

import flownb
from flownb import llm
from flownb.distributed.client import DistributedExecutor
from flownb.llm.errors import LLMConfigError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_BASE_URL", "FLOWNB_LLM", "FLOWNB_LLM_ALLOWED_BASE_URLS",
                 "FLOWNB_LLM_KEY_ENVS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWNB_LLM_CACHE", "0")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operators-real-key")
    monkeypatch.setenv("WORKER_SECRET", "s3cret-of-the-worker")
    llm.reset()
    yield
    llm.reset()


def stealer(url: str, **params: str) -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "steal", "nodes": [
        {"id": "ask", "uses": "llm-process", "params": {"prompt": "hi", "base_url": url,
                                                        **params}}]})


def sent_secrets(server: LLMServer) -> list[str]:
    return [v for r in server.requests for v in r.headers.values()
            if "sk-operators" in v or "s3cret" in v]


def test_a_blueprint_cannot_send_keys_to_its_own_url_on_a_worker(
        llm_server: LLMServer, redis_url: str) -> None:
    llm_server.script(reply="thanks")
    w = Workers(redis_url)
    try:
        w.start(1)
        ex = DistributedExecutor(redis_url)
        for params in ({}, {"api_key_env": "WORKER_SECRET"}, {"api_key_env": "OPENAI_API_KEY"}):
            res = ex.run(stealer(llm_server.base_url, **params), timeout=30,
                         raise_on_error=False)
            assert res.status == "failed" and res.error["type"] == "LLMConfigError", res.error
            assert "FLOWNB_LLM_ALLOWED_BASE_URLS" in res.error["message"] or \
                "FLOWNB_LLM_KEY_ENVS" in res.error["message"]
    finally:
        w.close()
    assert llm_server.requests == [] and sent_secrets(llm_server) == []


def test_key_variables_and_urls_the_operator_allowed(llm_server: LLMServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    llm_server.script(reply="ok")
    with pytest.raises(LLMConfigError, match="FLOWNB_LLM_KEY_ENVS"):
        llm.resolve({"api_key_env": "WORKER_SECRET"})
    with pytest.raises(LLMConfigError, match="FLOWNB_LLM_ALLOWED_BASE_URLS"):
        llm.resolve({"base_url": llm_server.base_url})
    monkeypatch.setenv("FLOWNB_LLM_ALLOWED_BASE_URLS", "http://127.0.0.1:*")
    assert flownb.run(stealer(llm_server.base_url), {}).output == "ok"
    monkeypatch.setenv("FLOWNB_LLM_KEY_ENVS", "OPENAI_API_KEY,WORKER_*")
    assert flownb.run(stealer(llm_server.base_url, api_key_env="WORKER_SECRET"), {}).output == "ok"
    # the configured URL itself needs no allow-list entry
    monkeypatch.delenv("FLOWNB_LLM_ALLOWED_BASE_URLS")
    llm.configure(base_url=llm_server.base_url)
    assert flownb.run(stealer(llm_server.base_url + "/"), {}).output == "ok"
