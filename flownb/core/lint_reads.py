"""Lint checks of what a blueprint *reads*: names that cannot hold a value when the run reads them.

A condition that reads a key nobody writes is ``null``, so its edge silently never (or always)
fires; a template variable nobody provides renders empty. Whether such a key can exist depends
on three things lint knows, and one it may not:

* the keys the blueprint writes or declares (:func:`~flownb.lint_names.declared_keys`, plus
  ``reducers``), and its node ids;
* whether a *custom* node runs (a type that is not flownb's own): it may write any key at run
  time, so a key nobody else writes "may be unset" — a warning, never an error;
* whether the blueprint declares its run inputs (``metadata.state`` / ``metadata.inputs``);
* the run's inputs: known to the lint gate (:mod:`flownb.core.lint_gate`) when a run starts, not to
  ``flownb validate``.

So a problem about a key carries ``unless_input``: it vanishes when the run's inputs give that
key, and ``if_absent`` is its severity once the inputs are known and lack it. With the inputs
unknown and undeclared, a condition's key that only a run input can give is a warning ("may be
unset"), and a template variable is ``HIDDEN`` (unset, it fails its node loudly, so
``flownb validate`` does not cry wolf about a correct blueprint that reads its inputs); the run
itself checks both against its actual inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .conditions import compile_condition
from .errors import ConditionError

if TYPE_CHECKING:
    from .blueprint import Blueprint, Node
    from .lint import Problem
    from .registry import Registry

#: fields of ``result`` in a condition (see flownb.context.condition_resolver)
RESULT_FIELDS = ("output", "action")


@dataclass(frozen=True)
class Reads:
    """What a blueprint makes knowable about its keys (computed once per lint)."""

    keys: frozenset[str]        # written by a built-in node or declared
    ids: frozenset[str]         # node ids
    writers: tuple[str, ...]    # custom nodes that may write any key ("id ('uses')")
    declared_inputs: bool       # metadata.state / metadata.inputs lists the run's inputs

    def key_problem(self, key: str, *, template: bool) -> tuple[str, str, str] | None:
        """``(severity, if_absent, why)`` for a key nothing here provides, else None."""
        from .lint import ERROR, HIDDEN, WARNING

        if key in self.keys:
            return None
        hard = WARNING if template else ERROR
        if self.writers:
            shown = ", ".join(self.writers[:3]) + (" …" if len(self.writers) > 3 else "")
            return (WARNING, WARNING, f"may be unset: no built-in node writes it and the "
                    f"blueprint does not declare it; custom node {shown} may write it at run time "
                    "(declare it in metadata.state to say so)")
        if self.declared_inputs:
            return (hard, hard, "no node writes it, the blueprint does not declare it "
                    "(metadata.state, metadata.inputs, reducers) and the run's inputs do not give it")
        # a template variable that nothing gives makes its node fail loudly: no need to warn
        # before the inputs are known; a condition's key is null silently: "may be unset"
        return (HIDDEN if template else WARNING, hard,
                "no node writes it and the blueprint does not declare it (metadata.state, "
                "metadata.inputs, reducers): only a run input can give it")


def reads_of(bp: Blueprint, registry: Registry | None) -> Reads:
    from .lint_names import builtin, declared_keys

    meta = bp.metadata
    # flownb's own types write only what their params name (declared_keys sees those keys)
    writers = tuple(f"{n.id!r} ({n.uses!r})" for n in bp.nodes if not builtin(n.uses, registry))
    return Reads(frozenset(declared_keys(bp) | set(bp.reducers)), frozenset(n.id for n in bp.nodes),
                 writers, isinstance(meta.get("state"), (Mapping, list))
                 or isinstance(meta.get("inputs"), Mapping))


def hint(name: str, known: Any) -> str:
    from difflib import get_close_matches

    close = get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def condition_problems(bp: Blueprint, reads: Reads) -> list[Problem]:
    """``unknown-state-key``, ``unknown-condition-name``, ``unknown-result-field``,
    ``unknown-output-node``: paths of edge conditions/transforms that cannot hold a value."""
    from .lint import ERROR, Problem
    from .lint_names import CONDITION_ROOTS

    out: list[Problem] = []
    for i, e in enumerate(bp.edges):
        for field in ("condition", "transform"):
            text = getattr(e, field)
            if text is None:
                continue
            try:
                cond = compile_condition(text)
            except ConditionError:
                continue  # reported as bad-condition / bad-transform by the graph analysis
            loc = f"edges[{i}] ({e.source} -> {e.target}).{field}"
            for path in cond.paths:
                root, sub = path[0], (path[1] if len(path) > 1 else None)
                if sub is None or sub == "length":
                    continue
                if root == "result" and sub not in RESULT_FIELDS:
                    out.append(Problem(
                        "unknown-result-field", ERROR, loc,
                        f"{'.'.join(path[:2])!r}: a result has only the fields "
                        f"{', '.join(RESULT_FIELDS)}{hint(sub, RESULT_FIELDS)}; this reads null, "
                        "so the edge is silently decided on nothing", e.source))
                elif root == "outputs" and sub not in reads.ids:
                    out.append(Problem(
                        "unknown-output-node", ERROR, loc,
                        f"{'.'.join(path[:2])!r}: {sub!r} is not a node of this blueprint"
                        f"{hint(sub, reads.ids)}; this reads null, so the edge is silently "
                        "decided on nothing", e.source))
                elif root in ("state", "context") and sub != "_outputs":
                    found = reads.key_problem(sub, template=False)
                    if found is not None:
                        sev, absent, why = found
                        extra = (f"; node outputs are read as {sub} or outputs.{sub}"
                                 if sub in reads.ids else hint(sub, reads.keys))
                        out.append(Problem(
                            "unknown-state-key", sev, loc,
                            f"{root}.{sub}: state key {sub!r}: {why}{extra}; where it is unset "
                            "it reads null, so the edge is silently decided on nothing. Fix the "
                            "name, or declare the key in metadata.state", e.source, unless_input=sub,
                            if_absent=absent))
            for name in sorted(cond.names - CONDITION_ROOTS - reads.ids):
                found = reads.key_problem(name, template=False)
                if found is None:
                    continue
                sev, absent, why = found
                known = CONDITION_ROOTS | reads.ids | reads.keys
                tip = hint(name, known)
                if not tip and "-" in name:
                    tip = f" (for subtraction write {' - '.join(name.split('-'))!r} with spaces)"
                out.append(Problem(
                    "unknown-condition-name", sev, loc,
                    f"{name!r} is not a node id, nor one of {', '.join(sorted(CONDITION_ROOTS))}, "
                    f"and as a state key: {why}{tip}; undefined names are null, so the edge is "
                    "silently decided on nothing. Declare run inputs in metadata.state (a list "
                    "of keys)", e.source, unless_input=name, if_absent=absent))
    return out


def route_names(raw: Any) -> list[str] | None:
    """The actions an ``llm-router``'s ``routes``/``choices`` param names (as the node reads
    them: a list, a mapping or a comma-separated string), or None when it has none."""
    if isinstance(raw, str):
        raw = [r.strip() for r in raw.split(",")]
    if isinstance(raw, Mapping):
        raw = list(raw)
    if not raw or not isinstance(raw, Sequence):
        return None
    return [a for a in dict.fromkeys(str(a).strip() for a in raw) if a]


def router_problems(bp: Blueprint) -> list[Problem]:
    """``router-routes-mismatch``: a route no edge takes, or an edge action no route names."""

    out: list[Problem] = []
    routers = {n.id for n in bp.nodes if n.uses == "llm-router"}
    if not routers:
        return out
    by_source: dict[str, list[Any]] = {}
    for e in bp.edges:
        if e.source in routers:
            by_source.setdefault(e.source, []).append(e)
    for i, n in enumerate(bp.nodes):
        if n.uses != "llm-router":
            continue
        pname = "routes" if n.params.get("routes") else "choices"
        routes = route_names(n.params.get(pname))
        if routes is None:
            continue  # the runtime gives it its edges' actions
        edges = by_source.get(n.id, [])
        actions = list(dict.fromkeys(e.action for e in edges if e.action not in (None, "default")))
        has_default = any(e.action in (None, "default") for e in edges)
        loc = f"nodes[{i}] (id {n.id!r}).params.{pname}"
        for a in actions:
            if a not in routes:
                out.append(_mismatch(n, loc, f"an edge takes action {a!r}, which is not one of its "
                                     f"routes {routes}{hint(str(a), routes)}; the model never "
                                     "picks it, so that edge never fires"))
        for r in routes:
            if r not in actions:
                then = ("the run silently takes the default edge" if has_default else
                        "the run fails when the model picks it")
                out.append(_mismatch(n, loc, f"route {r!r} has no edge with action {r!r}"
                                     f"{hint(r, actions)}; {then}"))
    return out


def _mismatch(n: Node, loc: str, msg: str) -> Problem:
    from .lint import ERROR, Problem

    return Problem("router-routes-mismatch", ERROR, loc,
                   f"llm-router's routes and its edges' actions disagree: {msg}. Make params.routes "
                   "list exactly the actions of its outgoing edges", n.id)
