"""Atomic file writes: readers (a worker importing a module, a cache lookup) never see half a file.

Write to a temp file in the same directory, then ``os.replace`` it over the target — atomic on
POSIX. Shared by the LLM response cache and the ``%%flownb_module`` writer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mtime_ns: int | None = None) -> Path:
    """Replace ``path`` with ``text`` in one step; ``mtime_ns`` sets the file's times first."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
