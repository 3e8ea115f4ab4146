"""State keys starting with ``_outputs`` belong to flownb: ``_outputs.<node>`` holds a node's output
and ``_outputs:<node>`` its stats (on Redis, in the same hash as the state). A node or a fork that
writes one gets a clear error naming the key — never a silently overwritten output or stats."""

from __future__ import annotations

import pytest

import flownb


@pytest.mark.parametrize("key", ["_outputs.b", "_outputs:b", "_outputs", "_outputsx"])
def test_a_node_writing_a_reserved_state_key_fails_naming_it(key: str) -> None:
    reg = flownb.Registry()
    reg.add("writes", lambda ctx: (ctx.state.set(key, 1), "done")[1])
    reg.add("plain", lambda ctx: "b ran")
    bp = flownb.Blueprint.from_dict({"id": "reserved", "nodes": [
        {"id": "b", "uses": "plain"}, {"id": "a", "uses": "writes"}],
        "edges": [{"source": "b", "target": "a"}]})
    res = flownb.run(bp, registry=reg, raise_on_error=False)
    assert res.status == "failed"
    assert res.nodes["a"].status == "failed"
    assert f"state key {key!r} is reserved" in str(res.error)
    assert res.outputs["b"] == "b ran"


def test_an_ordinary_key_that_merely_contains_outputs_is_fine() -> None:
    reg = flownb.Registry()
    reg.add("writes", lambda ctx: (ctx.state.set("my_outputs:b", 1), "done")[1])
    bp = flownb.Blueprint.from_dict({"id": "fine", "nodes": [{"id": "a", "uses": "writes"}]})
    assert flownb.run(bp, registry=reg).state["my_outputs:b"] == 1
