"""What an executor and its runs offer, so that no module has to import every executor.

Why: ``flownb.fork(source, ...)`` must start the fork where ``source`` ran — in this process or
on Redis — and ``result.history()`` / ``handle.stream()`` must read the steps from wherever they
were recorded. A module that imported each executor to pick one would sit below none of them
(the engine importing the distributed layer). Instead each executor implements these protocols
and :func:`flownb.fork` calls the one it finds on the run (``source.executor``) or is given. The
in-process engine is the ``"local"`` executor; the distributed one is
``flownb.distributed.DistributedExecutor``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ForkingExecutor(Protocol):
    """An executor that can start a fork (a ``flownb.engine.history.ForkPlan``) as a new run."""

    def fork(self, plan: Any, *, run_id: str | None = None) -> Any:
        """Start the run ``plan`` describes; returns what the executor's runs return (a
        handle for the distributed executor)."""
        ...


@runtime_checkable
class RunSource(Protocol):
    """A finished or running run that can be read back: its steps (for a fork) and a stream."""

    def fork_source(self) -> tuple[Any, dict[str, Any], list[Any]]:
        """``(blueprint, inputs, steps)`` — everything a fork replays."""
        ...

    def history(self) -> list[Any]:
        """Every committed step, in commit order."""
        ...

    def stream(self, mode: str | list[str] = "updates", *, timeout: float | None = None) -> Iterator[Any]:
        """Chunks from the run's first event on."""
        ...


__all__ = ["ForkingExecutor", "RunSource"]
