"""Every example blueprint a person may copy passes ``flownb validate --strict``: no false alarm.

The blueprints are extracted from README.md, docs/*.md and notebooks/*.ipynb (JSON/YAML blocks,
``Blueprint.from_dict({...})`` literals, ``Builder(...)...build()`` chains with literal
arguments) and checked as strictly as ``flownb validate --strict`` does: no problem at all. A
blueprint using node types the example defines in Python is checked without a registry (so
``uses`` is not looked up; everything else is). Fragments (a YAML node list, a blueprint without
``id``) are not blueprints, and a block that shows an error (it prints ``.lint(...)`` or catches
an exception) is broken on purpose: both are skipped. flownb/examples/ and tests/flowcraft/ go through the
CLI itself.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest
import yaml

import flownb
from flownb.core.lint_names import BUILTIN_PARAMS

from conftest import ROOT
from test_cli import NO_REDIS_ENV, cli

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_BUILTIN = set(BUILTIN_PARAMS) | {"subflow", "map"}
#: a block that shows what an error looks like (the lint list, a caught exception)
_SHOWS_ERRORS = re.compile(r"\.lint\(|^\s*except\b", re.M)


def _sources() -> list[tuple[str, str, str]]:
    """(where, language, text) of every code block of the docs and notebooks."""
    out: list[tuple[str, str, str]] = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, m in enumerate(_FENCE.finditer(md.read_text())):
            out.append((f"{md.relative_to(ROOT)} block {i}", m.group(1), m.group(2)))
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            text = "".join(cell["source"])
            where = f"{nb.relative_to(ROOT)} cell {i}"
            if cell["cell_type"] == "code":
                out.append((where, "python", text))
            else:
                out.extend((where, m.group(1), m.group(2)) for m in _FENCE.finditer(text))
    return out


def _from_python(text: str) -> list[dict[str, Any]]:
    """Blueprint documents in a Python block: from_dict literals and literal Builder chains."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    found: list[dict[str, Any]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "from_dict" and node.args:
            try:
                doc = ast.literal_eval(node.args[0])
            except ValueError:
                continue
            if isinstance(doc, dict):
                found.append(doc)
        elif node.func.attr == "build":
            built = _builder(node.func.value)
            if built is not None:
                found.append(built.build().to_dict())
    return found


def _builder(expr: ast.expr) -> Any:
    """Replay ``Builder(...).node(...)....`` with a real Builder when every argument is literal."""
    if not isinstance(expr, ast.Call):
        return None
    try:
        args = [ast.literal_eval(a) for a in expr.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords if k.arg}
    except ValueError:
        return None
    f = expr.func
    if isinstance(f, ast.Attribute) and f.attr == "Builder" or isinstance(f, ast.Name) and f.id == "Builder":
        return flownb.Builder(*args, **kwargs)
    if isinstance(f, ast.Attribute):
        inner = _builder(f.value)
        return None if inner is None else getattr(inner, f.attr)(*args, **kwargs)
    return None


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs: list[tuple[str, dict[str, Any]]] = []
    for where, lang, text in _sources():
        if lang in ("json", "yaml", "yml"):
            try:
                data = json.loads(text) if lang == "json" else yaml.safe_load(text)
            except (ValueError, yaml.YAMLError):
                continue
            found = [data]
        elif lang == "python":
            if _SHOWS_ERRORS.search(text):
                continue  # a deliberately broken blueprint, shown with its error
            found = _from_python(text)
        else:
            continue
        docs.extend((where, d) for d in found
                    if isinstance(d, dict) and "id" in d and isinstance(d.get("nodes"), list))
    return docs


DOCUMENTS = _documents()


def test_the_extraction_finds_the_examples() -> None:
    where = {w.split(" ")[0] for w, _ in DOCUMENTS}
    assert "README.md" in where and "docs/blueprints.md" in where
    assert any(w.startswith("notebooks/") for w in where)
    assert len(DOCUMENTS) >= 15, [w for w, _ in DOCUMENTS]


@pytest.mark.parametrize("where,doc", DOCUMENTS, ids=[f"{w} {d['id']}" for w, d in DOCUMENTS])
def test_every_example_blueprint_is_lint_clean(where: str, doc: dict[str, Any]) -> None:
    bp = flownb.Blueprint.from_dict(doc)
    custom = {n.uses for n in bp.nodes} - _BUILTIN
    subflows = any(n.uses in ("subflow", "map") for n in bp.nodes)
    registry = None if custom or subflows else flownb.default_registry
    problems = bp.lint(registry)
    assert problems == [], f"{where}: " + "\n".join(map(str, problems))


def test_validate_strict_passes_on_the_shipped_and_flowcraft_examples() -> None:
    folders = [str(ROOT / "flownb" / "examples"),
               *sorted(str(p) for p in (ROOT / "tests" / "flowcraft").iterdir() if p.is_dir())]
    out = cli("validate", "--strict", *folders, env=NO_REDIS_ENV)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(": ok (") >= 24 and "warning" not in out.stdout
