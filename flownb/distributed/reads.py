"""Reading a run's state on Redis the way a node and its edge conditions need it.

Reads are lazy and cached per node visit: a node pays one ``HGET`` for each field it touches and
nothing for the rest of the state, so a hop does not get slower as the state grows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..core.context import OUTPUTS_PREFIX, condition_resolver
from ..core.templates import node_template, template_vars
from .store import RedisStore


class Reader:
    """Lazy, cached reads of a run's state fields (a node pays only for what it touches)."""

    __slots__ = ("cache", "run_id", "store")

    def __init__(self, store: RedisStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.cache: dict[str, Any] = {}

    def __call__(self, key: str) -> Any:
        if key in self.cache:
            v = self.cache[key]
            if v is _ABSENT:
                raise KeyError(key)
            return v
        try:
            v = self.store.state_get(self.run_id, key)
        except KeyError:
            self.cache[key] = _ABSENT
            raise
        self.cache[key] = v
        return v

    def get_output(self, node: str) -> Any:
        try:
            return self(OUTPUTS_PREFIX + node)
        except KeyError:
            return None


_ABSENT = object()


def declared_input_keys(spec: str | Mapping[str, Any]) -> list[str]:
    """Every state field a node's declared ``inputs`` may read (see
    :func:`flownb.core.context.lookup_key`: a node's output, a state key, the head of a dotted
    path), so a worker's loop fetches them in one awaited round trip into a :class:`Reader`'s
    cache instead of one blocking ``HGET`` each."""
    sources: list[Any] = [spec] if isinstance(spec, str) else list(spec.values())
    keys: dict[str, None] = {}
    for src in sources:
        for key in [src] if isinstance(src, str) else [str(k) for k in src]:
            keys[OUTPUTS_PREFIX + key] = keys[key] = None
            if "." in key:
                head = key.split(".")[0]
                keys[OUTPUTS_PREFIX + head] = keys[head] = None
    return list(keys)


def template_read_keys(params: Mapping[str, Any]) -> list[str]:
    """The state fields a node's template params (``prompt``/``template``/``promptTemplate``,
    ``system``, a ``params.inputs`` mapping) may read: fetched with the input by a worker's
    loop, so rendering them reads a warm cache (a slot the input fills costs one field more)."""
    keys: dict[str, None] = {}
    for text in (node_template(params), params.get("system")):
        if isinstance(text, str):
            for var in template_vars(text):
                head = var.split(".")[0]
                for k in (var, head):
                    keys[OUTPUTS_PREFIX + k] = keys[k] = None
    mapping = params.get("inputs")
    if isinstance(mapping, Mapping):
        keys.update(dict.fromkeys(declared_input_keys(mapping)))
    keys.pop("input", None)
    keys.pop(OUTPUTS_PREFIX + "input", None)
    return list(keys)


class _LazyState(Mapping[str, Any]):
    """``state`` in conditions: fields fetched on first use."""

    def __init__(self, reader: Reader, writes: Mapping[str, Any]) -> None:
        self._r = reader
        self._w = writes

    def __getitem__(self, k: str) -> Any:
        if k in self._w:
            return self._w[k]
        if k == "_outputs":
            return _LazyOutputs(self._r)
        return self._r(k)

    def __iter__(self) -> Iterator[str]:
        return iter(self._r.store.state_keys(self._r.run_id))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _LazyOutputs(Mapping[str, Any]):
    def __init__(self, reader: Reader) -> None:
        self._r = reader

    def __getitem__(self, k: str) -> Any:
        return self._r(OUTPUTS_PREFIX + k)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def resolver(store: RedisStore, run_id: str, output: Any, action: str | None, input_: Any,
             writes: Mapping[str, Any], node_id: str | None = None) -> Callable[[str], Any]:
    """Condition names over the run's state on Redis, read lazily (see :func:`condition_resolver`);
    ``node_id``: the committing node, whose own output is not in Redis yet."""
    reader = Reader(store, run_id)
    base = condition_resolver(output, action, input_, _LazyState(reader, writes),
                              _LazyOutputs(reader))
    if node_id is None:
        return base

    def resolve(name: str) -> Any:
        if name == node_id and name not in writes:
            return output
        return base(name)

    return resolve
