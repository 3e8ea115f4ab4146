"""What a worker holds for a run it executes visits of, and the small records it writes.

:class:`_Run` is a run's compiled graph, registry (with the run's own subflow blueprints,
:class:`_BundleRegistry`) and input keys, cached per worker; :class:`Incapable` says this worker
lacks node types a run needs. ``_err`` / ``_storable`` / ``_preview`` build the error records and
event previews a visit stores — always storable, or the failure itself would be lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.blueprint import Blueprint
from ..core.errors import FlownbError
from ..core.graph import Graph
from ..core.registry import Registry
from .store import dumps, loads


_NO_INPUT = object()


#: what a commit may hand back: the single successor it claimed for this worker
Next = tuple[str, int, dict[str, Any], Any] | None


@dataclass
class _Run:
    run_id: str
    digest: str
    graph: Graph
    registry: Registry
    bundle: dict[str, str]
    input_keys: list[str]
    cancelled: bool = False
    #: the trace context stored with the run (W3C traceparent carrier), when it was traced
    trace: dict[str, str] | None = None


class _BundleRegistry(Registry):
    """The worker's registry, with the run's own copies of its subflow blueprints."""

    def __init__(self, base: Registry, blueprints: dict[str, Blueprint]) -> None:
        super().__init__()
        self._base = base
        self._blueprints = dict(blueprints)

    def get(self, name: str, *, node_id: str | None = None) -> Any:
        return self._base.get(name, node_id=node_id)

    def __contains__(self, name: object) -> bool:
        return name in self._base

    def names(self) -> Any:
        return self._base.names()


class Incapable(Exception):
    """This worker lacks node types a run needs (another worker may have them)."""

    def __init__(self, missing: list[str], message: str) -> None:
        super().__init__(message)
        self.missing = missing
        self.message = message


def _storable(value: Any) -> Any:
    """``value`` with text Redis cannot encode (lone surrogates) replaced: an error record
    must always be storable, or the failure itself would be lost."""
    if value is None:
        return None
    try:
        dumps(value).encode()
        return value
    except UnicodeEncodeError:
        return loads(dumps(value).encode("utf-8", "replace"))


def _err(node: str, run_id: str, exc: FlownbError) -> dict[str, Any]:
    return {"node_id": exc.node_id or node, "run_id": run_id, "attempt": 1,
            "type": type(exc).__name__, "message": exc.message, "traceback": ""}


def _preview(value: Any, limit: int = 200) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
