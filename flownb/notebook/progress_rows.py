"""What the run views show: one :class:`NodeRow` per node, and a :class:`Snapshot` of the whole run
copied out of :class:`~flownb.notebook.progress_model.RunModel` under its lock (so a front-end
reads it without holding the lock).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.result import RunResult


DONE_STATES = frozenset({"succeeded", "failed", "replaced"})
_ACTIVE = frozenset({"running", "retrying"})


@dataclass
class NodeRow:
    """What the views show for one node of the run's blueprint."""

    node_id: str
    uses: str = ""
    state: str = "pending"
    visits: int = 0
    attempts: int = 0
    duration_s: float = 0.0
    worker: str | None = None
    started_at: float | None = None
    action: str | None = None
    output: Any = None
    error: str | None = None
    #: times the node was handed to another worker because its worker was lost (not visits)
    redeliveries: int = 0
    #: a one-line note for the table ("re-delivered to w2: worker w1 lost (lease expired)")
    note: str | None = None
    #: the LLM text streamed so far by this node (``llm_token`` custom events)
    tokens: str = ""
    #: what a waiting node (``wait``/``approval``) asks a person, while it waits
    prompt: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of the model, handed to front-ends (safe to read from any thread)."""

    run_id: str | None
    blueprint_id: str
    status: str  # pending | running | waiting | succeeded | failed | cancelled | expired
    rows: tuple[NodeRow, ...]
    done: int
    reachable: int
    total: int
    states: Mapping[str, str]  # for render.to_svg (subflow children as "node/child")
    error: Mapping[str, Any] | None
    result: RunResult | None
    events: int
    elapsed_s: float
    finished: bool
    seq: int  # bumped by every change
    #: the last custom events (``ctx.emit``): (node id, name, data), oldest first
    custom: tuple[tuple[str | None, str, Mapping[str, Any]], ...] = ()
    custom_count: int = 0
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0
    #: the run's path: edge index -> times taken (drawn thick; the others faint once it ended)
    taken: Mapping[int, int] = field(default_factory=dict)

    @property
    def running(self) -> list[str]:
        return [r.node_id for r in self.rows if r.state in _ACTIVE]


__all__ = ["DONE_STATES", "NodeRow", "Snapshot"]
