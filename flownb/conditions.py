"""Edge conditions: a tiny, safe boolean expression language for blueprint edges.

Blueprints are data (JSON/YAML) that may come from people other than the operator, so a condition
such as ``result.output.score > 0.5 and state.tier in ["gold", "silver"]`` is never handed to
Python's ``eval``/``exec``/``compile``.  Instead this module has its own tokenizer, a Pratt parser
building a tiny AST of the node classes below, and a compiler turning that AST into nested Python
closures.  Why closures: a condition is parsed once when the blueprint loads and evaluated on every
edge of every node visit, so evaluation must not re-walk a tree or allocate per call.

Names are identifiers that may contain single hyphens between letters (``route-by-total.total``
reads node ``route-by-total``, as Flowcraft's examples write it); subtraction of two names needs
spaces (``a - b``), and ``x-1`` is still ``x - 1``. ``.length`` of a list or a string is its
length, as in Flowcraft's JavaScript conditions. The same language gives edge ``transform``
expressions their value (:meth:`Condition.value`).

Why the language is this small: it can only *read* JSON data (dict keys, list indices — never an
attribute of an object) and call a fixed list of pure functions; nothing can be called on user
objects, no user ``__len__``/``__getitem__``/property runs, and the length (2000 characters) and
nesting (50 levels) limits bound both parse and evaluation time and stack depth, so a hostile
condition can waste neither memory nor the interpreter's recursion limit.  Undefined values
(missing keys, out-of-range indices, names the resolver does not know) behave like ``null``
because workflow state is sparse and "not there yet" is a normal thing to branch on.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn

from flownb.errors import ConditionError

__all__ = ["Condition", "compile_condition", "register_view", "MAX_LENGTH", "MAX_DEPTH"]

MAX_LENGTH = 2000
MAX_DEPTH = 50

Resolve = Callable[[str], Any]
Evaluator = Callable[[Resolve], Any]

# ----------------------------------------------------------------------------------- tokens
_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<str>"(?:[^"\\]|\\[\s\S])*"|'(?:[^'\\]|\\[\s\S])*')
  | (?P<op>===|!==|==|!=|<=|>=|&&|\|\||[<>!+\-*/%()\[\],.])
""", re.VERBOSE | re.ASCII)
_ALIASES = {"&&": "and", "||": "or", "!": "not", "===": "==", "!==": "!="}
_KEYWORDS = frozenset({"and", "or", "not", "in"})
_CONSTANTS: dict[str, Any] = {"true": True, "True": True, "false": False, "False": False,
                              "null": None, "None": None}
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t"}
_HINTS = {"=": " (use '==' to compare)", "&": " (use 'and' or '&&')", "|": " (use 'or' or '||')"}


class _Token(NamedTuple):
    kind: str   # "num" | "str" | "name" | "op" (symbols and keywords, aliases normalised) | "eof"
    value: Any
    pos: int
    raw: str


def _fail(src: str, where: str | None, message: str, pos: int) -> NoReturn:
    """Raise a compile error pointing at *pos*: first line is the message, then source and caret."""
    flat = "".join(c if c.isprintable() else " " for c in src)  # keep the caret aligned
    start = max(0, pos - 40)
    lead = "..." if start else ""
    snippet = flat[start:start + 80]
    err = ConditionError(f"{message} at column {pos + 1}\n    {lead}{snippet}\n"
                         f"    {' ' * (len(lead) + pos - start)}^", path=where)
    err.column = pos + 1  # type: ignore[attr-defined]
    raise err


def _tokenize(src: str, where: str | None) -> list[_Token]:
    tokens: list[_Token] = []
    pos, end = 0, len(src)
    while pos < end:
        m = _TOKEN_RE.match(src, pos)
        if m is None:
            ch = src[pos]
            if ch in "\"'":
                _fail(src, where, "unterminated string", pos)
            _fail(src, where, f"unexpected character {ch!r}{_HINTS.get(ch, '')}", pos)
        kind, raw = m.lastgroup or "", m.group()
        if kind == "num":
            tokens.append(_Token("num", float(raw) if any(c in raw for c in ".eE") else int(raw),
                                 pos, raw))
        elif kind == "name":
            tokens.append(_Token("op" if raw in _KEYWORDS else "name", raw, pos, raw))
        elif kind == "str":
            tokens.append(_Token("str", _unescape(src, where, raw, pos), pos, raw))
        elif kind == "op":
            tokens.append(_Token("op", _ALIASES.get(raw, raw), pos, raw))
        pos = m.end()
    tokens.append(_Token("eof", None, end, ""))
    return tokens


def _unescape(src: str, where: str | None, raw: str, pos: int) -> str:
    body = raw[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]  # the token regex guarantees a character follows every backslash
            if nxt not in _ESCAPES:
                _fail(src, where, f"unknown escape '\\{nxt}' in string", pos + 1 + i)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# -------------------------------------------------------------------------------------- AST
@dataclass(eq=False, slots=True)
class Node:
    """Base AST node; ``height`` is tracked so over-deep trees are refused before compiling."""

    pos: int
    height: int = field(init=False, default=1)

    def __post_init__(self) -> None:
        self.height = 1 + max((c.height for c in self.children()), default=0)

    def children(self) -> list[Node]:
        return []


@dataclass(eq=False, slots=True)
class Lit(Node):
    value: Any


@dataclass(eq=False, slots=True)
class Name(Node):
    name: str


@dataclass(eq=False, slots=True)
class ListLit(Node):
    items: list[Node]

    def children(self) -> list[Node]:
        return self.items


@dataclass(eq=False, slots=True)
class Get(Node):
    """``obj.key`` and ``obj[key]`` alike: both use the same dict/sequence/attribute lookup."""

    obj: Node
    key: Node

    def children(self) -> list[Node]:
        return [self.obj, self.key]


@dataclass(eq=False, slots=True)
class Call(Node):
    fn: str
    args: list[Node]

    def children(self) -> list[Node]:
        return self.args


@dataclass(eq=False, slots=True)
class Unary(Node):
    op: str
    operand: Node

    def children(self) -> list[Node]:
        return [self.operand]


@dataclass(eq=False, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node

    def children(self) -> list[Node]:
        return [self.left, self.right]


@dataclass(eq=False, slots=True)
class Logic(Node):
    """n-ary ``and``/``or``: flattened so long chains stay shallow and evaluate in one loop."""

    op: str
    operands: list[Node]

    def children(self) -> list[Node]:
        return self.operands


# ----------------------------------------------------------------------------------- parser
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
_LBP: dict[str | None, int] = {"or": 10, "and": 20, **{op: 40 for op in _COMPARISONS},
                               "+": 50, "-": 50, "*": 60, "/": 60, "%": 60,
                               ".": 80, "[": 80, "(": 80}
_NOT_BP, _NEG_BP = 30, 70
# name -> (min args, max args or None)
_ARITY: dict[str, tuple[int, int | None]] = {
    "len": (1, 1), "lower": (1, 1), "upper": (1, 1), "contains": (2, 2), "startswith": (2, 2),
    "endswith": (2, 2), "exists": (1, 1), "int": (1, 1), "float": (1, 1), "str": (1, 1),
    "abs": (1, 1), "min": (1, None), "max": (1, None)}


class _Parser:
    """Pratt parser; ``depth`` bounds recursion, node heights bound left-deep chains."""

    def __init__(self, src: str, where: str | None, tokens: list[_Token]) -> None:
        self.src, self.where, self.toks, self.i, self.depth = src, where, tokens, 0, 0

    def fail(self, message: str, pos: int) -> NoReturn:
        _fail(self.src, self.where, message, pos)

    def unexpected(self, tok: _Token) -> NoReturn:
        if tok.kind == "eof":
            self.fail("unexpected end of condition", tok.pos)
        raw = tok.raw if len(tok.raw) <= 20 else tok.raw[:17] + "..."
        self.fail(f"unexpected {raw!r}", tok.pos)

    def peek(self, ahead: int = 0) -> _Token:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def advance(self) -> _Token:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def is_op(self, tok: _Token, value: str) -> bool:
        return tok.kind == "op" and tok.value == value

    def expect(self, value: str) -> _Token:
        tok = self.advance()
        if not self.is_op(tok, value):
            self.unexpected(tok)
        return tok

    def checked(self, node: Node) -> Node:
        if node.height > MAX_DEPTH:
            self.fail(f"condition is nested too deeply (limit {MAX_DEPTH} levels)", node.pos)
        return node

    def parse(self) -> Node:
        node = self.expression(0)
        if self.peek().kind != "eof":
            self.unexpected(self.peek())
        return node

    def expression(self, rbp: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"condition is nested too deeply (limit {MAX_DEPTH} levels)", self.peek().pos)
        left = self.prefix()
        last_was_comparison = False
        while True:
            tok = self.peek()
            op = tok.value if tok.kind == "op" else None
            if op == "not" and self.is_op(self.peek(1), "in"):
                op = "not in"
            lbp = _LBP.get(op, 0)
            if lbp <= rbp:
                break
            if op in _COMPARISONS and last_was_comparison:
                self.fail(f"comparisons cannot be chained ({tok.raw!r} follows another "
                          "comparison; write 'a < b and b < c')", tok.pos)
            self.advance()
            if op == "not in":
                self.advance()
            if op == ".":
                name = self.advance()
                if not (name.kind == "name" or (name.kind == "op" and name.raw.isalpha())):
                    self.fail("expected a name after '.'", name.pos)
                if name.raw.startswith("__"):
                    self.fail(f"attribute {name.raw!r} is not allowed", name.pos)
                left = Get(tok.pos, left, Lit(name.pos, name.raw))
            elif op == "[":
                key = self.expression(0)
                self.expect("]")
                left = Get(tok.pos, left, key)
            elif op == "(":
                self.fail("only the built-in functions can be called", tok.pos)
            elif op in ("and", "or"):
                right = self.expression(lbp)
                operands = left.operands if isinstance(left, Logic) and left.op == op else [left]
                left = Logic(left.pos, op, [*operands, right])
            else:
                left = Binary(tok.pos, op or "", left, self.expression(lbp))
            left = self.checked(left)
            last_was_comparison = op in _COMPARISONS
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        tok = self.advance()
        if tok.kind in ("num", "str"):
            return Lit(tok.pos, tok.value)
        if tok.kind == "name":
            if tok.value in _CONSTANTS:
                return Lit(tok.pos, _CONSTANTS[tok.value])
            if self.is_op(self.peek(), "("):
                return self.call(tok)
            return Name(tok.pos, tok.value)
        if tok.kind == "op":
            if tok.value == "(":
                inner = self.expression(0)
                self.expect(")")
                return inner
            if tok.value == "[":
                return self.checked(ListLit(tok.pos, self.sequence("]")))
            if tok.value == "not":
                return self.checked(Unary(tok.pos, "not", self.expression(_NOT_BP)))
            if tok.value == "-":
                operand = self.expression(_NEG_BP)
                if isinstance(operand, Lit) and type(operand.value) in (int, float):
                    return Lit(tok.pos, -operand.value)  # fold, so `x > -1` compares to a constant
                return self.checked(Unary(tok.pos, "-", operand))
        self.unexpected(tok)

    def sequence(self, close: str) -> list[Node]:
        items: list[Node] = []
        while not self.is_op(self.peek(), close):
            items.append(self.expression(0))
            if not self.is_op(self.peek(), ","):
                break
            self.advance()
        self.expect(close)
        return items

    def call(self, name: _Token) -> Node:
        if name.value not in _ARITY:
            self.fail(f"unknown function {name.value!r} (allowed: {', '.join(sorted(_ARITY))})",
                      name.pos)
        self.advance()  # "("
        args = self.sequence(")")
        lo, hi = _ARITY[name.value]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}"
            self.fail(f"{name.value}() takes {want} argument(s), got {len(args)}", name.pos)
        return self.checked(Call(name.pos, name.value, args))


# ---------------------------------------------------------------------------------- runtime
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


# ------------------------------------------------------------------------------- public API
class Condition:
    """A compiled edge condition: parse once, :meth:`evaluate` many times.

    ``names`` and ``paths`` let an executor fetch only what the condition reads (e.g. one
    Redis hash field per path) before evaluating it.
    """

    __slots__ = ("source", "names", "paths", "where", "_fn")

    def __init__(self, source: str, names: frozenset[str], paths: tuple[tuple[str, ...], ...],
                 fn: Evaluator, where: str | None = None) -> None:
        self.source, self.names, self.paths, self.where, self._fn = source, names, paths, where, fn

    def evaluate(self, resolve: Resolve) -> bool:
        """Evaluate with ``resolve(root_name)``; a ``KeyError`` from it means "undefined"."""
        return bool(self.value(resolve))

    def value(self, resolve: Resolve) -> Any:
        """The expression's value, not just its truth (edge ``transform`` expressions)."""
        try:
            return self._fn(resolve)
        except _EvalError as e:
            raise ConditionError(f"{e} in {self.source!r}", path=self.where) from None
        except RecursionError:  # e.g. comparing or str() of a value nested thousands deep
            raise ConditionError(f"a value is nested too deeply to evaluate {self.source!r}",
                                 path=self.where) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as e:
            raise ConditionError(f"{type(e).__name__}: {e} while evaluating {self.source!r}",
                                 path=self.where) from None

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __reduce__(self) -> tuple[Any, ...]:
        # closures do not pickle; the source does, and recompiling it is cheap and deterministic
        return (_recompile, (self.source, self.where))


def _recompile(source: str, where: str | None) -> Condition:
    return compile_condition(source, where=where)


def compile_condition(text: str, *, where: str | None = None) -> Condition:
    """Parse and compile *text*; raise :class:`ConditionError` (with ``path=where``) if invalid."""
    if not isinstance(text, str):
        raise ConditionError(f"a condition must be a string, got {type(text).__name__}",
                             path=where)
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"condition is {len(text)} characters long; the limit is "
                             f"{MAX_LENGTH}", path=where)
    if not text.strip():
        raise ConditionError("condition is empty", path=where)
    node = _Parser(text, where, _tokenize(text, where)).parse()
    names, paths = _collect(node)
    return Condition(text, names, paths, _compile(node), where)
