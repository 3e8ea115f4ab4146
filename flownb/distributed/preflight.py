"""Checks ``submit`` makes before a run is stored: will a worker process be able to run it?

A worker process finds a node type by importing the module that registered it. A function
defined in ``__main__`` — a script, or a notebook cell — lives in no module a worker can import,
so without this check the run fails on the worker with "unknown node type 'classify'", far from
the cell that defined it. Here the client names every such node at once, with the three ways
out, before anything is written to Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from ..core.blueprint import Blueprint
from ..core.errors import ExecutorError, FlownbError
from ..core.registry import STRUCTURAL, Registry

__all__ = ["MainDefined", "main_defined_error", "main_defined_nodes"]


class MainDefined(NamedTuple):
    blueprint_id: str
    node_id: str
    uses: str
    qualname: str


def _node_types(bp: Blueprint, registry: Registry) -> Iterator[tuple[str, str, str]]:
    """(blueprint id, node id, node type) of every node a run of ``bp`` may execute, including
    the nodes of its subflow/map blueprints and a map's ``params.node``."""
    seen: set[str] = set()
    todo = [bp]
    while todo:
        cur = todo.pop()
        if cur.id in seen:
            continue
        seen.add(cur.id)
        for n in cur.nodes:
            if n.uses not in STRUCTURAL:
                yield cur.id, n.id, n.uses
                continue
            inner = n.params.get("node") or n.params.get("uses")
            if n.uses == "map" and inner:
                yield cur.id, n.id, str(inner)
            bid = n.params.get("blueprintId") or n.params.get("blueprint_id") or n.params.get("blueprint")
            if bid:
                try:
                    todo.append(registry.get_blueprint(str(bid), node_id=n.id))
                except FlownbError:
                    continue  # reported by the bundle upload, with its own message


def _functions(impl: Any) -> Iterator[Any]:
    for phase in (impl.prep, impl.exec, impl.post):
        if phase is not None:
            yield phase


def main_defined_nodes(bp: Blueprint, registry: Registry) -> list[MainDefined]:
    """Nodes of ``bp`` whose implementation was defined in ``__main__``."""
    found: list[MainDefined] = []
    for bid, node_id, uses in _node_types(bp, registry):
        try:
            impl = registry.get(uses, node_id=node_id)
        except FlownbError:
            continue  # unknown here: the workers may import it (lint reports it otherwise)
        for fn in _functions(impl):
            if getattr(fn, "__module__", None) == "__main__":
                name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", uses)
                found.append(MainDefined(bid, node_id, uses, f"__main__.{name}"))
                break
    return found


def main_defined_error(bp: Blueprint, found: list[MainDefined]) -> ExecutorError:
    listed = ", ".join(
        f"node {f.node_id!r} ({f.uses!r} = {f.qualname}"
        + (f", in blueprint {f.blueprint_id!r})" if f.blueprint_id != bp.id else ")")
        for f in found)
    return ExecutorError(
        f"{listed}: defined in __main__ (this script or a notebook cell), which a worker process "
        "cannot import. Fix one of: (1) in a notebook, put the node functions in a cell that "
        "starts with %%flownb_module MODULE_NAME (after %load_ext flownb.notebook); LocalCluster "
        "workers import it; (2) run the workers as threads of this process: "
        "LocalCluster(mode=\"thread\"); (3) move them to a module file and have the workers "
        "import it: LocalCluster(modules=[\"my_nodes\"]) or flownb worker --import my_nodes",
        path=f"blueprint {bp.id!r}")
