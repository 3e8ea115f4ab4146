"""OpenTelemetry traces of flownb runs: ``flownb.otel.enable()`` (or ``FLOWNB_OTEL=1``).

What you get (the attribute list is in docs/tracing.md): a span per run (``flownb.run <blueprint>``),
per node visit (``flownb.node <node>``) and per LLM call (``chat <model>``, GenAI semantic
conventions), nested run → visit → LLM call, subflow and map child runs under their node's span,
retries and waits for a person as span events. A distributed run is one trace: the client stores
its trace context (W3C ``traceparent``) with the run and every worker continues it.

Why this module is outside the layers (like the facade): it is the only place that imports
``opentelemetry``, and only when tracing is enabled, so ``import flownb`` costs nothing more and
a machine without ``flownb[otel]`` never sees the package. It uses the *API* only: exporting is the
application's choice (an SDK ``TracerProvider`` with an OTLP exporter, or
``opentelemetry-instrument``); without one the API hands out no-op spans.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .core import tracing
from .core.extras import require

#: the instrumentation scope name of every flownb span
SCOPE = "flownb"
#: what a worker reads to turn tracing on at start (set it with the standard ``OTEL_*`` variables)
ENV = "FLOWNB_OTEL"


def _api() -> tuple[Any, Any, Any]:
    trace = require("opentelemetry.trace", "tracing")
    return trace, require("opentelemetry.propagate", "tracing"), require("opentelemetry.context", "tracing")


class _Span(tracing.Span):
    __slots__ = ("_s", "_trace")

    def __init__(self, span: Any, trace: Any) -> None:
        self._s = span
        self._trace = trace

    def set(self, key: str, value: tracing.AttrValue | None) -> None:
        if value is not None:
            self._s.set_attribute(key, value)

    def fail(self, error_type: str, message: str) -> None:
        self._s.set_attribute("error.type", error_type)
        self._s.set_attribute("flownb.error.type", error_type)
        self._s.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"{error_type}: {message}"))

    def event(self, name: str, attrs: Mapping[str, tracing.AttrValue | None] | None = None) -> None:
        self._s.add_event(name, {k: v for k, v in (attrs or {}).items() if v is not None})


def _clean(attrs: Mapping[str, tracing.AttrValue | None]) -> dict[str, tracing.AttrValue]:
    return {k: v for k, v in attrs.items() if v is not None}


class OtelTracer(tracing.Tracer):
    """:class:`flownb.core.tracing.Tracer` on OpenTelemetry's API (``provider``: a
    ``TracerProvider``; default the global one, looked up at each span so an SDK provider set
    after :func:`enable` is still used)."""

    def __init__(self, provider: Any = None) -> None:
        self._trace, self._propagate, self._context = _api()
        self._provider = provider

    def _tracer(self) -> Any:
        return self._trace.get_tracer(SCOPE, tracer_provider=self._provider)

    def _start(self, name: str, attrs: Mapping[str, tracing.AttrValue | None], kind: Any = None
               ) -> _Span:
        kw = {"kind": kind} if kind is not None else {}
        return _Span(self._tracer().start_span(name, attributes=_clean(attrs), **kw), self._trace)

    def _span(self, name: str, attrs: Mapping[str, tracing.AttrValue | None], kind: Any = None
              ) -> Any:
        return self.use(self._start(name, attrs, kind), end=True)

    @contextmanager
    def use(self, span: tracing.Span, *, end: bool) -> Iterator[tracing.Span]:
        assert isinstance(span, _Span)
        raw = span._s
        with self._trace.use_span(raw, end_on_exit=False, record_exception=False,
                                  set_status_on_exception=False):
            try:
                yield span
            except asyncio.CancelledError:  # the run was cancelled (or failed elsewhere): no error here
                span.set("flownb.cancelled", True)
                raw.end()
                raise
            except BaseException as exc:
                if raw.status.status_code != self._trace.StatusCode.ERROR:
                    span.fail(type(exc).__name__, str(exc))
                raw.record_exception(exc)
                raw.end()
                raise
        if end:
            raw.end()

    def end(self, span: tracing.Span) -> None:
        assert isinstance(span, _Span)
        span._s.end()

    def run(self, run_id: str, blueprint_id: str, *, parent_run: str = "",
            executor: str = "in-process") -> Any:
        return self._span(f"flownb.run {blueprint_id}", {
            "flownb.run.id": run_id, "flownb.blueprint.id": blueprint_id,
            "flownb.run.parent": parent_run or None, "flownb.executor": executor})

    def start_visit(self, run_id: str, blueprint_id: str, node_id: str, uses: str, visit: int, *,
                    worker: str | None = None) -> tracing.Span:
        return self._start(f"flownb.node {node_id}", {
            "flownb.run.id": run_id, "flownb.blueprint.id": blueprint_id,
            "flownb.node.id": node_id, "flownb.node.uses": uses, "flownb.node.visit": visit,
            "flownb.worker": worker})

    def llm(self, operation: str, model: str, attrs: Mapping[str, tracing.AttrValue | None]) -> Any:
        return self._span(f"{operation} {model}", {"gen_ai.operation.name": operation,
                                                   "gen_ai.request.model": model, **attrs},
                          kind=self._trace.SpanKind.CLIENT)

    def inject(self) -> tracing.Carrier:
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier)
        return carrier

    @contextmanager
    def resume(self, carrier: Mapping[str, str] | None) -> Iterator[None]:
        if not carrier:
            yield
            return
        token = self._context.attach(self._propagate.extract(dict(carrier)))
        try:
            yield
        finally:
            self._context.detach(token)

    def event(self, name: str, attrs: Mapping[str, tracing.AttrValue | None] | None = None) -> None:
        span = self._trace.get_current_span()
        if span.is_recording():
            span.add_event(name, _clean(attrs or {}))

    def bind(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        ctx = contextvars.copy_context()
        return lambda *args: ctx.run(fn, *args)


def enable(tracer_provider: Any = None) -> OtelTracer:
    """Trace every run of this process from now on (needs ``flownb[otel]``).

    Spans go to ``tracer_provider`` or, by default, to OpenTelemetry's global provider — set one
    up with the SDK and an exporter (docs/tracing.md), else the spans are no-ops. A worker turns
    tracing on at start with ``FLOWNB_OTEL=1`` or by calling this in a module it imports."""
    tracer = OtelTracer(tracer_provider)
    tracing.install(tracer)
    return tracer


def disable() -> None:
    """Stop tracing (back to zero cost)."""
    tracing.install(None)


def enabled() -> bool:
    return tracing.TRACER is not None


def enable_from_env() -> bool:
    """``enable()`` when ``FLOWNB_OTEL`` is ``1``/``true``/``yes`` (what ``import flownb`` calls)."""
    if os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        enable()
        return True
    return False


__all__ = ["ENV", "OtelTracer", "SCOPE", "disable", "enable", "enable_from_env", "enabled"]
