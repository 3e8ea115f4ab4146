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

The parts live in ``syntax`` (tokenizer, AST, parser), ``evaluate`` (compiling
to closures, read paths) and ``data`` (what may be read); their names are re-exported.
"""

from __future__ import annotations

from typing import Any

from flownb.core.errors import ConditionError

from .data import (  # noqa: F401 - re-exported
    _BASE_GET,
    _BASE_LEN,
    _BASES,
    _PLAIN,
    _VIEW_TYPES,
    _base,
    _data,
    _EvalError,
    _is_view,
    _lookup,
    _not_data,
    _tname,
    register_view,
)
from .evaluate import (  # noqa: F401 - re-exported
    _ARITH,
    _FUNCTIONS,
    _ORDER,
    Evaluator,
    _arith,
    _case,
    _contains,
    _extreme,
    _str_test,
    Resolve,
    _collect,
    _compare,
    _compile,
    _is_num,
    _static_chain,
)
from .syntax import (  # noqa: F401 - re-exported
    _ALIASES,
    _ARITY,
    _COMPARISONS,
    _CONSTANTS,
    _ESCAPES,
    _HINTS,
    _KEYWORDS,
    _LBP,
    _NEG_BP,
    _NOT_BP,
    _TOKEN_RE,
    MAX_DEPTH,
    MAX_LENGTH,
    Binary,
    Call,
    Get,
    ListLit,
    Lit,
    Logic,
    Name,
    Node,
    Unary,
    _fail,
    _Parser,
    _Token,
    _tokenize,
    _unescape,
)

__all__ = ["Condition", "compile_condition", "register_view", "MAX_LENGTH", "MAX_DEPTH"]


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
