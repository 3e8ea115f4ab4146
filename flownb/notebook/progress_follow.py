"""Feeding a :class:`~flownb.notebook.progress_model.RunModel` from a distributed run's Redis stream.

Why a reader per run: a distributed run's events are in its Redis stream, read with a blocking
``XREAD`` (no polling). A subflow's child run has its *own* stream, so when the parent's node
announces its children (the ``children`` custom event) a second reader follows the child's
stream too, feeding its events under the in-process naming (``<run>/<node>.<visit>``) so its
nodes are drawn inside the subflow's cluster, up to 3 levels deep. Map items are not drawn, so
not followed. After the last event the run's stored result is loaded: it is authoritative.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from ..core.events import CUSTOM, TERMINAL, Event
from .progress_model import CHILDREN_EVENT, RunModel

__all__ = ["consume"]

#: a child run that never shows up (or expired) is given up after this many seconds
_CHILD_MISSING_S = 30.0


def consume(model: RunModel, handle: Any, *, chunk_s: float = 1.0) -> None:
    """Read the run's event stream in *this* thread until the run ends (or the model closes)."""
    if model.run_id is None:
        model.run_id = handle.run_id
    model.resume_target = handle  # a waiting run is answered through its handle
    if model.blueprint is None:
        with contextlib.suppress(Exception):  # expired run: rows come from the events
            model.set_blueprint(handle.blueprint)
    store = handle.store
    last = getattr(model, "last_event_id", "0-0")  # on from there when followed again (retry)
    terminal = False
    children: list[threading.Thread] = []
    while not model.closed and not terminal:
        for e in store.follow(handle.run_id, after=last, timeout_s=chunk_s):
            last = e.id or last
            model.feed(e)
            children += _maybe_follow_child(model, store, handle.run_id, handle.run_id, e, 0)
            if e.type in TERMINAL:
                terminal = True
                break
            if model.closed:
                return
        if not terminal:
            status = store.status(handle.run_id)
            if status is None:
                model.end_without_result("expired")
                return
            if status not in ("running", "waiting"):  # a waiting run resumes: keep reading
                terminal = True  # its terminal event was trimmed: the result says the rest
    for t in children:  # subflow runs end before their parent: their last events are in
        t.join(5.0)
    try:
        result = store.load_result(handle.run_id)
    except Exception:  # noqa: BLE001 - the events already told the story
        model.end_without_result()
        return
    model.finish(result)


def _maybe_follow_child(model: RunModel, store: Any, real_id: str, mapped_id: str, e: Event,
                        depth: int) -> list[threading.Thread]:
    """Start following the child run a subflow node's ``children`` event announces."""
    data = e.data or {}
    if e.type != CUSTOM or data.get("name") != CHILDREN_EVENT or not e.node_id or depth > 3:
        return []
    bp = model.blueprint
    if depth == 0 and bp is not None:
        node = next((n for n in bp.nodes if n.id == e.node_id), None)
        if node is None or node.uses != "subflow":
            return []
    elif int(data.get("count") or 0) != 1:
        return []
    visit = model.structural_visit(e.node_id) if depth == 0 else 1
    child_real = f"{real_id}.{e.node_id}.{visit}.0"
    child_mapped = f"{mapped_id}/{e.node_id}.{visit}"
    t = threading.Thread(target=_consume_child, name="flownb-progress-child",
                         args=(model, store, child_real, child_mapped, depth + 1), daemon=True)
    t.start()
    return [t]


def _consume_child(model: RunModel, store: Any, real_id: str, mapped_id: str,
                   depth: int) -> None:
    grandchildren: list[threading.Thread] = []
    last, since = "0-0", time.monotonic()
    try:
        while not model.closed:
            for e in store.follow(real_id, after=last, timeout_s=1.0):
                last = e.id or last
                model.feed(Event(e.type, mapped_id, e.node_id, e.data, e.ts, e.id))
                grandchildren += _maybe_follow_child(model, store, real_id, mapped_id, e, depth)
                if e.type in TERMINAL:
                    return
            status = store.status(real_id)
            if status is not None:
                since = time.monotonic()
            if (status is not None and status not in ("running", "waiting")) or \
                    time.monotonic() - since > _CHILD_MISSING_S:
                return  # ended (terminal event trimmed) or never created / expired
    except Exception:  # noqa: BLE001 - drawing a subflow's inside is a bonus
        return
    finally:
        for t in grandchildren:
            t.join(5.0)
