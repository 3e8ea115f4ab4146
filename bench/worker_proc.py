"""A flownb worker process for benchmarks that need what ``flownb worker`` does not expose.

``python -m bench.worker_proc --redis URL --name N [--result-ttl S] [--profile OUT --burst]``

* ``--result-ttl``: the CLI builds ``StoreSettings(lease_ttl_s, queued_ttl_s)`` only, so finished
  runs expire after the default day; the memory benchmark needs seconds.
* ``--profile OUT``: cProfile of the worker's event-loop thread, where the visits run (or, with
  ``--profile-scope work``, of ``worker.work()``), written to OUT when the worker stops
  (``--burst``: when the queue is empty).

Otherwise it is the same as the CLI: ``make_worker(conn, name=..., settings=...)`` and ``.work()``.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import sys
from typing import Any


def _profile_visits(prof: cProfile.Profile) -> None:
    """Profile the worker's event-loop thread, where every visit runs (claim, node, commit;
    pool threads are not profiled): enabled once the loop starts, disabled before it stops."""
    import threading

    from flownb.distributed.visits import WorkerRuntime

    start, stop = WorkerRuntime.start, WorkerRuntime.stop

    def on_loop(rt: WorkerRuntime, fn: Any) -> None:
        done = threading.Event()
        assert rt._loop is not None
        rt._loop.call_soon_threadsafe(lambda: (fn(), done.set()))
        done.wait(10)

    def started(self: WorkerRuntime) -> None:
        first = self._loop is None
        start(self)
        if first:
            on_loop(self, prof.enable)

    def stopped(self: WorkerRuntime) -> None:
        if self._loop is not None and self._loop.is_running():
            on_loop(self, prof.disable)
        stop(self)

    WorkerRuntime.start = started  # type: ignore[method-assign]
    WorkerRuntime.stop = stopped  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--queue", default="flownb")
    ap.add_argument("--lease-ttl", type=float, default=10.0)
    ap.add_argument("--reap-interval", type=float, default=1.0)
    ap.add_argument("--result-ttl", type=int, default=86400)
    ap.add_argument("--import", dest="imports", action="append", default=[])
    ap.add_argument("--profile", default=None)
    ap.add_argument("--profile-scope", choices=("job", "work"), default="job",
                    help="job: the worker's event-loop thread (every visit: claim, node, commit); "
                         "work: the whole worker.work() loop (RQ's dequeue and bookkeeping too)")
    ap.add_argument("--burst", action="store_true")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.path.insert(0, os.getcwd())
    from flownb.distributed.settings import RedisSettings, check_server
    from flownb.distributed.store import StoreSettings
    from flownb.distributed.worker import make_worker
    from flownb.registry import default_registry

    default_registry.import_modules(args.imports)
    conn = RedisSettings.from_url(args.redis).connect()
    check_server(conn)
    settings = StoreSettings(lease_ttl_s=args.lease_ttl, queued_ttl_s=max(args.lease_ttl * 2, 5.0),
                             result_ttl_s=args.result_ttl)
    worker = make_worker(conn, name=args.name, queue_name=args.queue, settings=settings,
                         reap_interval_s=args.reap_interval)
    prof = cProfile.Profile() if args.profile else None
    if prof is not None and args.profile_scope == "job":
        _profile_visits(prof)
    elif prof is not None:
        prof.enable()
    try:
        worker.work(burst=args.burst, logging_level="WARNING")
    finally:
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
