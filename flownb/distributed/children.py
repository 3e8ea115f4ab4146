"""Child runs on Redis: the ``subflow`` / ``map`` half of a visit on a worker.

The parent visit starts its child runs (each a run like any other, its nodes jobs on the queue),
registers them with ``WAIT_CHILDREN`` and drops its lease: no worker waits. The last child to
finish re-queues the parent visit, which then commits the children's outputs
(:func:`resume_parent`) or fails with the first failed child's error.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..engine import builtins
from ..core.errors import FlownbError
from ..core.blueprint import Blueprint
from ..core.graph import CNode, Graph, compile_graph
from ..core.limits import LimitExceeded, child_limit_message
from ..core.transforms import transformed_input
from .bundles import child_bundle
from .jobs import enqueue_items
from .keys import lease_member
from .reads import Reader
from .runs import _NO_INPUT, Next, _err, _Run

if TYPE_CHECKING:
    from .execute import NodeRunner


async def start_children(runner: NodeRunner, run: _Run, cn: CNode, visit: int, item: dict[str, Any],
                         input_: Any = None) -> None:
    """Start a subflow/map node's child runs (their nodes are jobs like any other); the parent
    visit waits for them (``WAIT_CHILDREN``) and is resumed by the last one to finish.

    The blocking store calls (reads of the inputs, the limits, starting each child run) run in a
    thread: never on the worker's loop, where they would hold up every visit in flight."""
    st = runner.store
    reader = Reader(st, run.run_id)

    def plan() -> tuple[Any, Blueprint, list[Any], Graph]:
        inp = input_
        if inp is None:
            inp = runner._input(run, cn, item, reader, _NO_INPUT)
            if cn.transforms is not None:
                inp = transformed_input(cn, list(item.get("s") or []), inp, reader)
        if cn.uses == "subflow":
            bp = run.registry.get_blueprint(builtins.subflow_blueprint_id(cn), node_id=cn.id)
            child_inputs = [builtins.subflow_inputs(cn.params, inp, reader)]
        else:
            mp = builtins.map_plan(cn, inp, reader, run.registry)
            bp, child_inputs = mp.blueprint, mp.inputs
        graph = compile_graph(bp, run.registry)
        st.reserve_children(run.run_id, cn.id, visit, len(child_inputs))  # flownb.core.limits
        return inp, bp, child_inputs, graph

    try:
        input_, bp, child_inputs, graph = await asyncio.to_thread(plan)
    except FlownbError as exc:
        await runner._failed(run.run_id, run.digest, _err(cn.id, run.run_id, exc))
        return
    base = f"{run.run_id}.{cn.id}.{visit}"
    child_ids = [f"{base}.{i}" for i in range(len(child_inputs))]
    if not child_ids:  # not inline: a successor claimed for this worker here was never run
        await runner._commit(run, cn, visit, input_, [], None, {}, {"status": "succeeded", "visits": visit,
                                                           "attempts": 1, "worker": runner.name},
                             inline=False)
        return
    await runner._flush_events()  # the run's events so far, before "children"

    def start() -> FlownbError | None:
        st.wait_children(run.run_id, run.digest, cn.id, visit, child_ids)
        st.add_event(run.run_id, "custom", cn.id, {"name": "children", "count": len(child_ids),
                                                   "blueprint_id": bp.id})
        parent = f"{run.run_id}|{cn.id}|{visit}"
        try:
            bundle = child_bundle(bp, run.bundle, run.registry)  # what the child can reach, only
        except FlownbError as exc:
            return exc
        for cid, inputs in zip(child_ids, child_inputs):
            try:
                ready = st.start_run(cid, bp, graph, inputs, parent=parent, bundle=bundle)
            except FlownbError as exc:
                if "already exists" in exc.message:
                    continue
                return exc
            items = [list(x) for x in ready]  # a subflow's one child: run here if it can
            if len(child_ids) > 1 or not runner.take_here(cid, items):
                enqueue_items(runner.queue, cid, items, keys=st.keys)
        st.r.zrem(st.keys.leases, lease_member(run.run_id, cn.id, visit))
        return None

    failed = await asyncio.to_thread(start)
    if failed is not None:
        await runner._failed(run.run_id, run.digest, _err(cn.id, run.run_id, failed))


async def resume_parent(runner: NodeRunner, run: _Run, cn: CNode, visit: int, item: dict[str, Any]) -> Next:
    """The parent visit again, once its child runs ended: commit their outputs, or fail with the
    first failed child's error (a limit's message from the deepest run as it is)."""
    st = runner.store
    children = list(item.get("ch") or [])
    if item.get("cf"):
        child = await asyncio.to_thread(st.load_result, str(item["cf"]))
        cerr = child.error or {}
        err = {"node_id": cn.id, "run_id": run.run_id, "attempt": 1, "type": "ChildRunFailed",
               "message": f"child run {child.run_id} {child.status}: node "
                          f"{cerr.get('node_id')!r} {cerr.get('type', '')}: {cerr.get('message', '')}",
               "traceback": cerr.get("traceback", "")}
        limit = child_limit_message(cerr)
        if limit is not None:  # the deepest run's limit message, not one nesting per level
            err.update(type=LimitExceeded.__name__, message=limit)
        await runner._failed(run.run_id, run.digest, err, event={"attempt": 1, "error": err})
        return None
    results = await asyncio.to_thread(lambda: [st.load_result(c) for c in children])
    writes: dict[str, Any] = {}
    if cn.uses == "subflow":
        output = builtins.subflow_output(cn.params, results[0])
        writes = builtins.subflow_outputs(cn.params, results[0])
    else:
        output = [r.output for r in results]
    started = min((r.started_at for r in results), default=time.time())
    return await runner._commit(run, cn, visit, None, output, None, writes, {
        "status": "succeeded", "visits": visit, "attempts": 1, "worker": runner.name,
        "duration_s": max(0.0, time.time() - started), "finished_at": time.time()})


__all__ = ["resume_parent", "start_children"]
