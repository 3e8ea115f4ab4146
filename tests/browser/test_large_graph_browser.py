"""Large graphs as a person sees them (issue 20 #5), in JupyterLab: a finished 30-node run's
widget shows all 30 nodes (no "… 27 nodes" stand-in), a 30-step chain's static drawing fits the
cell (wrapped into rows), a 30-node fan-out scrolls inside its output instead of spilling out of
the cell, no drawing text is below 11 px, and every text is >= 4.5:1 in the light and dark theme."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from . import lab as L
from . import page_checks
from .test_tutorials_browser import _open, _save_and_close, _screenshots, _set_theme, _wait

CELLS = [
    "import flownb\nfrom flownb.notebook import run_with_widget\n"
    "b = flownb.Builder('chain30')\n"
    "for i in range(30):\n    b.node(f's{i}', 'noop')\n"
    "b.chain(*[f's{i}' for i in range(30)])\nchain = b.build()\n"
    "fan = flownb.Blueprint.from_dict({'id': 'fan30', 'nodes': [{'id': 'start', 'uses': 'noop'}]"
    " + [{'id': f'w{i}', 'uses': 'noop'} for i in range(29)],"
    " 'edges': [{'source': 'start', 'target': f'w{i}'} for i in range(29)]})\n"
    "res = run_with_widget(chain, {})",
    "chain",
    "fan",
]

#: per output with a drawing: how many node boxes, stand-ins, and how it sits in the cell
_DRAWINGS_JS = r"""
const out = [];
document.querySelectorAll('.jp-OutputArea-output').forEach(o => {
  const box = o.querySelector('.flownb-graph');
  const svg = box && box.querySelector('svg');
  if (!svg) return;
  const texts = [...svg.querySelectorAll('text')].map(t => t.textContent.trim());
  const ob = o.getBoundingClientRect(), bb = box.getBoundingClientRect();
  out.push({nodes: svg.querySelectorAll('g.node').length,
            standins: texts.filter(t => t.includes('…')),
            overflow: getComputedStyle(box).overflowX,
            inside: bb.right <= ob.right + 1 && o.scrollWidth <= o.clientWidth + 1,
            scrolls: box.scrollWidth > box.clientWidth + 1,
            widget: !!o.querySelector('.flownb-status')});
});
return out;
"""


def test_large_graphs_are_whole_legible_and_inside_the_cell(browser: tuple[L.Lab, Any]) -> None:
    lab, driver = browser
    kernel = getattr(lab, "kernel_name", None) or "python3"
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}},
          "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "id": f"c{i}", "source": src} for i, src in enumerate(CELLS)]}
    (lab.root / "large.ipynb").write_text(json.dumps(nb))
    _open(driver, lab, "large.ipynb")
    _set_theme(driver, L.LIGHT)
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    _wait(lambda: len(driver.execute_script(_DRAWINGS_JS)) == 3 and driver.execute_script(
        "return [...document.querySelectorAll('.flownb-status[data-state]')]"
        ".some(e => e.dataset.state.startsWith('succeeded'));"), 120, "the three drawings")
    with contextlib.suppress(AssertionError):  # the assertions below say what is drawn
        _wait(lambda: driver.execute_script(_DRAWINGS_JS)[0]["nodes"] == 30, 20,
              "the finished widget's whole graph")
    drawings = driver.execute_script(_DRAWINGS_JS)
    small = page_checks.small_drawing_text(driver)
    light = page_checks.low_contrast_text(driver)
    cells = [{"i": i, "rich": True} for i in range(len(CELLS))]
    _screenshots(driver, "large_graphs", "light", cells)
    _set_theme(driver, L.DARK)
    dark = page_checks.low_contrast_text(driver)
    _screenshots(driver, "large_graphs", "dark", cells)
    _set_theme(driver, L.LIGHT)
    kernel_id = driver.execute_script(
        "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id;")
    _save_and_close(driver)
    lab.api("DELETE", f"/api/kernels/{kernel_id}")

    widget, chain, fan = drawings
    assert widget["widget"] and widget["nodes"] == 30 and widget["standins"] == [], widget
    assert chain["nodes"] == 30 and chain["inside"] and not chain["scrolls"], chain  # wrapped
    assert fan["nodes"] == 30 and fan["inside"], fan  # 29 side by side: it scrolls in its box
    assert fan["overflow"] == "auto" and fan["scrolls"], fan
    assert small == [], small
    assert light == [] and dark == [], (light, dark)
