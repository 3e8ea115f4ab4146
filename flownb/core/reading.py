"""Reading blueprint text safely: size caps before parsing, and YAML without surprises.

Blueprints may come from someone else, so a file is read only if it is a regular file under the
size limit (a FIFO would block, ``/dev/zero`` never ends), and YAML is parsed with the safe loader
and a cap on what aliases expand to (a "billion laughs" document is refused, not expanded). The
limits are :mod:`flownb.core.limits`'; each refusal names the file and the setting to change.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from .errors import BlueprintError


def _file_id(path: str) -> str:
    """The id of a file's blueprint when the document has none: its name without extension."""
    return os.path.splitext(os.path.basename(path))[0]


def read_capped(path: str) -> bytes:
    """A blueprint file's bytes: only regular files (a FIFO would block, ``/dev/zero`` never
    ends), at most ``max_file_bytes`` of them (:mod:`flownb.core.limits`), read with that cap."""
    from .limits import ENV_MAX_FILE_BYTES, current_limits

    cap = current_limits().max_file_bytes
    try:  # O_NONBLOCK: opening a FIFO with no writer must not wait for one
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise BlueprintError(f"cannot read blueprint file: {exc.strerror}", path=path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)"
                    if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise BlueprintError(f"cannot read blueprint file: it is {kind}; a blueprint must "
                                 "be a regular .json/.yaml file", path=path)
        chunks, size = [], 0
        while size <= cap:  # the cap holds even if the file grows while it is read
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise BlueprintError(f"cannot read blueprint file: {exc.strerror}", path=path) from None
    finally:
        os.close(fd)
    if size > cap:
        raise BlueprintError(f"file is larger than the {cap:,}-byte limit for blueprints; raise it "
                             f"with {ENV_MAX_FILE_BYTES}=<bytes> if it is really a blueprint",
                             path=path)
    return b"".join(chunks)


def safe_yaml(text: str | bytes, *, path: str | None = None) -> Any:
    """``yaml.safe_load`` that refuses alias bombs before building any Python object.

    YAML aliases share one node, so a 450-byte document can stand for 10^9 nodes ("billion
    laughs") or contain itself (``&a [*a]``, which no JSON can represent: digest, ``==`` and
    ``to_json`` would fail far from the file). The composed node graph is measured first —
    linear in its size, iteratively — and refused with a :class:`BlueprintError` naming the line.
    """
    import yaml

    from .limits import ENV_MAX_ALIAS_NODES, current_limits

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        limit = current_limits().max_alias_nodes
        expanded, distinct = _yaml_size(node, path)
        if expanded - distinct > limit:
            raise BlueprintError(
                f"YAML aliases expand the document from {distinct:,} to {expanded:,} nodes, more "
                f"than the {limit:,} extra nodes allowed (an alias bomb?); write the values out, "
                f"or raise {ENV_MAX_ALIAS_NODES}=<n>", path=path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_size(root: Any, path: str | None) -> tuple[int, int]:
    """(nodes once aliases are expanded, distinct nodes); a node inside itself is an error."""
    import yaml

    def kids(n: Any) -> list[Any]:
        if isinstance(n, yaml.MappingNode):
            return [x for pair in n.value for x in pair]
        return list(n.value) if isinstance(n, yaml.SequenceNode) else []

    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        n, finished = stack.pop()
        k = id(n)
        if finished:
            open_.discard(k)
            size[k] = 1 + sum(size[id(c)] for c in kids(n))
            continue
        if k in size:
            continue
        open_.add(k)
        stack.append((n, True))
        for c in kids(n):
            if id(c) in open_:
                m = c.start_mark
                raise BlueprintError(f"line {m.line + 1} column {m.column + 1}: recursive YAML "
                                     "alias (an anchor used inside its own value); blueprints "
                                     "must be trees", path=path)
            if id(c) not in size:
                stack.append((c, False))
    return size[id(root)], len(size)


__all__ = ["read_capped", "safe_yaml"]
