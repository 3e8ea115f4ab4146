"""Time travel and streaming on Redis: the run's history stream, forks, ``handle.stream``.

A run submitted with ``history=True`` (its meta says ``history=1``; its subflow/map child runs
inherit it) has a history stream: the ``COMMIT`` script appends every committed visit to
``{p}:run:<id>:history`` in the call that commits it (and ``START`` appends the inputs first),
with the event id of its ``node_succeeded``. Without it (the default, as in process) nothing is
written, and what needs the steps — ``handle.history()``, a fork, the ``updates``/``values``
stream modes — raises :class:`NoHistory` saying so; ``events``/``tokens`` streams need none. So a stream pairs each ``node_succeeded`` event with its full step (the
event carries only a preview of the output) by reading both streams forward, and a late
subscriber replays the whole run from its first entry. A fork replays the steps before the fork
point through ``COMMIT`` without running their nodes (see :mod:`flownb.engine.history`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..core import events as ev
from ..core.errors import ExecutorError, FlownbError
from ..core.graph import analyse, select_edges
from ..core.jsondata import JSONDataError
from ..core.jsondata import dumps as strict_dumps
from ..engine.history import _UNSET, ForkPlan, Step
from ..engine.stream import Chunk, Chunker, parse_modes
from .jobs import enqueue_items
from .run_ids import check_run_id
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


class NoHistory(ExecutorError):
    """The run records no history (submitted without ``history=True``), or it expired."""


#: the stream modes whose chunks are built from the committed steps (the history stream)
STEP_MODES = ("updates", "values")


def no_history(run_id: str, what: str) -> NoHistory:
    return NoHistory(f"{what} needs the run's history, and the run was submitted without "
                     "it; submit it with history=True (executor.submit(bp, inputs, "
                     "history=True), also LocalCluster.run/map) to record every step "
                     "(the events-only stream modes need none: mode='events')", run_id=run_id)


def check_history(store: RedisStore, run_id: str, what: str) -> None:
    """Raise :class:`NoHistory` unless the run records its history (one HGET)."""
    flag = store.r.hget(store.keys.meta(run_id), "history")
    if flag is None and store.r.exists(store.keys.meta(run_id)):
        raise no_history(run_id, what)


def read_history(store: RedisStore, run_id: str,
                 what: str = "handle.history()") -> tuple[dict[str, Any], list[Step]]:
    """The run's inputs and committed steps, in commit order."""
    inputs: dict[str, Any] | None = None
    steps: list[Step] = []
    check_history(store, run_id, what)
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
    steps = any(m in STEP_MODES for m in modes)  # events/tokens need no history
    if steps:
        check_history(store, handle.run_id, f"handle.stream(mode={mode!r})")
    cursor = _HistoryCursor(store, handle.run_id)
    if steps:
        cursor._more()
    chunker = Chunker(modes, cursor.inputs)
    events_key = store.keys.events(handle.run_id)
    # raise_if_gone: a blocking read on a vanished run's stream would never end
    for e in store.follow(handle.run_id, timeout_s=timeout, raise_if_gone=True):
        step = cursor.step_for(e.id) if steps and e.type == ev.NODE_SUCCEEDED else None
        yield from chunker.feed(e, step)
        if e.type == ev.RUN_WAITING and store.status(handle.run_id) == "waiting":
            tail = store.r.xrevrange(events_key, count=1)
            if tail and _s(tail[0][0]) == e.id:
                return  # still waiting: the stream ends here (a resumed run goes on)


# -- forks -------------------------------------------------------------------------------------------

def fork_on(executor: DistributedExecutor, plan: ForkPlan, *, run_id: str | None = None) -> RunHandle:
    """Start the fork described by ``plan`` on Redis; returns its handle at once."""
    from .client import RunHandle

    store = executor.store
    bp = plan.blueprint
    graph = bp._cache.get("analysed")
    if graph is None:
        graph = bp._cache["analysed"] = analyse(bp)[0]
    run_id = uuid.uuid4().hex[:12] if run_id is None else check_run_id(run_id, what="fork run id")
    # everything the user edited is checked and encoded before the first write: a fork that
    # raised must leave nothing in Redis for the reaper to run later
    state_json, output_json = encode_edits(plan, run_id)
    with executor._redis(f"forking run {plan.source_run}", run_id):
        # a fork records its history (it came from one, and may be forked in turn)
        ready = store.start_run(run_id, bp, graph, plan.inputs, bundle=executor._bundle(bp),
                                history=True)
        try:
            _replay(executor, plan, graph, run_id, ready, state_json, output_json)
        except BaseException:
            # written, not finished: cancel it, so no worker or reaper ever runs it
            with contextlib.suppress(Exception):
                store.cancel(run_id)
            raise
    return RunHandle(executor, run_id, bp)


def _replay(executor: DistributedExecutor, plan: ForkPlan, graph: Any, run_id: str,
            ready: list[tuple[str, int]], state_json: dict[str, str],
            output_json: str | None) -> None:
    from .execute import _preview
    from .reads import resolver as _resolver

    store = executor.store
    bp = plan.blueprint
    digest = bp.digest
    pool = [(n, int(v)) for n, v in ready]

    def take(node: str, visit: int) -> None:
        if (node, visit) not in pool:
            raise FlownbError(f"the history of run {plan.source_run} does not replay on "
                              f"blueprint {bp.id!r}: {node}#{visit} is not ready at that point "
                              f"(ready: {[f'{n}#{v}' for n, v in pool]})", run_id=run_id)
        pool.remove((node, visit))

    def commit(node: str, visit: int, output: Any, action: str | None, taken: Any,
               writes: dict[str, Any], flag: str, encoded: str | None = None) -> None:
        event = {"visit": visit, "attempt": 0, "duration_s": 0.0, "action": action,
                 "output": _preview(output), "flag": flag, flag: True}
        res = store.commit(run_id, digest, node, visit,
                           output_json=dumps(output) if encoded is None else encoded, taken=taken,
                           stats={"status": "succeeded", "visits": visit, "attempts": 0,
                                  "duration_s": 0.0, "worker": flag}, event=event, writes=writes)
        if res.get("r") != "ok":
            raise ExecutorError(f"fork: replaying {node}#{visit} was refused ({res})", run_id=run_id)
        pool.extend((n, int(v)) for n, v in res.get("ready") or [])

    for step in plan.replay:
        take(step.node, step.visit)
        commit(step.node, step.visit, step.output, step.action, step.taken, step.writes, "replayed")
    take(plan.node, plan.visit)
    if state_json:
        store.r.hset(store.keys.state(run_id), mapping={k: v for k, v in state_json.items()})
    if output_json is None:
        pool.insert(0, (plan.node, plan.visit))
    else:
        cn = graph.nodes[plan.node]
        taken = select_edges(cn, plan.action, _resolver(store, run_id, plan.output, plan.action,
                                                        None, {})) if cn.out else set()
        commit(plan.node, plan.visit, plan.output, plan.action, taken, {}, "edited", output_json)
    enqueue_items(executor.queue, run_id, [list(x) for x in pool], keys=store.keys)


def encode_edits(plan: ForkPlan, run_id: str) -> tuple[dict[str, str], str | None]:
    """The fork's edited state values and output as stored JSON, or a FlownbError naming the
    value that cannot be stored (NaN, an object, a lone surrogate) — before anything is written."""
    state: dict[str, str] = {}
    for k, v in plan.state.items():
        try:
            k.encode("utf-8")
        except UnicodeEncodeError:
            raise FlownbError(f"fork state key {k!r} is not valid Unicode text (a lone "
                              "surrogate); nothing was started", run_id=run_id) from None
        state[k] = _encoded(v, f"fork state[{k!r}]", run_id)
    if plan.action is not None and not isinstance(plan.action, str):
        raise FlownbError(f"fork action must be a string or None, got {plan.action!r}; nothing "
                          "was started", run_id=run_id)
    if plan.action is not None:
        _encoded(plan.action, "fork action", run_id)
    output = None if plan.output is _UNSET else _encoded(plan.output, "fork output", run_id)
    return state, output


def _encoded(value: Any, what: str, run_id: str) -> str:
    try:
        return strict_dumps(value, what=what)  # NaN, objects, lone surrogates: refused
    except JSONDataError as exc:
        raise FlownbError(f"{exc.message}; nothing was started", run_id=run_id) from None


__all__ = ["NoHistory", "fork_on", "read_history", "stream_run"]
