"""The runs stored in Redis as pages of :class:`~flownb.core.runrows.RunRow` (``flownb.runs``).

Why this shape: with 10,000 runs a browser must stay fast, and filtering by status or blueprint
needs each run's status and blueprint id. So one listing reads the run index (``{p}:runs``,
newest first) and five small meta fields per run inside Redis, one read-only script call
(:data:`~flownb.distributed.scripts.listing.LIST_RUNS`) per :data:`CHUNK` runs (a pipeline of
10,000 ``HMGET`` spent most of its time packing commands in the client); then only the rows of
the page shown get their details — nodes that ran (``HLEN`` of ``nodes``) and tokens / cost (the ``llm_usage`` events of
the run's event stream) — in one more pipeline. Nothing here writes: a run whose keys expired
is left out (``DistributedExecutor.runs`` prunes the index).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.events import CUSTOM, Event
from ..core.runrows import RunPage, RunRow, check_paging
from .codec import _s
from .keys import STATS_PREFIX
from .scripts.listing import LIST_RUNS
from .store_args import shown_status

if TYPE_CHECKING:
    from .store import RedisStore

#: runs read per script call (a bounded reply, and Redis is never blocked for long)
CHUNK = 2000
_USAGE = "llm_usage"  # flownb.llm.runner.USAGE_EVENT
#: events read per run for its token count (a run's stream is capped by ``events_maxlen``)
EVENTS_READ = 10_000


def _float(v: Any) -> float | None:
    try:
        return float(_s(v)) if v not in (None, b"", "") else None
    except ValueError:
        return None


def all_rows(store: RedisStore) -> list[RunRow]:
    """Every listed top-level run, newest first, without the per-page details."""
    script = store.r.register_script(LIST_RUNS)
    n = int(store.r.zcard(store.keys.runs))
    rows: list[RunRow] = []
    seen: set[bytes | str] = set()  # a run started between two chunks shifts the ranks by one
    for start in range(0, n, CHUNK):
        flat = script(keys=[store.keys.runs], args=[store.keys.prefix, start, start + CHUNK - 1])
        for i in range(0, len(flat), 6):
            rid, status, bp_id, created, finished, paused = flat[i:i + 6]
            if rid in seen:
                continue
            seen.add(rid)
            rows.append(RunRow(_s(rid), _s(bp_id), shown_status(_s(status), paused) or "",
                               _float(created) or 0.0,
                               _float(finished)))
    return rows


def add_details(store: RedisStore, rows: list[RunRow]) -> None:
    """Fill ``nodes``, ``tokens`` and ``cost_usd`` of ``rows`` (one pipelined round trip)."""
    if not rows:
        return
    pipe = store.r.pipeline(transaction=False)
    for row in rows:
        pipe.hkeys(store.keys.state(row.run_id))  # the nodes with stats (keys.STATS_PREFIX)
        pipe.hlen(store.keys.nodes(row.run_id))  # (a run started before the stats moved)
        pipe.xrange(store.keys.events(row.run_id), count=EVENTS_READ)
    replies = pipe.execute()
    for i, row in enumerate(rows):
        row.nodes = (sum(1 for k in replies[3 * i] if _s(k).startswith(STATS_PREFIX))
                     or int(replies[3 * i + 1]))
        tokens, cost = 0, 0.0
        for entry_id, fields in replies[3 * i + 2]:
            if _s(fields.get(b"t", fields.get("t", b""))) != CUSTOM:
                continue
            e = Event.from_fields(row.run_id, fields, _s(entry_id))
            if e.data.get("name") == _USAGE:
                tokens += int(e.data.get("total_tokens") or 0)
                cost += float(e.data.get("cost_usd") or 0.0)
        row.tokens, row.cost_usd = tokens, cost


def list_page(store: RedisStore, *, status: str | None = None, blueprint: str | None = None,
              offset: int = 0, limit: int = 20) -> RunPage:
    """One page of the stored runs, newest first, filtered by status and blueprint id."""
    check_paging(offset, limit)
    every = all_rows(store)
    kept = [r for r in every if (status is None or r.status == status)
            and (blueprint is None or r.blueprint_id == blueprint)]
    rows = kept[offset:offset + limit]
    add_details(store, rows)
    return RunPage(rows=rows, total=len(kept), offset=offset, limit=limit,
                   blueprints=sorted({r.blueprint_id for r in every}),
                   statuses=sorted({r.status for r in every}))


__all__ = ["CHUNK", "add_details", "all_rows", "list_page"]
