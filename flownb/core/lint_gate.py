"""The lint gate: every run starts by hearing what lint found.

Lint knew about the mistakes a person makes while prototyping (``templat`` for ``template``,
``state.ss`` when only ``s`` is written, a router whose routes no edge takes), but a run never
said so: it "succeeded" with a wrong answer. So every entry point that starts runs (``run`` /
``arun``, ``run_many`` / ``arun_many``, ``submit`` / ``map`` on Redis, ``LocalCluster``, the CLI)
calls :func:`check` first:

* errors refuse the run with a :class:`~flownb.core.errors.LintError` naming the blueprint, each node
  and the fix. The kinds that make a run silently wrong rather than impossible
  (:data:`~flownb.core.lint.DOWNGRADABLE`) are errors by default; ``strict=False`` (``--no-strict``)
  turns them into warnings;
* warnings become Python warnings of class :class:`~flownb.core.errors.LintWarning` (the CLI prints
  them on stderr), pointing at the caller's line, not at flownb's.

Why a cache: a batch of 10,000 runs must pay for lint once, not 10,000 times. Lint depends on the
blueprint's content, the registry (which node types are flownb's own, which child blueprints
exist) and nothing else, so its result is kept per (digest, registry, registry version). What
depends on the run's inputs (a key that only a run input can give) is settled per run by
:func:`~flownb.core.lint.for_inputs`, a set lookup per such key.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
import warnings
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from .errors import LintError, LintWarning
from .lint import DOWNGRADABLE, ERROR, WARNING, Problem, for_inputs, lint_all

if TYPE_CHECKING:
    from .blueprint import Blueprint
    from .registry import Registry

#: blueprints whose lint is kept (a notebook edits and reruns; old versions fall out)
CACHE_SIZE = 256
_cache: OrderedDict[tuple[Any, ...], list[Problem]] = OrderedDict()
_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0}
#: the flownb package (this file is in flownb/core/): frames in it are not the caller's
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STDLIB = tuple({os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})
_DOWNGRADE_NOTE = ("\nFix the blueprint, or run it anyway with these as warnings: strict=False "
                   "(flownb run --no-strict).")


def check(blueprint: Blueprint | Mapping[str, Any] | str, registry: Registry | None = None,
          inputs: Collection[str] | None = None, *, strict: bool | None = True,
          on_workers: bool = False) -> Blueprint:
    """Lint ``blueprint`` for a run with input keys ``inputs`` (``None``: no inputs); raise on
    errors, warn about the rest, return the loaded blueprint.

    ``strict=None`` skips the gate (a batch already checked all its rows at once);
    ``on_workers``: node types need not be registered here (the workers import them).
    """
    from .blueprint import load
    from .registry import default_registry

    bp = load(blueprint)  # type: ignore[arg-type]
    if strict is None:
        return bp
    reg = registry if registry is not None else default_registry
    keys: Collection[str] = inputs if isinstance(inputs, (Mapping, set, frozenset)) else ()
    problems = for_inputs(_problems(bp, reg, on_workers), keys)
    refused = [p for p in problems if p.severity == ERROR
               and (strict or p.code not in DOWNGRADABLE)]
    if refused:
        note = _DOWNGRADE_NOTE if strict and any(p.code in DOWNGRADABLE for p in refused) else ""
        raise LintError(refused, path=f"blueprint {bp.id!r}", note=note)
    for p in problems:
        if p.severity in (ERROR, WARNING):  # an ERROR here is one strict=False let through
            late = " (refused unless strict=False)" if p.severity == ERROR else ""
            _warn(f"blueprint {bp.id!r}: {p.location}: {p.message} [{p.code}]{late}")
    return bp


def findings(bp: Blueprint, registry: Registry | None = None) -> list[str]:
    """What lint says about ``bp`` whatever the inputs, one line each (the run widget's banner;
    cached like :func:`check`, and never raises)."""
    from .registry import default_registry

    try:
        found = for_inputs(_problems(bp, registry or default_registry, True), None)
    except Exception:  # noqa: BLE001 - a banner must not break the view
        return []
    return [f"{p.severity}: {p.location}: {p.message} [{p.code}]" for p in found
            if p.severity in (ERROR, WARNING)]


def row_keys(rows: Collection[Mapping[str, Any]]) -> frozenset[str]:
    """The input keys of a batch: a key some row gives is one of the blueprint's run inputs."""
    keys: set[str] = set()
    for row in rows:
        if isinstance(row, Mapping):
            keys.update(row)
    return frozenset(keys)


def cache_info() -> dict[str, int]:
    """How often the gate linted (``misses``) and reused a result (``hits``); ``size``."""
    with _lock:
        return {**_stats, "size": len(_cache)}


def cache_clear() -> None:
    with _lock:
        _cache.clear()
        _stats.update(hits=0, misses=0)


def _problems(bp: Blueprint, reg: Registry, on_workers: bool) -> list[Problem]:
    """Lint of ``bp`` and of the child blueprints its subflow/map nodes start, cached."""
    key = (bp.digest, id(reg), reg.version, on_workers)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return found
    found = list(_lint(bp, reg, on_workers, keep_graph=not on_workers))  # in process: compiled next
    for child in _children(bp, reg):
        found.extend(Problem(p.code, p.severity, f"child blueprint {child.id!r}: {p.location}",
                             p.message, p.node_id)
                     for p in for_inputs(_lint(child, reg, on_workers), None))
    with _lock:
        _stats["misses"] += 1
        _cache[key] = found
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def _lint(bp: Blueprint, reg: Registry, on_workers: bool, keep_graph: bool = False) -> list[Problem]:
    found = lint_all(bp, reg, keep_graph=keep_graph)
    if on_workers:  # the workers check 'uses' against what they imported
        found = [p for p in found if p.code != "unknown-uses"]
    return found


def _children(bp: Blueprint, reg: Registry) -> list[Blueprint]:
    from .lint import child_blueprint_id

    seen = {bp.id}
    out: list[Blueprint] = []
    todo = [bp]
    while todo:
        for n in todo.pop().nodes:
            bid = child_blueprint_id(n) if n.uses in ("subflow", "map") else None
            if bid and bid not in seen and reg.has_blueprint(bid):
                seen.add(bid)
                child = reg.get_blueprint(bid)
                out.append(child)
                todo.append(child)
    return out


def _warn(message: str) -> None:
    """A :class:`LintWarning` at the first caller outside flownb and the standard library (a
    notebook cell, a script line), so Python's filters and its once-per-line rule apply there."""
    level, f = 1, sys._getframe(0)
    while f is not None and _internal(f.f_code.co_filename):
        f, level = f.f_back, level + 1  # type: ignore[assignment]
    warnings.warn(message, LintWarning, stacklevel=level if f is not None else 2)


def _internal(filename: str) -> bool:
    """flownb's own code, or the standard library's (asyncio, threading) that runs it."""
    if filename.startswith(_PKG):
        return True
    return filename.startswith(_STDLIB) and "-packages" + os.sep not in filename
