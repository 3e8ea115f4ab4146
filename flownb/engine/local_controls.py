"""``flownb.start``: an in-process run in a background thread, steerable like a distributed one.

``flownb.run`` blocks its caller, so nobody is left to pause it. :class:`LocalHandle` drives the
run in a thread of its own and offers the :class:`~flownb.distributed.client.RunHandle` run
controls (``pause``, ``resume_run``, ``patch_state``, ``retry``, ``skip``, ``cancel``), with the
same refusals (:class:`~flownb.engine.controls.RunControlError`). A retried or skipped run
continues in place: the same :class:`~flownb.engine.driver.Engine` (its outputs, state and
scheduler) is driven again from that node, so no upstream node body runs again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from ..core.blueprint import Blueprint
from ..core.context import NodeContext
from ..core.errors import MaxVisitsExceeded, RunTimeout
from ..core.events import Event, EventBus
from ..core.inputs import as_inputs
from ..core.lint_gate import check as check_lint
from ..core.registry import Registry, Result
from ..core.result import CANCELLED, FAILED, WAITING, RunResult
from .controls import RunControl, RunControlError, default_by, refuse
from .driver import Engine
from .scheduler import Item
from . import runlog
from .support import new_run_id
from .waiting import LocalRun, drive_local

__all__ = ["LocalHandle", "start"]

#: the event a patched state emits (both executors)
STATE_PATCHED = "state_patched"
RUN_RETRIED = "run_retried"


class LocalHandle:
    """A run of this process, driven in a background thread (see :func:`start`)."""

    def __init__(self, blueprint: Blueprint | Mapping[str, Any] | str,
                 inputs: Mapping[str, Any] | None = None, *, registry: Registry | None = None,
                 run_id: str | None = None, on_event: Callable[[Event], None] | None = None,
                 strict: bool | None = True) -> None:
        from .runtime import _prepare

        inputs = as_inputs(inputs)
        bp = check_lint(blueprint, registry, inputs, strict=strict)
        graph, reg = _prepare(bp, registry)
        self.blueprint: Blueprint = graph.blueprint
        self.control = RunControl()
        self.bus = EventBus()
        #: every event so far, so a view opened later replays the run from its start
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        if on_event is not None:
            self.bus.subscribe(on_event)
        self.engine = Engine(graph, inputs, run_id=run_id or new_run_id(), registry=reg,
                             bus=self.bus, cancel=self.control)
        self.run_id = self.engine.run_id
        #: what flownb.runs() lists for this run (listed from its start, like flownb.run's)
        self._rec: runlog.RunRecord | None = runlog.record_start(self.run_id, self.blueprint,
                                                                 self.bus)
        #: the state patches made by hand: ``{"at", "by", "values"}`` (also ``state_patched`` events)
        self.patches: list[dict[str, Any]] = []
        self._run: LocalRun | None = None
        self._result: RunResult | None = None
        self._done = threading.Event()
        #: called with each drive's result (the run widget's view folds it in)
        self.on_result: list[Callable[[RunResult], Any]] = []
        self._lock = threading.Lock()
        self._drive(self._first())

    async def _first(self) -> RunResult:
        result = await drive_local(self.engine, history=True)
        self._run = result._run
        return result

    def _drive(self, coro: Coroutine[Any, Any, RunResult]) -> None:
        self._done.clear()

        def main() -> None:
            try:
                result = asyncio.run(coro)
            except BaseException as exc:  # noqa: BLE001 - reported as the run's failure
                result = RunResult(run_id=self.run_id, blueprint_id=self.blueprint.id,
                                   status=FAILED, error={"node_id": None, "attempt": 1,
                                                         "type": type(exc).__name__,
                                                         "message": str(exc), "traceback": ""})
            result._run = self._run
            self._result = result
            if self._rec is not None:  # the first drive ended
                runlog.record_end(self._rec, result)
                self._rec = None
            else:  # a retry, skip or resume moved the run on
                runlog.update(self.run_id, result)
            self._done.set()
            for fn in list(self.on_result):
                fn(result)

        threading.Thread(target=main, name=f"flownb-run-{self.run_id}", daemon=True).start()

    # -- status and results --------------------------------------------------------------------------
    def status(self) -> str:
        """``running``, ``paused``, then the result's (``succeeded``, ``failed``, ``waiting``…)."""
        if not self._done.is_set():
            return "paused" if self.control.paused else "running"
        assert self._result is not None
        return self._result.status

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def wait_paused(self, timeout: float | None = 10.0) -> bool:
        """After :meth:`pause`: block until the visits in flight finished (then the state can be
        patched); False when ``timeout`` passed first or the run ended meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.engine.held is None and not self._done.is_set():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return self.engine.held is not None

    def result(self, timeout: float | None = None, *, raise_on_error: bool = True) -> RunResult:
        """Wait for the run (a paused run does not end until resumed) and return its result."""
        if not self._done.wait(timeout):
            raise RunTimeout(f"still {self.status()} after {timeout}s (the run goes on)",
                             run_id=self.run_id)
        assert self._result is not None
        return self._result.raise_for_status() if raise_on_error else self._result

    def cancel(self) -> bool:
        if self._done.is_set():
            return False
        self.control.cancel()
        return True

    def __repr__(self) -> str:
        return f"<LocalHandle {self.run_id} {self.status()}>"

    def widget(self) -> Any:
        """A live view of this run (a widget in Jupyter, a tqdm bar elsewhere)."""
        from ..core.display import view

        return view("run.widget")(self)

    def resume(self, node_id: str, value: Any, *, visit: int | None = None) -> LocalHandle:
        """Answer a waiting node (HITL); the run goes on in the background."""
        run = self._run
        if run is None or not self._done.is_set():
            raise refuse("answer a node", self.status(), "answer once the run waits",
                         run_id=self.run_id, node_id=node_id)
        run._find(node_id, visit)  # refuses now, in the caller's thread, when it does not wait
        self._drive(run.aresume(node_id, value, visit=visit))
        return self

    # -- run controls ----------------------------------------------------------------------------
    def pause(self, *, by: str | None = None) -> LocalHandle:
        """Start no new visit; visits in flight finish, then the run waits for resume_run()."""
        if self._done.is_set():
            raise refuse("pause", self.status(), "only a running run can be paused",
                         run_id=self.run_id)
        if self.control.paused:
            raise refuse("pause", "paused already", "resume it with handle.resume_run()",
                         run_id=self.run_id)
        self.control.pause(by=by)
        return self

    def resume_run(self, *, by: str | None = None) -> LocalHandle:
        """Continue a paused run (``resume(node, value)`` answers a waiting node instead)."""
        if not self.control.paused or self._done.is_set():
            raise refuse("resume the run", f"{self.status()}, not paused",
                         "resume_run() continues a paused run (resume(node, value) answers a "
                         "waiting node)", run_id=self.run_id)
        self.control.resume_run(by=by)
        return self

    def patch_state(self, values: Mapping[str, Any], *, by: str | None = None) -> LocalHandle:
        """Merge ``values`` into a paused (nothing in flight) or waiting run's state."""
        with self._lock:
            idle_paused = self.control.paused and self.engine.held is not None
            if not (idle_paused or self.status() == WAITING):
                st = self.status()
                fix = ("wait until the visits in flight finish, then patch" if st == "paused"
                       else "pause it first (handle.pause()); only a paused or waiting run's "
                       "state can be patched")
                raise refuse("patch the state", "paused with visits still running"
                             if st == "paused" else st, fix, run_id=self.run_id)
            if not isinstance(values, Mapping) or not values or any(
                    not isinstance(k, str) or not k or k.startswith("_outputs") for k in values):
                raise RunControlError("patch_state takes a non-empty dict of state keys (node "
                                      "outputs are changed with skip(node, output=...))",
                                      run_id=self.run_id)
            self.engine.state.update(values)
            rec = {"at": time.time(), "by": by or default_by(), "values": dict(values)}
            self.patches.append(rec)
            self.engine._emit(STATE_PATCHED, by=rec["by"], keys=sorted(values))
        return self

    def retry(self, node_id: str, *, by: str | None = None) -> LocalHandle:
        """Re-run ``node_id`` of a failed or cancelled run in place (upstream outputs kept)."""
        item = self._revive("retry", node_id)
        self.engine._emit(RUN_RETRIED, node_id, by=by or default_by(), visit=item.visit)

        async def again() -> RunResult:
            self.engine.start_items = [item]
            return await self.engine.drive()

        self._drive(again())
        return self

    def skip(self, node_id: str, *, output: Any = None, by: str | None = None) -> LocalHandle:
        """Mark ``node_id`` completed by hand with ``output``: the failed node of a failed or
        cancelled run, a waiting node, or a queued node of a paused run; the run goes on."""
        eng = self.engine
        self._check_node("skip", node_id)
        with self._lock:
            held = eng.held
            queued = [it for it in held if it.node == node_id] if held is not None else []
            if queued:  # paused: commit it where the driver holds it
                assert held is not None
                held.remove(queued[0])
                held.extend(self._commit(queued[0], output))
                return self
        waiting = [k for k in eng.parked if k[0] == node_id] if self._done.is_set() else []
        if waiting:
            del eng.parked[waiting[0]]
            item = Item(node_id, waiting[0][1], ())
        else:
            item = self._revive("skip", node_id)

        async def on() -> RunResult:
            eng.start_items = self._commit(item, output)
            return await eng.drive()

        self._drive(on())
        return self

    def _commit(self, item: Item, output: Any) -> list[Item]:
        eng = self.engine
        cn = eng.g.nodes[item.node]
        ctx = NodeContext(None, cn.params, cn.id, item.visit, eng._env)
        eng.writer.fired([item])  # the visit is known to the conflict check, as a fired one is
        eng._stat(cn.id).visits += 1
        return eng._commit(cn, item, ctx, Result(output, None), time.perf_counter())

    def _check_node(self, what: str, node_id: str) -> None:
        if node_id not in self.engine.g.nodes:
            raise RunControlError(f"cannot {what}: the blueprint has no node {node_id!r} (nodes: "
                                  f"{', '.join(sorted(self.engine.g.nodes))})", run_id=self.run_id,
                                  node_id=node_id)

    def _revive(self, what: str, node_id: str) -> Item:
        """Make a failed or cancelled run's engine ready to run ``node_id`` again."""
        self._check_node(what, node_id)
        st = self.status()
        if st not in (FAILED, CANCELLED):
            fix = ("only a failed or cancelled run's node is retried; pause a running run, or "
                   "fork a finished one (flownb.fork)") if what == "retry" else \
                "only a failed, waiting or (paused) queued node can be skipped"
            raise refuse(what, st, fix, run_id=self.run_id, node_id=node_id)
        eng = self.engine
        stat = eng.stats.get(node_id)
        succeeded = stat.status == "succeeded" if stat is not None else \
            any(n == node_id for n, _ in eng.sched.done)
        if succeeded:
            raise refuse(what, st, "that node succeeded; retry the node that failed",
                         run_id=self.run_id, node_id=node_id)
        sched, cn = eng.sched, eng.g.nodes[node_id]
        sched.active = 0  # nothing runs now: the visits that died with the run count no more
        sched.scc_active = {k: 0 for k in sched.scc_active}
        ready: list[Item] = []
        sources = tuple(e.source for e in cn.fwd_in if e.source in eng.outputs)
        if what == "retry" and cn.fwd_in and not sources:
            ups = ", ".join(sorted({e.source for e in cn.fwd_in}))
            raise refuse(what, st, f"no node upstream of it ({ups}) has an output yet; retry "
                         "the node that failed", run_id=self.run_id, node_id=node_id)
        try:
            sched._fire(cn, sources, ready)
        except MaxVisitsExceeded as exc:
            raise refuse(what, st, exc.message, run_id=self.run_id, node_id=node_id) from None
        eng.error = None
        eng.stats.pop(node_id, None)
        self.control.reset()
        return ready[0]


def start(blueprint: Blueprint | Mapping[str, Any] | str, inputs: Mapping[str, Any] | None = None,
          **kwargs: Any) -> LocalHandle:
    """Start an in-process run in a background thread and return its :class:`LocalHandle`
    (``pause``, ``resume_run``, ``patch_state``, ``retry``, ``skip``, ``cancel``, ``result``)."""
    return LocalHandle(blueprint, inputs, **kwargs)

