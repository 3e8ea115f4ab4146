"""``LocalCluster``: flownb workers for a notebook, as child processes or kernel threads.

Why a cluster object instead of "open a terminal and run ``flownb worker``": in a notebook the
workers should come and go with the kernel. That is harder than it looks (see
:mod:`flownb.notebook.watchdog`); the pieces live
beside this facade, one concept each:

* :mod:`~flownb.notebook.cluster_workers` - how one worker starts: **process mode** runs
  ``python -m flownb worker --watch-parent …`` children in their own session (a Jupyter
  interrupt stops the cell, not the workers; a pipe on stdin and the parent pid end them when
  the kernel is SIGKILLed); **thread mode** runs RQ ``SimpleWorker``s in daemon threads of the
  kernel (no start-up cost, shares the kernel's ``sys.path`` and node registry, but a node that
  blocks the GIL blocks the kernel). Each process worker logs to its own file
  (:meth:`LocalCluster.logs`).
* :mod:`~flownb.notebook.cluster_supervisor` - slots, the monitor thread that restarts dead
  workers with back-off and never gives a slot up once running, recorded deaths (shown by the
  cluster's view and repr, not logged into cells), and the ``weakref.finalize`` stop path.
* :mod:`~flownb.notebook.cluster_registry` - **one live cluster per queue**: re-running
  ``cluster = LocalCluster(2)`` closes the old cluster on the same Redis, prefix and queue.

The cluster's Redis is ``redis`` (a URL, settings or an :class:`EmbeddedRedis`) or, without one,
the process-wide embedded server (:func:`flownb.distributed.server.shared_server`).
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from ..core.errors import ExecutorError
from ..core.tempdirs import owned_mkdtemp
from .cluster_registry import new_cluster_name, replace_live
from .cluster_supervisor import MAX_QUICK_DEATHS, ClusterState, Slot, monitor
from .cluster_workers import (
    acquire_ring,
    spawn_process,
    spawn_thread,
    tail,
    worker_command,
    worker_env,
)
from .modules import session_dir

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..distributed.client import DistributedExecutor, RunHandle
    from ..core.result import RunResult

__all__ = ["LocalCluster", "WorkerLogs"]


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
        concurrency: node visits each worker runs at once (default: the worker's, 128).
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
        self.name = name or new_cluster_name()
        self.settings = StoreSettings(lease_ttl_s=self.lease_ttl_s,
                                      queued_ttl_s=max(self.lease_ttl_s * 2, 5.0))
        self._redis_settings = RedisSettings.from_url(self.url)
        self.executor: DistributedExecutor = DistributedExecutor(
            self.url, prefix=prefix, queue_name=queue_name, settings=self.settings)
        self.module_dir = session_dir()
        self._indexes = itertools.count(1)
        self._state = ClusterState(mode)
        self._state.conn = self.executor.conn
        self._state.workers_key = self.executor.store.keys.workers
        self._state.tmp_dir = owned_mkdtemp("cluster")  # swept after a kernel SIGKILL
        self._finalizer = weakref.finalize(self, self._state.finalize)
        if mode == "thread":
            from ..core.registry import default_registry

            default_registry.import_modules(self.modules)
            self._state.ring = acquire_ring()
        replace_live(self)
        try:
            self._add(n_workers)
            self._state.monitor = threading.Thread(target=monitor, args=(weakref.ref(self),),
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
    def _spawn(self, slot: Slot) -> None:
        slot.started_at = time.monotonic()
        slot.stop_event = threading.Event()
        if self.mode == "process":
            assert self._state.tmp_dir is not None
            cmd = worker_command(slot.name, url=self.url, queue_name=self.queue_name,
                                 prefix=self.prefix, lease_ttl_s=self.lease_ttl_s,
                                 log_level=self.log_level, module_dir=self.module_dir,
                                 concurrency=self.concurrency, modules=self.modules)
            spawn_process(slot, self._state.tmp_dir, cmd,
                          worker_env(self.url, self.env, self.module_dir))
            return
        spawn_thread(slot, self._redis_settings.connect(), queue_name=self.queue_name,
                     prefix=self.prefix, settings=self.settings, concurrency=self.concurrency,
                     ring=self._state.ring, log_level=self.log_level)

    def _add(self, n: int) -> list[Slot]:
        new = []
        with self._state.lock:
            for _ in range(n):
                i = next(self._indexes)
                slot = Slot(index=i, name=f"{self.name}-w{i}")
                self._spawn(slot)
                self._state.slots.append(slot)
                new.append(slot)
        return new

    def _respawn(self, slot: Slot) -> None:
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

    def _live_slots(self) -> list[Slot]:
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
            raise_on_error: bool = True, strict: bool = True, history: bool = False) -> RunResult:
        """Submit and wait for the result (a failed run raises
        :class:`~flownb.core.errors.RunFailed` unless ``raise_on_error=False``; ``strict``: see
        :func:`flownb.run`)."""
        return self.executor.run(blueprint, inputs, timeout=timeout, raise_on_error=raise_on_error,
                                 strict=strict, history=history)

    def runs(self, *, page_size: int = 20) -> Any:
        """A runs browser over this cluster's runs (:func:`flownb.runs`)."""
        from .runs_browser import RedisRuns, RunsBrowser

        return RunsBrowser(RedisRuns(self.executor), page_size=page_size)

    def map(self, blueprint: Blueprint | Mapping[str, Any] | str, rows: Any, *,
            key: str | None = None, strict: bool = True, history: bool = False) -> Any:
        """One run per row on this cluster's workers; returns the batch handle at once
        (see :meth:`DistributedExecutor.map <flownb.distributed.client.DistributedExecutor.map>`)."""
        return self.executor.map(blueprint, rows, key=key, strict=strict, history=history)

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

    def _slot_log(self, s: Slot, n: int) -> str:
        if s.log_path is not None:
            return tail(s.log_path, n)
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

    def __enter__(self) -> Self:
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
