"""A flownb worker process for benchmarks that need what ``flownb worker`` does not expose.

``python -m bench.worker_proc --redis URL --name N [--result-ttl S] [--profile OUT --burst]``

* ``--result-ttl``: the CLI builds ``StoreSettings(lease_ttl_s, queued_ttl_s)`` only, so finished
  runs expire after the default day; the memory benchmark needs seconds.
* ``--profile OUT``: cProfile around ``worker.work()`` only (not the imports), written to OUT when
  the worker stops (``--burst``: when the queue is empty).

Otherwise it is the same as the CLI: ``make_worker(conn, name=..., settings=...)`` and ``.work()``.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import sys
from typing import Any


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
                    help="job: only WorkerRuntime.process (the flownb part of each job); "
                         "work: the whole worker.work() loop (RQ's dequeue and bookkeeping too)")
    ap.add_argument("--burst", action="store_true")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.path.insert(0, os.getcwd())
    from flownb.distributed.settings import RedisSettings, check_server
    from flownb.distributed.store import StoreSettings
    from flownb.distributed.worker import make_worker
    from flownb.core.registry import default_registry

    default_registry.import_modules(args.imports)
    conn = RedisSettings.from_url(args.redis).connect()
    check_server(conn)
    settings = StoreSettings(lease_ttl_s=args.lease_ttl, queued_ttl_s=max(args.lease_ttl * 2, 5.0),
                             result_ttl_s=args.result_ttl)
    worker = make_worker(conn, name=args.name, queue_name=args.queue, settings=settings,
                         reap_interval_s=args.reap_interval)
    prof = cProfile.Profile() if args.profile else None
    loop_thread: list[Any] = []
    if prof is not None and args.profile_scope == "job":
        from flownb.distributed.worker import WorkerRuntime

        if not hasattr(WorkerRuntime, "process"):
            # workers that run many visits at once do the flownb part of every job on one
            # event-loop thread: profile that thread
            _profile_loop_thread(WorkerRuntime, prof, loop_thread)
    if prof is not None and args.profile_scope == "job" and hasattr(WorkerRuntime, "process"):
        original = WorkerRuntime.process

        def process(self, run_id, items):  # type: ignore[no-untyped-def]
            prof.enable()
            try:
                return original(self, run_id, items)
            finally:
                prof.disable()

        WorkerRuntime.process = process  # type: ignore[method-assign]
    elif prof is not None:
        prof.enable()
    try:
        worker.work(burst=args.burst, logging_level="WARNING")
    finally:
        if prof is not None:
            for t in loop_thread:  # its run_forever returns once the worker stopped
                t.join(10)
            prof.disable()
            prof.dump_stats(args.profile)
    return 0


def _profile_loop_thread(runtime_cls: Any, prof: cProfile.Profile, threads: list[Any]) -> None:
    import asyncio
    import threading

    original_start = runtime_cls.start

    def start(self: Any) -> None:
        if getattr(self, "_loop", None) is None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._loop_thread = threading.Thread(target=prof.runcall, args=(loop.run_forever,),
                                                 daemon=True, name=f"flownb-loop-{self.name}")
            self._loop_thread.start()
            threads.append(self._loop_thread)
        original_start(self)

    runtime_cls.start = start
    runtime_cls.start_background = start


if __name__ == "__main__":
    raise SystemExit(main())
