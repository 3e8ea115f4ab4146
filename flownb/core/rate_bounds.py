"""The sane range of an LLM rate limit, checked when a blueprint is linted and again when an
LLM node's settings resolve (so ``configure``, the environment and node params agree).

Why a range and not just "> 0": the limiter spaces calls ``60 / rpm`` seconds apart and keeps one
shared bucket per model, so ``rpm: 0.001`` (a typo) pushes that bucket 16.7 hours ahead for
every worker, and ``"nan"`` compares false with everything and silently disables the limit.
Below one request (or token) a minute is never what anyone meant.
"""

from __future__ import annotations

import math
from typing import Any

#: the smallest limit accepted, per minute (requests for ``rpm``, tokens for ``tpm``)
MIN_PER_MINUTE = 1.0
#: the largest (a larger value is a typo too; leave the limit unset for "none")
MAX_PER_MINUTE = 1e9
#: the largest ``rate_burst``
MAX_BURST = 1000  # with rpm 1, a bucket may run 1000 min ahead: under a day
RATE_PARAMS = ("rpm", "tpm", "rate_burst")


def rate_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for rate parameter ``name`` (``None``: fine or unset)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return f"{name} must be a number, got {value!r}"
    if name == "rate_burst":
        try:
            n = int(value)
        except (TypeError, ValueError, OverflowError):
            return f"rate_burst must be an integer, got {value!r}"
        if not 1 <= n <= MAX_BURST:
            return f"rate_burst must be between 1 and {MAX_BURST}, got {value!r}"
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return f"{name} must be a number (per minute), got {value!r}"
    if not math.isfinite(f) or not MIN_PER_MINUTE <= f <= MAX_PER_MINUTE:
        what = "requests" if name == "rpm" else "tokens"
        return (f"{name} must be between {MIN_PER_MINUTE:g} and {MAX_PER_MINUTE:g} {what} per "
                f"minute, got {value!r} (leave it unset for no limit)")
    return None


__all__ = ["MAX_BURST", "MAX_PER_MINUTE", "MIN_PER_MINUTE", "RATE_PARAMS", "rate_problem"]
