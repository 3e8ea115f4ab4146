"""What ``Batch.retry_failed()`` says when there is nothing to retry.

A call that silently does nothing reads, in a notebook, like a retry that worked; so the batch
warns with what its rows are and how to retry the cancelled ones, and returns itself unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class NothingToRetryWarning(UserWarning):
    """``retry_failed()`` found no row to run again; the batch is returned unchanged."""


def nothing_to_retry(blueprint_id: str, statuses: Iterable[str], include_cancelled: bool) -> str:
    """The warning's text: the rows by status, and the way to retry cancelled ones."""
    counts = Counter(statuses)
    rows = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no rows"
    hint = ("; the cancelled ones run again with retry_failed(include_cancelled=True)"
            if counts.get("cancelled") and not include_cancelled else "")
    return (f"nothing to retry in the batch of {blueprint_id!r}: no row failed ({rows}){hint}; "
            "the batch is returned unchanged")


__all__ = ["NothingToRetryWarning", "nothing_to_retry"]
