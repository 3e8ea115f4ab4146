"""The child-run limits of :mod:`flownb.core.limits` on Redis: nesting depth and runs per root run.

Why here and not in the worker: the count must be atomic across every worker starting children
of the same root run at once, so it is one Lua call (``RESERVE_CHILDREN``) on a per-root counter
(``Keys.child_runs``). Depth is the length of the chain of ``parent`` links up to the root.

When a limit is hit, the *root* run is failed at once with the :class:`LimitExceeded` message and
every run under it is cancelled. Without that, the failure would climb one level per job through
a queue full of the sibling runs' work (a map over its own blueprint queues thousands), so the
caller would wait for all of it to drain — and those runs would keep working meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.errors import ExecutorError, FlownbError, LimitExceeded
from ..core.limits import Limits, counted, current_limits
from .keys import lease_member

if TYPE_CHECKING:
    from .store import RedisStore


def lineage(store: RedisStore, run_id: str, max_hops: int = 64) -> tuple[str, str, int]:
    """``(root run id, the root's node that leads here, depth)``; a root is depth 0 (node '')."""
    rid, node, depth = run_id, "", 0
    while depth <= max_hops:
        parent = store.r.hget(store.keys.meta(rid), "parent")
        if not parent:
            break
        text = parent.decode() if isinstance(parent, bytes) else str(parent)
        rid, node, _ = text.rsplit("|", 2)
        depth += 1
    return rid, node, depth


def reserve(store: RedisStore, script: Callable[..., Any], run_id: str, node: str, visit: int,
            n: int, limits: Limits | None = None) -> None:
    """Count ``n`` child runs of item ``node|visit`` or raise :class:`LimitExceeded`."""
    if n <= 0:
        return
    from .store import loads

    lim = limits or current_limits()
    root, root_node, depth = lineage(store, run_id, lim.max_depth + 1)
    try:
        lim.check_depth(depth + 1, node_id=node, run_id=run_id)
        if not counted(depth + 1):
            return
        res = loads(script(keys=[store.keys.child_runs(root), store.keys.meta(root)],
                           args=[lease_member(run_id, node, visit), n, lim.max_child_runs,
                                 store.settings.result_ttl_s * 2]))
        if res.get("r") == "refused":
            raise lim.child_runs_refused(int(res.get("total") or 0), n, node_id=node, run_id=run_id)
    except LimitExceeded as exc:
        if root != run_id:
            stop_tree(store, root, root_node, exc)
        raise
    if res.get("r") == "stopped":
        raise ExecutorError(f"node {node!r} of run {run_id}: its root run {root} is "
                            f"{res.get('status')}; no more child runs are started",
                            node_id=node, run_id=run_id)


def stop_tree(store: RedisStore, root: str, root_node: str, exc: FlownbError) -> None:
    """Cancel every run under ``root``, then fail ``root`` with ``exc``: when its waiter gets the
    answer, nothing under it is still working (a cancelled child does not wake its parent)."""
    if store.status(root) != "running":
        return  # already ended (another worker stopped it first)
    for child in store.r.smembers(store.keys.children(root)):
        store.cancel(child.decode() if isinstance(child, bytes) else str(child))
    digest = store.r.hget(store.keys.meta(root), "blueprint")
    error = {"node_id": root_node, "run_id": root, "attempt": 1, "type": type(exc).__name__,
             "message": exc.message, "traceback": ""}
    store.fail(root, digest.decode() if isinstance(digest, bytes) else str(digest or ""),
               root_node, error, event={"attempt": 1, "error": error})
