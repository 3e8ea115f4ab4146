"""The in-process executor: run a blueprint inside this Python process (:func:`arun`, :func:`run`).

The run itself is :class:`~flownb.engine.driver.Engine` (why it is fast: see that module); its
small parts are in :mod:`flownb.engine.support` and child runs in :mod:`flownb.engine.children`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..core.blueprint import Blueprint, load
from ..core.errors import RegistryError, RunCancelled, RunFailed
from ..core.events import Event, EventBus
from ..core.graph import Graph, compile_graph
from ..core.inputs import as_inputs
from ..core.lint_gate import check as check_lint
from ..core.registry import Registry, default_registry
from ..core.result import RunResult
from ..core.tracebacks import hide_internals
from . import runlog
from .waiting import drive_local
from .driver import Engine
from .support import SYNC_THREADS, CancelToken, _no_resolve, _preview, new_run_id, sync_pool  # noqa: F401 - re-exported


def _prepare(blueprint: Blueprint | Mapping[str, Any] | str, registry: Registry | None) -> tuple[Graph, Registry]:
    bp = load(blueprint)  # type: ignore[arg-type]
    reg = registry or default_registry
    return compile_graph(bp, reg), reg


async def arun(blueprint: Blueprint | Mapping[str, Any] | str, inputs: Mapping[str, Any] | None = None,
               *, registry: Registry | None = None, run_id: str | None = None,
               on_event: Callable[[Event], None] | None = None, bus: EventBus | None = None,
               cancel: CancelToken | None = None, max_concurrency: int | None = None,
               raise_on_error: bool = True, history: Any = False,
               on_wait: Callable[[Any], Any] | None = None,
               check_json: str | None = None, strict: bool | None = True) -> RunResult:
    """Run a blueprint in this process and return its :class:`RunResult`.

    ``on_event`` receives every :class:`~flownb.core.events.Event`; ``cancel`` lets another thread or
    task stop the run. A failed run raises :class:`~flownb.core.errors.RunFailed` (node id, error,
    original traceback; ``.result`` holds the :class:`RunResult`) and a cancelled one
    :class:`~flownb.core.errors.RunCancelled`, so failure is never silent; pass
    ``raise_on_error=False`` to get the result back whatever its status.
    ``history=True`` records every committed step (``result.history()``, ``flownb.fork``).
    A run that reaches a ``wait``/``approval`` node returns with status ``waiting`` (resume it
    with ``result.resume(node, value)``), or, with ``on_wait``, awaits ``on_wait(request)``
    for each answer (see :mod:`flownb.engine.waiting`).
    ``check_json``: a node output or state write that is not JSON data fails its node, as on
    workers (``"raise"``, the default, or ``FLOWNB_CHECK_JSON``), or only warns (``"warn"``).
    Lint runs first (:mod:`flownb.core.lint_gate`): errors refuse the run, warnings are
    :class:`~flownb.core.errors.LintWarning`; ``strict=False`` runs the silently-wrong kinds with a
    warning instead of refusing them (``None``: skip lint, for a caller that already ran it).
    """
    inputs = as_inputs(inputs)
    blueprint = check_lint(blueprint, registry, inputs, strict=strict)
    graph, reg = _prepare(blueprint, registry)
    bus = bus or EventBus()
    unsub = bus.subscribe(on_event) if on_event is not None else None
    run_id = run_id or new_run_id()
    rec = runlog.record_start(run_id, graph.blueprint, bus)  # what flownb.runs() lists
    result = None
    try:
        engine = Engine(graph, inputs, run_id=run_id, registry=reg, bus=bus,
                        cancel=cancel or CancelToken(), max_concurrency=max_concurrency,
                        check_json=check_json)
        result = await drive_local(engine, history=history, on_wait=on_wait)
    finally:
        runlog.record_end(rec, result)
        if unsub is not None:
            unsub()
    if raise_on_error:
        __tracebackhide__ = True  # noqa: F841 - read by IPython and pytest
        try:
            result.raise_for_status()
        except (RunFailed, RunCancelled) as exc:
            raise hide_internals(exc) from None  # the traceback starts at the caller's frame
    return result


def run(blueprint: Blueprint | Mapping[str, Any] | str, inputs: Mapping[str, Any] | None = None,
        *, registry: Registry | None = None, run_id: str | None = None,
        on_event: Callable[[Event], None] | None = None, bus: EventBus | None = None,
        cancel: CancelToken | None = None, max_concurrency: int | None = None,
        raise_on_error: bool = True, history: Any = False,
        on_wait: Callable[[Any], Any] | None = None, check_json: str | None = None,
        strict: bool | None = True) -> RunResult:
    """Synchronous :func:`arun`, same arguments (spelled out so a typo is a type error);
    works inside Jupyter's running event loop too."""
    from ..core.aio import run_sync

    cancel = cancel or CancelToken()  # Ctrl-C / Jupyter's interrupt cancels the run
    __tracebackhide__ = True  # noqa: F841 - read by IPython and pytest
    # lint here, in the caller's thread: a warning then points at the caller's line even in
    # Jupyter, where the run itself goes to a helper thread
    blueprint = check_lint(blueprint, registry, inputs, strict=strict)
    try:
        return run_sync(arun(blueprint, inputs, registry=registry, run_id=run_id,
                             on_event=on_event, bus=bus, cancel=cancel,
                             max_concurrency=max_concurrency, raise_on_error=raise_on_error,
                             history=history, on_wait=on_wait, check_json=check_json,
                             strict=None),
                        on_interrupt=cancel.cancel)
    except (RunFailed, RunCancelled) as exc:  # not flownb's and asyncio's frames: the caller's
        raise hide_internals(exc) from None


__all__ = ["CancelToken", "Engine", "RegistryError", "arun", "new_run_id", "run"]
