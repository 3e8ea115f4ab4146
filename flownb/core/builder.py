"""Blueprints from Python: :class:`Builder` writes the same data as a JSON blueprint, so a
workflow written in code is still data every executor can run (and lint, draw, diff)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .blueprint import Blueprint

if TYPE_CHECKING:
    from .registry import Registry


class Builder:
    """Write the same data as a JSON blueprint, from Python.

    ``uses`` may be a callable: it is registered (in ``registry``, default the global one) under
    its qualified name, which is what lands in the blueprint — the data stays data.
    """

    def __init__(self, blueprint_id: str, *, registry: Registry | None = None,
                 description: str | None = None, metadata: Mapping[str, Any] | None = None) -> None:
        self._id = blueprint_id
        self._nodes: list[dict[str, Any]] = []
        self._edges: list[dict[str, Any]] = []
        self._registry = registry
        self._description = description
        self._metadata = dict(metadata or {})

    def node(self, node_id: str, uses: str | Callable[..., Any], *, params: Mapping[str, Any] | None = None,
             inputs: str | Mapping[str, str | list[str]] | None = None, label: str | None = None,
             **config: Any) -> Builder:
        """Add a node; keyword arguments are :class:`NodeConfig` fields (``retries=2``, ``join="any"``)."""
        if callable(uses):
            from .registry import default_registry

            reg = self._registry or default_registry
            uses = reg.register_callable(uses)
        spec: dict[str, Any] = {"id": node_id, "uses": uses}
        if params:
            spec["params"] = dict(params)
        if inputs is not None:
            spec["inputs"] = inputs if isinstance(inputs, str) else dict(inputs)
        if label:
            spec["label"] = label
        if config:
            spec["config"] = config
        self._nodes.append(spec)
        return self

    def edge(self, source: str, target: str, *, action: str | None = None,
             condition: str | None = None) -> Builder:
        spec: dict[str, Any] = {"source": source, "target": target}
        if action is not None:
            spec["action"] = action
        if condition is not None:
            spec["condition"] = condition
        self._edges.append(spec)
        return self

    def chain(self, *node_ids: str) -> Builder:
        """Default edges ``a → b → c``."""
        for a, b in zip(node_ids, node_ids[1:]):
            self.edge(a, b)
        return self

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self._id, "nodes": list(self._nodes), "edges": list(self._edges)}
        if self._description:
            data["description"] = self._description
        if self._metadata:
            data["metadata"] = self._metadata
        return data

    def build(self) -> Blueprint:
        return Blueprint.from_dict(self.to_dict(), path=f"Builder({self._id!r})")


__all__ = ["Builder"]
