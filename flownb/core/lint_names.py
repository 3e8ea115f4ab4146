"""Lint checks of *names*: what a typo in a blueprint silently breaks.

* ``unknown-param``: a ``params`` key that a built-in node type does not read
  (``promptTemplat`` is ignored, so the node runs with no prompt);
* ``unknown-condition-name``: a name in an edge condition or transform that is neither a root
  (``result``, ``state``...), a node id nor a state key the blueprint declares — undefined names
  are ``null`` at run time, so a typo makes the edge silently false;
* ``unmapped-template-var``: a ``{{var}}`` that nothing provides (not in the node's ``inputs``
  mapping, not a node id, not a declared state key) — it would render empty.

Declared state keys are what the blueprint itself names: the keys of ``metadata.inputs`` cases
and ``metadata.state`` (a list of keys, or a mapping of defaults), ``key``/``outputKey`` of nodes,
``set`` values and subflow ``outputs``. Each check suggests the closest known name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from .conditions import compile_condition
from .errors import ConditionError
from .templates import template_vars

if TYPE_CHECKING:
    from .blueprint import Blueprint
    from .lint import Problem
    from .registry import Registry

_LLM = frozenset({"prompt", "promptTemplate", "inputs", "system", "model", "temperature",
                  "max_tokens", "base_url", "max_retries", "timeout_s", "stream", "cache",
                  "backend", "api_key_env", "key", "outputKey", "rpm", "tpm", "rate_burst",
                  "rate_scope"})
#: the params each built-in node type reads
BUILTIN_PARAMS: dict[str, frozenset[str]] = {
    "llm-process": _LLM,
    "llm-condition": _LLM,
    "llm-router": _LLM | {"routes", "choices"},
    "output": frozenset({"template", "promptTemplate", "inputs", "key", "outputKey"}),
    "set": frozenset({"values"}),
    "sleep": frozenset({"seconds", "duration_s"}),
    "wait": frozenset({"seconds", "duration_s"}),
    "fail": frozenset({"message"}),
    "subflow": frozenset({"blueprintId", "blueprint_id", "blueprint", "inputs", "outputs"}),
    "map": frozenset({"items", "node", "uses", "params", "blueprintId", "blueprint_id",
                      "concurrency"}),
    "noop": frozenset(),
    "passthrough": frozenset(),
}
#: names every condition can use (see the resolvers in runtime.py / distributed/worker.py)
CONDITION_ROOTS = frozenset({"result", "output", "action", "state", "context", "outputs",
                             "input"})
_TEMPLATED = ("llm-process", "llm-condition", "llm-router", "output")


def declared_keys(bp: Blueprint) -> set[str]:
    """State keys the blueprint names itself (see the module docstring)."""
    keys: set[str] = set()
    meta = bp.metadata
    cases = meta.get("inputs")
    if isinstance(cases, Mapping):
        for case in cases.values():
            if isinstance(case, Mapping):
                keys.update(str(k) for k in case)
    state = meta.get("state")
    if isinstance(state, (Mapping, list)):
        keys.update(str(k) for k in state)
    for n in bp.nodes:
        p = n.params
        for name in ("key", "outputKey"):
            if isinstance(p.get(name), str):
                keys.add(p[name])
        if n.uses == "output" and "promptTemplate" in p and not p.get("outputKey"):
            keys.add("final_output")
        if n.uses == "set" and isinstance(p.get("values"), Mapping):
            keys.update(str(k) for k in p["values"])
        if n.uses == "subflow" and isinstance(p.get("outputs"), Mapping):
            keys.update(str(k) for k in p["outputs"])
    return keys


def _hint(name: str, known: Iterable[str]) -> str:
    close = get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _builtin(uses: str, registry: Registry | None) -> bool:
    """``uses`` is flownb's own node type (a registry may have replaced a lazy built-in)."""
    if uses not in BUILTIN_PARAMS:
        return False
    if registry is None:
        return True
    impl = registry._impls.get(uses)
    return impl is None or impl.source.startswith("flownb")


def check_names(bp: Blueprint, registry: Registry | None = None) -> list[Problem]:
    from .lint import WARNING, Problem

    out: list[Problem] = []
    ids = {n.id for n in bp.nodes}
    keys = declared_keys(bp)
    known_names = CONDITION_ROOTS | ids | keys
    for i, n in enumerate(bp.nodes):
        loc = f"nodes[{i}] (id {n.id!r})"
        if _builtin(n.uses, registry):
            allowed = BUILTIN_PARAMS[n.uses]
            for p in n.params:
                if p.startswith("_") or p in allowed:
                    continue
                out.append(Problem("unknown-param", WARNING, f"{loc}.params.{p}",
                                   f"node type {n.uses!r} has no param {p!r}{_hint(p, allowed)}; "
                                   "it is ignored", n.id))
        if n.uses in _TEMPLATED:
            out.extend(_template_problems(n, loc, ids | keys))
    for i, e in enumerate(bp.edges):
        for field in ("condition", "transform"):
            text = getattr(e, field)
            if text is None:
                continue
            try:
                cond = compile_condition(text)
            except ConditionError:
                continue  # reported as bad-condition / bad-transform by the graph analysis
            for name in sorted(cond.names - known_names):
                hint = _hint(name, known_names)
                if not hint and "-" in name:
                    hint = f" (for subtraction write {' - '.join(name.split('-'))!r} with spaces)"
                out.append(Problem("unknown-condition-name", WARNING, f"edges[{i}].{field}",
                                   f"{name!r} is not a node id, a declared state key or one of "
                                   f"{', '.join(sorted(CONDITION_ROOTS))}{hint}; undefined names "
                                   "are null, so the edge would silently not fire. Declare run "
                                   "inputs in metadata.state (a list of keys)", e.source))
    return out


def _template_problems(n: Any, loc: str, known: set[str]) -> list[Problem]:
    from .lint import WARNING, Problem

    out: list[Problem] = []
    mapping = n.params.get("inputs")
    node_inputs = n.inputs if isinstance(n.inputs, Mapping) else {}
    for pname in ("prompt", "promptTemplate", "template", "system"):
        template = n.params.get(pname)
        if not isinstance(template, str):
            continue
        for var in dict.fromkeys(template_vars(template)):
            head = var.split(".")[0]
            if isinstance(mapping, Mapping):
                provided = head in mapping  # Flowcraft's form: only the mapping fills slots
                known_here = set(mapping)
            else:
                provided = head == "input" or head in node_inputs or head in known
                known_here = set(node_inputs) | known
            if provided:
                continue
            where = "params.inputs" if isinstance(mapping, Mapping) else \
                "the node's inputs, a node id or a declared state key"
            out.append(Problem("unmapped-template-var", WARNING, f"{loc}.params.{pname}",
                               f"template variable {{{{{var}}}}} is not provided by {where}"
                               f"{_hint(head, known_here)}; it would render empty", n.id))
    return out
