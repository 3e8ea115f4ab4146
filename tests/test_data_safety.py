"""Conditions read JSON data only, run data is stored as standard JSON, extreme config values are
refused at load (issue 11.15)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

import flownb
from flownb.core.conditions import compile_condition
from flownb.core.errors import BlueprintError, ConditionError, FlownbError
from flownb.core.jsondata import JSONDataError, dumps


class Spy:
    """A user object whose code must never run inside a condition."""

    calls: ClassVar[list[str]] = []

    def __len__(self) -> int:
        Spy.calls.append("__len__")
        return 3

    @property
    def level(self) -> int:
        Spy.calls.append("level")
        return 4

    @property
    def bad(self) -> int:
        Spy.calls.append("bad")
        raise ValueError("property blew up")


class UserMapping(Mapping[str, Any]):
    def __getitem__(self, k: str) -> Any:
        Spy.calls.append("__getitem__")
        return 1

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])

    def __len__(self) -> int:
        Spy.calls.append("__len__")
        return 1


class SneakyDict(dict):  # type: ignore[type-arg]
    def get(self, *a: Any) -> Any:
        Spy.calls.append("get")
        return "overridden"


def _gen() -> Iterator[int]:
    yield 1


VALUES: dict[str, Any] = {"gen": _gen(), "mod": os, "spy": Spy(), "um": UserMapping(),
                          "sneaky": SneakyDict(x=5), "fn": print}


@pytest.fixture(autouse=True)
def _no_calls() -> Iterator[None]:
    Spy.calls.clear()
    yield
    assert Spy.calls == [], f"user code ran inside a condition: {Spy.calls}"


@pytest.mark.parametrize("text", [
    "gen.gi_frame.f_globals", "gen.gi_frame", "mod.environ.HOME", "mod.path.sep == '/'",
    "len(spy) == 3", "spy.level == 4", "spy.bad == 1", "um.a == 1", "len(um) == 1",
    "exists(fn)", "str(spy) == ''", "spy == spy",
])
def test_conditions_read_no_attribute_of_any_object(text: str) -> None:
    with pytest.raises(ConditionError, match="is not JSON data") as info:
        compile_condition(text, where="edges[2].condition").evaluate(VALUES.__getitem__)
    assert info.value.path == "edges[2].condition" and repr(text) in str(info.value)


def test_dict_subclasses_are_read_as_plain_dicts() -> None:
    assert compile_condition("sneaky.x == 5").evaluate(VALUES.__getitem__)


def _run(output: Any, condition: str) -> flownb.RunResult:
    reg = flownb.Registry()
    reg.add("make", lambda ctx: output)
    reg.add("noop", lambda ctx: None)
    bp = flownb.Blueprint.from_dict({"id": "cond", "nodes": [
        {"id": "a", "uses": "make"}, {"id": "b", "uses": "noop"}],
        "edges": [{"source": "a", "target": "b", "condition": condition}]})
    # the JSON check is off: conditions must stay safe for objects that never leave the process
    return flownb.run(bp, registry=reg, raise_on_error=False, check_json="off")


def test_a_raising_property_fails_the_run_with_a_condition_error() -> None:
    res = _run(Spy(), "output.bad == 1")
    assert res.status == "failed" and res.error is not None
    assert res.error["type"] == "ConditionError"
    assert "edges[0].condition" in str(res.error) and "not JSON data" in res.error["message"]


def test_a_deep_value_fails_the_run_with_a_condition_error() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    res = _run(deep, "str(output) != ''")
    assert res.status == "failed" and res.error is not None
    assert res.error["type"] == "ConditionError"
    assert "nested too deeply" in res.error["message"]


def test_views_of_the_run_state_still_work() -> None:
    reg = flownb.Registry()
    reg.add("make", lambda ctx: (ctx.state.set("tier", "gold"), {"n": 2})[1])
    reg.add("noop", lambda ctx: "went")
    bp = flownb.Blueprint.from_dict({"id": "views", "nodes": [
        {"id": "a", "uses": "make"}, {"id": "b", "uses": "noop"}],
        "edges": [{"source": "a", "target": "b", "condition":
                   "state.tier == 'gold' and state._outputs.a.n == 2 and len(state) == 1"}]})
    assert flownb.run(bp, registry=reg).outputs["b"] == "went"


# -- strict JSON for stored data ------------------------------------------------------------------

@pytest.mark.parametrize("value, fragment", [
    ({"score": math.nan}, "value['score'] is NaN or infinite"),
    ([1, {"x": -math.inf}], "value[1]['x'] is NaN or infinite"),
    ({"m": {1: "a", "1": "b"}}, "value['m'] has the keys 1 and '1'"),
    ({True: 1, "true": 2}, "the same key 'true' in JSON"),
    ({None: 1, "null": 2}, "the same key 'null' in JSON"),
    ({1.5: 1, "1.5": 2}, "the same key '1.5' in JSON"),
    ({"f": print}, "not JSON-serialisable"),
])
def test_strict_dumps_refuses_what_json_would_change(value: Any, fragment: str) -> None:
    with pytest.raises(JSONDataError) as info:
        dumps(value)
    assert fragment in info.value.message and isinstance(info.value, FlownbError)


def test_strict_dumps_keeps_ordinary_data() -> None:
    assert dumps({"a": [1, 2.5, None, True, "é"], 3: {"x": {}}}) == \
        '{"a":[1,2.5,null,true,"é"],"3":{"x":{}}}'


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind, fragment", [
    ("nan", "output['score'] is NaN or infinite"), ("inf", "output['score'] is NaN or infinite"),
    ("colliding", "has the keys 1 and '1'"), ("state-nan", "is NaN or infinite"),
])
def test_distributed_output_that_json_would_change_fails_the_run(
        kind: str, fragment: str, module_workers: Any, tmp_path: Path) -> None:
    from flownb.distributed.client import DistributedExecutor

    ex = DistributedExecutor(module_workers.url)
    marker = tmp_path / "executions"
    bp = flownb.Blueprint.from_dict({"id": f"odd-{kind}", "nodes": [
        {"id": "a", "uses": "dist-odd-value", "params": {"kind": kind, "marker": str(marker)}},
        {"id": "b", "uses": "dist-mark"}], "edges": [{"source": "a", "target": "b"}]})
    res = ex.submit(bp).result(timeout=60, raise_on_error=False)
    assert res.status == "failed" and res.error is not None, res
    assert res.error["node_id"] == "a"
    assert "b" not in res.outputs
    assert fragment in res.error["message"], res.error
    assert len(marker.read_text().splitlines()) == 1  # failed once: not retried as a lost worker


# -- extreme config values --------------------------------------------------------------------------

@pytest.mark.parametrize("config, fragment", [
    ({"timeout": "1e400"}, "config.timeout_s: input should be a finite number"),
    ({"timeout_s": 1e308}, "config.timeout_s: input should be less than or equal to 604800"),
    ({"retryDelay": 1e308}, "config.retry_delay_s: input should be less than or equal to 86400"),
    ({"retry_delay_s": -1}, "config.retry_delay_s: input should be greater than or equal to 0"),
    ({"max_retry_delay_s": math.inf}, "config.max_retry_delay_s: input should be a finite number"),
    ({"timeout_s": -5}, "config.timeout_s: input should be greater than 0"),
    ({"maxRetries": "1e400"}, "config.retries"),
    ({"backoff": math.nan}, "config.backoff: input should be a finite number"),
    ({"max_visits": 10**12}, "config.max_visits: input should be less than or equal to 1000000"),
])
def test_extreme_config_values_are_refused_at_load(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BlueprintError) as info:
        flownb.Blueprint.from_dict({"id": "x", "nodes": [{"id": "a", "uses": "noop", "config": config}]})
    assert fragment in str(info.value) and "nodes[0] (id 'a')" in str(info.value)


@pytest.mark.parametrize("doc, fragment", [
    ("params: {x: .nan}", "params['x'] is NaN or infinite"),
    ("params: {x: [1, -.inf]}", "params['x'][1] is NaN or infinite"),
    ("params: {m: {1: a, '1': b}}", "params['m'] has the keys 1 and '1'"),
])
def test_params_that_json_would_change_are_refused_at_load(doc: str, fragment: str) -> None:
    with pytest.raises(BlueprintError) as info:
        flownb.Blueprint.from_yaml(f"id: x\nnodes:\n  - id: a\n    uses: noop\n    {doc}\n")
    assert fragment in str(info.value)


def test_events_of_a_deep_or_unprintable_output_do_not_crash_the_run() -> None:
    class BadRepr:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    for value, shown in ((deep, "<list nested too deeply to show>"),
                         (BadRepr(), "<BadRepr: repr() raised ValueError>")):
        reg = flownb.Registry()
        reg.add("make", lambda ctx, v=value: v)
        seen: list[flownb.Event] = []
        bp = flownb.Blueprint.from_dict({"id": "deep", "nodes": [{"id": "a", "uses": "make"}]})
        res = flownb.run(bp, registry=reg, on_event=seen.append, raise_on_error=False,
                         check_json="off")  # objects that stay in this process
        assert res.status == "succeeded", res.error
        [done] = [e for e in seen if e.type == "node_succeeded"]
        assert done.data["output"] == shown
