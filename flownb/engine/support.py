"""The small parts of an in-process run that are not the engine itself: run ids, the thread pool for
synchronous nodes, the cancel token, the read-only views of state and outputs a node's reads go
through, and the preview of a value shown in events. Split from :mod:`flownb.engine.runtime` so
each module stays readable; the runtime re-exports the public names.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from ..core.context import OUTPUTS_PREFIX


_pool_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
#: threads for sync nodes off the inline path, shared by every run of the process; threads are
#: started only when needed, so a large bound costs nothing until hundreds of sync nodes wait at
#: once (asyncio's default executor would cap them at cpu_count + 4)
SYNC_THREADS = int(os.environ.get("FLOWNB_SYNC_THREADS", "256"))


def sync_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = concurrent.futures.ThreadPoolExecutor(SYNC_THREADS,
                                                              thread_name_prefix="flownb-node")
    return _pool


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class CancelToken:
    """Thread-safe cancellation flag that also wakes the run's event loop."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._flag.set()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_set_done, fut)

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def future(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._flag.is_set():
                fut.set_result(None)
            else:
                self._waiters.append((loop, fut))
        return fut


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Failure(Exception):
    """Internal: a node failed for good; carries the error record the policy made."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error
        self.node_id: str = error["node_id"]
        self.attempt: int = error["attempt"]


class _Outputs(Mapping[str, Any]):
    """``state._outputs`` as a mapping, so conditions can say ``state._outputs.fetch.ok``."""

    __slots__ = ("_o",)

    def __init__(self, outputs: dict[str, Any]) -> None:
        self._o = outputs

    def __getitem__(self, k: str) -> Any:
        return self._o[k]

    def __iter__(self) -> Any:
        return iter(self._o)

    def __len__(self) -> int:
        return len(self._o)


class _StateMap(Mapping[str, Any]):
    """The run's state for conditions: plain keys plus ``_outputs``."""

    __slots__ = ("_o", "_s")

    def __init__(self, state: dict[str, Any], outputs: dict[str, Any]) -> None:
        self._s = state
        self._o = outputs

    def __getitem__(self, k: str) -> Any:
        if k == "_outputs":
            return _Outputs(self._o)
        if k.startswith(OUTPUTS_PREFIX):
            return self._o[k[len(OUTPUTS_PREFIX):]]
        return self._s[k]

    def __iter__(self) -> Any:
        return iter(self._s)

    def __len__(self) -> int:
        return len(self._s)


def _no_resolve(name: str) -> Any:
    raise KeyError(name)


def _preview(value: Any, limit: int = 200) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    try:
        text = value if isinstance(value, str) else repr(value)
    except RecursionError:  # a value nested thousands deep: the event must not crash the run
        text = f"<{type(value).__name__} nested too deeply to show>"
    except Exception as exc:  # noqa: BLE001 - a user __repr__ that raises
        text = f"<{type(value).__name__}: repr() raised {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["CancelToken", "SYNC_THREADS", "new_run_id", "sync_pool"]
