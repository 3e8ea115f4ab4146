"""A run's history as a timeline in a notebook: one row per committed step.

``timeline(result_or_handle)`` shows what ``history()`` returns — node and visit, action, the
state keys written, the output, and where a step came from (a person's answer, a wait's
timeout default, a fork's replay or edit) — so picking the step to fork from is a glance, not a
loop over steps. Plain HTML (no ipywidgets), so it renders in any notebook viewer and on GitHub.
"""

from __future__ import annotations

import html
import json
from typing import Any

from .panels import _short as short
from .tables import duration, styled_table

# badge fills that carry white text at >= 4.5:1 (the same in both themes: the badge is opaque)
_FLAG = {"resumed": ("answered", "#1565c0"), "timeout": ("timeout default", "#a04000"),
         "replayed": ("replayed", "#616161"), "edited": ("edited", "#ad1457")}


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return short(text.replace("\n", " "), limit)  # cut at a word, as the run table does


class Timeline:
    """The steps of one run; ``_repr_html_`` draws them, ``str()`` lists them as text."""

    def __init__(self, steps: list[Any], run_id: str = "") -> None:
        self.steps = steps
        self.run_id = run_id

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        lines = [f"run {self.run_id}: {len(self.steps)} steps"]
        t0 = self.steps[0].ts if self.steps else 0.0
        for s in self.steps:
            flag = f" [{_FLAG.get(s.flag, (s.flag, ''))[0]}]" if s.flag else ""
            act = f" -> {s.action}" if s.action else ""
            lines.append(f"{s.index:>3} +{max(0.0, s.ts - t0):6.2f}s {s.node}#{s.visit}{act}{flag} "
                         f"writes={sorted(s.writes)} output={_short(s.output, 50)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        t0 = self.steps[0].ts if self.steps else 0.0
        rows = []
        for s in self.steps:
            label, color = _FLAG.get(s.flag, (s.flag, "#616161"))
            badge = (f"<span style='background:{color};color:#fff;border-radius:3px;"
                     f"padding:0 4px'>{html.escape(label)}</span>") if s.flag else ""
            rows.append([str(s.index), f"+{duration(max(0.0, s.ts - t0))}",
                         f"<b>{html.escape(s.node)}</b>#{s.visit}", html.escape(s.action or ""),
                         badge, html.escape(", ".join(sorted(s.writes))),
                         f"<code style='white-space:nowrap'>{html.escape(_short(s.output))}</code>"])
        table = styled_table(["step", "time", "node", "action", "", "state written", "output"],
                             rows, numeric=(0, 1), cls="flownb-timeline")
        return (f"<div><b>history of run</b> <code>{html.escape(self.run_id)}</code> — "
                f"{len(self.steps)} steps (fork from any: <code>flownb.fork(run, from_node=…)</code>)"
                f"{table}</div>")


def timeline(target: Any) -> Timeline:
    """The timeline of a ``RunResult`` (in process: run with ``history=True``) or a handle."""
    return Timeline(target.history(), str(getattr(target, "run_id", "")))
