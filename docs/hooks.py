"""mkdocs hooks: the CLI page's option reference, and Sphinx roles in docstrings.

* The option reference is generated from flownb's argparse parser — the one place the options
  are defined — so the page can never drift from ``flownb COMMAND --help``. ``docs/cli.md``
  holds the prose and a ``<!-- cli-reference -->`` marker replaced with one section per command.
* Pages other branches add (the condition language, state reducers) join the nav, after the
  page they extend, as soon as their file exists — never as a dangling nav entry before.
* flownb's docstrings use Sphinx roles (``:class:`~flownb.core.errors.RunFailed```), which mkdocstrings
  renders literally; the built pages show just the name in code style instead.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

MARKER = "<!-- cli-reference -->"
#: (title, page, the nav page it follows) for pages that join the nav once they exist
OPTIONAL_PAGES = (("Condition language", "conditions.md", "blueprints.md"),
                  ("State and reducers", "state.md", "nodes.md"))
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):(<code>)~?(?:[\w.]+\.)?([\w]+)(</code>)")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _spelling(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    takes_value = action.nargs != 0
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"`{o} {metavar}`" if takes_value else f"`{o}`" for o in action.option_strings)


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def cli_reference() -> str:
    """Markdown: for every ``flownb`` command, its synopsis and a table of its arguments."""
    from flownb.cli import build_parser

    parser = build_parser()
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
    out = []
    for name, sub in _subcommands(parser).items():
        usage = " ".join(sub.format_usage().split())
        out += [f"### flownb {name}", "", _cell(helps.get(name)), "", f"```text\n{usage}\n```", "",
                "| argument | meaning | default |", "|---|---|---|"]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            default = action.default
            shown = "" if default in (None, False, argparse.SUPPRESS) else f"`{default}`"
            out.append(f"| {_spelling(action)} | {_cell(action.help)} | {shown} |")
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown


def on_post_page(output: str, page: Any, **_: Any) -> str:
    return _ROLE.sub(r"\1\2\3", output)


def with_optional_pages(nav: list[Any], docs_dir: str) -> list[Any]:
    """``nav`` with each existing :data:`OPTIONAL_PAGES` page inserted after its anchor page."""
    from pathlib import Path

    nav = list(nav)
    listed = {v for item in nav if isinstance(item, dict) for v in item.values()
              if isinstance(v, str)}
    for title, page, after in OPTIONAL_PAGES:
        if page in listed or not (Path(docs_dir) / page).is_file():
            continue
        at = next((i for i, item in enumerate(nav)
                   if isinstance(item, dict) and after in item.values()), len(nav) - 1)
        nav.insert(at + 1, {title: page})
    return nav


def on_config(config: Any, **_: Any) -> Any:
    config["nav"] = with_optional_pages(config["nav"], config["docs_dir"])
    return config
