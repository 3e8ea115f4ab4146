"""Tests for flownb.render: DOT text, SVG via Graphviz's ``dot``, text fallback, event folding.

The DOT text is checked structurally: a tiny tokenizer/parser below reads it back (closed
strings, balanced brackets, plain Graphviz ids) and un-escapes labels, so every test works
without the ``dot`` executable; tests that need ``dot`` itself skip when it is missing.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flownb import render
from flownb.core.blueprint import Blueprint
from flownb.core.events import Event
from flownb.core.registry import Registry
from flownb.render.theme import LEGEND_SUBFLOW

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' executable not installed")

#: ids that break naive DOT: quotes, backslashes (also trailing, and Graphviz escapes such as
#: \n, \N), record/HTML syntax, DOT punctuation, an HTML entity, non-ASCII
NASTY_IDS = ['a"b', "x\\y", "{z}", "<w>", "end\\", 'q"', "tab like \\t and \\n",
             "[k] ; -> &amp; \\N 's' é"]


# -- a tiny DOT reader ---------------------------------------------------------------------------------

def tokenize(dot: str) -> list[tuple[str, str]]:
    """DOT tokens as (kind, text); strings are returned raw (still escaped)."""
    toks: list[tuple[str, str]] = []
    i = 0
    while i < len(dot):
        c = dot[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            j = i + 1
            buf: list[str] = []
            while True:
                assert j < len(dot), f"unterminated string starting at {dot[i:i + 40]!r}"
                ch = dot[j]
                if ch == "\\" and j + 1 < len(dot):
                    buf.append(dot[j:j + 2])
                    j += 2
                    continue
                if ch == '"':
                    break
                assert ch != "\n", f"raw newline inside a string at {dot[i:j]!r}"
                buf.append(ch)
                j += 1
            toks.append(("str", "".join(buf)))
            i = j + 1
            continue
        if dot.startswith("->", i):
            toks.append(("op", "->"))
            i += 2
            continue
        if c in "[]{};,=":
            toks.append(("op", c))
            i += 1
            continue
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(dot, i)
        assert m, f"unexpected text outside a string: {dot[i:i + 30]!r}"
        toks.append(("id", m.group()))
        i = m.end()
    return toks


def unescape(raw: str) -> str:
    """Undo render's escaping: ``\\n`` -> newline, ``\\"`` -> quote, ``\\\\`` -> backslash,
    ``&amp;`` -> ``&`` (Graphviz decodes entities in labels, so render escapes ``&``)."""
    text = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw)
    return text.replace("&amp;", "&")


@dataclass
class Dot:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    clusters: dict[str, list[str]] = field(default_factory=dict)  # cluster name -> node gids
    defaults: dict[str, dict[str, str]] = field(default_factory=dict)

    def label(self, gid: str) -> str:
        return self.nodes[gid]["label"]

    def by_id(self, node_id: str) -> str:
        """The Graphviz id of the node whose first label line is ``node_id``."""
        found = [g for g, a in self.nodes.items() if a.get("label", "").split("\n")[0] == node_id]
        assert len(found) == 1, (node_id, found)
        return found[0]

    def edge(self, src: str, dst: str, **match: str) -> dict[str, str]:
        s, d = self.by_id(src), self.by_id(dst)
        found = [a for (x, y, a) in self.edges if x == s and y == d
                 and all(a.get(k) == v for k, v in match.items())]
        assert len(found) == 1, (src, dst, match, found)
        return found[0]


def parse(dot: str) -> Dot:
    """Read the subset of DOT that render writes; fails loudly on anything else."""
    toks = tokenize(dot)
    depth = 0
    for kind, text in toks:
        if kind == "op" and text in "[{":
            depth += 1
        elif kind == "op" and text in "]}":
            depth -= 1
            assert depth >= 0, "unbalanced brackets"
    assert depth == 0, "unbalanced brackets"
    assert toks[:3] == [("id", "digraph"), ("id", "flownb"), ("op", "{")]
    out = Dot()
    cluster_stack: list[str] = []
    i = 3

    def attrs_at(k: int) -> tuple[dict[str, str], int]:
        assert toks[k] == ("op", "[")
        k += 1
        res: dict[str, str] = {}
        while toks[k] != ("op", "]"):
            key, eq, val = toks[k], toks[k + 1], toks[k + 2]
            assert key[0] == "id" and eq == ("op", "=") and val[0] == "str", (key, eq, val)
            assert key[1] not in res, f"duplicate attribute {key[1]}"
            res[key[1]] = unescape(val[1])
            k += 3
            if toks[k] == ("op", ","):
                k += 1
        return res, k + 1

    while i < len(toks):
        kind, text = toks[i]
        if (kind, text) == ("op", "}"):
            if cluster_stack:
                cluster_stack.pop()
            i += 1
            continue
        if (kind, text) == ("id", "subgraph"):
            name = toks[i + 1][1]
            assert toks[i + 2] == ("op", "{")
            out.clusters[name] = []
            cluster_stack.append(name)
            i += 3
            continue
        assert kind == "id", (kind, text)
        if toks[i + 1] == ("op", "->"):
            dst = toks[i + 2][1]
            attrs, i = attrs_at(i + 3)
            out.edges.append((text, dst, attrs))
        else:
            attrs, i = attrs_at(i + 1)
            if text in ("graph", "node", "edge"):
                out.defaults.setdefault(text, {}).update(attrs)
            else:
                assert text not in out.nodes, f"node {text} declared twice"
                out.nodes[text] = attrs
                for c in cluster_stack:
                    out.clusters[c].append(text)
        assert toks[i] == ("op", ";"), toks[i]
        i += 1
    for s, d, _ in out.edges:
        assert s in out.nodes and d in out.nodes, (s, d)
    return out


# -- blueprints -----------------------------------------------------------------------------------------

def demo_blueprint() -> Blueprint:
    """A branch (action and condition), a join, a loop, a fallback, a subflow and a map."""
    return Blueprint.from_dict({"id": "demo", "nodes": [
        {"id": "fetch", "uses": "fetch-data"},
        {"id": "route", "uses": "router"},
        {"id": "left", "uses": "noop"},
        {"id": "right", "uses": "flaky", "config": {"retries": 2, "fallback": "canned"}},
        {"id": "canned", "uses": "noop"},
        {"id": "merge", "uses": "noop"},
        {"id": "draft", "uses": "llm-process", "config": {"maxVisits": 3}},
        {"id": "review", "uses": "llm-condition"},
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "child"}},
        {"id": "fan", "uses": "map", "params": {"node": "summarise"}},
    ], "edges": [
        {"source": "fetch", "target": "route"},
        {"source": "route", "target": "left", "action": "left"},
        {"source": "route", "target": "right",
         "condition": "result.output.score > 0.5 and state.tier == 'gold' or state.count >= 10"},
        {"source": "left", "target": "merge"},
        {"source": "right", "target": "merge"},
        {"source": "merge", "target": "draft"},
        {"source": "draft", "target": "review"},
        {"source": "review", "target": "draft", "action": "revise"},
        {"source": "review", "target": "sub", "action": "approve", "condition": "state.ok"},
        {"source": "sub", "target": "fan"},
    ]})


def child_blueprint() -> Blueprint:
    return Blueprint.from_dict({"id": "child", "nodes": [
        {"id": "c1", "uses": "noop"}, {"id": "c2", "uses": "noop"}],
        "edges": [{"source": "c1", "target": "c2"}]})


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.add_blueprint(child_blueprint())
    return reg


# -- DOT content ----------------------------------------------------------------------------------------

def test_nodes_show_id_and_uses_and_start_is_bold(registry: Registry) -> None:
    d = parse(render.to_dot(demo_blueprint(), registry=registry))
    assert d.label(d.by_id("fetch")) == "fetch\nfetch-data"
    assert d.label(d.by_id("draft")).startswith("draft\nllm-process\n")
    assert d.nodes[d.by_id("fetch")].get("penwidth") == "2.5"
    assert "penwidth" not in d.nodes[d.by_id("route")]
    assert d.label(d.by_id("fan")) == "fan\nmap: summarise"
    assert d.label(d.by_id("sub")) == "sub\nsubflow: child"
    assert d.label(d.by_id("right")) == "right\nflaky\nretries: 2"


def test_branch_edges_are_labelled_with_action_and_truncated_condition(registry: Registry) -> None:
    d = parse(render.to_dot(demo_blueprint(), registry=registry))
    assert d.edge("route", "left")["label"] == "left"
    cond = d.edge("route", "right")["label"]
    assert cond.startswith("[result.output.score > 0.5") and cond.endswith("…]")
    assert len(cond) <= 42  # ~40 characters of condition plus the brackets
    assert "state.count >= 10" in d.edge("route", "right")["tooltip"]  # the full text on hover
    assert d.edge("review", "sub")["label"] == "approve\n[state.ok]"
    assert "label" not in d.edge("fetch", "route")


def test_join_shows_strategy_only_with_several_forward_inputs() -> None:
    bp = Blueprint.from_dict({"id": "j", "nodes": [
        {"id": "a", "uses": "noop"}, {"id": "b", "uses": "noop"},
        {"id": "all", "uses": "noop"}, {"id": "any", "uses": "noop", "config": {"join": "any"}},
        {"id": "single", "uses": "noop"}],
        "edges": [{"source": "a", "target": "all"}, {"source": "b", "target": "all"},
                  {"source": "a", "target": "any"}, {"source": "b", "target": "any"},
                  {"source": "all", "target": "single"}]})
    d = parse(render.to_dot(bp))
    assert "join: all" in d.label(d.by_id("all")).split("\n")
    assert "join: any" in d.label(d.by_id("any")).split("\n")
    assert "join" not in d.label(d.by_id("single"))
    assert d.nodes[d.by_id("a")].get("penwidth") == d.nodes[d.by_id("b")].get("penwidth") == "2.5"


def test_loop_back_edge_is_dashed_and_unconstrained_and_guard_shown(registry: Registry) -> None:
    d = parse(render.to_dot(demo_blueprint(), registry=registry))
    back = d.edge("review", "draft")
    assert back["style"] == "dashed" and back["constraint"] == "false"
    assert back["label"] == "revise"
    forward = d.edge("draft", "review")
    assert "style" not in forward and "constraint" not in forward
    assert "max visits: 3" in d.label(d.by_id("draft")).split("\n")
    assert "max visits: 100" in d.label(d.by_id("review")).split("\n")  # the default guard
    assert "max visits" not in d.label(d.by_id("fetch"))


def test_fallback_is_a_dotted_edge(registry: Registry) -> None:
    d = parse(render.to_dot(demo_blueprint(), registry=registry))
    fb = d.edge("right", "canned")
    assert fb["style"] == "dotted" and fb["label"] == "fallback"


def test_subflow_cluster_from_registry(registry: Registry) -> None:
    dot = render.to_dot(demo_blueprint(), registry=registry)
    d = parse(dot)
    assert list(d.clusters) == ["cluster_0"]
    members = [d.label(g).split("\n")[0] for g in d.clusters["cluster_0"]]
    assert members == ["c1", "c2"]
    assert d.defaults["graph"]["compound"] == "true"
    link = [a for s, t, a in d.edges if s == d.by_id("sub") and a.get("lhead") == "cluster_0"]
    assert len(link) == 1
    inner = [(s, t) for s, t, _ in d.edges if s in d.clusters["cluster_0"]]
    assert len(inner) == 1

    assert "subgraph" not in render.to_dot(demo_blueprint(), registry=registry, subflows=False)
    assert "subgraph" not in render.to_dot(demo_blueprint(), registry=Registry())  # not found


def test_subflow_uses_default_registry_and_recursion_terminates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from flownb.core.registry import default_registry

    me = Blueprint.from_dict({"id": "render-test-self", "nodes": [
        {"id": "again", "uses": "subflow", "params": {"blueprintId": "render-test-self"}}]})
    outer = Blueprint.from_dict({"id": "render-test-outer", "nodes": [
        {"id": "s", "uses": "subflow", "params": {"blueprintId": "render-test-self"}}]})
    # registered for this test only (setitem is undone afterwards; Registry has no remove)
    monkeypatch.setitem(default_registry._blueprints, me.id, me)
    d = parse(render.to_dot(outer))  # default registry
    assert list(d.clusters) == ["cluster_0"]  # the self-reference is not expanded again
    assert parse(render.to_dot(me)).clusters == {}


def test_nested_subflow_states_use_path_keys() -> None:
    reg = Registry()
    reg.add_blueprint(child_blueprint())
    reg.add_blueprint(Blueprint.from_dict({"id": "mid", "nodes": [
        {"id": "inner", "uses": "subflow", "params": {"blueprintId": "child"}}]}))
    bp = Blueprint.from_dict({"id": "top", "nodes": [
        {"id": "outer", "uses": "subflow", "params": {"blueprintId": "mid"}}]})
    d = parse(render.to_dot(bp, registry=reg, states={"outer/inner/c2": "failed"}))
    assert list(d.clusters) == ["cluster_0", "cluster_1"]
    assert set(d.clusters["cluster_1"]) < set(d.clusters["cluster_0"])  # nested
    c2 = d.by_id("c2")
    assert c2 in d.clusters["cluster_1"]
    assert (d.nodes[c2]["fillcolor"], d.nodes[c2]["color"]) == render.STATE_COLORS["failed"]


def test_nasty_ids_are_escaped_and_read_back() -> None:
    nodes = [{"id": n, "uses": f"uses {n}"} for n in NASTY_IDS]
    edges = [{"source": a, "target": b, "action": f'act"{a}', "condition": "state.x == 'a\"b'"}
             for a, b in zip(NASTY_IDS, NASTY_IDS[1:])]
    bp = Blueprint.from_dict({"id": 'bp "nasty"\nid', "nodes": nodes, "edges": edges})
    dot = render.to_dot(bp, title='title with "quotes" \\ and\nnewline')
    d = parse(dot)  # closed strings, balanced brackets, nothing but plain ids outside strings
    labels = sorted(d.label(g) for g in d.nodes)
    assert labels == sorted(f"{n}\nuses {n}" for n in NASTY_IDS)
    for a, b in zip(NASTY_IDS, NASTY_IDS[1:]):
        assert d.edge(a, b)["label"].startswith(f'act"{a}\n[')
    assert d.defaults["graph"]["label"] == 'title with "quotes" \\ and\nnewline'
    for n in NASTY_IDS:  # a user backslash never starts a Graphviz escape such as \n or \l
        assert _raw_label_contains(dot, n)


def _raw_label_contains(dot: str, node_id: str) -> bool:
    escaped = node_id.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    return f'label="{escaped}\\n' in dot


@needs_dot
def test_nasty_ids_survive_graphviz() -> None:
    graphviz = pytest.importorskip("graphviz")
    nodes = [{"id": n, "uses": "noop"} for n in NASTY_IDS]
    edges = [{"source": a, "target": b} for a, b in zip(NASTY_IDS, NASTY_IDS[1:])]
    bp = Blueprint.from_dict({"id": "nasty", "nodes": nodes, "edges": edges})
    svg = graphviz.Source(render.to_dot(bp)).pipe(format="svg", encoding="utf-8")
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]
    for n in NASTY_IDS:
        assert n in texts, (n, texts)
    assert svg.count('class="node"') == len(NASTY_IDS)
    assert svg.count('class="edge"') == len(NASTY_IDS) - 1


def test_output_is_deterministic(registry: Registry) -> None:
    states = {"fetch": "succeeded", "route": "running", "sub/c1": "running"}
    first = render.to_dot(demo_blueprint(), registry=registry, states=states)
    again = render.to_dot(Blueprint.from_json(demo_blueprint().to_json()), registry=registry,
                          states=dict(reversed(list(states.items()))))
    assert first == again
    assert render.text_listing(demo_blueprint(), states) == render.text_listing(demo_blueprint(), states)


def test_output_is_identical_across_processes() -> None:
    """Hash randomisation must not leak into the text (no set iteration, no id()-based names)."""
    code = ("import tests.test_render as t; from flownb import render; "
            "print(render.to_dot(t.demo_blueprint(), registry=t.Registry()), end='')")
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=Path(__file__).resolve().parents[1], check=True)
        outs.append(proc.stdout)
    assert outs[0] == outs[1] and outs[0].startswith("digraph flownb {")


def test_render_module_needs_no_optional_packages() -> None:
    code = ("import sys; sys.modules['graphviz'] = None; sys.modules['IPython'] = None; "
            "sys.modules['ipywidgets'] = None; import flownb.render as r, flownb; "
            "bp = flownb.Blueprint.from_dict({'id': 'x', 'nodes': [{'id': 'a', 'uses': 'noop'}]}); "
            "assert r.to_dot(bp).startswith('digraph'); "
            "assert 'a' in r.text_listing(bp); print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_broken_blueprint_still_draws() -> None:
    bp = Blueprint.from_dict({"id": "broken", "nodes": [
        {"id": "a", "uses": "noop", "config": {"fallback": "nowhere"}},
        {"id": "a", "uses": "duplicate"}],
        "edges": [{"source": "a", "target": "typo"}, {"source": "a", "target": "a",
                                                       "condition": "this is (not valid"}]})
    d = parse(render.to_dot(bp))
    missing = [g for g, a in d.nodes.items() if a["label"] == "typo\n(no such node)"]
    assert len(missing) == 1
    assert any(t == missing[0] for _, t, _ in d.edges)
    assert "typo" in render.text_listing(bp)


def test_rankdir_is_validated() -> None:
    bp = child_blueprint()
    assert parse(render.to_dot(bp, rankdir="LR")).defaults["graph"]["rankdir"] == "LR"
    with pytest.raises(ValueError, match="rankdir"):
        render.to_dot(bp, rankdir='LR"]; evil [')


# -- states ------------------------------------------------------------------------------------------

def test_states_colour_nodes(registry: Registry) -> None:
    assert {"pending", "running", "retrying", "succeeded", "failed", "skipped",
            "cancelled"} <= set(render.STATE_COLORS)
    states = {"fetch": "succeeded", "route": "running", "left": "skipped", "right": "failed",
              "merge": "retrying", "sub/c1": "succeeded", "unknown-node": "failed"}
    d = parse(render.to_dot(demo_blueprint(), registry=registry, states=states))
    for node_id, status in [("fetch", "succeeded"), ("route", "running"), ("left", "skipped"),
                            ("right", "failed"), ("merge", "retrying"), ("draft", "pending"),
                            ("c1", "succeeded"), ("c2", "pending")]:
        attrs = d.nodes[d.by_id(node_id)]
        assert (attrs["fillcolor"], attrs["color"]) == render.STATE_COLORS[status], node_id
        assert attrs["label"].split("\n")[-1] == status  # not by colour alone
    assert "dashed" in d.nodes[d.by_id("left")]["style"]
    assert "dashed" not in d.nodes[d.by_id("route")]["style"]
    plain = parse(render.to_dot(demo_blueprint(), registry=registry))
    assert plain.label(plain.by_id("fetch")) == "fetch\nfetch-data"  # no status line without states


def ev(type_: str, node: str | None = None, run: str = "r1", **data: Any) -> Event:
    return Event(type_, run, node, data, ts=0.0)


def test_states_from_events() -> None:
    events = [
        ev("run_started"),
        ev("node_started", "fetch"), ev("node_succeeded", "fetch"),
        ev("node_skipped", "left"),
        ev("node_started", "right"), ev("node_retrying", "right", attempt=1),
        ev("node_failed", "right", attempt=3, fallback="canned"),
        ev("node_fallback", "canned", replaces="right"),
        ev("node_succeeded", "right", attempt=3),  # the runtime commits the fallback's result
        ev("node_started", "merge"), ev("node_retrying", "merge", attempt=1),
        ev("node_started", "sub"),
        ev("run_started", run="r1/sub.1"),
        ev("node_started", "c1", run="r1/sub.1"), ev("node_succeeded", "c1", run="r1/sub.1"),
        ev("node_started", "c2", run="r1/sub.1"),
        ev("node_started", "item", run="r1/fan.1[0]"),  # map items are not drawn
        ev("node_started", "fetch", run="other-run"),  # an unrelated run on the same bus
        ev("custom", "merge", name="progress"),
    ]
    states = render.states_from_events(events)
    assert states == {"fetch": "succeeded", "left": "skipped", "right": "replaced",
                      "canned": "succeeded", "merge": "retrying", "sub": "running",
                      "sub/c1": "succeeded", "sub/c2": "running"}

    failed = render.states_from_events([*events, ev("run_failed", "merge", error={"message": "x"})])
    assert failed["merge"] == "failed"
    assert failed["sub"] == failed["sub/c2"] == "cancelled"
    assert failed["fetch"] == "succeeded"

    cancelled = render.states_from_events([*events, ev("run_cancelled")])
    assert cancelled["merge"] == cancelled["sub/c2"] == "cancelled"

    plain_failure = render.states_from_events([ev("node_started", "a"), ev("node_failed", "a")])
    assert plain_failure == {"a": "failed"}

    d = parse(render.to_dot(demo_blueprint(), registry=_reg_with_child(), states=states))
    for node_id, status in [("right", "replaced"), ("canned", "succeeded"), ("c2", "running"),
                            ("draft", "pending")]:
        attrs = d.nodes[d.by_id(node_id)]
        assert (attrs["fillcolor"], attrs["color"]) == render.STATE_COLORS[status], node_id


def test_states_from_events_fallback_that_fails_and_explicit_run_id() -> None:
    events = [ev("node_started", "b", run="x"), ev("node_started", "b"),
              ev("node_failed", "b", fallback="fb"), ev("node_fallback", "fb", replaces="b"),
              ev("run_failed", "fb")]
    assert render.states_from_events(events, run_id="r1") == {"b": "replaced", "fb": "failed"}
    assert render.states_from_events(events) == {"b": "running"}  # first event's run: "x"
    assert render.states_from_events([]) == {}


def _reg_with_child() -> Registry:
    reg = Registry()
    reg.add_blueprint(child_blueprint())
    return reg


def test_states_from_a_real_run() -> None:
    import flownb

    reg = _reg_with_child()
    reg.add("noop", lambda ctx: ctx.input)

    def boom(ctx: Any) -> Any:
        raise RuntimeError("boom")

    reg.add("boom", boom)
    bp = Blueprint.from_dict({"id": "real", "nodes": [
        {"id": "a", "uses": "noop"}, {"id": "b", "uses": "boom", "config": {"fallback": "fb"}},
        {"id": "fb", "uses": "noop"}, {"id": "sub", "uses": "subflow",
                                        "params": {"blueprintId": "child"}}],
        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "sub"}]})
    events: list[Event] = []
    result = flownb.run(bp, registry=reg, on_event=events.append)
    assert result.ok
    assert render.states_from_events(events) == {
        "a": "succeeded", "b": "replaced", "fb": "succeeded", "sub": "succeeded",
        "sub/c1": "succeeded", "sub/c2": "succeeded"}


# -- SVG and notebook display ------------------------------------------------------------------

@needs_dot
def test_to_svg_with_dot(registry: Registry) -> None:
    svg = render.to_svg(demo_blueprint(), registry=registry, states={"fetch": "succeeded"})
    assert isinstance(svg, str) and "<svg" in svg
    assert "fetch-data" in html.unescape(svg)


@needs_dot
def test_to_svg_without_the_graphviz_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    svg = render.to_svg(child_blueprint())
    assert svg is not None and "<svg" in svg


def test_to_svg_returns_none_without_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert render.to_svg(demo_blueprint()) is None


def test_mimebundle_fallback_without_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    bp = demo_blueprint()
    for bundle in (render.mimebundle(bp), bp._repr_mimebundle_()):
        assert set(bundle) == {"text/markdown", "text/plain", "text/vnd.mermaid"}
        assert bundle["text/vnd.mermaid"].startswith("flowchart ")  # JupyterLab >= 4.1 draws it
        for text in (bundle["text/markdown"], bundle["text/plain"]):
            hint_lines = [ln for ln in text.splitlines() if "install graphviz" in ln]
            assert hint_lines == [render.INSTALL_HINT]
            assert render.INSTALL_HINT == ("(install graphviz for a drawing: apt-get install "
                                           "graphviz / brew install graphviz / conda install "
                                           "graphviz)")
            assert "review -> draft" in text and "fetch-data" in text
        assert bundle["text/markdown"].startswith("```text\nblueprint 'demo'")


def test_mimebundle_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = render.mimebundle(demo_blueprint(), rankdir="sideways")  # to_dot raises ValueError
    assert "ValueError" in bundle["text/plain"] and "fetch-data" in bundle["text/plain"]
    assert "text/markdown" in bundle

    def explode(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("listing broke")

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(render, "text_listing", explode)
    bundle = render.mimebundle(demo_blueprint())
    assert "listing broke" in bundle["text/plain"]


def test_markdown_fence_outlasts_backticks_in_ids(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    bp = Blueprint.from_dict({"id": "ticks", "nodes": [{"id": "a```b", "uses": "noop"}]})
    md = render.mimebundle(bp)["text/markdown"]
    assert md.startswith("````text\n") and "\n````\n" in md


@needs_dot
def test_mimebundle_with_dot(registry: Registry) -> None:
    bundle = render.mimebundle(demo_blueprint(), registry=registry,
                               states={"fetch": "succeeded"})
    assert set(bundle) == {"text/html", "image/svg+xml", "text/plain"}
    assert "<svg" in bundle["image/svg+xml"]
    assert bundle["text/plain"].startswith("blueprint 'demo': 10 nodes, 10 edges")


def test_text_listing(registry: Registry) -> None:
    text = render.text_listing(demo_blueprint(), {"fetch": "succeeded"})
    lines = text.splitlines()
    assert lines[0] == "blueprint 'demo': 10 nodes, 10 edges, 1 loop, 1 join, 1 subflow"
    row = {ln.split()[0]: ln for ln in lines[2:lines.index("edges:")]}
    assert "start" in row["fetch"] and "[succeeded]" in row["fetch"]
    assert "[pending]" in row["route"]
    assert "join: all" in row["merge"]
    assert "loop" in row["draft"] and "max visits: 3" in row["draft"]
    assert "fallback: canned" in row["right"]
    assert "map: summarise" in row["fan"] and "subflow: child" in row["sub"]
    assert any("review -> draft" in ln and "action: revise" in ln and "(loop back)" in ln
               for ln in lines)
    assert any("route -> right" in ln and "if result.output.score" in ln for ln in lines)
    assert any("right ..> canned" in ln and "fallback" in ln for ln in lines)
    assert "[" not in render.text_listing(demo_blueprint()).split("edges:")[0]


# -- themes, layout, focus, legend (issue 13) ----------------------------------------------------------

def long_chain(n: int = 20) -> Blueprint:
    return Blueprint.from_dict({"id": "long", "nodes": [{"id": f"s{i}", "uses": "noop"} for i in range(n)],
                                "edges": [{"source": f"s{i}", "target": f"s{i + 1}"}
                                          for i in range(n - 1)]})


def test_drawing_is_transparent_with_a_legend_and_no_dark_text_on_the_background(
        registry: Registry) -> None:
    dot = render.to_dot(demo_blueprint(), registry=registry)
    top = parse("digraph flownb {\n" + next(ln for ln in dot.splitlines() if ln.startswith("  graph ["))
                + "\n}\n")
    graph = top.defaults["graph"]
    assert graph["bgcolor"] == "transparent"
    # demo_blueprint has a subflow: the legend says what its shape means
    assert graph["label"] == render.LEGEND + LEGEND_SUBFLOW and "bold border: entry node" in render.LEGEND
    d = parse(dot)
    # text drawn straight on the background must be readable on white and on near-black
    for colour in (d.defaults["edge"]["fontcolor"], graph["fontcolor"]):
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
        assert 90 < luminance < 170, colour
    assert render.LEGEND not in render.to_dot(demo_blueprint(), registry=registry, legend=False)


def test_chains_are_drawn_left_to_right_and_branchy_graphs_top_down(registry: Registry) -> None:
    assert render.auto_rankdir(long_chain()) == "LR"
    assert parse(render.to_dot(long_chain(6))).defaults["graph"]["rankdir"] == "LR"
    # too long for one line of a cell: wrapped into rows (tests/test_graph_fit.py)
    assert parse(render.to_dot(long_chain())).defaults["graph"]["rankdir"] == "TB"
    wide = Blueprint.from_dict({"id": "wide", "nodes": [{"id": f"w{i}", "uses": "noop"}
                                                         for i in range(8)],
                                "edges": [{"source": "w0", "target": f"w{i}"} for i in range(1, 7)]
                                + [{"source": f"w{i}", "target": "w7"} for i in range(1, 7)]})
    assert render.auto_rankdir(wide) == "TB"
    assert parse(render.to_dot(long_chain(), rankdir="TB")).defaults["graph"]["rankdir"] == "TB"


def test_focus_draws_the_running_region_with_stand_ins_for_the_rest() -> None:
    bp = long_chain(30)
    states = {f"s{i}": "succeeded" for i in range(14)} | {"s14": "running"}
    focus = render.focus_region(bp, states)
    assert focus == {"s12", "s13", "s14", "s15", "s16"}
    d = parse(render.to_dot(bp, states=states, focus=focus))
    shown = sorted(d.label(g).split("\n")[0] for g in d.nodes if d.label(g).startswith("s"))
    assert shown == ["s12", "s13", "s14", "s15", "s16"]
    labels = [a.get("label", "") for a in d.nodes.values()]
    assert "… 12 nodes" in labels and "13 nodes …" in labels
    assert render.focus_region(long_chain(8), states) is None  # small graphs are drawn whole


# -- Mermaid (issue 12.5) ------------------------------------------------------------------------------

def test_to_mermaid_draws_nodes_edges_subflows_and_states(registry: Registry) -> None:
    from flownb.render.mermaid import mermaid_block, to_mermaid

    text = to_mermaid(demo_blueprint(), registry=registry,
                      states={"fetch": "succeeded", "route": "running", "sub": "skipped"})
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"  # 8 levels, at most 2 wide: a chain
    assert 'n0("fetch<br/>fetch-data<br/>succeeded")' in lines[1]
    assert '  n1 -->|"left"| n2' in lines
    assert any(ln.startswith("  n7 -.->") and "revise" in ln for ln in lines)  # loop back: dashed
    assert '  n3 -.->|"fallback"| n4' in lines
    assert '  subgraph c0 ["subflow child"]' in lines
    assert any("c0_n0" in ln and "skipped" in ln for ln in lines)  # a skipped subflow's child
    assert "  classDef succeeded fill:#c8e6c9,stroke:#43a047,color:#212121" in lines
    assert "  class n0 succeeded" in lines and "  class n1 running" in lines
    assert any(ln.startswith("  class n0") and ln.endswith(" entry") for ln in lines)
    assert to_mermaid(long_chain()).startswith("flowchart LR")
    assert demo_blueprint().to_mermaid(registry=registry, subflows=False).count("subgraph") == 0
    assert mermaid_block(long_chain(2)).startswith("```mermaid\nflowchart TB\n")
    assert mermaid_block(long_chain(2)).endswith("```\n")


def test_mermaid_labels_cannot_break_out_of_their_quotes() -> None:
    from flownb.render.mermaid import to_mermaid

    nasty = Blueprint.from_dict({"id": "nasty", "nodes": [
        {"id": 'a"]-->x(("', "uses": "noop"}, {"id": "b{c<d>#e", "uses": "noop"}],
        "edges": [{"source": 'a"]-->x(("', "target": "b{c<d>#e", "action": 'go"|'}]})
    text = to_mermaid(nasty)
    body = [ln for ln in text.splitlines()[1:] if not ln.strip().startswith("class")]
    for ln in body:  # every user character that means something to Mermaid is an entity
        quoted = ln.replace("<br/>", " ").split('"')[1::2]
        assert all(not any(ch in q for ch in '"[]|<>') for q in quoted), ln
    assert "a#quot;#93;--#gt;x((#quot;" in text and "b#123;c#lt;d#gt;#35;e" in text


# -- a finished run's result colours its subflow children --------------------------------------

def _children_blueprints() -> tuple[Blueprint, Blueprint]:
    child = Blueprint.from_dict({"id": "cs-child", "nodes": [
        {"id": "c1", "uses": "noop"}, {"id": "c2", "uses": "noop"}],
        "edges": [{"source": "c1", "target": "c2"}]})
    top = Blueprint.from_dict({"id": "cs-top", "nodes": [
        {"id": "go", "uses": "noop"},
        {"id": "sub_a", "uses": "subflow", "params": {"blueprintId": "cs-child"}},
        {"id": "sub_b", "uses": "subflow", "params": {"blueprintId": "cs-child"}},
        {"id": "each", "uses": "map", "params": {"blueprintId": "cs-child", "items": "xs"}}],
        "edges": [{"source": "go", "target": "sub_a", "condition": 'state.pick == "a"'},
                  {"source": "go", "target": "sub_b", "condition": 'state.pick == "b"'},
                  {"source": "go", "target": "each"}]})
    return child, top


@pytest.mark.parametrize("executor", ["in_process", "distributed"])
def test_a_results_drawing_shows_subflow_children_that_ran(executor: str,
                                                           request: pytest.FixtureRequest) -> None:
    import flownb

    child, top = _children_blueprints()
    reg = Registry()
    reg.add_blueprint(child)
    inputs = {"pick": "a", "xs": [1, 2]}
    if executor == "in_process":
        res = flownb.run(top, inputs, registry=reg)
    else:
        from flownb.distributed.client import DistributedExecutor

        url = request.getfixturevalue("redis_url")
        request.getfixturevalue("workers").start(1)
        res = DistributedExecutor(url, registry=reg).run(top, inputs, timeout=60)
    assert res.ok, res.error
    # the same keys from both executors: subflow children, map items; a skipped subflow ran none
    assert res.child_states == {
        "sub_a/c1": "succeeded", "sub_a/c2": "succeeded",
        "each[0]/c1": "succeeded", "each[0]/c2": "succeeded",
        "each[1]/c1": "succeeded", "each[1]/c2": "succeeded"}
    assert res.node_states["sub_b"] == "skipped" and res.node_states["sub_a/c2"] == "succeeded"
    assert type(res).from_dict(res.to_dict()).child_states == res.child_states
    d = parse(render.to_dot(top, states=res, registry=reg))  # a RunResult is taken as is
    ran, skipped = (d.clusters[c] for c in ("cluster_0", "cluster_1"))
    assert [d.label(g).split("\n")[-1] for g in ran] == ["succeeded", "succeeded"]
    assert [d.label(g).split("\n")[-1] for g in skipped] == ["skipped", "skipped"]
    assert not any(d.label(g).endswith("\npending") for g in d.nodes)
    assert "sub_b  subflow: cs-child  [skipped]" in render.text_listing(top, res)
    from flownb.render.mermaid import to_mermaid

    assert "pending" not in to_mermaid(top, states=res, registry=reg)


def test_nested_subflow_children_are_keyed_by_path() -> None:
    import flownb

    reg = _reg_with_child()
    reg.add_blueprint(Blueprint.from_dict({"id": "mid", "nodes": [
        {"id": "inner", "uses": "subflow", "params": {"blueprintId": "child"}}]}))
    reg.add("noop", lambda ctx: None)
    bp = Blueprint.from_dict({"id": "top", "nodes": [
        {"id": "outer", "uses": "subflow", "params": {"blueprintId": "mid"}}]})
    res = flownb.run(bp, registry=reg)
    assert res.child_states == {"outer/inner": "succeeded", "outer/inner/c1": "succeeded",
                                "outer/inner/c2": "succeeded"}
    d = parse(render.to_dot(bp, registry=reg, states=res))
    c2 = d.by_id("c2")
    assert (d.nodes[c2]["fillcolor"], d.nodes[c2]["color"]) == render.STATE_COLORS["succeeded"]
