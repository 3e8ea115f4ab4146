"""flownb — prototype, see and run AI-agent workflows from a notebook.

A workflow is a :class:`Blueprint` (data). Run it in this process with :func:`run` /
:func:`arun`, or on Redis with RQ workers through :mod:`flownb.distributed`. The core imported
here needs none of redis, rq, ipywidgets, graphviz or openai.

This module is the facade, part of no layer (docs/architecture.md): it may import every layer,
and it wires them — it imports :mod:`flownb.render`, whose import registers a blueprint's
drawings, and registers stand-ins for the notebook layer's views and worker hook that import
:mod:`flownb.notebook` on first use (so ``import flownb`` imports no notebook module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engine.batch import Batch, BatchItem, arun_many, run_many
from .core.blueprint import Blueprint, Edge, Node as NodeSpec, NodeConfig, load
from .core.builder import Builder
from .core.context import NodeContext
from .core.errors import (
    BlueprintError,
    ConditionError,
    ExecutorError,
    FlownbError,
    FlownbWarning,
    LimitExceeded,
    LintError,
    LintWarning,
    MaxVisitsExceeded,
    MissingDependency,
    NodeError,
    NodeTimeout,
    RegistryError,
    RunCancelled,
    RunFailed,
    RunTimeout,
)
from .core.events import Event, EventBus
from .core.library import Library, load_dir
from .core.registry import Node, Registry, Result, default_registry, node
from .core.result import RunResult
from .engine.runtime import CancelToken, arun, run
from .engine.history import Step, afork, fork
from .engine.stream import Chunk, astream, stream
from .engine.waiting import ResumeError, WaitRequest, wait_for
from .engine.controls import RunControl, RunControlError
from .engine.local_controls import LocalHandle, start

if TYPE_CHECKING:
    from .distributed.client import RunHandle
    from .distributed.settings import RedisSettings

__version__ = "0.1.0"

__all__ = [
    "Blueprint", "Builder", "Edge", "NodeSpec", "NodeConfig", "load", "NodeContext",
    "FlownbError", "BlueprintError", "ConditionError", "ExecutorError", "LimitExceeded", "LintError",
    "MaxVisitsExceeded", "MissingDependency", "NodeError", "NodeTimeout", "RegistryError",
    "RunCancelled", "RunFailed", "FlownbWarning", "LintWarning",
    "RunTimeout", "Event", "EventBus", "Node", "Registry", "Result", "default_registry", "node",
    "RunResult", "CancelToken", "arun", "run", "attach", "__version__", "Batch", "BatchItem",
    "run_many", "arun_many", "Library", "load_dir", "stream", "astream", "Chunk", "fork",
    "afork", "Step", "wait_for", "WaitRequest", "ResumeError", "aresume", "runs", "diff_runs",
    "RunControl", "RunControlError", "LocalHandle", "start",
]


#: sub-packages that ``flownb.<name>`` reaches after a plain ``import flownb``, imported on first
#: use: they pull optional dependencies (redis, rq, ipywidgets, graphviz, openai) that the core
#: must not need, yet ``import flownb; flownb.llm.configure(...)`` is what a reader writes
#: (``render`` and ``distributed`` are imported by :func:`_wire_layers` already, without those)
_LAZY_SUBMODULES = frozenset({"render", "llm", "notebook", "distributed", "examples"})


def __getattr__(name: str) -> Any:
    """``flownb.render``, ``flownb.llm``, ``flownb.notebook``, ``flownb.distributed``: imported
    the first time they are used (a missing extra raises :class:`MissingDependency`)."""
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES)


def attach(run_id: str, *, redis: str | RedisSettings | Any | None = None,
           prefix: str = "flownb", queue_name: str = "flownb") -> RunHandle:
    """Re-attach to a distributed run by id from any process or kernel that reaches the same
    Redis (``redis`` defaults to ``FLOWNB_REDIS_URL``); see :func:`flownb.distributed.attach`."""
    from .distributed.client import attach as _attach

    return _attach(run_id, redis=redis, prefix=prefix, queue_name=queue_name)


async def aresume(result_or_handle: Any, node_id: str, value: Any, *,
                  visit: int | None = None) -> Any:
    """``await flownb.aresume(result, node, value)``: answer a waiting node from async code
    (a RunResult in process, or a distributed RunHandle / RunResult)."""
    return await result_or_handle.aresume(node_id, value, visit=visit)


def runs(redis: str | RedisSettings | Any | None = None, *, prefix: str = "flownb",
         queue_name: str = "flownb", page_size: int = 20) -> Any:
    """A runs browser widget: the runs stored in ``redis`` (newest first, filter by status and
    blueprint, click to open, tick two to compare), or with no ``redis`` the in-process runs
    this kernel made; see :mod:`flownb.notebook.runs_browser`."""
    from .notebook.runs_browser import runs as _runs

    return _runs(redis, prefix=prefix, queue_name=queue_name, page_size=page_size)


def diff_runs(a: Any, b: Any, *, redis: str | RedisSettings | Any | None = None,
              prefix: str = "flownb", queue_name: str = "flownb") -> Any:
    """Compare two runs of one blueprint: a :class:`~flownb.core.rundiff.RunDiff` (which nodes'
    outputs and which state keys differ, both sides' values; an HTML repr with the differing
    nodes orange on the graph). ``a`` / ``b``: RunResults, RunHandles, or run ids (in-process
    runs of this kernel, or with ``redis`` stored runs). Runs of different blueprints raise
    :class:`FlownbError`."""
    from .core.rundiff import diff_results

    ra, bpa = _run_for_diff(a, redis, prefix, queue_name)
    rb, bpb = _run_for_diff(b, redis, prefix, queue_name)
    return diff_results(ra, rb, blueprint=bpb or bpa)


def _run_for_diff(x: Any, redis: Any, prefix: str, queue_name: str) -> tuple[RunResult, Any]:
    """A result and (when known) its blueprint for a result, a handle or a run id."""
    from .engine import runlog

    if isinstance(x, RunResult):
        if hasattr(x._run, "store"):  # a distributed result: its handle has the blueprint
            return x, _blueprint_of(x._run)
        try:
            return x, runlog.get(x.run_id).blueprint
        except FlownbError:
            return x, None
    if isinstance(x, str):
        if redis is None:
            rec = runlog.get(x)
            if rec.result is None:
                raise FlownbError("the run is still running; diff it once it returned", run_id=x)
            return rec.result, rec.blueprint
        x = attach(x, redis=redis, prefix=prefix, queue_name=queue_name)
    if hasattr(x, "store") and hasattr(x, "run_id"):  # a RunHandle: its state as of now
        return x.store.load_result(x.run_id), _blueprint_of(x)
    raise FlownbError(f"diff_runs takes RunResults, RunHandles or run ids, got {type(x).__name__}")


def _blueprint_of(handle: Any) -> Any:
    try:
        return handle.blueprint
    except FlownbError:
        return None  # the blueprint expired: the diff is complete, only undrawn


def _wire_layers() -> None:
    """Fill the lower layers' registries with the upper layers' code (see the module docstring)."""
    from . import render  # noqa: F401 - registers Blueprint.to_dot / to_mermaid / notebook repr
    from .core import display
    from .core.registry import add_lazy_builtin
    from .distributed import job_hooks

    def notebook_view(name: str) -> Any:
        def stand_in(*args: Any, **kwargs: Any) -> Any:
            from .notebook import views  # noqa: F401 - registers the real view, replacing this one

            fn = display.view(name)
            if fn is stand_in:
                raise FlownbError(f"flownb.notebook registered no view {name!r}")
            return fn(*args, **kwargs)
        return stand_in

    for name in ("result.html", "batch.widget", "batch.show", "batch.display", "run.widget"):
        display.register(name, notebook_view(name), replace=False)

    def before_job(runtime: Any) -> None:
        # a worker for notebook-defined modules (FLOWNB_MODULE_PATH), on its first job
        from .notebook.modules import before_job as hook  # installs itself, replacing this one

        hook(runtime)

    job_hooks.install("notebook.modules", before_job, replace=False)

    # the llm layer's node types: known to every registry, imported when a blueprint uses one
    for name in ("llm-process", "llm-condition", "llm-router"):
        add_lazy_builtin(name, "flownb.llm.nodes:" + name.replace("-", "_"))

    # OpenTelemetry traces (flownb.otel): on when FLOWNB_OTEL=1, e.g. in a worker's environment;
    # otherwise opentelemetry is not even imported
    import os

    if os.environ.get("FLOWNB_OTEL"):
        from . import otel

        otel.enable_from_env()


_wire_layers()
