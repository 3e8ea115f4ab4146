"""Pydantic's validation errors as one line per problem, in the blueprint's own terms.

``nodes[2] (id 'draft').config.timeout_s: expected a number`` — the path inside the document
with the node id where there is one, and what was expected — so loading a blueprint never shows
a pydantic traceback (:class:`~flownb.core.errors.BlueprintError` carries these lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError


def _explain(exc: ValidationError, data: Mapping[str, Any]) -> str:
    """One line per problem: ``nodes[2] (id 'draft').config.timeout_s: expected a number``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = err.get("loc", ())
        lines.append(f"{_loc(loc, data)}: {_expectation(err)}")
    shown = lines[:8]
    more = f" (and {len(lines) - 8} more)" if len(lines) > 8 else ""
    return "; ".join(shown) + more


def _loc(loc: Iterable[Any], data: Any) -> str:
    out = ""
    cur: Any = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            nxt = cur[part] if isinstance(cur, list) and part < len(cur) else None
            if isinstance(nxt, Mapping) and isinstance(nxt.get("id"), str):
                out += f" (id {nxt['id']!r})"
            cur = nxt
        else:
            out += f".{part}" if out else str(part)
            cur = cur.get(part) if isinstance(cur, Mapping) else None
    return out or "document"


def _expectation(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    got = err.get("input")
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the Blueprint schema)"
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{msg[0].lower() + msg[1:] if msg else msg}, got {shown}"
