"""Issue 19, item 2 (and the ConnectionError item of its medium list): every follower of a run
ends with an ExecutorError within seconds when the run's data is gone from Redis — after its
TTL, after a restart without persistence, for an unknown run id — and every handle call with
Redis down says so as an ExecutorError, never a raw redis error or a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

import flownb
from flownb.distributed.client import DistributedExecutor, NoWorkersWarning, RunHandle
from flownb.distributed.server import EmbeddedRedis
from flownb.distributed.store import StoreSettings
from flownb.core.errors import ExecutorError

from conftest import Workers

pytestmark = pytest.mark.timeout(120)

GONE = "the run's data is gone from Redis"


def one_node() -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "f", "nodes": [{"id": "a", "uses": "dist-mark"}]})


@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    srv = EmbeddedRedis(appendonly=False).start()
    yield srv
    srv.stop()


def _ends_with_error(fn: Callable[[], object], within_s: float) -> BaseException:
    t0 = time.monotonic()
    with pytest.raises(ExecutorError) as ei:
        fn()
    assert time.monotonic() - t0 < within_s
    return ei.value


def test_stream_of_an_unknown_run_id_raises(redis_url: str) -> None:
    ex = DistributedExecutor(redis_url)
    h = RunHandle(ex, "no-such-run")
    err = _ends_with_error(lambda: list(h.stream()), 5)
    assert GONE in str(err) and "no-such-run" in str(err)
    err = _ends_with_error(lambda: list(h.stream(["values", "events"])), 5)


def test_stream_after_the_runs_ttl_raises(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url, settings=StoreSettings(result_ttl_s=1))
    h = ex.submit(one_node(), history=True)
    assert h.result(timeout=20).status == "succeeded"
    assert [c for c in h.stream("updates")]  # while it is stored: the whole run
    time.sleep(1.8)
    assert h.status() == "gone"
    err = _ends_with_error(lambda: list(h.stream("updates")), 5)
    assert GONE in str(err)


def test_stream_while_redis_restarts_without_persistence(private_redis: EmbeddedRedis) -> None:
    ex = DistributedExecutor(private_redis.url)
    with pytest.warns(NoWorkersWarning):
        h = ex.submit(one_node())  # no worker: the run stays running
    got: list[BaseException] = []

    def follow() -> None:
        try:
            for _ in h.stream("events"):
                pass
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            got.append(exc)

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    time.sleep(0.5)
    private_redis.restart()  # no appendonly: everything is gone
    t.join(15)
    assert not t.is_alive(), "stream() still blocked after the run's data vanished"
    assert len(got) == 1 and isinstance(got[0], ExecutorError), got
    assert GONE in str(got[0])


def test_handle_calls_with_redis_down_are_executor_errors(private_redis: EmbeddedRedis) -> None:
    ex = DistributedExecutor(private_redis.url)
    with pytest.warns(NoWorkersWarning):
        h = ex.submit(one_node())
    bp = h.blueprint  # loaded while Redis is up
    private_redis.stop()
    calls: list[Callable[[], object]] = [
        h.waiting, lambda: h.resume("a", "yes"), h.history, lambda: list(h.stream()),
        h.fork_source, lambda: flownb.fork(h, from_node="a", output="x")]
    for call in calls:
        err = _ends_with_error(call, 30)
        assert type(err) is ExecutorError and "is unreachable" in str(err), err
    assert bp.id == "f"
