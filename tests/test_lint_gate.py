"""The lint gate (flownb.core.lint_gate): every entry point that starts runs hears what lint found.

Each silently-wrong kind is refused by default on every entry point (in process, batches, Redis
with a real worker, LocalCluster, the CLI), ``strict=False`` / ``--no-strict`` runs it with a
:class:`flownb.LintWarning`, and a batch lints once per blueprint digest.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import flownb
from flownb.core import lint_gate
from flownb.distributed.client import DistributedExecutor

from conftest import Workers
from test_cli import NO_REDIS_ENV, cli, write_bp


def _edge_bp(bid: str, condition: str) -> dict[str, Any]:
    return {"id": bid, "nodes": [{"id": "a", "uses": "set", "params": {"values": {"s": 1}}},
                                 {"id": "b", "uses": "output", "params": {"template": "b"}},
                                 {"id": "c", "uses": "output", "params": {"template": "c"}}],
            "edges": [{"source": "a", "target": "b", "condition": condition},
                      {"source": "a", "target": "c"}]}


#: one blueprint per error kind: (blueprint, code, node id named, text of the fix / did-you-mean)
BAD: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "param": ({"id": "bad-param", "nodes": [
        {"id": "o", "uses": "output", "params": {"templat": "hi"}},
        {"id": "z", "uses": "sleep", "params": {"second": 0}}]},
        "unknown-param", "o", "did you mean 'template'?"),
    "state-key": (_edge_bp("bad-state", "state.ss > 0"), "unknown-state-key", "a",
                  "did you mean 's'?"),
    "result-field": (_edge_bp("bad-result", "result.outptu"), "unknown-result-field", "a",
                     "did you mean 'output'?"),
    "node-id": (_edge_bp("bad-node", "outputs.aa == 1"), "unknown-output-node", "a",
                "did you mean 'a'?"),
    "router": ({"id": "bad-router", "nodes": [
        {"id": "r", "uses": "llm-router", "params": {"prompt": "pick", "routes": ["yes", "no"]}},
        {"id": "y", "uses": "noop"}, {"id": "m", "uses": "noop"}],
        "edges": [{"source": "r", "target": "y", "action": "yes"},
                  {"source": "r", "target": "m", "action": "maybe"}]},
        "router-routes-mismatch", "r", "Make params.routes list exactly"),
}


def _assert_refused(err: flownb.LintError, kind: str) -> None:
    _, code, node, fix = BAD[kind]
    assert isinstance(err, flownb.FlownbError)
    assert code in {p.code for p in err.problems}
    hit = next(p for p in err.problems if p.code == code)
    assert hit.node_id == node and fix in str(err)
    assert f"blueprint {BAD[kind][0]['id']!r}" in str(err)
    assert "strict=False" in str(err) and "--no-strict" in str(err)


# -- in process ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(BAD))
def test_every_error_kind_is_refused_by_run_arun_run_many_and_arun_many(kind: str) -> None:
    doc = BAD[kind][0]
    with pytest.raises(flownb.LintError) as e1:
        flownb.run(doc, {})
    _assert_refused(e1.value, kind)
    with pytest.raises(flownb.LintError) as e2:
        asyncio.run(flownb.arun(doc, {}))
    _assert_refused(e2.value, kind)
    with pytest.raises(flownb.LintError) as e3:
        flownb.run_many(doc, [{"x": 1}, {"x": 2}])
    _assert_refused(e3.value, kind)
    with pytest.raises(flownb.LintError) as e4:
        asyncio.run(flownb.arun_many(doc, [{"x": 1}]))
    _assert_refused(e4.value, kind)


@pytest.mark.parametrize("kind", ["param", "state-key", "result-field", "node-id"])
def test_strict_false_runs_with_a_lint_warning(kind: str) -> None:
    doc, code, _, _ = BAD[kind]
    with pytest.warns(flownb.LintWarning, match=code) as rec:
        res = flownb.run(doc, {}, strict=False)
    assert res.status == "succeeded"
    assert any("refused unless strict=False" in str(w.message) for w in rec)
    with pytest.warns(flownb.LintWarning, match=code):
        batch = flownb.run_many(doc, [{}, {}], strict=False)
    assert [r.status for r in batch.results(timeout=30)] == ["succeeded", "succeeded"]


def test_the_warning_points_at_the_callers_line_and_can_be_silenced() -> None:
    doc = _edge_bp("warn-line", "state.ss > 0")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        flownb.run(doc, {}, strict=False)
    assert rec and all(w.filename == __file__ for w in rec), [w.filename for w in rec]
    assert issubclass(flownb.LintWarning, flownb.FlownbWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=flownb.LintWarning)
        assert flownb.run(doc, {}, strict=False).ok


def test_a_run_input_makes_the_key_known() -> None:
    doc = _edge_bp("input-key", "state.ss > 0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning, no error: the run's inputs give 'ss'
        res = flownb.run(doc, {"ss": 2})
        assert res.outputs["b"] == "b"
        # a batch: a key some row gives is one of the blueprint's run inputs
        batch = flownb.run_many(doc, [{"ss": 1}, {"other": 1}])
        assert [r.status for r in batch.results(timeout=30)] == ["succeeded"] * 2
    with pytest.raises(flownb.LintError, match="unknown-state-key"):
        flownb.run_many(doc, [{"other": 1}])


def test_a_key_a_custom_node_may_write_is_a_warning_not_an_error() -> None:
    reg = flownb.Registry()

    def scorer(ctx: flownb.NodeContext) -> int:
        ctx.state["score"] = 3
        return 3

    reg.add("scorer", scorer)
    doc = {"id": "custom-writes", "nodes": [{"id": "a", "uses": "scorer"},
                                            {"id": "b", "uses": "noop"}],
           "edges": [{"source": "a", "target": "b", "condition": "state.score > 2"}]}
    with pytest.warns(flownb.LintWarning, match="may be unset") as rec:
        res = flownb.run(doc, {}, registry=reg)
    assert res.nodes["b"].status == "succeeded"
    assert "'a' ('scorer')" in str(rec[0].message)
    doc["metadata"] = {"state": ["score"]}  # declaring the key says so: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert flownb.run(doc, {}, registry=reg).ok


def test_structural_errors_are_refused_even_with_strict_false() -> None:
    doc = {"id": "no-start", "nodes": [{"id": "a", "uses": "noop"}, {"id": "b", "uses": "noop"}],
           "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}]}
    with pytest.raises(flownb.LintError, match="no-start-node") as e:
        flownb.run(doc, strict=False)
    assert "strict=False" not in str(e.value)  # downgrading would not help: no such advice


def test_a_child_blueprints_typo_refuses_the_parent_run() -> None:
    reg = flownb.Registry()
    reg.add_blueprint(flownb.Blueprint.from_dict(BAD["param"][0]))
    parent = {"id": "parent", "nodes": [{"id": "sub", "uses": "subflow",
                                         "params": {"blueprintId": "bad-param"}}]}
    with pytest.raises(flownb.LintError, match="child blueprint 'bad-param'.*templat"):
        flownb.run(parent, registry=reg)


# -- once per blueprint digest -----------------------------------------------------------------------

def test_lint_runs_once_per_blueprint_digest() -> None:
    doc = _edge_bp("cache-me", "state.s > 0")
    lint_gate.cache_clear()
    for _ in range(20):
        flownb.run(doc, {})  # a fresh Blueprint object each time: the digest is the key
    batch = flownb.run_many(doc, [{"i": i} for i in range(500)])
    assert all(r.ok for r in batch.results(timeout=60))
    info = lint_gate.cache_info()
    assert info["misses"] == 1 and info["hits"] == 20, info  # the batch: one look-up in all
    changed = dict(doc, description="edited in the notebook")
    flownb.run(changed, {})
    reg = flownb.Registry()
    flownb.run(doc, {}, registry=reg)  # another registry may know other node types
    assert lint_gate.cache_info()["misses"] == 3


def test_a_cached_lint_costs_microseconds() -> None:
    from flownb import examples

    bp = examples.load("content_moderation")
    lint_gate.cache_clear()
    t0 = time.perf_counter()
    lint_gate.check(bp, None, {"text": "x"})
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(1000):
        lint_gate.check(bp, None, {"text": "x"})
    each = (time.perf_counter() - t0) / 1000
    assert each < first and each < 0.001, (first, each)


# -- wait params, templates: no false alarm ---------------------------------------------------------

def test_wait_params_are_its_own_and_sleeps_are_not() -> None:
    ok = {"id": "w", "nodes": [{"id": "ask", "uses": "wait", "params": {
        "prompt": "OK?", "choices": ["yes", "no"], "timeout_s": 5, "default": "no"}},
        {"id": "ap", "uses": "approval", "params": {"prompt": "Send?",
                                                    "schema": {"type": "string"}}}]}
    assert [p for p in flownb.Blueprint.from_dict(ok).lint() if p.code == "unknown-param"] == []
    bad = {"id": "w2", "nodes": [{"id": "ask", "uses": "wait", "params": {"seconds": 5}}]}
    found = [p for p in flownb.Blueprint.from_dict(bad).lint() if p.code == "unknown-param"]
    assert len(found) == 1 and found[0].severity == "error" and "'seconds'" in found[0].message


def test_a_template_variable_given_as_run_input_is_no_false_alarm() -> None:
    doc = {"id": "tpl", "nodes": [{"id": "o", "uses": "output",
                                   "params": {"template": "hello {{name}}"}}]}
    bp = flownb.Blueprint.from_dict(doc)
    assert bp.lint() == []  # 'name' may be a run input: validate says nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert flownb.run(doc, {"name": "Ada"}).output == "hello Ada"
    with pytest.warns(flownb.LintWarning, match=r"\{\{name\}\}.*the node fails"):
        res = flownb.run(doc, {"nme": "Ada"}, raise_on_error=False)
    assert res.status == "failed" and "{{name}}" in res.error["message"]  # as the warning said
    # after a node whose output may be a mapping, {{name}} may be one of its keys: no warning
    doc["nodes"].insert(0, {"id": "p", "uses": "passthrough"})
    doc["edges"] = [{"source": "p", "target": "o"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert flownb.run(doc, {"name": "Ada"}).output == "hello Ada"


# -- on Redis: a real worker, LocalCluster ------------------------------------------------------------

@pytest.mark.timeout(120)
def test_submit_run_and_map_refuse_and_downgrade_on_a_real_worker(redis_url: str,
                                                                   workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    for kind in sorted(BAD):
        doc = BAD[kind][0]
        with pytest.raises(flownb.LintError) as e1:
            ex.submit(doc, {})
        _assert_refused(e1.value, kind)
        with pytest.raises(flownb.LintError) as e2:
            ex.run(doc, {}, timeout=30)
        _assert_refused(e2.value, kind)
        with pytest.raises(flownb.LintError) as e3:
            ex.map(doc, [{}, {}])
        _assert_refused(e3.value, kind)
    assert ex.runs() == []  # nothing was stored for a refused run
    doc = BAD["state-key"][0]
    with pytest.warns(flownb.LintWarning, match="unknown-state-key"):
        res = ex.submit(doc, {}, strict=False).result(timeout=60)
    assert res.status == "succeeded" and res.nodes["b"].status == "skipped"
    with pytest.warns(flownb.LintWarning, match="unknown-state-key"):
        batch = ex.map(doc, [{}, {}, {}], strict=False)
    assert [r.status for r in batch.results(timeout=60)] == ["succeeded"] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", flownb.LintWarning)
        assert ex.run(doc, {"ss": 5}, timeout=60).outputs["b"] == "b"


@pytest.mark.timeout(120)
def test_local_cluster_run_and_map_refuse_and_downgrade(redis_url: str) -> None:
    from flownb.notebook import LocalCluster

    with LocalCluster(1, mode="thread", redis=redis_url) as cluster:
        for kind in ("param", "result-field"):
            doc = BAD[kind][0]
            with pytest.raises(flownb.LintError) as e1:
                cluster.run(doc, {}, timeout=30)
            _assert_refused(e1.value, kind)
            with pytest.raises(flownb.LintError) as e2:
                cluster.map(doc, [{}])
            _assert_refused(e2.value, kind)
            with pytest.raises(flownb.LintError):
                cluster.submit(doc, {})
        with pytest.warns(flownb.LintWarning, match="unknown-result-field"):
            assert cluster.run(BAD["result-field"][0], {}, timeout=60, strict=False).ok
        with pytest.warns(flownb.LintWarning, match="unknown-param"):
            batch = cluster.map(BAD["param"][0], [{}, {}], strict=False)
        assert all(r.ok for r in batch.results(timeout=60))


# -- the CLI --------------------------------------------------------------------------------------------

def test_cli_run_refuses_with_the_fix_and_no_strict_warns(tmp_path: Path) -> None:
    path = write_bp(tmp_path / "typo.json", BAD["state-key"][0])
    out = cli("run", str(path), "--inputs", "{}")
    assert out.returncode == 1, out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert "flownb: error: blueprint 'bad-state'" in out.stderr
    assert "did you mean 's'?" in out.stderr and "--no-strict" in out.stderr
    out = cli("run", str(path), "--inputs", "{}", "--no-strict")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "succeeded"
    assert "flownb: warning: blueprint 'bad-state'" in out.stderr and "unknown-state-key" in out.stderr
    out = cli("run", str(path), "--inputs", '{"ss": 1}')  # the run's input gives the key
    assert out.returncode == 0 and "warning" not in out.stderr, out.stderr


@pytest.mark.timeout(120)
def test_cli_run_on_redis_refuses_and_no_strict_runs(tmp_path: Path, redis_url: str,
                                                     workers: Workers) -> None:
    workers.start(1)
    path = write_bp(tmp_path / "param.json", BAD["param"][0])
    out = cli("run", str(path), "--redis", redis_url)
    assert out.returncode == 1 and "unknown-param" in out.stderr and "templat" in out.stderr
    assert "submitted run" not in out.stderr
    out = cli("run", str(path), "--redis", redis_url, "--no-strict", "--timeout-s", "60")
    assert out.returncode == 0, out.stderr
    assert "flownb: warning:" in out.stderr and json.loads(out.stdout)["status"] == "succeeded"


def test_validate_reports_the_silently_wrong_kinds_as_errors(tmp_path: Path) -> None:
    for kind in sorted(BAD):
        doc = BAD[kind][0]
        if kind == "state-key":  # 'ss' may be a run input, until the blueprint lists its inputs
            out = cli("validate", str(write_bp(tmp_path / "undeclared.json", doc)), env=NO_REDIS_ENV)
            assert out.returncode == 0 and "warning: " in out.stdout, out.stdout
            assert "only a run input can give it" in out.stdout and "'s'?" in out.stdout
            doc = dict(doc, metadata={"state": ["text"]})
        path = write_bp(tmp_path / f"{kind}.json", doc)
        out = cli("validate", str(path), env=NO_REDIS_ENV)
        assert out.returncode == 1 and "error: " in out.stdout and BAD[kind][1] in out.stdout


def test_the_run_widget_shows_lint_findings_as_a_banner() -> None:
    pytest.importorskip("ipywidgets")
    from flownb.notebook.widget import RunWidget

    reg_doc = {"id": "banner", "nodes": [{"id": "a", "uses": "some-custom-type"},
                                         {"id": "b", "uses": "noop"}],
               "edges": [{"source": "a", "target": "b", "condition": "state.score > 2"}]}
    w = RunWidget(blueprint=reg_doc)
    assert "may be unset" in w.lint.value and "state.score" in w.lint.value
    w.close()
    clean = RunWidget(blueprint=_edge_bp("clean", "state.s > 0"))
    assert clean.lint.value == ""
    clean.close()
