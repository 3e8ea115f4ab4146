"""The inputs of a run, checked once for every entry point.

``flownb.run(bp, ["a", "b"])`` or ``cluster.run(bp, "hello")`` is a slip anyone makes while
prototyping; without a check it surfaces as ``dict()``'s "dictionary update sequence element
#0 has length 1; 2 is required" from deep inside the engine, or as a run whose nodes see
nothing. :func:`as_inputs` turns it into one line saying what was passed and what to pass, the
same for ``run``/``arun``, ``submit``, ``LocalCluster.run`` and each row of
``run_many``/``map``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import FlownbError

__all__ = ["as_inputs"]

#: what to add when a whole run's inputs are not a mapping (rows of a batch say their own fix)
RUN_HINT = ("for one run per item use flownb.run_many(bp, items, key='text') "
            "(or .map(bp, items, key='text') on workers)")


def _show(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a user __repr__ that raises
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_inputs(value: Any, *, what: str = "inputs", hint: str = RUN_HINT) -> dict[str, Any]:
    """``value`` as a run's inputs (a new dict; ``None`` is no inputs), or a
    :class:`~flownb.core.errors.FlownbError` naming what was passed and what to pass instead."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        example = f"{{'text': {_show(value, 30)}}}" if isinstance(value, (str, int, float)) \
            else "{'text': ...}"
        raise FlownbError(f"{what} is a {type(value).__name__} ({_show(value)}), not a mapping "
                          f"of input names to values; pass a dict such as {example}"
                          + (f"; {hint}" if hint else ""))
    for k in value:
        if not isinstance(k, str):
            raise FlownbError(f"{what}: input names must be strings, got {k!r}")
    return dict(value)
