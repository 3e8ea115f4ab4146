"""The approval form answered as a person does it, in JupyterLab in headless Chromium: a real
click for a choice; typing into the prefilled edit box and clicking "edit"; typing into a
``schema`` form's fields, seeing the inline error, fixing it and sending (issue 20, defect 3).

The forms live in a small notebook written for this test (the tutorials answer their form from
code so they run unattended); what the run did with each answer is then asked of the kernel.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import lab as L
from .conftest import SHOTS
from .test_tutorials_browser import _open, _painted, _save_and_close, _set_theme, _wait

EDITED = "We are sorry: a replacement ships today."

_SETUP = '''
import flownb
from flownb.notebook.approval import approval_form

bp = flownb.load({"id": "review", "nodes": [
    {"id": "draft", "uses": "output", "params": {"template": "Dear customer, sorry.", "key": "reply"}},
    {"id": "review", "uses": "approval", "params": {"prompt": "Send this reply?"}},
    {"id": "use_edit", "uses": "output", "params": {"template": "{{review.text}}", "key": "reply"}},
    {"id": "send", "uses": "output", "params": {"template": "SENT: {{reply}}"}},
    {"id": "escalate", "uses": "output", "params": {"template": "ESCALATED"}}],
  "edges": [{"source": "draft", "target": "review"},
            {"source": "review", "target": "send", "action": "approve"},
            {"source": "review", "target": "use_edit", "action": "edit"},
            {"source": "use_edit", "target": "send"},
            {"source": "review", "target": "escalate", "action": "reject"}]})
rate = flownb.load({"id": "rate", "nodes": [{"id": "ask", "uses": "wait", "params": {
    "prompt": "Rate the reply", "schema": {"type": "object", "required": ["score"], "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 10}, "ship": {"type": "boolean"}}}}}]})
'''


def _notebook(kernel: str | None) -> dict[str, Any]:
    cells = [_SETUP, "edit_form = approval_form(flownb.run(bp))\nedit_form",
             "rate_form = approval_form(flownb.run(rate))\nrate_form",
             "choice_form = approval_form(flownb.run(bp))\nchoice_form"]
    kernel = kernel or "python3"  # no kernelspec: JupyterLab would ask which kernel
    meta = {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": meta,
            "cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [],
                       "execution_count": None, "id": f"c{i}"} for i, c in enumerate(cells)]}


_EXEC_JS = r"""
const done = arguments[arguments.length - 1];
const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
const f = k.requestExecute({code: arguments[0]});
let out = '';
f.onIOPub = m => {
  const t = m.header.msg_type;
  if (t === 'stream') out += m.content.text;
  if (t === 'error') out += 'ERROR ' + m.content.ename + ': ' + m.content.evalue;
};
f.done.then(() => done(out), e => done('ERROR ' + e));
"""


def _forms(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, ".flownb-approval")


def _status(form: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(form.find_element(By.CSS_SELECTOR, ".flownb-approval-status").text)


def _type(el: Any, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    el.click()
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(text)


def _button(form: Any, label: str) -> Any:
    from selenium.webdriver.common.by import By

    for b in form.find_elements(By.CSS_SELECTOR, "button"):
        if b.text.strip() == label:
            return b
    raise AssertionError(f"no button {label!r} in the form")


def test_approval_forms_answered_by_click_and_typing(browser: tuple[L.Lab, Any]) -> None:
    from selenium.webdriver.common.by import By

    lab, driver = browser
    (lab.root / "approval.ipynb").write_text(json.dumps(_notebook(getattr(lab, "kernel_name", None))))
    _open(driver, lab, "approval.ipynb")
    _set_theme(driver, L.LIGHT)
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    forms = _wait(lambda: (len(_forms(driver)) == 3 and _forms(driver)), 120, "three approval forms")
    edit_form, rate_form, choice_form = forms
    (SHOTS / "light").mkdir(parents=True, exist_ok=True)
    for i, form in enumerate(forms):  # as a person first sees them
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", form)
        _painted(driver)
        form.screenshot(str(SHOTS / "light" / f"approval-form{i}-before.png"))

    # the edit box is there, prefilled with the draft; type the new text and click "edit"
    box = edit_form.find_element(By.CSS_SELECTOR, ".flownb-approval-edit textarea")
    assert box.get_attribute("value") == "Dear customer, sorry."
    _type(box, EDITED)
    time.sleep(0.3)  # the widget syncs the typed text on input events
    _button(edit_form, "edit").click()
    _wait(lambda: "answered" in _status(edit_form), 30, "the edit answer")
    assert "succeeded" in _status(edit_form), _status(edit_form)

    # the schema form: a wrong score shows its error inline, before anything is sent
    score = rate_form.find_element(By.CSS_SELECTOR, ".flownb-field-score input")
    _type(score, "11")
    _wait(lambda: "score must be <= 10" in rate_form.text, 30, "the inline error")
    _button(rate_form, "Send").click()
    _wait(lambda: "fix the fields" in _status(rate_form), 30, "the refused send")
    _type(score, "7")
    _wait(lambda: "score must be" not in rate_form.text, 30, "the error to clear")
    rate_form.find_element(By.CSS_SELECTOR, ".flownb-field-ship input").click()
    time.sleep(0.3)
    _button(rate_form, "Send").click()
    _wait(lambda: "answered" in _status(rate_form), 30, "the schema answer")

    # a plain choice: one click
    _button(choice_form, "approve").click()
    _wait(lambda: "answered" in _status(choice_form), 30, "the approve answer")

    out = driver.execute_async_script(_EXEC_JS, (
        "print(edit_form.result.outputs['send'])\n"
        "print(rate_form.result.outputs['ask'])\n"
        "print(choice_form.result.outputs['send'])"))
    assert out.splitlines() == [f"SENT: {EDITED}", "{'score': 7, 'ship': True}",
                                "SENT: Dear customer, sorry."], out

    for theme, sub in ((L.LIGHT, "light"), (L.DARK, "dark")):
        _set_theme(driver, theme)
        (SHOTS / sub).mkdir(parents=True, exist_ok=True)
        for i, form in enumerate(_forms(driver)):
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", form)
            _painted(driver)
            form.screenshot(str(SHOTS / sub / f"approval-form{i}.png"))
    _set_theme(driver, L.LIGHT)
    kernel_id = driver.execute_script(
        "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id;")
    _save_and_close(driver)
    lab.api("DELETE", f"/api/kernels/{kernel_id}")
