"""The notebook layer: the progress model's coalescing, the widget's final state, the magic, and
a real kernel (nbclient) that starts a LocalCluster, shows a run's widget and is shut down."""

from __future__ import annotations

import io
import json
import os
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import flownb
from flownb.core.events import Event
from flownb.notebook import ProgressView, run_with_widget
from flownb.notebook.modules import ModuleWatcher, before_job, write_module

pytestmark = pytest.mark.timeout(90)


@flownb.node("nb-test-inc")
def _inc(ctx: flownb.NodeContext) -> int:
    x = ctx.input if isinstance(ctx.input, int) else int((ctx.input or {}).get("x", 0))
    return x + 1


@flownb.node("nb-test-boom")
def _boom(ctx: flownb.NodeContext) -> None:
    raise ValueError("kaboom in a node")


def chain(uses: str = "nb-test-inc", n: int = 3, bp_id: str = "nb-chain") -> flownb.Blueprint:
    nodes = [{"id": f"n{i}", "uses": uses} for i in range(n)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(n - 1)]
    return flownb.Blueprint.from_dict({"id": bp_id, "nodes": nodes, "edges": edges})


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


# -- the model -------------------------------------------------------------------------------------------

def test_progress_view_coalesces_10000_events_to_at_most_10_updates_per_second() -> None:
    from flownb.notebook.widget import RunWidget

    bp = chain(n=50, bp_id="nb-many")
    view = ProgressView(bp, run_id="r1")
    seen: list[int] = []
    view.subscribe(lambda snap: seen.append(snap.done))
    widget = RunWidget(view)
    t0 = time.monotonic()
    view.feed(Event("run_started", "r1"))
    for i in range(5_000):  # 10,000 node events: every node runs 100 times (a loop)
        node = f"n{i % 50}"
        view.feed(Event("node_started", "r1", node, {"visit": i // 50 + 1, "worker": "w"}))
        view.feed(Event("node_succeeded", "r1", node, {"duration_s": 0.001, "output": i}))
        if i % 250 == 0:
            time.sleep(0.02)  # spread the burst over a few flush intervals
    view.feed(Event("run_finished", "r1"))
    assert view.wait(10)
    wall = time.monotonic() - t0
    assert view.flushes <= 10 * wall + 2, (view.flushes, wall)
    assert widget.updates_sent <= 10 * wall + 2, (widget.updates_sent, wall)
    assert len(seen) >= 2  # it did update along the way, not only at the end
    snap = view.snapshot()
    assert snap.finished and snap.status == "succeeded" and snap.done == 50 == snap.reachable
    assert widget.progress.value == 50 == widget.progress.max
    assert snap.events == 10_002
    assert {r.visits for r in snap.rows} == {100}


def test_progress_view_counts_skipped_and_unused_fallbacks_out_of_reach() -> None:
    bp = flownb.Blueprint.from_dict({"id": "nb-branch", "nodes": [
        {"id": "a", "uses": "nb-test-inc"}, {"id": "b", "uses": "nb-test-inc"},
        {"id": "c", "uses": "nb-test-inc"},
        {"id": "fb", "uses": "nb-test-inc"},
        {"id": "d", "uses": "nb-test-inc", "config": {"fallback": "fb"}}],
        "edges": [{"source": "a", "target": "b", "action": "left"},
                  {"source": "a", "target": "c", "action": "right"},
                  {"source": "b", "target": "d"}]})
    view = ProgressView(bp, run_id="r")
    snap = view.snapshot()
    assert (snap.done, snap.reachable, snap.total) == (0, 4, 5)  # fb only runs as a fallback
    for e in [Event("run_started", "r"), Event("node_started", "r", "a"),
              Event("node_succeeded", "r", "a", {"action": "left"}),
              Event("node_skipped", "r", "c"), Event("node_started", "r", "b", {"worker": "w1"})]:
        view.feed(e)
    snap = view.snapshot()
    assert (snap.done, snap.reachable) == (1, 3)
    assert {r.node_id: r.state for r in snap.rows}["c"] == "skipped"
    assert snap.running == ["b"]
    assert {r.node_id: r.worker for r in snap.rows}["b"] == "w1"
    view.close()


def test_widget_final_state_after_an_in_process_run() -> None:
    from flownb.notebook.widget import RunWidget

    bp = chain()
    view = ProgressView(bp)
    w = RunWidget(view)
    res = flownb.run(bp, {"x": 1}, on_event=view.feed)
    view.finish(res)
    assert w.wait(10) is res
    assert res.output == 4
    assert w.progress.value == 3 == w.progress.max
    assert w.progress.bar_style == "success"
    assert "succeeded" in w.status.value and "3/3" in w.status.value
    for n in ("n0", "n1", "n2"):
        assert f"<code>{n}</code>" in w.table.value
    assert "<pre" in w.details.value and ">4</pre>" in w.details.value
    from flownb.render import to_svg

    if to_svg(bp) is not None:
        assert "<svg" in w.graph.value
    else:
        assert "n0" in w.graph.value
    assert w.updates_sent >= 1
    w.close()


def test_widget_without_dot_shows_the_text_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    import flownb.render
    from flownb.notebook.widget import RunWidget

    monkeypatch.setattr(flownb.render, "to_svg", lambda bp, **kw: None)
    bp = chain()
    view = ProgressView(bp)
    w = RunWidget(view)
    view.finish(flownb.run(bp, {"x": 1}, on_event=view.feed))
    w.wait(10)
    assert w.graph.value.startswith("<pre") and "<svg" not in w.graph.value
    assert "n0" in w.graph.value and "succeeded" in w.graph.value
    w.close()


def test_widget_shows_the_error_and_traceback_of_a_failed_run() -> None:
    from flownb.notebook.widget import RunWidget

    bp = flownb.Blueprint.from_dict({"id": "nb-fail", "nodes": [
        {"id": "a", "uses": "nb-test-inc"}, {"id": "bad", "uses": "nb-test-boom"},
        {"id": "c", "uses": "nb-test-inc"}],
        "edges": [{"source": "a", "target": "bad"}, {"source": "bad", "target": "c"}]})
    view = ProgressView(bp)
    w = RunWidget(view)
    res = flownb.run(bp, {"x": 1}, on_event=view.feed, raise_on_error=False)
    view.finish(res)
    w.wait(10)
    assert res.status == "failed"
    assert w.progress.bar_style == "danger"
    assert "kaboom in a node" in w.details.value and "ValueError" in w.details.value
    assert "traceback" in w.details.value and "_boom" in w.details.value
    states = {r.node_id: r.state for r in view.snapshot().rows}
    assert states["bad"] == "failed" and states["a"] == "succeeded"
    w.close()


def test_run_with_widget_shows_the_failure_then_raises() -> None:
    bp = flownb.Blueprint.from_dict({"id": "nb-fail-bar", "nodes": [
        {"id": "a", "uses": "nb-test-inc"}, {"id": "bad", "uses": "nb-test-boom"}],
        "edges": [{"source": "a", "target": "bad"}]})
    buf = io.StringIO()
    with pytest.raises(flownb.RunFailed) as info:
        run_with_widget(bp, {"x": 1}, file=buf)
    assert info.value.node_id == "bad" and "kaboom in a node" in str(info.value)
    assert "failed" in buf.getvalue()  # the bar was drawn and closed before the raise
    res = run_with_widget(bp, {"x": 1}, file=io.StringIO(), raise_on_error=False)
    assert res.status == "failed"


def test_run_with_widget_outside_a_kernel_draws_a_tqdm_bar() -> None:
    buf = io.StringIO()
    res = run_with_widget(chain(), {"x": 5}, file=buf)
    assert res.output == 8
    assert "3/3" in buf.getvalue()


def test_progress_view_follows_a_distributed_run(redis_url: str) -> None:
    from flownb.notebook import LocalCluster, RunWidget, TqdmProgress, show, widget_for
    from flownb.notebook.frontend import _view_for

    with LocalCluster(1, mode="thread", redis=redis_url, lease_ttl_s=2) as c:
        h = c.submit(chain(), {"x": 1})
        w = RunWidget(_view_for(h)[0])  # what widget_for() builds inside a kernel
        res = w.wait(20)
        assert res is not None and res.output == 4
        assert w.progress.value == 3 == w.progress.max
        assert "nb-chain" in w.status.value or "succeeded" in w.status.value
        # run.widget() in a terminal is the tqdm bar the docs promise, not an ipywidget
        buf = io.StringIO()
        bar = widget_for(h.run_id, redis=redis_url, file=buf)
        assert isinstance(bar, TqdmProgress) and "terminal" in repr(bar)
        assert bar.wait(10) is not None and bar.value == 3 and "3/3" in buf.getvalue()
        assert isinstance(c.submit(chain(), {"x": 0}).widget(), TqdmProgress)
        w2 = RunWidget(_view_for(h.run_id, redis=redis_url)[0])
        assert w2.wait(10) is not None and w2.value == 3
        buf = io.StringIO()
        assert show(c.submit(chain(), {"x": 2}), file=buf).output == 5
        assert "3/3" in buf.getvalue()
        w.close()
        w2.close()


# -- modules and the magic --------------------------------------------------------------------------------

def test_module_watcher_imports_new_and_reloads_changed_modules(tmp_path: Path) -> None:
    name = f"nbw_{uuid.uuid4().hex[:8]}"
    src = "import flownb\n@flownb.node('{n}')\ndef f(ctx):\n    return {v}\n"
    watcher = ModuleWatcher([tmp_path])
    sys.path.insert(0, str(tmp_path))
    try:
        assert watcher.check() == []
        write_module(name, src.format(n=name, v=1), tmp_path)
        assert watcher.check() == [name]
        assert watcher.check() == []  # unchanged: nothing to do
        assert flownb.run(chain(name, n=1)).output == 1
        write_module(name, src.format(n=name, v=2), tmp_path)  # same size, same second
        assert watcher.check() == [name]
        assert flownb.run(chain(name, n=1)).output == 2
        write_module(name, "def broken(:\n", tmp_path)
        assert watcher.check() == []  # logged; the last good version stays
        assert flownb.run(chain(name, n=1)).output == 2
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_before_job_drops_compiled_graphs_when_the_registry_changed() -> None:
    class FakeRuntime:
        def __init__(self) -> None:
            self.registry = flownb.default_registry
            self.graphs = {"k": object()}
            self.runs = {"r": object()}
            self._lock = threading.Lock()

    rt = FakeRuntime()
    before_job(rt)
    assert rt.graphs  # first call: nothing known to have changed
    flownb.default_registry.add("nb-test-reregistered", lambda ctx: 1)
    before_job(rt)
    assert not rt.graphs and not rt.runs


def test_magic_writes_and_reloads_a_node_module() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "flownb.notebook")
    name = f"nbmagic_{uuid.uuid4().hex[:8]}"
    cell = "import flownb\n@flownb.node('{n}')\ndef f(ctx):\n    return '{v}'\n"
    shell.run_cell_magic("flownb_module", f"{name} --quiet", cell.format(n=name, v="one"))
    from flownb.notebook.modules import session_dir

    path = session_dir() / f"{name}.py"
    assert path.read_text() == cell.format(n=name, v="one")
    assert str(session_dir()) in sys.path
    assert shell.user_ns[name].__name__ == name
    assert flownb.run(chain(name, n=1)).output == "one"
    shell.run_cell_magic("flownb_module", f"{name} --quiet", cell.format(n=name, v="two"))
    assert flownb.run(chain(name, n=1)).output == "two"
    with pytest.raises(ValueError):
        shell.run_cell_magic("flownb_module", "not-an-identifier", "x = 1")


def test_importing_the_package_inside_ipython_registers_the_magic() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    import flownb.notebook

    shell = InteractiveShell.instance()
    shell.magics_manager.magics["cell"].pop("flownb_module", None)
    flownb.notebook._auto_register()  # what importing the package does inside IPython
    assert "flownb_module" in shell.magics_manager.magics["cell"]


def test_package_imports_without_ipywidgets() -> None:
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('ipywidgets', 'IPython'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import flownb.notebook as nb
        assert 'ipywidgets' not in sys.modules and 'redis' not in sys.modules
        print(nb.LocalCluster.__name__, nb.show.__name__)
    """)
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "LocalCluster show" in out.stdout


# -- a real kernel ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A kernelspec for *this* interpreter, found through JUPYTER_PATH (nothing installed)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "flownb-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "flownb test", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(root) + (os.pathsep + old if old else "")
    yield "flownb-test"
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


@pytest.mark.parametrize("shutdown", ["graceful", "immediate"])
def test_kernel_starts_a_cluster_shows_a_run_and_leaves_no_worker(kernel_name: str,
                                                                  redis_url: str,
                                                                  tmp_path: Path,
                                                                  shutdown: str) -> None:
    """``immediate`` SIGKILLs the kernel's process group (nbval does that): only the workers'
    parent watchdog can end them then."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "import json, flownb\nfrom flownb.notebook import LocalCluster, show",
        "%load_ext flownb.notebook",
        "%%flownb_module kernel_nodes --quiet\nimport flownb\n\n"
        "@flownb.node('kernel-inc')\ndef inc(ctx):\n"
        "    x = ctx.input if isinstance(ctx.input, int) else ctx.input['x']\n    return x + 1\n",
        f"cluster = LocalCluster(2, mode='process', redis={redis_url!r}, lease_ttl_s=2)\n"
        "print('PIDS', json.dumps(cluster.pids))",
        "bp = flownb.Blueprint.from_dict({'id': 'kernel-chain', 'nodes': [\n"
        "    {'id': f'n{i}', 'uses': 'kernel-inc'} for i in range(3)],\n"
        "    'edges': [{'source': 'n0', 'target': 'n1'}, {'source': 'n1', 'target': 'n2'}]})\n"
        "handle = cluster.submit(bp, {'x': 1})\nw = show(handle)\nw",
        "res = handle.result(timeout=30)\nw.wait(10)\n"
        "assert res.output == 4, res\n"
        "assert w.progress.value == len(bp.nodes) == w.progress.max, (w.progress.value, w.progress.max)\n"
        "assert w.updates_sent >= 1\nprint('WIDGET', w.progress.value, w.updates_sent)",
        "cluster",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=60, shutdown_kernel=shutdown,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # shuts the kernel down at the end (no cluster.close() in the notebook)
    nbformat.write(nb, str(tmp_path / "executed.ipynb"))
    errors = [o for c in nb.cells for o in c.outputs
              if o.output_type == "error" or o.get("name") == "stderr"]
    assert not errors, errors

    def text(cell: Any) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    pids = json.loads(text(nb.cells[3]).split("PIDS", 1)[1].strip().splitlines()[0])
    assert len(pids) == 2
    views = [o for o in nb.cells[4].outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1, nb.cells[4].outputs  # shown once, although also the cell's value
    assert "WIDGET 3" in text(nb.cells[5])
    html = nb.cells[6].outputs[0]["data"]["text/html"]
    assert "LocalCluster" in html and str(pids[0]) in html
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], "worker processes outlived the kernel"


# -- what the view shows (issue 13, 12.3) ------------------------------------------------------------------

@flownb.node("nb-test-streamer")
def _streamer(ctx: flownb.NodeContext) -> str:
    """Streams like an LLM node (``llm_token`` events) and reports progress (``ctx.emit``)."""
    gate = STREAM_GATES[str(ctx.params["gate"])]
    for word in ("Once ", "upon ", "a time"):
        ctx.emit("llm_token", text=word)
    ctx.emit("progress", step=1, of=2)
    gate[0].set()  # the test looks at the view while the node is still running
    gate[1].wait(10)
    return "Once upon a time"


STREAM_GATES: dict[str, tuple[threading.Event, threading.Event]] = {}


def test_widget_shows_streamed_tokens_and_custom_events_while_the_node_runs() -> None:
    from flownb.notebook.panels import live_html
    from flownb.notebook.widget import RunWidget

    gate = STREAM_GATES["g1"] = (threading.Event(), threading.Event())
    bp = flownb.Blueprint.from_dict({"id": "nb-stream", "nodes": [
        {"id": "write", "uses": "nb-test-streamer", "params": {"gate": "g1"}}], "edges": []})
    view = ProgressView(bp)
    w = RunWidget(view)
    done: list[Any] = []
    t = threading.Thread(target=lambda: done.append(flownb.run(bp, on_event=view.feed)))
    t.start()
    try:
        assert gate[0].wait(10)
        snap = view.snapshot()
        row = next(r for r in snap.rows if r.node_id == "write")
        assert row.state == "running" and row.tokens == "Once upon a time"
        assert [(n, name) for n, name, _ in snap.custom] == [("write", "progress")]
        html = live_html(snap)
        assert "Once upon a time▍" in html and "progress" in html and "&quot;of&quot;: 2" in html
        deadline = time.monotonic() + 5
        while "Once upon a time" not in w.live.value and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Once upon a time" in w.live.value  # pushed to the front end while running
    finally:
        gate[1].set()
        t.join(10)
    view.finish(done[0])
    assert w.wait(10).output == "Once upon a time"


def _events(run: str, *spec: tuple[str, str | None, dict[str, Any]]) -> list[Event]:
    return [Event(t, run, n, d, ts=1000.0 + i) for i, (t, n, d) in enumerate(spec)]


def test_resumes_and_re_deliveries_are_not_visits() -> None:
    bp = flownb.Blueprint.from_dict({"id": "nb-vis", "nodes": [
        {"id": "sub", "uses": "noop"}, {"id": "slow", "uses": "noop"}],
        "edges": [{"source": "sub", "target": "slow"}]})
    view = ProgressView(bp, run_id="r")
    for e in _events("r",
                     ("node_started", "sub", {"visit": 1, "delivery": 1, "worker": "w1"}),
                     ("custom", "sub", {"name": "children", "count": 1}),
                     ("node_started", "sub", {"visit": 1, "delivery": 2, "worker": "w1"}),
                     ("node_succeeded", "sub", {"visit": 1, "attempt": 1, "worker": "w1"}),
                     ("node_started", "slow", {"visit": 1, "delivery": 1, "worker": "w1"}),
                     ("node_started", "slow", {"visit": 1, "delivery": 2, "worker": "w2"}),
                     ("node_succeeded", "slow", {"visit": 1, "attempt": 1, "worker": "w2"})):
        view.feed(e)
    rows = {r.node_id: r for r in view.snapshot().rows}
    assert (rows["sub"].visits, rows["sub"].redeliveries, rows["sub"].note) == (1, 0, None)
    assert (rows["slow"].visits, rows["slow"].redeliveries) == (1, 1)
    assert rows["slow"].note == "re-delivered to w2: worker w1 lost (lease expired)"
    assert view.snapshot().custom == ()  # "children" is bookkeeping, not a user event


def test_distributed_subflow_children_are_drawn_with_their_states(redis_url: str) -> None:
    from flownb import examples, render
    from flownb.notebook import LocalCluster
    from flownb.notebook.frontend import _view_for

    mod = examples.load("content_moderation")
    with LocalCluster(1, mode="thread", redis=redis_url, lease_ttl_s=2) as c:
        h = c.submit(mod, examples.inputs("content_moderation", "redact"))
        view, _ = _view_for(h)
        assert view.wait(30)
    states = view.snapshot().states
    assert states["redact"] == "succeeded" and states["ban"] == "skipped"
    # the child run's own stream was followed: its nodes are under "<subflow node>/<child>"
    assert states["redact/redact_text"] == "succeeded" == states["redact/log_redaction"]
    rows = {r.node_id: r for r in view.snapshot().rows}
    assert rows["redact"].visits == 1 and rows["redact"].redeliveries == 0
    dot = render.to_dot(mod, states=states)
    # a skipped subflow's children are drawn skipped, never "pending" after the run
    ban_user = next(ln for ln in dot.splitlines() if '"ban_user\\n' in ln)
    assert "skipped" in ban_user and "pending" not in dot.split("subflow moderation-ban")[1].split("}")[0]


# -- a run waiting for a person (flownb.engine.waiting) ----------------------------------------------------------

def approval_chain() -> flownb.Blueprint:
    return flownb.load({"id": "nb-approve", "nodes": [
        {"id": "draft", "uses": "passthrough"},
        {"id": "review", "uses": "approval", "params": {"prompt": "Send the draft?"}},
        {"id": "send", "uses": "passthrough"}, {"id": "drop", "uses": "passthrough"}],
        "edges": [{"source": "draft", "target": "review"},
                  {"source": "review", "target": "send", "action": "approve"},
                  {"source": "review", "target": "drop", "action": "reject"}]})


def _until(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _assert_shows_waiting(w: Any) -> None:
    snap = w.view.snapshot()
    assert snap.status == "waiting" and not snap.finished
    review = next(r for r in snap.rows if r.node_id == "review")
    assert review.state == "waiting" and review.prompt == "Send the draft?"
    _until(lambda: "Send the draft?" in w.table.value and w.form is not None)
    assert "waiting" in w.table.value  # the state badge, not 'running'
    assert [b.description for b in w.form.buttons] == ["approve", "reject"]
    assert w.approval.children == (w.form.widget,)


def test_widget_shows_a_waiting_node_with_its_form_and_follows_the_resumed_run() -> None:
    from flownb.notebook.widget import RunWidget

    bp = approval_chain()
    view = ProgressView(bp)
    w = RunWidget(view)
    res = flownb.run(bp, {"text": "hi"}, on_event=view.feed)
    view.finish(res)
    assert res.status == "waiting" and w.wait(10) is res  # parked: wait returns, not finished
    _assert_shows_waiting(w)
    w.form.answer("approve")  # what the widget's 'approve' button does
    _until(lambda: view.snapshot().status == "succeeded")
    _until(lambda: "succeeded" in w.status.value and not w.approval.children)
    states = {r.node_id: r.state for r in view.snapshot().rows}
    assert states["review"] == "succeeded" and states["send"] == "succeeded"
    w.close()


def test_widget_keeps_following_a_distributed_run_while_it_waits(redis_url: str) -> None:
    from flownb.notebook import LocalCluster, RunWidget
    from flownb.notebook.frontend import _view_for

    with LocalCluster(1, mode="thread", redis=redis_url, lease_ttl_s=2) as c:
        h = c.submit(approval_chain(), {"text": "hi"})
        w = RunWidget(_view_for(h)[0])
        w.wait(20)  # returns once the run is parked; the follower goes on reading
        _assert_shows_waiting(w)
        assert w.view._follower is not None and w.view._follower.is_alive()
        w.form.answer("reject")
        res = w.wait(20)
        assert res is not None and res.status == "succeeded"
        states = {r.node_id: r.state for r in w.view.snapshot().rows}
        assert states["drop"] == "succeeded" and states["review"] == "succeeded"
        _until(lambda: not w.approval.children)
        w.close()
