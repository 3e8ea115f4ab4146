"""The subflow bundle of a run: every blueprint its subflow/map nodes may start, by id.

Why a module: the client stores a run's bundle (``DistributedExecutor._bundle``) and a worker
starting a child run gives the child only the part of it the child's own blueprint can reach.
A child that starts no subflow then carries no bundle at all: its meta stays under Redis's
compact-hash limits (a 130-byte bundle turned a 270-byte meta into a 930-byte one) and its
``START`` and end hold and release one blueprint, not the parent's whole set. One walk for both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..core.blueprint import Blueprint
from ..core.registry import Registry
from .codec import loads

STRUCTURAL = ("subflow", "map")


def reachable(bp: Blueprint, registry: Registry) -> Iterator[tuple[str, Blueprint]]:
    """``(id, blueprint)`` of every blueprint ``bp``'s subflow/map nodes may start, nested
    ones included, each once (a missing one raises the registry's error naming the node)."""
    seen: set[str] = set()
    todo = [bp]
    while todo:
        cur = todo.pop()
        for n in cur.nodes:
            if n.uses not in STRUCTURAL:
                continue
            bid = n.params.get("blueprintId") or n.params.get("blueprint_id") or n.params.get("blueprint")
            if not bid or str(bid) in seen:
                continue
            seen.add(str(bid))
            child = registry.get_blueprint(str(bid), node_id=n.id)
            yield str(bid), child
            todo.append(child)


def meta_bundle(meta: Mapping[str, str]) -> dict[str, str]:
    """A run's bundle (id -> digest) from its meta: one ``b:<id>`` field per blueprint, as
    ``START`` writes it (short values keep the meta hash compact), or the ``bundle`` JSON of a
    run started by an older flownb."""
    out = {k[2:]: v for k, v in meta.items() if k.startswith("b:")}
    if not out and meta.get("bundle"):
        old = loads(meta["bundle"], what="bundle")
        out = {str(k): str(v) for k, v in old.items()} if isinstance(old, dict) else {}
    return out


def child_bundle(bp: Blueprint, bundle: Mapping[str, str], registry: Registry) -> dict[str, str]:
    """The part of a parent's ``bundle`` (id -> digest) a child run of ``bp`` can reach."""
    if not bundle or not any(n.uses in STRUCTURAL for n in bp.nodes):
        return {}
    return {bid: bundle[bid] for bid, _ in reachable(bp, registry) if bid in bundle}


__all__ = ["child_bundle", "meta_bundle", "reachable"]
