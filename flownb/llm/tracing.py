"""The span of one model call, in the OpenTelemetry GenAI semantic conventions' words.

The conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/) name an
inference span ``{gen_ai.operation.name} {gen_ai.request.model}``, kind CLIENT, with the
provider, the request parameters, the server and the token usage; LLM-ops tools (Langfuse,
Phoenix, Honeycomb, …) read exactly these names. Both ``gen_ai.provider.name`` (current) and
``gen_ai.system`` (before v1.37) are set, so older and newer readers agree. flownb's own facts
(a cache hit, estimated token counts, the cost) go under ``flownb.llm.*``. Nothing here runs when
tracing is off (:data:`flownb.core.tracing.TRACER` is ``None``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.tracing import Span, Tracer
from .config import LLMSettings
from .prices import cost_usd

if TYPE_CHECKING:
    from .client import Completion

#: the provider flownb's OpenAI-compatible client speaks to, and what the fake is called
PROVIDERS = {"openai": "openai", "fake": "flownb.fake"}


def llm_span(tracer: Tracer, settings: LLMSettings) -> AbstractContextManager[Span]:
    """Open the span of one chat call with what is known before it is sent."""
    provider = PROVIDERS.get(settings.backend, settings.backend)
    attrs: dict[str, Any] = {"gen_ai.provider.name": provider, "gen_ai.system": provider,
                             "gen_ai.request.temperature": settings.temperature,
                             "gen_ai.request.max_tokens": settings.max_tokens,
                             "flownb.llm.stream": bool(settings.stream)}
    if settings.backend != "fake":
        url = urlsplit(settings.effective_base_url)
        attrs["server.address"] = url.hostname
        attrs["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    return tracer.llm("chat", settings.model, attrs)


def record(span: Span, comp: Completion) -> None:
    """The answer's facts on the span: response model, token usage, finish reason, cache, cost."""
    span.set("gen_ai.response.model", comp.model)
    span.set("gen_ai.usage.input_tokens", comp.prompt_tokens)
    span.set("gen_ai.usage.output_tokens", comp.completion_tokens)
    if comp.finish_reason:
        span.set("gen_ai.response.finish_reasons", [comp.finish_reason])
    span.set("flownb.llm.cached", comp.cached)
    span.set("flownb.llm.estimated", comp.estimated)
    cost = cost_usd(comp.model, comp.prompt_tokens, comp.completion_tokens)
    span.set("flownb.llm.cost_usd", 0.0 if comp.cached and cost is not None else cost)


__all__ = ["PROVIDERS", "llm_span", "record"]
