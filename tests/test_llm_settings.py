# ruff: noqa: F811 - the llm_server fixture is imported, then named as a test parameter
"""LLM settings a newcomer trips over: FLOWNB_LLM typos, .env files, the bounded cache, sampled
calls not cached, ``flownb cache clear``, the dated price table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import (
    LLMServer,
    llm_server,  # noqa: F401 - the fixture (tests name it as a parameter)
)

import flownb
from flownb import llm
from flownb.llm import config as llm_config
from flownb.llm.cache import DiskCache
from flownb.llm.prices import PRICES_AS_OF


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FLOWNB_LLM", "FLOWNB_LLM_MODEL",
                 "FLOWNB_LLM_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWNB_LLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWNB_LLM_ALLOWED_BASE_URLS", "http://127.0.0.1:*,http://localhost:*")  # the test servers
    llm.reset()
    yield
    llm.reset()


def test_flownb_llm_typo_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNB_LLM", "opnai")
    with pytest.raises(llm.LLMConfigError) as exc:
        llm.resolve({})
    msg = str(exc.value)
    assert "'opnai'" in msg and "fake" in msg and "openai" in msg and "FLOWNB_LLM_MODEL" in msg
    bp = flownb.Blueprint.from_dict({"id": "x", "nodes": [
        {"id": "a", "uses": "llm-process", "params": {"prompt": "hi"}}]})
    res = flownb.run(bp, {}, raise_on_error=False)
    assert res.status == "failed" and res.error is not None and "opnai" in res.error["message"]


def test_dotenv_is_read_without_overriding(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FLOWNB_LLM_MODEL=from-dotenv\nOPENAI_BASE_URL=http://x/v1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://already-set/v1")
    monkeypatch.setattr(llm_config, "_dotenv_done", False)
    monkeypatch.delenv("FLOWNB_LLM_MODEL", raising=False)
    try:
        s = llm.resolve({})
        assert s.model == "from-dotenv"  # read from the file
        assert s.base_url == "http://already-set/v1"  # an existing variable wins
    finally:
        os.environ.pop("FLOWNB_LLM_MODEL", None)


def _one(server: LLMServer, **params: object) -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "c", "nodes": [
        {"id": "a", "uses": "llm-process",
         "params": {"prompt": "same question", "base_url": server.base_url, **params}}]})


def test_sampled_calls_are_not_cached_unless_asked(llm_server: LLMServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm_server.script(reply="answer")
    for _ in range(2):
        flownb.run(_one(llm_server, temperature=0.8))
    assert len(llm_server.requests) == 2  # temperature > 0: each run asks again
    for _ in range(2):
        flownb.run(_one(llm_server, temperature=0.8, cache=True))
    assert len(llm_server.requests) == 3  # asked for: the second is a hit
    for _ in range(2):
        flownb.run(_one(llm_server, temperature=0))
    assert len(llm_server.requests) == 4


def test_disk_cache_age_and_size_limits(tmp_path: Path) -> None:
    c = DiskCache(tmp_path / "c", max_age_s=60, max_mb=0.01)  # ~10 KB
    c.set("aa" + "0" * 62, {"text": "old", "created": time.time() - 120})
    assert c.get("aa" + "0" * 62) is None  # expired: a miss, and deleted
    assert not list((tmp_path / "c").glob("*/*.json"))
    big = "x" * 3000
    for i in range(6):
        key = f"{i:02d}" + "1" * 62
        c.set(key, {"text": big, "created": time.time()})
        os.utime(c._path(key), (time.time() - 50 + i, time.time() - 50 + i))
    removed = c.prune()
    left = sorted(p.name[:2] for p in (tmp_path / "c").glob("*/*.json"))
    assert removed >= 3 and left == [f"{i:02d}" for i in range(6)][-len(left):]  # oldest went
    assert sum(p.stat().st_size for p in (tmp_path / "c").glob("*/*.json")) <= 0.01 * 1024 * 1024


def test_cache_clear_command(tmp_path: Path) -> None:
    d = tmp_path / "cc"
    DiskCache(d).set("ab" + "2" * 62, {"text": "t", "created": time.time()})
    p = subprocess.run([sys.executable, "-m", "flownb", "cache", "clear", "--dir", str(d)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0 and "removed 1 cached LLM answer" in p.stdout
    assert not list(d.glob("*/*.json"))


def test_price_table_is_dated() -> None:
    assert len(PRICES_AS_OF) == 10 and PRICES_AS_OF[4] == "-"
    assert json.dumps(llm.PRICES["gpt-4o-mini"]) == "[0.15, 0.6]"
