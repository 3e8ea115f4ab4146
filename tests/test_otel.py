"""OpenTelemetry traces (issue 22): a span per run, per node visit, per LLM call, one trace per run.

In process the spans go to the SDK's ``InMemorySpanExporter``; on Redis two real ``flownb worker``
processes import ``tests/otel_jsonl.py`` (the documented worker hook: a module that sets the
tracer provider and calls ``flownb.otel.enable()``), which writes their finished spans as JSON
lines to a file this test reads. LLM calls go to ``tests/llm_server.py`` with the real ``openai``
client. Nothing here mocks OpenTelemetry, Redis or the model client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from conftest import ROOT, Workers  # noqa: E402
from llm_server import LLMServer, llm_server  # noqa: E402,F401 - the fixture
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from otel_jsonl import ENV as SPANS_FILE_ENV  # noqa: E402
from otel_jsonl import span_record  # noqa: E402

import flownb  # noqa: E402
import flownb.llm as llm  # noqa: E402
import flownb.otel  # noqa: E402
from flownb.core import tracing  # noqa: E402
from flownb.distributed import DistributedExecutor  # noqa: E402
from flownb.llm import client as llm_client  # noqa: E402


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this process, into an in-memory exporter; off again afterwards."""
    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    flownb.otel.enable(provider)
    try:
        yield exp
    finally:
        flownb.otel.disable()
        provider.shutdown()


@pytest.fixture
def real_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The real openai client (the suite forces the fake with FLOWNB_LLM=fake)."""
    monkeypatch.delenv("FLOWNB_LLM", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy")
    monkeypatch.setenv("FLOWNB_LLM_ALLOWED_BASE_URLS", "http://127.0.0.1:*,http://localhost:*")  # the test servers
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    llm.reset()
    yield
    llm.reset()
    llm_client.close_clients()


def records(exp: InMemorySpanExporter) -> list[dict[str, Any]]:
    return [span_record(s) for s in exp.get_finished_spans()]


def one(spans: list[dict[str, Any]], name: str, **attrs: Any) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name
             and all(s["attributes"].get(k) == v for k, v in attrs.items())]
    assert len(found) == 1, f"expected one span {name!r} {attrs}, got {len(found)}: " \
                            f"{[(s['name'], s['attributes']) for s in spans]}"
    return found[0]


def child_blueprint() -> flownb.Blueprint:
    return flownb.Blueprint.from_dict({"id": "otel-child", "nodes": [
        {"id": "inner", "uses": "passthrough"}]})


def traced_blueprint(server: LLMServer) -> dict[str, Any]:
    """start → ask (a real LLM call) → sub (a subflow) → done."""
    return {"id": "otel-flow", "nodes": [
        {"id": "start", "uses": "passthrough"},
        {"id": "ask", "uses": "llm-process",
         "params": {"prompt": "Summarise {{text}}", "base_url": server.base_url,
                    "model": "test-model", "cache": False}},
        {"id": "sub", "uses": "subflow", "params": {"blueprintId": "otel-child"}},
        {"id": "done", "uses": "passthrough"},
    ], "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "sub"},
                 {"source": "sub", "target": "done"}]}


def assert_tree(spans: list[dict[str, Any]], run_id: str, server: LLMServer,
                workers: set[str] | None = None) -> None:
    """run → node visits → LLM call; the subflow's child run under the ``sub`` visit."""
    assert len({s["trace_id"] for s in spans}) == 1, "a run must be one trace"
    run = one(spans, "flownb.run otel-flow", **{"flownb.run.id": run_id})
    assert run["parent_id"] is None
    visits = {n: one(spans, f"flownb.node {n}", **{"flownb.run.id": run_id})
              for n in ("start", "ask", "sub", "done")}
    for name, v in visits.items():
        assert v["parent_id"] == run["span_id"], name
        a = v["attributes"]
        assert a["flownb.blueprint.id"] == "otel-flow"
        assert a["flownb.node.id"] == name and a["flownb.node.visit"] == 1
        assert a["flownb.node.uses"] == {"start": "passthrough", "ask": "llm-process",
                                         "sub": "subflow", "done": "passthrough"}[name]
        if name != "sub" or workers is None:  # a worker's subflow visit starts the children
            assert a["flownb.node.status"] == "succeeded" and a["flownb.node.attempt"] == 1
        if workers is not None:
            assert a["flownb.worker"] in workers
    chat = one(spans, "chat test-model")
    assert chat["parent_id"] == visits["ask"]["span_id"]
    assert chat["kind"] == "CLIENT"
    ca = chat["attributes"]
    assert ca["gen_ai.operation.name"] == "chat"
    assert ca["gen_ai.request.model"] == "test-model"
    assert ca["gen_ai.provider.name"] == "openai" and ca["gen_ai.system"] == "openai"
    assert (ca["gen_ai.usage.input_tokens"], ca["gen_ai.usage.output_tokens"]) == (12, 4)
    assert ca["server.address"] == "127.0.0.1" and ca["server.port"] == int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    assert ca["gen_ai.response.finish_reasons"] == ["stop"]
    child_run = one(spans, "flownb.run otel-child")
    assert child_run["parent_id"] == visits["sub"]["span_id"]
    inner = one(spans, "flownb.node inner")
    assert inner["parent_id"] == child_run["span_id"]
    assert inner["attributes"]["flownb.run.id"] == child_run["attributes"]["flownb.run.id"] != run_id


# -- in process ----------------------------------------------------------------------------------

def test_in_process_run_node_llm_and_subflow_spans(exporter: InMemorySpanExporter, real_llm: None,
                                                   llm_server: LLMServer) -> None:  # noqa: F811
    llm_server.script("A short summary.", usage=(12, 4))
    flownb.default_registry.add_blueprint(child_blueprint())
    res = flownb.run(traced_blueprint(llm_server), {"text": "hello"})
    assert res.status == "succeeded" and len(llm_server.requests) == 1
    spans = records(exporter)
    assert_tree(spans, res.run_id, llm_server)
    run = one(spans, "flownb.run otel-flow")
    assert run["attributes"]["flownb.run.status"] == "succeeded"
    assert run["attributes"]["flownb.executor"] == "in-process"


def test_in_process_failure_retry_and_wait_are_on_the_spans(exporter: InMemorySpanExporter) -> None:
    import scenario_nodes  # noqa: F401 - t-flaky, t-fail

    bp = {"id": "otel-fail", "nodes": [
        {"id": "flaky", "uses": "t-flaky", "params": {"fail_times": 1}, "config": {"retries": 1}},
        {"id": "bad", "uses": "t-fail", "params": {"message": "no good"}}],
        "edges": [{"source": "flaky", "target": "bad"}]}
    res = flownb.run(bp, {}, raise_on_error=False)
    assert res.status == "failed"
    spans = records(exporter)
    flaky = one(spans, "flownb.node flaky")
    assert flaky["attributes"]["flownb.node.attempt"] == 2
    assert flaky["attributes"]["flownb.node.status"] == "succeeded"
    retry = [e for e in flaky["events"] if e["name"] == "flownb.retry"]
    assert len(retry) == 1 and retry[0]["attributes"]["error.type"] == "RuntimeError"
    bad = one(spans, "flownb.node bad")
    assert bad["status"] == "ERROR"
    assert bad["attributes"]["error.type"] == bad["attributes"]["flownb.error.type"] == "ValueError"
    assert bad["attributes"]["flownb.node.status"] == "failed"
    run = one(spans, "flownb.run otel-fail")
    assert run["status"] == "ERROR" and run["attributes"]["error.type"] == "ValueError"
    assert run["attributes"]["flownb.node.id"] == "bad"

    exporter.clear()
    waiting = flownb.run({"id": "otel-wait", "nodes": [
        {"id": "ok", "uses": "approval", "params": {"prompt": "Ship it?", "choices": ["yes", "no"]}}]},
        {})
    assert waiting.status == "waiting"
    spans = records(exporter)
    ok = one(spans, "flownb.node ok")
    assert ok["attributes"]["flownb.node.status"] == "waiting"
    wait = [e for e in ok["events"] if e["name"] == "flownb.wait"]
    assert wait and wait[0]["attributes"]["flownb.wait.prompt"] == "Ship it?"
    assert wait[0]["attributes"]["flownb.wait.choices"] == ["yes", "no"]
    run = one(spans, "flownb.run otel-wait")
    assert [e["name"] for e in run["events"]] == ["flownb.run.waiting"]
    # the answer drives the run on in the same trace, under the first drive's span
    exporter.clear()
    assert waiting.resume("ok", "yes").status == "succeeded"
    again = one(records(exporter), "flownb.run otel-wait")
    assert again["trace_id"] == run["trace_id"] and again["parent_id"] == run["span_id"]
    assert again["attributes"]["flownb.run.resumed"] is True


def test_tracing_off_costs_no_import_and_no_span() -> None:
    """Without enable()/FLOWNB_OTEL, a run imports no opentelemetry module and the hook is None."""
    code = ("import sys, flownb\n"
            "from flownb.core import tracing\n"
            "bp = flownb.Builder('z').node('a', 'passthrough').build()\n"
            "assert flownb.run(bp, {}).status == 'succeeded'\n"
            "print(tracing.TRACER is None, sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n")
    env = {k: v for k, v in os.environ.items() if k != "FLOWNB_OTEL"}
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True []"
    on = subprocess.run([sys.executable, "-c", "import flownb.core.tracing as t, flownb; "
                         "print(type(t.TRACER).__name__)"], cwd=str(ROOT),
                        env={**env, "FLOWNB_OTEL": "1"}, capture_output=True, text=True, timeout=60)
    assert on.stdout.strip() == "OtelTracer", on.stderr


def test_enable_without_opentelemetry_names_the_extra(tmp_path: Path) -> None:
    """A machine without flownb[otel]: enable() says which extra to install."""
    (tmp_path / "opentelemetry").mkdir()
    (tmp_path / "opentelemetry" / "__init__.py").write_text("raise ImportError('not installed')\n")
    code = ("import flownb.otel\n"
            "try:\n    flownb.otel.enable()\nexcept flownb.MissingDependency as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)
    assert "pip install 'flownb[otel]'" in out.stdout, out.stdout + out.stderr


# -- on Redis, two real workers ------------------------------------------------------------------

def _read_spans(path: Path, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if path.exists():
            spans = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if len(spans) >= want:
                return spans
        time.sleep(0.1)
    return spans


@pytest.mark.slow
def test_distributed_run_is_one_trace_across_client_and_two_workers(
        exporter: InMemorySpanExporter, real_llm: None, llm_server: LLMServer,  # noqa: F811
        redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    llm_server.script("A short summary.", usage=(12, 4))
    spans_file = tmp_path / "worker-spans.jsonl"
    monkeypatch.setenv(SPANS_FILE_ENV, str(spans_file))
    w = Workers(redis_url, modules=(*Workers.MODULES, "otel_jsonl"), args=("--concurrency", "1"))
    try:
        w.start(2)
        names = {f"test-w{i}-{os.getpid()}" for i in (1, 2)}
        ex = DistributedExecutor(redis_url)
        flownb.default_registry.add_blueprint(child_blueprint())
        # four parallel sleeps first, so both single-slot workers take visits of this run
        bp = traced_blueprint(llm_server)
        bp["nodes"] += [{"id": f"p{i}", "uses": "t-sleep", "params": {"seconds": 0.4}} for i in range(4)]
        bp["nodes"].append({"id": "join", "uses": "passthrough"})
        bp["edges"] = [e for e in bp["edges"] if e["source"] != "start"]
        bp["edges"] += [{"source": "start", "target": f"p{i}"} for i in range(4)]
        bp["edges"] += [{"source": f"p{i}", "target": "join"} for i in range(4)]
        bp["edges"].append({"source": "join", "target": "ask"})
        handle = ex.submit(bp, {"text": "hello"})
        assert handle.result(timeout=60).status == "succeeded" and len(llm_server.requests) == 1
        # the client has the run's span; the workers 9 visit spans (start, p0-p3, join, ask, sub,
        # done), the child run's span and its visit, and the LLM call: 12 at least
        client_spans = records(exporter)
        worker_spans = _read_spans(spans_file, want=12)
        spans = client_spans + worker_spans
        assert len({s["pid"] for s in worker_spans}) == 2, "both workers must have traced visits"
        assert [s["name"] for s in client_spans] == ["flownb.run otel-flow"]
        assert client_spans[0]["attributes"]["flownb.executor"] == "distributed"
        assert_tree(spans, handle.run_id, llm_server, workers=names)
        ran_on = {s["attributes"]["flownb.worker"] for s in worker_spans if s["name"].startswith("flownb.node p")}
        assert ran_on == names, ran_on
        trace_ctx = json.loads(ex.store.r.hget(ex.store.keys.meta(handle.run_id), "trace"))
        assert trace_ctx["traceparent"].split("-")[1] == client_spans[0]["trace_id"]

        # a map's child runs nest under the map visit; a wait for a person is a span event
        spans_file.write_text("")
        exporter.clear()
        mw = ex.submit({"id": "otel-map", "nodes": [
            {"id": "each", "uses": "map", "params": {"node": "passthrough", "items": "xs"}},
            {"id": "ok", "uses": "approval", "params": {"prompt": "Ship it?"}}],
            "edges": [{"source": "each", "target": "ok"}]}, {"xs": [1, 2, 3]})
        deadline = time.monotonic() + 30
        while mw.status() != "waiting" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mw.status() == "waiting"
        spans = records(exporter) + _read_spans(spans_file, want=8)
        assert len({s["trace_id"] for s in spans}) == 1
        each = one(spans, "flownb.node each", **{"flownb.run.id": mw.run_id})
        children = [s for s in spans if s["name"].startswith("flownb.run ")
                    and s["parent_id"] == each["span_id"]]
        assert len(children) == 3
        for c in children:
            assert c["attributes"]["flownb.run.parent"] == mw.run_id
            inner = [s for s in spans if s["parent_id"] == c["span_id"]]
            assert len(inner) == 1 and inner[0]["name"].startswith("flownb.node ")
            assert inner[0]["attributes"]["flownb.run.id"] == c["attributes"]["flownb.run.id"]
        ok = one(spans, "flownb.node ok", **{"flownb.run.id": mw.run_id})
        assert ok["attributes"]["flownb.node.status"] == "waiting"
        assert [e["attributes"]["flownb.wait.prompt"] for e in ok["events"]
                if e["name"] == "flownb.wait"] == ["Ship it?"]
        mw.cancel()

        # a failing node: status ERROR and its error type, in the same kind of tree
        spans_file.write_text("")
        exporter.clear()
        bad = ex.submit({"id": "otel-bad", "nodes": [{"id": "bad", "uses": "t-fail"}]}, {})
        assert bad.result(timeout=60, raise_on_error=False).status == "failed"
        failed = _read_spans(spans_file, want=1)
        node = one(failed, "flownb.node bad")
        assert node["status"] == "ERROR" and node["attributes"]["error.type"] == "ValueError"
        assert node["parent_id"] == records(exporter)[0]["span_id"]
        assert node["trace_id"] == records(exporter)[0]["trace_id"]
        # a client that does not trace: the workers still put the run's visits in one trace,
        # derived from the run id
        spans_file.write_text("")
        flownb.otel.disable()
        plain = ex.submit({"id": "otel-plain", "nodes": [
            {"id": "a", "uses": "t-sleep", "params": {"seconds": 0.2}},
            {"id": "b", "uses": "t-sleep", "params": {"seconds": 0.2}}],
            "edges": [{"source": "a", "target": "b"}]}, {})
        assert plain.result(timeout=60).status == "succeeded"
        assert not ex.store.r.hget(ex.store.keys.meta(plain.run_id), "trace")
        visits = [s for s in _read_spans(spans_file, want=2) if s["name"].startswith("flownb.node ")]
        assert sorted(s["name"] for s in visits) == ["flownb.node a", "flownb.node b"]
        derived = tracing.run_carrier(plain.run_id)["traceparent"].split("-")
        assert {s["trace_id"] for s in visits} == {derived[1]}
        assert {s["parent_id"] for s in visits} == {derived[2]}
    finally:
        w.close()


def test_a_visit_stopped_by_a_sibling_failure_is_cancelled_not_failed(
        exporter: InMemorySpanExporter) -> None:
    import scenario_nodes  # noqa: F401 - t-async-sleep, t-fail

    res = flownb.run({"id": "otel-cancel", "nodes": [
        {"id": "slow", "uses": "t-async-sleep", "params": {"seconds": 5}},
        {"id": "bad", "uses": "t-fail"}]}, {}, raise_on_error=False)
    assert res.status == "failed" and res.duration_s < 4
    slow = one(records(exporter), "flownb.node slow")
    assert slow["attributes"]["flownb.cancelled"] is True
    assert slow["status"] == "UNSET" and "error.type" not in slow["attributes"]
    assert one(records(exporter), "flownb.node bad")["status"] == "ERROR"


def test_the_docs_otlp_example_sends_the_spans_to_the_endpoint(tmp_path: Path) -> None:
    """docs/tracing.md's example, run as written against a local OTLP/HTTP endpoint."""
    import re
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    text = (ROOT / "docs" / "tracing.md").read_text()
    section = text.split("## Export to an OTLP endpoint", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = tmp_path / "otlp_example.py"
    script.write_text("import flownb\nbp = flownb.Builder('otlp-demo').node('a', 'passthrough').build()\n"
                      + snippet.group(1) + "\nprovider.shutdown()  # flush the batch\n")
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    try:
        out = subprocess.run([sys.executable, str(script)], cwd=str(ROOT), env=env,
                             capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr[-2000:]
    assert [path for path, _ in received] == ["/v1/traces"]
    body = received[0][1]  # OTLP protobuf: the span names and attribute values are in it as text
    assert b"flownb.run otlp-demo" in body and b"flownb.node a" in body and b"my-agents" in body
