"""The four example agents, ported from Flowcraft's declarative examples, as blueprint files.

``load("content_moderation")`` returns the main blueprint and registers its subflow blueprints
(every ``*.yaml`` here) in the registry, so it runs unchanged in process or on Redis.
Each main blueprint lists sample inputs per branch under ``metadata.inputs``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ..core.blueprint import Blueprint
from ..core.errors import FlownbError
from ..core.registry import Registry, default_registry

#: the main example of each agent (the other files are their subflows)
EXAMPLES = ("blog_post", "job_application", "customer_review", "content_moderation")


def _files() -> dict[str, Blueprint]:
    out = {}
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith((".yaml", ".yml", ".json")):
            text = entry.read_text(encoding="utf-8")
            path = f"flownb/examples/{entry.name}"
            bp = (Blueprint.from_json(text, path=path) if entry.name.endswith(".json")
                  else Blueprint.from_yaml(text, path=path))
            out[entry.name.rsplit(".", 1)[0]] = bp
    return out


def load(name: str, *, registry: Registry | None = None) -> Blueprint:
    """The example ``name`` (see EXAMPLES); its subflows are registered in ``registry``."""
    files = _files()
    key = name.replace("-", "_")
    if key not in files:
        raise FlownbError(f"no example {name!r}; choose one of {', '.join(EXAMPLES)}")
    reg = registry or default_registry
    for bp in files.values():
        reg.add_blueprint(bp)
    return files[key]


def flowcraft_dir() -> Path:
    """The folder of the same agents as Flowcraft's JSON files (one blueprint per file, named by
    its id: ``2.job-application/200.json`` ...), shipped with flownb so a tutorial or a user can
    ``flownb.load_dir(flowcraft_dir())`` without a checkout of the repository."""
    return Path(str(resources.files(__package__) / "flowcraft"))


def inputs(name: str, case: str | None = None) -> dict[str, Any]:
    """Sample inputs of an example: one branch's (``case``) or the first listed."""
    bp = load(name)
    cases: dict[str, Any] = bp.metadata.get("inputs") or {}
    if not cases:
        return {}
    if case is None:
        return dict(next(iter(cases.values())))
    if case not in cases:
        raise FlownbError(f"example {name!r} has no input case {case!r}; cases: {sorted(cases)}")
    return dict(cases[case])


def cases(name: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in (load(name).metadata.get("inputs") or {}).items()}
