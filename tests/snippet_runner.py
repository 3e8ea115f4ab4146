"""Run the Python blocks of a Markdown file as a reader would: ``python tests/snippet_runner.py
README.md`` (from any folder: files the blocks save are written there).

* Every ```` ```python ```` block runs, in order, in one namespace (``__name__ == "__main__"``),
  top-level ``await`` / ``async for`` included (as in a notebook cell).
* A block whose first line is ``# name.py`` (or ``.yaml``/``.yml``/``.json``, any fenced block)
  is also saved under that name first, so ``import hello_nodes`` or ``flownb.load("flow.yaml")``
  finds it, as the prose says ("save this as ...").
* A line ``expr   # <Python literal>`` — the docs' way of showing a result, e.g.
  ``result.status   # 'succeeded'`` — is checked: the value must equal the literal. A comment
  that is not a literal (``# classify TypeError``) is only a comment.
* ``<!-- skip-snippet: why -->`` on the line before a block skips it (only for blocks that need a
  real API key or a second terminal).

Why a runner of its own: the snippet is what a user copies, so it must run as written; a test
that only imports the package would not notice a renamed argument in the README.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import io
import re
import sys
import tokenize
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)\s*$")
SKIP = re.compile(r"<!--\s*skip-snippet:\s*(?P<why>.+?)\s*-->")
SAVE_AS = re.compile(r"^#\s*(?P<name>[\w.-]+\.(?:py|ya?ml|json))\s*$")
#: what makes a file's blocks need a Redis (``FLOWNB_REDIS_URL``) with workers
NEEDS_REDIS = re.compile(r"DistributedExecutor\(|flownb\.attach\(|\.map\(")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # of the opening fence, 1-based
    skip: str | None
    save_as: str | None


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` (indented fences in list items too, dedented)."""
    out: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group("lang"):
            i += 1
            continue
        indent, lang, start = m.group("indent"), m.group("lang"), i
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.search(prev)
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        code = "\n".join(body) + "\n"
        first = SAVE_AS.match(body[0]) if body else None
        out.append(Block(lang, code, start + 1, skip.group("why") if skip else None,
                         first.group("name") if first else None))
    return out


def python_blocks(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang == "python"]


def save_files(path: Path, where: Path) -> list[str]:
    """Write the blocks that name a file; returns the names."""
    names = []
    for b in blocks(path):
        if b.save_as and not b.skip:
            (where / b.save_as).write_text(b.code)
            names.append(b.save_as)
    return names


def node_modules(path: Path) -> list[str]:
    """Saved ``.py`` files that another block imports: the node modules workers must import."""
    bs = python_blocks(path)
    mods = []
    for b in bs:
        if b.save_as and b.save_as.endswith(".py"):
            stem = b.save_as[:-3]
            if any(re.search(rf"^\s*import {stem}\b|modules=\[[^\]]*['\"]{stem}['\"]", o.code, re.M)
                   for o in bs if o is not b):
                mods.append(stem)
    return mods


def needs_redis(path: Path) -> bool:
    return any(NEEDS_REDIS.search(b.code) for b in python_blocks(path) if not b.skip)


def check(value: Any, expected: Any, where: str) -> None:
    if value != expected:
        raise AssertionError(f"{where}: the docs say {expected!r}, the code gives {value!r}")


def _comments(code: str) -> dict[int, str]:
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string[1:].strip()
    return out


def instrument(code: str, label: str) -> ast.Module:
    """The block's code with ``expr  # literal`` lines turned into checks."""
    tree = ast.parse(code)
    comments = _comments(code)
    for idx, node in enumerate(tree.body):
        if not isinstance(node, ast.Expr) or isinstance(node.value, ast.Await):
            continue
        text = comments.get(node.end_lineno or node.lineno)
        if not text:
            continue
        try:
            expected = ast.parse(text, mode="eval").body
            ast.literal_eval(expected)
        except (SyntaxError, ValueError):
            continue
        where = f"{label}, line {node.lineno}: {ast.get_source_segment(code, node)}"
        call = ast.Call(func=ast.Name("__snippet_check__", ast.Load()),
                        args=[node.value, expected, ast.Constant(where)], keywords=[])
        tree.body[idx] = ast.copy_location(ast.Expr(call), node)
    return ast.fix_missing_locations(tree)


def run(path: Path) -> int:
    ns: dict[str, Any] = {"__name__": "__main__", "__snippet_check__": check}
    save_files(path, Path.cwd())
    sys.path.insert(0, str(Path.cwd()))
    for n, b in enumerate(python_blocks(path), 1):
        label = f"{path.name} block {n} (line {b.line})"
        if b.skip:
            print(f"[snippet] skipped {label}: {b.skip}", file=sys.stderr)
            continue
        try:
            code = compile(instrument(b.code, label), label, "exec",
                           flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            if code.co_flags & inspect.CO_COROUTINE:
                asyncio.run(eval(code, ns))  # noqa: S307 - the docs' own code, run on purpose
            else:
                exec(code, ns)  # noqa: S102 - the docs' own code, run on purpose
        except BaseException:  # noqa: BLE001 - report which block broke, then fail
            print(f"[snippet] FAILED {label}:\n{b.code}\n{traceback.format_exc()}", file=sys.stderr)
            return 1
        print(f"[snippet] ran {label}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]).resolve()))
