"""Built-in node types, and the input/output rules of ``subflow`` and ``map``.

``subflow`` and ``map`` start child runs, so each executor implements them (in process: child
engines on the same loop; on Redis: child runs whose nodes are real jobs). The *rules* — which
blueprint, what the child receives, what comes back — live here once, for both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.blueprint import Blueprint
from ..core.context import NodeContext, lookup_key, lookup_source
from ..core.errors import FlownbError
from ..core.templates import mapped_inputs, node_template, render_template

if TYPE_CHECKING:
    from ..core.graph import CNode
    from ..core.registry import Registry
    from ..core.result import RunResult


# -- simple node types ---------------------------------------------------------------------------

def noop(ctx: NodeContext) -> None:
    """Does nothing; handy for benchmarks and joins."""
    return None


def passthrough(ctx: NodeContext) -> Any:
    """Returns its input unchanged."""
    return ctx.input


async def sleep(ctx: NodeContext) -> Any:
    """Waits ``params.seconds`` (async: it does not hold a thread), then passes its input on."""
    seconds = float(ctx.params.get("seconds", ctx.params.get("duration_s", 0)))
    await asyncio.sleep(seconds)
    return ctx.input


def set_state(ctx: NodeContext) -> Any:
    """Writes ``params.values`` (a mapping) into the run's state; passes its input on."""
    values = ctx.params.get("values") or {}
    if not isinstance(values, Mapping):
        raise FlownbError("params.values must be a mapping", node_id=ctx.node_id)
    ctx.state.update(values)
    return ctx.input


#: the state key Flowcraft's ``output`` node writes when its params name none
FLOWCRAFT_OUTPUT_KEY = "final_output"


def output(ctx: NodeContext) -> Any:
    """Fills ``params.template`` / ``promptTemplate`` (``{{var}}``) without a model and returns it.

    The variables come from ``params.inputs`` when the node maps them (Flowcraft's form), else
    from the node's input, the state and node outputs. The result is also written to the state
    under ``params.key`` / ``outputKey``; in Flowcraft's form (``promptTemplate``) the default key
    is ``final_output``, as in Flowcraft.
    """
    template = node_template(ctx.params, ("template", "promptTemplate"))
    mapped = mapped_inputs(ctx.params, ctx._read)
    source = ctx.input if mapped is None else mapped
    if template is None:
        value: Any = source
    else:
        value = render_template(str(template), source, ctx._read, node_id=ctx.node_id)
    key = ctx.params.get("key") or ctx.params.get("outputKey")
    if not key and "promptTemplate" in ctx.params:
        key = FLOWCRAFT_OUTPUT_KEY
    if key:
        ctx.state.set(str(key), value)
    return value


def fail(ctx: NodeContext) -> Any:
    """Always raises ``params.message``; for tests and tutorials about failure handling."""
    raise RuntimeError(str(ctx.params.get("message", "failed on purpose")))


# -- subflow ---------------------------------------------------------------------------------------

def subflow_blueprint_id(cn: CNode) -> str:
    p = cn.params
    bid = p.get("blueprintId") or p.get("blueprint_id") or p.get("blueprint")
    if not isinstance(bid, str) or not bid:
        raise FlownbError("a subflow node needs params.blueprintId (the id of a registered "
                          "blueprint)", node_id=cn.id)
    return bid


def subflow_inputs(params: Mapping[str, Any], input_: Any, read: Callable[[str], Any]) -> dict[str, Any]:
    """``params.inputs = {child_key: parent_key}``; without it the node's input (a mapping) or
    ``{"input": input}``."""
    mapping = params.get("inputs")
    if isinstance(mapping, Mapping):
        return {str(ck): lookup_source(pk if isinstance(pk, list) else str(pk), read)
                for ck, pk in mapping.items()}
    if isinstance(input_, Mapping):
        return dict(input_)
    return {"input": input_}


def subflow_outputs(params: Mapping[str, Any], res: RunResult) -> dict[str, Any]:
    """``params.outputs = {parent_key: child_key}``: child state keys or child node ids."""
    mapping = params.get("outputs")
    out: dict[str, Any] = {}
    if isinstance(mapping, Mapping):
        for pk, ck in mapping.items():
            ck = str(ck)
            out[str(pk)] = res.outputs[ck] if ck in res.outputs else res.state.get(ck)
    return out


# -- map -------------------------------------------------------------------------------------------

class MapPlan(NamedTuple):
    blueprint: Blueprint
    inputs: list[dict[str, Any]]
    concurrency: int


_SINGLE: dict[str, Blueprint] = {}


def single_node_blueprint(uses: str, params: Mapping[str, Any]) -> Blueprint:
    """The child blueprint of ``map`` over a node type: one node reading its item from state."""
    key = json.dumps([uses, params], sort_keys=True, default=str)
    bp = _SINGLE.get(key)
    if bp is None:
        bp = Blueprint.from_dict({"id": f"map:{uses}", "nodes": [
            {"id": "item", "uses": uses, "params": dict(params), "inputs": "item"}]})
        _SINGLE[key] = bp
    return bp


def map_items(cn: CNode, input_: Any, read: Callable[[str], Any]) -> list[Any]:
    src = cn.params.get("items")
    items = lookup_key(str(src), read) if src is not None else input_
    if isinstance(items, Mapping) and src is None and "items" in items:
        items = items["items"]
    if not isinstance(items, (list, tuple)):
        where = f"params.items {src!r}" if src is not None else "its input"
        raise FlownbError(f"map needs a list to map over; {where} is {type(items).__name__}",
                          node_id=cn.id)
    return list(items)


def map_plan(cn: CNode, input_: Any, read: Callable[[str], Any], registry: Registry) -> MapPlan:
    """What ``map`` runs: ``params.node`` (a node type) or ``params.blueprintId`` per item."""
    p = cn.params
    items = map_items(cn, input_, read)
    uses = p.get("node") or p.get("uses")
    if uses:
        bp = single_node_blueprint(str(uses), p.get("params") or {})
        inputs = [{"item": x, "index": i} for i, x in enumerate(items)]
    else:
        bid = p.get("blueprintId") or p.get("blueprint_id")
        if not bid:
            raise FlownbError("a map node needs params.node (a node type) or params.blueprintId",
                              node_id=cn.id)
        bp = registry.get_blueprint(str(bid), node_id=cn.id)
        inputs = [dict(x) if isinstance(x, Mapping) else {"item": x, "index": i}
                  for i, x in enumerate(items)]
    conc = int(p.get("concurrency", 16))
    return MapPlan(bp, inputs, max(1, conc))
