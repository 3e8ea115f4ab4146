"""Compare two runs of one blueprint: which nodes' outputs and which state keys differ.

Why: after changing a prompt (in the inputs or in the blueprint itself) the question is "what
changed downstream?". :func:`diff_results` answers it from two :class:`RunResult` objects —
pure data, no executor — so the in-process runs and the Redis runs compare the same way; the
facade's ``flownb.diff_runs`` turns handles and run ids into results first. Two runs of
different blueprints have no node-by-node answer, so that is refused with a clear error (the
same blueprint id with a different digest, an edited prompt, is allowed and reported).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .display import view
from .errors import FlownbError

if TYPE_CHECKING:
    from .blueprint import Blueprint
    from .result import RunResult

#: what a node is drawn as in the diff graph: its output differs, is the same, or only one run
#: (or neither) produced one
DIFFERS, SAME, ONE_RUN_ONLY, NOT_RUN = "differs", "same", "one run only", "not run"
_MISSING = object()


@dataclass
class RunDiff:
    """The difference between run ``a`` and run ``b`` of one blueprint.

    ``outputs_a`` / ``outputs_b``: node id → output (a node that did not run is absent);
    ``nodes_differ``: nodes whose output differs (or that ran in one run only), in blueprint
    order; ``state_differ``: state keys whose final value differs or exists in one run only."""

    run_a: str
    run_b: str
    blueprint_id: str
    status_a: str
    status_b: str
    nodes: list[str]
    outputs_a: dict[str, Any]
    outputs_b: dict[str, Any]
    nodes_differ: list[str]
    state_a: dict[str, Any]
    state_b: dict[str, Any]
    state_differ: list[str]
    blueprint: Blueprint | None = field(default=None, repr=False, compare=False)

    @property
    def same(self) -> bool:
        return not self.nodes_differ and not self.state_differ

    def node_states(self) -> dict[str, str]:
        """Node id → ``differs`` / ``same`` / ``one run only`` / ``not run``: the diff graph's
        colours (``differs`` is drawn orange, :data:`flownb.render.STATE_COLORS`)."""
        out = {}
        for n in self.nodes:
            a, b = n in self.outputs_a, n in self.outputs_b
            if a and b:
                out[n] = DIFFERS if n in self.nodes_differ else SAME
            else:
                out[n] = ONE_RUN_ONLY if a or b else NOT_RUN
        return out

    def summary(self) -> str:
        if self.same:
            return f"runs {self.run_a} and {self.run_b} of {self.blueprint_id!r}: no difference"
        parts = []
        if self.nodes_differ:
            parts.append(f"{len(self.nodes_differ)} node(s) differ: {', '.join(self.nodes_differ)}")
        if self.state_differ:
            parts.append(f"{len(self.state_differ)} state key(s) differ: "
                         f"{', '.join(self.state_differ)}")
        return f"runs {self.run_a} and {self.run_b} of {self.blueprint_id!r}: " + "; ".join(parts)

    def __repr__(self) -> str:
        return f"<RunDiff {self.summary()}>"

    def _repr_html_(self) -> str:
        return diff_html(self)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "<i style='opacity:.7'>(not run)</i>"
    try:
        text = json.dumps(value, indent=1, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > 2000:
        text = text[:1999] + "…"
    # wrapped at spaces only: JupyterLab's own <pre> style breaks words anywhere
    return (f"<pre style='margin:0;white-space:pre-wrap;word-break:normal;overflow-wrap:normal;"
            f"max-width:40em'>{html.escape(text)}</pre>")


#: text reads from the left, each side from the top (JupyterLab's tables align right by default)
_CELL = " style='text-align:left;vertical-align:top'"


def _rows(keys: list[str], a: dict[str, Any], b: dict[str, Any], differ: list[str],
          kind: str) -> str:
    out = []
    for k in keys:
        bad = k in differ
        mark = "≠" if bad else "="
        style = " style='background:rgba(239,108,0,.18)'" if bad else ""
        out.append(f"<tr class='flownb-diff-{kind}{' flownb-differs' if bad else ''}'"
                   f" data-key='{html.escape(k, quote=True)}'{style}>"
                   f"<td style='white-space:nowrap;text-align:left;vertical-align:top'><code>{html.escape(k)}</code> {mark}</td>"
                   f"<td{_CELL}>{_show(a.get(k, _MISSING))}</td><td{_CELL}>{_show(b.get(k, _MISSING))}</td></tr>")
    return "".join(out)


def _graph(d: RunDiff) -> str:
    if d.blueprint is None:
        return ""
    try:
        bundle = view("blueprint.mimebundle")(d.blueprint, states=d.node_states())
    except Exception:  # noqa: BLE001 - the table says it all; the drawing is a help
        return ""
    themed = bundle.get("text/html")  # the drawing with its light/dark text colours, fitted
    if themed:
        return f"<div class='flownb-diff-graph' style='max-height:50vh;overflow:auto'>{themed}</div>"
    svg = bundle.get("image/svg+xml")
    if svg:
        start = svg.find("<svg")
        svg = svg[start:].replace("<svg", "<svg style='max-width:100%;height:auto'", 1)
        return f"<div class='flownb-diff-graph' style='max-height:50vh;overflow:auto'>{svg}</div>"
    return f"<pre class='flownb-diff-graph'>{html.escape(bundle.get('text/plain', ''))}</pre>"


def diff_html(d: RunDiff) -> str:
    """Side by side: the graph with differing nodes orange, then node outputs, then state."""
    head = (f"<tr><th></th><th{_CELL}>{html.escape(d.run_a)} ({html.escape(d.status_a)})</th>"
            f"<th{_CELL}>{html.escape(d.run_b)} ({html.escape(d.status_b)})</th></tr>")
    state_keys = sorted(set(d.state_a) | set(d.state_b))
    return ("<div class='flownb-diff'>"
            f"<div class='flownb-diff-summary'><b>{html.escape(d.summary())}</b></div>"
            f"{_graph(d)}"
            "<table class='flownb-diff-table' style='border-collapse:collapse'>"
            f"<thead>{head}</thead><tbody>"
            "<tr><th colspan='3' style='text-align:left'>node outputs</th></tr>"
            f"{_rows(d.nodes, d.outputs_a, d.outputs_b, d.nodes_differ, 'node')}"
            "<tr><th colspan='3' style='text-align:left'>final state</th></tr>"
            f"{_rows(state_keys, d.state_a, d.state_b, d.state_differ, 'state')}"
            "</tbody></table></div>")


def _differ(a: dict[str, Any], b: dict[str, Any], keys: list[str]) -> list[str]:
    return [k for k in keys if a.get(k, _MISSING) != b.get(k, _MISSING)]


def diff_results(a: RunResult, b: RunResult, *, blueprint: Blueprint | None = None) -> RunDiff:
    """The :class:`RunDiff` of two results; :class:`FlownbError` when their blueprints differ.

    ``blueprint`` (either run's) orders the nodes and lets the diff draw its graph."""
    if a.blueprint_id != b.blueprint_id:
        raise FlownbError(
            f"cannot diff runs of different blueprints: run {a.run_id} ran {a.blueprint_id!r}, "
            f"run {b.run_id} ran {b.blueprint_id!r}; pick two runs of one blueprint "
            "(the runs browser's blueprint filter lists them)", run_id=a.run_id)
    order = [n.id for n in blueprint.nodes] if blueprint is not None else []
    seen = set(order)
    order += sorted((set(a.outputs) | set(b.outputs) | set(a.nodes) | set(b.nodes)) - seen)
    state_a = {k: v for k, v in a.state.items() if not k.startswith("_outputs")}
    state_b = {k: v for k, v in b.state.items() if not k.startswith("_outputs")}
    state_keys = sorted(set(state_a) | set(state_b))
    return RunDiff(run_a=a.run_id, run_b=b.run_id, blueprint_id=a.blueprint_id,
                   status_a=a.status, status_b=b.status, nodes=order,
                   outputs_a=dict(a.outputs), outputs_b=dict(b.outputs),
                   nodes_differ=_differ(a.outputs, b.outputs, order),
                   state_a=state_a, state_b=state_b,
                   state_differ=_differ(state_a, state_b, state_keys), blueprint=blueprint)


__all__ = ["DIFFERS", "NOT_RUN", "ONE_RUN_ONLY", "SAME", "RunDiff", "diff_html", "diff_results"]
