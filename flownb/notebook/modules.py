"""Node modules written from notebook cells, and keeping every worker on their latest version.

Why this exists: RQ workers cannot run functions defined in ``__main__`` (a notebook's
namespace); node code must live in an importable module. ``%%flownb_module NAME`` writes the
cell to ``<session dir>/NAME.py``. The session dir is on the kernel's ``sys.path`` and on the
``PYTHONPATH`` of LocalCluster's worker processes (thread workers share the kernel's path).

Editing and re-running the cell must change what *every* worker runs, without restarting
them. Each worker therefore calls :func:`before_job` before each job; it costs one
``scandir`` of the (small) module dirs and compares every module file's
``(mtime_ns, size, inode)`` with what was loaded:

* a changed file is ``importlib.reload``-ed (its ``@flownb.node`` decorators re-register);
* a new file (a module written after the worker started) is imported;
* whenever the node registry changed (a reload, or - for thread workers in the kernel - a
  cell that re-registered a node), the worker's compiled-graph caches are dropped, because a
  compiled graph holds the node *functions* it was compiled with.

The dirs to watch come from ``$FLOWNB_MODULE_PATH`` (``os.pathsep``-separated; LocalCluster sets
it) plus the kernel's own session dir when one was created in this process.

Files are written atomically (temp file + ``os.replace``, so a worker never imports half a
file) and with an mtime at least one second after the previous version's, because CPython's
``__pycache__`` validates bytecode by source mtime in *whole seconds* and size: two edits of
the same length within a second would otherwise reload stale bytecode.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterable

from ..core.files import atomic_write_text
from ..distributed.job_hooks import install as _install_before_job
from pathlib import Path
from typing import Any

__all__ = ["MODULE_PATH_ENV", "ModuleWatcher", "session_dir", "write_module", "load_module",
           "before_job", "refresh_modules", "watcher", "module_dirs"]

#: Directories of session modules, ``os.pathsep``-separated (set for workers by LocalCluster).
MODULE_PATH_ENV = "FLOWNB_MODULE_PATH"

log = logging.getLogger("flownb.modules")

_session_dir: Path | None = None
_session_lock = threading.Lock()


def session_dir() -> Path:
    """This process's module dir (created on first use, on ``sys.path``, removed at exit)."""
    global _session_dir
    with _session_lock:
        if _session_dir is None or not _session_dir.is_dir():
            d = Path(tempfile.mkdtemp(prefix="flownb-modules-")).resolve()
            _session_dir = d
            atexit.register(shutil.rmtree, str(d), True)
        d = _session_dir
        if str(d) not in sys.path:
            sys.path.insert(0, str(d))
            importlib.invalidate_caches()
        return d


def module_dirs() -> list[Path]:
    """The dirs whose modules are kept fresh: ``$FLOWNB_MODULE_PATH`` + this session's dir."""
    dirs: list[Path] = []
    for part in os.environ.get(MODULE_PATH_ENV, "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()))
    if _session_dir is not None:
        dirs.append(_session_dir)
    seen: set[str] = set()
    out = []
    for d in dirs:
        key = str(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _sig(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ModuleWatcher:
    """Tracks the files of the modules in some dirs; :meth:`check` imports/reloads what changed.

    One per process (:func:`watcher`), shared by every worker thread and the magic, so a module
    the magic just reloaded in the kernel is not reloaded again by a thread worker.
    """

    def __init__(self, dirs: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self._fixed = [Path(d) for d in dirs] if dirs is not None else None
        self._seen: dict[str, tuple[int, int, int]] = {}  # module name -> file signature
        self._failed: dict[str, tuple[int, int, int]] = {}  # broken versions, not retried
        self._lock = threading.RLock()
        self.reloads = 0

    def dirs(self) -> list[Path]:
        return list(self._fixed) if self._fixed is not None else module_dirs()

    def record(self, name: str, path: str | os.PathLike[str]) -> None:
        """Note that ``name`` was just (re)loaded from ``path`` (the magic calls this)."""
        with self._lock:
            try:
                self._seen[name] = _sig(os.stat(path))
            except OSError:
                pass
            self._failed.pop(name, None)

    def check(self) -> list[str]:
        """Import new and reload changed modules; return their names (errors are logged).

        A module that fails to import keeps its previous version (if any) and is retried only
        when its file changes again, so a typo in a cell does not fail every job with a reload
        traceback: the worker goes on with the last good code and says so in its log.
        """
        changed: list[str] = []
        with self._lock:
            for d in self.dirs():
                try:
                    entries = list(os.scandir(d))
                except OSError:
                    continue
                for entry in entries:
                    if not entry.name.endswith(".py") or not entry.is_file():
                        continue
                    name = entry.name[:-3]
                    if not name.isidentifier():
                        continue
                    try:
                        sig = _sig(entry.stat())
                    except OSError:
                        continue
                    if self._seen.get(name) == sig or self._failed.get(name) == sig:
                        continue
                    mod = sys.modules.get(name)
                    if mod is not None and name not in self._seen and name not in self._failed:
                        # imported before we first looked (``--import``, a plain ``import``):
                        # if it is this very file, that import is current - only record it
                        mfile = getattr(mod, "__file__", None)
                        if mfile and os.path.abspath(mfile) == os.path.abspath(entry.path):
                            self._seen[name] = sig
                            continue
                    if self._load(name, Path(entry.path), sig):
                        changed.append(name)
        return changed

    def _load(self, name: str, path: Path, sig: tuple[int, int, int]) -> bool:
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        importlib.invalidate_caches()
        try:
            _import_or_reload(name, path)
        except Exception as exc:  # noqa: BLE001 - user code: keep the last good version
            self._failed[name] = sig
            log.error("flownb: cannot (re)load node module %s from %s: %s: %s; keeping the previous "
                      "version", name, path, type(exc).__name__, exc)
            return False
        self._seen[name] = sig
        self._failed.pop(name, None)
        self.reloads += 1
        return True


def _import_or_reload(name: str, path: Path) -> types.ModuleType:
    mod = sys.modules.get(name)
    mfile = getattr(mod, "__file__", None) if mod is not None else None
    if mod is not None and mfile and os.path.abspath(mfile) == os.path.abspath(path):
        mod = importlib.reload(mod)
    else:
        if mod is not None:  # a same-named module from elsewhere: ours (on the path first) wins
            del sys.modules[name]
        mod = importlib.import_module(name)
    return mod


_watcher: ModuleWatcher | None = None
_watcher_lock = threading.Lock()


def watcher() -> ModuleWatcher:
    """The process-wide :class:`ModuleWatcher`."""
    global _watcher
    with _watcher_lock:
        if _watcher is None:
            _watcher = ModuleWatcher()
        return _watcher


def refresh_modules() -> list[str]:
    """Import new / reload changed session modules in this process; returns their names."""
    if not module_dirs():
        return []
    return watcher().check()


_versions: dict[int, int] = {}


def before_job(runtime: Any | None = None) -> list[str]:
    """What a worker calls before each job (see the module docstring); returns reloaded modules.

    ``runtime`` is the worker's :class:`~flownb.distributed.worker.WorkerRuntime`; when the node
    registry changed since this runtime's previous job, its compiled-graph caches
    (``runtime.graphs`` and ``runtime.runs``) are cleared so the next node runs the new code.
    Cheap when nothing changed (one ``scandir`` per module dir, no imports).
    """
    changed = refresh_modules()
    if runtime is not None:
        reg = getattr(runtime, "registry", None)
        version = int(getattr(reg, "version", 0))
        key = id(runtime)
        if _versions.get(key, version) != version or changed:
            graphs = getattr(runtime, "graphs", None)
            runs = getattr(runtime, "runs", None)
            lock = getattr(runtime, "_lock", None)
            if lock is not None:
                with lock:
                    _clear(graphs, runs)
            else:
                _clear(graphs, runs)
        _versions[key] = version
    return changed


def _clear(graphs: Any, runs: Any) -> None:
    if graphs is not None:
        graphs.clear()
    if runs is not None:
        runs.clear()


# -- writing modules (the magic) ---------------------------------------------------------------------

def write_module(name: str, source: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Write ``source`` to ``<directory or session dir>/<name>.py`` atomically; return the path.

    The new file's mtime is at least one whole second after the previous version's (see the
    module docstring), and stale bytecode of the module is removed.
    """
    if not name.isidentifier():
        raise ValueError(f"module name must be a Python identifier, got {name!r}")
    d = Path(directory) if directory is not None else session_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.py"
    prev_ns = 0
    try:
        prev_ns = path.stat().st_mtime_ns
    except OSError:
        pass
    now_ns = time.time_ns()
    if prev_ns and now_ns // 1_000_000_000 <= prev_ns // 1_000_000_000:
        now_ns = (prev_ns // 1_000_000_000 + 1) * 1_000_000_000 + now_ns % 1_000_000_000
    atomic_write_text(path, source if source.endswith("\n") else source + "\n", mtime_ns=now_ns)
    cache = d / "__pycache__"
    if cache.is_dir():
        for pyc in cache.glob(f"{name}.*.pyc"):
            try:
                pyc.unlink()
            except OSError:
                pass
    importlib.invalidate_caches()
    return path


def load_module(name: str, path: str | os.PathLike[str]) -> types.ModuleType:
    """Import or reload ``name`` from ``path`` in this process and tell the watcher."""
    p = Path(path)
    w = watcher()
    with w._lock:  # thread workers of this kernel check the same files
        if str(p.parent) not in sys.path:
            sys.path.insert(0, str(p.parent))
        importlib.invalidate_caches()
        mod = _import_or_reload(name, p)
        w.record(name, p)
    return mod


# the worker's before-job hook (flownb.distributed.job_hooks): installed by this layer, because the
# distributed layer must not import it
_install_before_job("notebook.modules", before_job)
