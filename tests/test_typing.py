"""The public API as a type checker sees it (mypy on small user programs).

A newcomer's IDE and mypy should keep a decorated node's signature, reject a misspelt keyword of
``flownb.run`` and know what ``attach()`` / ``widget()`` return.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

from conftest import ROOT  # noqa: E402


def mypy(tmp_path: Path, code: str) -> list[str]:
    src = tmp_path / "user_code.py"
    src.write_text(textwrap.dedent(code))
    out, err, _ = api.run([str(src), "--config-file", str(ROOT / "pyproject.toml"),
                           "--no-incremental", "--show-error-codes", "--no-error-summary",
                           "--cache-dir", str(tmp_path / ".mypy_cache")])
    assert not err, err
    return [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]


def test_node_keeps_the_function_type_and_run_rejects_typos(tmp_path: Path) -> None:
    lines = mypy(tmp_path, """
        import flownb
        from flownb import NodeContext

        @flownb.node("double")
        def double(ctx: NodeContext) -> int:
            return 2 * ctx.input

        @flownb.node
        async def bare(ctx: NodeContext) -> str:
            return "x"

        class Fetch(flownb.Node):
            pass

        reveal_type(double)
        reveal_type(bare)
        reveal_type(flownb.node("fetch")(Fetch))
        reveal_type(flownb.default_registry.register("d2", double))
        flownb.run({"id": "t", "nodes": []}, max_concurency=2)
        reveal_type(flownb.run({"id": "t", "nodes": []}, max_concurrency=2))
        reveal_type(flownb.attach("abc"))
        reveal_type(flownb.attach("abc").widget())
    """)
    # mypy versions differ in printing builtins ("builtins.int" / "int"): compare without them
    got = [x.replace("builtins.", "").replace("typing.", "") for x in lines
           if x.startswith(("note: Revealed", "error:"))]
    assert got == [
        'note: Revealed type is "def (ctx: flownb.core.context.NodeContext) -> int"',
        'note: Revealed type is "def (ctx: flownb.core.context.NodeContext) -> Coroutine[Any, Any, str]"',
        'note: Revealed type is "def () -> user_code.Fetch"',
        'note: Revealed type is "def (ctx: flownb.core.context.NodeContext) -> int"',
        'error: Unexpected keyword argument "max_concurency" for "run"; did you mean '
        '"max_concurrency"?  [call-arg]',
        'note: Revealed type is "flownb.core.result.RunResult"',
        'note: Revealed type is "flownb.distributed.client.RunHandle"',
        'note: Revealed type is "flownb.core.display.RunView"',
    ], "\n".join(lines)
