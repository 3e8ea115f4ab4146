"""The run table as a person reads it (issue 20, defects 7-8): text left-aligned (JupyterLab
right-aligns rendered HTML cells unless told), numbers right-aligned, the ``uses`` column filled,
errors and re-delivery notes whole (never "could not co…" or "w…"), nothing for no output."""

from __future__ import annotations

import re

import flownb
from flownb.core.events import Event
from flownb.notebook.panels import _short, table_html
from flownb.notebook.progress import ProgressView

LONG = ("could not connect to the database server at db.example.org port 5432: connection "
        "refused after three attempts, giving up now")


def _cells(html: str, node: str) -> list[tuple[str, str]]:
    row = re.search(rf"<tr class='flownb-row' data-node='{node}'.*?</tr>", html, re.S)
    assert row, html
    return re.findall(r"<td style='([^']*)'[^>]*>(.*?)</td>", row.group(0), re.S)


def test_result_html_aligns_fills_uses_and_never_cuts_the_error() -> None:
    bp = flownb.Blueprint.from_dict({"id": "x", "nodes": [
        {"id": "a", "uses": "noop"},
        {"id": "b", "uses": "fail", "params": {"message": LONG}}],
        "edges": [{"source": "a", "target": "b"}]})
    html = flownb.run(bp, raise_on_error=False)._repr_html_()
    a, b = _cells(html, "a"), _cells(html, "b")
    assert a[1][1] == "noop" and b[1][1] == "fail"  # uses
    for style, _ in a[:3] + a[6:]:
        assert "text-align:left" in style and "text-align:right" not in style
    for style, _ in a[3:6]:
        assert "text-align:right" in style and style.index("text-align:right") > style.index("text-align:left")
    assert a[7][1] == ""  # no "{}" / "null" for a node with no output
    view = ProgressView(bp, max_rate_hz=0)  # live: events carry a preview ("{}" for {})
    view.feed(Event("node_succeeded", "r", "a", data={"visit": 1, "output": "{}"}))
    assert "<td" in table_html(view.snapshot()) and ">{}</td>" not in table_html(view.snapshot())
    assert LONG in b[7][1] and "white-space:normal" in b[7][0]  # whole, wrapped at words


def test_redelivery_note_names_the_worker_in_full() -> None:
    bp = flownb.Blueprint.from_dict({"id": "y", "nodes": [{"id": "slow", "uses": "noop"}]})
    view = ProgressView(bp, max_rate_hz=0)
    old, new = "worker-of-slot-1-on-host-alpha-1234", "worker-of-slot-2-on-host-beta-5678"
    view.feed(Event("node_started", "r1", "slow", data={"visit": 1, "worker": old}))
    view.feed(Event("node_started", "r1", "slow", data={"visit": 1, "delivery": 2, "worker": new}))
    text = table_html(view.snapshot())
    assert f"re-delivered to {new}: worker {old} lost (lease expired)" in text


def test_short_cuts_at_a_word() -> None:
    out = _short("alpha beta gamma delta epsilon zeta eta theta", 30)
    assert out.endswith(" …") and out[:-2] in "alpha beta gamma delta epsilon zeta eta theta"
    assert out[:-2].split()[-1] in {"alpha", "beta", "gamma", "delta", "epsilon"}
    assert _short({}) == _short(None) == _short("") == ""


def test_one_table_style_for_batch_latency_and_timeline() -> None:
    from flownb.notebook.batch_view import _money, nodes_html
    from flownb.notebook.tables import duration

    assert duration(1.6146) == "1.61 s" and duration(0.3104) == "310 ms" and duration(150) == "2.5 min"
    assert _money(0.0) == "—" and _money(None) == "cost unknown" and _money(0.5) == "$0.5000"
    slow = flownb.Blueprint.from_dict({"id": "s", "nodes": [
        {"id": "fetch", "uses": "sleep", "params": {"seconds": 1.05}}]})
    batch = flownb.run_many(slow, [{}, {}])  # a real batch: ~1.05 s per run
    assert batch.wait(30)
    snap = batch.snapshot()
    html = nodes_html(snap)
    heads = re.findall(r"<th style='([^']*)'>([^<]*)</th>", html)
    assert [h for _, h in heads] == ["node", "runs", "failed", "mean", "median", "max"]
    assert all("white-space:nowrap" in s and "padding" in s for s, _ in heads)  # never "runs failed"
    cells = re.findall(r"<td style='([^']*)'>(.*?)</td>", html)
    assert re.fullmatch(r"1\.\d\d s", cells[3][1]) and "text-align:right" in cells[3][0]
    assert "text-align:left" in cells[0][0]

    bp = flownb.Blueprint.from_dict({"id": "t", "nodes": [{"id": "a", "uses": "noop"}]})
    from flownb.notebook.timeline import timeline

    tl = timeline(flownb.run(bp, {"x": 1}, history=True))._repr_html_()
    tcells = re.findall(r"<td style='([^']*)'>", tl)
    assert tcells and all("white-space:nowrap" in s for s in tcells)
    assert "<code style='white-space:nowrap'>" in tl  # JupyterLab's code style would wrap it
    assert "text-align:left" in tcells[2] and "text-align:right" in tcells[0]


def test_waiting_run_shows_the_draft_once_and_counts_events_honestly() -> None:
    from flownb.notebook.panels import live_html

    bp = flownb.Blueprint.from_dict({"id": "w", "nodes": [{"id": "draft", "uses": "noop"},
                                                         {"id": "ask", "uses": "wait"}],
                                     "edges": [{"source": "draft", "target": "ask"}]})
    view = ProgressView(bp, max_rate_hz=0)
    res = flownb.run(bp, on_event=view.feed)
    view.feed(Event("custom", res.run_id, "draft", data={"name": "llm_token", "text": "Hello"}))
    for i in range(10):
        view.feed(Event("custom", res.run_id, "draft", data={"name": "note", "i": i}))
    view.finish(res)
    assert res.status == "waiting"
    live = live_html(view.snapshot())
    assert "streaming" not in live  # the draft is the node's output, not shown again
    assert "events (last 8 of 10)" in live
