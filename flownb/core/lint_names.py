"""Lint checks of *names*: what a typo in a blueprint silently breaks.

* ``unknown-param`` (an error): a ``params`` key that a built-in node type does not read
  (``promptTemplat`` is ignored, so the node runs with no prompt);
* what conditions read (``unknown-condition-name``, ``unknown-state-key``...) and
  ``llm-router`` routes: :mod:`flownb.core.lint_reads`;
* ``unmapped-template-var``: a ``{{var}}`` that nothing provides (not in the node's ``inputs``
  mapping, not a node id, not a declared state key, not a run input): in Flowcraft's mapped form
  it renders empty; otherwise its node fails (see :mod:`flownb.core.lint_reads` for run inputs).

Declared state keys are what the blueprint itself names: the keys of ``metadata.inputs`` cases
and ``metadata.state`` (a list of keys, or a mapping of defaults), ``key``/``outputKey`` of nodes,
``set`` values and subflow ``outputs``. Each check suggests the closest known name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .answers import AnswerError, check_schema
from .lint_reads import hint as _hint
from .rate_bounds import RATE_PARAMS, rate_problem
from .templates import template_vars

if TYPE_CHECKING:
    from .blueprint import Blueprint
    from .lint import Problem
    from .lint_reads import Reads
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
    "wait": frozenset({"prompt", "schema", "choices", "timeout_s", "default"}),
    "approval": frozenset({"prompt", "schema", "choices", "timeout_s", "default"}),
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


def builtin(uses: str, registry: Registry | None) -> bool:
    """``uses`` is flownb's own node type (a registry may have replaced a lazy built-in)."""
    if uses not in BUILTIN_PARAMS:
        return False
    if registry is None:
        return True
    impl = registry._impls.get(uses)
    return impl is None or impl.source.startswith("flownb")


def check_names(bp: Blueprint, registry: Registry | None = None) -> list[Problem]:
    from .lint import ERROR, Problem
    from .lint_reads import condition_problems, reads_of, router_problems

    out: list[Problem] = []
    reads = reads_of(bp, registry)
    opaque = _opaque_inputs(bp)
    for i, n in enumerate(bp.nodes):
        loc = f"nodes[{i}] (id {n.id!r})"
        if builtin(n.uses, registry):
            allowed = BUILTIN_PARAMS[n.uses]
            for p in n.params:
                if p.startswith("_") or p in allowed:
                    continue
                out.append(Problem("unknown-param", ERROR, f"{loc}.params.{p}",
                                   f"node type {n.uses!r} has no param {p!r}{_hint(p, allowed)}; "
                                   "it would be silently ignored. Rename it (its params: "
                                   f"{', '.join(sorted(allowed)) or 'none'})", n.id))
        if n.uses in _TEMPLATED:
            out.extend(_template_problems(n, loc, reads, n.inputs is None and n.id in opaque))
        if n.uses in ("wait", "approval") and isinstance(n.params.get("schema"), Mapping):
            try:
                check_schema(n.params["schema"], "params.schema")
            except AnswerError as exc:  # found by lint, not by the first answer
                out.append(Problem("bad-answer-schema", ERROR, f"{loc}.params.schema",
                                   exc.message, n.id))
        if n.uses in ("llm-process", "llm-condition", "llm-router"):
            for p in RATE_PARAMS:
                msg = rate_problem(p, n.params.get(p))
                if msg is not None:
                    out.append(Problem("bad-rate-limit", ERROR, f"{loc}.params.{p}", msg, n.id))
    out.extend(condition_problems(bp, reads))
    out.extend(router_problems(bp))
    return out


#: node types whose output is never a mapping (so a successor's template cannot read keys of it)
_SCALAR_OUTPUT = frozenset({"llm-process", "llm-condition", "llm-router"})


def _opaque_inputs(bp: Blueprint) -> set[str]:
    """Nodes whose input (without an ``inputs`` spec) is another node's output that may be a
    mapping: a template variable may be one of its keys, which lint cannot know."""
    uses = {m.id: m.uses for m in bp.nodes}
    return {e.target for e in bp.edges if e.source != e.target
            and (e.transform is not None or uses.get(e.source) not in _SCALAR_OUTPUT)}


def _template_problems(n: Any, loc: str, reads: Reads, opaque: bool) -> list[Problem]:
    from .lint import WARNING, Problem

    out: list[Problem] = []
    mapping = n.params.get("inputs")
    node_inputs = n.inputs if isinstance(n.inputs, Mapping) else {}
    known = set(reads.ids | reads.keys)
    for pname in ("prompt", "promptTemplate", "template", "system"):
        template = n.params.get(pname)
        if not isinstance(template, str):
            continue
        for var in dict.fromkeys(template_vars(template)):
            head = var.split(".")[0]
            if isinstance(mapping, Mapping):  # Flowcraft's form: only the mapping fills slots
                if head not in mapping:
                    out.append(Problem("unmapped-template-var", WARNING, f"{loc}.params.{pname}",
                                       f"template variable {{{{{var}}}}} is not provided by "
                                       f"params.inputs{_hint(head, set(mapping))}; it would render "
                                       "empty", n.id))
                continue
            if head == "input" or head in node_inputs or head in reads.ids or opaque:
                continue
            found = reads.key_problem(head, template=True)
            if found is None:
                continue
            sev, absent, why = found
            out.append(Problem("unmapped-template-var", sev, f"{loc}.params.{pname}",
                               f"template variable {{{{{var}}}}} is not the node's input, one of "
                               f"its inputs or a node id, and as a state key: {why}"
                               f"{_hint(head, set(node_inputs) | known)}; where it is unset the "
                               "node fails ('not in the input, the state or a node output')",
                               n.id, unless_input=head, if_absent=absent))
    return out
