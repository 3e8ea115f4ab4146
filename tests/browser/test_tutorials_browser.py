"""Every tutorial, run in a real JupyterLab in headless Chromium, as a user would see it.

For each ``notebooks/*.ipynb`` (a copy, in a temporary directory) the test opens the notebook,
runs every cell with JupyterLab's "Run All" command and fails on: an error output, a traceback
or a worker-death line on stderr, a widget that does not render ("Error displaying widget", or
"Loading widget…" that never resolves), a graph that did not load (a broken image, an empty
SVG, the "install graphviz" fallback), a cell that never finishes, and a process of the kernel
(workers, Redis) still alive after the kernel shut down, a finished run view (widget table or
drawing, read from the page's DOM) with a node still pending/running, and a table cell whose
text is clipped or cut mid-word, text in a drawing below 11 px, and text whose contrast with what
is behind it is below 4.5:1 (WCAG; computed from the page's styles) in the light or the dark
theme. The kernel is a built wheel installed with ``[all]`` in a fresh
venv (conftest.py, wheel_env.py), and the copies sit in a folder that is not the checkout. While the cells run it samples the
live run widgets' state (``.flownb-status[data-state]``) and, for the tutorials that teach the
live view, requires at least three distinct progress states. It saves a screenshot of every
cell with a rich output (a drawing, a widget, HTML - not plain text) in the light and in the
dark theme under ``build/screenshots/``.

Lean on a loaded machine without losing coverage: one JupyterLab server and one page for all
tutorials (the next one is opened with the "Open" command, not a page reload), a cheap poll
while cells run (prompts and live states; the outputs are read once at the end), the kernel's
process tree read from the kernel process instead of scanning every process, and waits on a
condition (theme applied, frame painted, document saved) instead of fixed sleeps.

Skipped, with one line saying why, where there is no Chromium/chromedriver/selenium/jupyterlab
(``make test-browser`` installs them when it can).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from . import lab as L
from . import page_checks
from .heat_checks import heat_map

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ROOT / "build" / "screenshots"
#: tutorials whose widget must be seen moving (>= 3 distinct progress states)
LIVE = {"03_distributed.ipynb"}
#: tutorials whose batch view must show the graph as a heat map
HEAT = {"06_evaluate_dataset.ipynb"}
CELL_TIMEOUT_S = 150.0
WIDGET_SETTLE_S = 20.0

pytestmark = pytest.mark.skipif(L.missing() is not None, reason=f"browser test: {L.missing()}")

#: polled while the cells run: cheap (no output is serialized)
_PROGRESS_JS = r"""
const app = window.jupyterapp;
const nb = app && app.shell.currentWidget;
if (!nb || !nb.content || !nb.content.widgets) return null;
const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
const prompts = [], counts = [];
let errors = 0;
nb.content.widgets.forEach(c => {
  if (c.model.type !== 'code') return;
  prompts.push(((c.node.querySelector('.jp-InputPrompt') || {}).textContent || '').trim());
  counts.push(c.model.executionCount);
  const outs = c.model.outputs;
  for (let j = 0; j < outs.length; j++) if (outs.get(j).type === 'error') errors++;
});
const live = [];
document.querySelectorAll('.flownb-status[data-state]').forEach(el => {
  live.push([el.dataset.run || '', el.dataset.state]);
});
return {kernel: kernel ? kernel.status : 'none', prompts: prompts, counts: counts,
        errors: errors, live: live};
"""

#: read once the cells finished: errors, stderr and which cells have a rich output
_STATE_JS = r"""
const app = window.jupyterapp;
const nb = app && app.shell.currentWidget;
if (!nb || !nb.content || !nb.content.widgets) return null;
const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
const cells = [];
nb.content.widgets.forEach((c, i) => {
  if (c.model.type !== 'code') return;
  const prompt = (c.node.querySelector('.jp-InputPrompt') || {}).textContent || '';
  const outs = c.model.outputs.toJSON();
  cells.push({i: i, prompt: prompt.trim(), count: c.model.executionCount,
              errors: outs.filter(o => o.output_type === 'error')
                          .map(o => o.ename + ': ' + o.evalue),
              stderr: outs.filter(o => o.output_type === 'stream' && o.name === 'stderr')
                          .map(o => Array.isArray(o.text) ? o.text.join('') : o.text).join(''),
              rich: outs.some(o => o.data && Object.keys(o.data).some(m => m !== 'text/plain'))});
});
const live = [];
document.querySelectorAll('.flownb-status[data-state]').forEach(el => {
  live.push([el.dataset.run || '', el.dataset.state]);
});
return {kernel: kernel ? kernel.status : 'none', kernel_id: kernel ? kernel.id : null,
        cells: cells, live: live};
"""

_PAGE_PROBLEMS_JS = r"""
const text = document.body.innerText;
const problems = [];
if (text.includes('Error displaying widget')) problems.push('Error displaying widget');
if (text.includes('Loading widget')) problems.push('Loading widget… never resolved');
if (text.includes('install graphviz for a drawing')) problems.push('graph fell back to text');
if (text.includes('(no drawing:')) problems.push('graph drawing failed');
document.querySelectorAll('.jp-OutputArea-output img').forEach(img => {
  if (!img.complete || img.naturalWidth === 0) problems.push('an image did not load');
});
document.querySelectorAll('.flownb-graph').forEach(g => {
  const svg = g.querySelector('svg');
  if (!svg) { problems.push('a widget graph has no SVG'); return; }
  const r = svg.getBoundingClientRect();
  if (r.width < 10 || r.height < 10) problems.push('a widget graph SVG is empty');
});
return problems;
"""


def _wait(fn: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _kernel_process(kernel_id: str) -> Any:
    """The kernel's process (found once; its descendants are then read from it)."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "ipykernel" in cmd and kernel_id in cmd:
            return p
    return None


def _descendants(proc: Any) -> set[Any]:
    """Workers, the embedded Redis and watchdogs the kernel started so far."""
    import psutil

    try:
        return set(proc.children(recursive=True))
    except psutil.Error:
        return set()


def _alive(procs: set[Any]) -> list[str]:
    import psutil

    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return left


#: resolves after the browser painted twice (layout and style changes are on screen)
_PAINTED_JS = "const done = arguments[arguments.length - 1];" \
              "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));"


def _painted(driver: Any) -> None:
    driver.execute_async_script(_PAINTED_JS)


def _set_theme(driver: Any, theme: str) -> None:
    driver.execute_script("window.jupyterapp.commands.execute('apputils:change-theme', "
                          "{theme: arguments[0]});", theme)
    light = "true" if theme == L.LIGHT else "false"
    # the theme's CSS is in when the body says so *and* its variables have the theme's values
    _wait(lambda: driver.execute_script(
        "const b = document.body; if (b.dataset.jpThemeLight !== arguments[0]) return false;"
        "const bg = getComputedStyle(b).getPropertyValue('--jp-layout-color0').trim();"
        "const dark = bg && parseInt((bg.match(/[0-9a-f]{2}/i) || ['ff'])[0], 16) < 128;"
        "return arguments[0] === 'true' ? !dark : dark;", light), 30, f"theme {theme}")
    _painted(driver)


def _screenshots(driver: Any, stem: str, theme_dir: str, cells: list[dict[str, Any]]) -> list[Path]:
    out_dir = SHOTS / theme_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for c in cells:
        if not c["rich"]:
            continue
        el = driver.execute_script(
            "const n = window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]].node;"
            "n.scrollIntoView({block: 'start'}); return n;", c["i"])
        _painted(driver)
        path = out_dir / f"{stem}-cell{c['i']:02d}.png"
        el.screenshot(str(path))
        saved.append(path)
    driver.execute_script("window.jupyterapp.shell.currentWidget.content.node.scrollTop = 0;")
    _painted(driver)
    top = out_dir / f"{stem}-page.png"
    driver.save_screenshot(str(top))
    saved.append(top)
    return saved


_OPENED_JS = (
    "const a = window.jupyterapp; const w = a && a.shell.currentWidget;"
    "const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    "return !!(w && w.context && w.context.path === arguments[0] && k && "
    "k.connectionStatus === 'connected' && k.status === 'idle' && w.content.widgets.length);")


def _open(driver: Any, lab: L.Lab, notebook: str) -> None:
    """Open ``notebook`` in the running page (the "Open" command); load the page the first
    time, or when the command did not open it."""
    in_app = driver.execute_script("return !!window.jupyterapp;") if driver.current_url.startswith(
        lab.base) else False
    if in_app:
        driver.execute_script("window.jupyterapp.commands.execute('docmanager:open', "
                              "{path: arguments[0]});", notebook)
        try:
            _wait(lambda: driver.execute_script(_OPENED_JS, notebook), 60,
                  f"{notebook} to open with an idle kernel", 0.3)
            return
        except AssertionError:
            pass  # fall back to loading the page
    driver.get(lab.url(notebook))
    _wait(lambda: driver.execute_script(_OPENED_JS, notebook), 90,
          f"{notebook} to open with an idle kernel", 0.3)


def _save_and_close(driver: Any) -> None:
    """Save the notebook (its outputs are then on disk for a look) and close its tab without a
    dialog; the kernel is shut down through the REST API afterwards."""
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const w = window.jupyterapp.shell.currentWidget;"
        "w.context.save().then(() => { w.dispose(); done(true); }, "
        "e => { w.dispose(); done(String(e)); });")


@pytest.mark.parametrize("notebook", [p.name for p in NOTEBOOKS])
def test_tutorial_runs_cleanly_in_jupyterlab(browser: tuple[L.Lab, Any], notebook: str) -> None:
    lab, driver = browser
    _open(driver, lab, f"notebooks/{notebook}")
    _set_theme(driver, L.LIGHT)
    kernel_id = driver.execute_script(_STATE_JS)["kernel_id"]
    kernel_proc = _kernel_process(kernel_id)
    assert kernel_proc is not None, f"cannot find the kernel process of {kernel_id}"
    procs = _descendants(kernel_proc)
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")

    live: dict[str, set[str]] = {}
    started = time.monotonic()
    last_change = last_tree = started
    last_sig = None
    while True:
        state = driver.execute_script(_PROGRESS_JS)
        for run_id, st in state["live"]:
            live.setdefault(run_id, set()).add(st)
        now = time.monotonic()
        if now - last_tree > 0.5:  # processes that live shorter than this are not ours to leak
            procs |= _descendants(kernel_proc)
            last_tree = now
        busy = [i for i, p in enumerate(state["prompts"]) if "*" in p]
        sig = (state["kernel"], tuple(state["prompts"]))
        if sig != last_sig:
            last_sig, last_change = sig, now
        if state["errors"]:
            break
        if not busy and state["kernel"] == "idle" and now - last_change > 1.0 \
                and all(c is not None for c in state["counts"]):
            break
        if busy and now - last_change > CELL_TIMEOUT_S:
            pytest.fail(f"{notebook}: code cell {busy[0]} did not finish within "
                        f"{CELL_TIMEOUT_S:.0f}s")
        if now - started > 4 * CELL_TIMEOUT_S:
            pytest.fail(f"{notebook}: run-all did not end (prompts {state['prompts']})")
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    procs |= _descendants(kernel_proc)
    state = driver.execute_script(_STATE_JS)
    cells = state["cells"]
    errors = [(c["i"], e) for c in cells for e in c["errors"]]

    problems = [f"cell {i}: {e}" for i, e in errors]
    problems += [f"cell {c['i']} never ran" for c in cells if c["count"] is None and not errors]
    for c in cells:
        err = c["stderr"]
        if "Traceback" in err or "worker of slot" in err or "died" in err:
            problems.append(f"cell {c['i']} stderr: {err.strip()[:300]}")
    # widgets render asynchronously: give "Loading widget…" time to resolve before judging
    page: list[str] = []
    deadline = time.monotonic() + WIDGET_SETTLE_S
    while time.monotonic() < deadline:
        page = driver.execute_script(_PAGE_PROBLEMS_JS)
        if not page:
            break
        time.sleep(0.25)
    problems += page
    # what the page shows, read from the DOM: no finished run view with a node still pending or
    # running (the widget, the table and the drawing), no table cell cut (CSS or mid-word "…")
    problems += page_checks.unfinished_nodes(driver)
    problems += page_checks.cut_cells(driver)
    # no text in a drawing below 11 px at 100% zoom; text contrast >= 4.5:1 in both themes
    small_text = page_checks.small_drawing_text(driver)
    problems += [f"drawing text below {page_checks.MIN_DRAWING_PX} px: {t}" for t in small_text]
    problems += [f"light theme contrast {t}" for t in page_checks.low_contrast_text(driver)]
    problems += heat_map(driver, required=notebook in HEAT)  # the batch view's heat map
    if notebook in LIVE:
        most = max((len(s) for s in live.values()), default=0)
        if most < 3:
            problems.append(f"the live view did not move: distinct states per run {live}")

    stem = Path(notebook).stem
    shots = _screenshots(driver, stem, "light", cells)
    _set_theme(driver, L.DARK)
    problems += [f"dark theme contrast {t}" for t in page_checks.low_contrast_text(driver)]
    shots += _screenshots(driver, stem, "dark", cells)
    _set_theme(driver, L.LIGHT)
    _save_and_close(driver)

    lab.api("DELETE", f"/api/kernels/{kernel_id}")
    procs.add(kernel_proc)
    left: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = _alive(procs)
        if not left:
            break
        time.sleep(0.25)
    if left:
        problems.append(f"processes left after the kernel shut down: {left}")

    report = SHOTS / "report.json"
    data = json.loads(report.read_text()) if report.exists() else {}
    data[notebook] = {"seconds": round(elapsed, 1), "problems": problems,
                      "live_states": {k: sorted(v) for k, v in live.items()},
                      "drawing_text_below_11px": small_text[:20],
                      "screenshots": [str(p.relative_to(ROOT)) for p in shots]}
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(data, indent=2))
    assert not problems, f"{notebook}:\n" + "\n".join(problems)


def test_screenshot_folder_is_git_ignored() -> None:
    ignore = (ROOT / ".gitignore").read_text().split()
    assert "build/" in ignore, "build/screenshots must not be committed"
    assert os.path.relpath(SHOTS, ROOT).startswith("build")
