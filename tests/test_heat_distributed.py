"""A run's path and a batch's heat map on Redis with real ``flownb worker`` processes (and on a
LocalCluster): the same taken edges and the same counts as in process, live while the batch runs
(the ``taken`` list each ``node_succeeded`` event carries), final from the runs' history streams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import heat_nodes  # noqa: F401 - the node type, for the in-process twin and the thread cluster
import pytest
from conftest import Workers

import flownb
from flownb.render.mermaid import to_mermaid
from flownb.render.paths import TAKEN

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def heat_workers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url, modules=(*Workers.MODULES, "heat_nodes"))
    w.start(2)
    yield w
    w.close()


def _route(url: str) -> flownb.Blueprint:
    """pick -> big (n > 5) | small (n <= 5) -> work (fails on multiples of 3)."""
    return flownb.load({
        "id": "heat-dist-route",
        "nodes": [{"id": "pick", "uses": "noop"}, {"id": "big", "uses": "noop"},
                  {"id": "small", "uses": "noop"},
                  {"id": "work", "uses": "heat-dist-work", "params": {"redis": url}}],
        "edges": [{"source": "pick", "target": "big", "condition": "input.n > 5"},
                  {"source": "pick", "target": "small", "condition": "input.n <= 5"},
                  {"source": "small", "target": "work"}]})


def _calls(url: str, n: int) -> list[int]:
    import redis

    r = redis.Redis.from_url(url)
    return [int(r.get(f"heattest:calls:{i}") or 0) for i in range(n)]


def test_a_distributed_runs_path_matches_in_process(redis_url: str, heat_workers: Workers) -> None:
    from flownb.distributed import DistributedExecutor

    ex = DistributedExecutor(redis_url)
    bp = _route(redis_url)
    for n, want in ((9, {0: 1}), (4, {1: 1, 2: 1}), (3, {1: 1, 2: 1})):
        res = ex.submit(bp, {"n": n}).result(timeout=60, raise_on_error=False)
        local = flownb.run(bp, {"n": n}, raise_on_error=False)
        assert res.status == local.status and res.taken_edges == local.taken_edges == want
        assert flownb.render.to_dot(bp, states=res) == flownb.render.to_dot(bp, states=local)
        mm = to_mermaid(bp, states=res)
        assert mm == to_mermaid(bp, states=local) and f"stroke:{TAKEN}" in mm
    assert flownb.attach(res.run_id, redis=redis_url).result(raise_on_error=False).taken_edges == {1: 1, 2: 1}


def test_distributed_batch_heat_map_live_and_final(redis_url: str, heat_workers: Workers) -> None:
    pytest.importorskip("ipywidgets")
    from flownb.distributed import DistributedExecutor
    from flownb.notebook.batch_view import BatchWidget

    bp = _route(redis_url)
    n = 10
    rows = [{"n": i, "sleep": 1.5 if i in (1, 2) else 0.0} for i in range(n)]
    batch = DistributedExecutor(redis_url).map(bp, rows)
    w = BatchWidget(batch)
    deadline = time.monotonic() + 30
    live: Any = None
    while time.monotonic() < deadline:  # live: rows 1 and 2 sleep in "work" on a worker
        live = batch.snapshot().heat
        if live.node("work").running >= 1 and not batch.done():
            break
        time.sleep(0.05)
    assert live is not None and live.node("work").running >= 1, live
    assert live.edge(1).runs >= 1  # pick -> small taken, seen from the events' taken lists
    assert w.wait(timeout=60)
    heat = batch.snapshot().heat
    assert heat.runs == n
    assert heat.node("pick").passed == n and heat.node("big").passed == 4
    assert heat.node("work").passed == 4 and heat.node("work").failed == 2  # rows 0 and 3
    assert heat.node("work").running == 0
    assert (heat.edge(0).runs, heat.edge(1).runs, heat.edge(2).runs) == (4, 6, 6)
    assert _calls(redis_url, n) == [1] * 6 + [0] * 4  # each row's work ran once
    local = flownb.run_many(bp, rows, concurrency=None)
    assert local.wait(60)
    assert local.snapshot().heat == heat  # the same map on both executors
    assert w.heat == heat.to_dict() and "heat map of 10 runs" in w.graph.value
    if flownb.render.to_svg(bp) is not None:
        assert "4/10 ran · 2 failed" in w.graph.value and "6/10 (60%)" in w.graph.value
    w.close()


def test_local_cluster_batch_heat_map(redis_url: str) -> None:
    from flownb.notebook import LocalCluster

    bp = _route(redis_url)
    with LocalCluster(1, mode="thread", redis=redis_url) as cluster:
        batch = cluster.map(bp, [{"n": i} for i in (1, 2, 7)])
        assert batch.wait(60)
        heat = batch.snapshot().heat
    assert heat.runs == 3 and heat.node("work").passed == 2 and heat.node("big").passed == 1
    assert heat.edge(0).runs == 1 and heat.edge(2).runs == 2
