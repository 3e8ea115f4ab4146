"""How values cross Redis: strict JSON both ways (never pickle), with a clear error naming what was
corrupt, and what a run whose keys are gone is told (``GONE``).
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import FlownbError
from ..core.jsondata import dumps as _strict_dumps


#: what happened to a run whose keys are not in Redis
GONE = "the run's data is gone from Redis (restarted without persistence, or expired)"


def dumps(value: Any, *, what: str = "value") -> str:
    """Strict JSON (no NaN/inf, no keys that collide as strings, no lone surrogates):
    :func:`flownb.core.jsondata.dumps`; ``what`` names the value in the error."""
    return _strict_dumps(value, what=what)


def loads(raw: bytes | str | None, *, what: str = "value") -> Any:
    if raw is None:
        return None
    try:  # bytes decoded here: json.loads would guess their encoding first (a worker's hot path)
        return json.loads(raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else raw)
    except ValueError:
        text = raw[:80] if isinstance(raw, str) else raw[:80].decode(errors="replace")
        raise FlownbError(f"corrupt {what} in Redis (not JSON): {text!r}") from None


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


__all__ = ["GONE", "dumps", "loads"]
