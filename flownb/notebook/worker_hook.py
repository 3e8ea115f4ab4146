"""Stop-gap wiring of :func:`flownb.notebook.modules.before_job` into worker processes.

Importing this module (LocalCluster passes ``--import flownb.notebook.worker_hook`` to
``flownb worker``) wraps ``WorkerRuntime.process`` so every job first refreshes the session's
node modules. It exists only until ``flownb.distributed.worker`` calls ``before_job`` itself;
it is idempotent and harmless if both are in place (the second check finds nothing changed).
"""

from __future__ import annotations

import functools
from typing import Any

from ..distributed.worker import WorkerRuntime
from .modules import before_job

__all__ = ["install"]


def install() -> None:
    """Wrap ``WorkerRuntime.process`` once per process."""
    if getattr(WorkerRuntime.process, "__flownb_hooked__", False):
        return
    original = WorkerRuntime.process

    @functools.wraps(original)
    def process(self: WorkerRuntime, run_id: str, items: list[list[Any]]) -> None:
        before_job(self)
        original(self, run_id, items)

    process.__flownb_hooked__ = True  # type: ignore[attr-defined]
    WorkerRuntime.process = process  # type: ignore[method-assign]


install()
