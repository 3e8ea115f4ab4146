"""``show`` / ``watch`` / ``widget_for`` / ``run_with_widget``: pick the right view for where we run.

In a Jupyter kernel the view is a :class:`~flownb.notebook.widget.RunWidget`; anywhere else
(a terminal, a script, a test) it is a tqdm bar on stderr driven in the calling thread. The
choice is made by :func:`in_kernel` (an IPython shell *with a kernel*: a terminal IPython
gets the bar, because it cannot render widgets).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from .progress import ProgressView, TqdmProgress

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.result import RunResult
    from .widget import RunWidget

__all__ = ["arun_with_widget", "in_kernel", "run_with_widget", "show", "watch", "widget_for"]


def in_kernel() -> bool:
    """True inside a Jupyter kernel (IPython already imported and running with a kernel)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        ip = ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


def _handle(obj: Any, redis: Any, prefix: str, queue_name: str) -> Any:
    """A RunHandle for a handle or a run id."""
    if isinstance(obj, str):
        from ..distributed.client import attach

        return attach(obj, redis=redis, prefix=prefix, queue_name=queue_name)
    return obj


def _view_for(obj: Any, *, redis: Any = None, prefix: str = "flownb",
              queue_name: str = "flownb", background: bool = True) -> tuple[ProgressView, Any]:
    """A view fed by ``obj`` (RunHandle, run id, RunResult or ProgressView) + the handle if any."""
    from ..core.result import RunResult

    if isinstance(obj, ProgressView):
        return obj, None
    if isinstance(obj, RunResult):
        view = ProgressView(run_id=obj.run_id)
        view.finish(obj)
        return view, None
    handle = _handle(obj, redis, prefix, queue_name)
    if hasattr(handle, "on_result") and hasattr(handle, "bus"):  # flownb.start's LocalHandle
        from .control_buttons import local_view

        return local_view(handle), handle
    if not hasattr(handle, "store") or not hasattr(handle, "run_id"):
        raise TypeError(f"cannot show {type(obj).__name__}: expected a RunHandle, a run id, a "
                        "RunResult or a ProgressView")
    try:
        bp = handle.blueprint
    except Exception:  # noqa: BLE001 - expired blueprint: rows come from the events
        bp = None
    view = ProgressView(bp, run_id=handle.run_id)
    if background:
        view.follow(handle)
    return view, handle


def widget_for(handle_or_run_id: Any, *, redis: Any = None, prefix: str = "flownb",
               queue_name: str = "flownb", file: TextIO | None = None) -> RunWidget | TqdmProgress:
    """A live view of a distributed run. In a Jupyter kernel: a :class:`RunWidget` (not
    displayed: return it from a cell, or call ``.display()``). Anywhere else (a terminal, a
    script): a :class:`TqdmProgress` bar on ``file`` (stderr) that follows the run in the
    background — ``.wait()`` blocks until it ends — because a widget cannot render there.
    ``handle_or_run_id`` may also be a ``RunResult`` (a static view) or a
    :class:`ProgressView`. This is what ``RunHandle.widget()`` delegates to."""
    view, handle = _view_for(handle_or_run_id, redis=redis, prefix=prefix, queue_name=queue_name)
    if not in_kernel():
        return TqdmProgress(view, file=file)
    from .widget import RunWidget

    return RunWidget(view, cancel=getattr(handle, "cancel", None),
                     controls=handle if hasattr(handle, "pause") else None)


def _kernel_widget(run: Any, redis: Any, prefix: str, queue_name: str) -> RunWidget:
    from .widget import RunWidget

    view, handle = _view_for(run, redis=redis, prefix=prefix, queue_name=queue_name)
    return RunWidget(view, cancel=getattr(handle, "cancel", None),
                     controls=handle if hasattr(handle, "pause") else None)


def show(run: Any, *, redis: Any = None, prefix: str = "flownb", queue_name: str = "flownb",
         file: TextIO | None = None, timeout: float | None = None) -> Any:
    """Show a run's progress: in a kernel, display a live widget and return it at once;
    elsewhere, draw a tqdm bar in this thread until the run ends and return its RunResult."""
    if in_kernel():
        return _kernel_widget(run, redis, prefix, queue_name).display()
    return _watch_terminal(run, redis=redis, prefix=prefix, queue_name=queue_name, file=file,
                           timeout=timeout)


def watch(run: Any, *, redis: Any = None, prefix: str = "flownb", queue_name: str = "flownb",
          file: TextIO | None = None, timeout: float | None = None) -> RunResult | None:
    """Like :func:`show` but always blocks until the run ends and returns its RunResult (the
    widget keeps updating while the cell blocks)."""
    if in_kernel():
        w = _kernel_widget(run, redis, prefix, queue_name).display()
        return w.wait(timeout)
    return _watch_terminal(run, redis=redis, prefix=prefix, queue_name=queue_name, file=file,
                           timeout=timeout)


def _watch_terminal(run: Any, *, redis: Any, prefix: str, queue_name: str, file: TextIO | None,
                    timeout: float | None) -> RunResult | None:
    view, handle = _view_for(run, redis=redis, prefix=prefix, queue_name=queue_name,
                             background=False)
    bar = TqdmProgress(view, file=file)
    try:
        if handle is not None:
            if timeout is not None:
                view.follow(handle)  # so the timeout applies; the thread ends with the run
            else:
                view.consume(handle)
        view.wait(timeout)
    finally:
        bar.close()
    return view.result


def _front(view: ProgressView, file: TextIO | None, cancel: Any = None) -> tuple[Any, Any]:
    if in_kernel():
        from .widget import RunWidget

        return RunWidget(view, cancel=cancel).display(), None
    return None, TqdmProgress(view, file=file)


def run_with_widget(blueprint: Blueprint | Mapping[str, Any] | str,
                    inputs: Mapping[str, Any] | None = None, *, file: TextIO | None = None,
                    **kwargs: Any) -> RunResult:
    """``flownb.run`` with a live view: a widget in a kernel, a tqdm bar elsewhere.

    Keyword arguments go to :func:`flownb.run` (``registry``, ``cancel``, ``on_event``…).
    """
    from ..core.blueprint import load
    from ..engine.runtime import run

    bp = load(blueprint)  # type: ignore[arg-type]
    view = ProgressView(bp)
    from ..engine.support import CancelToken

    kwargs["cancel"] = kwargs.get("cancel") or CancelToken()  # the widget's Cancel button
    widget, bar = _front(view, file, kwargs["cancel"].cancel)
    user_cb = kwargs.pop("on_event", None)
    on_event = view.feed if user_cb is None else _both(view.feed, user_cb)
    raise_on_error = kwargs.pop("raise_on_error", True)
    try:  # the view shows a failed run before the failure is raised
        result = run(bp, inputs, on_event=on_event, raise_on_error=False, **kwargs)
        view.finish(result)
        view.wait(10)
    finally:
        if bar is not None:
            bar.close()
    return result.raise_for_status() if raise_on_error else result


async def arun_with_widget(blueprint: Blueprint | Mapping[str, Any] | str,
                           inputs: Mapping[str, Any] | None = None, *,
                           file: TextIO | None = None, **kwargs: Any) -> RunResult:
    """``await flownb.arun(...)`` with a live view (``await`` works at a cell's top level)."""
    import asyncio

    from ..core.blueprint import load
    from ..engine.runtime import arun

    bp = load(blueprint)  # type: ignore[arg-type]
    view = ProgressView(bp)
    from ..engine.support import CancelToken

    kwargs["cancel"] = kwargs.get("cancel") or CancelToken()  # the widget's Cancel button
    widget, bar = _front(view, file, kwargs["cancel"].cancel)
    user_cb = kwargs.pop("on_event", None)
    on_event = view.feed if user_cb is None else _both(view.feed, user_cb)
    raise_on_error = kwargs.pop("raise_on_error", True)
    try:
        result = await arun(bp, inputs, on_event=on_event, raise_on_error=False, **kwargs)
        view.finish(result)
        await asyncio.to_thread(view.wait, 10)
    finally:
        if bar is not None:
            bar.close()
    return result.raise_for_status() if raise_on_error else result


def _both(a: Any, b: Any) -> Any:
    def on_event(e: Any) -> None:
        a(e)
        b(e)

    return on_event
