"""Resource limits of a run: how deep child runs nest and how many a root run may start.

Why a policy module of its own: ``subflow`` and ``map`` start child runs, and a blueprint that
names itself (directly, or through another blueprint) recurses; ``map`` over itself multiplies at
every level (three items, twenty levels: 3^20 runs). Two numbers bound that for every executor:

* ``max_depth`` — how many child runs may be stacked under a root run (root = depth 0);
* ``max_child_runs`` — how many *nested* child runs a whole root run may start, all levels
  together: every child run below the root's own children. The root's direct children are not
  counted (:func:`counted`) because their number is the root's own data — a ``map`` over a
  100,000-item input is a legitimate, linear workload — while nesting is what multiplies.

The defaults (10 and 10,000) are far above what a real workflow needs and far below what fills
memory. Both come from the environment (``FLOWNB_MAX_DEPTH``, ``FLOWNB_MAX_CHILD_RUNS``, read when
a root run starts; a worker reads its own environment), or from :func:`set_limits` in this
process. Loading has two limits of the same kind: the size of a blueprint file
(``FLOWNB_MAX_BLUEPRINT_BYTES``, 50 MB) and how many nodes YAML aliases may add when expanded
(``FLOWNB_MAX_YAML_ALIAS_NODES``, 100,000), so a tiny "billion laughs" file is refused at once. The in-process executor counts with :class:`ChildBudget`; the distributed executor counts
atomically in Redis (one counter per root run) and raises the same :class:`LimitExceeded` text.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import FlownbError, LimitExceeded

__all__ = [
    "DEFAULT_MAX_CHILD_RUNS",
    "DEFAULT_MAX_DEPTH",
    "ENV_MAX_CHILD_RUNS",
    "ENV_MAX_DEPTH",
    "ChildBudget",
    "LimitExceeded",
    "Limits",
    "child_limit_message",
    "current_limits",
    "set_limits",
]

DEFAULT_MAX_DEPTH = 10
DEFAULT_MAX_CHILD_RUNS = 10_000
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_ALIAS_NODES = 100_000
ENV_MAX_DEPTH = "FLOWNB_MAX_DEPTH"
ENV_MAX_CHILD_RUNS = "FLOWNB_MAX_CHILD_RUNS"
ENV_MAX_FILE_BYTES = "FLOWNB_MAX_BLUEPRINT_BYTES"
ENV_MAX_ALIAS_NODES = "FLOWNB_MAX_YAML_ALIAS_NODES"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise FlownbError(f"{name}={raw!r} is not a whole number; set it to a positive "
                            f"integer (default {default})") from None
    if value < 1:
        raise FlownbError(f"{name}={value} must be at least 1 (default {default})")
    return value


@dataclass(frozen=True)
class Limits:
    """The two limits; build with :meth:`from_env` to honour the environment."""

    max_depth: int = DEFAULT_MAX_DEPTH
    max_child_runs: int = DEFAULT_MAX_CHILD_RUNS
    #: a blueprint file larger than this is refused before it is read (``/dev/zero`` included)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: YAML nodes that aliases may *add* when expanded (a "billion laughs" file adds 10^9)
    max_alias_nodes: int = DEFAULT_MAX_ALIAS_NODES

    def __post_init__(self) -> None:
        for name in ("max_depth", "max_child_runs", "max_file_bytes", "max_alias_nodes"):
            v = getattr(self, name)
            if type(v) is not int or v < 1:
                raise FlownbError(f"Limits.{name} must be a positive integer, got {v!r}")

    @classmethod
    def from_env(cls) -> Limits:
        return cls(_env_int(ENV_MAX_DEPTH, DEFAULT_MAX_DEPTH),
                   _env_int(ENV_MAX_CHILD_RUNS, DEFAULT_MAX_CHILD_RUNS),
                   _env_int(ENV_MAX_FILE_BYTES, DEFAULT_MAX_FILE_BYTES),
                   _env_int(ENV_MAX_ALIAS_NODES, DEFAULT_MAX_ALIAS_NODES))

    # -- the checks, shared by both executors so the message is the same ---------------------------
    def check_depth(self, depth: int, *, node_id: str, run_id: str) -> None:
        """``depth`` is the depth the new child run would have (a root run's children: 1)."""
        if depth > self.max_depth:
            raise LimitExceeded(
                f"node {node_id!r} of run {run_id}: starting a child run here would nest runs "
                f"{depth} deep; the limit is "
                f"{self.max_depth} (does a subflow/map reach its own blueprint? `flownb validate` "
                f"shows the cycle). Raise it with {ENV_MAX_DEPTH}=<n> or "
                "flownb.core.limits.set_limits(max_depth=<n>)", node_id=node_id, run_id=run_id)

    def child_runs_refused(self, total: int, wanted: int, *, node_id: str, run_id: str) -> LimitExceeded:
        """The error for a root run that would exceed ``max_child_runs`` with ``wanted`` more."""
        return LimitExceeded(
            f"node {node_id!r} of run {run_id}: starting {wanted} more child run(s) would make "
            f"{total} nested child runs under its root run; the "
            f"limit is {self.max_child_runs} per root run (a map over its own blueprint "
            f"multiplies at every level). Raise it with {ENV_MAX_CHILD_RUNS}=<n> or "
            "flownb.core.limits.set_limits(max_child_runs=<n>)", node_id=node_id, run_id=run_id)


_override: Limits | None = None
_override_lock = threading.Lock()


def set_limits(**changes: int | None) -> Limits:
    """Set this process's limits (over the environment), e.g. ``set_limits(max_depth=20)``;
    ``set_limits()`` alone goes back to the environment and the defaults."""
    global _override
    unknown = sorted(set(changes) - set(Limits.__dataclass_fields__))
    if unknown:
        raise FlownbError(f"unknown limit(s) {unknown}; known: {sorted(Limits.__dataclass_fields__)}")
    with _override_lock:
        given = {k: v for k, v in changes.items() if v is not None}
        _override = dataclasses.replace(current_limits(), **given) if given else None
        return current_limits()


def current_limits() -> Limits:
    """The limits a run starting now gets: :func:`set_limits` if called, else the environment."""
    return _override if _override is not None else Limits.from_env()


class ChildBudget:
    """The in-process count of child runs under one root run (shared by all its descendants).

    Once refused, a budget stays refused: sibling branches still running must not go on
    starting children after their root run has already failed for this reason.
    """

    __slots__ = ("_lock", "limits", "refused", "started")

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or current_limits()
        self.started = 0
        self.refused = False
        self._lock = threading.Lock()

    def reserve(self, n: int, *, depth: int, node_id: str, run_id: str) -> None:
        """Account for ``n`` child runs at ``depth`` or raise :class:`LimitExceeded`."""
        self.limits.check_depth(depth, node_id=node_id, run_id=run_id)
        if not counted(depth):
            return
        with self._lock:
            total = self.started + n
            if self.refused or total > self.limits.max_child_runs:
                self.refused = True
                raise self.limits.child_runs_refused(total, n, node_id=node_id, run_id=run_id)
            self.started = total


def counted(depth: int) -> bool:
    """Whether child runs at ``depth`` count against ``max_child_runs`` (all but the root's own)."""
    return depth >= 2


def child_limit_message(err: Mapping[str, Any] | None) -> str | None:
    """The message of a child run that failed on a limit, or None for any other failure.

    Both executors re-raise it unchanged in the parent, so a limit hit ten levels down reaches
    the root run as one :class:`LimitExceeded` naming the deepest node and run, not as ten
    nested "child run failed" texts.
    """
    if err and err.get("type") == LimitExceeded.__name__:
        return str(err.get("message") or "")
    return None
