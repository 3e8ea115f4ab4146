"""flownb — prototype, see and run AI-agent workflows from a notebook.

A workflow is a :class:`Blueprint` (data). Run it in this process with :func:`run` /
:func:`arun`, or on Redis with RQ workers through :mod:`flownb.distributed`. The core imported
here needs none of redis, rq, ipywidgets, graphviz or openai.
"""

from __future__ import annotations

from typing import Any

from .blueprint import Blueprint, Builder, Edge, NodeConfig, load
from .blueprint import Node as NodeSpec
from .context import NodeContext
from .errors import (
    BlueprintError,
    ConditionError,
    ExecutorError,
    FlownbError,
    LintError,
    MaxVisitsExceeded,
    NodeError,
    NodeTimeout,
    RegistryError,
    RunCancelled,
    RunFailed,
    RunTimeout,
)
from .events import Event, EventBus
from .history import Step, afork, fork
from .registry import Node, Registry, Result, default_registry, node
from .result import RunResult
from .runtime import CancelToken, arun, run
from .stream import Chunk, astream, stream
from .waiting import ResumeError, WaitRequest, wait_for

__version__ = "0.1.0"

__all__ = [
    "Blueprint",
    "BlueprintError",
    "Builder",
    "CancelToken",
    "Chunk",
    "ConditionError",
    "Edge",
    "Event",
    "EventBus",
    "ExecutorError",
    "FlownbError",
    "LintError",
    "MaxVisitsExceeded",
    "Node",
    "NodeConfig",
    "NodeContext",
    "NodeError",
    "NodeSpec",
    "NodeTimeout",
    "Registry",
    "RegistryError",
    "Result",
    "ResumeError",
    "RunCancelled",
    "RunFailed",
    "RunResult",
    "RunTimeout",
    "Step",
    "WaitRequest",
    "__version__",
    "afork",
    "aresume",
    "arun",
    "astream",
    "attach",
    "default_registry",
    "fork",
    "load",
    "node",
    "run",
    "stream",
    "wait_for",
]


async def aresume(result_or_handle: Any, node_id: str, value: Any, *,
                  visit: int | None = None) -> Any:
    """``await flownb.aresume(result, node, value)``: answer a waiting node from async code
    (a RunResult in process, or a distributed RunHandle / RunResult)."""
    return await result_or_handle.aresume(node_id, value, visit=visit)


def attach(run_id: str, **kwargs: Any) -> Any:
    """Re-attach to a distributed run by id (see :func:`flownb.distributed.attach`)."""
    from .distributed.client import attach as _attach

    return _attach(run_id, **kwargs)
