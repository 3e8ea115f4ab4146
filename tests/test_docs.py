"""The docs site (mkdocs): every page is in the nav, and the CLI page covers every option.

The strict build itself (warnings are errors) runs in ``make test`` / ``make docs``.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import yaml

from flownb.cli import build_parser

from conftest import ROOT

DOCS = ROOT / "docs"


def _hooks() -> Any:
    spec = importlib.util.spec_from_file_location("flownb_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _nav_pages(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(_nav_pages(x) for x in nav)) if nav else set()
    if isinstance(nav, dict):
        return set().union(*(_nav_pages(v) for v in nav.values()))
    return set()


def test_every_page_is_in_the_nav_and_exists() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_pages(_hooks().with_optional_pages(config["nav"], str(DOCS)))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - nav == set(), "pages missing from mkdocs.yml's nav"
    assert nav - pages == set(), "nav entries without a page"


def test_cli_page_lists_every_command_and_option() -> None:
    assert _hooks().MARKER in (DOCS / "cli.md").read_text()
    reference = _hooks().cli_reference()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in sub.choices.items():
        assert f"### flownb {name}" in reference
        for action in sp._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in reference, f"flownb {name} {option} missing from docs"
            if action.help and not isinstance(action, argparse._HelpAction):
                assert action.help.replace("|", "\\|") in reference


def test_pages_of_other_branches_join_the_nav_once_they_exist(tmp_path: Path) -> None:
    hooks = _hooks()
    nav = [{"Blueprints": "blueprints.md"}, {"Nodes and state": "nodes.md"}, {"CLI": "cli.md"}]
    assert hooks.with_optional_pages(nav, str(tmp_path)) == nav  # nothing dangling
    (tmp_path / "conditions.md").write_text("# Conditions\n")
    (tmp_path / "state.md").write_text("# State\n")
    assert hooks.with_optional_pages(nav, str(tmp_path)) == [
        {"Blueprints": "blueprints.md"}, {"Condition language": "conditions.md"},
        {"Nodes and state": "nodes.md"}, {"State and reducers": "state.md"}, {"CLI": "cli.md"}]


def test_sphinx_roles_are_shown_as_names() -> None:
    html = ':class:<code>~flownb.core.errors.RunFailed</code> and :func:<code>arun</code>'
    assert _hooks().on_post_page(html, None) == "<code>RunFailed</code> and <code>arun</code>"
