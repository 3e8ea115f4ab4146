"""Linear-time matching of the ``pattern`` of an answer schema (a wait node's ``schema``).

Why not :func:`re.search`: Python's engine backtracks, so a pattern such as ``^(a+)+$`` against
a 31-character answer burns minutes of CPU inside ``resume()`` (measured: 103 s), and a pattern
that does not compile was only found when the first answer arrived. A blueprint may come from
elsewhere, so its patterns are data, not trusted code. Here a pattern is parsed once by Python's
own parser (so its syntax is exactly Python's) and matched by simulating the automaton
(Thompson's construction): time grows with ``len(pattern) * len(answer)``, never exponentially.

Supported: literals, ``.``, classes (``[a-z]``, ``\\d``, ``\\w``, ``\\s`` and negations), groups,
alternation, every quantifier (counted ones are expanded, up to :data:`MAX_STATES` states),
``^`` / ``$`` / ``\\A`` / ``\\Z`` / ``\\b`` / ``\\B``. Refused when the schema is checked (at
park and lint time), naming the construct: backreferences, lookaround, conditionals, atomic
groups and inline flags — they need backtracking or change the meaning of the rest.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# Python's own pattern parser (private modules, stable since 3.11), so the syntax is Python's
C: Any = importlib.import_module("re._constants")
P: Any = importlib.import_module("re._parser")

#: the largest automaton a pattern may compile to (``a{1000}`` is 1000 states)
MAX_STATES = 5000
_CACHE: dict[str, list[tuple[Any, ...]]] = {}


class PatternError(ValueError):
    """A pattern that does not compile, or uses a construct this matcher refuses."""


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


_CATEGORIES = {
    C.CATEGORY_DIGIT: str.isdecimal, C.CATEGORY_SPACE: str.isspace, C.CATEGORY_WORD: _is_word,
}
_NEGATED = {C.CATEGORY_NOT_DIGIT: C.CATEGORY_DIGIT, C.CATEGORY_NOT_SPACE: C.CATEGORY_SPACE,
            C.CATEGORY_NOT_WORD: C.CATEGORY_WORD}


def _class_pred(items: list[tuple[Any, Any]]) -> Any:
    negate = False
    tests: list[Any] = []
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            tests.append(lambda ch, c=chr(av): ch == c)
        elif op is C.RANGE:
            tests.append(lambda ch, lo=av[0], hi=av[1]: lo <= ord(ch) <= hi)
        elif op is C.CATEGORY and av in _CATEGORIES:
            tests.append(_CATEGORIES[av])
        elif op is C.CATEGORY and av in _NEGATED:
            tests.append(lambda ch, f=_CATEGORIES[_NEGATED[av]]: not f(ch))
        else:
            raise PatternError(f"unsupported character class item {op}")
    return lambda ch: any(t(ch) for t in tests) != negate


class _Builder:
    """Thompson construction: states are ``("char", pred, nxt)``, ``("split", a, b)``,
    ``("at", kind, nxt)`` or ``("match",)``; fragments are (start, list of dangling outs)."""

    def __init__(self) -> None:
        self.states: list[list[Any]] = []

    def new(self, *state: Any) -> int:
        if len(self.states) >= MAX_STATES:
            raise PatternError(f"pattern is too large (more than {MAX_STATES} states once its "
                               "counted repeats are expanded)")
        self.states.append(list(state))
        return len(self.states) - 1

    def patch(self, outs: list[tuple[int, int]], target: int) -> None:
        for s, slot in outs:
            self.states[s][slot] = target

    def seq(self, items: Any) -> tuple[int, list[tuple[int, int]]] | None:
        frag = None
        for op, av in items:
            f = self.item(op, av)
            if f is None:
                continue
            if frag is None:
                frag = f
            else:
                self.patch(frag[1], f[0])
                frag = (frag[0], f[1])
        return frag

    def empty(self) -> tuple[int, list[tuple[int, int]]]:
        s = self.new("split", None, -1)  # an epsilon: both outs go the same way
        self.states[s][2] = -1
        return s, [(s, 1)]

    def item(self, op: Any, av: Any) -> tuple[int, list[tuple[int, int]]] | None:
        if op is C.LITERAL:
            s = self.new("char", lambda ch, c=chr(av): ch == c, None)
        elif op is C.NOT_LITERAL:
            s = self.new("char", lambda ch, c=chr(av): ch != c, None)
        elif op is C.ANY:
            s = self.new("char", lambda ch: ch != "\n", None)
        elif op is C.IN:
            s = self.new("char", _class_pred(av), None)
        elif op is C.AT:
            if av not in (C.AT_BEGINNING, C.AT_BEGINNING_STRING, C.AT_END, C.AT_END_STRING,
                          C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
                raise PatternError(f"unsupported anchor {av}")
            s = self.new("at", av, None)
        elif op is C.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise PatternError("inline flags such as (?i:...) are not supported")
            return self.seq(sub) or self.empty()
        elif op is C.BRANCH:
            frags = [self.seq(alt) or self.empty() for alt in av[1]]
            start, outs = frags[-1][0], list(frags[-1][1])
            for f in reversed(frags[:-1]):
                start = self.new("split", f[0], start)
                outs = f[1] + outs
            return start, outs
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            return self.repeat(lo, hi, sub)
        else:
            raise PatternError(f"{str(op).lower()} (backreferences, lookaround, conditionals "
                               "and atomic groups need backtracking) is not supported")
        return s, [(s, 2)]

    def repeat(self, lo: int, hi: int, sub: Any) -> tuple[int, list[tuple[int, int]]]:
        parts: list[tuple[int, list[tuple[int, int]]]] = []
        for _ in range(lo):
            parts.append(self.seq(sub) or self.empty())
        if hi == C.MAXREPEAT:
            body = self.seq(sub) or self.empty()
            loop = self.new("split", body[0], None)
            self.patch(body[1], loop)
            parts.append((loop, [(loop, 2)]))
        else:
            for _ in range(hi - lo):  # each optional copy: split(copy, skip)
                body = self.seq(sub) or self.empty()
                opt = self.new("split", body[0], None)
                parts.append((opt, body[1] + [(opt, 2)]))
        if not parts:
            return self.empty()
        start, outs = parts[0]
        for f in parts[1:]:
            self.patch(outs, f[0])
            outs = f[1]
        return start, outs


def compile_pattern(pattern: Any) -> list[tuple[Any, ...]]:
    """The automaton of ``pattern`` (cached), or :class:`PatternError` saying what is wrong."""
    if not isinstance(pattern, str):
        raise PatternError(f"a pattern must be a string, got {type(pattern).__name__}")
    got = _CACHE.get(pattern)
    if got is not None:
        return got
    try:
        parsed = P.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise PatternError(f"pattern {pattern!r} does not compile: {exc}") from None
    if parsed.state.flags & ~int(re.UNICODE):
        raise PatternError(f"pattern {pattern!r}: inline flags such as (?i) are not supported")
    b = _Builder()
    try:
        frag = b.seq(parsed.data) or b.empty()
    except PatternError as exc:
        raise PatternError(f"pattern {pattern!r}: {exc}") from None
    final = b.new("match")
    b.patch(frag[1], final)
    states = [tuple(s) for s in b.states]
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[pattern] = [(frag[0],), *states]
    return _CACHE[pattern]


def _at(kind: Any, text: str, i: int) -> bool:
    n = len(text)
    if kind in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
        return i == 0
    if kind == C.AT_END:
        return i == n or (i == n - 1 and text[i] == "\n")
    if kind == C.AT_END_STRING:
        return i == n
    before = i > 0 and _is_word(text[i - 1])
    after = i < n and _is_word(text[i])
    return (before != after) if kind == C.AT_BOUNDARY else (before == after)


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (what ``re.search`` answers), in
    ``O(len(pattern) * len(text))``."""
    compiled = compile_pattern(pattern)
    start = compiled[0][0]
    states = compiled[1:]

    def closure(seeds: list[int], i: int, into: set[int]) -> bool:
        stack = list(seeds)
        while stack:
            s = stack.pop()
            if s in into:
                continue
            into.add(s)
            st = states[s]
            kind = st[0]
            if kind == "match":
                return True
            if kind == "split":
                stack.extend(x for x in (st[1], st[2]) if x != -1)
            elif kind == "at" and _at(st[1], text, i):
                stack.append(st[2])
        return False

    current: set[int] = set()
    for i in range(len(text) + 1):
        if closure([start], i, current):  # unanchored: a new attempt starts at every position
            return True
        if i == len(text):
            break
        ch = text[i]
        nxt = [st[2] for s in current if (st := states[s])[0] == "char" and st[1](ch)]
        current = set()
        if nxt and closure(nxt, i + 1, current):
            return True
    return False


__all__ = ["MAX_STATES", "PatternError", "compile_pattern", "search"]
