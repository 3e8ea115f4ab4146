"""Strict JSON encoding of run data (outputs, state, inputs): standard JSON or a clear error.

Python's ``json.dumps`` accepts two things that lose data silently on the way back:

* ``NaN`` / ``Infinity`` are written as bare words that are not JSON (JavaScript, Go and Lua's
  cjson reject or mangle them), so a value written by one worker cannot be read by every reader;
* non-string keys are converted to strings, so ``{1: "a", "1": "b"}`` becomes an object with the
  key ``"1"`` twice and one of the values disappears when it is read back.

:func:`dumps` refuses both (and values nested too deeply to encode), naming where in the value
the problem is, so the node that produced it fails with a message instead of its data changing.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import FlownbError

__all__ = ["JSONDataError", "check", "dumps"]

_CONTAINERS = (dict, list, tuple)


class JSONDataError(FlownbError, ValueError):
    """A value cannot be stored as standard JSON without changing it."""


def dumps(value: Any, *, what: str = "value") -> str:
    """Compact, strict JSON text of ``value`` (see the module docstring for what is refused)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # NaN / inf, or a circular reference
        reason = str(exc)
        if "Out of range float" in reason:
            reason = f"{_where_nonfinite(value, what)} is NaN or infinite, which standard JSON " \
                     "cannot represent (use null or a string such as \"inf\")"
        raise JSONDataError(f"{what} is not JSON-serialisable: {reason}; distributed runs store "
                            "state and outputs as JSON") from None
    except TypeError as exc:
        raise JSONDataError(f"{what} is not JSON-serialisable ({exc}); distributed runs store "
                            "state and outputs as JSON") from None
    except RecursionError:
        raise JSONDataError(f"{what} is nested too deeply to store as JSON") from None
    _check_keys(value, what)
    return text


def check(value: Any, what: str = "value") -> None:
    """Refuse NaN/inf and colliding keys anywhere in ``value`` (other types are not judged here)."""
    where = _where_nonfinite(value, what, default=None)
    if where is not None:
        raise JSONDataError(f"{where} is NaN or infinite, which standard JSON cannot represent "
                            "(use null, a string such as \"inf\", or a large finite number)")
    _check_keys(value, what)


def _json_key(k: Any) -> str:
    """The string ``json.dumps`` writes for a dict key (it has already refused other types)."""
    if isinstance(k, str):
        return k
    if k is True or k is False or k is None:
        return {True: "true", False: "false", None: "null"}[k]
    return float.__repr__(k) if isinstance(k, float) else int.__repr__(k)


def _check_keys(value: Any, what: str) -> None:
    """Refuse dicts whose keys collide once JSON has turned them into strings."""
    stack: list[tuple[Any, str]] = [(value, what)]
    while stack:
        v, path = stack.pop()
        if isinstance(v, dict):
            if not all(type(k) is str for k in v):
                seen: dict[str, Any] = {}
                for k in v:
                    other = seen.setdefault(_json_key(k), k)
                    if other is not k:
                        raise JSONDataError(
                            f"{path} has the keys {other!r} and {k!r}, which are the same key "
                            f"{_json_key(k)!r} in JSON (one value would be lost); use distinct "
                            "string keys")
            stack.extend((x, f"{path}[{k!r}]") for k, x in v.items() if isinstance(x, _CONTAINERS))
        elif isinstance(v, (list, tuple)):
            stack.extend((x, f"{path}[{i}]") for i, x in enumerate(v) if isinstance(x, _CONTAINERS))


def _where_nonfinite(value: Any, what: str, default: str | None = "") -> str | None:
    """The path of the first NaN/inf in ``value``; ``default`` when there is none."""
    stack: list[tuple[Any, str]] = [(value, what)]
    while stack:
        v, path = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return path
        if isinstance(v, dict):
            stack.extend((x, f"{path}[{k!r}]") for k, x in reversed(list(v.items())))
        elif isinstance(v, (list, tuple)):
            stack.extend((x, f"{path}[{i}]") for i, x in reversed(list(enumerate(v))))
    return f"a number in {what}" if default == "" else default
