"""Parent-alive watchdog for worker processes started by a notebook kernel.

Why: :class:`~flownb.notebook.LocalCluster` starts its workers with ``start_new_session=True``
so Jupyter's interrupt (SIGINT to the kernel's whole process group) does not warm-shutdown
them. The price is that nothing kills them when the kernel dies: a restart or "kill kernel"
SIGKILLs the kernel, which runs no atexit code, and the workers would live on forever,
serving a queue nobody feeds (and holding memory, sockets, GPU…). Dask's nanny solves the
same problem with a pipe; we do the same, in a daemon thread inside the worker:

* the worker's **stdin is a pipe** whose write end only the parent holds. When the parent
  dies for any reason, the OS closes that end and the worker reads EOF at once;
* the thread also **polls** ``os.getppid()`` every ``interval_s`` seconds, because a process
  the parent ``fork()``-ed (multiprocessing's fork start method, ``os.fork``) inherits the
  write end and keeps the pipe open; once the parent is gone our parent pid changes (to init
  or a subreaper).

When the parent is gone the worker shuts itself down the way ``kill -TERM`` would (RQ's warm
shutdown: it finishes the node it is running, so that work is not lost), and if that takes
longer than ``grace_s`` the process exits hard (the node's lease then expires and, if any
other worker serves the queue, it re-runs the node).

The CLI enables it with ``flownb worker --watch-parent`` (which calls :func:`watch_parent`);
:class:`LocalCluster` passes that flag, the pipe on stdin and ``FLOWNB_PARENT_PID``.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["PARENT_PID_ENV", "GRACE_ENV", "watch_parent", "maybe_watch_parent"]

#: The pid the worker must outlive no longer than this; set by LocalCluster.
PARENT_PID_ENV = "FLOWNB_PARENT_PID"
#: Seconds a warm shutdown may take after the parent died before the worker exits hard.
GRACE_ENV = "FLOWNB_WATCHDOG_GRACE_S"

log = logging.getLogger("flownb.watchdog")

_started: threading.Thread | None = None
_lock = threading.Lock()


def _is_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _default_on_orphan(grace_s: float) -> Callable[[str], None]:
    def on_orphan(reason: str) -> None:
        print(f"flownb worker {os.getpid()}: {reason}; shutting down", file=sys.stderr, flush=True)
        try:
            # the main thread runs RQ's work loop: SIGTERM = its warm shutdown (finish the node)
            os.kill(os.getpid(), signal.SIGTERM)
        except OSError:
            os._exit(70)
        time.sleep(grace_s)
        print(f"flownb worker {os.getpid()}: still running {grace_s:g}s after the parent died; "
              "exiting hard", file=sys.stderr, flush=True)
        os._exit(70)

    return on_orphan


def watch_parent(parent_pid: int | None = None, *, fd: int | None = 0, interval_s: float = 0.5,
                 grace_s: float | None = None,
                 on_orphan: Callable[[str], None] | None = None) -> threading.Thread:
    """Start (once per process) a daemon thread that ends this process when its parent dies.

    ``parent_pid`` defaults to ``$FLOWNB_PARENT_PID``, else the current parent. ``fd`` (stdin by
    default) is watched for EOF when it is a pipe; any other kind of file is ignored and only the
    parent pid is polled. ``on_orphan(reason)`` runs in the watchdog thread when the parent is
    gone; the default sends this process SIGTERM and calls ``os._exit(70)`` after ``grace_s``
    seconds (``$FLOWNB_WATCHDOG_GRACE_S``, default 5). Returns the thread.

    Call it early (before importing user modules): a parent that died while we started up is
    detected at once, because the parent pid no longer matches.
    """
    global _started
    with _lock:
        if _started is not None and _started.is_alive():
            return _started
        if parent_pid is None:
            env = os.environ.get(PARENT_PID_ENV, "").strip()
            parent_pid = int(env) if env.isdigit() else os.getppid()
        if grace_s is None:
            try:
                grace_s = float(os.environ.get(GRACE_ENV, "") or 5.0)
            except ValueError:
                grace_s = 5.0
        handler = on_orphan or _default_on_orphan(grace_s)
        watch_fd = fd if fd is not None and _is_pipe(fd) else None
        thread = threading.Thread(target=_watch, args=(parent_pid, watch_fd, interval_s, handler),
                                  name="flownb-parent-watchdog", daemon=True)
        thread.start()
        _started = thread
        return thread


def maybe_watch_parent() -> threading.Thread | None:
    """:func:`watch_parent` if ``$FLOWNB_PARENT_PID`` is set (for entry points without the flag)."""
    if os.environ.get(PARENT_PID_ENV, "").strip():
        return watch_parent()
    return None


def _watch(parent_pid: int, fd: int | None, interval_s: float,
           on_orphan: Callable[[str], None]) -> None:
    while True:
        if os.getppid() != parent_pid:
            on_orphan(f"parent process {parent_pid} is gone (parent pid is now {os.getppid()})")
            return
        if fd is None:
            time.sleep(interval_s)
            continue
        try:
            readable, _, _ = select.select([fd], [], [], interval_s)
        except (OSError, ValueError):  # fd closed under us: fall back to polling
            fd = None
            continue
        if readable:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                on_orphan(f"the pipe from parent process {parent_pid} closed")
                return
