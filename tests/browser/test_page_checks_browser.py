"""The page checks can fail: shown a finished run view with a node still "pending", a cell
clipped by CSS and one cut mid-word, drawing text at 5 px and text below 4.5:1 (on the page and
on a drawing's box), they report each — and not the readable text beside them (so a regression of issue 20's defects 2,
7 and 8 fails the tutorial test, which runs the same checks on every tutorial's page)."""

from __future__ import annotations

import json
import time
from typing import Any

from . import lab as L
from . import page_checks
from .test_tutorials_browser import _open, _save_and_close, _wait

BAD = (
    "<div><span class='flownb-status' data-run='r1' data-state='cancelled:4/20:'>run r1 cancelled</span>"
    "<table class='flownb-nodes'><tbody>"
    "<tr class='flownb-row' data-node='step5' data-state='pending'><td>step5</td><td>pending</td></tr>"
    "<tr class='flownb-row' data-node='step0' data-state='succeeded'><td>step0</td>"
    "<td><div style='max-width:4em;overflow:hidden;white-space:nowrap;text-overflow:ellipsis'>"
    "a long output that is clipped by the box</div></td></tr>"
    "<tr class='flownb-row' data-node='step1' data-state='failed'><td>step1</td>"
    "<td>could not co…</td></tr></tbody></table></div>"
    # a drawing shrunk to half its size: its 10-unit text shows at 5 px; a box whose white text
    # on a pale fill is unreadable, one whose dark text is fine; pale text on the page
    "<div style='width:200px'><svg width='400' viewBox='0 0 400 100' style='width:200px'>"
    "<text x='5' y='20' font-size='10' fill='#212121'>tiny label</text>"
    "<g><path fill='#c8e6c9' d='M100,30 L300,30 L300,90 L100,90 Z'/>"
    "<text x='110' y='70' font-size='30' fill='#ffffff'>pale box</text></g>"
    "<g><path fill='#c8e6c9' d='M0,30 L95,30 L95,90 L0,90 Z'/>"
    "<text x='5' y='70' font-size='30' fill='#212121'>ok box</text></g></svg></div>"
    "<p><span style='color:#aaaaaa'>pale words</span> <span style='color:#212121'>dark words</span></p>")


def test_page_checks_report_what_they_look_for(browser: tuple[L.Lab, Any]) -> None:
    lab, driver = browser
    kernel = getattr(lab, "kernel_name", None) or "python3"
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}},
          "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "id": "c0", "source": "from IPython.display import HTML\nHTML(" + json.dumps(BAD) + ")"}]}
    (lab.root / "checks.ipynb").write_text(json.dumps(nb))
    _open(driver, lab, "checks.ipynb")
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    _wait(lambda: driver.execute_script("return !!document.querySelector('tr.flownb-row');"), 60,
          "the HTML output")
    time.sleep(0.3)
    unfinished = page_checks.unfinished_nodes(driver)
    cut = page_checks.cut_cells(driver)
    small = page_checks.small_drawing_text(driver)
    pale = page_checks.low_contrast_text(driver)
    kernel_id = driver.execute_script(
        "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id;")
    _save_and_close(driver)
    lab.api("DELETE", f"/api/kernels/{kernel_id}")
    assert unfinished == ['run r1: table row step5 is "pending" after the run ended'], unfinished
    assert any("clipped by CSS" in c and "a long output" in c for c in cut), cut
    assert any("cut mid-word" in c and "could not co…" in c for c in cut), cut
    assert [t for t in small if "tiny label" in t] == ['5.0 px: "tiny label"'], small
    assert not any("ok box" in t or "pale box" in t for t in small), small  # 15 px
    assert any('"pale words"' in t and "rgb(170, 170, 170)" in t for t in pale), pale
    assert any('"pale box"' in t for t in pale), pale  # white on the pale green fill
    assert not any("dark words" in t or "ok box" in t for t in pale), pale
