"""Run coroutines from synchronous code, including inside Jupyter's running event loop.

``asyncio.run`` fails in a notebook cell because the kernel already runs a loop in that thread.
Rather than patching asyncio (nest_asyncio is archived and breaks ``loop_factory`` on 3.12+),
a sync call made while a loop is running executes the coroutine on a private helper thread with
its own loop and blocks for the answer. Without a running loop, a per-thread private loop is
reused, which also keeps the cost of ``flownb.run`` on a tiny graph low (no new loop per call).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_local = threading.local()
_helper_lock = threading.Lock()
_helper: concurrent.futures.ThreadPoolExecutor | None = None


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


def _run_here(coro: Coroutine[Any, Any, T]) -> T:
    loop = _thread_loop()
    return loop.run_until_complete(coro)


def _run_main(coro: Coroutine[Any, Any, T], on_interrupt: Callable[[], None]) -> T:
    """Like :func:`_run_here` in the main thread, where Ctrl-C (SIGINT) calls ``on_interrupt``
    (cancel the run) instead of raising into whatever code runs: the run then ends cleanly,
    nothing is left pending, and ``KeyboardInterrupt`` is raised once it has. A second Ctrl-C
    interrupts for real."""
    loop = _thread_loop()
    interrupted = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        on_interrupt()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        result = loop.run_until_complete(coro)
    except Exception as exc:  # the cancelled run raised (RunCancelled): Ctrl-C still reads as one
        if interrupted:
            raise KeyboardInterrupt from exc
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt
    return result


def in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(coro: Coroutine[Any, Any, T], on_interrupt: Callable[[], None] | None = None) -> T:
    """Block until ``coro`` finishes, wherever we are called from.

    ``on_interrupt`` is called on Ctrl-C / Jupyter's interrupt (e.g. to cancel a run); the
    coroutine is then awaited to its end before ``KeyboardInterrupt`` is raised."""
    if not in_running_loop():
        if on_interrupt is not None and threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            return _run_main(coro, on_interrupt)
        return _run_here(coro)
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = concurrent.futures.ThreadPoolExecutor(max_workers=8,
                                                            thread_name_prefix="flownb-sync")
    fut = _helper.submit(_run_here, coro)
    try:
        return fut.result()
    except KeyboardInterrupt:  # Jupyter's interrupt lands in the waiting main thread
        if on_interrupt is None:
            raise
        on_interrupt()
        concurrent.futures.wait([fut])
        raise
