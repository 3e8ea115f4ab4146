"""The lease protocol's timings and retention (:class:`StoreSettings`), checked when made so the
CLI, LocalCluster and the API refuse the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import ExecutorError


@dataclass(frozen=True)
class StoreSettings:
    """Timings of the lease protocol and retention; units in the names."""

    lease_ttl_s: float = 10.0          # a claimed item whose worker stops renewing is re-run after this
    queued_ttl_s: float = 20.0         # a queued item nobody claimed is re-enqueued after this
    result_ttl_s: int = 86400          # state + events of finished runs expire after this
    events_maxlen: int = 100_000       # per-run stream cap (approximate trimming)
    max_deliveries: int = 5            # a node whose worker died this often fails the run

    #: the shortest lease that outlives the gap between two heartbeats (every max(0.2 s, lease/4))
    MIN_LEASE_TTL_S = 0.5

    def __post_init__(self) -> None:
        """Checked here so the CLI (``--lease-ttl``), LocalCluster and the API all refuse the same
        values: a lease of 0 or less expires at once, so every node would run twice."""
        checks: list[tuple[str, float, float, str]] = [
            ("lease_ttl_s", self.lease_ttl_s, self.MIN_LEASE_TTL_S,
             ("a shorter lease expires between two heartbeats, so nodes would run twice "
             "(flownb worker --lease-ttl)")),
            ("queued_ttl_s", self.queued_ttl_s, self.MIN_LEASE_TTL_S,
             "queued work would be re-enqueued at once"),
            ("result_ttl_s", self.result_ttl_s, 1, ("finished runs would vanish at once "
             "(flownb worker --result-ttl)")),
            ("events_maxlen", self.events_maxlen, 1, "a run needs its events"),
            ("max_deliveries", self.max_deliveries, 1, "a node needs one delivery"),
        ]
        for name, value, low, why in checks:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) and value >= low
            if not ok:
                raise ExecutorError(f"StoreSettings.{name} must be a finite number >= {low:g}, got "
                                    f"{value!r}: {why}")


__all__ = ["StoreSettings"]
