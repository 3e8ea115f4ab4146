"""Test-only: a worker imports this (``flownb worker --import otel_jsonl``) to export its spans.

It sets an OpenTelemetry SDK ``TracerProvider`` whose processor writes every finished span as one
JSON line to the file named by ``FLOWNB_TEST_OTEL_FILE`` (appended, flushed per span, so the test
reads them while the worker lives) and turns flownb's tracing on — the documented hook for a
worker: a module it imports sets the provider and calls ``flownb.otel.enable()``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import flownb.otel

ENV = "FLOWNB_TEST_OTEL_FILE"


def _plain(attrs: Any) -> dict[str, Any]:
    """Attributes as JSON has them (the SDK keeps sequences as tuples)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attrs or {}).items()}


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """What the tests read of a span: ids as hex, name, parent, attributes, events, status."""
    ctx = span.context
    assert ctx is not None
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "attributes": _plain(span.attributes),
        "events": [{"name": e.name, "attributes": _plain(e.attributes)} for e in span.events],
        "status": span.status.status_code.name,
        "kind": span.kind.name,
        "pid": os.getpid(),
    }


class JsonLinesExporter(SpanExporter):
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), default=list) + "\n" for s in spans)
        with self._lock, open(self.path, "a") as fh:
            fh.write(lines)
        return SpanExportResult.SUCCESS


_path = os.environ.get(ENV)
if _path:
    provider = TracerProvider(resource=Resource.create({"service.name": "flownb-worker"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(_path)))
    trace.set_tracer_provider(provider)
    flownb.otel.enable()
