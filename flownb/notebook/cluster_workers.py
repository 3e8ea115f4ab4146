"""How one worker of a :class:`~flownb.notebook.LocalCluster` starts: a child process or a thread.

Why the two ways differ so much:

* a **process worker** is ``python -m flownb worker --watch-parent …`` in its own session
  (``start_new_session=True``) so Jupyter's interrupt - SIGINT to the kernel's process group -
  stops the user's cell, not the workers under it. Its stdin is a pipe only the kernel holds
  (:mod:`flownb.notebook.watchdog`: the worker exits when the kernel is gone), its output goes
  to a log file of its slot, and its environment carries the kernel's user ``sys.path`` entries
  and the notebook module dir so it imports what the kernel imports. A password-protected Redis
  URL goes in the environment, not on the command line (``/proc/<pid>/cmdline`` is
  world-readable; environ is not).
* a **thread worker** is an RQ ``SimpleWorker`` in a daemon thread of the kernel. RQ's own stop
  path (``request_stop``) installs signal handlers and raises in the *calling* thread, so it
  cannot stop a worker loop from another thread; our worker subclass instead checks a stop event
  every half second while idle and sets RQ's ``_stop_requested`` to end after the current job.
  Thread workers have no log file: one logging handler keeps each one's last lines (RQ's INFO
  lines would otherwise print into whatever cell is running).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .modules import MODULE_PATH_ENV, before_job
from .watchdog import GRACE_ENV, PARENT_PID_ENV

if TYPE_CHECKING:
    from .cluster_supervisor import Slot

__all__ = ["RingHandler", "acquire_ring", "has_password", "release_ring", "spawn_process",
           "spawn_thread", "tail", "worker_command", "worker_env"]

log = logging.getLogger("flownb.cluster")

#: Imported by every process worker: wires the module-refresh check into the worker (until the
#: worker calls :func:`flownb.notebook.modules.before_job` itself).
WORKER_HOOK_MODULES: tuple[str, ...] = ()  # the worker calls modules.before_job itself
#: loggers whose records thread workers keep for ``logs()`` (RQ's would otherwise print its INFO
#: lines into whatever cell is running)
_RING_LOGGERS = ("rq.worker", "rq.job", "flownb.worker")


# -- process workers ---------------------------------------------------------------------------------
def has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return bool(parts.password) or "password=" in (parts.query or "")
    except ValueError:
        return True


def user_paths() -> list[str]:
    """Entries of the kernel's ``sys.path`` a user added (not the interpreter's own dirs), so
    process workers import what the kernel imports."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    out = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if any(real == p or real.startswith(p + os.sep) for p in prefixes):
            continue
        if "site-packages" in real or "dist-packages" in real:
            continue
        if real not in out:
            out.append(real)
    return out


def worker_env(url: str, extra: Mapping[str, str], module_dir: Path) -> dict[str, str]:
    """The environment of a process worker (see module doc)."""
    env = dict(os.environ)
    env.update(extra)
    env[PARENT_PID_ENV] = str(os.getpid())
    env.setdefault(GRACE_ENV, "5")
    env["PYTHONUNBUFFERED"] = "1"
    mod_paths = [p for p in env.get(MODULE_PATH_ENV, "").split(os.pathsep) if p]
    if str(module_dir) not in mod_paths:
        mod_paths.insert(0, str(module_dir))
    env[MODULE_PATH_ENV] = os.pathsep.join(mod_paths)
    py_paths = [str(module_dir), *user_paths()]
    py_paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(py_paths))
    if has_password(url):
        env["FLOWNB_REDIS_URL"] = url  # /proc/<pid>/cmdline is world-readable; environ isn't
    return env


def worker_command(name: str, *, url: str, queue_name: str, prefix: str, lease_ttl_s: float,
                   log_level: str, module_dir: Path, concurrency: int | None,
                   modules: Iterable[str]) -> list[str]:
    """The ``flownb worker`` command line of a process worker."""
    cmd = [sys.executable, "-m", "flownb", "worker", "--name", name, "--queue", queue_name,
           "--prefix", prefix, "--lease-ttl", repr(lease_ttl_s), "--watch-parent",
           "--log-level", log_level, "--path", str(module_dir)]
    if concurrency is not None:
        cmd += ["--concurrency", str(int(concurrency))]
    if not has_password(url):
        cmd[4:4] = ["--redis", url]
    for m in (*modules, *WORKER_HOOK_MODULES):
        cmd += ["--import", m]
    return cmd


def spawn_process(slot: Slot, log_dir: str, cmd: list[str], env: Mapping[str, str]) -> None:
    """Start the slot's worker process, appending to the slot's log file (kept across restarts)."""
    slot.log_path = Path(log_dir) / f"worker-{slot.index}.log"
    with open(slot.log_path, "ab") as logf:
        logf.write(f"----- {time.strftime('%H:%M:%S')} starting {slot.name} -----\n".encode())
        logf.flush()
        slot.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=logf, stderr=subprocess.STDOUT, env=dict(env),
            start_new_session=True, close_fds=True)


def tail(path: Path, n: int) -> str:
    """The last ``n`` lines of a log file ("" when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-n:])


# -- thread workers ----------------------------------------------------------------------------------
class RingHandler(logging.Handler):
    """Keeps the last log lines of each thread worker (thread mode has no log files)."""

    def __init__(self, maxlen: int = 500) -> None:
        super().__init__(logging.INFO)
        self.lines: dict[str, collections.deque[str]] = {}
        self.maxlen = maxlen
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        buf = self.lines.get(record.threadName or "")
        with contextlib.suppress(Exception):  # logging must never raise
            if buf is not None:
                buf.append(self.format(record))
            # being a handler, we stop logging's last-resort stderr output for these loggers:
            # keep showing warnings the way they were shown without us
            if record.levelno >= logging.WARNING and not logging.getLogger().handlers \
                    and logging.lastResort is not None:
                logging.lastResort.handle(record)


_ring: RingHandler | None = None
_ring_users = 0
_ring_lock = threading.Lock()


def acquire_ring() -> RingHandler:
    """The one log-capturing handler of all thread clusters in this process."""
    global _ring, _ring_users
    with _ring_lock:
        if _ring is None:
            _ring = RingHandler()
            for name in _RING_LOGGERS:
                logging.getLogger(name).addHandler(_ring)
        _ring_users += 1
        return _ring


def release_ring() -> None:
    global _ring, _ring_users
    with _ring_lock:
        _ring_users -= 1
        if _ring_users <= 0 and _ring is not None:
            for name in _RING_LOGGERS:
                logging.getLogger(name).removeHandler(_ring)
            _ring = None
            _ring_users = 0


def _thread_worker(conn: Any, *, name: str, queue_name: str, prefix: str, settings: Any,
                   stop_event: threading.Event, concurrency: int | None = None) -> Any:
    """A flownb RQ worker whose loop can be stopped from another thread (see module doc)."""
    from rq.exceptions import StopRequested
    from rq.timeouts import TimerDeathPenalty

    from ..distributed.worker import make_worker

    worker = make_worker(conn, name=name, queue_name=queue_name, prefix=prefix, settings=settings,
                         **({} if concurrency is None else {"concurrency": concurrency}))  # type: ignore[arg-type]
    base = type(worker)

    class ThreadWorker(base):  # type: ignore[misc, valid-type]
        # RQ's default job timeout uses SIGALRM, which only the main thread may set
        death_penalty_class = TimerDeathPenalty

        def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                         max_idle_time: int | None = None) -> Any:
            if timeout is None:  # burst mode: non-blocking already
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            while not stop_event.is_set():
                # RQ re-blocks after a dequeue timeout without looking at _stop_requested;
                # a 0.5 s "idle time" returns None so we can look at our stop event
                res = super().dequeue_job_and_maintain_ttl(timeout, 0.5)  # type: ignore[arg-type]
                if res is not None:
                    return res
            self.flownb.begin_close()  # a stop, not the end of a burst: the stop grace applies
            raise StopRequested()

        def execute_job(self, job: Any, queue: Any) -> Any:
            before_job(self.flownb)
            return super().execute_job(job, queue)

        def handle_payload(self, message: Any) -> None:
            # RQ's "shutdown" command SIGINTs the whole process: that would interrupt the kernel
            from rq.command import parse_payload

            command = None
            with contextlib.suppress(Exception):  # unreadable: fall back to RQ's handling
                command = parse_payload(message).get("command")
            if command == "shutdown":
                stop_event.set()
                self._stop_requested = True
                return
            super().handle_payload(message)

    worker.__class__ = ThreadWorker
    return worker


def spawn_thread(slot: Slot, conn: Any, *, queue_name: str, prefix: str, settings: Any,
                 concurrency: int | None, ring: RingHandler | None, log_level: str) -> None:
    """Start the slot's worker in a daemon thread of this process."""
    slot.worker = _thread_worker(conn, name=slot.name, queue_name=queue_name, prefix=prefix,
                                 settings=settings, stop_event=slot.stop_event,
                                 concurrency=concurrency)
    tname = f"flownb-worker-{slot.name}"
    if ring is not None:
        ring.lines.setdefault(slot.name, collections.deque(maxlen=ring.maxlen))
        ring.lines[tname] = ring.lines[slot.name]
    slot.thread = threading.Thread(target=_run_thread_worker, args=(slot.worker, log_level),
                                   name=tname, daemon=True)
    slot.thread.start()


def _run_thread_worker(worker: Any, level: str) -> None:
    try:
        worker.work(logging_level=level)
    except Exception:
        log.exception("flownb LocalCluster: thread worker %s crashed", worker.name)
