"""Executor-independent workflow scenarios: a blueprint, its inputs and what must come out.

Every executor (in process: ``tests/test_runtime.py``; Redis + RQ workers: the distributed suite)
runs the same :data:`SCENARIOS` and checks each result with :func:`check`. The node types live in
``scenario_nodes`` (imported here so registering them is a side effect of importing this module).

A scenario's ``ran`` is the exact set of nodes whose final status is ``succeeded`` and ``skipped``
the exact set whose final status is ``skipped`` (nodes in ``ignore`` are left out of both checks).
Scenarios that document known bugs live in :data:`BUG_SCENARIOS` (each with ``xfail`` set): the
in-process runner marks them ``xfail(strict=True)`` so they fail loudly once the bug is fixed; they
are kept out of :data:`SCENARIOS` so every executor's main suite stays green. Another executor
can run them too (and move them to ``SCENARIOS`` once they pass everywhere).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import flownb
import scenario_nodes  # noqa: F401  (registers the t-* node types)


@dataclass
class Scenario:
    name: str
    blueprint: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    status: str = "succeeded"
    ran: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)
    #: node id -> expected output (only the listed nodes are checked)
    outputs: dict[str, Any] = field(default_factory=dict)
    #: state key -> expected value (subset check)
    state: dict[str, Any] = field(default_factory=dict)
    #: state keys that must NOT be present at the end
    state_absent: set[str] = field(default_factory=set)
    #: node id -> expected number of visits
    visits: dict[str, int] = field(default_factory=dict)
    #: node id -> expected number of attempts (over all visits)
    attempts: dict[str, int] = field(default_factory=dict)
    error_node: str | None = None
    error_type: str | None = None
    error_attempt: int | None = None
    #: substrings the error message must contain
    error_contains: tuple[str, ...] = ()
    #: substrings the error traceback must contain
    traceback_contains: tuple[str, ...] = ()
    #: the run must take less than this (seconds, RunResult.duration_s)
    max_duration_s: float | None = None
    #: child blueprints (dicts) registered into the registry before running
    extra_blueprints: list[dict[str, Any]] = field(default_factory=list)
    #: nodes whose final status is not checked
    ignore: set[str] = field(default_factory=set)
    #: reason, when the scenario documents a known bug (strict xfail)
    xfail: str | None = None
    #: true when a node blocks a thread past the end of the run (sync timeout): ``asyncio.run``
    #: would wait for that thread at shutdown, so async-entry tests skip these
    leaves_thread: bool = False

    def __repr__(self) -> str:
        return f"<Scenario {self.name}>"


def bp(bp_id: str, nodes: list[dict[str, Any]], edges: list[Any] = (), **extra: Any) -> dict[str, Any]:
    """Blueprint dict; an edge may be written as ``("a", "b")``, ``("a", "b", "action")`` or a dict."""
    out_edges = []
    for e in edges:
        if isinstance(e, Mapping):
            out_edges.append(dict(e))
        elif len(e) == 2:
            out_edges.append({"source": e[0], "target": e[1]})
        else:
            out_edges.append({"source": e[0], "target": e[1], "action": e[2]})
    return {"id": bp_id, "nodes": nodes, "edges": out_edges, **extra}


def n(node_id: str, uses: str, config: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": node_id, "uses": uses}
    if params:
        spec["params"] = params
    if config:
        spec["config"] = config
    return spec


def cond(source: str, target: str, condition: str, action: str | None = None) -> dict[str, Any]:
    e = {"source": source, "target": target, "condition": condition}
    if action is not None:
        e["action"] = action
    return e


CHILD_ADD = bp("child-add", [n("c1", "t-add", key="x", n=5),
                             n("c2", "t-set", values={"child_note": "from child"})],
               [("c1", "c2")])
CHILD_FAIL = bp("child-fail", [n("c1", "t-fail", message="child boom")])
MAP_CHILD = bp("map-child", [n("c", "t-child")])
MAP_DELAY_CHILD = bp("map-delay-child", [n("d", "t-delay-echo")])


SCENARIOS: list[Scenario] = [
    # -- chains ------------------------------------------------------------------------------------
    Scenario(
        "linear-chain",
        bp("linear", [n("a", "t-add", key="x", n=1), n("b", "t-add", n=2), n("c", "t-async-add", n=3)],
           [("a", "b"), ("b", "c")]),
        inputs={"x": 10},
        ran={"a", "b", "c"},
        outputs={"a": 11, "b": 13, "c": 16},
        visits={"a": 1, "b": 1, "c": 1},
    ),
    Scenario(
        "inputs-field",
        bp("inputs-field", [n("s", "t-const", value={"deep": {"v": 7}}),
                            {"id": "r", "uses": "t-echo", "inputs": "s"},
                            {"id": "m", "uses": "t-echo",
                             "inputs": {"whole": "s", "dotted": "s.deep.v", "from_state": "user"}}],
           [("s", "r"), ("r", "m")]),
        inputs={"user": "ann"},
        ran={"s", "r", "m"},
        outputs={"r": {"deep": {"v": 7}},
                 "m": {"whole": {"deep": {"v": 7}}, "dotted": 7, "from_state": "ann"}},
    ),
    Scenario(
        "two-start-nodes",
        bp("two-starts", [n("a", "t-const", value=1), n("b", "t-const", value=2), n("j", "t-collect")],
           [("a", "j"), ("b", "j")]),
        ran={"a", "b", "j"},
        outputs={"j": ["a", "b"]},
    ),
    # -- action routing -----------------------------------------------------------------------------
    Scenario(
        "route-no-default",
        bp("route-nd", [n("r", "t-route", action="b"), n("A", "t-echo"), n("B", "t-echo")],
           [("r", "A", "a"), ("r", "B", "b")]),
        ran={"r", "B"}, skipped={"A"},
    ),
    Scenario(
        "route-action-beats-default",
        bp("route-abd", [n("r", "t-route", action="a", output="payload"), n("A", "t-echo"),
                         n("D", "t-echo")],
           [("r", "A", "a"), ("r", "D")]),
        ran={"r", "A"}, skipped={"D"}, outputs={"A": "payload"},
    ),
    Scenario(
        "route-unknown-action-falls-to-default",
        bp("route-default", [n("r", "t-route", action="zzz"), n("A", "t-echo"), n("D", "t-echo")],
           [("r", "A", "a"), ("r", "D")]),
        ran={"r", "D"}, skipped={"A"},
    ),
    Scenario(
        "route-no-action-takes-default",
        bp("route-none", [n("r", "t-route"), n("A", "t-echo"), n("D", "t-echo")],
           [("r", "A", "a"), {"source": "r", "target": "D", "action": "default"}]),
        inputs={"k": 1},
        ran={"r", "D"}, skipped={"A"}, outputs={"D": {"k": 1}},
    ),
    Scenario(
        "route-action-from-input",
        bp("route-input", [n("r", "t-route", field="kind"), n("A", "t-echo"), n("B", "t-echo")],
           [("r", "A", "a"), ("r", "B", "b")]),
        inputs={"kind": "b"},
        ran={"r", "B"}, skipped={"A"},
    ),
    Scenario(
        "route-several-edges-same-action",
        bp("route-multi", [n("r", "t-route", action="go"), n("A", "t-echo"), n("B", "t-echo"),
                           n("C", "t-echo")],
           [("r", "A", "go"), ("r", "B", "go"), ("r", "C", "stop")]),
        ran={"r", "A", "B"}, skipped={"C"},
    ),
    # -- conditions ---------------------------------------------------------------------------------
    Scenario(
        "condition-on-result-output",
        bp("cond-result", [n("score", "t-const", value={"score": 0.8}), n("high", "t-echo"),
                           n("low", "t-echo")],
           [cond("score", "high", "result.output.score > 0.5"),
            cond("score", "low", "result.output.score <= 0.5")]),
        ran={"score", "high"}, skipped={"low"},
    ),
    Scenario(
        "condition-on-state",
        bp("cond-state", [n("set", "t-set", values={"tier": "gold"}, output="x"), n("check", "t-echo"),
                          n("gold", "t-echo"), n("other", "t-echo")],
           [("set", "check"), cond("check", "gold", 'state.tier == "gold"'),
            cond("check", "other", 'state.tier != "gold"')]),
        ran={"set", "check", "gold"}, skipped={"other"}, state={"tier": "gold"},
    ),
    Scenario(
        "condition-on-outputs",
        bp("cond-outputs", [n("fetch", "t-const", value={"ok": True}), n("mid", "t-const", value=1),
                            n("yes", "t-echo"), n("no", "t-echo")],
           [("fetch", "mid"), cond("mid", "yes", "state._outputs.fetch.ok == true"),
            cond("mid", "no", "not state._outputs.fetch.ok")]),
        ran={"fetch", "mid", "yes"}, skipped={"no"},
    ),
    Scenario(
        "condition-with-action",
        bp("cond-action", [n("r", "t-route", action="go", output=7), n("big", "t-echo"),
                           n("small", "t-echo")],
           [cond("r", "big", "result.output > 5", action="go"),
            cond("r", "small", "result.output <= 5", action="go")]),
        ran={"r", "big"}, skipped={"small"},
    ),
    Scenario(
        "condition-false-everywhere-skips-downstream",
        bp("cond-none", [n("a", "t-const", value=1), n("b", "t-echo"), n("c", "t-echo")],
           [cond("a", "b", "result.output > 10"), ("b", "c")]),
        ran={"a"}, skipped={"b", "c"},
    ),
    # -- joins ----------------------------------------------------------------------------------------
    Scenario(
        "fan-out-all-join",
        bp("fan-out", [n("s", "t-const", value=1), n("a", "t-add", n=1), n("b", "t-add", n=2),
                       n("c", "t-async-add", n=3), n("j", "t-collect")],
           [("s", "a"), ("s", "b"), ("s", "c"), ("a", "j"), ("b", "j"), ("c", "j")]),
        ran={"s", "a", "b", "c", "j"},
        outputs={"a": 2, "b": 3, "c": 4, "j": ["a", "b", "c"]},
        visits={"j": 1},
    ),
    Scenario(
        "all-join-over-exclusive-branches",
        bp("excl-join", [n("r", "t-route", action="left"), n("L", "t-const", value="l"),
                         n("R", "t-const", value="r"), n("j", "t-echo")],
           [("r", "L", "left"), ("r", "R", "right"), ("L", "j"), ("R", "j")]),
        ran={"r", "L", "j"}, skipped={"R"},
        outputs={"j": {"L": "l"}},  # only the taken branch's input
        visits={"j": 1},
    ),
    Scenario(
        "all-join-every-branch-dead-is-skipped",
        bp("dead-join", [n("r", "t-route", action="c"), n("A", "t-echo"), n("B", "t-echo"),
                         n("D", "t-echo"), n("j", "t-collect"), n("after", "t-echo")],
           [("r", "A", "a"), ("r", "B", "b"), ("r", "D"), ("A", "j"), ("B", "j"), ("j", "after")]),
        ran={"r", "D"}, skipped={"A", "B", "j", "after"},
    ),
    Scenario(
        "any-join-first-arrival",
        bp("any-join", [n("fast", "t-const", value="fast"),
                        n("slow", "t-async-sleep", seconds=0.3, value="slow"),
                        n("j", "t-echo", config={"join": "any"})],
           [("fast", "j"), ("slow", "j")]),
        ran={"fast", "slow", "j"},
        outputs={"j": "fast"}, visits={"j": 1},
    ),
    Scenario(
        "any-join-over-exclusive-branches",
        bp("any-excl", [n("r", "t-route", action="y"), n("X", "t-const", value="x"),
                        n("Y", "t-const", value="y"), n("j", "t-echo", config={"join": "any"}),
                        n("after", "t-echo")],
           [("r", "X", "x"), ("r", "Y", "y"), ("X", "j"), ("Y", "j"), ("j", "after")]),
        ran={"r", "Y", "j", "after"}, skipped={"X"},
        outputs={"j": "y", "after": "y"}, visits={"j": 1},
    ),
    Scenario(
        "nested-exclusive-branches",
        bp("nested", [n("start", "t-route", action="a"), n("A", "t-const", value="A"),
                      n("B", "t-const", value="B"), n("A_route", "t-route", action="x"),
                      n("A1", "t-const", value="A1"), n("A2", "t-const", value="A2"),
                      n("B1", "t-const", value="B1"), n("J", "t-collect"), n("end", "t-echo")],
           [("start", "A", "a"), ("start", "B", "b"), ("A", "A_route"),
            ("A_route", "A1", "x"), ("A_route", "A2", "y"), ("B", "B1"),
            ("A1", "J"), ("A2", "J"), ("B1", "J"), ("J", "end")]),
        ran={"start", "A", "A_route", "A1", "J", "end"},
        skipped={"B", "B1", "A2"},
        outputs={"J": ["A1"], "end": ["A1"]}, visits={"J": 1, "end": 1},
    ),
    Scenario(
        "join-with-branch-skipped-deep-upstream",
        bp("deep-skip", [n("s", "t-const", value=0), n("r", "t-route", action="left"),
                         n("L1", "t-add"), n("L2", "t-add"), n("L3", "t-add"),
                         n("R1", "t-add"), n("R2", "t-add"), n("R3", "t-add"),
                         n("other", "t-const", value="o"), n("J", "t-collect")],
           [("s", "r"), ("s", "other"), ("r", "L1", "left"), ("r", "R1", "right"),
            ("L1", "L2"), ("L2", "L3"), ("R1", "R2"), ("R2", "R3"),
            ("L3", "J"), ("R3", "J"), ("other", "J")]),
        ran={"s", "r", "L1", "L2", "L3", "other", "J"}, skipped={"R1", "R2", "R3"},
        outputs={"L3": 3, "J": ["L3", "other"]}, visits={"J": 1},
    ),
    # -- loops ----------------------------------------------------------------------------------------
    Scenario(
        "loop-exits-normally",
        bp("loop", [n("s", "t-const", value=0),
                    n("body", "t-counter", config={"max_visits": 10}, until=4),
                    n("after", "t-echo")],
           [("s", "body"), ("body", "body", "again"), ("body", "after", "done")]),
        ran={"s", "body", "after"},
        outputs={"body": 4, "after": 4}, state={"i": 4},
        visits={"body": 4, "after": 1},
    ),
    Scenario(
        "loop-two-nodes-then-join",
        bp("loop-join", [n("s", "t-const", value=0), n("b", "t-echo"),
                         n("c", "t-counter", config={"maxVisits": 5}, until=3),
                         n("other", "t-const", value="o"), n("j", "t-collect"), n("end", "t-visit")],
           [("s", "b"), ("b", "c"), ("c", "b", "again"), ("c", "j", "done"), ("s", "other"),
            ("other", "j"), ("j", "end")]),
        ran={"s", "b", "c", "other", "j", "end"},
        outputs={"j": ["c", "other"], "end": ["end", 1]}, state={"i": 3},
        visits={"b": 3, "c": 3, "j": 1, "end": 1},
    ),
    Scenario(
        "loop-after-exclusive-branch-not-taken",
        bp("loop-skipped", [n("r", "t-route", action="other"), n("b", "t-echo"),
                            n("c", "t-counter", config={"max_visits": 5}, until=3),
                            n("o", "t-const", value=1), n("j", "t-collect")],
           [("r", "b", "loop"), ("r", "o", "other"), ("b", "c"), ("c", "b", "again"),
            ("c", "j", "done"), ("o", "j")]),
        ran={"r", "o", "j"}, skipped={"b", "c"},
        outputs={"j": ["o"]}, visits={"j": 1},
    ),
    Scenario(
        "loop-exceeds-max-visits",
        bp("loop-max", [n("s", "t-const", value=0),
                        n("body", "t-counter", config={"max_visits": 3}, until=10),
                        n("after", "t-echo")],
           [("s", "body"), ("body", "body", "again"), ("body", "after", "done")]),
        status="failed", ran={"s"}, ignore={"body"},
        error_node="body", error_type="MaxVisitsExceeded", error_contains=("max_visits=3",),
    ),
    Scenario(
        "retry-succeeds-on-third-attempt",
        bp("retry-ok", [n("f", "t-flaky", config={"retries": 2}, fail_times=2), n("after", "t-echo")],
           [("f", "after")]),
        ran={"f", "after"}, outputs={"f": "ok@3", "after": "ok@3"}, attempts={"f": 3},
    ),
    Scenario(
        "retry-succeeds-off-the-inline-path",
        # a timeout forces the general (async/thread) path
        bp("retry-ok-async", [n("f", "t-flaky", config={"retries": 2, "timeout_s": 5}, fail_times=2)]),
        ran={"f"}, outputs={"f": "ok@3"}, attempts={"f": 3},
    ),
    Scenario(
        "retries-exhausted",
        bp("retry-fail", [n("f", "t-flaky", config={"retries": 1}, fail_times=2), n("after", "t-echo")],
           [("f", "after")]),
        status="failed", ran=set(),
        error_node="f", error_type="RuntimeError", error_attempt=2,
        error_contains=("flaky failure on attempt 2",), traceback_contains=("flaky_failure",),
    ),
    Scenario(
        "prep-exec-post-only-exec-retried",
        bp("pep", [n("p", "t-prep-exec-post", config={"retries": 2}, fail_times=2)]),
        ran={"p"},
        outputs={"p": {"prep_attempt": 1, "exec_attempts": [1, 2, 3], "post_attempt": 3,
                       "exec": "exec-ok@3"}},
    ),
    Scenario(
        "prep-exec-post-only-exec-retried-off-inline-path",
        bp("pep-async", [n("p", "t-prep-exec-post", config={"retries": 2, "timeout_s": 5},
                           fail_times=2)]),
        ran={"p"},
        outputs={"p": {"prep_attempt": 1, "exec_attempts": [1, 2, 3], "post_attempt": 3,
                       "exec": "exec-ok@3"}},
    ),
    Scenario(
        "timeout-sync-node",
        bp("timeout-sync", [n("slow", "t-sleep", config={"timeout_s": 0.2}, seconds=1.5),
                            n("after", "t-echo")], [("slow", "after")]),
        status="failed", error_node="slow", error_type="NodeTimeout", error_attempt=1,
        error_contains=("timeout_s=0.2",), max_duration_s=1.0, leaves_thread=True,
    ),
    Scenario(
        "timeout-async-node",
        bp("timeout-async", [n("slow", "t-async-sleep", config={"timeout_s": 0.2}, seconds=5)]),
        status="failed", error_node="slow", error_type="NodeTimeout", error_attempt=1,
        max_duration_s=1.0,
    ),
    Scenario(
        "timeout-each-attempt-then-fail",
        bp("timeout-retries", [n("slow", "t-async-sleep", config={"timeout_s": 0.1, "retries": 2},
                                 seconds=5)]),
        status="failed", error_node="slow", error_type="NodeTimeout", error_attempt=3,
        attempts={"slow": 3}, max_duration_s=1.5,
    ),
    Scenario(
        "timeout-not-reached",
        bp("timeout-ok", [n("quick", "t-sleep", config={"timeout_s": 2}, seconds=0.01, value="done")]),
        ran={"quick"}, outputs={"quick": "done"},
    ),
    Scenario(
        "failure-without-fallback",
        bp("fail", [n("a", "t-const", value=1), n("b", "t-fail", message="kaboom"), n("c", "t-echo")],
           [("a", "b"), ("b", "c")]),
        status="failed", ran={"a"},
        error_node="b", error_type="ValueError", error_attempt=1, error_contains=("kaboom",),
        traceback_contains=("explode_on_purpose", "kaboom"),
    ),
    Scenario(
        "fallback-takes-over-edges",
        bp("fallback", [n("risky", "t-fail", config={"fallback": "fb"}),
                        n("fb", "t-const", value="F"), n("next", "t-echo")],
           [("risky", "next")]),
        ran={"fb", "next"}, ignore={"risky"},
        outputs={"fb": "F", "next": "F"},
    ),
    Scenario(
        "fallback-action-routes-failed-nodes-edges",
        bp("fallback-route", [n("s", "t-const", value="in"),
                              n("risky", "t-fail", config={"fallback": "fb"}),
                              n("fb", "t-route", action="b", output="from-fb"),
                              n("A", "t-echo"), n("B", "t-echo")],
           [("s", "risky"), ("risky", "A", "a"), ("risky", "B", "b")]),
        ran={"s", "fb", "B"}, skipped={"A"}, ignore={"risky"},
        outputs={"B": "from-fb"},
    ),
    Scenario(
        "fallback-itself-fails",
        bp("fallback-fails", [n("risky", "t-fail", config={"fallback": "fb"}, message="first"),
                              n("fb", "t-fail", message="fallback boom"), n("next", "t-echo")],
           [("risky", "next")]),
        status="failed", ignore={"risky"},
        error_node="fb", error_type="ValueError", error_contains=("fallback boom",),
        traceback_contains=("explode_on_purpose", "risky", "first"),
    ),
    Scenario(
        "unknown-action-fails-clearly",
        bp("unknown-action", [n("r", "t-route", action="nope"), n("A", "t-echo"), n("B", "t-echo")],
           [("r", "A", "yes"), ("r", "B", "no")]),
        status="failed", ran=set(), ignore={"r"},
        error_node="r", error_contains=("'nope'", "no default edge", "'yes'"),
    ),
    # -- subflow and map ------------------------------------------------------------------------------
    Scenario(
        "subflow-input-output-mapping",
        bp("sub", [n("s", "t-const", value=1),
                   n("sf", "subflow", blueprintId="child-add", inputs={"x": "num"},
                     outputs={"got": "c1", "note": "child_note"}),
                   n("after", "t-echo")],
           [("s", "sf"), ("sf", "after")]),
        inputs={"num": 10},
        ran={"s", "sf", "after"},
        outputs={"sf": 15, "after": 15}, state={"got": 15, "note": "from child"},
        extra_blueprints=[CHILD_ADD],
    ),
    Scenario(
        "subflow-child-failure",
        bp("sub-fail", [n("sf", "subflow", blueprintId="child-fail")]),
        status="failed", error_node="sf", error_contains=("child boom",),
        extra_blueprints=[CHILD_FAIL],
    ),
    Scenario(
        "map-over-node-type",
        bp("map-node", [n("m", "map", node="t-double", items="xs"), n("after", "t-echo")],
           [("m", "after")]),
        inputs={"xs": [1, 2, 3, 4]},
        ran={"m", "after"}, outputs={"m": [2, 4, 6, 8], "after": [2, 4, 6, 8]},
    ),
    Scenario(
        "map-over-blueprint",
        bp("map-bp", [n("m", "map", blueprintId="map-child", items="xs")]),
        inputs={"xs": [1, 2, 3]},
        ran={"m"},
        outputs={"m": [{"index": 0, "value": 10}, {"index": 1, "value": 20},
                       {"index": 2, "value": 30}]},
        extra_blueprints=[MAP_CHILD],
    ),
    Scenario(
        "map-preserves-order-when-later-items-finish-first",
        bp("map-order", [n("src", "t-const", value=[{"delay": 0.2, "v": "a"}, {"delay": 0.1, "v": "b"},
                                                     {"delay": 0.0, "v": "c"}]),
                         n("m", "map", blueprintId="map-delay-child")],
           [("src", "m")]),
        ran={"src", "m"}, outputs={"m": ["a", "b", "c"]}, max_duration_s=2.0,
        extra_blueprints=[MAP_DELAY_CHILD],
    ),
    Scenario(
        "map-over-non-list",
        bp("map-bad", [n("m", "map", node="t-double", items="xs")]),
        inputs={"xs": 5},
        status="failed", error_node="m", error_contains=("needs a list", "int"),
    ),
    # -- Flowcraft ---------------------------------------------------------------------------------------
    Scenario(
        "flowcraft-camelcase",
        {
            "id": "flowcraft",
            "metadata": {"source": "flowcraft"},
            "nodes": [
                {"id": "flaky", "uses": "t-flaky", "params": {"fail_times": 2},
                 "config": {"maxRetries": 3, "retryDelay": 10, "timeout": 5000}},
                {"id": "other", "uses": "t-const", "params": {"value": "o"}},
                {"id": "j", "uses": "t-echo", "config": {"joinStrategy": "any"}},
                {"id": "sub", "uses": "subflow",
                 "params": {"blueprintId": "child-add", "inputs": {"x": "n"}}},
            ],
            "edges": [
                {"source": "flaky", "target": "j"},
                {"source": "other", "target": "j"},
                {"source": "j", "target": "sub", "action": "default"},
            ],
        },
        inputs={"n": 1},
        ran={"flaky", "other", "j", "sub"},
        outputs={"flaky": "ok@3", "sub": 6}, attempts={"flaky": 3}, visits={"j": 1},
        extra_blueprints=[CHILD_ADD],
    ),
]

#: scenarios that once reproduced bugs found by this suite (now fixed); they run on every executor
BUG_SCENARIOS: list[Scenario] = [
    Scenario(
        "loop-with-join-fed-from-outside-the-loop",
        # b->j->c->b is the loop; j also waits for x, which is outside the loop and arrives once.
        # The node after the loop (e, joined with y) must run once, after the loop is done.
        bp("loop-outside-join", [n("s", "t-const", value=0), n("x", "t-const", value="x"),
                                 n("y", "t-const", value="y"), n("b", "t-echo"),
                                 n("j", "t-collect"), n("c", "t-counter", until=3),
                                 n("e", "t-visit")],
           [("s", "b"), ("s", "x"), ("s", "y"), ("b", "j"), ("x", "j"), ("j", "c"),
            ("c", "b", "again"), ("c", "e", "done"), ("y", "e")]),
        ran={"s", "x", "y", "b", "j", "c", "e"},
        visits={"c": 3, "e": 1}, outputs={"e": ["e", 1]},
    ),
    Scenario(
        "retried-attempt-leaves-no-state-behind",
        bp("dirty", [n("d", "t-dirty-flaky", config={"retries": 2}, fail_times=1)]),
        ran={"d"}, outputs={"d": "clean@2"}, state={"dirty@2": True}, state_absent={"dirty@1"},
    ),
    Scenario(
        "retried-attempt-leaves-no-state-behind-off-inline-path",
        bp("dirty-async", [n("d", "t-dirty-flaky", config={"retries": 2, "timeout_s": 5},
                             fail_times=1)]),
        ran={"d"}, outputs={"d": "clean@2"}, state={"dirty@2": True}, state_absent={"dirty@1"},
    ),
    Scenario(
        "failed-node-writes-do-not-leak-through-fallback",
        bp("dirty-fallback", [n("d", "t-dirty-flaky", config={"fallback": "fb"}, fail_times=9),
                              n("fb", "t-const", value="fb")]),
        ran={"fb"}, ignore={"d"}, outputs={"fb": "fb"}, state_absent={"dirty@1"},
    ),
    Scenario(
        "async-post-is-awaited",
        bp("async-post", [n("a", "t-async-post")]),
        inputs={"x": 1},
        ran={"a"}, outputs={"a": {"post": {"exec": {"x": 1}}}},
    ),
    Scenario(
        "user-timeout-error-is-not-a-node-timeout",
        bp("user-timeout", [n("t", "t-timeout-error", config={"timeout_s": 30})]),
        status="failed", error_node="t", error_type="TimeoutError",
        error_contains=("socket read timed out",), traceback_contains=("raise_socket_timeout",),
        max_duration_s=5,
    ),
    Scenario(
        "subflow-child-failure-keeps-original-traceback",
        bp("sub-fail-tb", [n("sf", "subflow", blueprintId="child-fail")]),
        status="failed", error_node="sf", error_contains=("child boom",),
        traceback_contains=("explode_on_purpose",),
        extra_blueprints=[CHILD_FAIL],
    ),
]

#: scenarios whose expectations are about in-process details only
IN_PROCESS_ONLY: set[str] = set()

BY_NAME: dict[str, Scenario] = {s.name: s for s in SCENARIOS + BUG_SCENARIOS}
assert len(BY_NAME) == len(SCENARIOS) + len(BUG_SCENARIOS), "scenario names must be unique"


def register_blueprints(scenario: Scenario, registry: flownb.Registry | None = None) -> None:
    reg = registry or flownb.default_registry
    for child in scenario.extra_blueprints:
        reg.add_blueprint(flownb.Blueprint.from_dict(child))


def _statuses(result: Any, status: str, ignore: set[str]) -> set[str]:
    return {name for name, st in result.nodes.items() if st.status == status and name not in ignore}


def outcome(scenario: Scenario, call: Callable[[], Any]) -> Any:
    """The RunResult of ``call()``, a run made with the default ``raise_on_error``.

    A scenario expected to fail must raise :class:`flownb.RunFailed` naming the failed node (a
    cancelled one :class:`flownb.RunCancelled`); the result it carries is returned for
    :func:`check`, so every executor proves "failure is loud" on every failing scenario.
    """
    if scenario.status == "succeeded":
        return call()
    expected = flownb.RunCancelled if scenario.status == "cancelled" else flownb.RunFailed
    try:
        got = call()
    except expected as exc:
        if isinstance(exc, flownb.RunFailed) and scenario.error_node is not None:
            assert exc.node_id == scenario.error_node, (
                f"scenario {scenario.name!r}: RunFailed names {exc.node_id!r}, expected "
                f"{scenario.error_node!r}")
        assert exc.result is not None and exc.result.status == scenario.status
        return exc.result
    raise AssertionError(f"scenario {scenario.name!r}: expected {expected.__name__}, the run "
                         f"returned {got!r}")


def check(scenario: Scenario, result: Any) -> None:
    """Assert that ``result`` (a :class:`flownb.RunResult`) matches ``scenario``."""
    s = scenario
    err = result.error or {}
    where = f"scenario {s.name!r}"
    summary = {name: st.status for name, st in result.nodes.items()}
    assert result.status == s.status, (
        f"{where}: status {result.status!r}, expected {s.status!r}; error={err.get('type')} "
        f"{err.get('node_id')!r}: {err.get('message')}\n{err.get('traceback', '')}")
    ran = _statuses(result, "succeeded", s.ignore)
    assert ran == s.ran, (f"{where}: nodes that succeeded {sorted(ran)}, expected {sorted(s.ran)} "
                          f"(all statuses: {summary})")
    skipped = _statuses(result, "skipped", s.ignore)
    assert skipped == s.skipped, (f"{where}: skipped nodes {sorted(skipped)}, expected "
                                  f"{sorted(s.skipped)} (all statuses: {summary})")
    for node_id, expected in s.outputs.items():
        assert node_id in result.outputs, f"{where}: no output for {node_id!r} ({result.outputs})"
        assert result.outputs[node_id] == expected, (
            f"{where}: output of {node_id!r} is {result.outputs[node_id]!r}, expected {expected!r}")
    for key, expected in s.state.items():
        assert key in result.state, f"{where}: state has no key {key!r} ({result.state})"
        assert result.state[key] == expected, (
            f"{where}: state[{key!r}] is {result.state[key]!r}, expected {expected!r}")
    for key in s.state_absent:
        assert key not in result.state, (f"{where}: state key {key!r} should be absent, state is "
                                         f"{result.state}")
    for node_id, expected in s.visits.items():
        got = result.nodes[node_id].visits
        assert got == expected, f"{where}: {node_id!r} visited {got} time(s), expected {expected}"
    for node_id, expected in s.attempts.items():
        got = result.nodes[node_id].attempts
        assert got == expected, f"{where}: {node_id!r} made {got} attempt(s), expected {expected}"
    if s.status == "failed":
        assert err, f"{where}: a failed run must carry an error"
        for key in ("node_id", "attempt", "type", "message", "traceback"):
            assert key in err, f"{where}: error has no {key!r}: {err}"
    else:
        assert not err, f"{where}: unexpected error {err}"
    if s.error_node is not None:
        assert err.get("node_id") == s.error_node, (
            f"{where}: error names node {err.get('node_id')!r}, expected {s.error_node!r} ({err})")
    if s.error_type is not None:
        assert err.get("type") == s.error_type, (
            f"{where}: error type {err.get('type')!r}, expected {s.error_type!r} ({err})")
    if s.error_attempt is not None:
        assert err.get("attempt") == s.error_attempt, (
            f"{where}: error at attempt {err.get('attempt')!r}, expected {s.error_attempt}")
    for text in s.error_contains:
        assert text in str(err.get("message", "")), (
            f"{where}: error message {err.get('message')!r} should contain {text!r}")
    for text in s.traceback_contains:
        assert text in str(err.get("traceback", "")), (
            f"{where}: error traceback should contain {text!r}:\n{err.get('traceback')}")
    if s.max_duration_s is not None:
        assert result.duration_s < s.max_duration_s, (
            f"{where}: took {result.duration_s:.3f}s, limit {s.max_duration_s}s")

# the bugs above are fixed: they belong to the main suite, which every executor runs
SCENARIOS.extend(BUG_SCENARIOS)

# -- state semantics (flownb.core.reducers, docs/state.md): reducers and conflicting parallel writes ----
_FORK = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
STATE_SCENARIOS: list[Scenario] = [
    Scenario(
        "reducers-on-parallel-branches",
        bp("st-reducers", [n("a", "t-echo"),
                           n("b", "t-set", values={"n": 2, "cfg": {"b": 2},
                                                   "log": "x", "last": "same"}),
                           n("c", "t-set", values={"n": 3, "cfg": {"c": 3},
                                                   "log": ["x"], "last": "same"}),
                           n("d", "t-echo", config={"join": "all"})], _FORK,
           reducers={"n": "sum", "cfg": "merge", "log": "append", "last": "replace"}),
        inputs={"n": 1, "cfg": {"a": 1, "nested": {"deep": []}}},
        ran={"a", "b", "c", "d"},
        state={"n": 6, "log": ["x", "x"], "last": "same",
               "cfg": {"a": 1, "nested": {"deep": []}, "b": 2, "c": 3}}),
    Scenario(
        "reducer-merge-keeps-nested-values-and-order",
        bp("st-merge", [n("a", "t-set", values={"cfg": {"b": [], "a": {"x": [1, {}]}}}),
                        n("b", "t-set", values={"cfg": {"c": "3", "a": None}})], [("a", "b")],
           reducers={"cfg": "merge"}),
        inputs={"cfg": {"z": 0}},
        ran={"a", "b"},
        state={"cfg": {"z": 0, "b": [], "a": None, "c": "3"}}),
    Scenario(
        "reducer-sum-floats-and-append-lists",
        bp("st-sum", [n("a", "t-set", values={"total": 0.1, "xs": [1, 2]}),
                      n("b", "t-set", values={"total": 0.2, "xs": []}),
                      n("c", "t-set", values={"total": 2, "xs": [[3]]})], [("a", "b"), ("b", "c")],
           reducers={"total": "sum", "xs": "append"}),
        ran={"a", "b", "c"},
        state={"total": 0.1 + 0.2 + 2, "xs": [1, 2, [3]]}),
    Scenario(
        "sequential-writes-of-a-key-replace-each-other",
        bp("st-seq", [n("a", "t-set", values={"x": 1}), n("b", "t-set", values={"x": 2}),
                      n("c", "t-set", values={"x": 3})], [("a", "b"), ("b", "c")]),
        ran={"a", "b", "c"},
        state={"x": 3}),
    Scenario(
        "parallel-writes-of-a-key-without-reducer-fail-the-run",
        bp("st-conflict", [n("a", "t-echo"), n("b", "t-set", values={"x": 1, "only_b": 1}),
                           n("c", "t-set", values={"x": 2}), n("d", "t-echo", config={"join": "all"})],
           _FORK),
        status="failed",
        ran={"a"},
        ignore={"b", "c", "d"},
        error_type="StateConflict",
        error_contains=("state key 'x' was written by node", "which ran at the same time",
                        'Declare how to combine them in the blueprint, e.g. "reducers": {"x": '
                        '"append"} (or merge, sum, replace)')),
    Scenario(
        "reducer-type-mismatch-fails-the-run",
        bp("st-type", [n("a", "t-set", values={"n": "three"})], reducers={"n": "sum"}),
        inputs={"n": 1},
        status="failed",
        ignore={"a"},
        error_node="a",
        error_type="StateReducerError",
        error_contains=("state key 'n' has reducer 'sum', which needs numbers; got a str",),
        state={"n": 1}),
]
SCENARIOS.extend(STATE_SCENARIOS)
