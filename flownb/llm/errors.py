"""Errors of the LLM layer, both :class:`~flownb.core.errors.FlownbError` subclasses so callers that
catch flownb's root error catch these too."""

from __future__ import annotations

from ..core.errors import FlownbError


class LLMConfigError(FlownbError):
    """The LLM settings are contradictory or incomplete (e.g. ``FLOWNB_LLM=openai`` and no key)."""


class LLMError(FlownbError):
    """A model call failed for good, after the SDK's own retries.

    ``status_code`` is the HTTP status when the server answered (``None`` for timeouts and
    connection errors); ``attempts`` is how many requests were made.
    """

    def __init__(self, message: str, *, status_code: int | None = None, attempts: int = 1,
                 node_id: str | None = None, run_id: str | None = None) -> None:
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(message, node_id=node_id, run_id=run_id)
