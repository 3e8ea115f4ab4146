"""flownb — prototype, see and run AI-agent workflows from a notebook.

A workflow is a :class:`Blueprint` (data). Run it in this process with :func:`run` /
:func:`arun`, or on Redis with RQ workers through :mod:`flownb.distributed`. The core imported
here needs none of redis, rq, ipywidgets, graphviz or openai.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch import Batch, BatchItem, arun_many, run_many
from .blueprint import Blueprint, Builder, Edge, Node as NodeSpec, NodeConfig, load
from .context import NodeContext
from .errors import (
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
from .events import Event, EventBus
from .library import Library, load_dir
from .registry import Node, Registry, Result, default_registry, node
from .result import RunResult
from .runtime import CancelToken, arun, run
from .history import Step, afork, fork
from .stream import Chunk, astream, stream
from .waiting import ResumeError, WaitRequest, wait_for

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
    "afork", "Step", "wait_for", "WaitRequest", "ResumeError", "aresume",
]


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
