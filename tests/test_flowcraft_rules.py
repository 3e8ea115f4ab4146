"""Where flownb used to read a Flowcraft file differently from Flowcraft's runtime.

Checked against Flowcraft's source (packages/core/src: ``nodes/subflow.ts``,
``runtime/workflow-logic-handler.ts``): a subflow's ``params.inputs`` reads the context key
first; node-level ``inputs: "x.k"`` reads property ``k`` of node ``x``'s output; a subflow node
with ``params.outputs`` outputs the child's whole final context. The ``all`` join keeps flownb's
rule (``{source: output}``) and lint warns on Flowcraft files that rely on Flowcraft's. Each is
run in process and on real worker processes. The offline fake reads ``[check_for_pii]`` tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Workers

import flownb
from flownb import llm
from flownb.core.blueprint import Blueprint
from flownb.distributed.client import DistributedExecutor
from flownb.llm.fake import FakeLLM
from flownb.core.registry import Registry

DIR = Path(__file__).parent / "flowcraft" / "6.flowcraft-rules"
#: "draft" and "review" are node ids *and* state keys (run inputs) holding other values
INPUTS = {"draft": "from the context", "review": {"verdict_key": "from the state"}}
VERDICT = "verdict on from the context"


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    flownb.load_dir(DIR, registry=reg)
    return reg


def check_rules(res: flownb.RunResult) -> None:
    assert res.status == "succeeded", res.error
    # subflow params.inputs {"text": "draft"}: the state key, not node draft's output
    assert res.outputs["draft"] == "from the draft node"
    assert res.outputs["review"]["text"] == "from the context"
    # params.outputs: the parent's key is written, and the node's output is the child's context
    assert res.state["verdict"] == VERDICT
    assert res.outputs["review"] == {"text": "from the context", "verdict_key": VERDICT,
                                     "_outputs.judge": VERDICT}
    # node-level inputs "review.verdict_key": property of node review's output, not of state
    assert res.outputs["pick"] == VERDICT


def test_flowcraft_rules_in_process(registry: Registry) -> None:
    check_rules(flownb.run(registry.get_blueprint("600"), INPUTS, registry=registry))


def test_flowcraft_rules_on_workers(redis_url: str, workers: Workers, registry: Registry) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url, registry=registry)
    check_rules(ex.submit(registry.get_blueprint("600"), INPUTS).result(timeout=60))


def test_subflow_without_outputs_still_outputs_the_child_output(registry: Registry) -> None:
    bp = Blueprint.from_dict({"id": "602", "nodes": [
        {"id": "s", "uses": "subflow", "params": {"blueprintId": "601", "inputs": {"text": "t"}}}]})
    res = flownb.run(bp, {"t": "x"}, registry=registry)
    assert res.output == "verdict on x"


JOIN: dict[str, Any] = {"id": "700", "nodes": [
    {"id": "a", "uses": "output", "params": {"promptTemplate": "start", "outputKey": "a"}},
    {"id": "b", "uses": "output", "params": {"promptTemplate": "from b", "outputKey": "b"}},
    {"id": "c", "uses": "output", "params": {"promptTemplate": "from c", "outputKey": "c"}},
    {"id": "j", "uses": "passthrough"}],
    "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"},
              {"source": "b", "target": "j"}, {"source": "c", "target": "j"}]}


def _join_warnings(doc: dict[str, Any]) -> list[str]:
    return [p.message for p in Blueprint.from_dict(doc).lint() if p.code == "flowcraft-join-input"]


def test_lint_warns_when_a_flowcraft_join_reads_its_input_without_inputs() -> None:
    [msg] = _join_warnings(JOIN)
    assert "Flowcraft" in msg and '"b", "c"' in msg and "inputs" in msg
    explicit = {**JOIN, "nodes": [*JOIN["nodes"][:3],
                                  {"id": "j", "uses": "passthrough", "inputs": {"value": ["b", "c"]}}]}
    assert _join_warnings(explicit) == []
    any_join = {**JOIN, "nodes": [*JOIN["nodes"][:3],
                                  {"id": "j", "uses": "passthrough", "config": {"joinStrategy": "any"}}]}
    assert _join_warnings(any_join) == []
    flownb_style = {"id": "mine", "nodes": [
        {"id": n["id"], "uses": "passthrough"} for n in JOIN["nodes"]], "edges": JOIN["edges"]}
    assert _join_warnings(flownb_style) == []  # a flownb blueprint: the mapping is documented


def test_join_input_is_the_same_on_both_executors(redis_url: str, workers: Workers) -> None:
    """flownb's rule, kept on purpose: {source: output}, whatever finished last."""
    local = flownb.run(JOIN, {})
    workers.start(1)
    remote = DistributedExecutor(redis_url).submit(JOIN, {}).result(timeout=60)
    assert local.outputs["j"] == remote.outputs["j"] == {"b": "from b", "c": "from c"}


TAGGED: dict[str, Any] = {"id": "800", "nodes": [
    {"id": "check_for_pii", "uses": "llm-condition",
     "params": {"promptTemplate": "[check_for_pii] {{userPost}}", "inputs": {"userPost": "userPost"}}},
    {"id": "check_for_spam", "uses": "llm-condition",
     "params": {"promptTemplate": "[check_for_spam] {{userPost}}", "inputs": {"userPost": "userPost"}}}],
    "edges": []}


@pytest.mark.parametrize(("post", "pii", "spam"), [
    ("What a lovely photo of the mountains, thanks for sharing!", False, False),
    ("Write to me at jane.doe@example.com or call 555-123-4567.", True, False),
    ("BUY NOW!!! Cheap pills, click here: http://cheap-pills.example.biz", False, True)])
def test_fake_reads_flowcraft_task_tags(post: str, pii: bool, spam: bool) -> None:
    llm.configure(fake=FakeLLM())
    res = flownb.run(TAGGED, {"userPost": post})
    assert res.status == "succeeded", res.error
    assert res.outputs == {"check_for_pii": pii, "check_for_spam": spam}
