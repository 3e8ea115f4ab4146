"""What a person sees, read from the page's DOM (never from Python): finished run views with a
node still "pending"/"running", table cells whose text is cut (by CSS or mid-word with "…"),
and text too small to read in a drawing."""

from __future__ import annotations

from typing import Any

#: run states of a view that has ended (the status line's data-state starts with one)
_FINISHED_JS = r"""
const ENDED = ['succeeded', 'failed', 'cancelled'];
const UNFINISHED = ['pending', 'running', 'retrying', 'waiting'];
const problems = [];
const XLINK = 'http://www.w3.org/1999/xlink';
document.querySelectorAll('.jp-OutputArea-output').forEach((out, k) => {
  const runs = [...out.querySelectorAll('.flownb-status[data-state]')];
  if (!runs.length) return;
  const ended = runs.every(el => ENDED.includes((el.dataset.state || '').split(':')[0]));
  if (!ended) return;
  const where = (runs[0].dataset.run || '?');
  out.querySelectorAll('tr.flownb-row[data-state]').forEach(tr => {
    if (UNFINISHED.includes(tr.dataset.state))
      problems.push(`run ${where}: table row ${tr.dataset.node} is "${tr.dataset.state}" after the run ended`);
  });
  out.querySelectorAll('.flownb-graph svg a').forEach(a => {
    const t = a.getAttributeNS(XLINK, 'title') || a.getAttribute('xlink:title') || a.getAttribute('title') || '';
    const m = t.match(/status: (\w+)/);
    if (m && UNFINISHED.includes(m[1]))
      problems.push(`run ${where}: graph node ${t.split('\n')[0]} is drawn "${m[1]}" after the run ended`);
  });
});
return problems;
"""

#: table cells whose text a person cannot read whole: clipped by CSS, or cut mid-word ("co…")
_CUT_JS = r"""
const problems = [];
const seen = new Set();
document.querySelectorAll('.jp-OutputArea-output table td, .jp-OutputArea-output table th').forEach(cell => {
  const text = (cell.innerText || '').trim();
  if (!text) return;
  const nodes = [cell, ...cell.querySelectorAll('*')];
  for (const el of nodes) {
    const cs = getComputedStyle(el);
    const clips = ['hidden', 'clip'].includes(cs.overflowX) || cs.textOverflow === 'ellipsis';
    if (clips && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`cell text clipped by CSS: "${text.slice(0, 60)}"`);
      break;
    }
    if (['break-all', 'break-word'].includes(cs.wordBreak) || cs.overflowWrap === 'anywhere') {
      problems.push(`cell text may wrap mid-word (${cs.wordBreak}/${cs.overflowWrap}): "${text.slice(0, 60)}"`);
      break;
    }
  }
  if (/[A-Za-z0-9]…$/.test(text)) problems.push(`cell text cut mid-word: "${text.slice(-60)}"`);
});
return [...new Set(problems)];
"""

#: text in a drawing smaller than this (CSS px at 100% zoom) is reported
MIN_DRAWING_PX = 11

_SMALL_TEXT_JS = r"""
const min = arguments[0];
const problems = [];
document.querySelectorAll('.jp-OutputArea-output svg text').forEach(t => {
  const r = t.getBoundingClientRect();
  if (!r.width || !t.textContent.trim()) return;
  const fs = parseFloat(getComputedStyle(t).fontSize) || 0;
  const svg = t.ownerSVGElement;
  let scale = 1;
  if (svg && svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width) {
    scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  }
  const px = fs * scale;
  if (px < min) problems.push(`${px.toFixed(1)} px: "${t.textContent.trim().slice(0, 30)}"`);
});
return problems;
"""


def unfinished_nodes(driver: Any) -> list[str]:
    """Nodes shown pending/running in run views whose run has ended."""
    return list(driver.execute_script(_FINISHED_JS))


def cut_cells(driver: Any) -> list[str]:
    return list(driver.execute_script(_CUT_JS))


def small_drawing_text(driver: Any) -> list[str]:
    return list(driver.execute_script(_SMALL_TEXT_JS, MIN_DRAWING_PX))
