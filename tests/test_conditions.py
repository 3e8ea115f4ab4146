"""Tests for flownb.core.conditions: the safe edge-condition language."""

from __future__ import annotations

import operator
import pickle
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flownb.core.conditions import MAX_DEPTH, MAX_LENGTH, Condition, compile_condition
from flownb.core.errors import ConditionError


@dataclass
class Doc:
    title: str = "Hello World"
    tags: list[str] = field(default_factory=lambda: ["a", "b"])
    _secret: str = "hidden"


CTX: dict[str, Any] = {
    "result": {"output": {"score": 0.7, "label": "spam", "items": [10, 20, 30]}, "action": "go"},
    "state": {
        "tier": "gold",
        "count": 3,
        "flag": True,
        "none": None,
        "name": "Alice",
        "keys": ["x", "y"],
        "idx": 1,
        "key": "tier",
        "_outputs": {"fetch-data": {"ok": True}, "n1": {"rows": [{"v": 5}]}},
        "doc": Doc(),
        "ns": SimpleNamespace(level=4, inner={"deep": "yes"}),
        "nested": [[1, 2], [3, 4]],
    },
    "n": 5,
}


def resolve(name: str) -> Any:
    return CTX[name]  # KeyError means "undefined"


def ev(text: str) -> bool:
    return compile_condition(text).evaluate(resolve)


def err(text: str, where: str | None = None) -> ConditionError:
    with pytest.raises(ConditionError) as info:
        compile_condition(text, where=where).evaluate(resolve)
    return info.value


# ------------------------------------------------------------------ operators and precedence
@pytest.mark.parametrize("text, expected", [
    # literals
    ("1", True), ("0", False), ("0.0", False), ("2.5e1 == 25", True), ('"a"', True), ("''", False),
    ("true", True), ("false", False), ("null", False), ("True", True), ("False", False),
    ("None", False), ("[]", False), ("[1, 'a']", True), ("[1, 'a'] == [1, \"a\"]", True),
    (r'"a\"b" == ' + "'a\"b'", True), (r"'it\'s' == " + '"it\'s"', True),
    (r'"back\\slash" == "back" + "\\" + "slash"', True), (r'len("a\nb") == 3', True),
    # comparisons
    ("1 == 1", True), ("1 == 2", False), ("1 != 2", True), ("2 != 2", False),
    ("1 < 2", True), ("2 < 1", False), ("2 <= 2", True), ("3 <= 2", False),
    ("3 > 2", True), ("2 > 3", False), ("2 >= 2", True), ("1 >= 2", False),
    ("'b' > 'a'", True), ("[1, 2] < [1, 3]", True), ("null == null", True),
    ("1 in [1, 2]", True), ("3 in [1, 2]", False), ("3 not in [1, 2]", True),
    ("1 not in [1, 2]", False), ("'ell' in 'hello'", True), ("'tier' in state", True),
    # arithmetic
    ("1 + 2 == 3", True), ("5 - 7 == -2", True), ("3 * 4 == 12", True), ("7 / 2 == 3.5", True),
    ("7 % 3 == 1", True), ("'a' + 'b' == 'ab'", True), ("[1] + [2] == [1, 2]", True),
    ("-n == -5", True), ("--n == 5", True), ("- 2 * 3 == -6", True),
    # precedence and associativity
    ("1 + 2 * 3 == 7", True), ("(1 + 2) * 3 == 9", True), ("10 - 4 - 3 == 3", True),
    ("20 / 5 / 2 == 2", True), ("2 * 3 % 4 == 2", True), ("1 + 2 > 2", True),
    ("true or false and false", True), ("(true or false) and false", False),
    ("false and true or true", True), ("not true or true", True), ("not (true or true)", False),
    ("not 1 == 2", True), ("not false and false", False), ("not not true", True),
    ("1 < 2 and 3 < 4", True), ("1 > 2 or 3 < 4", True), ("1 + 1 in [2]", True),
    ("(1 < 2) == true", True),
    # JS-style aliases
    ("true && false", False), ("true || false", True), ("!false", True), ("!true || true", True),
    ("1 === 1", True), ("1 !== 1", False), ("'a' !== 'b'", True), ("!(1 === 2) && 1 !== 2", True),
    # whitespace is free
    ("  1\n+\t2==3 ", True), ("state.tier=='gold'&&n>4", True),
])
def test_operators(text: str, expected: bool) -> None:
    assert ev(text) is expected


def test_and_or_short_circuit() -> None:
    calls: list[str] = []

    def tracking(name: str) -> Any:
        calls.append(name)
        return CTX[name]

    assert compile_condition("false and n > 1").evaluate(tracking) is False
    assert compile_condition("true or n > 1").evaluate(tracking) is True
    assert calls == []
    # a branch that would fail is never reached
    assert compile_condition("false and 1 / 0 > 1").evaluate(resolve) is False


# ------------------------------------------------------------------------------------ paths
@pytest.mark.parametrize("text, expected", [
    ("result.output.score > 0.5", True),
    ("result.output.score > 0.5 and state.tier in ['gold', 'silver']", True),
    ("result.output.items[0] == 10", True), ("result.output.items[-1] == 30", True),
    ("result.output.items[5] == null", True), ("result['output']['label'] == 'spam'", True),
    ("state[state.key] == 'gold'", True), ("result.output.items[state.idx] == 20", True),
    ("state.keys[state.idx] == 'y'", True), ("state.nested[1][0] == 3", True),
    ("state._outputs['fetch-data'].ok", True), ("state._outputs.n1.rows[0].v == 5", True),
    # keywords are fine as path segments after a dot
    ("state.in == null", True),
    # missing things are null, never errors
    ("missing == null", True), ("missing.a.b.c == null", True), ("state.nope == null", True),
    ("state.none.deeper == null", True), ("state.name._x == null", True),
    ("state.tier.x == null", True), ("result.output.items['x'] == null", True),
    ("state[[1]] == null", True), ("result.output.items[1.5] == null", True),
    ("not exists(state.none)", True), ("exists(state.tier)", True),
])
def test_paths(text: str, expected: bool) -> None:
    assert ev(text) is expected


def test_resolver_key_error_is_undefined() -> None:
    def nothing(name: str) -> Any:
        raise KeyError(name)

    assert compile_condition("x == null and not y.z").evaluate(nothing) is True
    assert compile_condition("x > 1").evaluate(nothing) is False


def test_other_resolver_errors_propagate() -> None:
    def broken(name: str) -> Any:
        raise RuntimeError("redis down")

    with pytest.raises(RuntimeError, match="redis down"):
        compile_condition("x").evaluate(broken)


@pytest.mark.parametrize("text", [
    "state.doc._secret == 'hidden'", "state.doc['_secret']", "state.ns['_x']",
    "state.doc['__class__']", "state.doc[lower('__DICT__')]", "state.doc.title == 'Hello World'",
    "state.doc.tags[1] == 'b'", "state.ns.level >= 4", "state.ns.inner.deep == 'yes'",
    "state.doc['title'] == 'Hello World'", "state.doc.nope == null", "exists(state.doc)",
])
def test_objects_are_not_read_only_json_data_is(text: str) -> None:
    """Attributes of objects are never read, public or not (issue 11.15): only JSON data."""
    msg = str(err(text))
    assert "is not JSON data" in msg and ("type Doc" in msg or "type SimpleNamespace" in msg)


def test_underscore_dict_keys_are_fine() -> None:
    data = {"d": {"__class__": 1, "_x": 2}}
    assert compile_condition("d['__class__'] == 1 and d._x == 2").evaluate(data.__getitem__)


@pytest.mark.parametrize("text", ["x.__class__", "x.__class__.__mro__", "state.doc.__dict__",
                                  "''.__class__"])
def test_dunder_attributes_are_refused_at_compile_time(text: str) -> None:
    with pytest.raises(ConditionError, match="not allowed"):
        compile_condition(text)


# -------------------------------------------------------------------------------- functions
@pytest.mark.parametrize("text, expected", [
    ("len(result.output.items) == 3", True), ("len('abc') == 3", True), ("len(missing) == 0", True),
    ("lower(state.name) == 'alice'", True), ("upper(state.name) == 'ALICE'", True),
    ("lower(missing) == null", True),
    ("contains(result.output.items, 20)", True), ("contains('hello', 'ell')", True),
    ("contains(missing, 1)", False), ("contains([1], 2)", False),
    ("startswith(state.name, 'Al')", True), ("startswith(state.name, 'al')", False),
    ("endswith(state.name, 'ce')", True), ("startswith(missing, 'a')", False),
    ("exists(state.tier)", True), ("exists(state.none)", False), ("exists(0)", True),
    ("int('42') == 42", True), ("int(3.9) == 3", True), ("float('1.5') == 1.5", True),
    ("str(12) == '12'", True), ("abs(-3) == 3", True), ("abs(0 - 2.5) == 2.5", True),
    ("min(3, 1, 2) == 1", True), ("max(3, 1, 2) == 3", True), ("min(result.output.items) == 10", True),
    ("max([4, 9]) == 9", True), ("max('a', 'b') == 'b'", True), ("min(5) == 5", True),
])
def test_functions(text: str, expected: bool) -> None:
    assert ev(text) is expected


# ------------------------------------------------------------------ null and type mismatches
@pytest.mark.parametrize("text, expected", [
    ("missing > 3", False), ("missing < 3", False), ("missing >= 3", False), ("3 <= missing", False),
    ("null > null", False), ("state.none < 'a'", False), ("1 in missing", False),
    ("1 not in missing", True), ("null in 'abc'", False), ("null not in 'abc'", True),
    ("null in [null]", True),
])
def test_null_comparisons(text: str, expected: bool) -> None:
    assert ev(text) is expected


@pytest.mark.parametrize("text, fragment", [
    ("'a' < 1", "cannot compare str and int"), ("state.tier > 1", "cannot compare str and int"),
    ("[1] < ['a']", "cannot compare list and list"), ("1 in 5", "cannot test int 'in' int"),
    ("null + 1", "cannot apply '+' to null and int"), ("'a' * 3", "cannot apply '*' to str and int"),
    ("'a' + 1", "cannot apply '+' to str and int"), ("'%s' % 1", "cannot apply '%' to str and int"),
    ("1 / 0 > 1", "division by zero"), ("1 % 0", "division by zero"), ("-'a'", "cannot negate str"),
    ("len(5)", "len() failed"), ("int('x')", "int() failed"), ("lower(1)", "lower() failed"),
    ("startswith(1, 'a')", "startswith() failed"), ("min([])", "min() failed"),
    ("max(1, 'a')", "max() failed"), ("int(1e999)", "int() failed"), ("abs('a')", "abs() failed"),
    ("state.doc._secret", "not JSON data"),
])
def test_evaluation_errors(text: str, fragment: str) -> None:
    e = err(text, where="edges[0].condition")
    assert fragment in str(e)
    assert repr(text) in str(e)  # names the condition
    assert e.path == "edges[0].condition"


# ------------------------------------------------------------------------- compile errors
def caret_column(message: str) -> int:
    """1-based column the caret points at, relative to the echoed source line."""
    lines = message.splitlines()
    source_line, caret_line = lines[-2], lines[-1]
    assert source_line.startswith("    ") and caret_line.strip() == "^"
    return caret_line.index("^") - 4 + 1


@pytest.mark.parametrize("text, message, column", [
    ("a > (b))", "unexpected ')'", 8),
    ("a < b < c", "comparisons cannot be chained", 7),
    ("1 == 1 != 2", "comparisons cannot be chained", 8),
    ("a in b not in c", "comparisons cannot be chained", 8),
    ("(a", "unexpected end of condition", 3),
    ("a +", "unexpected end of condition", 4),
    ("a b", "unexpected 'b'", 3),
    ("and a", "unexpected 'and'", 1),
    ("a not b", "unexpected 'not'", 3),
    ("a = 1", "unexpected character '='", 3),
    ("a & b", "unexpected character '&'", 3),
    ("a @ b", "unexpected character '@'", 3),
    ("x == 'abc", "unterminated string", 6),
    (r"'a\qb'", "unknown escape", 3),
    ("foo(1)", "unknown function 'foo'", 1),
    ("x and eval('1')", "unknown function 'eval'", 7),
    ("len(1, 2)", "len() takes 1 argument(s), got 2", 1),
    ("min()", "min() takes at least 1 argument(s), got 0", 1),
    ("a.b(1)", "only the built-in functions can be called", 4),
    ("a.", "expected a name after '.'", 3),
    ("a.1", "expected a name after '.'", 3),
    ("a[1", "unexpected end of condition", 4),
    ("[1, 2", "unexpected end of condition", 6),
    ("x.__class__", "'__class__' is not allowed", 3),
    (")", "unexpected ')'", 1),
])
def test_compile_errors(text: str, message: str, column: int) -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition(text, where="edges[2].condition")
    e = info.value
    first = str(e).splitlines()[0]
    assert first.startswith("edges[2].condition: ") and first.endswith(f" at column {column}")
    assert message in first
    assert e.path == "edges[2].condition"
    assert e.column == column  # type: ignore[attr-defined]
    assert caret_column(str(e)) == column
    assert text.replace("\n", " ") in str(e)


def test_documented_example_message() -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition("score > (0.5))", where="edges[2].condition")
    assert str(info.value).splitlines()[0] == "edges[2].condition: unexpected ')' at column 14"


def test_caret_window_on_long_source() -> None:
    text = "x == 1 and " * 40 + ")"
    e = err(text)
    assert f"at column {len(text)}" in str(e) and str(e).splitlines()[-1].strip() == "^"
    assert len(str(e).splitlines()[1]) < 100


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"), ("   \n ", "empty"),
    ("1" * (MAX_LENGTH + 1), "limit is 2000"),
    ("(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5), "nested too deeply"),
    ("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5), "nested too deeply"),
    ("not " * 300 + "1", "nested too deeply"),
    ("-" * 600 + "1", "nested too deeply"),
    ("+".join(["1"] * 900), "nested too deeply"),
    ("x" + ".a" * 300, "nested too deeply"),
    ("len(" * 100 + "1" + ")" * 100, "nested too deeply"),
])
def test_limits(text: str, fragment: str) -> None:
    with pytest.raises(ConditionError, match=fragment):
        compile_condition(text, where="w")


def test_within_limits() -> None:
    assert ev("(" * 40 + "1" + ")" * 40)
    assert ev(" or ".join(["false"] * 150) + " or true")  # flat and/or chains are not deep
    assert compile_condition("1" * MAX_LENGTH)


@pytest.mark.parametrize("value", [None, 1, True, ["a"]])
def test_non_string_input(value: Any) -> None:
    with pytest.raises(ConditionError, match="must be a string"):
        compile_condition(value, where="edges[0].condition")


# -------------------------------------------------------------------- names, paths, object
@pytest.mark.parametrize("text, names, paths", [
    ("result.output.score > 0.5 and state.tier in ['gold', 'silver']", {"result", "state"},
     (("result", "output", "score"), ("state", "tier"))),
    ("a", {"a"}, (("a",),)),
    ("a.b == a.b or a.c", {"a"}, (("a", "b"), ("a", "c"))),
    ("a['k'].m", {"a"}, (("a", "k", "m"),)),
    ("a[0].b", {"a"}, (("a",),)),
    ("a.x[b.c].d", {"a", "b"}, (("a", "x"), ("b", "c"))),
    ("len(state._outputs.n1) > 0", {"state"}, (("state", "_outputs", "n1"),)),
    ("exists(x) and min(y.z, 3)", {"x", "y"}, (("x",), ("y", "z"))),
    ("not -k.v", {"k"}, (("k", "v"),)),
    ("[p.q, 1]", {"p"}, (("p", "q"),)),
    ("1 + 2 == 3", set(), ()),
])
def test_names_and_paths(text: str, names: set[str], paths: tuple[tuple[str, ...], ...]) -> None:
    c = compile_condition(text)
    assert c.names == frozenset(names)
    assert c.paths == paths
    assert c.source == text


def test_condition_object() -> None:
    c = compile_condition("n > 1", where="edges[1].condition")
    assert isinstance(c, Condition)
    assert repr(c) == "Condition('n > 1')"
    assert c == compile_condition("n > 1") and hash(c) == hash(compile_condition("n > 1"))
    clone = pickle.loads(pickle.dumps(c))
    assert clone.evaluate(resolve) is True and clone.where == "edges[1].condition"
    assert type(compile_condition("n").evaluate(resolve)) is bool
    assert c.evaluate({"n": 0}.__getitem__) is False  # compiled once, evaluated many times


# ----------------------------------------------------------------------------- properties
GRAMMAR_CHARS = "abcxyz_019 .,()[]'\"\\=!<>&|+-*/%\n"
GRAMMAR_WORDS = ["and", "or", "not", "in", "true", "null", "len(", "min(", "exists(", "__class__",
                 "==", "===", "!==", "a.b", "x[0]", "'s'", "1.5", "-", "(", ")"]


def _fuzz(text: str) -> None:
    try:
        c = compile_condition(text)
    except ConditionError:
        return
    try:
        result = c.evaluate(lambda name: {"a": {"b": [1, "x"]}, "x": [3]}[name])
    except ConditionError:
        return
    assert type(result) is bool


@settings(max_examples=400, deadline=2000)
@given(st.text(max_size=300))
def test_random_text_only_raises_condition_error(text: str) -> None:
    _fuzz(text)


@settings(max_examples=400, deadline=2000)
@given(st.one_of(st.text(alphabet=GRAMMAR_CHARS, max_size=200),
                 st.lists(st.sampled_from(GRAMMAR_WORDS + list(GRAMMAR_CHARS)), max_size=80)
                 .map(" ".join),
                 st.lists(st.sampled_from(GRAMMAR_WORDS), max_size=80).map("".join)))
def test_grammar_flavoured_text_only_raises_condition_error(text: str) -> None:
    _fuzz(text)


COMPARE = {"==": operator.eq, "===": operator.eq, "!=": operator.ne, "!==": operator.ne,
           "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@st.composite
def int_expr(draw: st.DrawFn, depth: int = 0) -> tuple[str, int]:
    """(text, value) pairs built side by side; the value comes from Python's own operators."""
    if depth >= 4 or draw(st.booleans()):
        n = draw(st.integers(-1000, 1000))
        return str(n), n
    lt, lv = draw(int_expr(depth + 1))
    rt, rv = draw(int_expr(depth + 1))
    op = draw(st.sampled_from(sorted(ARITH)))
    return f"({lt} {op} {rt})", ARITH[op](lv, rv)


@settings(max_examples=300)
@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6), st.sampled_from(sorted(COMPARE)))
def test_int_comparisons_agree_with_python(a: int, b: int, op: str) -> None:
    assert compile_condition(f"{a} {op} {b}").evaluate(resolve) is COMPARE[op](a, b)
    # the same through paths, so the constant-folding fast path is not the only one tested
    values = {"v": {"a": a, "b": b}}
    assert compile_condition(f"v.a {op} v.b").evaluate(values.__getitem__) is COMPARE[op](a, b)
    assert compile_condition(f"v.a {op} {b}").evaluate(values.__getitem__) is COMPARE[op](a, b)


@settings(max_examples=300)
@given(int_expr(), int_expr(), st.sampled_from(sorted(COMPARE)),
       st.sampled_from(["and", "or", "&&", "||"]), st.booleans())
def test_int_expressions_agree_with_python(left: tuple[str, int], right: tuple[str, int], op: str,
                                           logic: str, negate: bool) -> None:
    (lt, lv), (rt, rv) = left, right
    cmp = COMPARE[op](lv, rv)
    other = lv % 2 == 0
    expected = (cmp and other) if logic in ("and", "&&") else (cmp or other)
    text = f"{lt} {op} {rt} {logic} {lt} % 2 == 0"
    if negate:
        text, expected = f"not ({text})", not expected
    assert compile_condition(text).evaluate(resolve) is expected
