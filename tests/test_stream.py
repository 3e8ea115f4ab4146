"""Streaming (flownb.stream): the same chunks in process and on Redis, late replay, waits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import hitl_nodes  # noqa: F401
import pytest
from hitl_support import hitl_workers

import flownb
from flownb.distributed.client import DistributedExecutor
from flownb.engine.stream import Chunk

BP = flownb.load({"id": "stream-me", "nodes": [
    {"id": "a", "uses": "hitl-count", "params": {"text": "A"}},
    {"id": "b", "uses": "set", "params": {"values": {"k": 1}}},
    {"id": "c", "uses": "hitl-count", "params": {"text": "C"}},
    {"id": "never", "uses": "hitl-count"},
    {"id": "llm", "uses": "llm-process", "params": {"prompt": "Summarise: {{input}}",
                                                    "stream": True}}],
    "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"},
              {"source": "b", "target": "never", "condition": "state.k == 2"},
              {"source": "c", "target": "llm"}]})
INPUTS = {"topic": "streams"}
MODES = ["updates", "values", "events", "tokens"]


def comparable(chunks: list[Chunk]) -> dict[str, list[Any]]:
    """Per mode, what must agree across executors (events: type and node; tokens: the text
    per node — how the pieces are batched depends on timing)."""
    out: dict[str, list[Any]] = {m: [] for m in MODES}
    tokens: dict[str | None, str] = {}
    for c in chunks:
        if c.mode == "events":
            out["events"].append((c.data.type, c.node, c.visit))
        elif c.mode == "tokens":
            tokens[c.node] = tokens.get(c.node, "") + c.data
        else:
            out[c.mode].append((c.node, c.visit, c.data))
    out["tokens"] = sorted(tokens.items(), key=lambda kv: str(kv[0]))
    return out


@pytest.fixture(scope="module")
def dist_chunks(module_redis_url: str) -> Iterator[tuple[DistributedExecutor, list[Chunk], str]]:
    w = hitl_workers(module_redis_url)
    w.start(1)
    try:
        ex = DistributedExecutor(module_redis_url)
        handle = ex.submit(BP, INPUTS, history=True)  # updates/values are built from it
        chunks = list(handle.stream(MODES, timeout=60))
        assert handle.result(timeout=30).status == "succeeded"
        yield ex, chunks, handle.run_id
    finally:
        w.close()


def test_in_process_stream_modes() -> None:
    s = flownb.stream(BP, INPUTS, mode="updates")
    chunks = list(s)
    assert [(c.node, c.visit) for c in chunks] == [("a", 1), ("b", 1), ("c", 1), ("llm", 1)]
    assert chunks[1].data == {"output": "A()", "action": None, "writes": {"k": 1}}
    assert s.result is not None and s.result.status == "succeeded"
    values = list(flownb.stream(BP, INPUTS, mode="values"))
    assert values[-1].data["state"]["k"] == 1 and values[-1].data["outputs"]["c"] == "C(A())"
    assert values[0].data["state"] == {"topic": "streams", "seen_a": 1}
    tokens = [c for c in flownb.stream(BP, INPUTS, mode="tokens")]
    assert tokens and all(c.node == "llm" for c in tokens)
    with pytest.raises(flownb.FlownbError, match="unknown stream mode"):
        flownb.stream(BP, INPUTS, mode="nope")


def test_async_stream_gives_the_same_chunks() -> None:
    async def collect() -> list[Chunk]:
        return [c async for c in flownb.astream(BP, INPUTS, mode=MODES)]

    a = comparable(asyncio.run(collect()))
    b = comparable(list(flownb.stream(BP, INPUTS, mode=MODES)))
    assert a == b


def test_both_executors_give_the_same_sequence(dist_chunks: Any) -> None:
    _, dist, _ = dist_chunks
    local = comparable(list(flownb.stream(BP, INPUTS, mode=MODES)))
    remote = comparable(dist)
    for m in MODES:
        assert local[m] == remote[m], m
    assert ("node_skipped", "never", None) in local["events"]
    assert local["tokens"][0][0] == "llm" and local["tokens"][0][1]


def test_late_subscriber_replays_from_the_start(dist_chunks: Any) -> None:
    ex, first, run_id = dist_chunks
    again = list(ex.attach(run_id).stream(MODES))
    assert comparable(again) == comparable(first)
    assert again[0].mode == "events" and again[0].data.type == "run_started"


def test_streams_end_when_the_run_waits(dist_chunks: Any) -> None:
    ex, _, _ = dist_chunks
    bp = flownb.load({"id": "w", "nodes": [{"id": "a", "uses": "hitl-count"},
                                          {"id": "ask", "uses": "wait"},
                                          {"id": "z", "uses": "hitl-count"}],
                      "edges": [{"source": "a", "target": "ask"}, {"source": "ask", "target": "z"}]})
    local = flownb.stream(bp, mode="events")
    types = [c.data.type for c in local]
    assert types[-2:] == ["node_waiting", "run_waiting"]
    assert local.result is not None and local.result.status == "waiting"
    assert local.result.resume("ask", "go").status == "succeeded"  # the stream left it resumable
    handle = ex.submit(bp)
    remote = [c.data.type for c in handle.stream("events", timeout=30)]
    assert remote[-2:] == ["node_waiting", "run_waiting"]
    handle.resume("ask", "go")
    assert handle.result(timeout=30).status == "succeeded"
    # replayed after the resume, the stream runs through the wait to the end
    after = [c.data.type for c in handle.stream("events", timeout=30)]
    assert "run_waiting" in after and after[-1] == "run_finished"
