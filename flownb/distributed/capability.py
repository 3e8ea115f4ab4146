"""How long an item waits for a worker that has its node type before its run fails.

Why wait at all: a worker that lacks a node's module hands the item back to a live worker that
has it, and fails the run when none has. But a capable worker that is still starting (importing
its modules) is not in the worker list yet: failing at once failed 13 of 20 runs during such a
start-up window. So the item is handed back for this long first (``FLOWNB_CAPABILITY_GRACE_S``).
"""

from __future__ import annotations

import os

ENV = "FLOWNB_CAPABILITY_GRACE_S"
DEFAULT_CAPABILITY_GRACE_S = 15.0


def capability_grace_s() -> float:
    """The grace in seconds (the default when the variable is unset or not in 0..3600)."""
    try:
        value = float(os.environ.get(ENV, DEFAULT_CAPABILITY_GRACE_S))
    except ValueError:
        return DEFAULT_CAPABILITY_GRACE_S
    return value if 0 <= value <= 3600 else DEFAULT_CAPABILITY_GRACE_S


__all__ = ["DEFAULT_CAPABILITY_GRACE_S", "ENV", "capability_grace_s"]
