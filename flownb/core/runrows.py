"""One line per run for a runs browser, and a page of them — the same shape for both executors.

Why a shared type: the notebook's runs browser (:mod:`flownb.notebook.runs_browser`) lists the
runs this kernel made (:mod:`flownb.engine.runlog`) and the runs stored in Redis
(:mod:`flownb.distributed.runlist`) with one table; each executor fills these rows its own way
(a bounded in-memory registry, one pass over Redis's run index) and filters and pages with
:func:`page_of`, so "newest first, filter by status and blueprint, N per page" means one thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import FlownbError


@dataclass
class RunRow:
    """A run's line in a runs browser. ``nodes`` counts the nodes that ran; ``tokens`` and
    ``cost_usd`` add up its ``llm_usage`` events (``None`` when they were not read)."""

    run_id: str
    blueprint_id: str
    status: str
    started_at: float
    finished_at: float | None = None
    nodes: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; ``None`` while the run has not ended."""
        if self.finished_at is None or not self.started_at:
            return None
        return max(0.0, self.finished_at - self.started_at)


@dataclass
class RunPage:
    """One page of a filtered, newest-first listing, with what the filters can offer."""

    rows: list[RunRow]
    #: runs that pass the filters (all pages)
    total: int
    offset: int
    limit: int
    #: every blueprint id and status among all listed runs (before filtering): the filter choices
    blueprints: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit)) if self.limit else 1

    @property
    def page(self) -> int:
        """This page's number, from 1."""
        return self.offset // self.limit + 1 if self.limit else 1


def check_paging(offset: int, limit: int) -> None:
    """A negative offset or a limit below 1 is a caller's mistake, said clearly."""
    if not isinstance(limit, int) or limit < 1:
        raise FlownbError(f"runs: limit must be an int >= 1, got {limit!r}")
    if not isinstance(offset, int) or offset < 0:
        raise FlownbError(f"runs: offset must be an int >= 0, got {offset!r}")


def page_of(rows: Iterable[RunRow], *, status: str | None = None, blueprint: str | None = None,
            offset: int = 0, limit: int = 20) -> RunPage:
    """Filter ``rows`` (already newest first) by ``status`` / ``blueprint`` and cut one page."""
    check_paging(offset, limit)
    every = list(rows)
    kept = [r for r in every if (status is None or r.status == status)
            and (blueprint is None or r.blueprint_id == blueprint)]
    return RunPage(rows=kept[offset:offset + limit], total=len(kept), offset=offset, limit=limit,
                   blueprints=sorted({r.blueprint_id for r in every}),
                   statuses=sorted({r.status for r in every}))


__all__ = ["RunPage", "RunRow", "check_paging", "page_of"]
