"""``flownb run`` waiting for its run: the progress line on workers, the timeout and Ctrl-C here.

In process, :func:`run_in_process` turns ``--timeout-s`` into a cancel and Ctrl-C into one line
(as the Redis path prints), instead of a silent exit. On workers, :func:`wait_for_result` draws
one live progress line on stderr while it waits, on a terminal only.

A run on workers can take minutes, and a silent prompt looks hung. When stderr is a TTY the
command rewrites one line (``\\r``) from the run's event stream every half second — nodes done,
running, failed, elapsed time — and erases it before the result is printed. When stderr is a
pipe or a file (CI logs, ``2> log``) nothing is written: a log full of carriage returns helps
nobody, and stdout (the result's JSON) is never touched.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from ..core import events as ev

#: how often the line is redrawn (and the run's end noticed), seconds
TICK_S = 0.5
#: a run finished sooner than this shows no line at all (no flicker on quick runs)
SHOW_AFTER_S = 1.0
_ERASE = "\r\x1b[K"


class ProgressLine:
    """Counts from the run's events, and the one line that shows them."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.after = "0-0"
        self.done = 0
        self.failed = 0
        self.running: dict[str, int] = {}
        self.started = time.monotonic()

    def feed(self, handle: Any) -> None:
        """Read the events written since the last call."""
        for e in handle.events(after=self.after):
            self.after = e.id or self.after
            node = e.node_id or ""
            if e.type == ev.NODE_STARTED:
                self.running[node] = self.running.get(node, 0) + 1
            elif e.type in (ev.NODE_SUCCEEDED, ev.NODE_FAILED, ev.NODE_WAITING, ev.NODE_SKIPPED):
                if self.running.get(node, 0) > 1:
                    self.running[node] -= 1
                else:
                    self.running.pop(node, None)
                self.done += e.type == ev.NODE_SUCCEEDED
                self.failed += e.type == ev.NODE_FAILED

    def text(self) -> str:
        names = ", ".join(sorted(self.running)[:3]) + (", …" if len(self.running) > 3 else "")
        busy = f", running {names}" if self.running else ""
        bad = f", {self.failed} failed" if self.failed else ""
        return (f"run {self.run_id}: {self.done} node{'s' if self.done != 1 else ''} done{bad}"
                f"{busy} — {time.monotonic() - self.started:.0f}s")


def wait_for_result(handle: Any, timeout: float | None, err: TextIO) -> Any:
    """``handle.result(timeout, raise_on_error=False)``, drawing the progress line on ``err``
    when it is a terminal. Raises :class:`~flownb.core.errors.RunTimeout` when ``timeout`` passes."""
    if not _is_tty(err):
        return handle.result(timeout, raise_on_error=False)
    line = ProgressLine(handle.run_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = False
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            if handle.wait(TICK_S if left is None else min(TICK_S, left)):
                break
            if time.monotonic() - line.started >= SHOW_AFTER_S:
                line.feed(handle)
                err.write(_ERASE + line.text())
                err.flush()
                shown = True
    finally:
        if shown:
            err.write(_ERASE)
            err.flush()
    return handle.result(0.01 if deadline is not None else None, raise_on_error=False)


def run_in_process(bp: Any, inputs: dict[str, Any], timeout: float | None,
                   strict: bool = True) -> tuple[Any, bool] | None:
    """An in-process run for ``flownb run``: ``--timeout-s`` cancels it when it passes, and
    Ctrl-C cancels it and prints one line, as on Redis. ``(result, timed out)``; None when
    interrupted."""
    from ..engine.runtime import CancelToken, new_run_id, run

    token, run_id, timed_out = CancelToken(), new_run_id(), threading.Event()

    def expire() -> None:
        timed_out.set()
        token.cancel()

    timer = threading.Timer(timeout, expire) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        res = run(bp, inputs, raise_on_error=False, cancel=token, run_id=run_id, strict=strict)
    except KeyboardInterrupt:
        print(f"interrupted: run {run_id} cancelled (it ran in this process: nothing goes on)",
              file=sys.stderr)
        return None
    finally:
        if timer is not None:
            timer.cancel()
    return res, timed_out.is_set() and res.status == "cancelled"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["ProgressLine", "run_in_process", "wait_for_result"]
