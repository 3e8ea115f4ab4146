"""One model call with everything around it: fake or real, cache, token streaming, usage event.

The nodes and :func:`complete` share this so every path reports the same way: after each call an
``llm_usage`` event (model, tokens, cost, cached) and, when streaming, ``llm_token`` events with
text pieces — which is what the notebook widget and the progress bar show.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core import tracing
from .cache import Cache, cache_key, get_cache
from .client import Completion, TokenCoalescer, achat, async_client, chat, sync_client
from .config import LLMSettings, current_globals, resolve
from .fake import FakeLLM, estimate_tokens, message_text
from .prices import cost_usd
from .ratelimit import acquire, acquire_sync
from .tracing import llm_span, record

log = logging.getLogger("flownb.llm")

#: ``emit(name, **data)`` — ``NodeContext.emit`` has this shape
Emit = Callable[..., None]

TOKEN_EVENT = "llm_token"
USAGE_EVENT = "llm_usage"
#: emitted when a call waits longer than ``ratelimit.LONG_WAIT_S`` for its rate-limit slot
RATE_LIMITED_EVENT = "llm_rate_limited"
#: at most this many ``llm_token`` events per second per call
TOKEN_EVENTS_PER_S = 10.0

_default_fake: FakeLLM | None = None
_fake_lock = threading.Lock()


def active_fake() -> FakeLLM:
    """The fake in use: ``configure(fake=...)`` or a shared default one."""
    configured = current_globals().fake
    if configured is not None:
        return configured
    global _default_fake
    with _fake_lock:
        if _default_fake is None:
            _default_fake = FakeLLM()
        return _default_fake


def build_messages(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return messages


def _coalescer(settings: LLMSettings, emit: Emit | None) -> TokenCoalescer | None:
    if settings.stream and emit is not None:
        return TokenCoalescer(lambda text: emit(TOKEN_EVENT, text=text),
                              interval_s=1.0 / TOKEN_EVENTS_PER_S)
    return None


def _finish(comp: Completion, settings: LLMSettings, coalescer: TokenCoalescer | None,
            emit: Emit | None) -> Completion:
    if coalescer is not None:
        coalescer.flush()
    if emit is not None:
        emit(USAGE_EVENT, **usage_data(comp, backend=settings.backend))
    return comp


def generate(settings: LLMSettings, messages: Sequence[Mapping[str, Any]], *,
             emit: Emit | None = None, fake_params: Mapping[str, Any] | None = None) -> Completion:
    """Answer ``messages`` with the model ``settings`` pick; report tokens and usage via ``emit``.

    ``fake_params`` are the hints the offline fake uses (``task``, ``choices``, ``content``…);
    the real model never sees them. Synchronous (:func:`complete`); nodes use :func:`agenerate`.
    """
    tr = tracing.TRACER
    if tr is None:
        return _generate(settings, messages, emit, fake_params)
    with llm_span(tr, settings) as span:
        comp = _generate(settings, messages, emit, fake_params)
        record(span, comp)
        return comp


def _generate(settings: LLMSettings, messages: Sequence[Mapping[str, Any]], emit: Emit | None,
              fake_params: Mapping[str, Any] | None) -> Completion:
    coalescer = _coalescer(settings, emit)
    comp, cache, key = _local_answer(settings, messages, fake_params, coalescer)
    if comp is None:
        if settings.rate_limit:
            sync_client(settings)  # see agenerate
            acquire_sync(settings.rate_key, settings.rate_limit, _charge(settings, messages),
                         on_wait=_wait_reporter(settings, emit))
        comp = chat(settings, messages, on_token=coalescer.add if coalescer is not None else None)
        _cache_store(cache, key, comp)
    return _finish(comp, settings, coalescer, emit)


async def agenerate(settings: LLMSettings, messages: Sequence[Mapping[str, Any]], *,
                    emit: Emit | None = None,
                    fake_params: Mapping[str, Any] | None = None) -> Completion:
    """:func:`generate` on the running loop's shared async client, behind the rate limit."""
    tr = tracing.TRACER
    if tr is None:
        return await _agenerate(settings, messages, emit, fake_params)
    with llm_span(tr, settings) as span:
        comp = await _agenerate(settings, messages, emit, fake_params)
        record(span, comp)
        return comp


async def _agenerate(settings: LLMSettings, messages: Sequence[Mapping[str, Any]],
                     emit: Emit | None, fake_params: Mapping[str, Any] | None) -> Completion:
    coalescer = _coalescer(settings, emit)
    comp, cache, key = _local_answer(settings, messages, fake_params, coalescer)
    if comp is None:
        if settings.rate_limit:
            # build (or fetch) the pool first: the first call of a process imports openai,
            # which must not sit between the granted slot and the request it was granted for
            async_client(settings)
            await acquire(settings.rate_key, settings.rate_limit, _charge(settings, messages),
                          on_wait=_wait_reporter(settings, emit))
        comp = await achat(settings, messages,
                           on_token=coalescer.add if coalescer is not None else None)
        _cache_store(cache, key, comp)
    return _finish(comp, settings, coalescer, emit)


def _wait_reporter(settings: LLMSettings, emit: Emit | None) -> Callable[[float, float], None]:
    """Tell the run when a call waits long for its rate-limit slot (``llm_rate_limited``: the
    seconds, until when, and the bucket), so a slow run says why."""
    def report(seconds: float, until: float) -> None:
        if emit is not None:
            emit(RATE_LIMITED_EVENT, wait_s=round(seconds, 3), until=until,
                 bucket=settings.rate_key, rpm=settings.rpm, tpm=settings.tpm)
    return report


def _local_answer(settings: LLMSettings, messages: Sequence[Mapping[str, Any]],
                  fake_params: Mapping[str, Any] | None, coalescer: TokenCoalescer | None,
                  ) -> tuple[Completion | None, Cache | None, str]:
    """The answer when no request is needed (the fake, a cache hit), else ``(None, cache, key)``
    for storing the answer the caller fetches."""
    if settings.backend == "fake":
        return _fake_call(settings, messages, fake_params or {}, coalescer), None, ""
    cache, key, hit = _cache_lookup(settings, messages, coalescer)
    return hit, cache, key


def _charge(settings: LLMSettings, messages: Sequence[Mapping[str, Any]]) -> int:
    """Tokens a call is charged against ``tpm`` before it is sent: prompt estimate + max_tokens."""
    if not settings.tpm:
        return 0
    return estimate_tokens(message_text(messages)) + (settings.max_tokens or 0)


def usage_data(comp: Completion, *, backend: str = "openai") -> dict[str, Any]:
    """The fields of an ``llm_usage`` event. A cached answer cost nothing this time."""
    cost = cost_usd(comp.model, comp.prompt_tokens, comp.completion_tokens)
    if comp.cached and cost is not None:
        cost = 0.0
    return {"model": comp.model, "prompt_tokens": comp.prompt_tokens,
            "completion_tokens": comp.completion_tokens,
            "total_tokens": comp.prompt_tokens + comp.completion_tokens,
            "cost_usd": cost, "cached": comp.cached, "estimated": comp.estimated,
            "backend": backend}


def _fake_call(settings: LLMSettings, messages: Sequence[Mapping[str, Any]],
               hints: Mapping[str, Any], coalescer: TokenCoalescer | None) -> Completion:
    fake = active_fake()
    params = {"model": settings.model, "temperature": settings.temperature,
              "max_tokens": settings.max_tokens, **hints}
    if coalescer is not None:
        pieces = list(fake.stream(messages, params))
        for piece in pieces:
            coalescer.add(piece)
        text = "".join(pieces)
    else:
        text = fake.complete(messages, params)
    return Completion(text=text, model=FakeLLM.model,
                      prompt_tokens=estimate_tokens(message_text(messages)),
                      completion_tokens=estimate_tokens(text), finish_reason="stop",
                      estimated=True)


def _cache_lookup(settings: LLMSettings, messages: Sequence[Mapping[str, Any]],
                  coalescer: TokenCoalescer | None) -> tuple[Cache | None, str, Completion | None]:
    """``(cache, key, cached answer or None)``; an unreachable cache is a miss, never a failure."""
    cache: Cache | None = get_cache() if settings.use_cache else None
    if cache is None:
        return None, "", None
    key = cache_key(settings.model, messages, settings.temperature, settings.max_tokens,
                    settings.effective_base_url)
    try:
        hit = cache.get(key)
    except Exception:  # noqa: BLE001 - an unreachable cache must not fail the run
        log.warning("LLM cache lookup failed; calling the model", exc_info=True)
        hit = None
    if hit is None:
        return cache, key, None
    comp = Completion.from_cache(hit)
    if coalescer is not None:
        coalescer.add(comp.text)  # one piece: the whole answer, at once
    return cache, key, comp


def _cache_store(cache: Cache | None, key: str, comp: Completion) -> None:
    if cache is None:
        return
    try:
        cache.set(key, comp.to_cache())
    except Exception:  # noqa: BLE001
        log.warning("LLM cache write failed", exc_info=True)


def complete(prompt: str, *, system: str | None = None, emit: Emit | None = None,
             **params: Any) -> str:
    """Ask the configured model one question, outside any workflow (notebooks, quick checks).

    ``params`` are the same as a node's (``model``, ``temperature``, ``base_url``, …).
    """
    if system is not None:
        params["system"] = system
    settings = resolve(params)
    return generate(settings, build_messages(prompt, settings.system), emit=emit).text
