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

from .cache import Cache, cache_key, get_cache
from .client import Completion, TokenCoalescer, chat
from .config import LLMSettings, current_globals, resolve
from .fake import FakeLLM, estimate_tokens, message_text
from .prices import cost_usd

log = logging.getLogger("flownb.llm")

#: ``emit(name, **data)`` — ``NodeContext.emit`` has this shape
Emit = Callable[..., None]

TOKEN_EVENT = "llm_token"
USAGE_EVENT = "llm_usage"
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


def generate(settings: LLMSettings, messages: Sequence[Mapping[str, Any]], *,
             emit: Emit | None = None, fake_params: Mapping[str, Any] | None = None) -> Completion:
    """Answer ``messages`` with the model ``settings`` pick; report tokens and usage via ``emit``.

    ``fake_params`` are the hints the offline fake uses (``task``, ``choices``, ``content``…);
    the real model never sees them.
    """
    coalescer: TokenCoalescer | None = None
    if settings.stream and emit is not None:
        coalescer = TokenCoalescer(lambda text: emit(TOKEN_EVENT, text=text),
                                   interval_s=1.0 / TOKEN_EVENTS_PER_S)

    if settings.backend == "fake":
        comp = _fake_call(settings, messages, fake_params or {}, coalescer)
    else:
        comp = _real_call(settings, messages, coalescer)
    if coalescer is not None:
        coalescer.flush()
    if emit is not None:
        emit(USAGE_EVENT, **usage_data(comp, backend=settings.backend))
    return comp


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


def _real_call(settings: LLMSettings, messages: Sequence[Mapping[str, Any]],
               coalescer: TokenCoalescer | None) -> Completion:
    cache: Cache | None = get_cache() if settings.use_cache else None
    key = ""
    if cache is not None:
        key = cache_key(settings.model, messages, settings.temperature, settings.max_tokens,
                        settings.effective_base_url)
        try:
            hit = cache.get(key)
        except Exception:  # noqa: BLE001 - an unreachable cache must not fail the run
            log.warning("LLM cache lookup failed; calling the model", exc_info=True)
            hit = None
        if hit is not None:
            comp = Completion.from_cache(hit)
            if coalescer is not None:
                coalescer.add(comp.text)  # one piece: the whole answer, at once
            return comp
    comp = chat(settings, messages, on_token=coalescer.add if coalescer is not None else None)
    if cache is not None:
        try:
            cache.set(key, comp.to_cache())
        except Exception:  # noqa: BLE001
            log.warning("LLM cache write failed", exc_info=True)
    return comp


def complete(prompt: str, *, system: str | None = None, emit: Emit | None = None,
             **params: Any) -> str:
    """Ask the configured model one question, outside any workflow (notebooks, quick checks).

    ``params`` are the same as a node's (``model``, ``temperature``, ``base_url``, …).
    """
    if system is not None:
        params["system"] = system
    settings = resolve(params)
    return generate(settings, build_messages(prompt, settings.system), emit=emit).text
