"""Edge-condition syntax: tokenizer, AST node classes and the Pratt parser.

Why separate from evaluation: parsing runs once when a blueprint loads and owns the length and
nesting limits (a hostile condition must not exhaust the recursion limit); evaluation
(:mod:`flownb.core.conditions.evaluate`) only ever sees a finished, bounded tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

from flownb.core.errors import ConditionError

MAX_LENGTH = 2000
MAX_DEPTH = 50

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

