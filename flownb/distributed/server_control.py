"""Talking to and stopping a running embedded redis-server: raw RESP, readiness, shutdown.

Why raw RESP: the few commands needed (AUTH, PING, INFO, SHUTDOWN NOSAVE) must work without
redis-py and without its reconnect/backoff machinery slowing down the readiness poll.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading

from flownb.distributed.server_watchdog import _pid_alive

#: Seconds to wait for a freshly started server to answer PING.
START_TIMEOUT_S = 10.0
#: Seconds a graceful SHUTDOWN may take before the process is killed.
STOP_TIMEOUT_S = 5.0


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
