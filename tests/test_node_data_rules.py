"""What runs in process runs on workers (issue 17.4, 17.5): a sync node that returns an awaitable
is awaited, and a node output or state write that is not JSON data fails with the same error, on
both executors — real ``flownb worker`` processes for the distributed side."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import awaitable_nodes  # noqa: F401  (registers the aw-* node types in this process too)
import pytest
import redis

import flownb
from flownb.core.jsondata import JSONDataWarning

pytestmark = pytest.mark.timeout(120)

EXECUTORS = ["process", "workers"]


def _run(executor: str, url: str, bp: flownb.Blueprint, inputs: dict[str, Any] | None = None,
         **kw: Any) -> flownb.RunResult:
    if executor == "process":
        return flownb.run(bp, inputs, raise_on_error=False, **kw)
    from flownb.distributed.client import DistributedExecutor

    return DistributedExecutor(url).submit(bp, inputs).result(timeout=60, raise_on_error=False)


def _counter(url: str) -> tuple[list[str], redis.Redis]:
    key = f"test:count:{uuid.uuid4().hex[:8]}"
    return [url, key], redis.Redis.from_url(url)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sync_node_returning_a_coroutine_is_awaited_once(executor: str, module_workers: Any) -> None:
    url = module_workers.url
    counter, r = _counter(url)
    bp = flownb.Blueprint.from_dict({"id": f"aw-chain-{executor}", "nodes": [
        {"id": "a", "uses": "aw-double", "params": {"counter": counter}},
        {"id": "b", "uses": "passthrough"}], "edges": [{"source": "a", "target": "b"}]})
    res = _run(executor, url, bp, {"n": 21})
    assert res.status == "succeeded", res.error
    assert res.outputs["a"] == {"n": 42, "attempt": 1}
    assert res.outputs["b"] == {"n": 42, "attempt": 1}
    assert int(r.get(counter[1]) or 0) == 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sync_wrapper_around_the_async_llm_node(executor: str, module_workers: Any) -> None:
    bp = flownb.Blueprint.from_dict({"id": f"aw-llm-{executor}", "nodes": [
        {"id": "summary", "uses": "aw-llm", "params": {"prompt": "Summarise: {{text}}"}}]})
    res = _run(executor, module_workers.url, bp, {"text": "flownb awaits what a node returns"})
    assert res.status == "succeeded", res.error
    out = res.outputs["summary"]
    assert isinstance(out, str) and "flownb awaits" in out, out
    direct = flownb.run(flownb.Blueprint.from_dict({"id": "direct", "nodes": [
        {"id": "summary", "uses": "llm-process", "params": {"prompt": "Summarise: {{text}}"}}]}),
        {"text": "flownb awaits what a node returns"})
    assert out == direct.output  # the wrapper answers exactly as the built-in node


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_failure_inside_the_awaited_coroutine_is_retried(executor: str, module_workers: Any) -> None:
    url = module_workers.url
    counter, r = _counter(url)
    bp = flownb.Blueprint.from_dict({"id": f"aw-flaky-{executor}", "nodes": [
        {"id": "f", "uses": "aw-flaky", "params": {"counter": counter},
         "config": {"retries": 1}}]})
    res = _run(executor, url, bp)
    assert res.status == "succeeded", res.error
    assert res.output == "ok on attempt 2"
    assert res.nodes["f"].attempts == 2
    assert "sync_part_1" not in res.state and res.state["sync_part_2"] is True
    assert int(r.get(counter[1]) or 0) == 2


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_awaited_coroutine_keeps_the_nodes_timeout(executor: str, module_workers: Any) -> None:
    bp = flownb.Blueprint.from_dict({"id": f"aw-slow-{executor}", "nodes": [
        {"id": "s", "uses": "aw-slow", "params": {"seconds": 30}, "config": {"timeout_s": 0.3}}]})
    res = _run(executor, module_workers.url, bp)
    assert res.status == "failed" and res.error is not None
    assert res.error["type"] == "NodeTimeout" and res.error["node_id"] == "s", res.error
    assert res.duration_s < 10


@pytest.mark.parametrize("kind, fragment", [
    ("datetime", "output is not JSON-serialisable (Object of type datetime"),
    ("set", "output is not JSON-serialisable (Object of type set"),
    ("object", "output is not JSON-serialisable (Object of type Thing"),
    ("nan", "output['score'] is NaN or infinite"),
])
def test_non_json_output_fails_alike_in_process_and_on_workers(
        kind: str, fragment: str, module_workers: Any) -> None:
    bp = flownb.Blueprint.from_dict({"id": f"odd-{kind}", "nodes": [
        {"id": "a", "uses": "aw-odd", "params": {"kind": kind}},
        {"id": "b", "uses": "passthrough"}], "edges": [{"source": "a", "target": "b"}]})
    here = _run("process", module_workers.url, bp)
    there = _run("workers", module_workers.url, bp)
    for res in (here, there):
        assert res.status == "failed" and res.error is not None, res
        assert res.error["node_id"] == "a" and res.error["type"] == "JSONDataError", res.error
        assert fragment in res.error["message"], res.error
        assert "b" not in res.outputs and "a" not in res.outputs
    # word for word the worker's message; in process it adds how to downgrade it
    assert here.error is not None and there.error is not None
    assert here.error["message"].startswith(there.error["message"])
    assert "FLOWNB_CHECK_JSON=warn" in here.error["message"]


def test_non_json_state_write_fails_alike(module_workers: Any) -> None:
    bp = flownb.Blueprint.from_dict({"id": "odd-state", "nodes": [
        {"id": "a", "uses": "aw-odd", "params": {"kind": "set", "state": True}}]})
    here = _run("process", module_workers.url, bp)
    there = _run("workers", module_workers.url, bp)
    assert here.error is not None and there.error is not None
    assert "state['x'] is not JSON-serialisable (Object of type set" in there.error["message"]
    assert here.error["message"].startswith(there.error["message"])
    assert "x" not in here.state


def test_warn_mode_lets_the_in_process_run_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    bp = flownb.Blueprint.from_dict({"id": "odd-warn", "nodes": [
        {"id": "a", "uses": "aw-odd", "params": {"kind": "datetime"}},
        {"id": "b", "uses": "passthrough"}], "edges": [{"source": "a", "target": "b"}]})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = flownb.run(bp, check_json="warn")
    assert res.outputs["b"].year == 2026
    told = [str(w.message) for w in seen if w.category is JSONDataWarning]
    assert len(told) == 2 and told[0].startswith("node 'a': output is not JSON-serialisable "
                                                 "(Object of type datetime"), told
    assert told[0].endswith("(this run goes on in process because check_json='warn'; on workers "
                            "the node fails)")
    assert told[1].startswith("node 'b': output is not JSON-serialisable")  # passed on as is
    monkeypatch.setenv("FLOWNB_CHECK_JSON", "warn")  # the environment says it for every run
    with pytest.warns(JSONDataWarning):
        assert flownb.run(bp).status == "succeeded"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert flownb.run(bp, check_json="off").status == "succeeded"
        # the argument wins over the environment
        with pytest.raises(flownb.RunFailed, match="JSONDataError"):
            flownb.run(bp, check_json="raise")
    monkeypatch.setenv("FLOWNB_CHECK_JSON", "loud")
    with pytest.raises(flownb.FlownbError, match="FLOWNB_CHECK_JSON='loud' is not a check mode; "
                                                 "use one of raise, warn, off"):
        flownb.run(bp)


def test_subflow_child_runs_check_too() -> None:
    reg = flownb.Registry()
    reg.register("when", lambda ctx: {"at": __import__("datetime").date(2026, 1, 1)})
    child = flownb.Blueprint.from_dict({"id": "child", "nodes": [{"id": "c", "uses": "when"}]})
    reg.add_blueprint(child)
    parent = flownb.Blueprint.from_dict({"id": "parent", "nodes": [
        {"id": "s", "uses": "subflow", "params": {"blueprint": "child"}}]})
    res = flownb.run(parent, registry=reg, raise_on_error=False)
    assert res.status == "failed" and res.error is not None
    assert "output['at'] is not JSON-serialisable" in res.error["message"], res.error
    assert flownb.run(parent, registry=reg, check_json="off").status == "succeeded"


def test_plain_json_data_passes_untouched() -> None:
    from flownb.core.jsondata import _plain, check_node_data

    data = {"a": [1, 2.5, None, True, "é", {"b": (1, 2)}], "c": {}}
    assert _plain(data)
    check_node_data(data, {"k": [1, {"x": "y"}]}, "raise")
    # what the fast walk cannot vouch for is judged by the encoder: int keys that do not collide
    # and str subclasses are fine on workers, so they are fine here
    class Name(str):
        pass

    check_node_data({1: "a", Name("n"): Name("v")}, {}, "raise")
    with pytest.raises(flownb.FlownbError, match="has the keys 1 and '1'"):
        check_node_data({1: "a", "1": "b"}, {}, "raise")


def test_non_json_inputs_are_refused_alike_before_the_run(redis_url: str) -> None:
    import datetime

    from flownb.distributed.client import DistributedExecutor
    from flownb.core.jsondata import JSONDataError

    bp = flownb.Blueprint.from_dict({"id": "odd-input", "nodes": [{"id": "a", "uses": "passthrough"}]})
    inputs = {"text": "hi", "when": datetime.date(2026, 12, 4)}
    with pytest.raises(JSONDataError) as here:
        flownb.run(bp, inputs)
    with pytest.raises(JSONDataError) as there:
        DistributedExecutor(redis_url).submit(bp, inputs)
    assert there.value.message.startswith("inputs['when'] is not JSON-serialisable (Object of type "
                                          "date is not JSON serializable)")
    assert here.value.message.startswith(there.value.message)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert flownb.run(bp, inputs, check_json="warn").output == inputs
    told = [str(w.message) for w in seen if w.category is JSONDataWarning]
    assert told[0].startswith("inputs['when'] is not JSON-serialisable") and \
        told[0].endswith("submitting it to workers fails)"), told
