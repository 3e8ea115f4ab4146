"""Each piece of streamed LLM text comes once (issue 20 #11: the ``events`` mode repeated the
token events): in ``events`` mode every ``llm_token`` event is one chunk, and with ``tokens``
among the modes the text is only in the ``tokens`` chunks — in process and on a real worker."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Workers

import flownb
from flownb.engine.stream import TOKEN_EVENT, Chunk

pytestmark = pytest.mark.timeout(90)

BP = flownb.load({"id": "tokens-once", "nodes": [
    {"id": "a", "uses": "llm-process", "params": {"prompt": "Summarise: {{topic}}", "stream": True}},
    {"id": "b", "uses": "llm-process", "params": {"prompt": "Summarise again: {{input}}",
                                                  "stream": True}}],
    "edges": [{"source": "a", "target": "b"}]})
INPUTS = {"topic": "rivers and the sea"}


def _token_events(chunks: list[Chunk]) -> list[Any]:
    return [c.data for c in chunks if c.mode == "events" and c.data.type == "custom"
            and c.data.data.get("name") == TOKEN_EVENT]


def _check(events_only: list[Chunk], mixed: list[Chunk], outputs: dict[str, Any]) -> None:
    tokens = _token_events(events_only)
    assert {e.node_id for e in tokens} == {"a", "b"}
    for node in ("a", "b"):  # the pieces add up to the answer: none repeated, none lost
        assert "".join(e.data["text"] for e in tokens if e.node_id == node) == outputs[node]
    ids = [e.id for e in tokens if e.id]
    assert len(ids) == len(set(ids))
    # events and tokens together: the text comes as tokens chunks only, once
    assert _token_events(mixed) == []
    for node in ("a", "b"):
        assert "".join(c.data for c in mixed if c.mode == "tokens" and c.node == node) \
            == outputs[node]
    assert [c.data.type for c in mixed if c.mode == "events"][-1] == "run_finished"
    usage = [c for c in mixed if c.mode == "events" and c.data.type == "custom"]
    assert len(usage) == 2  # the other custom events (llm_usage) are still events


def test_in_process_each_token_comes_once() -> None:
    s = flownb.stream(BP, INPUTS, mode="events")
    events_only = list(s)
    assert s.result is not None and s.result.status == "succeeded"
    mixed = list(flownb.stream(BP, INPUTS, mode=["tokens", "updates", "events"]))
    _check(events_only, mixed, s.result.outputs)


def test_on_a_real_worker_each_token_comes_once(redis_url: str, workers: Workers) -> None:
    from flownb.distributed import DistributedExecutor

    workers.start(1)
    ex = DistributedExecutor(redis_url)
    handle = ex.submit(BP, INPUTS, history=True)  # the "updates" mode below reads it
    events_only = list(handle.stream("events", timeout=60))
    res = handle.result(timeout=30)
    assert res.status == "succeeded"
    mixed = list(ex.attach(handle.run_id).stream(["tokens", "updates", "events"], timeout=30))
    _check(events_only, mixed, res.outputs)
