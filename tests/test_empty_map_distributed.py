"""A map over an empty list on workers, followed by a node: the run completes.

Why: the map node has no child run to wait for, so its visit commits at once, and that COMMIT
claimed the single successor for the worker inline while the caller dropped the claimed item:
a live worker's claimed item, which the reaper spares, so the run hung for ever. Real Redis,
a real ``flownb worker``."""

from __future__ import annotations

import flownb
from flownb.distributed.client import DistributedExecutor

from conftest import Workers
from scenarios import bp, n


def test_map_over_an_empty_list_then_a_node_completes(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    blueprint = flownb.Blueprint.from_dict(bp(
        "map-empty", [n("m", "map", node="t-double", items="xs"), n("after", "t-echo")],
        [("m", "after")]))
    res = ex.submit(blueprint, inputs={"xs": []}).result(timeout=30, raise_on_error=False)
    assert res.status == "succeeded", res.error
    assert res.outputs == {"m": [], "after": []}
    full = ex.submit(blueprint, inputs={"xs": [1, 2]}).result(timeout=30, raise_on_error=False)
    assert full.outputs == {"m": [2, 4], "after": [2, 4]}  # the non-empty case is unchanged
