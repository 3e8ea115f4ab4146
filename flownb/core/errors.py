"""The one exception tree of flownb.

Every error flownb raises derives from :class:`FlownbError` and carries *where* it happened
(blueprint path, node id, run id) so a user can act on the message without reading a traceback::

    FlownbError
    ├── BlueprintError          a document cannot be loaded (file, path in the document, expectation)
    │   └── LintError           a loaded blueprint has problems (carries every Problem at once)
    ├── ConditionError          an edge condition does not parse or cannot be evaluated
    ├── RegistryError           an unknown or badly registered node implementation
    ├── NodeError               a node failed after its retries (node id, attempt, original traceback)
    │   └── NodeTimeout         a node exceeded its ``timeout_s``
    ├── MaxVisitsExceeded       a loop went round more often than its guard allows
    ├── LimitExceeded           child runs nested too deep / too many under one root run
    ├── StateConflict           two visits running at once wrote the same state key (no reducer)
    ├── StateReducerError       a write does not fit its key's reducer (append/merge/sum)
    ├── RunFailed               waiting on a run that failed (wraps the NodeError's text)
    ├── RunCancelled            waiting on a run that was cancelled
    ├── RunTimeout              waiting on a run took longer than the caller allowed
    ├── ExecutorError           the executor itself is misconfigured or unreachable (e.g. Redis)
    └── MissingDependency       an optional package is not installed (names the extra; also an
                                ImportError, so ``except ImportError`` fallbacks still work)

Warnings (a run goes on, but a person should hear about it) derive from :class:`FlownbWarning`,
so ``warnings.filterwarnings("ignore", category=flownb.LintWarning)`` silences one kind.
"""

from __future__ import annotations

from typing import Any


class FlownbError(Exception):
    """Root of every flownb error; the location fields are ``None`` when not applicable."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        node_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.node_id = node_id
        self.run_id = run_id
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.node_id:
            where.append(f"node {self.node_id!r}")
        if self.run_id:
            where.append(f"run {self.run_id}")
        return f"{': '.join(where)}: {self.message}" if where else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only fields survive copying between threads and processes
        return (_rebuild, (type(self), self.message, self.path, self.node_id, self.run_id, self.__dict__))


def _rebuild(cls: type[FlownbError], message: str, path: str | None, node_id: str | None,
             run_id: str | None, extra: dict[str, Any]) -> FlownbError:
    err = cls.__new__(cls)
    FlownbError.__init__(err, message, path=path, node_id=node_id, run_id=run_id)
    err.__dict__.update(extra)
    return err


class BlueprintError(FlownbError):
    """A blueprint document could not be read or does not match the schema."""


class LintError(BlueprintError):
    """A blueprint loaded but has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Any], *, path: str | None = None, note: str = "") -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s):\n{lines}{note}", path=path)


class ConditionError(FlownbError):
    """An edge condition is malformed or failed to evaluate."""


class RegistryError(FlownbError):
    """An unknown node implementation, or one registered in a way flownb cannot call."""


class NodeError(FlownbError):
    """A node failed for good: after its retries, with no fallback (or its fallback failed too)."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        run_id: str | None = None,
        attempt: int = 1,
        error_type: str = "",
        traceback: str = "",
        path: str | None = None,
    ) -> None:
        self.attempt = attempt
        self.error_type = error_type
        self.traceback = traceback
        super().__init__(message, path=path, node_id=node_id, run_id=run_id)

    def _format(self) -> str:
        base = super()._format()
        return f"{base} (attempt {self.attempt})"


class NodeTimeout(NodeError):
    """A node's attempt exceeded its ``timeout_s`` and was abandoned."""


class MaxVisitsExceeded(FlownbError):
    """A node was reached more often than its ``max_visits`` guard allows."""


class LimitExceeded(FlownbError):
    """A run would nest child runs deeper, or start more of them, than :mod:`flownb.core.limits` allows."""


class StateConflict(FlownbError):
    """Two node visits that ran at the same time wrote the same state key, which has no reducer:
    one write would be lost silently, so the run fails instead."""


class StateReducerError(FlownbError):
    """A state write does not fit its key's declared reducer (e.g. ``sum`` of a string)."""


class RunFailed(FlownbError):
    """Raised to a caller waiting on a run that failed (the default of ``run`` / ``arun`` /
    ``handle.result()``, as ``requests`` raises for a bad status: a failure is never silent).

    ``error`` holds the stored failure details, ``error_type`` and ``traceback`` the original
    exception's type name and traceback text, and ``result`` the whole
    :class:`~flownb.core.result.RunResult` (partial outputs, state, timings) for inspection.
    """

    def __init__(self, message: str, *, run_id: str | None = None, node_id: str | None = None,
                 error: dict[str, Any] | None = None, result: Any = None) -> None:
        self.error = error or {}
        self.error_type: str = str(self.error.get("type") or "")
        self.traceback: str = str(self.error.get("traceback") or "")
        self.result = result
        super().__init__(message, run_id=run_id, node_id=node_id)


class RunCancelled(FlownbError):
    """Raised to a caller waiting on a run that was cancelled; ``result`` holds the
    :class:`~flownb.core.result.RunResult` (what finished before the cancel)."""

    def __init__(self, message: str, *, run_id: str | None = None, result: Any = None) -> None:
        self.result = result
        super().__init__(message, run_id=run_id)


class RunTimeout(FlownbError):
    """The caller's wait for a run ran out; the run itself goes on."""


class ExecutorError(FlownbError):
    """The executor cannot do its job: Redis unreachable, a bad URL, a missing optional install."""


class MissingDependency(FlownbError, ImportError):
    """An optional package is missing; the message names the extra and the pip command.

    Raised by :func:`flownb.core.extras.require`. ``package`` is the missing import name.
    """

    def __init__(self, message: str, *, package: str = "") -> None:
        super().__init__(message)
        self.package = package


class FlownbWarning(UserWarning):
    """Root of flownb's warnings: filter this class to silence them all."""


class LintWarning(FlownbWarning):
    """Lint found a problem that does not stop the run (or one ``strict=False`` let through)."""
