"""The batch view's heat map as a person sees it, read from the page's DOM: the graph is there
(an SVG, not the "install graphviz" fallback), its nodes say how many runs passed through
(``12/50 ran``), its edges what share took them (``n/N (p%)``), the caption explains the
encoding, and a batch that ended shows no node with runs "running" in it."""

from __future__ import annotations

from typing import Any

_HEAT_JS = r"""
const ENDED = ['succeeded', 'failed', 'cancelled'];
const views = [];
document.querySelectorAll('.jp-OutputArea-output').forEach(out => {
  const heat = out.querySelector('.flownb-heat');
  if (!heat) return;
  const status = ((out.querySelector('.flownb-batch-status span') || {}).textContent || '').trim();
  const texts = [...heat.querySelectorAll('svg text')].map(t => (t.textContent || '').trim());
  const legend = ((out.querySelector('.flownb-heat-legend') || {}).textContent || '').trim();
  views.push({status: status, svg: !!heat.querySelector('svg'), texts: texts, legend: legend,
              edges: heat.querySelectorAll('svg g.edge').length});
});
return views;
"""


def heat_map(driver: Any, *, required: bool) -> list[str]:
    """Problems of every batch heat map on the page (``required``: the page must show one)."""
    import re

    views = driver.execute_script(_HEAT_JS) or []
    problems: list[str] = []
    if required and not views:
        problems.append("no batch heat map on the page (.flownb-heat)")
    for k, v in enumerate(views):
        where = f"batch heat map {k} ({v['status'] or 'no status'})"
        if not v["svg"]:
            problems.append(f"{where}: no drawing")
            continue
        if not any(re.fullmatch(r"\d+/\d+ ran.*", t) for t in v["texts"]):
            problems.append(f"{where}: no node says how many runs passed through it")
        if v["edges"] and not any(re.fullmatch(r"\d+/\d+ \(\d+%\)", t) for t in v["texts"]):
            problems.append(f"{where}: no edge says what share of the runs took it")
        if "heat map of" not in v["legend"] or "red border: failures" not in v["legend"]:
            problems.append(f"{where}: the caption does not explain the encoding: {v['legend']!r}")
        if v["status"] in ("succeeded", "failed", "cancelled"):
            stuck = [t for t in v["texts"] if re.search(r"\b[1-9]\d* running\b", t)]
            if stuck:
                problems.append(f"{where}: runs still 'running' after the batch ended: {stuck[:3]}")
    return problems
