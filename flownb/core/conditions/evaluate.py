"""Compiling a condition's AST into nested closures, plus the names and paths it reads.

Why closures: a condition is evaluated on every edge of every node visit, so evaluation must not
re-walk a tree or allocate per call. Path steps go through :mod:`flownb.core.conditions.data`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from .data import _PLAIN, _data, _EvalError, _lookup, _tname
from .syntax import _COMPARISONS, Binary, Call, Get, ListLit, Lit, Logic, Name, Node, Unary

Resolve = Callable[[str], Any]
Evaluator = Callable[[Resolve], Any]


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float))


def _arith(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Numbers only (plus str/list concatenation for ``+``).

    Python's ``"x" * 10**9`` or ``"%s" % obj`` would let a one-line condition allocate gigabytes
    or run formatting code, so those overloads are deliberately not available.
    """

    def apply(a: Any, b: Any) -> Any:
        ok = (_is_num(a) and _is_num(b)) or (
            op == "+" and type(a) is type(b) and type(a) in (str, list))
        if not ok:
            raise _EvalError(f"cannot apply '{op}' to {_tname(a)} and {_tname(b)}")
        try:
            return fn(a, b)
        except ZeroDivisionError:
            raise _EvalError(f"division by zero in '{op}'") from None
        except OverflowError:
            raise _EvalError(f"numeric overflow in '{op}'") from None
    return apply


_ARITH = {op: _arith(op, fn) for op, fn in (("+", operator.add), ("-", operator.sub),
          ("*", operator.mul), ("/", operator.truediv), ("%", operator.mod))}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compare(op: str, a: Any, b: Any) -> Any:
    """Ordering and membership with null-tolerance; other type mismatches become errors."""
    if op in _ORDER:
        if a is None or b is None:
            return False
        try:
            return _ORDER[op](a, b)
        except TypeError:
            raise _EvalError(f"cannot compare {_tname(a)} and {_tname(b)} with '{op}'") from None
    if b is None:  # membership in an undefined collection: like an empty one
        return op == "not in"
    try:
        found = a in b
    except TypeError:
        if a is None:
            found = False
        else:
            raise _EvalError(f"cannot test {_tname(a)} '{op}' {_tname(b)}") from None
    return not found if op == "not in" else found


def _str_test(method: str) -> Callable[[Any, Any], bool]:
    def test(s: Any, p: Any) -> bool:
        if s is None or p is None:
            return False
        if not (isinstance(s, str) and isinstance(p, str)):
            raise TypeError(f"expects strings, got {_tname(s)} and {_tname(p)}")
        return bool(getattr(s, method)(p))
    return test


def _case(method: str) -> Callable[[Any], Any]:
    def convert(s: Any) -> Any:
        if s is None:
            return None
        if not isinstance(s, str):
            raise TypeError(f"expects a string, got {_tname(s)}")
        return getattr(s, method)()
    return convert


def _contains(haystack: Any, needle: Any) -> bool:
    return bool(_compare("in", needle, haystack))


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def extreme(*args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            return pick(args[0])
        return pick(args)
    return extreme


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": lambda x: 0 if x is None else len(x), "lower": _case("lower"), "upper": _case("upper"),
    "contains": _contains, "startswith": _str_test("startswith"),
    "endswith": _str_test("endswith"), "exists": lambda x: x is not None, "int": int,
    "float": float, "str": str, "abs": abs, "min": _extreme(min), "max": _extreme(max)}


def _static_chain(node: Node) -> tuple[str, tuple[Any, ...]] | None:
    """``a.b[0]`` -> ("a", ("b", 0)) when every key is a literal, else None."""
    keys: list[Any] = []
    while isinstance(node, Get):
        if not isinstance(node.key, Lit):
            return None
        keys.append(node.key.value)
        node = node.obj
    return (node.name, tuple(reversed(keys))) if isinstance(node, Name) else None


def _compile(node: Node) -> Evaluator:  # noqa: C901 - one branch per node type reads best
    """Turn the AST into closures once, so evaluation is plain nested calls with no dispatch."""
    if isinstance(node, Lit):
        value = node.value
        return lambda r: value
    if isinstance(node, ListLit):
        if all(isinstance(i, Lit) for i in node.items):
            const = [i.value for i in node.items]  # type: ignore[attr-defined]
            return lambda r: const  # nothing in the language can mutate it
        fs = [_compile(i) for i in node.items]
        return lambda r: [f(r) for f in fs]
    if isinstance(node, (Name, Get)):
        chain = _static_chain(node)
        if chain is not None:
            root, keys = chain

            def path(r: Resolve) -> Any:
                try:
                    v = r(root)
                except KeyError:
                    return None
                for k in keys:
                    v = v.get(k) if type(v) is dict else _lookup(v, k)
                return v if type(v) in _PLAIN else _data(v)
            return path
        assert isinstance(node, Get)
        of, kf = _compile(node.obj), _compile(node.key)
        return lambda r: _lookup(of(r), kf(r))
    if isinstance(node, Unary):
        f = _compile(node.operand)
        if node.op == "not":
            return lambda r: not f(r)

        def negate(r: Resolve) -> Any:
            v = f(r)
            if not _is_num(v):
                raise _EvalError(f"cannot negate {_tname(v)}")
            return -v
        return negate
    if isinstance(node, Logic):
        fs = [_compile(o) for o in node.operands]
        if node.op == "and":
            def all_(r: Resolve) -> bool:
                for f in fs:
                    if not f(r):
                        return False
                return True
            return all_

        def any_(r: Resolve) -> bool:
            for f in fs:
                if f(r):
                    return True
            return False
        return any_
    if isinstance(node, Call):
        fn, name, afs = _FUNCTIONS[node.fn], node.fn, [_compile(a) for a in node.args]

        def call(r: Resolve) -> Any:
            args = [f(r) for f in afs]
            try:
                return fn(*args)
            except (TypeError, ValueError, OverflowError) as e:
                raise _EvalError(f"{name}() failed: {e}") from None
        return call
    assert isinstance(node, Binary)
    lf, rf, op = _compile(node.left), _compile(node.right), node.op
    if op == "==":
        return lambda r: lf(r) == rf(r)
    if op == "!=":
        return lambda r: lf(r) != rf(r)
    if op in _COMPARISONS:
        if isinstance(node.right, Lit) and op in _ORDER and _is_num(node.right.value):
            const, order = node.right.value, _ORDER[op]

            def against_number(r: Resolve) -> Any:  # the hot shape: `path > 0.5`
                a = lf(r)
                if _is_num(a):
                    return order(a, const)
                return _compare(op, a, const)
            return against_number
        return lambda r: _compare(op, lf(r), rf(r))
    arith = _ARITH[op]
    return lambda r: arith(lf(r), rf(r))


def _collect(root: Node) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
    """Root names and the longest all-string static prefix of every path, in source order."""
    names: set[str] = set()
    paths: dict[tuple[str, ...], None] = {}

    def static(node: Node) -> tuple[str, ...] | None:
        if isinstance(node, Name):
            return (node.name,)
        if isinstance(node, Get) and isinstance(node.key, Lit) and type(node.key.value) is str:
            head = static(node.obj)
            return None if head is None else (*head, node.key.value)
        return None

    def walk(node: Node, outermost: bool) -> None:
        if isinstance(node, Name):
            names.add(node.name)
        if isinstance(node, (Name, Get)) and outermost and (p := static(node)) is not None:
            paths.setdefault(p)
        if isinstance(node, Get):  # a static chain is recorded once, by its outermost node
            walk(node.obj, outermost=static(node) is None)
            walk(node.key, True)
        else:
            for child in node.children():
                walk(child, True)

    walk(root, True)
    return frozenset(names), tuple(paths)

