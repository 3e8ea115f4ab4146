"""A batch's rows: the inputs of each run (:func:`normalise_rows`: mappings, records, a DataFrame)
and one :class:`BatchItem` per row — its input, where it is, and how it ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import FlownbError
from ..core.inputs import as_inputs
from ..core.result import PENDING, RunResult


@dataclass
class BatchItem:
    """One row of a batch: its input, where it is, and how it ended."""

    index: int
    input: dict[str, Any]
    status: str = PENDING  # pending | running | succeeded | failed | cancelled
    run_id: str | None = None
    result: RunResult | None = None
    #: the run's error, or why it could not be started (then there is no run)
    error: dict[str, Any] | None = None
    #: how many times this row was started (``retry_failed`` adds one)
    tries: int = 0

    @property
    def output(self) -> Any:
        return self.result.output if self.result is not None else None

    @property
    def error_text(self) -> str:
        """``node: Type: message`` — what the views and the DataFrame show."""
        err = self.error or {}
        if not err:
            return ""
        where = f"{err['node_id']}: " if err.get("node_id") else ""
        return f"{where}{err.get('type', 'Error')}: {err.get('message', '')}"


def normalise_rows(rows: Iterable[Any], *, key: str | None = None) -> list[dict[str, Any]]:
    """The inputs of each run: mappings of input names to values (a DataFrame gives its records).

    With ``key``, every row is one value put under that input name (``key="text"`` turns a list
    of strings into ``[{"text": ...}, ...]``).
    """
    to_dict = getattr(rows, "to_dict", None)
    if callable(to_dict) and type(rows).__name__ == "DataFrame":
        rows = to_dict("records")
    if isinstance(rows, (str, bytes, Mapping)):
        raise FlownbError(f"rows must be a list (or other iterable) of rows, got a "
                          f"{type(rows).__name__}; wrap a single input in a list")
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if key is not None:
            out.append({key: row})
            continue
        out.append(as_inputs(row, what=f"row {i}",
                             hint="or pass key='text' to use each row as inputs['text']"))
    return out


__all__ = ["BatchItem", "normalise_rows"]
