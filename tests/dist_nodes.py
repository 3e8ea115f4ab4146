"""Node types for the distributed resilience tests (imported by real worker processes).

Side effects that must be counted across processes (how often a node really ran) go to files
named by ``params.marker``: process memory would die with a killed worker.
"""

from __future__ import annotations

import os
import time
from typing import Any

import flownb


def _mark(ctx: flownb.NodeContext) -> None:
    marker = ctx.params.get("marker")
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{ctx.node_id} {ctx.visit} {os.getpid()}\n")


@flownb.node("dist-slow")
def slow(ctx: flownb.NodeContext) -> Any:
    """Writes a marker line, then sleeps params.seconds (long enough to be killed mid-node)."""
    _mark(ctx)
    pidfile = ctx.params.get("pidfile")
    if pidfile:
        with open(pidfile, "w") as fh:
            fh.write(str(os.getpid()))
    time.sleep(float(ctx.params.get("seconds", 1.0)))
    return {"slept": ctx.params.get("seconds", 1.0), "node": ctx.node_id}


@flownb.node("dist-mark")
def mark(ctx: flownb.NodeContext) -> Any:
    _mark(ctx)
    return ctx.node_id


@flownb.node("dist-read")
def read(ctx: flownb.NodeContext) -> Any:
    """Reads state key params.key (to test corrupt fields)."""
    return ctx.state.get(str(ctx.params["key"]))


@flownb.node("dist-big-state")
def big_state(ctx: flownb.NodeContext) -> Any:
    """Writes params.n keys of params.size bytes each (per-hop cost vs state size)."""
    blob = "x" * int(ctx.params.get("size", 1000))
    for i in range(int(ctx.params.get("n", 1000))):
        ctx.state.set(f"k{i}", blob)
    return None


@flownb.node("dist-odd-value")
def odd_value(ctx: flownb.NodeContext) -> Any:
    """Returns a value standard JSON cannot hold unchanged: params.kind is nan, inf, colliding,
    or state-nan (written to the state)."""
    _mark(ctx)
    kind = str(ctx.params.get("kind"))
    if kind == "colliding":
        return {"scores": {1: "int key", "1": "str key"}}
    if kind.startswith("state-"):  # the same, written to the run's state instead
        ctx.state.set("score", float(kind[len("state-"):]))
        return None
    return {"score": float(kind)}
