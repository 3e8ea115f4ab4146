"""Shared fixtures: one real embedded Redis per session, a database per test, real workers.

Each test that touches Redis gets its own database number (flushed before and after), so
tests never see each other's keys; worker fixtures start real ``flownb worker`` subprocesses
and kill them (and check they are gone) at teardown.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# A suite started in the background by a non-interactive shell (`cmd &`, nohup) inherits SIGINT
# *ignored*, and an ignored signal stays ignored across exec: every process the Ctrl-C tests
# start would then shrug off their SIGINT and run to the end. Python's own handler in this
# process makes the children start with the default action again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))

# tests never call a real model, even on a machine with OPENAI_API_KEY set (workers inherit this)
os.environ["FLOWNB_LLM"] = "fake"
os.environ.setdefault("FLOWNB_LLM_CACHE", "0")

_dbs = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[object]:
    from flownb.distributed.server import EmbeddedRedis

    srv = EmbeddedRedis(appendonly=False).start()
    yield srv
    srv.stop()


def _fresh_db_url(srv: object) -> str:
    import redis

    db = next(_dbs) % 63 + 1
    url = srv.url_for(db)  # type: ignore[attr-defined]
    redis.Redis.from_url(url).flushdb()
    return str(url)


@pytest.fixture
def redis_url(redis_server: object) -> Iterator[str]:
    import redis

    url = _fresh_db_url(redis_server)
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="module")
def module_redis_url(redis_server: object) -> Iterator[str]:
    import redis

    url = _fresh_db_url(redis_server)
    yield url
    redis.Redis.from_url(url).flushdb()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Workers:
    """Real ``flownb worker`` subprocesses importing the tests' node modules."""

    MODULES = ("scenario_nodes", "dist_nodes", "awaitable_nodes")

    def __init__(self, url: str, *, lease_ttl_s: float = 2.0,
                 modules: tuple[str, ...] | None = None, args: tuple[str, ...] = ()) -> None:
        self.url = url
        self.lease_ttl_s = lease_ttl_s
        self.modules = self.MODULES if modules is None else modules
        self.args = args
        self.procs: list[subprocess.Popen[bytes]] = []
        self._n = 0

    def start(self, n: int = 1, *, wait: bool = True) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(n):
            self._n += 1
            cmd = [sys.executable, "-m", "flownb", "worker", "--redis", self.url,
                   "--path", str(TESTS_DIR), "--lease-ttl", str(self.lease_ttl_s),
                   "--reap-interval", "0.5", "--name", f"test-w{self._n}-{os.getpid()}",
                   "--log-level", "WARNING"]
            for m in self.modules:
                cmd += ["--import", m]
            cmd += list(self.args)
            p = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            self.procs.append(p)
            started.append(p)
        if wait:
            self.wait_ready(len(self.alive()))
        return started

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def wait_ready(self, n: int, timeout: float = 20.0) -> None:
        import redis

        r = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if r.hlen("flownb:workers") >= n:
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                err = dead[0].stderr.read().decode() if dead[0].stderr else ""
                raise RuntimeError(f"worker exited early: {err[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("workers did not register in time")

    def kill(self, p: subprocess.Popen[bytes]) -> None:
        p.send_signal(signal.SIGKILL)
        p.wait(5)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for p in self.procs:
            assert not _alive(p.pid), f"worker {p.pid} survived teardown"


@pytest.fixture
def workers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url)
    yield w
    w.close()


@pytest.fixture(scope="module")
def module_workers(module_redis_url: str) -> Iterator[Workers]:
    w = Workers(module_redis_url)
    w.start(2)
    yield w
    w.close()
