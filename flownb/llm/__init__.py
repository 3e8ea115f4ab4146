"""flownb's LLM layer: the ``llm-process``, ``llm-condition`` and ``llm-router`` node types.

Works out of the box with no key — an offline, deterministic :class:`FakeLLM` answers — and
with the real ``openai`` SDK as soon as ``OPENAI_API_KEY`` (or a ``base_url``) is set::

    import flownb.llm
    print(flownb.llm.describe())          # which model is live
    flownb.llm.configure(model="gpt-4o-mini", cache=True)

Importing this package does not import ``openai``; only a real model call does.

Layer: llm, beside engine and render. It owns the LLM node types, the clients (openai or the
fake model), the cache and prices. It may import :mod:`flownb.core` and openai — never
``flownb.engine``, ``flownb.render``, ``flownb.distributed``, ``flownb.notebook`` or ``flownb.cli``.
"""

from __future__ import annotations

from .cache import Cache, DiskCache, MemoryCache, RedisCache, cache_key, default_cache_dir, get_cache
from .client import Completion, TokenCoalescer, aclose_clients, achat, chat
from .config import DEFAULT_MODEL, LLMSettings, configure, describe, reset, resolve
from .errors import LLMConfigError, LLMError
from .fake import FakeLLM
from .nodes import llm_condition, llm_process, llm_router
from .notice import FakeModelWarning
from .prices import PRICES, PRICES_AS_OF, cost_usd
from .ratelimit import MemoryRateLimiter, RateLimit, RateLimiter, get_limiter, set_limiter
from .runner import TOKEN_EVENT, USAGE_EVENT, agenerate, complete, generate

__all__ = [
    "Cache", "DiskCache", "MemoryCache", "RedisCache", "cache_key", "default_cache_dir",
    "get_cache", "Completion", "TokenCoalescer", "achat", "chat", "DEFAULT_MODEL", "LLMSettings",
    "configure", "describe", "reset", "resolve", "LLMConfigError", "LLMError", "FakeLLM",
    "llm_condition", "llm_process", "llm_router", "PRICES", "cost_usd", "TOKEN_EVENT",
    "USAGE_EVENT", "complete", "generate", "agenerate", "aclose_clients", "PRICES_AS_OF",
    "MemoryRateLimiter", "RateLimit", "RateLimiter", "get_limiter", "set_limiter",
    "FakeModelWarning",
]
