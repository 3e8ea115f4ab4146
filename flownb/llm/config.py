"""Which model a node talks to, resolved in one place.

A blueprint must run unchanged on a laptop with no key, in CI, and against the real API, so the
*blueprint* only says what it cares about (``model``, ``temperature``, a prompt) and everything
about *where* the model lives is resolved here, in this order — the first that says something
wins:

1. the node's ``params`` (``model``, ``temperature``, ``max_tokens``, ``system``, ``base_url``,
   ``max_retries``, ``timeout_s``, ``stream``, ``cache``, ``backend``, ``api_key_env``);
2. process-wide settings from :func:`configure` (a notebook cell sets them once);
3. the environment: ``FLOWNB_LLM`` (``fake`` forces the offline fake, ``openai`` forces the real
   client, anything else is a model name), ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
   ``FLOWNB_LLM_MODEL``;
4. defaults: model ``gpt-4o-mini`` — and with neither a key nor a base URL anywhere, the offline
   :class:`~flownb.llm.fake.FakeLLM`, so a tutorial never fails for want of a key.

API keys are deliberately *not* read from node params: blueprints are shareable data and must not
carry secrets. A node that needs a different key names the environment variable holding it
(``api_key_env``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from .errors import LLMConfigError

if TYPE_CHECKING:
    from .cache import Cache
    from .fake import FakeLLM

Backend = Literal["fake", "openai"]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MAX_RETRIES = 2
DEFAULT_TIMEOUT_S = 60.0
#: the key sent to a custom ``base_url`` when none is configured: local OpenAI-compatible servers
#: (vLLM, Ollama, llama.cpp) ignore it, but the SDK refuses to start without one
PLACEHOLDER_KEY = "sk-flownb-no-key"

_UNSET: Any = object()


@dataclass(frozen=True)
class LLMSettings:
    """Everything one model call needs to know, after resolution. Immutable so it can be shared."""

    backend: Backend
    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout_s: float = DEFAULT_TIMEOUT_S
    stream: bool = False
    use_cache: bool = True

    @property
    def effective_base_url(self) -> str:
        """The URL requests go to (the SDK's default when none is set)."""
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")

    def describe(self) -> str:
        """One line for humans: which model answers, and where."""
        if self.backend == "fake":
            return ("LLM: offline fake model (set OPENAI_API_KEY or FLOWNB_LLM=openai for a "
                    "real one)")
        return f"LLM: {self.model} at {self.effective_base_url}"


@dataclass
class _Globals:
    """What :func:`configure` set; ``None`` means "not set here, look further"."""

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    backend: Backend | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    system: str | None = None
    max_retries: int | None = None
    timeout_s: float | None = None
    stream: bool | None = None
    cache: Any = None  # None (unset) | bool | Cache instance
    fake: FakeLLM | None = None


_lock = threading.Lock()
_globals = _Globals()


def configure(*, model: str | None = _UNSET, base_url: str | None = _UNSET,
              api_key: str | None = _UNSET, cache: bool | Cache | None = _UNSET,
              backend: Backend | None = _UNSET, temperature: float | None = _UNSET,
              max_tokens: int | None = _UNSET, system: str | None = _UNSET,
              max_retries: int | None = _UNSET, timeout_s: float | None = _UNSET,
              stream: bool | None = _UNSET, fake: FakeLLM | None = _UNSET) -> None:
    """Set process-wide LLM defaults (node params still win). Pass ``None`` to unset one.

    ``cache`` is ``True`` (the default on-disk cache), ``False`` (off) or a cache object such as
    :class:`~flownb.llm.cache.RedisCache`; ``fake`` installs a :class:`~flownb.llm.fake.FakeLLM`
    with your own handler; ``backend`` forces ``"fake"`` or ``"openai"``.
    """
    if backend not in (_UNSET, None, "fake", "openai"):
        raise LLMConfigError(f"backend must be 'fake' or 'openai', got {backend!r}")
    given = {k: v for k, v in dict(model=model, base_url=base_url, api_key=api_key, cache=cache,
                                   backend=backend, temperature=temperature,
                                   max_tokens=max_tokens, system=system, max_retries=max_retries,
                                   timeout_s=timeout_s, stream=stream, fake=fake).items()
             if v is not _UNSET}
    with _lock:
        for k, v in given.items():
            setattr(_globals, k, v)
    if "cache" in given:
        from . import cache as _cache

        _cache.reset_default_cache()


def reset() -> None:
    """Forget everything :func:`configure` set (tests use this between cases)."""
    global _globals
    with _lock:
        _globals = _Globals()
    from . import cache as _cache

    _cache.reset_default_cache()


def current_globals() -> _Globals:
    """A copy of the :func:`configure` settings."""
    with _lock:
        return replace(_globals)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def _as_float(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LLMConfigError(f"params.{name} must be a number, got {value!r}") from None


def _as_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise LLMConfigError(f"params.{name} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LLMConfigError(f"params.{name} must be an integer, got {value!r}") from None


def _as_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def resolve(params: Mapping[str, Any] | None = None) -> LLMSettings:
    """Resolve the settings for a node with these ``params`` (see the module docstring)."""
    p = params or {}
    g = current_globals()
    env_llm = _env("FLOWNB_LLM")
    env_backend: Backend | None = None
    env_model: str | None = None
    if env_llm is not None:
        low = env_llm.lower()
        if low in ("fake", "offline", "mock"):
            env_backend = "fake"
        elif low in ("openai", "real"):
            env_backend = "openai"
        else:
            env_model = env_llm

    key_env = p.get("api_key_env")
    node_key = _env(str(key_env)) if key_env else None
    if key_env and node_key is None:
        raise LLMConfigError(f"params.api_key_env names {key_env!r}, but that environment "
                             "variable is not set")
    api_key: str | None = _first(node_key, g.api_key, _env("OPENAI_API_KEY"))
    base_url: str | None = _first(p.get("base_url"), g.base_url, _env("OPENAI_BASE_URL"))

    backend_param = p.get("backend")
    if backend_param not in (None, "fake", "openai"):
        raise LLMConfigError(f"params.backend must be 'fake' or 'openai', got {backend_param!r}")
    backend: Backend | None = _first(backend_param, g.backend, env_backend)
    if backend is None:
        backend = "openai" if (api_key or base_url) else "fake"

    if backend == "openai" and not api_key:
        if base_url and base_url.rstrip("/") != DEFAULT_BASE_URL:
            api_key = PLACEHOLDER_KEY
        else:
            raise LLMConfigError("the real OpenAI client was requested but no API key is set; "
                                 "set OPENAI_API_KEY (or flownb.llm.configure(api_key=...)), or "
                                 "FLOWNB_LLM=fake for the offline fake")

    model = str(_first(p.get("model"), g.model, env_model, _env("FLOWNB_LLM_MODEL"),
                       DEFAULT_MODEL))
    temperature = _as_float("temperature", _first(p.get("temperature"), g.temperature))
    max_tokens = _as_int("max_tokens", _first(p.get("max_tokens"), g.max_tokens))
    max_retries = _as_int("max_retries", _first(p.get("max_retries"), g.max_retries))
    timeout_s = _as_float("timeout_s", _first(p.get("timeout_s"), g.timeout_s))
    if max_retries is not None and max_retries < 0:
        raise LLMConfigError(f"params.max_retries must be >= 0, got {max_retries}")
    if timeout_s is not None and timeout_s <= 0:
        raise LLMConfigError(f"params.timeout_s must be > 0, got {timeout_s}")
    system = _first(p.get("system"), g.system)
    stream = _as_bool(_first(p.get("stream"), g.stream))
    node_cache = _as_bool(p.get("cache"))
    return LLMSettings(
        backend=backend,
        model=model,
        base_url=str(base_url).rstrip("/") if base_url else None,
        api_key=api_key if backend == "openai" else None,
        temperature=temperature,
        max_tokens=max_tokens,
        system=str(system) if system is not None else None,
        max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
        timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        stream=bool(stream),
        use_cache=node_cache is not False,
    )


def describe(params: Mapping[str, Any] | None = None) -> str:
    """One line saying which model is live, e.g. ``"LLM: gpt-4o-mini at https://api.openai.com/v1"``.

    Shown at the top of notebooks and by the CLI so nobody wonders whether the answers they see
    came from a real model or from the offline fake.
    """
    try:
        return resolve(params).describe()
    except LLMConfigError as exc:
        return f"LLM: misconfigured — {exc.message}"
