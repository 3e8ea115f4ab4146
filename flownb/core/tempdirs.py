"""Temp dirs named after the process that owns them, swept once that process is gone.

Why: an embedded Redis, a LocalCluster and the notebook's module dir each make a temp dir and
remove it when they close or at exit — which a SIGKILLed kernel never does (3 dirs were left per
kernel). Each dir's name carries its owner's pid (``flownb-<kind>-<pid>-<random>``), and making
a new one first removes those of the same kind whose owner no longer runs (same user only).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(kind: str, directory: str | None = None) -> int:
    """Remove ``flownb-<kind>-<pid>-*`` dirs of this user whose owner pid is gone; how many."""
    base = directory or tempfile.gettempdir()
    prefix = f"flownb-{kind}-"
    removed = 0
    try:
        entries = list(os.scandir(base))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def owned_mkdtemp(kind: str, directory: str | None = None) -> str:
    """A fresh private temp dir owned by this process (stale ones of ``kind`` swept first)."""
    sweep(kind, directory)
    return tempfile.mkdtemp(prefix=f"flownb-{kind}-{os.getpid()}-", dir=directory)


__all__ = ["owned_mkdtemp", "sweep"]
