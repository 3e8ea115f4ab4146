"""The tracing hooks every layer calls: a run, a node visit, an LLM call, and the trace context a
distributed run carries from the client to its workers.

Why a hook here and not OpenTelemetry itself: tracing is optional (``pip install flownb[otel]``)
and must cost nothing when it is off. So the layers that own a run (``engine``, ``distributed``)
and an LLM call (``llm``) ask :data:`TRACER` — ``None`` unless tracing was enabled — and do
nothing else when it is ``None``: one global read per run or visit, no object, no import. The
implementation on OpenTelemetry's API is :mod:`flownb.otel` (part of no layer, like the facade);
it installs itself here with :func:`install` (``flownb.otel.enable()`` or ``FLOWNB_OTEL=1``).

The hooks speak plain Python: attributes are ``str``/``int``/``float``/``bool`` values and the
trace context crossing Redis is a ``dict[str, str]`` carrier (W3C ``traceparent``), so no layer
but :mod:`flownb.otel` imports ``opentelemetry`` (an import-linter contract checks it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

#: attribute values a span takes
AttrValue = str | int | float | bool | list[str]
#: the trace context of a run as it is stored in Redis (``{"traceparent": "00-…"}``)
Carrier = dict[str, str]


class Span:
    """One open span. The base class ignores everything (what a disabled tracer hands out)."""

    def set(self, key: str, value: AttrValue | None) -> None:
        """Set one attribute (``None`` values are left out)."""

    def fail(self, error_type: str, message: str) -> None:
        """Mark the span failed: status ERROR, ``error.type`` and ``flownb.error.type``."""

    def event(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None) -> None:
        """Add a timestamped event (a retry, a wait for a person)."""


class Tracer:
    """What flownb asks of a tracer. :mod:`flownb.otel` implements it on OpenTelemetry's API."""

    def run(self, run_id: str, blueprint_id: str, *, parent_run: str = "",
            executor: str = "in-process") -> AbstractContextManager[Span]:
        """A span for one run (made current while the ``with`` block runs)."""
        raise NotImplementedError

    def visit(self, run_id: str, blueprint_id: str, node_id: str, uses: str, visit: int, *,
              worker: str | None = None) -> AbstractContextManager[Span]:
        """A span for one node visit, a child of the current span (the run's, or the context
        :meth:`resume` attached on a worker)."""
        return self.use(self.start_visit(run_id, blueprint_id, node_id, uses, visit,
                                         worker=worker), end=True)

    def start_visit(self, run_id: str, blueprint_id: str, node_id: str, uses: str, visit: int, *,
                    worker: str | None = None) -> Span:
        """The span of a visit, started but not current: the inline fast path opens it, and a
        visit it hands to the policy after a failure carries it on (:meth:`use`)."""
        raise NotImplementedError

    def use(self, span: Span, *, end: bool) -> AbstractContextManager[Span]:
        """Make ``span`` current for the ``with`` block; ``end``: end it on exit (an exception
        marks it failed)."""
        raise NotImplementedError

    def end(self, span: Span) -> None:
        """End a span opened by :meth:`start_visit`."""
        raise NotImplementedError

    def llm(self, operation: str, model: str, attrs: Mapping[str, AttrValue | None]
            ) -> AbstractContextManager[Span]:
        """A span for one model call, following the GenAI semantic conventions."""
        raise NotImplementedError

    def inject(self) -> Carrier:
        """The current trace context as a carrier to store with a run."""
        raise NotImplementedError

    def resume(self, carrier: Mapping[str, str] | None) -> AbstractContextManager[None]:
        """Make a stored carrier the current context (a worker continuing a run's trace)."""
        raise NotImplementedError

    def event(self, name: str, attrs: Mapping[str, AttrValue | None] | None = None) -> None:
        """Add an event to the current span, if any."""
        raise NotImplementedError

    def bind(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` run in the current context: a sync node runs in a pool thread, which does not
        inherit the caller's context, and its LLM calls must still nest under its visit."""
        raise NotImplementedError


def run_carrier(run_id: str) -> Carrier:
    """A trace context derived from the run id, for a run submitted without one (the client did
    not trace): every worker derives the same, so the run's visits still share one trace instead
    of starting one trace each. Its parent span is never exported (viewers show a missing root)."""
    digest = hashlib.sha256(f"flownb-run:{run_id}".encode()).hexdigest()
    return {"traceparent": f"00-{digest[:32]}-{digest[32:48]}-01"}


#: the tracer in use, ``None`` when tracing is off (the hot paths test exactly this)
TRACER: Tracer | None = None


def install(tracer: Tracer | None) -> None:
    """Turn tracing on with ``tracer`` (``None``: off). Called by :mod:`flownb.otel`."""
    global TRACER
    TRACER = tracer


def current() -> Tracer | None:
    """The tracer in use, or ``None``."""
    return TRACER


__all__ = ["AttrValue", "Carrier", "Span", "TRACER", "Tracer", "current", "install", "run_carrier"]
