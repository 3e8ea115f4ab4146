"""Where runs go (issue 20, "go beyond"): a finished run's path stays on the drawing (taken edges
thick, the others faint) in the SVG, the Mermaid text and the run widget; a batch's graph is a
heat map (per node: runs through / failed / running; per edge: share of runs that took it),
live, from the pure aggregation in flownb.core.heat. In process here; on Redis and real workers
in tests/test_heat_distributed.py."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import pytest
from test_theme_contrast import contrast

import flownb
from flownb.core.heat import Heat, RunTrace, batch_heat, edge_counts, taken_of
from flownb.render.mermaid import to_mermaid
from flownb.render.paths import (
    FADED,
    FADED_ALPHA,
    HEAT_BORDER,
    HEAT_FAILED,
    HEAT_FILLS,
    HEAT_RUNNING,
    TAKEN,
    heat_fill,
)
from flownb.render.theme import BACKGROUNDS, NODE_TEXT

pytestmark = pytest.mark.timeout(60)

_GATE = threading.Event()


@flownb.node("heat-test-fail-odd")
def _fail_odd(ctx: flownb.NodeContext) -> Any:
    n = int(ctx.state.get("n"))
    if n % 2:
        raise ValueError(f"odd row {n}")
    return n


@flownb.node("heat-test-gate")
async def _gate(ctx: flownb.NodeContext) -> Any:
    deadline = time.monotonic() + 20
    while not _GATE.is_set():  # async: waiting rows hold no thread of the pool
        assert time.monotonic() < deadline, "the test never opened the gate"
        await asyncio.sleep(0.01)
    return ctx.input


@flownb.node("heat-test-count")
def _count(ctx: flownb.NodeContext) -> Any:
    n = int(ctx.state.get("laps") or 0) + 1
    ctx.state.set("laps", n)
    return flownb.Result({"laps": n}, action="again" if n < 3 else "done")


def _route(tail: str = "noop") -> flownb.Blueprint:
    """pick -> big (n > 5) | small (n <= 5) -> work (``tail``)."""
    return flownb.load({
        "id": f"heat-route-{tail}",
        "nodes": [{"id": "pick", "uses": "noop"}, {"id": "big", "uses": "noop"},
                  {"id": "small", "uses": "noop"}, {"id": "work", "uses": tail}],
        "edges": [{"source": "pick", "target": "big", "condition": "input.n > 5"},
                  {"source": "pick", "target": "small", "condition": "input.n <= 5"},
                  {"source": "small", "target": "work"}]})


# -- the pure aggregation -----------------------------------------------------------------------

def test_batch_heat_counts_runs_not_visits() -> None:
    heat = batch_heat([
        RunTrace({"a": "succeeded", "b": "succeeded", "c": "skipped"}, [0, 0, 2]),  # a loop: 0 twice
        RunTrace({"a": "succeeded", "b": "failed", "c": "skipped"}, [0]),
        RunTrace({"a": "succeeded", "b": "running"}, [0]),
        RunTrace({"a": "replaced", "c": "succeeded"}, [1]),
    ])
    assert heat.runs == 4
    a, b, c = heat.node("a"), heat.node("b"), heat.node("c")
    assert (a.passed, a.failed, a.running, a.share) == (4, 0, 0, 1.0)
    assert (b.passed, b.failed, b.running, b.skipped) == (1, 1, 1, 0)
    assert (c.passed, c.skipped, c.share) == (1, 2, 0.25)
    assert heat.edge(0).runs == 3 and heat.edge(0).share == 0.75  # laps do not inflate it
    assert heat.edge(1).runs == 1 and heat.edge(2).runs == 1
    assert heat.edge(9).runs == 0 and heat.node("zz").passed == 0  # unknown: cold, not an error
    d = heat.to_dict()
    assert d["runs"] == 4 and d["edges"]["0"]["runs"] == 3 and d["nodes"]["b"]["failed"] == 1
    assert batch_heat([]) == Heat()


def test_taken_counts_from_steps_and_events() -> None:
    class S:
        def __init__(self, taken: list[int]) -> None:
            self.taken = taken
    assert edge_counts([S([0]), S([1, 2]), S([0])]) == {0: 2, 1: 1, 2: 1}
    assert taken_of({"taken": [2, "1", "x", None, -1]}) == [1, 2]
    assert taken_of({}) == [] and taken_of(None) == [] and taken_of({"taken": "0"}) == []


# -- a run's path, in process -------------------------------------------------------------------

def test_a_finished_runs_path_stays_on_the_svg_and_the_mermaid_text() -> None:
    bp = _route()
    res = flownb.run(bp, {"n": 2})
    assert res.taken_edges == {1: 1, 2: 1}  # pick -> small, small -> work; not pick -> big
    assert flownb.core.result.RunResult.from_dict(res.to_dict()).taken_edges == res.taken_edges
    dot = flownb.render.to_dot(bp, states=res)
    edges = {m.group(1): m.group(2) for m in re.finditer(r"(n\d -> n\d) \[(.*)\];", dot)}
    assert f'color="{TAKEN}", penwidth="2.5"' in edges["n0 -> n2"]
    assert f'color="{TAKEN}"' in edges["n2 -> n3"]
    assert f'color="{FADED}' in edges["n0 -> n1"] and 'penwidth="0.8"' in edges["n0 -> n1"]
    assert "not taken" in edges["n0 -> n1"]
    assert "thick teal arrow: taken" in dot and "faint arrow: not taken" in dot  # the legend
    svg = flownb.render.to_svg(bp, states=res)
    if svg is not None:  # Graphviz installed (make install does)
        assert svg.count(f'stroke="{TAKEN}"') >= 2
        assert 'stroke-opacity="0.34' in svg or 'stroke-opacity="0.35' in svg
    mm = to_mermaid(bp, states=res)
    links = [ln for ln in mm.splitlines() if re.search(r"n\d -->", ln)]
    assert links[0].startswith("  n0 -->") and "n1" in links[0]  # link 0 is pick -> big
    assert f"linkStyle 0 stroke:{FADED},stroke-opacity:{FADED_ALPHA}" in mm
    assert f"linkStyle 1 stroke:{TAKEN},stroke-width:2.5px" in mm
    assert f"linkStyle 2 stroke:{TAKEN}" in mm
    assert "%% thick teal arrow: taken" in mm
    # the blueprint alone (no run): no path, nothing faded
    assert TAKEN not in flownb.render.to_dot(bp) and "linkStyle" not in to_mermaid(bp)


def test_a_loops_back_edge_counts_each_lap() -> None:
    bp = flownb.load({"id": "heat-loop",
                      "nodes": [{"id": "count", "uses": "heat-test-count", "config": {"max_visits": 5}}, {"id": "end", "uses": "noop"}],
                      "edges": [{"source": "count", "target": "count", "action": "again"},
                                {"source": "count", "target": "end", "action": "done"}]})
    res = flownb.run(bp, {})
    assert res.ok and res.taken_edges == {0: 2, 1: 1}
    dot = flownb.render.to_dot(bp, states=res)
    assert "×2" in dot and f'color="{TAKEN}"' in dot
    assert '"×2"' in to_mermaid(bp, states=res) or "×2" in to_mermaid(bp, states=res)


def test_a_failed_run_fades_what_it_never_reached() -> None:
    bp = _route("heat-test-fail-odd")
    res = flownb.run(bp, {"n": 3}, raise_on_error=False)
    assert res.status == "failed" and res.taken_edges == {1: 1, 2: 1}
    dot = flownb.render.to_dot(bp, states=res)
    assert dot.count(f'color="{TAKEN}"') == 2 and dot.count('penwidth="0.8"') == 1


def test_the_run_widget_keeps_the_path_after_the_run() -> None:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.progress import ProgressView
    from flownb.notebook.widget import RunWidget

    bp = _route()
    view = ProgressView(bp)
    w = RunWidget(view)
    res = flownb.run(bp, {"n": 9}, on_event=view.feed)
    view.finish(res)
    assert view.wait(10)
    w.wait(10)
    snap = view.snapshot()
    assert snap.taken == {0: 1} and snap.finished
    deadline = time.monotonic() + 10
    while 'stroke-opacity' not in w.graph.value and time.monotonic() < deadline:
        time.sleep(0.05)
    if flownb.render.to_svg(bp) is not None:
        assert f'stroke="{TAKEN}"' in w.graph.value  # pick -> big, thick
        assert "stroke-opacity" in w.graph.value  # the two edges it did not take, faint
    w.close()


# -- the batch heat map, in process -------------------------------------------------------------

def test_batch_heat_map_in_process_live_and_final() -> None:
    _GATE.clear()
    bp = _route("heat-test-gate")
    rows = [{"n": i} for i in range(10)]  # 6 small rows (0..5) reach the gate, 4 big ones do not
    batch = flownb.run_many(bp, rows, concurrency=None)
    try:
        deadline = time.monotonic() + 20
        while batch.snapshot().heat.node("work").running < 6:
            assert time.monotonic() < deadline, batch.snapshot().heat
            time.sleep(0.02)
        live = batch.snapshot().heat  # live: the rows sit in the gate now
        assert live.node("work").running == 6 and live.node("work").passed == 0
        assert live.edge(0).runs == 4 and live.edge(1).runs == 6
    finally:
        _GATE.set()
    assert batch.wait(30)
    heat = batch.snapshot().heat
    assert heat.runs == 10
    assert heat.node("pick").passed == 10 and heat.node("work").passed == 6
    assert heat.node("work").running == 0 and heat.node("big").skipped == 6
    assert (heat.edge(0).share, heat.edge(1).share, heat.edge(2).share) == (0.4, 0.6, 0.6)
    dot = flownb.render.to_dot(bp, heat=heat)
    assert "6/10 ran" in dot and "4/10 (40%)" in dot and "6/10 (60%)" in dot
    assert f'fillcolor="{heat_fill(1.0)}"' in dot and "heat map of 10 runs" in dot
    mm = to_mermaid(bp, heat=heat)
    assert "6/10 ran" in mm and "4/10 (40%)" in mm and "classDef heat5" in mm


def test_batch_failures_show_on_the_heat_map_and_the_widget_model() -> None:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.batch_view import BatchWidget

    bp = _route("heat-test-fail-odd")
    batch = flownb.run_many(bp, [{"n": i} for i in range(6)])
    w = BatchWidget(batch)
    assert w.wait(timeout=30)
    heat = batch.snapshot().heat
    assert heat.node("work").failed == 3 and heat.node("work").passed == 3
    assert w.heat == heat.to_dict() and w.heat["nodes"]["work"]["failed"] == 3
    assert "heat map of 6 runs" in w.graph.value  # the caption explains the encoding
    assert "red border: failures" in w.graph.value
    if flownb.render.to_svg(bp) is not None:
        assert "3/6 ran · 3 failed" in w.graph.value and HEAT_FAILED in w.graph.value
    w.close()


# -- colours ------------------------------------------------------------------------------------

@pytest.mark.parametrize("theme", sorted(BACKGROUNDS))
def test_heat_and_path_colours_meet_contrast(theme: str) -> None:
    bg = BACKGROUNDS[theme]
    for fill in HEAT_FILLS:  # the node's text sits on the fill
        assert contrast(NODE_TEXT, fill) >= 4.5, fill
        assert contrast(fill, "#ffffff") >= 1.4, fill  # no white box glaring in the dark theme
    lum = [contrast(f, "#000000") for f in HEAT_FILLS[1:]]
    assert lum == sorted(lum, reverse=True)  # hotter is darker: intensity reads without hue
    for border in (HEAT_BORDER, HEAT_FAILED, HEAT_RUNNING):  # every box stands out by its border
        assert contrast(border, bg) >= 3.0, (border, theme)
    assert contrast(TAKEN, bg) >= 3.0  # an emphasised edge is a graphic that must be seen

    def blend(colour: str, alpha: float) -> str:
        fg = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        back = [int(bg[i:i + 2], 16) for i in (1, 3, 5)]
        return "#" + "".join(f"{round(alpha * f + (1 - alpha) * b):02x}" for f, b in zip(fg, back))
    faded = blend(FADED, FADED_ALPHA)  # recedes on this background, yet is still there
    assert 1.1 < contrast(faded, bg) < contrast(TAKEN, bg) and contrast(faded, bg) < 3.0


def test_a_forks_path_has_the_replayed_prefix_and_the_new_branch() -> None:
    bp = _route()
    src = flownb.run(bp, {"n": 2}, history=True)
    assert src.taken_edges == {1: 1, 2: 1}
    # fork at small: pick's step is replayed (not run), its edge 1 still counts; small takes
    # edited output and edge 2
    forked = flownb.fork(src, from_node="small", output="edited")
    assert forked.ok and forked.taken_edges == {1: 1, 2: 1}
    assert f'color="{TAKEN}"' in flownb.render.to_dot(bp, states=forked)
