"""The runs browser used as a person uses it, in JupyterLab in headless Chromium (issue 22,
item 3): pick a blueprint in the filter, click a run to open its widget, tick two runs of one
blueprint and press *Compare* — every step asserted from the page itself."""

from __future__ import annotations

import json
from typing import Any

from . import lab as L
from .conftest import SHOTS
from .test_approval_browser import _EXEC_JS
from .test_tutorials_browser import _open, _painted, _save_and_close, _set_theme, _wait

_SETUP = '''
import flownb
reply = flownb.load("""
id: reply
nodes:
  - {id: draft, uses: llm-process, params: {prompt: "Write a short reply to: {{message}}"}}
  - {id: send, uses: passthrough}
edges:
  - {source: draft, target: send}
""")
other = flownb.load({"id": "other", "nodes": [{"id": "only", "uses": "noop"}]})
a = flownb.run(reply, {"message": "Where is my parcel?"})
b = flownb.run(reply, {"message": "I want a refund"})
for _ in range(3):
    flownb.run(other)
'''


def _notebook(kernel: str | None) -> dict[str, Any]:
    cells = [_SETUP, "browser = flownb.runs(page_size=10)\nbrowser"]
    kernel = kernel or "python3"
    meta = {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": meta,
            "cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [],
                       "execution_count": None, "id": f"c{i}"} for i, c in enumerate(cells)]}


def _rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, ".flownb-runs .flownb-run-row")


def _one(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if len(found) == 1 else None


def test_runs_browser_filter_open_and_compare_by_clicks(browser: tuple[L.Lab, Any]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    lab, driver = browser
    (lab.root / "runs.ipynb").write_text(json.dumps(_notebook(getattr(lab, "kernel_name", None))))
    _open(driver, lab, "runs.ipynb")
    _set_theme(driver, L.LIGHT)
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    _wait(lambda: len(_rows(driver)) == 5, 120, "the runs browser with five runs")
    ids = driver.execute_async_script(_EXEC_JS, "print(a.run_id, b.run_id)").split()
    assert len(ids) == 2, ids
    run_a, run_b = ids
    pager = _one(driver, ".flownb-runs-pager")
    assert pager is not None and "5 runs" in pager.text

    # filter: only the blueprint "reply", newest first
    select = driver.find_element(By.CSS_SELECTOR, ".flownb-runs-blueprint select")
    Select(select).select_by_visible_text("reply")
    _wait(lambda: len(_rows(driver)) == 2, 30, "the filter to leave two runs")
    rows = _rows(driver)
    assert [r.find_element(By.CSS_SELECTOR, ".flownb-run-open").text for r in rows] == [run_b, run_a]
    assert all(r.find_element(By.CSS_SELECTOR, ".flownb-run-blueprint").text == "reply"
               for r in rows)
    assert all(r.find_element(By.CSS_SELECTOR, ".flownb-run-status").text == "succeeded"
               for r in rows)
    assert int(rows[0].find_element(By.CSS_SELECTOR, ".flownb-run-tokens").text) > 0

    # click a run: its RunWidget opens below, with the graph
    rows[1].find_element(By.CSS_SELECTOR, ".flownb-run-open").click()
    status = _wait(lambda: _one(driver, ".flownb-runs-detail .flownb-status"), 30,
                   "the opened run's widget")
    assert run_a in status.text and "succeeded" in status.text
    assert driver.find_elements(By.CSS_SELECTOR, ".flownb-runs-detail .flownb-graph svg")

    # tick both runs and compare: the side-by-side diff, differing nodes orange on the graph
    compare = driver.find_element(By.CSS_SELECTOR, "button.flownb-runs-compare")
    assert not compare.is_enabled()
    for r in _rows(driver):
        r.find_element(By.CSS_SELECTOR, ".flownb-run-select input").click()
    _wait(lambda: compare.is_enabled(), 30, "Compare to be enabled by two ticks")
    compare.click()
    summary = _wait(lambda: _one(driver, ".flownb-runs-detail .flownb-diff-summary"), 30,
                    "the diff")
    assert "2 node(s) differ: draft, send" in summary.text
    assert "1 state key(s) differ: message" in summary.text
    differ = driver.find_elements(By.CSS_SELECTOR, ".flownb-diff tr.flownb-differs")
    assert sorted(d.get_attribute("data-key") for d in differ) == ["draft", "message", "send"]
    cells = differ[0].find_elements(By.CSS_SELECTOR, "td")
    assert len(cells) == 3 and cells[1].text != cells[2].text  # side by side, different
    orange = driver.find_elements(By.CSS_SELECTOR, ".flownb-diff-graph svg path[fill='#ffe0b2']")
    assert len(orange) == 2  # both nodes drawn as "differs"
    assert "differs" in driver.find_element(By.CSS_SELECTOR, ".flownb-diff-graph").text

    (SHOTS / "light").mkdir(parents=True, exist_ok=True)
    box = driver.find_element(By.CSS_SELECTOR, ".flownb-runs")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", box)
    _painted(driver)
    box.screenshot(str(SHOTS / "light" / "runs-browser-diff.png"))
    kernel_id = driver.execute_script(
        "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id;")
    _save_and_close(driver)
    lab.api("DELETE", f"/api/kernels/{kernel_id}")
