"""How an embedded redis-server is configured: password rules, private temp dir, argv and URL.

Why these are pure functions apart from the process code: every setting is passed on the command
line (no config file, no global state), and the security-relevant choices — ``requirepass`` only
through stdin, never argv (``/proc/<pid>/cmdline`` is world-readable); ``protected-mode`` on TCP;
a mode-700 socket dir — are easiest to review in one small place.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote

from flownb.core.errors import ExecutorError
from flownb.core.tempdirs import owned_mkdtemp

#: Enough databases for tests to isolate themselves by db number.
DATABASES = 64
#: A run's hashes (sched, state, nodes) gain a field per node: in Redis's compact encoding
#: (up to ``hash-max-ziplist-entries`` fields, 512 by default) every read and write scans the
#: fields one by one, which was 17% of redis-server's instructions per node on a chain of 1,000
#: (callgrind; issue 21). Past 64 fields a hash is a hash table: a small run's hashes stay
#: compact, a long run's cost no longer grows with its length.
HASH_COMPACT_FIELDS = 64
# AF_UNIX paths are limited to 108 bytes on Linux and 104 on macOS.
_MAX_SOCKET_PATH = 100


def check_password(password: str | None) -> None:
    """Reject a password that cannot travel safely in a ``requirepass`` line and a URL."""
    if password is not None and (not password or any(c in password for c in "\r\n\"' ")):
        raise ExecutorError(
            "EmbeddedRedis password must be non-empty, without spaces, quotes or newlines"
        )


def default_password(password: str | None, unix_socket: bool) -> str | None:
    """``password``, or a random one in TCP mode: a loopback port is reachable by every local
    user; the unix socket needs none (its directory and the socket are mode 700)."""
    if password is None and not unix_socket:
        return secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe in a URL and a config line
    return password


def make_tmp_dir() -> str:
    """A fresh private (mode 700) temp dir short enough to hold ``redis.sock``."""
    tmp = owned_mkdtemp("redis")  # swept once its owner is gone
    if len(os.path.join(tmp, "redis.sock")) > _MAX_SOCKET_PATH and os.path.isdir("/tmp"):
        # a long $TMPDIR (macOS: /var/folders/…) would overflow sun_path
        os.rmdir(tmp)
        tmp = owned_mkdtemp("redis", "/tmp")
    os.chmod(tmp, 0o700)  # mkdtemp does this; say it: the socket's privacy rests on it
    return tmp


def redis_argv(binary: str, *, tmp_dir: str, data_dir: str, password: str | None,
               socket_path: str | None, port: int | None, appendonly: bool) -> list[str]:
    """redis-server's command line: every setting on it, the password read from stdin."""
    argv = [binary]
    if password is not None:
        argv.append("-")  # read the requirepass line from stdin, keeping it out of argv
    if socket_path is not None:
        argv += ["--port", "0", "--unixsocket", socket_path, "--unixsocketperm", "700",
                 "--protected-mode", "no"]
    else:
        argv += ["--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes"]
    argv += [
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--dir", data_dir,
        "--daemonize", "no",
        "--loglevel", "warning",
        "--logfile", os.path.join(tmp_dir, "redis.log"),
        "--databases", str(DATABASES),
        "--hash-max-ziplist-entries", str(HASH_COMPACT_FIELDS),  # Redis 7: an alias of listpack
    ]
    return argv


def redis_url(password: str | None, socket_path: str | None, port: int | None, db: int) -> str:
    """``unix://[:pw@]<socket>?db=N`` or ``redis://[:pw@]127.0.0.1:PORT/N``."""
    auth = f":{quote(password, safe='')}@" if password is not None else ""
    if socket_path is not None:
        return f"unix://{auth}{socket_path}?db={db}"
    return f"redis://{auth}127.0.0.1:{port}/{db}"
