"""What a node sees: its input, params, the run's shared state, and a way to report progress.

State writes are buffered in the context and applied together with the node's output when it
commits, so a failed or retried attempt leaves no half-written state behind — in memory and on
Redis alike. Reads go through a ``reader`` supplied by the executor (a dict lookup in process,
a lazy ``HGET`` on Redis), so a node only pays for the keys it touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .errors import FlownbError

_MISSING = object()
OUTPUTS_PREFIX = "_outputs."

Reader = Callable[[str], Any]  # raises KeyError when the key is absent


class StateView(Mapping[str, Any]):
    """The run's shared state as a node sees it: reads fall through to the store, writes wait."""

    __slots__ = ("_read", "_writes", "_keys")

    def __init__(self, read: Reader, writes: dict[str, Any], keys: Callable[[], Iterator[str]] | None = None) -> None:
        self._read = read
        self._writes = writes
        self._keys = keys

    def __getitem__(self, key: str) -> Any:
        if key in self._writes:
            return self._writes[key]
        return self._read(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self.get(key, _MISSING) is not _MISSING

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def set(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise FlownbError(f"state keys must be non-empty strings, got {key!r}")
        if key.startswith("_outputs"):  # '_outputs.<node>' outputs, '_outputs:<node>' their stats
            raise FlownbError(f"state key {key!r} is reserved for node outputs (keys starting with "
                              "'_outputs'); return the value instead")
        self._writes[key] = value

    def update(self, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            self.set(k, v)

    def __iter__(self) -> Iterator[str]:
        seen = set(self._writes)
        yield from self._writes
        if self._keys is not None:
            for k in self._keys():
                if k not in seen:
                    yield k

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<StateView pending_writes={list(self._writes)}>"


class RunEnv:
    """What every node of one run shares (built once per run, or per node on Redis where the
    reader carries a per-node cache): keeping it out of the context makes a context cheap."""

    __slots__ = ("run_id", "read", "emit", "cancelled", "blueprint_id", "keys", "worker")

    def __init__(self, run_id: str, read: Reader,
                 emit: Callable[[str, str, dict[str, Any]], None] | None = None,
                 cancelled: Callable[[], bool] | None = None, blueprint_id: str = "",
                 keys: Callable[[], Iterator[str]] | None = None, worker: str | None = None) -> None:
        self.run_id = run_id
        self.read = read
        self.emit = emit  # (node_id, name, data)
        self.cancelled = cancelled
        self.blueprint_id = blueprint_id
        self.keys = keys
        self.worker = worker


class NodeContext:
    """Passed to every node. ``attempt`` counts from 1; ``visit`` counts loop iterations from 1."""

    __slots__ = ("input", "params", "node_id", "visit", "attempt", "_env", "_writes")

    def __init__(self, input: Any, params: Mapping[str, Any], node_id: str, visit: int,
                 env: RunEnv) -> None:
        self.input = input
        self.params = params
        self.node_id = node_id
        self.visit = visit
        self.attempt = 1
        self._env = env
        self._writes: dict[str, Any] = {}

    @property
    def run_id(self) -> str:
        return self._env.run_id

    @property
    def blueprint_id(self) -> str:
        return self._env.blueprint_id

    @property
    def worker(self) -> str | None:
        """The worker running this node (distributed runs), else ``None``."""
        return self._env.worker

    @property
    def _read(self) -> Reader:
        return self._env.read

    @property
    def _keys(self) -> Callable[[], Iterator[str]] | None:
        return self._env.keys

    @property
    def state(self) -> StateView:
        return StateView(self._env.read, self._writes, self._env.keys)

    def emit(self, name: str, **data: Any) -> None:
        """Report progress (``ctx.emit("tokens", n=42)``): a ``custom`` event with ``name``."""
        emit = self._env.emit
        if emit is not None:
            emit(self.node_id, name, data)

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled: long nodes should check it and return early."""
        c = self._env.cancelled
        return c() if c is not None else False

    def output_of(self, node_id: str, default: Any = None) -> Any:
        try:
            return self._env.read(OUTPUTS_PREFIX + node_id)
        except KeyError:
            return default

    def __repr__(self) -> str:
        return f"<NodeContext run={self.run_id} node={self.node_id} visit={self.visit} attempt={self.attempt}>"


def condition_resolver(output: Any, action: str | None, input_: Any, state: Mapping[str, Any],
                       outputs: Mapping[str, Any]) -> Callable[[str], Any]:
    """What a name in an edge condition means, the same on every executor: ``result``,
    ``output``, ``action``, ``input``, ``state``/``context``, ``outputs``, else a state key,
    else a node's output (each executor passes its own, possibly lazy, state and outputs)."""

    def resolve(name: str) -> Any:
        if name == "result":
            return {"output": output, "action": action}
        if name == "output":
            return output
        if name == "action":
            return action
        if name in ("state", "context"):
            return state
        if name == "outputs":
            return outputs
        if name == "input":
            return input_
        try:
            return state[name]
        except KeyError:
            return outputs[name]

    return resolve


def lookup_key(key: str, read: Reader, *, state_first: bool = False) -> Any:
    """Resolve a blueprint ``inputs`` key: a node id means that node's output (Flowcraft's rule),
    then a state key, then a dotted path ``x.k`` — into node ``x``'s output when ``x`` is a node
    that ran (Flowcraft's ``resolveInputValue``), else into state key ``x``; ``None`` when
    nothing matches. ``state_first``: the state key before the node's output, as Flowcraft's
    ``SubflowNode`` reads its ``params.inputs``."""
    order = (key, OUTPUTS_PREFIX + key) if state_first else (OUTPUTS_PREFIX + key, key)
    for k in order:
        try:
            return read(k)
        except KeyError:
            pass
    if "." in key:
        head, *rest = key.split(".")
        heads = (head, OUTPUTS_PREFIX + head) if state_first else (OUTPUTS_PREFIX + head, head)
        try:
            value = read(heads[0])
        except KeyError:
            try:
                value = read(heads[1])
            except KeyError:
                return None
        for part in rest:
            if isinstance(value, Mapping):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return None
        return value
    return None


def lookup_source(source: str | Sequence[str], read: Reader, *, state_first: bool = False) -> Any:
    """One ``inputs`` source: a key (see :func:`lookup_key`) or a list of candidate keys, of which
    the first that has a value wins — how a join after exclusive branches picks the branch that
    ran (Flowcraft's ``["send_interview_email", "send_rejection_email"]``)."""
    if isinstance(source, str):
        return lookup_key(source, read, state_first=state_first)
    for key in source:
        value = lookup_key(str(key), read, state_first=state_first)
        if value is not None:
            return value
    return None


def resolve_inputs(spec: str | Mapping[str, str | Sequence[str]], read: Reader) -> Any:
    """A node's ``inputs``: one key → that value; a mapping → ``{name: value}`` (each value a key
    or a list of candidate keys)."""
    if isinstance(spec, str):
        return lookup_key(spec, read)
    return {name: lookup_source(key, read) for name, key in spec.items()}
