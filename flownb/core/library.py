"""A folder of blueprint files as one library: subflows are found by id across the files.

Flowcraft's declarative examples (and its shared-logic package) keep one blueprint per file —
``200.json`` is the job-application agent, ``201.json`` and ``202.json`` its subflows — and the
runtime is given all of them. :func:`load_dir` does the same: every ``.json`` / ``.yaml`` /
``.yml`` file under a folder is loaded (its id is the document's ``id``, else the file name, as
Flowcraft's loader does) and registered, so a ``subflow`` node's ``blueprintId`` resolves
in process and on workers alike (a distributed run uploads the blueprints it may start).

Files that are not blueprints (no ``nodes`` key: an inputs file, a ``package.json``) are skipped
and listed in :attr:`Library.skipped`; a file that *is* a blueprint but is invalid fails loudly,
naming the file. Two files with one id fail too — silently picking one would run the wrong
subflow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .blueprint import Blueprint
from .errors import BlueprintError

if TYPE_CHECKING:
    from .registry import Registry

SUFFIXES = (".json", ".yaml", ".yml")


class Library(Mapping[str, Blueprint]):
    """Blueprints by id, with the file each came from."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._bps: dict[str, Blueprint] = {}
        self.paths: dict[str, str] = {}
        #: files under the folder that are not blueprint documents
        self.skipped: list[str] = []

    def __getitem__(self, blueprint_id: str) -> Blueprint:
        try:
            return self._bps[blueprint_id]
        except KeyError:
            raise BlueprintError(f"no blueprint {blueprint_id!r} in this folder (ids: "
                                 f"{sorted(self._bps)})", path=self.root) from None

    def __contains__(self, blueprint_id: object) -> bool:
        return blueprint_id in self._bps

    def get(self, blueprint_id: str, default: Any = None) -> Any:
        return self._bps.get(blueprint_id, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._bps)

    def __len__(self) -> int:
        return len(self._bps)

    def add(self, bp: Blueprint, path: str) -> None:
        if bp.id in self._bps and self.paths[bp.id] != path:
            raise BlueprintError(f"blueprint id {bp.id!r} is defined twice: in "
                                 f"{self.paths[bp.id]} and in {path}; rename one", path=path)
        self._bps[bp.id] = bp
        self.paths[bp.id] = path

    def register(self, registry: Registry) -> Library:
        """Make every blueprint here available to subflow nodes run with ``registry``."""
        for bp in self._bps.values():
            registry.add_blueprint(bp)
        return self

    def __repr__(self) -> str:
        return f"<Library {self.root}: {', '.join(sorted(self._bps))}>"


def _is_blueprint_doc(path: str) -> bool:
    """Cheap pre-check: a mapping with ``nodes``. Unparseable files count as blueprints, so
    loading them reports the syntax error instead of skipping them quietly."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if path.endswith(".json"):
            data: Any = json.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception:  # noqa: BLE001 - let Blueprint.load explain it
        return True
    return isinstance(data, Mapping) and "nodes" in data


def blueprint_files(root: str | os.PathLike[str], *, recursive: bool = True) -> list[str]:
    """Blueprint-looking files under ``root``, sorted (hidden folders and files skipped)."""
    base = Path(root)
    pattern = "**/*" if recursive else "*"
    out = []
    for f in sorted(base.glob(pattern)):
        rel = f.relative_to(base).parts
        if f.is_file() and f.suffix in SUFFIXES and not any(p.startswith(".") for p in rel):
            out.append(str(f))
    return out


def load_dir(path: str | os.PathLike[str], *, registry: Registry | None = None,
             recursive: bool = True) -> Library:
    """Load every blueprint file under ``path`` and register them (default: the global registry)."""
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise BlueprintError("not a folder of blueprint files", path=root)
    lib = Library(root)
    for f in blueprint_files(root, recursive=recursive):
        if not _is_blueprint_doc(f):
            lib.skipped.append(f)
            continue
        lib.add(Blueprint.load(f), f)
    if registry is None:
        from .registry import default_registry

        registry = default_registry
    return lib.register(registry)


def load_with_siblings(path: str | os.PathLike[str], *,
                       registry: Registry | None = None) -> tuple[Blueprint, Library]:
    """A blueprint file, with the other blueprints of its folder registered as its library
    (what ``flownb run dir/main.json`` does)."""
    p = os.path.abspath(os.fspath(path))
    lib = load_dir(os.path.dirname(p), registry=registry, recursive=False)
    for bid, fp in lib.paths.items():
        if os.path.abspath(fp) == p:
            return lib[bid], lib
    return Blueprint.load(p), lib
