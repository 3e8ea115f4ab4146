"""Blueprints: a workflow as plain data, validated by pydantic.

A blueprint is the single artefact every executor runs unchanged, so it must be data (JSON/YAML or a
dict), never code. The schema follows Flowcraft's (``{id, nodes, edges, metadata}``) so a Flowcraft
blueprint loads as-is: camelCase keys are accepted as aliases, and Flowcraft's units (milliseconds,
*total* attempts) are converted on the way in. Inside flownb every unit is in the field name
(``timeout_s``, ``retry_delay_s``) and ``retries`` counts *extra* attempts.

Loading never shows a pydantic traceback: :func:`load` turns every validation problem into one
:class:`~flownb.core.errors.BlueprintError` naming the file, the path inside the document (with the node
id where there is one) and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from .display import view
from .errors import BlueprintError
from .explain import _explain
from .reading import _file_id, read_capped, safe_yaml

if TYPE_CHECKING:
    from .lint import Problem
    from .registry import Registry

JoinStrategy = Literal["all", "any"]

#: ``uses`` names that the runtime implements itself (they need to start child runs).
STRUCTURAL_NODES = frozenset({"subflow", "map"})


_FLOWCRAFT_NUMBERS = frozenset({"maxRetries", "retryDelay", "timeout"})
#: longest accepted ``timeout_s`` (7 days) and retry delay (1 day)
MAX_TIMEOUT_S = 7 * 86400.0
MAX_DELAY_S = 86400.0


def _number(v: Any) -> Any:
    """Flowcraft files sometimes quote numbers ("5000"); convert before the unit conversion."""
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return v
        return int(f) if f.is_integer() else f
    return v


class NodeConfig(BaseModel):
    """How a node is run: retries, timeout, fallback, join and loop guard."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    # Upper bounds (issue 11.15): a timeout of 1e400 ms (inf) or a delay of 1e308 s loads fine but
    # overflows timers later (setitimer, asyncio deadlines), far from the blueprint; refuse it here.
    retries: int = Field(0, ge=0, le=100, description="extra attempts after the first failure")
    retry_delay_s: float = Field(0.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False,
                                 description="wait before the first retry")
    backoff: float = Field(2.0, ge=1.0, allow_inf_nan=False,  # capped by max_retry_delay_s
                           description="multiplier applied to the delay at each retry")
    max_retry_delay_s: float = Field(60.0, ge=0, le=MAX_DELAY_S, allow_inf_nan=False)
    timeout_s: float | None = Field(None, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False,
                                    description="an attempt longer than this fails")
    fallback: str | None = Field(None, description="node id that takes over when this one fails")
    join: JoinStrategy = Field("all", alias="joinStrategy")
    max_visits: int | None = Field(None, ge=1, le=1_000_000, alias="maxVisits")

    @model_validator(mode="before")
    @classmethod
    def _flowcraft_units(cls, data: Any) -> Any:
        """Translate Flowcraft's keys: maxRetries = total attempts, retryDelay/timeout in ms."""
        if not isinstance(data, Mapping):
            return data
        data = {k: _number(v) if k in _FLOWCRAFT_NUMBERS else v for k, v in data.items()}
        if "maxRetries" in data:
            total = data.pop("maxRetries")
            if isinstance(total, int) and not isinstance(total, bool):
                data.setdefault("retries", max(0, total - 1))
            else:
                data.setdefault("retries", total)  # let the int validator explain
        if "retryDelay" in data:
            ms = data.pop("retryDelay")
            data.setdefault("retry_delay_s", ms / 1000 if isinstance(ms, (int, float)) else ms)
        if "timeout" in data:
            ms = data.pop("timeout")
            data.setdefault("timeout_s", ms / 1000 if isinstance(ms, (int, float)) else ms)
        for camel, snake in (("retryDelaySeconds", "retry_delay_s"), ("timeoutSeconds", "timeout_s"),
                             ("maxRetryDelay", "max_retry_delay_s")):
            if camel in data:
                data.setdefault(snake, data.pop(camel))
        return data

    def retry_delay(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` (attempts count from 1)."""
        if self.retry_delay_s <= 0:
            return 0.0
        try:
            delay = self.retry_delay_s * self.backoff ** (attempt - 1)
        except OverflowError:
            return float(self.max_retry_delay_s)
        return float(min(self.max_retry_delay_s, delay))


def _split_meta(data: Any, into: str) -> Any:
    """Move ``_``-prefixed keys (Flowcraft's compiler metadata: ``_sourceLocation``, ...) into the
    ``into`` field, kept as data, instead of rejecting them as unknown fields."""
    if not isinstance(data, Mapping):
        return data
    extra = {k: v for k, v in data.items() if isinstance(k, str) and k.startswith("_")}
    if not extra:
        return data
    out = {k: v for k, v in data.items() if k not in extra}
    current = out.get(into)
    out[into] = {**current, **extra} if isinstance(current, Mapping) else (
        extra if current is None else current)  # a wrong type is left for the validator
    return out


#: an ``inputs`` source: a node id or state key, or a list of candidates (the first with a value)
InputSource = str | list[str]


class Node(BaseModel):
    """One step: ``uses`` names a registered implementation, ``params`` configure it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    id: str = Field(min_length=1, max_length=200)
    uses: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: str | dict[str, InputSource] | None = None
    config: NodeConfig = Field(default_factory=NodeConfig)
    label: str | None = None
    description: str | None = None
    #: compiler metadata (``_sourceLocation``...) carried along, never interpreted
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flowcraft_node(cls, data: Any) -> Any:
        """Keep ``_`` metadata; a numeric ``params.blueprintId`` (Flowcraft's file names) is an id."""
        data = _split_meta(data, "meta")
        if isinstance(data, Mapping) and isinstance(data.get("params"), Mapping):
            params = data["params"]
            bid = params.get("blueprintId")
            if isinstance(bid, int) and not isinstance(bid, bool):
                data = {**data, "params": {**params, "blueprintId": str(bid)}}
        return data

    @field_validator("params")
    @classmethod
    def _portable_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Params travel as JSON (digest, Redis, files): NaN/inf or keys that collide as
        strings (``{1: .., "1": ..}``) would change on the way, so they are refused here."""
        from .jsondata import check

        check(v, "params")
        return v

    @field_validator("id")
    @classmethod
    def _id_chars(cls, v: str) -> str:
        if any(c in v for c in "|\n\r\t") or v != v.strip():
            raise ValueError("node ids may not contain '|', tabs, newlines or surrounding spaces")
        return v


class Edge(BaseModel):
    """A possible hand-off from ``source`` to ``target``.

    ``action`` selects the edge when the source returns that action (``None``/``"default"`` =
    the default edge); ``condition`` is an expression in flownb's safe condition language.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    source: str
    target: str
    action: str | None = None
    condition: str | None = None
    #: an expression over what the edge carries (``input``) and the state, giving the target's
    #: input; same language as conditions, never eval
    transform: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flowcraft_edge(cls, data: Any) -> Any:
        return _split_meta(data, "meta")

    @field_validator("action")
    @classmethod
    def _default_action(cls, v: str | None) -> str | None:
        return None if v in (None, "", "default") else v


class Blueprint(BaseModel):
    """A whole workflow. Immutable once built: executors cache their compiled form on it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    id: str = Field(min_length=1)
    nodes: list[Node]
    edges: list[Edge] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    #: how writes to a state key combine: append, merge, sum or replace (see flownb.core.reducers);
    #: a key without one may not be written by two visits running at the same time
    reducers: dict[str, Literal["append", "merge", "sum", "replace"]] = Field(default_factory=dict)

    @field_validator("reducers")
    @classmethod
    def _reducer_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not key or key.startswith("_outputs"):
                raise ValueError(f"reducer key {key!r} must be a state key (non-empty, not "
                                 "starting with '_outputs')")
        return v

    #: per-object memo (digest, compiled graphs); never part of the data or of equality
    _cache: dict[Any, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flowcraft_blueprint(cls, data: Any) -> Any:
        """``_`` keys go to ``metadata``; a numeric id (Flowcraft names blueprints 200, 201...) is a
        string."""
        data = _split_meta(data, "metadata")
        if isinstance(data, Mapping) and isinstance(data.get("id"), int) \
                and not isinstance(data.get("id"), bool):
            data = {**data, "id": str(data["id"])}
        return data

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, *, path: str | None = None,
                  default_id: str | None = None) -> Blueprint:
        """Validate ``data``; errors name ``path`` (a file) and the place in the document.

        ``default_id`` names a document without an ``id`` (Flowcraft's files have none: their
        loader uses the file name, ``200.json`` is blueprint ``"200"``).
        """
        if not isinstance(data, Mapping):
            raise BlueprintError(
                f"expected a mapping with 'id', 'nodes' and 'edges', got {type(data).__name__}",
                path=path)
        if default_id and "id" not in data:
            data = {"id": default_id, **data}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise BlueprintError(_explain(exc, data), path=path) from None
        except RecursionError:
            raise BlueprintError("the document is nested too deeply", path=path) from None

    @classmethod
    def from_json(cls, text: str | bytes, *, path: str | None = None,
                  default_id: str | None = None) -> Blueprint:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BlueprintError(f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}",
                                 path=path) from None
        except UnicodeDecodeError as exc:
            raise BlueprintError(f"not UTF-8 text (byte {exc.start}): {exc.reason}", path=path) from None
        except RecursionError:
            raise BlueprintError("invalid JSON: nested too deeply", path=path) from None
        return cls.from_dict(data, path=path, default_id=default_id)

    @classmethod
    def from_yaml(cls, text: str | bytes, *, path: str | None = None,
                  default_id: str | None = None) -> Blueprint:
        import yaml

        try:
            data = safe_yaml(text, path=path)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise BlueprintError(f"{where}invalid YAML: {problem}", path=path) from None
        except RecursionError:
            raise BlueprintError("invalid YAML: nested too deeply", path=path) from None
        return cls.from_dict(data, path=path, default_id=default_id)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Blueprint:
        """Read a ``.json``, ``.yaml`` or ``.yml`` file."""
        p = os.fspath(path)
        raw = read_capped(p)
        if p.endswith((".yaml", ".yml")):
            return cls.from_yaml(raw, path=p, default_id=_file_id(p))
        return cls.from_json(raw, path=p, default_id=_file_id(p))

    # -- views ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (snake_case keys, defaults omitted) that loads back identically."""
        return self.model_dump(mode="json", exclude_defaults=True, by_alias=False)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @property
    def digest(self) -> str:
        """Content hash: two equal blueprints share stored copies in Redis."""
        cached = self._cache.get("digest")
        if cached is None:
            raw = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
            cached = self._cache["digest"] = hashlib.sha256(raw).hexdigest()[:16]
        return str(cached)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def lint(self, registry: Registry | None = None) -> list[Problem]:
        """Every problem at once (errors and warnings), each with a code and a location."""
        from .lint import lint

        return lint(self, registry)

    def to_dot(self, **kwargs: Any) -> str:
        """Graphviz DOT source; see :func:`flownb.render.to_dot`."""
        return str(view("blueprint.dot")(self, **kwargs))

    def to_mermaid(self, **kwargs: Any) -> str:
        """Mermaid ``flowchart`` text (GitHub markdown, docs); see :func:`flownb.render.mermaid.to_mermaid`."""
        return str(view("blueprint.mermaid")(self, **kwargs))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return dict(view("blueprint.mimebundle")(self))

    def __repr__(self) -> str:
        # a one-line summary, like the notebook's: pydantic's default dumps every field (~1 KB)
        return (f"<Blueprint {self.id!r}: {len(self.nodes)} nodes, {len(self.edges)} edges, "
                f"digest {self.digest}>")

    __str__ = __repr__

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Blueprint:
        """A copy with its own memo: pydantic would share ``_cache``, so a modified copy would
        run the original's compiled graph."""
        new = super().model_copy(update=update, deep=deep)
        new._cache = {}
        return new

    def __eq__(self, other: object) -> bool:
        # the data decides; pydantic's default would also compare the private memo (_cache)
        if not isinstance(other, Blueprint):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:  # consistent with __eq__: equal data, equal digest
        return hash(self.digest)


def load(source: str | os.PathLike[str] | Mapping[str, Any] | Blueprint) -> Blueprint:
    """Accept whatever a user has at hand: a Blueprint, a dict, a file path, or JSON/YAML text."""
    if isinstance(source, Blueprint):
        return source
    if isinstance(source, Mapping):
        return Blueprint.from_dict(source)
    text = os.fspath(source)
    if os.path.exists(text) or text.endswith((".json", ".yaml", ".yml")):
        return Blueprint.load(text)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return Blueprint.from_json(text)
    return Blueprint.from_yaml(text)
