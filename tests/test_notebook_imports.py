"""Every tutorial runs on the documented install, ``pip install 'flownb[all]'`` (issue 20, defect 1:
06 needed pandas, which only the dev extra had). Each module a notebook imports is the standard
library, flownb, or a distribution ``flownb[all]`` asks for by name."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(req: str) -> str:
    return re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def all_extra() -> set[str]:
    """The distributions ``flownb[all]`` installs by name (its extras expanded)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names: set[str] = set()
    todo, seen = ["all"], set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for req in extras[extra]:
            m = re.fullmatch(r"flownb\[([^\]]+)\]", req.strip())
            if m:
                todo += [e.strip() for e in m.group(1).split(",") if e.strip() not in seen]
            else:
                names.add(_name(req))
    return names


def _imports(nb: Path) -> set[str]:
    mods: set[str] = set()
    for cell in json.loads(nb.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                mods |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                mods.add(node.module.split(".")[0])
    return mods


def test_all_extra_includes_pandas() -> None:
    assert "pandas" in all_extra()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_are_in_the_all_extra(nb: Path) -> None:
    wanted = all_extra()
    dists = packages_distributions()
    missing = []
    for mod in sorted(_imports(nb)):
        if mod in sys.stdlib_module_names or mod == "flownb":
            continue
        names = {_name(d) for d in dists.get(mod, [mod])}
        if not names & wanted:
            missing.append(f"{mod} (distribution {', '.join(sorted(names))})")
    assert not missing, f"{nb.name} imports what pip install 'flownb[all]' does not install: {missing}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_reads_no_file_of_the_checkout(nb: Path) -> None:
    """A tutorial runs from any folder against an installed flownb (issue 20, defect 4)."""
    code = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                   if c["cell_type"] == "code")
    assert "../" not in code and '".."' not in code and "tests/" not in code, nb.name


def test_flowcraft_examples_are_package_data() -> None:
    from fnmatch import fnmatch

    from flownb.examples import flowcraft_dir

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["flownb"]
    files = sorted(p.relative_to(ROOT / "flownb").as_posix() for p in flowcraft_dir().rglob("*.json"))
    assert len(files) >= 13
    assert all(any(fnmatch(f, pat) for pat in patterns) for f in files)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_cell_tags_not_visible_comments(nb: Path) -> None:
    """A reader sees the tutorial's code, not the test harness's comments (issue 20, #11)."""
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    assert not [c for c in cells if "NBVAL" in "".join(c["source"])]
    assert any(t.startswith("nbval-") for c in cells for t in c.get("metadata", {}).get("tags", []))
