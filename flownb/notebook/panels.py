"""The HTML pieces of a run view: status line, node table, live tokens/events, error/output.

Plain functions of a :class:`~flownb.notebook.progress.Snapshot`, so they are testable without
ipywidgets and shared by the live widget and ``RunResult._repr_html_``.

Why the styling looks like this: the same HTML shows in JupyterLab's light and dark themes,
in classic Notebook, VS Code and a static HTML export. Colours are JupyterLab CSS variables
with a light-theme fallback (``var(--jp-ui-font-color1, #212121)``), never hard-coded black or
white. The table scrolls inside a box with a sticky header; its rows have a fixed height in
``em`` and the box is a whole number of rows high, so no row is ever cut in half; short values
never wrap (``white-space: nowrap``) and long outputs are cut with an ellipsis (the full text is
in the cell's tooltip).
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from .text_colours import STYLE, css

if TYPE_CHECKING:
    from ..core.result import RunResult
    from .progress import NodeRow, Snapshot

__all__ = [
    "STATE_CSS",
    "TABLE_ROWS",
    "details_html",
    "live_html",
    "result_html",
    "status_html",
    "table_html",
]

#: node/run state -> CSS colour: >= 4.5:1 in both themes (flownb.notebook.text_colours; its STYLE
#: comes with every status line), else JupyterLab's variables
STATE_CSS = {
    "pending": css("muted", "var(--jp-ui-font-color3, #9e9e9e)"),
    "running": css("running", "var(--jp-brand-color1, #1e88e5)"),
    "retrying": css("retrying", "var(--jp-warn-color1, #fb8c00)"),
    "succeeded": css("succeeded", "var(--jp-success-color1, #43a047)"),
    "failed": css("failed", "var(--jp-error-color1, #e53935)"),
    "skipped": css("muted", "var(--jp-ui-font-color3, #9e9e9e)"),
    "cancelled": css("muted", "var(--jp-ui-font-color2, #616161)"),
    "replaced": css("replaced", "var(--jp-error-color2, #ad1457)"),
    "expired": css("muted", "var(--jp-ui-font-color2, #616161)"),
    "waiting": css("waiting", "var(--jp-warn-color0, #f9a825)"),
}
#: rows visible before the table scrolls
TABLE_ROWS = 12
_ROW_EM = 1.9  # line-height 1.5em + 2 x 0.2em padding: every row exactly this high
_FG = "var(--jp-ui-font-color1, #212121)"
_FG2 = css("muted", "var(--jp-ui-font-color2, #616161)")
_BORDER = "var(--jp-border-color2, #e0e0e0)"
_HEAD_BG = "var(--jp-layout-color2, #eeeeee)"
_ZEBRA = "var(--jp-layout-color1, #ffffff)"
_ZEBRA2 = "var(--jp-layout-color2, #f5f5f5)"
_FONT = "var(--jp-ui-font-size1, 13px)"
# text-align:left explicitly: JupyterLab right-aligns the cells of rendered HTML tables (a
# RunResult as a cell's last line), and text read right-aligned is hard to scan
_CELL = (f"padding:0.2em 0.7em;line-height:1.5em;height:1.5em;white-space:nowrap;color:{_FG};"
         "text-align:left;vertical-align:top")
#: errors and notes are shown whole, wrapped at word boundaries, never cut
_WRAP = "white-space:normal;overflow-wrap:normal;word-break:normal;min-width:16em;max-width:40em"


def _fmt_duration(s: float) -> str:
    if s <= 0:
        return ""
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.2f} s"
    return f"{s / 60:.1f} min"


def _short(value: Any, limit: int = 80) -> str:
    """``value`` as one line of at most ``limit`` characters, cut at a word boundary (never in
    the middle of a word: "could not co…" reads as a different word); nothing for no output."""
    if value is None or (isinstance(value, (dict, list, str)) and not value):
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind(","), cut.rfind("\n"))
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,\n") + " …"


def _badge(state: str) -> str:
    color = STATE_CSS.get(state, _FG2)
    return f"<span style='color:{color};font-weight:600'>{html.escape(state)}</span>"


def _detail(r: NodeRow) -> tuple[str, str, bool]:
    """The last column: (text, colour, whole) — the error, the re-delivery or the prompt (whole:
    shown in full, wrapped), or the output (one line, cut at a word)."""
    if r.state in ("failed", "replaced", "retrying") and r.error:
        return r.error, STATE_CSS["failed"], True
    if r.note:
        return r.note, STATE_CSS["retrying"], True
    if r.state == "waiting" and r.prompt:
        return f"waits for an answer: {r.prompt}", STATE_CSS["waiting"], True
    # no output: nothing (events carry a preview, the repr: an empty mapping arrives as "{}")
    if r.output is None or r.output in ("{}", "[]") or (
            isinstance(r.output, (dict, list, str)) and not r.output):
        return "", _FG, False
    full = r.output if isinstance(r.output, str) else json.dumps(r.output, default=str,
                                                                 ensure_ascii=False)
    return full, _FG, False


def table_html(snap: Snapshot, *, max_rows: int = 200, visible_rows: int = TABLE_ROWS) -> str:
    """The per-node table: node, uses, state, visits, attempts, duration, worker, detail."""
    esc = html.escape
    rows = snap.rows
    more = ""
    if len(rows) > max_rows:  # show the interesting ones first
        order = {"running": 0, "retrying": 0, "failed": 1, "replaced": 1}
        rows = tuple(sorted(rows, key=lambda r: order.get(r.state, 2)))[:max_rows]
        more = (f"<div style='color:{_FG2};padding:0.2em 0.7em'>… {len(snap.rows) - max_rows} "
                "more nodes</div>")
    num = f"{_CELL};text-align:right"
    body = []
    for i, r in enumerate(rows):
        detail, colour, whole = _detail(r)
        shown = esc(detail[:2000]) if whole else esc(_short(detail))
        wrap = _WRAP if whole else ""
        visits = str(r.visits or "")
        if r.redeliveries:
            visits += f" <span title='re-delivered {r.redeliveries}x after a lost worker' " \
                      f"style='color:{STATE_CSS['retrying']}'>↻{r.redeliveries}</span>"
        bg = _ZEBRA if i % 2 == 0 else _ZEBRA2
        body.append(
            f"<tr class='flownb-row' data-node='{esc(r.node_id)}' data-state='{esc(r.state)}' "
            f"style='background:{bg}'><td style='{_CELL};font-family:var(--jp-code-font-family,"
            f" monospace)'><code>{esc(r.node_id)}</code></td>"
            f"<td style='{_CELL}'>{esc(r.uses)}</td><td style='{_CELL}'>{_badge(r.state)}</td>"
            f"<td style='{num}'>{visits}</td><td style='{num}'>{r.attempts or ''}</td>"
            f"<td style='{num}'>{esc(_fmt_duration(r.duration_s))}</td>"
            f"<td style='{_CELL}'>{esc(r.worker or '')}</td>"
            f"<td style='{_CELL};color:{colour};{wrap}' title='{esc(detail[:2000])}'>"
            f"{shown}</td></tr>")
    head = "".join(
        f"<th style='{_CELL};position:sticky;top:0;z-index:1;background:{_HEAD_BG};"
        f"text-align:{'right' if h in ('visits', 'attempts', 'duration') else 'left'};"
        f"font-weight:600;border-bottom:1px solid {_BORDER}'>{h}</th>"
        for h in ("node", "uses", "state", "visits", "attempts", "duration", "worker",
                  "output / error"))
    height = f"max-height:{(visible_rows + 1) * _ROW_EM:.1f}em;" if len(rows) > visible_rows else ""
    return (f"<div class='flownb-nodes-box' style='{height}max-width:100%;overflow:auto;"
            f"border:1px solid {_BORDER};"
            f"border-radius:3px;margin:0.4em 0;font-size:{_FONT}'>"
            "<table class='flownb-nodes' style='border-collapse:separate;border-spacing:0;"
            f"width:100%;margin:0'><thead><tr>{head}</tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div>" + more)


def status_html(snap: Snapshot) -> str:
    """One line: run, blueprint, status, done/reachable, elapsed, what runs now. Its
    ``data-state`` attribute is the progress state (the browser test samples it)."""
    esc = html.escape
    run = f"run <code>{esc(snap.run_id)}</code> " if snap.run_id else ""
    bp = f"({esc(snap.blueprint_id)}) " if snap.blueprint_id else ""
    running = snap.running
    now = f" — running: {esc(', '.join(running[:5]))}{'…' if len(running) > 5 else ''}" if running else ""
    state = f"{snap.status}:{snap.done}/{snap.reachable}:{','.join(running)}"
    return (f"{STYLE}<span class='flownb-status' data-run='{esc(snap.run_id or '')}' "
            f"data-state='{esc(state)}' style='color:{_FG}'>{run}{bp}{_badge(snap.status)} "
            f"{snap.done}/{snap.reachable} nodes, {snap.elapsed_s:.2f} s{now}</span>")


def live_html(snap: Snapshot, *, max_events: int = 8) -> str:
    """What is streaming now: each running node's LLM text as it arrives, the LLM usage so far,
    then the last custom events (``ctx.emit``). Empty when there is nothing to show."""
    esc = html.escape
    parts = []
    for r in snap.rows:
        # a finished node's text is its output (the table, the prompt of a wait): shown once,
        # not again as "streaming" while the run waits for an answer
        if r.tokens and (r.state in ("running", "retrying")
                         or (not snap.finished and snap.status != "waiting")):
            text = r.tokens if len(r.tokens) <= 1500 else "…" + r.tokens[-1500:]
            cursor = "▍" if r.state in ("running", "retrying") else ""
            parts.append(
                f"<div class='flownb-tokens' style='margin:0.3em 0'><code>{esc(r.node_id)}</code> "
                f"<span style='color:{_FG2}'>streaming</span><pre style='white-space:pre-wrap;"
                f"margin:0.2em 0;padding:0.3em 0.6em;max-height:8em;overflow:auto;color:{_FG};"
                f"background:{_ZEBRA2};border-left:3px solid {STATE_CSS['running']}'>"
                f"{esc(text)}{cursor}</pre></div>")
    if snap.llm_tokens:
        cost = f", ${snap.llm_cost_usd:.4f}" if snap.llm_cost_usd else ""
        parts.append(f"<div class='flownb-usage' style='color:{_FG2}'>LLM usage: "
                     f"{snap.llm_tokens} tokens{esc(cost)}</div>")
    if snap.custom:
        items = []
        for node, name, data in snap.custom[-max_events:]:
            payload = _short({k: v for k, v in data.items() if k != "name"}, 120)
            items.append(f"<li style='white-space:nowrap;overflow:hidden;text-overflow:ellipsis'>"
                         f"<code>{esc(node or '')}</code> <b>{esc(name)}</b> "
                         f"<span style='color:{_FG2}'>{esc(payload)}</span></li>")
        shown = len(items)
        count = (f"last {shown} of {snap.custom_count}" if snap.custom_count > shown
                 else str(snap.custom_count))
        parts.append(f"<details class='flownb-events' open><summary style='color:{_FG2}'>events "
                     f"({count})</summary><ul style='margin:0.2em 0;"
                     f"padding-left:1.5em;color:{_FG}'>{''.join(items)}</ul></details>")
    return "".join(parts)


def details_html(snap: Snapshot) -> str:
    """The error with its traceback, or the final output(s) once the run succeeded."""
    esc = html.escape
    parts = []
    err = snap.error
    if err:
        where = f" in node <code>{esc(str(err.get('node_id')))}</code>" if err.get("node_id") else ""
        attempt = f" (attempt {err.get('attempt')})" if err.get("attempt") else ""
        parts.append(f"<div style='color:{STATE_CSS['failed']}'>"
                     f"<b>{esc(str(err.get('type', 'Error')))}</b>"
                     f"{where}{attempt}: {esc(str(err.get('message', '')))}</div>")
        tb = err.get("traceback")
        if tb:
            parts.append(f"<details><summary>traceback</summary><pre>{esc(str(tb))}</pre></details>")
    res = snap.result
    if res is not None and res.status == "succeeded" and res.output is not None:
        try:
            text = json.dumps(res.output, indent=2, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(res.output)
        if len(text) > 20_000:
            text = text[:20_000] + "\n…"
        parts.append(f"<div style='color:{_FG}'><b>output</b></div><pre style='max-height:240px;"
                     f"overflow:auto;color:{_FG}'>{esc(text)}</pre>")
    return "".join(parts)


def _blueprint_of(result: RunResult) -> Any:
    """The blueprint behind a result, when its live run knows it (in process: the engine's;
    distributed: the handle's, usually cached) — else None (the table then has no `uses`)."""
    run = result._run
    bp = getattr(getattr(run, "engine", None), "bp", None)
    if bp is None and run is not None and hasattr(type(run), "blueprint"):
        try:
            bp = run.blueprint
        except Exception:  # noqa: BLE001 - a summary must render even when Redis is gone
            bp = None
    return bp


def result_html(result: RunResult) -> str:
    """A static summary of a finished run (``RunResult._repr_html_``)."""
    from .progress import ProgressView

    view = ProgressView(_blueprint_of(result), run_id=result.run_id)  # its nodes' `uses` too
    view.finish(result)
    snap = view.snapshot()
    view.close()
    return (f"<div class='flownb-result'>{status_html(snap)}{table_html(snap)}"
            f"{details_html(snap)}</div>")
