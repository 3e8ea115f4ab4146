"""Property tests: the join algorithm against a reference model, and robustness to bad input."""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flownb
import scenario_nodes  # noqa: F401  (registers the t-* node types)

RUN_TIMEOUT_S = 10.0

NODE_ACTIONS = [None, None, "a", "b", "c", "default"]
EDGE_ACTIONS = [None, "a", "b"]
#: conditions on ``result.output`` (each t-route node outputs 0 or 1)
CONDITIONS = {None: None, "is-one": "result.output == 1", "is-zero": "result.output == 0"}


def run_with_timeout(blueprint: Any, inputs: Any = None, timeout: float = RUN_TIMEOUT_S) -> Any:
    """Run on a helper thread; a run that hangs is cancelled and reported, never waited on forever."""
    token = flownb.CancelToken()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = flownb.run(blueprint, inputs, cancel=token, raise_on_error=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        token.cancel()
        t.join(2)
        raise AssertionError(f"run did not finish within {timeout}s")
    if "error" in box:
        raise box["error"]
    return box["result"]


# -- (a) random DAGs against a reference model ---------------------------------------------------------

@dataclass
class DagEdge:
    source: int
    target: int
    action: str | None
    condition: str | None  # key of CONDITIONS


@dataclass
class Dag:
    n: int
    actions: list[str | None]
    outputs: list[int]
    joins: list[str]
    edges: list[DagEdge]

    def blueprint(self) -> dict[str, Any]:
        nodes = []
        for i in range(self.n):
            params: dict[str, Any] = {"output": self.outputs[i]}
            if self.actions[i] is not None:
                params["action"] = self.actions[i]
            nodes.append({"id": f"n{i}", "uses": "t-route", "params": params,
                          "config": {"join": self.joins[i]}})
        edges = []
        for e in self.edges:
            spec: dict[str, Any] = {"source": f"n{e.source}", "target": f"n{e.target}"}
            if e.action is not None:
                spec["action"] = e.action
            if e.condition is not None:
                spec["condition"] = CONDITIONS[e.condition]
            edges.append(spec)
        return {"id": "random-dag", "nodes": nodes, "edges": edges}


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    n = draw(st.integers(5, 25))
    actions = draw(st.lists(st.sampled_from(NODE_ACTIONS), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    joins = draw(st.lists(st.sampled_from(["all", "any"]), min_size=n, max_size=n))
    use_conditions = draw(st.booleans())
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          min_size=n, max_size=3 * n))
    edges = []
    for a, b in pairs:
        if a == b:
            continue
        lo, hi = min(a, b), max(a, b)
        action = draw(st.sampled_from(EDGE_ACTIONS))
        condition = draw(st.sampled_from(list(CONDITIONS))) if use_conditions else None
        edges.append(DagEdge(lo, hi, action, condition))
    return Dag(n, actions, outputs, joins, edges)


class UnknownAction(Exception):
    pass


def reference_select(dag: Dag, node: int) -> set[int]:
    """Indices (into dag.edges) a finished node takes: the rule of graph.select_edges."""
    out = [(k, e) for k, e in enumerate(dag.edges) if e.source == node]
    if not out:
        return set()
    action = dag.actions[node]
    if action == "default":
        action = None
    output = dag.outputs[node]

    def holds(e: DagEdge) -> bool:
        if e.condition is None:
            return True
        return output == (1 if e.condition == "is-one" else 0)

    if not any(e.condition is not None for _, e in out):
        if action is not None:
            taken = {k for k, e in out if e.action == action}
            if taken:
                return taken
        taken = {k for k, e in out if e.action is None}
        if not taken and action is not None:
            raise UnknownAction
        return taken
    if action is not None:
        taken = {k for k, e in out if e.action == action and holds(e)}
        if taken:
            return taken
    defaults = [(k, e) for k, e in out if e.action is None]
    if not defaults and action is not None and not any(e.action == action for _, e in out):
        raise UnknownAction
    return {k for k, e in defaults if holds(e)}


def reference_model(dag: Dag) -> tuple[set[int], set[int], set[int]]:
    """Topological (index) order: returns (ran, skipped, nodes that run and fail on their action)."""
    incoming: dict[int, list[int]] = {i: [] for i in range(dag.n)}
    for k, e in enumerate(dag.edges):
        incoming[e.target].append(k)
    taken: set[int] = set()
    ran: set[int] = set()
    bad: set[int] = set()
    for i in range(dag.n):
        # in a DAG every incoming edge is resolved before i is decided, so 'all' and 'any' agree
        # on *whether* i runs: a start node, or at least one incoming edge taken
        runs = not incoming[i] or any(k in taken for k in incoming[i])
        if not runs:
            continue
        ran.add(i)
        try:
            taken |= reference_select(dag, i)
        except UnknownAction:
            bad.add(i)
    return ran, set(range(dag.n)) - ran, bad


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_random_dags_match_the_reference_model(dag: Dag) -> None:
    ran, skipped, bad = reference_model(dag)
    result = run_with_timeout(dag.blueprint())
    statuses = {int(k[1:]): s.status for k, s in result.nodes.items()}
    assert set(statuses) == set(range(dag.n))
    if bad:
        assert result.status == "failed", (result.status, sorted(bad))
        err = result.error or {}
        assert err.get("node_id") in {f"n{i}" for i in bad}, err
        assert "no default edge" in err.get("message", "")
        succeeded = {i for i, s in statuses.items() if s == "succeeded"}
        assert succeeded <= ran, (sorted(succeeded - ran), statuses)
        return
    assert result.status == "succeeded", result.error
    got_ran = {i for i, s in statuses.items() if s == "succeeded"}
    got_skipped = {i for i, s in statuses.items() if s == "skipped"}
    neither = {i: s for i, s in statuses.items() if s not in ("succeeded", "skipped")}
    assert not neither, f"nodes neither ran nor skipped: {neither}"
    assert got_ran == ran, f"ran {sorted(got_ran)}, model says {sorted(ran)}"
    assert got_skipped == skipped, f"skipped {sorted(got_skipped)}, model says {sorted(skipped)}"
    for i in ran:
        assert result.nodes[f"n{i}"].visits == 1, f"n{i} ran {result.nodes[f'n{i}'].visits} times"
        assert result.outputs[f"n{i}"] == dag.outputs[i]
    for i in skipped:
        assert result.nodes[f"n{i}"].visits == 0
        assert f"n{i}" not in result.outputs


@settings(max_examples=30, deadline=None)
@given(dags())
def test_random_dags_event_stream_is_consistent(dag: Dag) -> None:
    """Every node gets exactly one terminal node event (succeeded or skipped) on a good run."""
    ran, skipped, bad = reference_model(dag)
    seen: list[flownb.Event] = []
    result = flownb.run(dag.blueprint(), on_event=seen.append, raise_on_error=False)
    if bad:
        assert seen[-1].type == "run_failed"
        return
    assert result.ok
    done = [e.node_id for e in seen if e.type == "node_succeeded"]
    skips = [e.node_id for e in seen if e.type == "node_skipped"]
    assert sorted(done) == sorted(f"n{i}" for i in ran)
    assert sorted(skips) == sorted(f"n{i}" for i in skipped)
    assert seen[0].type == "run_started" and seen[-1].type == "run_finished"


# -- (b) malformed blueprints never escape as anything but FlownbError ------------------------------

small_numbers = st.one_of(st.integers(-3, 3), st.floats(-2.0, 0.05, allow_nan=False))
leaves = st.one_of(st.none(), st.booleans(), small_numbers, st.text(max_size=8),
                   st.sampled_from(["a", "b", "n0", "t-const", "t-add", "map", "subflow", "all",
                                    "any", "default", "result.output > 0", "x = 1"]))
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=20,
)

SAFE_USES = ["t-const", "t-add", "t-echo", "t-route", "t-collect", "t-counter", "t-fail", "noop",
             "passthrough", "fail", "set", "output", "map", "subflow", "no-such-node"]
FIELDS = ["id", "uses", "params", "config", "inputs", "label", "source", "target", "action",
          "condition", "retries", "timeout_s", "join", "max_visits", "fallback", "value", "n",
          "node", "items", "blueprintId", "joinStrategy", "maxRetries", "timeout", "retryDelay"]

BASE = {
    "id": "base",
    "nodes": [
        {"id": "a", "uses": "t-const", "params": {"value": 1}},
        {"id": "b", "uses": "t-add", "params": {"n": 2}, "config": {"retries": 1}},
        {"id": "r", "uses": "t-route", "params": {"action": "x"}},
        {"id": "c", "uses": "t-echo"},
        {"id": "d", "uses": "t-collect", "config": {"join": "any"}},
    ],
    "edges": [
        {"source": "a", "target": "b"},
        {"source": "b", "target": "r"},
        {"source": "r", "target": "c", "action": "x"},
        {"source": "r", "target": "d", "condition": "result.output > 0"},
        {"source": "c", "target": "d"},
    ],
}


def _containers(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _containers(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _containers(v, (*path, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


ANY_MUTATION = ["delete", "set", "set-field", "dangling-edge", "duplicate-node", "random-edge",
                "random-edge", "random-edge", "uses", "uses", "config", "config"]
#: mutations that keep the document loadable (mostly), so the examples reach lint and the run
GRAPH_MUTATION = ["random-edge", "random-edge", "random-edge", "uses", "good-config"]


@st.composite
def mutated_blueprints(draw: st.DrawFn, kinds: list[str] = ANY_MUTATION) -> Any:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind == "dangling-edge":
            doc.setdefault("edges", [])
            if isinstance(doc["edges"], list):
                doc["edges"].append({"source": draw(st.sampled_from(["a", "zz"])),
                                     "target": draw(st.sampled_from(["zz", "b", ""]))})
            continue
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        ids = [nd["id"] for nd in nodes if isinstance(nd, dict) and isinstance(nd.get("id"), str)] \
            if isinstance(nodes, list) else []
        if kind == "random-edge" and ids and isinstance(doc.get("edges"), list):
            edge: dict[str, Any] = {"source": draw(st.sampled_from(ids)),
                                    "target": draw(st.sampled_from(ids))}
            if draw(st.booleans()):
                edge["action"] = draw(st.sampled_from(["x", "y", "default", ""]))
            if draw(st.booleans()):
                edge["condition"] = draw(st.sampled_from(
                    ["result.output > 0", "state.nope == 1", "x = 1", "", "result.output.k"]))
            doc["edges"].append(edge)
            continue
        if kind == "duplicate-node" and isinstance(nodes, list) and nodes:
            nodes.append(copy.deepcopy(draw(st.sampled_from(nodes))))
            continue
        if kind == "uses" and isinstance(nodes, list) and nodes:
            target = draw(st.sampled_from(nodes))
            if isinstance(target, dict):
                target["uses"] = draw(st.sampled_from(SAFE_USES))
                if draw(st.booleans()):
                    target["params"] = draw(st.one_of(json_values, st.fixed_dictionaries(
                        {}, optional={"value": json_values, "n": small_numbers,
                                      "node": st.sampled_from(SAFE_USES), "items": leaves,
                                      "action": leaves, "values": json_values,
                                      "template": st.text(max_size=10),
                                      "blueprintId": st.text(max_size=5)})))
            continue
        if kind == "good-config" and isinstance(nodes, list) and nodes:
            target = draw(st.sampled_from(nodes))
            if isinstance(target, dict) and isinstance(target.setdefault("config", {}), dict):
                target["config"].update(draw(st.fixed_dictionaries({}, optional={
                    "retries": st.integers(0, 2), "timeout_s": st.sampled_from([0.5, 2]),
                    "join": st.sampled_from(["all", "any"]), "max_visits": st.integers(1, 3),
                    "fallback": st.sampled_from(ids or ["a"]),
                    "retry_delay_s": st.sampled_from([0, 0.001])})))
            continue
        if kind == "config" and isinstance(nodes, list) and nodes:
            target = draw(st.sampled_from(nodes))
            if isinstance(target, dict):
                cfg = target.setdefault("config", {})
                if isinstance(cfg, dict):
                    key = draw(st.sampled_from(["retries", "timeout_s", "join", "max_visits",
                                                "fallback", "retry_delay_s", "backoff",
                                                "maxRetries", "timeout", "retryDelay",
                                                "joinStrategy", "bogus"]))
                    cfg[key] = draw(st.one_of(leaves, st.sampled_from(ids or ["a"]),
                                              st.sampled_from([0, 1, 2, 0.01, "any", "all"])))
            continue
        paths = [p for p in _containers(doc) if p]
        if not paths:
            doc = draw(json_values)
            continue
        path = draw(st.sampled_from(paths))
        parent = _get(doc, path[:-1])
        if kind == "delete":
            del parent[path[-1]]
        elif kind == "set":
            parent[path[-1]] = draw(json_values)
        else:  # set-field: put a plausible key on a container
            holder = _get(doc, path)
            if isinstance(holder, dict):
                holder[draw(st.sampled_from(FIELDS))] = draw(json_values)
    return doc


def _must_be_flownb_error(doc: Any, via_load: bool = False) -> None:
    try:
        bp = flownb.load(doc) if via_load else flownb.Blueprint.from_dict(doc)
    except flownb.FlownbError:
        return
    try:
        result = run_with_timeout(bp, timeout=10)
    except flownb.FlownbError:
        return
    assert result.status in ("succeeded", "failed"), result
    if result.status == "failed":
        assert result.error and result.error.get("message"), result.error


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_values(doc: Any) -> None:
    _must_be_flownb_error(doc)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({"id": st.one_of(st.text(max_size=5), json_values),
                              "nodes": st.lists(st.one_of(
                                  st.fixed_dictionaries({"id": st.sampled_from(["a", "b", "c"]),
                                                         "uses": st.sampled_from(SAFE_USES)},
                                                        optional={"params": json_values,
                                                                  "config": json_values,
                                                                  "inputs": json_values}),
                                  json_values), max_size=4)},
                             optional={"edges": st.lists(st.one_of(
                                 st.fixed_dictionaries({"source": st.sampled_from(["a", "b", "c"]),
                                                        "target": st.sampled_from(["a", "b", "c"])},
                                                       optional={"action": json_values,
                                                                 "condition": json_values}),
                                 json_values), max_size=4),
                                 "metadata": json_values}))
def test_blueprint_shaped_documents(doc: Any) -> None:
    _must_be_flownb_error(doc)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_blueprints())
def test_mutated_valid_blueprint(doc: Any) -> None:
    _must_be_flownb_error(doc)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_blueprints(GRAPH_MUTATION))
def test_graph_mutations_of_a_valid_blueprint(doc: Any) -> None:
    """Extra edges (cycles included), other node types, fallbacks, guards: lint or run, no crash."""
    _must_be_flownb_error(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60),
                 st.text(alphabet='{}[]":,- \nidnoesuab0123', max_size=80),
                 json_values.map(json.dumps)))
def test_arbitrary_text_through_load(text: str) -> None:
    if text.strip() in (".", "..", "/") or text.startswith(("/", "~")):
        return  # real paths on this machine, not documents
    _must_be_flownb_error(text, via_load=True)
