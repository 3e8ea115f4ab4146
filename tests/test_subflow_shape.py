"""A subflow has its own shape, so the legend's "dashed box: skipped" holds (issue 20, defect 9):
the subflow node is a "component" box, its frame is solid, the link to it is not the fallback's
dotted arrow; only a skipped node is dashed. The same in the mermaid text."""

from __future__ import annotations

import re

import flownb
from flownb import render
from flownb.render.mermaid import to_mermaid
from flownb.render.theme import LEGEND_SUBFLOW


def _setup() -> tuple[flownb.Blueprint, flownb.Registry]:
    reg = flownb.Registry()
    reg.add_blueprint(flownb.load({"id": "child", "nodes": [
        {"id": "c1", "uses": "noop"}, {"id": "c2", "uses": "noop"}],
        "edges": [{"source": "c1", "target": "c2"}]}))
    top = flownb.load({"id": "top", "nodes": [
        {"id": "a", "uses": "noop"},
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "child"}},
        {"id": "b", "uses": "noop"}],
        "edges": [{"source": "a", "target": "sub"}, {"source": "sub", "target": "b"}]})
    return top, reg


def test_subflow_node_frame_and_link_have_their_own_look() -> None:
    top, reg = _setup()
    dot = render.to_dot(top, registry=reg, states={"a": "succeeded", "sub": "succeeded",
                                                   "sub/c1": "succeeded", "sub/c2": "succeeded",
                                                   "b": "skipped"})
    sub_line = next(ln for ln in dot.splitlines() if 'label="sub\\n' in ln)
    assert 'shape="component"' in sub_line and "dashed" not in sub_line  # it ran: not dashed
    b_line = next(ln for ln in dot.splitlines() if 'label="b\\n' in ln)
    assert "dashed" in b_line  # skipped: dashed, as the legend says
    cluster = re.search(r"subgraph cluster_0 \{\n\s*graph \[([^\]]*)\]", dot)
    assert cluster and "dashed" not in cluster.group(1)
    link = next(ln for ln in dot.splitlines() if "lhead=" in ln)
    assert 'style="solid"' in link and "dotted" not in link
    assert LEGEND_SUBFLOW in dot
    assert LEGEND_SUBFLOW not in render.to_dot(flownb.load({"id": "p", "nodes": [{"id": "x", "uses": "noop"}]}))


def test_mermaid_subflow_is_a_subroutine_box_with_a_thick_link() -> None:
    top, reg = _setup()
    text = to_mermaid(top, registry=reg)
    assert re.search(r"n1\[\[", text), text
    assert " === " in text and "-.- " not in text
