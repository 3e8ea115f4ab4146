"""Child runs in process: the call behind a ``subflow`` or ``map`` node.

Each child run is a new :class:`~flownb.engine.driver.Engine` on the parent's registry, bus and
cancel token, one level deeper, counted against the root run's limits
(:mod:`flownb.core.limits`). A failed child raises in the parent node — as one
:class:`~flownb.core.errors.LimitExceeded` from the deepest run when a limit was hit — and a
failed ``map`` item cancels its siblings before they recurse further.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.context import NodeContext
from ..core.errors import NodeError
from ..core.graph import CNode
from ..core.limits import LimitExceeded, child_limit_message
from ..core.result import SUCCEEDED, RunResult

if TYPE_CHECKING:
    from .driver import Engine


def structural_call(engine: Engine, cn: CNode, ctx: NodeContext) -> Callable[[Any], Any]:
    """The call of a ``subflow`` / ``map`` node: child runs on their own :class:`Engine`, counted
    against the root run's limits; one failed item cancels its siblings."""
    from . import builtins

    async def call(_: Any) -> Any:
        if cn.uses == "subflow":
            bp = engine.registry.get_blueprint(builtins.subflow_blueprint_id(cn), node_id=cn.id)
            engine._reserve_children(cn, 1)
            child_inputs = builtins.subflow_inputs(cn.params, ctx.input, engine._read)
            res = await engine._child(bp, child_inputs, f"{engine.run_id}/{cn.id}.{ctx.visit}")
            engine._note_child(cn.id, ctx.visit, f"{cn.id}/", res)
            _raise_child(cn, res)
            for k, v in builtins.subflow_outputs(cn.params, res).items():
                ctx.state.set(k, v)
            return res.output
        plan = builtins.map_plan(cn, ctx.input, engine._read, engine.registry)
        engine._reserve_children(cn, len(plan.inputs))
        sem = asyncio.Semaphore(plan.concurrency)

        async def one(i: int, child_inputs: dict[str, Any]) -> Any:
            async with sem:
                r = await engine._child(plan.blueprint, child_inputs,
                                      f"{engine.run_id}/{cn.id}.{ctx.visit}[{i}]")
            engine._note_child(cn.id, ctx.visit, f"{cn.id}[{i}]/", r)
            _raise_child(cn, r, index=i)
            return r.output

        tasks = [asyncio.ensure_future(one(i, x)) for i, x in enumerate(plan.inputs)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:  # one item failed: its siblings must not go on (nor recurse)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    return call


def _raise_child(cn: CNode, res: RunResult, index: int | None = None) -> None:
    if res.status == SUCCEEDED:
        return
    err = res.error or {}
    limit = child_limit_message(err)
    if limit is not None:  # one message from the deepest run, not one nesting per level
        raise LimitExceeded(limit, node_id=cn.id)
    which = f"item {index}" if index is not None else "child run"
    raise NodeError(f"{which} {res.run_id} {res.status}: {err.get('node_id')!r} "
                    f"{err.get('type', '')}: {err.get('message', '')}", node_id=cn.id,
                    traceback=err.get("traceback", ""))


__all__ = ["structural_call"]
