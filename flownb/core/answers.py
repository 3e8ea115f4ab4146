"""Checking a person's answer to a ``wait`` / ``approval`` node, and routing it to an edge.

Why a small validator of our own: the core depends on pydantic and PyYAML only, and an answer
schema in a blueprint needs only the common part of JSON Schema (types, enums, objects with
required properties, arrays, bounds). Anything else is refused when the node parks, naming the
keyword, rather than silently ignored — a schema that does not check what it says is worse than
none.

Routing (the same on both executors): an answer that is the string of a choice (or of one of
the node's edge actions) takes that action; an object with a string ``"action"`` takes that
action; anything else takes the default edges. The answer itself is the node's output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import FlownbError

SUPPORTED = frozenset({"type", "enum", "const", "properties", "required", "additionalProperties",
                       "items", "minItems", "maxItems", "minLength", "maxLength", "minimum",
                       "maximum", "pattern", "title", "description", "default"})
_TYPES: dict[str, Any] = {"string": str, "boolean": bool, "object": Mapping, "array": list,
                          "null": type(None)}


class AnswerError(FlownbError):
    """An answer (or a wait node's schema/choices) is not acceptable; nothing was changed."""


def check_schema(schema: Any, where: str = "schema") -> None:
    """Refuse schemas using keywords this validator does not implement."""
    if not isinstance(schema, Mapping):
        raise AnswerError(f"{where} must be a JSON schema object, got {type(schema).__name__}")
    unknown = sorted(set(schema) - SUPPORTED)
    if unknown:
        raise AnswerError(f"{where} uses {unknown}, which flownb's answer schemas do not "
                          f"support (supported: {sorted(SUPPORTED)})")
    for name, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.properties.{name}")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")


def _type_ok(value: Any, t: str) -> bool:
    if t in ("integer", "number"):
        kinds = int if t == "integer" else (int, float)
        return isinstance(value, kinds) and not isinstance(value, bool)
    py = _TYPES.get(t)
    if py is None:
        raise AnswerError(f"unknown JSON schema type {t!r} (use one of "
                          f"{sorted([*_TYPES, 'integer', 'number'])})")
    return isinstance(value, py)


def validate(value: Any, schema: Mapping[str, Any], path: str = "answer") -> None:
    """Raise :class:`AnswerError` naming the first place where ``value`` breaks ``schema``."""
    t = schema.get("type")
    if t is not None:
        types = [t] if isinstance(t, str) else list(t)
        if not any(_type_ok(value, x) for x in types):
            raise AnswerError(f"{path} must be of type {' or '.join(types)}, got "
                              f"{type(value).__name__} {value!r:.60}")
    if "enum" in schema and value not in schema["enum"]:
        raise AnswerError(f"{path} must be one of {schema['enum']}, got {value!r:.60}")
    if "const" in schema and value != schema["const"]:
        raise AnswerError(f"{path} must be {schema['const']!r}, got {value!r:.60}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise AnswerError(f"{path} must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise AnswerError(f"{path} must have at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise AnswerError(f"{path} must match the pattern {schema['pattern']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise AnswerError(f"{path} must be >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise AnswerError(f"{path} must be <= {schema['maximum']}, got {value}")
    if isinstance(value, Mapping):
        props = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if req not in value:
                raise AnswerError(f"{path} is missing the required property {req!r}")
        for k, v in value.items():
            if k in props:
                validate(v, props[k], f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                raise AnswerError(f"{path} has the property {k!r}, which the schema does not "
                                  f"allow (allowed: {sorted(props)})")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise AnswerError(f"{path} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise AnswerError(f"{path} must have at most {schema['maxItems']} items")
        if "items" in schema:
            for i, v in enumerate(value):
                validate(v, schema["items"], f"{path}[{i}]")


def check_answer(info: Mapping[str, Any], value: Any) -> None:
    """Is ``value`` an acceptable answer to the wait described by ``info``?"""
    choices = info.get("choices")
    if choices:
        picked = value.get("action") if isinstance(value, Mapping) else value
        if picked not in choices:
            raise AnswerError(f"answer {value!r:.80} is not one of the choices {choices} (or an "
                              'object {"action": <choice>, ...})')
    schema = info.get("schema")
    if schema:
        validate(value, schema)


def route(info: Mapping[str, Any], value: Any) -> str | None:
    """The action an answer takes (``None`` = the default edges)."""
    if isinstance(value, Mapping):
        action = value.get("action")
        return action if isinstance(action, str) else None
    if isinstance(value, str) and (value in (info.get("choices") or ())
                                   or value in (info.get("actions") or ())):
        return value
    return None
