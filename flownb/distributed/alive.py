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
    env[ENV] = json.dumps({"redis": _connection_spec(conn), "key": key, "parent": os.getpid(),
                           "ttl_ms": int(max(5.0, 2 * lease_ttl_s) * 1000),
                           "beat_s": max(0.1, min(1.0, lease_ttl_s / 5))})
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
    try:
        while os.getppid() == parent:
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
