"""``LocalCluster``: flownb workers for a notebook, as child processes or kernel threads.

Why a cluster object instead of "open a terminal and run ``flownb worker``": in a notebook the
workers should come and go with the kernel. That is harder than it looks (see
``/work/shared/NOTEBOOK-PITFALLS.md`` and :mod:`flownb.notebook.watchdog`):

* **process mode** starts ``python -m flownb worker --watch-parent …`` children. They run in
  their own session (``start_new_session=True``) so Jupyter's interrupt - SIGINT to the kernel's
  process group - stops the user's cell, not the workers under it. A new session also means
  nothing kills them when the kernel is SIGKILLed (restart, "kill kernel"); each worker
  therefore watches a pipe on its stdin and its parent pid, and exits when the kernel is gone.
  Normal exits stop them through ``weakref.finalize`` (also an atexit hook). A monitor thread
  restarts workers that die (OOM, ``kill -9``, a segfaulting library) unless the cluster is
  closing. Workers that die right after starting are restarted with exponential back-off
  (0.5 s doubling to 30 s) so a broken ``--import`` does not fork-bomb the machine, but a
  running cluster never gives a slot up: a kill every 500 ms must not leave 0 workers for good.
  Only while the cluster is being created does a worker that cannot start raise (with its log).
  Each worker logs to its own file (:meth:`LocalCluster.logs`). Deaths are recorded (and shown
  by the cluster's view and repr), not logged as warnings: a warning would print into whichever
  cell happens to be running.
* **one live cluster per queue**: a kernel that re-runs ``cluster = LocalCluster(2)`` keeps the
  old object alive through ``Out[]``; the new cluster closes the old one on the same Redis,
  prefix and queue (one line says so), so the queue has 2 workers, not 4.
* **thread mode** runs RQ ``SimpleWorker``s in daemon threads of the kernel: no start-up cost,
  shares the kernel's ``sys.path`` and node registry (nodes registered in a cell work, no module
  needed), but a node that blocks the GIL blocks the kernel. RQ's own stop path
  (``request_stop``) installs signal handlers and raises in the *calling* thread, so it cannot
  stop a worker loop from another thread; our worker subclass instead checks a stop event every
  half second while idle and sets RQ's ``_stop_requested`` to end after the current job.

The cluster's Redis is ``redis`` (a URL, settings or an :class:`EmbeddedRedis`) or, without one,
the process-wide embedded server (:func:`flownb.distributed.server.shared_server`).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ExecutorError
from .modules import MODULE_PATH_ENV, before_job, session_dir
from .watchdog import GRACE_ENV, PARENT_PID_ENV

if TYPE_CHECKING:
    from ..blueprint import Blueprint
    from ..distributed.client import DistributedExecutor, RunHandle
    from ..result import RunResult

__all__ = ["LocalCluster", "WorkerLogs"]

log = logging.getLogger("flownb.cluster")

#: Imported by every process worker: wires the module-refresh check into the worker (until the
#: worker calls :func:`flownb.notebook.modules.before_job` itself).
WORKER_HOOK_MODULES: tuple[str, ...] = ()  # the worker calls modules.before_job itself
#: A worker that dies this soon after starting counts as a start-up crash.
QUICK_DEATH_S = 5.0
#: Consecutive start-up crashes after which a cluster being created raises (a running cluster
#: keeps retrying, with back-off).
MAX_QUICK_DEATHS = 3
#: Back-off between restarts of a slot whose worker keeps dying right after starting.
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0
#: Deaths remembered for the cluster's view.
MAX_DEATHS_KEPT = 50
MONITOR_INTERVAL_S = 0.5
#: loggers whose records thread workers keep for ``logs()`` (RQ's would otherwise print its INFO
#: lines into whatever cell is running)
_RING_LOGGERS = ("rq.worker", "rq.job", "flownb.worker")

_cluster_ids = itertools.count(1)
#: (Redis URL, prefix, queue) -> the live cluster serving it in this process (see module doc)
_live_clusters: dict[tuple[str, str, str], weakref.ReferenceType[LocalCluster]] = {}
_live_lock = threading.Lock()


def _replace_live(cluster: LocalCluster) -> None:
    """Register ``cluster`` as the one for its queue, closing the one it replaces."""
    key = (cluster.url, cluster.prefix, cluster.queue_name)
    with _live_lock:
        ref = _live_clusters.get(key)
        old = ref() if ref is not None else None
        _live_clusters[key] = weakref.ref(cluster)
    if old is not None and old is not cluster and not old.closed:
        print(f"flownb: closing the previous LocalCluster {old.name} ({old.n_workers} workers) on "
              f"queue {cluster.queue_name!r}: one live cluster per queue in a kernel",
              file=sys.stderr)
        old.close()


class WorkerLogs(dict[str, str]):
    """Worker name -> tail of its log; prints as the tails one after the other."""

    def __str__(self) -> str:
        parts = []
        for name, text in self.items():
            parts.append(f"===== {name} =====\n{text.rstrip()}" if text.strip() else
                         f"===== {name} ===== (empty)")
        return "\n".join(parts) if parts else "(no workers)"

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass
class _Slot:
    """One worker position: restarted workers keep the slot (and log file), get a new name."""

    index: int
    name: str
    log_path: Path | None = None
    generation: int = 0
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    worker: Any = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    stopping: bool = False
    quick_deaths: int = 0
    restarts: int = 0
    gave_up: bool = False
    exit_code: int | None = None
    #: monotonic time of the next start of a dead worker (back-off), 0 when alive
    restart_at: float = 0.0
    dead: bool = False
    #: the worker's last published info (jobs done…), shown after it stopped or died
    last_info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        if self.thread is not None:
            return os.getpid()
        return None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.thread is not None:
            return self.thread.is_alive()
        return False


class _RingHandler(logging.Handler):
    """Keeps the last log lines of each thread worker (thread mode has no log files)."""

    def __init__(self, maxlen: int = 500) -> None:
        super().__init__(logging.INFO)
        self.lines: dict[str, collections.deque[str]] = {}
        self.maxlen = maxlen
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        buf = self.lines.get(record.threadName)
        try:
            if buf is not None:
                buf.append(self.format(record))
            # being a handler, we stop logging's last-resort stderr output for these loggers:
            # keep showing warnings the way they were shown without us
            if record.levelno >= logging.WARNING and not logging.getLogger().handlers \
                    and logging.lastResort is not None:
                logging.lastResort.handle(record)
        except Exception:  # noqa: BLE001 - logging must never raise
            pass


_ring: _RingHandler | None = None
_ring_users = 0
_ring_lock = threading.Lock()


def _acquire_ring() -> _RingHandler:
    """The one log-capturing handler of all thread clusters in this process."""
    global _ring, _ring_users
    with _ring_lock:
        if _ring is None:
            _ring = _RingHandler()
            for name in _RING_LOGGERS:
                logging.getLogger(name).addHandler(_ring)
        _ring_users += 1
        return _ring


def _release_ring() -> None:
    global _ring, _ring_users
    with _ring_lock:
        _ring_users -= 1
        if _ring_users <= 0 and _ring is not None:
            for name in _RING_LOGGERS:
                logging.getLogger(name).removeHandler(_ring)
            _ring = None
            _ring_users = 0


class _State:
    """Everything needed to stop the workers, kept apart so ``weakref.finalize`` can hold it
    without keeping the :class:`LocalCluster` alive."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.owner_pid = os.getpid()
        self.lock = threading.RLock()
        self.slots: list[_Slot] = []
        self.closing = threading.Event()
        self.closed = False
        self.monitor: threading.Thread | None = None
        self.tmp_dir: str | None = None
        self.conn: Any = None
        self.workers_key = ""
        self.ring: _RingHandler | None = None
        self.starting = True  # the constructor is waiting for the first workers
        #: recorded worker deaths, newest last: dicts with at, worker, exit_code, restart_in_s
        self.deaths: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_DEATHS_KEPT)

    def stop_slots(self, slots: list[_Slot], timeout: float) -> None:
        """Warm shutdown (finish the current node), then SIGKILL the process group after
        ``timeout``; thread workers are asked to stop and joined."""
        for s in slots:
            s.stopping = True
            if s.proc is not None and s.proc.poll() is None:
                with contextlib.suppress(OSError):
                    s.proc.send_signal(signal.SIGTERM)
            if s.worker is not None:
                s.stop_event.set()
                s.worker._stop_requested = True
        deadline = time.monotonic() + timeout
        for s in slots:
            if s.proc is not None:
                try:
                    s.proc.wait(max(0.05, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):
                        os.killpg(s.proc.pid, signal.SIGKILL)
                    with contextlib.suppress(OSError):
                        s.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        s.proc.wait(5)
                if s.proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        s.proc.stdin.close()
                s.exit_code = s.proc.returncode
            if s.thread is not None:
                s.thread.join(max(0.05, deadline - time.monotonic()))
            self.forget(s)

    def forget(self, s: _Slot) -> None:
        """Drop a dead worker's info row (a SIGKILLed worker cannot remove it itself)."""
        if self.conn is None or os.getpid() != self.owner_pid:
            return
        with contextlib.suppress(Exception):
            self.conn.hdel(self.workers_key, s.name)

    def close(self, timeout: float = 10.0) -> None:
        if os.getpid() != self.owner_pid:
            return  # a forked child must not stop its parent's workers
        with self.lock:
            if self.closed:
                return
            self.closing.set()
            slots = list(self.slots)
        mon = self.monitor
        if mon is not None and mon is not threading.current_thread():
            mon.join(5)
        self.stop_slots(slots, timeout)
        with self.lock:
            self.closed = True
        if self.ring is not None:
            _release_ring()
            self.ring = None

    def finalize(self) -> None:
        """``weakref.finalize`` / atexit: stop everything, delete the log dir."""
        if os.getpid() != self.owner_pid:
            return
        self.close(timeout=5.0)
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None


def _resolve_url(redis: Any) -> str:
    if redis is None:
        from ..distributed.server import shared_server

        return shared_server().url
    if isinstance(redis, str):
        return redis
    url = getattr(redis, "url", None)  # EmbeddedRedis
    if isinstance(url, str):
        return url
    resolved = getattr(redis, "resolved_url", None)  # RedisSettings
    if callable(resolved):
        return str(resolved())
    raise ExecutorError(f"LocalCluster(redis=...) takes a URL, RedisSettings or EmbeddedRedis, "
                        f"not {type(redis).__name__}")


def _has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return bool(parts.password) or "password=" in (parts.query or "")
    except ValueError:
        return True


def _user_paths() -> list[str]:
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


def _tail(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-n:])


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
            raise StopRequested()

        def execute_job(self, job: Any, queue: Any) -> Any:
            before_job(self.flownb)
            return super().execute_job(job, queue)

        def handle_payload(self, message: Any) -> None:
            # RQ's "shutdown" command SIGINTs the whole process: that would interrupt the kernel
            try:
                from rq.command import parse_payload

                if parse_payload(message).get("command") == "shutdown":
                    stop_event.set()
                    self._stop_requested = True
                    return
            except Exception:  # noqa: BLE001 - fall back to RQ's handling
                pass
            super().handle_payload(message)

    worker.__class__ = ThreadWorker
    return worker


class LocalCluster:
    """flownb workers tied to this kernel: ``with LocalCluster(2) as c: c.run(bp, inputs)``.

    Args:
        n_workers: workers to start.
        mode: ``"process"`` (child processes; isolated, parallel, survive a kernel interrupt)
            or ``"thread"`` (threads of this process; instant, share the kernel's imports).
        redis: URL / :class:`RedisSettings` / :class:`EmbeddedRedis`; default: the process-wide
            embedded redis-server.
        modules: node modules every worker imports (``--import``); thread mode imports them here.
        queue_name, prefix: RQ queue and key prefix (clusters sharing them share work).
        lease_ttl_s: seconds after which a node of a dead worker is re-run by another.
        env: extra environment variables for process workers.
        wait: block until every worker is serving (and raise if one cannot start).
        log_level: worker log level.
        concurrency: node visits each worker runs at once (default: the worker's, 32).
    """

    def __init__(self, n_workers: int = 2, mode: Literal["process", "thread"] = "process", *,
                 redis: Any = None, modules: Iterable[str] = (), queue_name: str = "flownb",
                 prefix: str = "flownb", lease_ttl_s: float = 10.0,
                 env: Mapping[str, str] | None = None, wait: bool = True,
                 startup_timeout_s: float = 30.0, log_level: str = "WARNING",
                 name: str | None = None, concurrency: int | None = None) -> None:
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', got {mode!r}")
        if n_workers < 0:
            raise ValueError(f"n_workers must be >= 0, got {n_workers}")
        from ..distributed.client import DistributedExecutor
        from ..distributed.settings import RedisSettings, mask_url
        from ..distributed.store import StoreSettings

        self.mode = mode
        self.url = _resolve_url(redis)
        self.masked_url = mask_url(self.url)
        self.modules = tuple(modules)
        self.queue_name = queue_name
        self.prefix = prefix
        self.lease_ttl_s = float(lease_ttl_s)
        self.concurrency = concurrency
        self.env = dict(env or {})
        self.log_level = log_level.upper()
        self.startup_timeout_s = startup_timeout_s
        self.name = name or f"nb{os.getpid()}-{next(_cluster_ids)}"
        self.settings = StoreSettings(lease_ttl_s=self.lease_ttl_s,
                                      queued_ttl_s=max(self.lease_ttl_s * 2, 5.0))
        self._redis_settings = RedisSettings.from_url(self.url)
        self.executor: DistributedExecutor = DistributedExecutor(
            self.url, prefix=prefix, queue_name=queue_name, settings=self.settings)
        self.module_dir = session_dir()
        self._indexes = itertools.count(1)
        self._state = _State(mode)
        self._state.conn = self.executor.conn
        self._state.workers_key = self.executor.store.keys.workers
        self._state.tmp_dir = tempfile.mkdtemp(prefix="flownb-cluster-")
        self._finalizer = weakref.finalize(self, self._state.finalize)
        if mode == "thread":
            from ..registry import default_registry

            default_registry.import_modules(self.modules)
            self._state.ring = _acquire_ring()
        _replace_live(self)
        try:
            self._add(n_workers)
            self._state.monitor = threading.Thread(target=_monitor, args=(weakref.ref(self),),
                                                   name=f"flownb-cluster-monitor-{self.name}",
                                                   daemon=True)
            self._state.monitor.start()
            if wait and n_workers:
                self.wait_for_workers(timeout=startup_timeout_s)
        except BaseException:
            self.close()
            raise
        finally:
            self._state.starting = False

    # -- starting workers ---------------------------------------------------------------------------
    def _worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env[PARENT_PID_ENV] = str(os.getpid())
        env.setdefault(GRACE_ENV, "5")
        env["PYTHONUNBUFFERED"] = "1"
        mod_paths = [p for p in env.get(MODULE_PATH_ENV, "").split(os.pathsep) if p]
        if str(self.module_dir) not in mod_paths:
            mod_paths.insert(0, str(self.module_dir))
        env[MODULE_PATH_ENV] = os.pathsep.join(mod_paths)
        py_paths = [str(self.module_dir), *_user_paths()]
        py_paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(py_paths))
        if _has_password(self.url):
            env["FLOWNB_REDIS_URL"] = self.url  # /proc/<pid>/cmdline is world-readable; environ isn't
        return env

    def _command(self, name: str) -> list[str]:
        cmd = [sys.executable, "-m", "flownb", "worker", "--name", name, "--queue", self.queue_name,
               "--prefix", self.prefix, "--lease-ttl", repr(self.lease_ttl_s), "--watch-parent",
               "--log-level", self.log_level, "--path", str(self.module_dir)]
        if self.concurrency is not None:
            cmd += ["--concurrency", str(int(self.concurrency))]
        if not _has_password(self.url):
            cmd[4:4] = ["--redis", self.url]
        for m in (*self.modules, *WORKER_HOOK_MODULES):
            cmd += ["--import", m]
        return cmd

    def _spawn(self, slot: _Slot) -> None:
        slot.started_at = time.monotonic()
        slot.stop_event = threading.Event()
        if self.mode == "process":
            assert self._state.tmp_dir is not None
            slot.log_path = Path(self._state.tmp_dir) / f"worker-{slot.index}.log"
            with open(slot.log_path, "ab") as logf:
                logf.write(f"----- {time.strftime('%H:%M:%S')} starting {slot.name} -----\n".encode())
                logf.flush()
                slot.proc = subprocess.Popen(
                    self._command(slot.name), stdin=subprocess.PIPE, stdout=logf,
                    stderr=subprocess.STDOUT, env=self._worker_env(), start_new_session=True,
                    close_fds=True)
            return
        conn = self._redis_settings.connect()
        slot.worker = _thread_worker(conn, name=slot.name, queue_name=self.queue_name,
                                     prefix=self.prefix, settings=self.settings,
                                     stop_event=slot.stop_event, concurrency=self.concurrency)
        ring = self._state.ring
        tname = f"flownb-worker-{slot.name}"
        if ring is not None:
            ring.lines.setdefault(slot.name, collections.deque(maxlen=ring.maxlen))
            ring.lines[tname] = ring.lines[slot.name]
        slot.thread = threading.Thread(target=_run_thread_worker, args=(slot.worker, self.log_level),
                                       name=tname, daemon=True)
        slot.thread.start()

    def _add(self, n: int) -> list[_Slot]:
        new = []
        with self._state.lock:
            for _ in range(n):
                i = next(self._indexes)
                slot = _Slot(index=i, name=f"{self.name}-w{i}")
                self._spawn(slot)
                self._state.slots.append(slot)
                new.append(slot)
        return new

    def _restart(self, slot: _Slot) -> None:
        """Called by the monitor for a slot whose worker died: record it, schedule a restart.

        A worker that dies right after starting is restarted after a back-off that doubles up
        to :data:`BACKOFF_MAX_S`; one that ran a while is restarted at once. While the cluster
        is being created, :data:`MAX_QUICK_DEATHS` start-up crashes make it raise instead.
        """
        st = self._state
        code = slot.proc.returncode if slot.proc is not None else None
        slot.exit_code = code
        st.forget(slot)
        lived = time.monotonic() - slot.started_at
        slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if slot.proc is not None and slot.proc.stdin is not None:
            with contextlib.suppress(OSError):
                slot.proc.stdin.close()
        slot.proc = None
        slot.thread = None
        slot.worker = None
        slot.dead = True
        if st.starting and slot.quick_deaths >= MAX_QUICK_DEATHS:
            slot.gave_up = True  # wait_for_workers() raises with the log
            return
        delay = 0.0
        if slot.quick_deaths:
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (slot.quick_deaths - 1))
        slot.restart_at = time.monotonic() + delay
        signame = ""
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                signame = signal.Signals(-code).name
        st.deaths.append({"at": time.time(), "worker": slot.name, "slot": slot.index,
                          "exit_code": code, "signal": signame, "lived_s": round(lived, 2),
                          "restart_in_s": delay})
        log.info("flownb LocalCluster: worker %s died (exit code %s); restart in %.1fs",
                 slot.name, code, delay)

    def _respawn(self, slot: _Slot) -> None:
        """Start the dead slot's next worker (under a new name: the old one's lease is void)."""
        slot.generation += 1
        slot.restarts += 1
        slot.name = f"{self.name}-w{slot.index}-r{slot.generation}"
        slot.dead = False
        slot.restart_at = 0.0
        slot.last_info = {}
        self._spawn(slot)
        if self._state.deaths:
            self._state.deaths[-1].setdefault("restarted_as", slot.name)

    # -- public API -----------------------------------------------------------------------------------
    def wait_for_workers(self, n: int | None = None, timeout: float = 30.0) -> None:
        """Block until ``n`` (default: all) workers serve the queue; raise if one cannot start."""
        want = len(self._live_slots()) if n is None else n
        deadline = time.monotonic() + timeout
        conn = self.executor.conn
        while True:
            with self._state.lock:
                slots = [s for s in self._state.slots if not s.stopping]
            dead = [s for s in slots if s.gave_up or s.quick_deaths >= MAX_QUICK_DEATHS]
            if dead:
                retry = "" if dead[0].gave_up else " (still retrying with back-off)"
                raise ExecutorError(f"worker {dead[0].name} cannot start: it died "
                                    f"{dead[0].quick_deaths} times right after starting (exit code "
                                    f"{dead[0].exit_code}){retry}; its log:\n"
                                    f"{self._slot_log(dead[0], 30)}")
            names = [s.name for s in slots if s.alive()]
            ready = 0
            if names:
                info = conn.hmget(self.executor.store.keys.workers, names)
                ready = sum(1 for x in info if x)
                if ready < want:  # RQ registers the worker (birth) before flownb's first heartbeat
                    pipe = conn.pipeline(transaction=False)
                    for nm in names:
                        pipe.exists(f"rq:worker:{nm}")
                    ready = max(ready, sum(1 for x in pipe.execute() if x))
            if ready >= want:
                return
            if time.monotonic() > deadline:
                raise ExecutorError(f"only {ready} of {want} workers started within {timeout}s; "
                                    f"logs:\n{self.logs(20)}")
            time.sleep(0.05)

    def _live_slots(self) -> list[_Slot]:
        with self._state.lock:
            return [s for s in self._state.slots if not s.stopping and not s.gave_up]

    @property
    def n_workers(self) -> int:
        """Worker slots (a dead worker's slot counts: it is being restarted)."""
        return len(self._live_slots())

    @property
    def n_alive(self) -> int:
        """Workers alive right now (0: nothing serves the queue until a restart succeeds)."""
        return sum(1 for s in self._live_slots() if s.alive())

    @property
    def deaths(self) -> list[dict[str, Any]]:
        """Recorded worker deaths, newest last (worker, exit code, signal, restart delay…)."""
        return list(self._state.deaths)

    def serving_warning(self) -> str | None:
        """One sentence when no worker of this cluster serves its queue, else None."""
        if self.closed:
            return f"LocalCluster {self.name} is closed: nothing serves queue {self.queue_name!r}"
        if self._live_slots() and self.n_alive == 0:
            waits = [s.restart_at - time.monotonic() for s in self._live_slots() if s.dead]
            nxt = f"; next restart in {max(0.0, min(waits)):.1f}s" if waits else ""
            return (f"no worker of LocalCluster {self.name} is alive on queue {self.queue_name!r}: "
                    f"runs wait until one restarts{nxt} (cluster.logs() says why they die)")
        if not self._live_slots():
            return (f"LocalCluster {self.name} has 0 workers: nothing serves queue "
                    f"{self.queue_name!r} (cluster.scale(n) adds some)")
        return None

    def scale(self, n: int, *, wait: bool = True, timeout: float = 10.0) -> None:
        """Grow or shrink to ``n`` workers; removed workers finish their current node first."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if self._state.closing.is_set():
            raise ExecutorError("this LocalCluster is closed")
        live = self._live_slots()
        if n > len(live):
            self._add(n - len(live))
            if wait:
                self.wait_for_workers(n, timeout=max(timeout, self.startup_timeout_s))
        elif n < len(live):
            drop = live[n:]
            with self._state.lock:
                for s in drop:
                    s.stopping = True
            self._state.stop_slots(drop, timeout)
            with self._state.lock:
                self._state.slots = [s for s in self._state.slots if s not in drop]

    def submit(self, blueprint: Blueprint | Mapping[str, Any] | str,
               inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> RunHandle:
        """Queue a run on this cluster's Redis; returns a :class:`RunHandle` at once (with a
        warning when no worker of the cluster is alive to serve it)."""
        problem = self.serving_warning()
        if problem is not None:
            import warnings

            warnings.warn(problem, RuntimeWarning, stacklevel=2)
        return self.executor.submit(blueprint, inputs, **kwargs)

    def run(self, blueprint: Blueprint | Mapping[str, Any] | str,
            inputs: Mapping[str, Any] | None = None, timeout: float | None = None, *,
            raise_on_error: bool = False) -> RunResult:
        """Submit and wait for the result."""
        return self.executor.run(blueprint, inputs, timeout=timeout, raise_on_error=raise_on_error)

    def map(self, blueprint: Blueprint | Mapping[str, Any] | str, rows: Any, *,
            key: str | None = None) -> Any:
        """One run per row on this cluster's workers; returns the batch handle at once
        (see :meth:`DistributedExecutor.map <flownb.distributed.client.DistributedExecutor.map>`)."""
        return self.executor.map(blueprint, rows, key=key)

    @property
    def pids(self) -> list[int]:
        """Pids of the live worker processes (the kernel's pid for thread workers)."""
        return [p for s in self._live_slots() if s.alive() and (p := s.pid) is not None]

    @property
    def workers(self) -> list[dict[str, Any]]:
        """One dict per worker: name, pid, alive, restarts + what it publishes in Redis
        (state, current node, jobs, nodes)."""
        try:
            info = self.executor.workers()
        except Exception:  # noqa: BLE001 - a repr must work with Redis gone
            info = {}
        out = []
        with self._state.lock:
            slots = list(self._state.slots)
        for s in slots:
            row: dict[str, Any] = {"name": s.name, "pid": s.pid, "alive": s.alive(),
                                   "restarts": s.restarts, "mode": self.mode}
            i = info.get(s.name) or {}
            if i:
                s.last_info = i
            elif s.stopping or s.dead:  # gone from Redis: keep what it did (jobs, nodes)
                i = {k: v for k, v in s.last_info.items() if k in ("jobs", "nodes")}
            if s.dead:
                left = max(0.0, s.restart_at - time.monotonic())
                fallback = f"dead, restarting in {left:.1f}s" if left > 0.05 else "restarting"
            elif s.stopping:
                fallback = "stopping" if s.alive() else "stopped"
            else:
                fallback = "gave up" if s.gave_up else "starting" if s.alive() else "dead"
            row.update({"state": (i.get("state") if not s.dead and not s.stopping else None)
                        or fallback,
                        "current": i.get("current"), "jobs": i.get("jobs", 0),
                        "nodes": i.get("nodes", 0)})
            out.append(row)
        return out

    def logs(self, n: int = 50) -> WorkerLogs:
        """The last ``n`` log lines of every worker (all restarts of a slot share one log)."""
        with self._state.lock:
            slots = list(self._state.slots)
        return WorkerLogs((s.name, self._slot_log(s, n)) for s in slots)

    def _slot_log(self, s: _Slot, n: int) -> str:
        if s.log_path is not None:
            return _tail(s.log_path, n)
        ring = self._state.ring
        if ring is not None and s.name in ring.lines:
            return "\n".join(list(ring.lines[s.name])[-n:])
        return ""

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker (warm, then SIGKILL after ``timeout``); idempotent."""
        self._state.close(timeout)

    @property
    def closed(self) -> bool:
        return self._state.closed

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            state = "closed"
        else:
            alive = self.n_alive
            state = f"{self.n_workers} workers" + (f" ({alive} alive)" if alive != self.n_workers else "")
        problem = "" if self.closed else (self.serving_warning() or "")
        return (f"<LocalCluster {self.name} {self.mode} {state} on {self.masked_url} "
                f"queue={self.queue_name!r}{' — ' + problem if problem else ''}>")

    def _repr_html_(self) -> str:
        from .cluster_view import cluster_html

        return cluster_html(self)

    def _ipython_display_(self) -> None:
        """In a kernel: a live table (workers, state, current node, deaths) that updates itself
        every second while the cluster is open; elsewhere the static HTML."""
        from .cluster_view import display_cluster

        display_cluster(self)


def _run_thread_worker(worker: Any, level: str) -> None:
    try:
        worker.work(logging_level=level)
    except Exception:
        log.exception("flownb LocalCluster: thread worker %s crashed", worker.name)


def _monitor(ref: weakref.ReferenceType[LocalCluster]) -> None:
    """Restart dead workers until the cluster closes (holds only a weak reference)."""
    while True:
        cluster = ref()
        if cluster is None:
            return
        st = cluster._state
        if st.closing.is_set():
            return
        try:
            with st.lock:
                if st.closing.is_set():
                    return
                now = time.monotonic()
                for s in st.slots:
                    if s.stopping or s.gave_up:
                        continue
                    if s.dead:
                        if now >= s.restart_at:
                            cluster._respawn(s)
                    elif not s.alive():
                        cluster._restart(s)
        except Exception:
            log.exception("flownb LocalCluster monitor")
        del cluster
        if st.closing.wait(MONITOR_INTERVAL_S):
            return
