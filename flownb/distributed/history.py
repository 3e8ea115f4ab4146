"""Time travel and streaming on Redis: the run's history stream, forks, ``handle.stream``.

The ``COMMIT`` script appends every committed visit to ``{p}:run:<id>:history`` in the call that
commits it (and ``START`` appends the inputs first), with the event id of its
``node_succeeded``. So a stream pairs each ``node_succeeded`` event with its full step (the
event carries only a preview of the output) by reading both streams forward, and a late
subscriber replays the whole run from its first entry. A fork replays the steps before the fork
point through ``COMMIT`` without running their nodes (see :mod:`flownb.engine.history`).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..core import events as ev
from ..core.errors import ExecutorError, FlownbError
from ..core.graph import analyse, select_edges
from ..engine.history import _UNSET, ForkPlan, Step
from ..engine.stream import Chunk, Chunker, parse_modes
from .jobs import enqueue_items
from .store import RedisStore, _s, dumps, loads

if TYPE_CHECKING:
    from .client import DistributedExecutor, RunHandle


def _step(index: int, f: dict[str, str]) -> Step:
    taken = loads(f.get("t") or "{}", what="history taken edges") or {}
    event = loads(f.get("d") or "{}", what="history event data") or {}
    action, flag = event.get("action"), event.get("flag")
    return Step(index, f["n"], int(f["v"]), loads(f.get("o"), what="history output"),
                action if isinstance(action, str) else None,
                loads(f.get("w") or "{}", what="history writes") or {},
                sorted(int(i) for i in taken), flag if isinstance(flag, str) else "", 0.0)


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in raw.items()}


def read_history(store: RedisStore, run_id: str) -> tuple[dict[str, Any], list[Step]]:
    """The run's inputs and committed steps, in commit order."""
    inputs: dict[str, Any] | None = None
    steps: list[Step] = []
    for entry_id, raw in store.r.xrange(store.keys.history(run_id)) or []:
        f = _fields(raw or {})
        if f.get("k") == "start":
            inputs = loads(f.get("d") or "{}", what="history inputs") or {}
        elif f.get("k") == "commit":
            st = _step(len(steps), f)
            st.ts = int(_s(entry_id).split("-")[0]) / 1000.0
            steps.append(st)
    if inputs is None:
        raise ExecutorError("the run has no history in Redis (expired, or started by a flownb "
                            "without history)", run_id=run_id)
    return inputs, steps


class _HistoryCursor:
    """Reads the history stream forward to find the step committed with a given event."""

    def __init__(self, store: RedisStore, run_id: str) -> None:
        self.store = store
        self.key = store.keys.history(run_id)
        self.last = "-"
        self.buf: deque[dict[str, str]] = deque()
        self.n = 0
        self.inputs: dict[str, Any] = {}

    def _more(self) -> bool:
        start = self.last if self.last == "-" else f"({self.last}"
        got = self.store.r.xrange(self.key, min=start, count=200) or []
        for entry_id, raw in got:
            self.last = _s(entry_id)
            f = _fields(raw or {})
            if f.get("k") == "start":
                self.inputs = loads(f.get("d") or "{}") or {}
            else:
                self.buf.append(f)
        return bool(got)

    def step_for(self, event_id: str | None) -> Step | None:
        while True:
            while self.buf:
                f = self.buf.popleft()
                st = _step(self.n, f)
                self.n += 1
                if f.get("e") == event_id:
                    return st
            if not self._more():
                return None


def stream_run(handle: RunHandle, mode: str | list[str] = "updates", *,
               timeout: float | None = None) -> Iterator[Chunk]:
    """``handle.stream(mode=...)``: the run's chunks from its first event; ends when the run
    ends or waits for a person (``timeout``: stop after that many seconds of following)."""
    modes = parse_modes(mode)
    store = handle.store
    cursor = _HistoryCursor(store, handle.run_id)
    cursor._more()
    chunker = Chunker(modes, cursor.inputs)
    events_key = store.keys.events(handle.run_id)
    for e in store.follow(handle.run_id, timeout_s=timeout):
        step = cursor.step_for(e.id) if e.type == ev.NODE_SUCCEEDED else None
        yield from chunker.feed(e, step)
        if e.type == ev.RUN_WAITING and store.status(handle.run_id) == "waiting":
            tail = store.r.xrevrange(events_key, count=1)
            if tail and _s(tail[0][0]) == e.id:
                return  # still waiting: the stream ends here (a resumed run goes on)


# -- forks -------------------------------------------------------------------------------------------

def fork_on(executor: DistributedExecutor, plan: ForkPlan, *, run_id: str | None = None) -> RunHandle:
    """Start the fork described by ``plan`` on Redis; returns its handle at once."""
    from .client import RunHandle
    from .execute import _preview
    from .reads import resolver as _resolver

    store = executor.store
    bp = plan.blueprint
    graph = bp._cache.get("analysed")
    if graph is None:
        graph = bp._cache["analysed"] = analyse(bp)[0]
    run_id = run_id or uuid.uuid4().hex[:12]
    ready = store.start_run(run_id, bp, graph, plan.inputs, bundle=executor._bundle(bp))
    digest = bp.digest
    pool = [(n, int(v)) for n, v in ready]

    def take(node: str, visit: int) -> None:
        if (node, visit) not in pool:
            raise FlownbError(f"the history of run {plan.source_run} does not replay on "
                              f"blueprint {bp.id!r}: {node}#{visit} is not ready at that point "
                              f"(ready: {[f'{n}#{v}' for n, v in pool]})", run_id=run_id)
        pool.remove((node, visit))

    def commit(node: str, visit: int, output: Any, action: str | None, taken: Any,
               writes: dict[str, Any], flag: str) -> None:
        event = {"visit": visit, "attempt": 0, "duration_s": 0.0, "action": action,
                 "output": _preview(output), "flag": flag, flag: True}
        res = store.commit(run_id, digest, node, visit, output_json=dumps(output), taken=taken,
                           stats={"status": "succeeded", "visits": visit, "attempts": 0,
                                  "duration_s": 0.0, "worker": flag}, event=event, writes=writes)
        if res.get("r") != "ok":
            raise ExecutorError(f"fork: replaying {node}#{visit} was refused ({res})", run_id=run_id)
        pool.extend((n, int(v)) for n, v in res.get("ready") or [])

    for step in plan.replay:
        take(step.node, step.visit)
        commit(step.node, step.visit, step.output, step.action, step.taken, step.writes, "replayed")
    take(plan.node, plan.visit)
    if plan.state:
        store.r.hset(store.keys.state(run_id), mapping={k: dumps(v) for k, v in plan.state.items()})
    if plan.output is _UNSET:
        pool.insert(0, (plan.node, plan.visit))
    else:
        cn = graph.nodes[plan.node]
        taken = select_edges(cn, plan.action, _resolver(store, run_id, plan.output, plan.action,
                                                        None, {})) if cn.out else set()
        commit(plan.node, plan.visit, plan.output, plan.action, taken, {}, "edited")
    enqueue_items(executor.queue, run_id, [list(x) for x in pool], keys=store.keys)
    return RunHandle(executor, run_id, bp)


__all__ = ["fork_on", "read_history", "stream_run"]
