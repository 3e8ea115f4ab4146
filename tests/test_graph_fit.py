"""Large graphs (issue 20 #5): a finished run's widget draws the whole graph (the focus window is
for a run that goes on), and no drawing — widget or static — shows text below 11 px at 100% zoom:
it shrinks to the cell's width only that far and scrolls beyond (tests/browser measures the page)."""

from __future__ import annotations

import re
import shutil
import time

import pytest

import flownb
from flownb import render
from flownb.core.events import Event
from flownb.notebook.progress import ProgressView
from flownb.render.fit import MIN_TEXT_PX, PT_PX, embed, min_width_pt

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")


def _chain(n: int, action: bool = True) -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({
        "id": f"chain{n}", "nodes": [{"id": f"s{i}", "uses": "noop"} for i in range(n)],
        "edges": [{"source": f"s{i}", "target": f"s{i + 1}",
                   **({"action": "next"} if i == 0 and action else {})}
                  for i in range(n - 1)]})


def _fanout(n: int) -> flownb.Blueprint:
    nodes = [{"id": "start", "uses": "noop"}, {"id": "end", "uses": "noop"}]
    nodes += [{"id": f"w{i}", "uses": "noop"} for i in range(n - 2)]
    edges = [{"source": "start", "target": f"w{i}"} for i in range(n - 2)]
    edges += [{"source": f"w{i}", "target": "end"} for i in range(n - 2)]
    return flownb.Blueprint.from_dict({"id": f"fan{n}", "nodes": nodes, "edges": edges})


def _smallest_text_px(html: str) -> float:
    """The smallest text of an embedded drawing shown at its narrowest (its CSS min-width)."""
    floor = float(re.search(r"min-width:([0-9.]+)pt", html).group(1))  # type: ignore[union-attr]
    width = float(re.search(r'viewBox="[-0-9.]+ [-0-9.]+ ([0-9.]+)', html).group(1))  # type: ignore[union-attr]
    smallest = min(float(s) for s in re.findall(r'font-size="([0-9.]+)"', html))
    return smallest * PT_PX * floor / width


@needs_dot
@pytest.mark.parametrize("bp", [_chain(12), _chain(30), _fanout(30)], ids=["chain12", "chain30", "fan30"])
def test_a_drawing_never_shrinks_text_below_11px(bp: flownb.Blueprint) -> None:
    for html in (render.mimebundle(bp)["text/html"],
                 embed(render.to_svg(bp, states={"s0": "succeeded"}) or "")):
        assert 'overflow:auto' in html.split("<svg", 1)[0]  # too wide or tall: the box scrolls
        assert "max-width:100%" in html  # and it still shrinks to the cell when it can
        assert MIN_TEXT_PX <= _smallest_text_px(html) < MIN_TEXT_PX + 0.2, bp.id


@needs_dot
def test_a_12_node_chain_may_shrink_a_little_but_not_to_7px() -> None:
    svg = render.to_svg(_chain(12)) or ""
    width = float(re.search(r'width="([0-9.]+)pt"', svg).group(1))  # type: ignore[union-attr]
    floor = min_width_pt(svg)
    assert floor is not None and 0.7 * width < floor < width  # shrinks to ~83%, never to ~50%


def test_min_width_is_none_for_an_svg_without_size_or_text() -> None:
    assert min_width_pt("<svg></svg>") is None
    assert "min-width" not in embed("<svg viewBox='0 0 10 10'></svg>")


@needs_dot
def test_a_finished_run_is_drawn_whole_and_a_running_one_around_its_running_node() -> None:
    from flownb.notebook.widget import RunWidget

    bp = _chain(30)
    view = ProgressView(bp, run_id="r1")
    w = RunWidget(view)
    view.feed(Event("run_started", "r1"))
    for i in range(15):
        view.feed(Event("node_started", "r1", f"s{i}", {"visit": 1}))
        view.feed(Event("node_succeeded", "r1", f"s{i}", {"duration_s": 0.001}))
    view.feed(Event("node_started", "r1", "s15", {"visit": 1}))
    deadline = time.monotonic() + 10
    while "s15" not in w.graph.value and time.monotonic() < deadline:
        time.sleep(0.05)
    live = w.graph.value
    assert "… 13 nodes" in live and ">s0<" not in live  # the focus window while it runs
    res = flownb.run(bp, {})
    view.finish(res)
    w.wait(10)
    final = w.graph.value
    assert "nodes …" not in final and "… 1" not in final
    drawn = set(re.findall(r">(s\d+)</text>", final))
    assert drawn == {f"s{i}" for i in range(30)}  # every node, each once
    w.close()


@needs_dot
def test_the_focus_window_is_an_option() -> None:
    from flownb.notebook.widget import RunWidget

    bp = _chain(30)
    view = ProgressView(bp, run_id="r2")
    w = RunWidget(view, focus=False)
    view.feed(Event("run_started", "r2"))
    view.feed(Event("node_started", "r2", "s0", {"visit": 1}))
    deadline = time.monotonic() + 10
    while "running" not in w.graph.value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ">s29</text>" in w.graph.value and "nodes …" not in w.graph.value
    w.close()

    view = ProgressView(bp, run_id="r3")
    w = RunWidget(view)
    view.feed(Event("run_started", "r3"))
    view.feed(Event("node_started", "r3", "s0", {"visit": 1}))
    deadline = time.monotonic() + 10
    while "running" not in w.graph.value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "27 nodes …" in w.graph.value and ">s29</text>" not in w.graph.value
    w.focus = False  # set on a shown widget: the next update draws the whole graph
    view.feed(Event("node_succeeded", "r3", "s0", {"duration_s": 0.001}))
    deadline = time.monotonic() + 10
    while ">s29</text>" not in w.graph.value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ">s29</text>" in w.graph.value and "nodes …" not in w.graph.value
    w.close()


@needs_dot
@pytest.mark.parametrize("n", [12, 30])
def test_a_long_chain_wraps_into_rows_as_wide_as_a_cell(n: int) -> None:
    from flownb.render.wrap import ROW_WIDTH_PT

    bp = _chain(n)
    dot = render.to_dot(bp, states={f"s{i}": "succeeded" for i in range(n)})
    assert 'rankdir="TB"' in dot
    rows = re.findall(r"subgraph (wrap\d+) \{\n(.*?)\n  \}", dot, flags=re.S)
    members = [re.findall(r'label="(s\d+)\\n', body) for _, body in rows]
    assert [m for row in members for m in row] == [f"s{i}" for i in range(n)]  # in order
    assert len(rows) >= 2 and all(len(m) >= 4 for m in members[:-1])
    # the edge from a row's last node to the next row's first is a return sweep, not a rank
    assert dot.count('constraint="false"') == len(rows) - 1
    svg = render.to_svg(bp, states={f"s{i}": "succeeded" for i in range(n)}) or ""
    width = float(re.search(r'width="([0-9.]+)pt"', svg).group(1))  # type: ignore[union-attr]
    assert width <= ROW_WIDTH_PT  # measured: Graphviz's own layout fits a cell
    assert _smallest_text_px(embed(svg)) >= MIN_TEXT_PX


def test_short_chains_branches_and_focused_drawings_are_not_wrapped() -> None:
    short = render.to_dot(_chain(6, action=False))
    assert 'rankdir="LR"' in short and "wrap0" not in short
    assert "wrap0" not in render.to_dot(_fanout(30))
    assert "wrap0" not in render.to_dot(_chain(30), rankdir="LR")  # asked for: one line
    assert "wrap0" not in render.to_dot(_chain(30), focus={"s3", "s4", "s5"})
