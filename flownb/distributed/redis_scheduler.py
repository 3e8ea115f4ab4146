"""The contract twin of :class:`flownb.engine.scheduler.Scheduler` over Redis: the same interface
driven through the real Lua scripts, so the shared scenario suite (tests/test_scheduler_contract.py)
proves the two schedulers make the same decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.blueprint import Blueprint
from ..core.errors import FlownbError
from ..core.graph import analyse
from ..engine.scheduler import Item, Outcome
from .codec import loads

if TYPE_CHECKING:
    from .store import RedisStore


class RedisScheduler:
    """:class:`flownb.engine.scheduler.Scheduler`'s interface over Redis (for the contract suite)."""

    def __init__(self, store: RedisStore, bp: Blueprint, run_id: str) -> None:
        self.store = store
        self.bp = bp
        self.run_id = run_id
        self.g, _ = analyse(bp)
        self.digest = store.upload_blueprint(bp)

    def start(self) -> list[Item]:
        ready = self.store.start_run(self.run_id, self.bp, self.g, {})
        return [self._item(n, v) for n, v in ready]

    def _item(self, node: str, visit: int) -> Item:
        it = self.store.pending_item(self.run_id, node, visit) or {}
        src = it.get("s") or []
        return Item(node, visit, tuple(src) if isinstance(src, list) else ())

    def complete(self, node: str, visit: int, taken: set[int] | frozenset[int]) -> Outcome | None:
        res = self.store.commit(self.run_id, self.digest, node, visit, output_json="null",
                                taken=taken, stats={"status": "succeeded"}, event={})
        if res.get("r") == "dup":
            return None
        if res.get("r") != "ok":
            raise FlownbError(f"commit refused: {res}")
        ready = [self._item(n, int(v)) for n, v in res.get("ready") or []]
        skipped = [e.node_id for e in self.store.events(self.run_id)
                   if e.type == "node_skipped" and e.node_id]
        out = Outcome(ready, skipped[self._seen_skips:])
        self._seen_skips = len(skipped)
        meta = self.store.meta(self.run_id)
        if meta.get("status") == "failed":
            from ..core.errors import MaxVisitsExceeded

            err = loads(meta.get("error"))
            raise MaxVisitsExceeded(err.get("message", ""), node_id=err.get("node_id"))
        return out

    _seen_skips = 0

    @property
    def finished(self) -> bool:
        return self.store.status(self.run_id) != "running"


__all__ = ["RedisScheduler"]
