"""The layer picture in docs/architecture.md and the import-linter contract cannot drift apart.

The contract in pyproject.toml (``[tool.importlinter]``) is what ``lint-imports`` enforces; the
mermaid diagram is what a reader sees. Both are parsed here: the diagram's nodes must be the
contract's layers and its arrows exactly "each layer may import the layer below it", with no arrow
between independent siblings (``engine | render | llm``).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contract_levels() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = [c for c in config["contracts"] if c["type"] == "layers"]
    assert len(layers) == 1, "expected one layers contract"
    assert layers[0]["containers"] == ["flownb"]
    return [[m.strip() for m in level.split("|")] for level in layers[0]["layers"]]


def _diagram() -> tuple[set[str], set[tuple[str, str]]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    m = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert m, "docs/architecture.md has no mermaid diagram"
    nodes: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for line in m.group(1).splitlines()[1:]:  # after "flowchart TD"
        line = re.sub(r'\["[^"]*"\]', "", line).strip()  # drop labels: a["..."] -> a
        if not line:
            continue
        if "-->" in line:
            src, dst = (part.strip() for part in line.split("-->"))
            targets = [t.strip() for t in dst.split("&")]
            nodes.update([src, *targets])
            edges.update((src, t) for t in targets)
        else:
            nodes.add(line)
    return nodes, edges


def test_diagram_matches_the_import_linter_layers_contract() -> None:
    levels = _contract_levels()
    nodes, edges = _diagram()
    assert nodes == {m for level in levels for m in level}
    expected = {(upper, lower) for above, below in zip(levels, levels[1:])
                for upper in above for lower in below}
    assert edges == expected, (f"diagram arrows {sorted(edges - expected)} are not in the contract; "
                               f"contract arrows {sorted(expected - edges)} are not drawn")


def test_every_layer_is_a_package_that_says_what_it_may_import() -> None:
    for level in _contract_levels():
        for layer in level:
            module = importlib.import_module(f"flownb.{layer}")
            assert module.__file__ is not None and module.__file__.endswith("__init__.py"), layer
            assert "import" in (module.__doc__ or ""), f"flownb.{layer}'s docstring must say what it may import"


def test_the_contract_holds() -> None:
    """``lint-imports`` itself (also run by ``make lint``): no module imports a layer above it."""
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
