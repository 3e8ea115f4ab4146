"""What a person sees, read from the page's DOM (never from Python): finished run views with a
node still "pending"/"running", table cells whose text is cut (by CSS or mid-word with "…"),
text too small to read in a drawing (< 11 px at 100% zoom), and text whose contrast with what
is behind it is below WCAG's 4.5:1 (3:1 for large text) in the page's current theme."""

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


#: WCAG 2 text contrast (1.4.3): 4.5:1, 3:1 for large text (>= 24 px, or >= 18.66 px bold)
MIN_CONTRAST, MIN_CONTRAST_LARGE = 4.5, 3.0

#: every visible text in the outputs, its colour against what is behind it, both from the
#: page's computed styles: an HTML element's colour over the first opaque background among its
#: ancestors (semi-transparent ones composited on the way), an SVG text's fill over the filled
#: shape drawn under it in its group (a node's box), else over the page behind the drawing
_CONTRAST_JS = r"""
const [minRatio, minLarge] = arguments;
const parse = s => {
  const m = (s || '').match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => {
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]);
};
const lum = c => {
  const ch = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2]);
};
const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
const pageBg = el => {
  const layers = [];
  for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let bg = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  return bg;
};
const hidden = el => { const r = el.getBoundingClientRect(); return !r.width || !r.height; };
const svgBg = t => {
  const r = t.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  for (const s of t.parentElement.querySelectorAll(':scope > path, :scope > polygon, :scope > ellipse, :scope > rect')) {
    const f = parse(getComputedStyle(s).fill);
    if (!f || f[3] === 0) continue;
    const b = s.getBoundingClientRect();
    if (cx >= b.left && cx <= b.right && cy >= b.top && cy <= b.bottom) return over(f, pageBg(t.ownerSVGElement));
  }
  return pageBg(t.ownerSVGElement);
};
const problems = [];
const report = (el, text, fg, bg, scale = 1) => {
  const cs = getComputedStyle(el);
  const px = (parseFloat(cs.fontSize) || 0) * scale;
  const bold = (parseInt(cs.fontWeight) || 400) >= 700;
  const need = (px >= 24 || (bold && px >= 18.66)) ? minLarge : minRatio;
  const r = ratio(fg, bg);
  if (r < need) problems.push(`${r.toFixed(2)}:1 (< ${need}) "${text.slice(0, 40)}" ${cs.color || ''}`.trim());
};
document.querySelectorAll('.jp-OutputArea-output svg text').forEach(t => {
  const text = t.textContent.trim();
  if (!text || hidden(t)) return;
  const fill = parse(getComputedStyle(t).fill);
  if (!fill) return;
  const bg = svgBg(t);
  const svg = t.ownerSVGElement, box = svg.viewBox && svg.viewBox.baseVal;
  const scale = box && box.width ? svg.getBoundingClientRect().width / box.width : 1;
  report(t, text, over(fill, bg), bg, scale);
});
document.querySelectorAll('.jp-OutputArea-output *').forEach(el => {
  if (el.closest('svg') || el.closest(':disabled') || el.closest('[disabled]')) return;
  const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
  if (!own || hidden(el)) return;
  const cs = getComputedStyle(el);
  if (cs.visibility === 'hidden' || parseFloat(cs.opacity) === 0) return;
  const bg = pageBg(el);
  const fg = parse(cs.color);
  if (fg) report(el, own, over(fg, bg), bg);
});
return [...new Set(problems)];
"""


def low_contrast_text(driver: Any) -> list[str]:
    """Texts in the outputs below WCAG's contrast ratio, in the page's current theme."""
    return list(driver.execute_script(_CONTRAST_JS, MIN_CONTRAST, MIN_CONTRAST_LARGE))
