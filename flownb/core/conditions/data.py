"""What a condition may read: JSON data and flownb's own read-only views, never user objects.

Why one module: this is the safety boundary of the condition language (no attribute access, no
user ``__len__``/``__getitem__``/property ever runs), and one boundary must live in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any



class _EvalError(Exception):
    """Raised inside closures; :meth:`Condition.evaluate` adds the source and ``where``."""


def _tname(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _lookup(obj: Any, key: Any) -> Any:
    """One path step over JSON data: dict key or list/string index; anything missing is None.

    Only JSON-shaped data is read (dict, list, tuple, str, int, float, bool, None) and flownb's
    own read-only views of a run's state: never an attribute of an arbitrary object, so neither
    ``gen.gi_frame.f_globals`` nor ``module.os.environ`` is reachable, and no user ``__len__``,
    ``__getitem__`` or property runs. Containers are read through the built-in methods
    (``dict.get``, ``list.__getitem__``) so a subclass's overrides do not run either.
    """
    if obj is None:
        return None
    if isinstance(obj, dict):
        try:
            return _data(dict.get(obj, key))
        except TypeError:  # unhashable key from a dynamic subscript
            return None
    if isinstance(obj, (list, tuple, str)):
        if key == "length":  # Flowcraft's (JavaScript's) `items.length`
            return len(obj) if type(obj) in (list, tuple, str) else _BASE_LEN[_base(obj)](obj)
        if type(key) is int:
            n = len(obj) if type(obj) in (list, tuple, str) else _BASE_LEN[_base(obj)](obj)
            if -n <= key < n:
                return _data(_BASE_GET[_base(obj)](obj, key))
        return None
    if isinstance(obj, (int, float)):
        return None
    if _is_view(obj):
        try:
            return _data(obj[key])
        except (KeyError, IndexError, TypeError):
            return None
    raise _EvalError(_not_data(obj))


_BASES = (list, tuple, str)
_BASE_GET: dict[type, Callable[[Any, int], Any]] = {
    list: list.__getitem__, tuple: tuple.__getitem__, str: str.__getitem__}
_BASE_LEN: dict[type, Callable[[Any], int]] = {list: list.__len__, tuple: tuple.__len__,
                                               str: str.__len__}
_PLAIN = frozenset({str, int, float, bool, dict, list, tuple, type(None)})
_VIEW_TYPES: set[type] = set()


def _base(obj: Any) -> type:
    return next(b for b in _BASES if isinstance(obj, b))


def register_view(*classes: type) -> None:
    """Let conditions read through these read-only ``Mapping`` classes (views of run state).

    Classes defined inside the ``flownb`` package are trusted without this; user-defined
    mappings are not, because reading them would run their code.
    """
    _VIEW_TYPES.update(classes)


def _is_view(obj: Any) -> bool:
    t = type(obj)
    if t in _VIEW_TYPES:
        return True
    trusted = isinstance(obj, (Mapping, MappingProxyType)) and (
        t is MappingProxyType or t.__module__.split(".", 1)[0] == "flownb")
    if trusted:
        _VIEW_TYPES.add(t)
    return trusted


def _not_data(obj: Any) -> str:
    return (f"a value of type {type(obj).__name__} is not JSON data; conditions read only "
            "dicts, lists, strings, numbers, booleans and null (have the node return plain data)")


def _data(v: Any) -> Any:
    """The value a path step yields, if it is JSON data (or a flownb view); else an error."""
    if type(v) in _PLAIN or isinstance(v, (str, int, float, dict, list, tuple)) or _is_view(v):
        return v
    raise _EvalError(_not_data(v))

