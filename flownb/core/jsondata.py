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
import os
import warnings
from collections.abc import Mapping
from typing import Any

from .errors import FlownbError

__all__ = ["CHECK_JSON_ENV", "CHECK_MODES", "JSONDataError", "JSONDataWarning", "check",
           "check_inputs", "check_mode", "check_node_data", "dumps", "encode_node_data"]

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
        where = _where_unencodable(value, what)
        raise JSONDataError(f"{where} is not JSON-serialisable ({exc}); distributed runs store "
                            "state and outputs as JSON: convert it first (str(x), "
                            "x.isoformat(), list(a_set), a dict of its fields)") from None
    except RecursionError:
        raise JSONDataError(f"{what} is nested too deeply to store as JSON") from None
    _check_keys(value, what)
    if not text.isascii():  # Redis takes UTF-8: a lone surrogate would fail there, raw
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JSONDataError(f"{what} holds text that is not valid Unicode (a lone surrogate "
                                f"{exc.object[exc.start:exc.end]!r}); pass real characters, or "
                                "bytes as base64 text") from None
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


_ENCODABLE = (str, int, float, type(None))


def _where_unencodable(value: Any, what: str) -> str:
    """The path of the first value ``json.dumps`` cannot encode (a datetime, a set...)."""
    stack: list[tuple[Any, str]] = [(value, what)]
    while stack:
        v, path = stack.pop()
        if isinstance(v, dict):
            stack.extend((x, f"{path}[{k!r}]") for k, x in reversed(list(v.items())))
        elif isinstance(v, (list, tuple)):
            stack.extend((x, f"{path}[{i}]") for i, x in reversed(list(enumerate(v))))
        elif not isinstance(v, _ENCODABLE):
            return path
    return what


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


# -- one rule for node outputs and state writes, on every executor ----------------------------------

#: ``FLOWNB_CHECK_JSON``: what an in-process run does with a node output or state write that is
#: not JSON data — ``raise`` (the default: the node fails, as it would on a worker), ``warn``
#: (a :class:`JSONDataWarning`, the run goes on) or ``off`` (objects that never leave the process)
CHECK_JSON_ENV = "FLOWNB_CHECK_JSON"
CHECK_MODES = ("raise", "warn", "off")


class JSONDataWarning(UserWarning):
    """A node's output or state write would fail on a worker (``check_json="warn"``)."""


def check_mode(mode: str | None = None) -> str:
    """The check mode to use: ``mode`` if given, else ``FLOWNB_CHECK_JSON``, else ``raise``."""
    if mode is None:
        mode = os.environ.get(CHECK_JSON_ENV, "").strip().lower() or "raise"
        where = f"{CHECK_JSON_ENV}={mode!r}"
    else:
        where = f"check_json={mode!r}"
    if mode not in CHECK_MODES:
        raise FlownbError(f"{where} is not a check mode; use one of {', '.join(CHECK_MODES)}")
    return mode


def encode_node_data(output: Any, writes: Mapping[str, Any], *, utf8: bool = False) -> str:
    """The JSON text of a node's output after checking its state writes too: what a worker
    stores, and the one place whose errors say which value (``output[...]``, ``state[...]``).
    ``utf8``: also encode each text (a lone surrogate raises :class:`UnicodeEncodeError`)."""
    text = dumps(output, what="output")
    if utf8:
        text.encode()
    for k, v in writes.items():
        wtext = dumps(v, what=f"state[{k!r}]")
        if utf8:
            wtext.encode()
    return text


#: JSON scalars whose exact type needs no further look (a float still does: NaN/inf)
_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether ``value`` is certainly JSON data that survives a round trip unchanged: exact
    built-in types, string keys, finite floats. ``False`` only means "ask :func:`dumps`"."""
    t = type(value)
    if t in _SCALARS:
        return True
    if t is float:
        return math.isfinite(value)
    if t is not dict and t is not list and t is not tuple:
        return False
    stack = [value]
    pop, push, scalars, isfinite = stack.pop, stack.append, _SCALARS, math.isfinite
    while stack:
        v = pop()
        items = v
        if type(v) is dict:
            for k in v:
                if type(k) is not str:
                    return False
            items = v.values()
        for x in items:
            tx = type(x)
            if tx in scalars:
                continue
            if tx is float:
                if not isfinite(x):
                    return False
            elif tx is dict or tx is list or tx is tuple:
                push(x)
            else:
                return False
        if len(stack) > 100_000:  # absurdly wide: let the encoder judge it
            return False
    return True


def check_inputs(inputs: Mapping[str, Any], mode: str) -> None:
    """Hold a run's inputs to the rule ``submit`` applies (it stores each as JSON, refusing what
    :func:`dumps` refuses): raised or warned before the run starts, as ``mode`` says."""
    if mode == "off" or all(_plain(v) for v in inputs.values()):
        return
    try:
        for k, v in inputs.items():
            dumps(v, what=f"inputs[{k!r}]")
    except JSONDataError as exc:
        if mode == "raise":
            raise JSONDataError(f"{exc.message} (in process too, so it never breaks only on "
                                "workers; check_json='warn' or FLOWNB_CHECK_JSON=warn to go on)"
                                ) from None
        warnings.warn(f"{exc.message} (this run goes on in process because check_json='warn'; "
                      "submitting it to workers fails)", JSONDataWarning, stacklevel=2)


def check_node_data(output: Any, writes: Mapping[str, Any], mode: str, *,
                    node_id: str | None = None, run_id: str | None = None) -> None:
    """Hold an in-process node's output and state writes to the rule a worker's commit applies
    (:func:`encode_node_data`), so a prototype never breaks only when moved to workers.

    Why cheap: plain data (the common case) is accepted by a walk over exact built-in types
    that builds no text; only what that walk cannot vouch for (a subclass, a non-string key, a
    datetime...) is encoded, and its error is then word for word the worker's."""
    if mode == "off":
        return
    if _plain(output) and (not writes or all(_plain(v) for v in writes.values())):
        return
    try:
        encode_node_data(output, writes)
    except JSONDataError as exc:
        if mode == "raise":
            raise JSONDataError(f"{exc.message} (in process too, so it never breaks only on "
                                "workers; check_json='warn' or FLOWNB_CHECK_JSON=warn to go on)",
                                node_id=node_id, run_id=run_id) from None
        where = f"node {node_id!r}: " if node_id else ""
        warnings.warn(f"{where}{exc.message} (this run goes on in process because "
                      f"check_json='warn'; on workers the node fails)", JSONDataWarning,
                      stacklevel=2)
