"""Lint for Flowcraft files that rely on a rule flownb deliberately does differently.

flownb follows Flowcraft's runtime where the two can agree (see the README's Flowcraft section).
One rule it keeps on purpose: a node joining several edges (``join: all``, Flowcraft's default
``joinStrategy``) with no ``inputs`` gets ``{source id: output}`` of the sources that ran.
Flowcraft gives it the output of whichever predecessor *finished last* — each finishing
predecessor overwrites ``_inputs.<node>`` — so its input depends on timing, and after exclusive
branches it is the bare output of the branch that ran. A Flowcraft-style file whose join reads
its input that way would get a different shape here, so lint says so (``flowcraft-join-input``,
a warning) and names the fix: an explicit ``inputs``, which means the same on both engines.

Only Flowcraft-style blueprints are checked (``promptTemplate``, ``blueprintId``, ``outputKey``
params, ``_`` compiler metadata, a numeric id): in a flownb blueprint the mapping is the
documented input of a join, not a surprise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .blueprint import Blueprint
    from .graph import Graph
    from .lint import Problem

#: params only Flowcraft's spelling uses (flownb's own are ``prompt``, ``key``, ``blueprint_id``)
_FLOWCRAFT_PARAMS = frozenset({"promptTemplate", "blueprintId", "outputKey"})


def flowcraft_style(bp: Blueprint) -> bool:
    """Does ``bp`` look written for Flowcraft (its param spellings, metadata or numeric id)?"""
    if bp.id.isdigit() or any(str(k).startswith("_") for k in bp.metadata):
        return True
    return any(n.meta or _FLOWCRAFT_PARAMS & n.params.keys() for n in bp.nodes)


def check_flowcraft(bp: Blueprint, g: Graph) -> list[Problem]:
    """``flowcraft-join-input`` warnings (see the module docstring)."""
    from .lint import WARNING, Problem

    if not flowcraft_style(bp):
        return []
    transformed = {e.target for e in bp.edges if e.transform}
    out: list[Problem] = []
    seen: set[str] = set()
    for i, n in enumerate(bp.nodes):
        cn = g.nodes.get(n.id)
        if cn is None or n.id in seen or cn.n_fwd_in < 2 or n.config.join != "all":
            continue
        seen.add(n.id)
        if n.inputs is not None or isinstance(n.params.get("inputs"), Mapping) \
                or n.id in transformed:
            continue  # it names what it reads: the same on both engines
        sources = sorted({e.source for e in bp.edges if e.target == n.id})
        out.append(Problem(
            "flowcraft-join-input", WARNING, f"nodes[{i}] (id {n.id!r})",
            f"joins {len(sources)} edges (from {', '.join(map(repr, sources))}) without "
            f"'inputs': flownb gives it {{source id: output}} of the sources that ran, Flowcraft "
            f"the output of whichever predecessor finished last; add node-level \"inputs\" "
            f"naming what it reads (\"inputs\": {sources[0]!r}, or a mapping such as "
            f"{{\"value\": {sources!r}}} for the branch that ran)".replace("'", '"'), n.id))
    return out


__all__ = ["check_flowcraft", "flowcraft_style"]
