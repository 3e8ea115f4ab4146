"""The outcome of a run, the same object for every executor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .display import view
from .errors import RunCancelled, RunFailed
from .settle import ENDED, settled
from .tracebacks import user_frames

SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
RUNNING = "running"
PENDING = "pending"
WAITING = "waiting"  # parked at a wait/approval node until someone resumes it (flownb.engine.waiting)
TERMINAL_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass
class NodeStats:
    """Per-node figures over all of its visits in one run."""

    node_id: str
    #: pending | running | retrying | succeeded | failed | skipped | cancelled | replaced; never
    #: pending/running once the run ended (flownb.core.settle)
    status: str = PENDING
    visits: int = 0
    attempts: int = 0
    duration_s: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunResult:
    """Status, outputs (node id → output), final state, per-node timings and the error if any."""

    run_id: str
    blueprint_id: str
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    nodes: dict[str, NodeStats] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    terminal: list[str] = field(default_factory=list)
    #: status of the nodes of this run's child runs, keyed the way drawings address them:
    #: ``"<subflow node>/<child node>"`` (nested: ``"a/b/c"``), ``"<map node>[i]/<child node>"``
    #: for map items; the latest visit of a node wins; nodes a child never reached are left out
    child_states: dict[str, str] = field(default_factory=dict)
    #: the run's path: edge index (``blueprint.edges`` order) -> times taken (a loop's back edge
    #: once per lap); drawings emphasise these edges and fade the others (flownb.core.heat)
    taken_edges: dict[int, int] = field(default_factory=dict)
    #: the live run behind this result (in process: flownb.engine.waiting.LocalRun; distributed: the
    #: RunHandle), so a waiting result can be resumed and its history read
    _run: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # once the run ended no node is left "pending"/"running": the one rule of
        # flownb.core.settle, shared with the live widget and the drawings
        if self.status in ENDED:
            culprit = (self.error or {}).get("node_id")
            for name, st in self.nodes.items():
                st.status = settled(st.status, self.status, culprit=name == culprit)

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def duration_s(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    @property
    def output(self) -> Any:
        """The output of the last node that ran with no successor; a dict if several did."""
        ran = [n for n in self.terminal if n in self.outputs]
        if len(ran) == 1:
            return self.outputs[ran[0]]
        if not ran:
            return None
        return {n: self.outputs[n] for n in ran}

    @property
    def node_states(self) -> dict[str, str]:
        """Node id -> status, subflow/map children included (:attr:`child_states`): what
        ``flownb.render.to_svg(bp, states=...)`` colours a drawing with."""
        return {**{n: s.status for n, s in self.nodes.items()}, **self.child_states}

    @property
    def timings(self) -> dict[str, float]:
        return {n: s.duration_s for n, s in self.nodes.items() if s.visits}

    def raise_for_status(self) -> RunResult:
        """Return ``self`` if the run succeeded, else raise RunFailed / RunCancelled."""
        if self.status == FAILED:
            err = self.error or {}
            msg = err.get("message", "run failed")
            # RunFailed's own prefix names the node and the run
            where = f"failed at attempt {err.get('attempt', 1)}: " if err.get("node_id") else ""
            tb = err.get("traceback") or ""
            text = f"{where}{err.get('type', 'Error')}: {msg}"
            if tb:  # the user's frames (the full one: exc.traceback, FLOWNB_FULL_TRACEBACK=1)
                text += "\n--- original traceback ---\n" + user_frames(tb).rstrip()
            raise RunFailed(text, run_id=self.run_id, node_id=err.get("node_id"), error=err,
                            result=self)
        if self.status == CANCELLED:
            raise RunCancelled("the run was cancelled (pass raise_on_error=False to get its "
                               "partial result instead)", run_id=self.run_id, result=self)
        return self

    # -- human in the loop and time travel (flownb.engine.waiting, flownb.engine.history) ----------------------
    def _live(self, what: str) -> Any:
        if self._run is None:
            from .errors import ExecutorError

            raise ExecutorError(f"{what} needs the live run; this result was rebuilt from data "
                                "(distributed runs: flownb.attach(run_id))", run_id=self.run_id)
        return self._run

    def waiting(self) -> list[dict[str, Any]]:
        """The visits waiting for an answer: ``[{node, visit, prompt, schema, choices, ...}]``."""
        return self._live("waiting()").waiting()  # type: ignore[no-any-return]

    def resume(self, node_id: str, value: Any, *, visit: int | None = None) -> RunResult:
        """Answer a waiting node (its output becomes ``value``) and run on; the new result."""
        out = self._live("resume()").resume(node_id, value, visit=visit)
        return out if isinstance(out, RunResult) else out.result()  # a handle: wait for it

    async def aresume(self, node_id: str, value: Any, *, visit: int | None = None) -> RunResult:
        out = await self._live("aresume()").aresume(node_id, value, visit=visit)
        return out if isinstance(out, RunResult) else await out.aresult()

    def expire(self) -> RunResult:
        """In process: take the default answer of every wait whose ``timeout_s`` has passed
        (distributed runs: the workers' reaper does this by itself)."""
        run = self._live("expire()")
        if not hasattr(run, "expire"):
            return self
        out = run.expire()
        return out if out is not None else self

    def history(self) -> list[Any]:
        """Every committed step (node, visit, output, action, state diff) in commit order."""
        return self._live("history()").history()  # type: ignore[no-any-return]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for s in self.nodes.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        return f"run {self.run_id} ({self.blueprint_id}): {self.status} in {self.duration_s:.3f}s — {parts}"

    def __repr__(self) -> str:
        err = ""
        if self.error:
            err = f" error={self.error.get('node_id')!r}: {self.error.get('message')!r}"
        return f"<RunResult {self.run_id} {self.blueprint_id} {self.status}{err}>"

    def _repr_html_(self) -> str:
        return str(view("result.html")(self))

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "blueprint_id": self.blueprint_id, "status": self.status,
                "outputs": self.outputs, "state": self.state, "error": self.error,
                "nodes": {k: v.to_dict() for k, v in self.nodes.items()},
                "started_at": self.started_at, "finished_at": self.finished_at,
                "terminal": self.terminal, "child_states": self.child_states,
                "taken_edges": {str(k): v for k, v in self.taken_edges.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        nodes = {k: NodeStats(**v) for k, v in (d.get("nodes") or {}).items()}
        return cls(run_id=d["run_id"], blueprint_id=d.get("blueprint_id", ""), status=d["status"],
                   outputs=d.get("outputs") or {}, state=d.get("state") or {}, error=d.get("error"),
                   nodes=nodes, started_at=d.get("started_at", 0.0),
                   finished_at=d.get("finished_at", 0.0), terminal=d.get("terminal") or [],
                   child_states=dict(d.get("child_states") or {}),
                   taken_edges={int(k): int(v) for k, v in (d.get("taken_edges") or {}).items()})


class ChildStates:
    """Collects :attr:`RunResult.child_states` as child runs finish: both executors build the
    field with this, so they agree on the keys and on "the latest visit of a node wins"."""

    def __init__(self) -> None:
        self._by_node: dict[str, tuple[int, dict[str, str]]] = {}  # node -> (visit, states)

    def add(self, node: str, visit: int, prefix: str, statuses: Mapping[str, str],
            nested: Mapping[str, str]) -> None:
        """One child run of ``node``'s ``visit``: its node ``statuses`` and its own ``nested``
        child states, under ``prefix`` (``"sub/"``, ``"m[3]/"``)."""
        seen = self._by_node.get(node)
        if seen is None or seen[0] != visit:  # a new visit replaces what the last one ran
            seen = self._by_node[node] = (visit, {})
        seen[1].update((prefix + n, st) for n, st in statuses.items() if st and st != PENDING)
        seen[1].update((prefix + k, v) for k, v in nested.items())

    def states(self) -> dict[str, str]:
        return {k: v for _, d in self._by_node.values() for k, v in d.items()}
