"""Each script gets only the part of the prelude it uses.

Redis runs a script's whole text at every ``EVALSHA``: with the whole prelude (``_LIB``) in front
of every body, each call created ~60 closures and their tables (the join algorithm, the reducers,
finalisation ...) before its body ran, whether it used them or not — ~130k of the ~410k
redis-server instructions of a chain ``COMMIT`` (callgrind). :func:`with_prelude` keeps the
prelude's top-level statements (``local`` declarations, ``local function NAME`` blocks and the
``NAME = function`` assignments of forward-declared locals) that the body uses, directly or
through another kept statement, in their original order, and drops the rest: a script that never
routes no longer pays for ``drain``; one that never reads the clock no longer calls ``TIME``.

The scan is by names, on the Lua text with strings and comments taken out, so it keeps too much
rather than too little (a field name equal to a helper's keeps the helper). :func:`free_names` is
the check beside it: the names a script reads that it declares nowhere and that are not Redis's
Lua globals. Redis would raise for such a name only when the line runs — perhaps on a rare path —
so the tests assert every assembled script has none (``tests/test_scripts_prelude.py``).

A cold statement runs when the script first touches ``C`` (its helpers are defined, its values
computed then), so the prelude's top-level initializers read only ``KEYS``, ``ARGV``, ``TIME``
and constants — never a value the body may have changed by then.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from .prelude import _LIB

#: What Redis's Lua (5.1, sandboxed) provides: libraries, base functions, the script's arguments.
LUA_GLOBALS = frozenset(
    "redis cjson cmsgpack struct bit KEYS ARGV string table math tonumber tostring ipairs pairs "
    "unpack type error pcall select next assert rawget rawset rawequal setmetatable getmetatable "
    "xpcall loadstring".split())
_KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or repeat return then "
    "true until while".split())

_NAME = re.compile(r"[A-Za-z_]\w*")
_FUNC_START = re.compile(r"^(?:local\s+function\s+(\w+)|(\w+)\s*=\s*function\b)")
_LOCAL = re.compile(r"^local\s+([\w\s,]+?)\s*(?:=|$)", re.M)


def strip_lua(src: str) -> str:
    """``src`` with every string literal and comment blanked out (same length, newlines kept), so
    a name in a message or a comment is not read as a use."""
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "-" and src.startswith("--", i):
            if src.startswith("--[[", i):
                end = src.find("]]", i)
                end = n if end < 0 else end + 2
            else:
                end = src.find("\n", i)
                end = n if end < 0 else end
            out.append(re.sub(r"[^\n]", " ", src[i:end]))
            i = end
        elif c in "'\"":
            j = i + 1
            while src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        elif c == "[" and src.startswith("[[", i):
            end = src.find("]]", i) + 2
            out.append('"' + re.sub(r"[^\n]", " ", src[i + 1:end - 1]) + '"')
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _variables(code: str) -> Iterator[re.Match[str]]:
    """Each place ``code`` (stripped: :func:`strip_lua`) reads or assigns a variable: every name
    that is not a keyword, a field (``a.name``, ``a:name``) or a table constructor's key
    (``{name =``). One scan for :func:`used_names` and :func:`_name_spans`."""
    depth = 0
    pos = 0
    for m in _NAME.finditer(code):
        seg = code[pos:m.start()]
        depth += seg.count("{") - seg.count("}")
        pos = m.start()
        if m.group() in _KEYWORDS:
            continue
        before = code[max(0, m.start() - 2):m.start()]
        if before.endswith(":") or (before.endswith(".") and not before.endswith("..")):
            continue
        if depth > 0 and re.match(r"\s*=(?!=)", code[m.end():]):
            continue
        yield m


def used_names(code: str) -> set[str]:
    """The variable names ``code`` (stripped: :func:`strip_lua`) reads or assigns (:func:`_variables`)."""
    return {m.group() for m in _variables(code)}


def declared_names(code: str) -> set[str]:
    """Every name ``code`` (stripped) declares anywhere: locals, local functions, parameters and
    loop variables (scopes are not followed: a name declared anywhere counts as declared)."""
    out: set[str] = set()
    for m in re.finditer(r"\blocal\s+function\s+(\w+)", code):
        out.add(m.group(1))
    for m in re.finditer(r"\blocal\s+(?!function\b)([\w\s,]+?)\s*(?:=|\n|$)", code):
        out.update(_NAME.findall(m.group(1)))
    for m in re.finditer(r"\bfunction\b\s*[\w.:]*\s*\(([^)]*)\)", code):
        out.update(_NAME.findall(m.group(1)))
    for m in re.finditer(r"\bfor\s+([\w\s,]+?)\s+in\b", code):
        out.update(_NAME.findall(m.group(1)))
    for m in re.finditer(r"\bfor\s+(\w+)\s*=", code):
        out.add(m.group(1))
    return out


def free_names(script: str) -> set[str]:
    """The names ``script`` uses but declares nowhere and Redis does not provide: each would be
    a nil global at run time ("attempt to call a nil value" on the line that uses it). Empty for
    every script of this package (a test checks it)."""
    code = strip_lua(script)
    return used_names(code) - declared_names(code) - LUA_GLOBALS


class Block(NamedTuple):
    """One top-level statement of the prelude, with the comment lines just above it."""

    text: str
    defines: frozenset[str]
    uses: frozenset[str]


def split_blocks(prelude: str) -> list[Block]:
    """The prelude's top-level statements in order; joined, they give the prelude back. A
    statement starts at a line in column 0 (continuation lines are indented); a function runs to
    its ``end`` in column 0 (or ends on its own line)."""
    blocks: list[Block] = []
    lines = prelude.split("\n")
    i = 0
    pending: list[str] = []  # blank and comment lines, kept with the statement that follows
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("--"):
            pending.append(line)
            i += 1
            continue
        if line[0].isspace():
            raise ValueError(f"prelude line {i + 1} is indented outside a statement: {line!r}")
        j = i + 1
        if _FUNC_START.match(line) and (lines[j] == "end" or lines[j][:1].isspace()):
            while lines[j] != "end":
                j += 1
            j += 1
        else:
            while j < len(lines) and lines[j][:1].isspace() and lines[j].strip():
                j += 1
        text = "\n".join(pending + lines[i:j]) + "\n"
        code = strip_lua("\n".join(lines[i:j]))
        fm = _FUNC_START.match(line)
        if fm:
            defines = {fm.group(1) or fm.group(2)}
        else:
            lm = _LOCAL.match(code)
            defines = set(_NAME.findall(lm.group(1))) if lm else set()
        blocks.append(Block(text, frozenset(defines), frozenset(used_names(code) - defines)))
        pending = []
        i = j
    if pending and any(p.strip() for p in pending):
        blocks.append(Block("\n".join(pending), frozenset(), frozenset()))
    return blocks


#: Helpers a plain step (a claim, or a commit that fires its successors) never calls: the join's
#: completion and the skip of an untaken branch, the state reducers, the end of a run and the
#: messages of a broken graph. A script that keeps any of them gets them as fields of one table,
#: ``C``, filled by its ``__index`` on the first use — one closure made per call instead of one per
#: helper, each capturing its own locals (callgrind: ~30k instructions of a chain ``COMMIT``).
COLD = frozenset({
    "pop_ready", "skip", "json_type", "skip_string", "skip_value", "split_object", "is_number",
    "reduce_text", "conflict_message", "meta_digests", "release_blueprints", "expire_run_key",
    "STREAM_PARTS", "json_writes", "finalize", "graph_message", "fail_broken", "graph_problem",
    "json_pairs", "run_key", "set_status", "maybe_waiting", "gout", "seed_targets",
    "deliver_join", "maybe_finished"})


def _name_spans(code: str, names: frozenset[str]) -> list[tuple[int, int]]:
    """Where ``code`` (stripped) uses one of ``names`` as a variable (:func:`_variables`)."""
    return [(m.start(), m.end()) for m in _variables(code) if m.group() in names]


def _to_fields(text: str, names: frozenset[str]) -> str:
    """``text`` with every use of ``names`` turned into a field of ``C``."""
    for a, b in reversed(_name_spans(strip_lua(text), names)):
        text = text[:a] + "C." + text[a:b] + text[b:]
    return text


def _cold_part(b: Block, cold: frozenset[str]) -> str:
    """A cold block as a statement inside ``C``'s ``__index``: its definition assigns ``C.NAME``."""
    if not b.defines <= cold:
        raise ValueError(f"prelude statement declares cold and hot names: {sorted(b.defines)}")
    lines = b.text.split("\n")
    k = next(i for i, line in enumerate(lines) if line.strip() and not line.startswith("--"))
    head = lines[k]
    if re.match(r"local\s+[\w\s,]+$", head):  # a forward declaration: C's fields need none
        return ""
    lines[k] = re.sub(r"^local\s+(function\s+)?", lambda m: m.group(1) or "", head)
    return _to_fields("\n".join(lines), cold)


#: What a prelude constant may read to be declared again inside the cold part (:func:`_with_cold`).
_CONST_SOURCES = frozenset({"KEYS", "ARGV", "tonumber"})


def _with_cold(kept: list[Block], body: str) -> str:
    """The script with its cold helpers (:data:`COLD`) made on first use, as fields of ``C``, and
    with them every statement only they use (e.g. COMMIT's ``bp_key``, ``TTL``)."""
    reach, hot_blocks = used_names(strip_lua(body)), set()
    changed = True
    while changed:
        changed = False
        for k, b in enumerate(kept):
            if k not in hot_blocks and not b.defines & COLD and b.defines & reach:
                hot_blocks.add(k)
                reach |= b.uses
                changed = True
    cold = frozenset(n for k, b in enumerate(kept) if k not in hot_blocks for n in b.defines)
    if not cold:
        return "".join(b.text for b in kept) + body
    for text, own in [(b.text, b.defines) for b in kept] + [(body, frozenset())]:
        clash = (declared_names(strip_lua(text)) - own) & cold
        if clash:
            raise ValueError(f"a name of a cold helper is declared again: {sorted(clash)}")
    hot = "".join(_to_fields(b.text, cold) for k, b in enumerate(kept) if k in hot_blocks)
    made = "".join(_cold_part(b, cold) for k, b in enumerate(kept) if k not in hot_blocks)
    # the constants the cold part reads (the run's keys, RUN, PREFIX ...) declared again inside
    # __index from KEYS/ARGV: its closure would capture each as an upvalue at every call
    # (callgrind: ~400 instructions apiece), the values are the same
    reads = used_names(strip_lua(made))
    made = "".join(b.text for k, b in enumerate(kept) if k in hot_blocks and b.defines & reads
                   and b.uses <= _CONST_SOURCES and b.uses & {"KEYS", "ARGV"} and not _FUNC_START.match(b.text.lstrip("\n"))
                   and "function" not in strip_lua(b.text)) + made
    return ("local C = {}  -- the cold helpers of this script, made on first use (assemble.COLD)\n"
            + hot + "setmetatable(C, {__index = function(c, k)\nsetmetatable(c, nil)\n" + made
            + "return rawget(c, k)\nend})\n" + _to_fields(body, cold))


_CACHE: dict[str, list[Block]] = {}


def with_prelude(body: str, prelude: str = _LIB) -> str:
    """``body`` after the part of ``prelude`` it needs: every top-level statement that declares a
    name the body uses, and those their own statements use, in the prelude's order. A statement
    that declares nothing (none today) is always kept."""
    blocks = _CACHE.get(prelude)
    if blocks is None:
        blocks = _CACHE[prelude] = split_blocks(prelude)
    want = used_names(strip_lua(body))
    keep = [not b.defines for b in blocks]
    changed = True
    while changed:
        changed = False
        for k, b in enumerate(blocks):
            if not keep[k] and b.defines & want:
                keep[k] = True
                want |= b.uses
                changed = True
    return _with_cold([b for k, b in enumerate(blocks) if keep[k]], body)
