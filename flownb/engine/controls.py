"""Run controls shared by both executors (issue 22): who acts, the refusals, and the in-process
pause token.

A person steering a run needs four things beyond cancel and a HITL answer: stop new work without
losing any (``pause`` / ``resume_run``), fix the state a run goes on with (``patch_state``),
re-run a node that failed once its cause is fixed (``retry``), and get past a node by hand
(``skip``). Each control refuses with a :class:`RunControlError` naming the run, the node and the
fix when it does not apply, rather than doing something half-way.

In process, :class:`RunControl` is the token a run is driven with (a :class:`CancelToken` that can
also pause): the driver starts no new visit while it is paused, lets the visits in flight finish
and then awaits :meth:`RunControl.resume_run`. The rest is :mod:`flownb.engine.local_controls`.
On Redis it is :mod:`flownb.distributed.controls`.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ..core.errors import FlownbError
from .support import CancelToken

if TYPE_CHECKING:
    from .driver import Engine

__all__ = ["RunControl", "RunControlError", "default_by", "hold", "refuse"]


class RunControlError(FlownbError):
    """A run control (pause, resume_run, patch_state, retry, skip) that does not apply now."""


def default_by() -> str:
    """Who acts, when the caller does not say (``by=``): ``user@host``, as the history records."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def refuse(what: str, status: str, fix: str, *, run_id: str, node_id: str | None = None) -> RunControlError:
    """The one wording of every refusal: what was asked, the run's status, how to get there."""
    return RunControlError(f"cannot {what}: the run is {status}; {fix}", run_id=run_id, node_id=node_id)


class RunControl(CancelToken):
    """A cancel token that can also pause an in-process run (``flownb.run(..., cancel=ctl)``).

    Thread-safe: a widget button or another thread calls :meth:`pause` / :meth:`resume_run`
    while the run's loop awaits :meth:`resumed` when nothing is left in flight.
    """

    def __init__(self) -> None:
        super().__init__()
        self._paused = threading.Event()
        self._resume_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        #: who paused / resumed last (the run_paused / run_resumed events say it)
        self.by: str | None = None

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def pause(self, *, by: str | None = None) -> None:
        self.by = by or default_by()
        self._paused.set()

    def resume_run(self, *, by: str | None = None) -> None:
        if by is not None or self._paused.is_set():
            self.by = by or default_by()
        with self._lock:
            self._paused.clear()
            waiters, self._resume_waiters = self._resume_waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_done, fut)

    def cancel(self) -> None:
        super().cancel()
        self.resume_run()  # a paused run that is cancelled ends instead of waiting on

    def reset(self) -> None:
        """Clear a cancel (a retried or skipped run runs again with the same token)."""
        self._flag.clear()
        self._paused.clear()

    def resumed(self) -> asyncio.Future[None]:
        """A future of the running loop done once the run is resumed (or cancelled)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if not self._paused.is_set() or self._flag.is_set():
                fut.set_result(None)
            else:
                self._resume_waiters.append((loop, fut))
        return fut


def _done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


#: the events a paused and a resumed run emit (both executors; the run widget shows "paused")
RUN_PAUSED = "run_paused"
RUN_RESUMED = "run_resumed"


async def hold(engine: Engine, ready: deque[Any]) -> None:
    """The driver's pause: nothing runs now; keep the ready visits (``engine.held``, where
    ``skip`` finds a queued node) and await the resume (or a cancel)."""
    ctl = engine.control
    assert ctl is not None
    engine.held = ready
    engine._emit(RUN_PAUSED, queued=len(ready), by=ctl.by)
    try:
        await ctl.resumed()
    finally:
        engine.held = None
    if not engine.cancel.cancelled:
        engine._emit(RUN_RESUMED, queued=len(ready), by=ctl.by)
