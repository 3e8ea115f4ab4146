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
import threading
from collections.abc import Coroutine
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


def in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Block until ``coro`` finishes, wherever we are called from."""
    if not in_running_loop():
        return _run_here(coro)
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = concurrent.futures.ThreadPoolExecutor(max_workers=8,
                                                            thread_name_prefix="flownb-sync")
    return _helper.submit(_run_here, coro).result()
