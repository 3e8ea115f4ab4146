"""A worker's liveness, kept by a tiny child process.

A node that holds the GIL (a long regex backtrack, a pure-Python loop) starves every thread of
its worker, the lease heartbeat included, so leases alone would let another worker run the node
a second time while the first still runs it. This child process shares no GIL with the worker:
it sets ``{p}:alive:<worker>`` with a short expiry every beat for as long as its parent lives,
and deletes it the moment the parent is gone (``kill -9`` included), so the reaper spares a
live worker's items and re-runs a dead worker's items without waiting for the lease.

Run as ``python .../flownb/distributed/alive.py`` with its settings in the environment (JSON in
``FLOWNB_ALIVE``), so a Redis password never appears on a command line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

ENV = "FLOWNB_ALIVE"
#: the process a worker must not outlive (a notebook kernel; set by LocalCluster, read by the
#: worker's ``--watch-parent`` watchdog too) and how long its warm shutdown may take
OWNER_ENV = "FLOWNB_PARENT_PID"
GRACE_ENV = "FLOWNB_WATCHDOG_GRACE_S"
log = logging.getLogger("flownb.alive")


def _connection_spec(conn: redis.Redis) -> dict[str, Any]:
    pool = conn.connection_pool
    kw = pool.connection_kwargs
    spec: dict[str, Any] = {k: kw[k] for k in ("host", "port", "db", "username", "password",
                                                "socket_timeout") if kw.get(k) is not None}
    if kw.get("path"):
        spec = {k: v for k, v in spec.items() if k not in ("host", "port")}
        spec["unix_socket_path"] = kw["path"]
    if "SSL" in getattr(pool, "connection_class", type(None)).__name__:
        spec["ssl"] = True
    return spec


def spawn(conn: redis.Redis, key: str, lease_ttl_s: float) -> subprocess.Popen[bytes]:
    """Start the liveness process for the calling worker process."""
    env = dict(os.environ)
    owner = os.environ.get(OWNER_ENV, "").strip()
    try:
        grace = float(os.environ.get(GRACE_ENV, "") or 5.0)
    except ValueError:
        grace = 5.0
    env[ENV] = json.dumps({"redis": _connection_spec(conn), "key": key, "parent": os.getpid(),
                           "ttl_ms": int(max(5.0, 2 * lease_ttl_s) * 1000),
                           "beat_s": max(0.1, min(1.0, lease_ttl_s / 5)),
                           "owner": int(owner) if owner.isdigit() else 0, "grace_s": grace})
    # run this file as a script: importing the flownb package (pydantic...) would slow the start
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            start_new_session=False, close_fds=True)
    import redis as redis_mod

    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and proc.poll() is None:  # serve only once it beats
        try:
            if conn.exists(key):
                break
        except redis_mod.RedisError as exc:  # Redis slow to answer: keep waiting
            log.debug("liveness key %s not readable yet: %s", key, exc)
        time.sleep(0.02)
    return proc


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0).

    Deliberately a copy of :func:`flownb.core.tempdirs._running`: this file runs as a script
    in a tiny child process that imports only the standard library (importing ``flownb`` would
    import pydantic and cost the child ~100 ms and megabytes, and a worker whose kernel was
    SIGKILLed must be ended by it promptly; see tests/test_harden_kernel.py)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end_orphan(worker: int, grace_s: float) -> None:
    """The worker's owner (a kernel) is gone: if the worker is still there once its own
    watchdog had time for a warm shutdown (``grace_s`` and a second), end it.

    Why here and not only in the worker's watchdog thread: a node holding the GIL starves that
    thread (and the SIGTERM handler), so the worker outlived its kernel by the node's whole
    duration (48.7 s measured); this process holds no GIL of the worker's. It does not send a
    SIGTERM of its own: a second one would turn RQ's warm shutdown into a cold one."""
    end = time.monotonic() + grace_s + 1.0
    while time.monotonic() < end and os.getppid() == worker:
        time.sleep(0.1)
    if os.getppid() == worker:  # still there (once it exits we are reparented)
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _Stopped(Exception):
    """SIGTERM from the worker: stop beating now."""


def main() -> int:
    import redis

    cfg = json.loads(os.environ[ENV])
    parent = int(cfg["parent"])
    _die_with_parent()

    def _stop(*_: Any) -> None:
        # raise, not a flag: Python resumes an interrupted time.sleep (PEP 475), so a flag was
        # seen only after the rest of the beat, and a stopping worker waited for it
        raise _Stopped

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the worker, which stops us
    r = redis.Redis(**cfg["redis"])
    key, ttl_ms, beat = cfg["key"], int(cfg["ttl_ms"]), float(cfg["beat_s"])
    owner = int(cfg.get("owner") or 0)
    try:
        while os.getppid() == parent:
            if owner and not _running(owner):
                _end_orphan(parent, float(cfg.get("grace_s") or 5.0))
                break
            try:
                r.set(key, str(parent), px=ttl_ms)
            except redis.RedisError as exc:  # Redis away (or full) for a moment: next beat
                log.debug("could not set %s: %s", key, exc)
            time.sleep(beat)
    except _Stopped:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the delete
    try:
        r.delete(key)
    except redis.RedisError as exc:  # best effort; the key expires anyway
        log.debug("could not delete %s: %s", key, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
