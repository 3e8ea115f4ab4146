"""Which model a node talks to, resolved in one place.

A blueprint must run unchanged on a laptop with no key, in CI, and against the real API, so the
*blueprint* only says what it cares about (``model``, ``temperature``, a prompt) and everything
about *where* the model lives is resolved here, in this order — the first that says something
wins:

1. the node's ``params`` (``model``, ``temperature``, ``max_tokens``, ``system``, ``base_url``,
   ``max_retries``, ``timeout_s``, ``stream``, ``cache``, ``backend``, ``api_key_env``);
2. process-wide settings from :func:`configure` (a notebook cell sets them once);
3. the environment: ``FLOWNB_LLM`` (``fake`` forces the offline fake, ``openai`` forces the real
   client; any other value is refused, so a typo never silently means "fake"),
   ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``FLOWNB_LLM_MODEL``, ``FLOWNB_LLM_RPM``,
   ``FLOWNB_LLM_TPM`` — and a ``.env`` file in the working directory, read once with
   python-dotenv, never overriding a variable that is already set;
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

from ..core.rate_bounds import rate_problem
from .errors import LLMConfigError
from .ratelimit import RateLimit
from .trust import check_base_url, check_key_env

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

#: accepted values of ``FLOWNB_LLM`` and the backend each forces
FLOWNB_LLM_VALUES: dict[str, Backend] = {"fake": "fake", "offline": "fake", "mock": "fake",
                                         "openai": "openai", "real": "openai"}
RATE_SCOPES = ("model", "base_url")


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
    #: requests / tokens per minute; ``None`` = unlimited (see :mod:`flownb.llm.ratelimit`)
    rpm: float | None = None
    tpm: float | None = None
    rate_burst: int = 1
    #: which calls share a budget: ``"model"`` (base URL + model) or ``"base_url"``
    rate_scope: str = "model"

    @property
    def effective_base_url(self) -> str:
        """The URL requests go to (the SDK's default when none is set)."""
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")

    @property
    def rate_limit(self) -> RateLimit:
        return RateLimit(rpm=self.rpm, tpm=self.tpm, burst=self.rate_burst)

    @property
    def rate_key(self) -> str:
        """The bucket this call draws from."""
        if self.rate_scope == "base_url":
            return self.effective_base_url
        return f"{self.effective_base_url}|{self.model}"

    def describe(self) -> str:
        """One line for humans: which model answers, and where."""
        if self.backend == "fake":
            return ("LLM: offline fake model (set OPENAI_API_KEY or FLOWNB_LLM=openai for a "
                    "real one)")
        return f"LLM: {self.model} at {self.effective_base_url}"


@dataclass(frozen=True)
class _Globals:
    """What :func:`configure` set; ``None`` means "not set here, look further".

    Frozen: :func:`configure` swaps in a new one, so every LLM call reads the one in force
    without a copy (a copy per call was ~2% of a worker's CPU with 128 calls in flight)."""

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
    rpm: float | None = None
    tpm: float | None = None
    rate_burst: int | None = None
    rate_scope: str | None = None


_lock = threading.Lock()
_globals = _Globals()


def configure(*, model: str | None = _UNSET, base_url: str | None = _UNSET,
              api_key: str | None = _UNSET, cache: bool | Cache | None = _UNSET,
              backend: Backend | None = _UNSET, temperature: float | None = _UNSET,
              max_tokens: int | None = _UNSET, system: str | None = _UNSET,
              max_retries: int | None = _UNSET, timeout_s: float | None = _UNSET,
              stream: bool | None = _UNSET, fake: FakeLLM | None = _UNSET,
              rpm: float | None = _UNSET, tpm: float | None = _UNSET,
              rate_burst: int | None = _UNSET, rate_scope: str | None = _UNSET) -> None:
    """Set process-wide LLM defaults (node params still win). Pass ``None`` to unset one.

    ``cache`` is ``True`` (the default on-disk cache), ``False`` (off) or a cache object such as
    :class:`~flownb.llm.cache.RedisCache`; ``fake`` installs a :class:`~flownb.llm.fake.FakeLLM`
    with your own handler; ``backend`` forces ``"fake"`` or ``"openai"``; ``rpm`` / ``tpm``
    limit requests / tokens per minute per model (``rate_scope="base_url"``: per server).
    """
    if backend not in (_UNSET, None, "fake", "openai"):
        raise LLMConfigError(f"backend must be 'fake' or 'openai', got {backend!r}")
    if rate_scope not in (_UNSET, None, *RATE_SCOPES):
        raise LLMConfigError(f"rate_scope must be one of {RATE_SCOPES}, got {rate_scope!r}")
    for name, value in (("rpm", rpm), ("tpm", tpm), ("rate_burst", rate_burst)):
        problem = None if value is _UNSET else rate_problem(name, value)
        if problem is not None:
            raise LLMConfigError(problem)
    asked: dict[str, Any] = dict(model=model, base_url=base_url, api_key=api_key, cache=cache,
                                 backend=backend, temperature=temperature,
                                 max_tokens=max_tokens, system=system, max_retries=max_retries,
                                 timeout_s=timeout_s, stream=stream, fake=fake, rpm=rpm,
                                 tpm=tpm, rate_burst=rate_burst, rate_scope=rate_scope)
    given = {k: v for k, v in asked.items() if v is not _UNSET}
    global _globals
    with _lock:
        _globals = replace(_globals, **given)
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
    """The :func:`configure` settings in force (never changed in place: see :class:`_Globals`)."""
    return _globals


_dotenv_done = False


def load_dotenv_once() -> None:
    """Read ``.env`` from the working directory once per process (python-dotenv), without
    overriding variables already set — the usual set-up step of OpenAI examples, Flowcraft's too.
    Quietly nothing when python-dotenv is not installed or there is no file."""
    global _dotenv_done
    if _dotenv_done:
        return
    _dotenv_done = True
    path = os.path.join(os.getcwd(), ".env")
    if not os.path.isfile(path):
        return
    try:
        from dotenv import load_dotenv
    except ImportError:
        return
    try:
        load_dotenv(path, override=False)
    except (UnicodeDecodeError, OSError, ValueError) as exc:  # must not break every command
        import logging

        logging.getLogger("flownb.llm").warning(
            "flownb: ignoring %s: it cannot be read as UTF-8 text of NAME=value lines (%s)",
            path, exc)


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
    """Resolve the settings for a node with these ``params`` (see the module docstring); warns
    once per model when the offline fake answers for a model someone named (:mod:`.notice`)."""
    settings, named = _resolve(params)
    if named is not None:
        from .notice import warn_once

        warn_once(*named)
    return settings


def fake_for_named_model(params: Mapping[str, Any] | None = None) -> tuple[str, str] | None:
    """``(model, where it was named)`` when the fake answers only for want of a key although a
    model was named (params, :func:`configure` or ``FLOWNB_LLM_MODEL``); else ``None``."""
    return _resolve(params)[1]


def _resolve(params: Mapping[str, Any] | None) -> tuple[LLMSettings, tuple[str, str] | None]:
    load_dotenv_once()
    p = params or {}
    g = current_globals()
    env_llm = _env("FLOWNB_LLM")
    env_backend: Backend | None = None
    if env_llm is not None:
        env_backend = FLOWNB_LLM_VALUES.get(env_llm.lower())
        if env_backend is None:
            raise LLMConfigError(
                f"FLOWNB_LLM={env_llm!r} is not a valid value; use one of "
                f"{', '.join(sorted(FLOWNB_LLM_VALUES))} (or unset it: with OPENAI_API_KEY or "
                "OPENAI_BASE_URL set the real client is used, else the offline fake). "
                "A model name goes in FLOWNB_LLM_MODEL")

    key_env = p.get("api_key_env")
    if key_env:
        check_key_env(str(key_env))  # only a variable the operator allowed (flownb.llm.trust)
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
    defaulted = backend is None
    if backend is None:
        backend = "openai" if (api_key or base_url) else "fake"

    if backend == "openai" and p.get("base_url"):  # a blueprint must not pick the server
        check_base_url(str(p["base_url"]),
                       str(_first(g.base_url, _env("OPENAI_BASE_URL"), DEFAULT_BASE_URL)))
    if backend == "openai" and not api_key:
        if base_url and base_url.rstrip("/") != DEFAULT_BASE_URL:
            api_key = PLACEHOLDER_KEY
        else:
            raise LLMConfigError("the real OpenAI client was requested but no API key is set; "
                                 "set OPENAI_API_KEY (or flownb.llm.configure(api_key=...)), or "
                                 "FLOWNB_LLM=fake for the offline fake")

    model = str(_first(p.get("model"), g.model, _env("FLOWNB_LLM_MODEL"), DEFAULT_MODEL))
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
    rpm = _as_float("rpm", _first(p.get("rpm"), g.rpm, _env("FLOWNB_LLM_RPM")))
    tpm = _as_float("tpm", _first(p.get("tpm"), g.tpm, _env("FLOWNB_LLM_TPM")))
    burst = _as_int("rate_burst", _first(p.get("rate_burst"), g.rate_burst))
    scope = str(_first(p.get("rate_scope"), g.rate_scope, "model"))
    if scope not in RATE_SCOPES:
        raise LLMConfigError(f"params.rate_scope must be one of {RATE_SCOPES}, got {scope!r}")
    for name, value in (("rpm", rpm), ("tpm", tpm), ("rate_burst", burst)):
        problem = rate_problem(name, value)  # NaN, inf, 0, < 1 per minute: refused
        if problem is not None:
            raise LLMConfigError(problem)
    named = None
    if defaulted and backend == "fake":  # nobody asked for the fake: was a model named?
        named = next(((str(v), src) for v, src in ((p.get("model"), "the node's params.model"),
                                                   (g.model, "flownb.llm.configure(model=...)"),
                                                   (_env("FLOWNB_LLM_MODEL"), "FLOWNB_LLM_MODEL"))
                      if v), None)
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
        use_cache=cache_wanted(node_cache, temperature),
        rpm=rpm,
        tpm=tpm,
        rate_burst=max(1, burst or 1),
        rate_scope=scope,
    ), named


def cache_wanted(node_cache: bool | None, temperature: float | None) -> bool:
    """Whether a call's answer is cached: ``cache: false`` never; ``cache: true`` (or
    ``FLOWNB_LLM_CACHE=always``) always; otherwise only deterministic calls — a sampled answer
    (temperature > 0) is meant to vary between runs, so replaying one would be a silent change of
    meaning."""
    if node_cache is not None:
        return node_cache
    if (_env("FLOWNB_LLM_CACHE") or "").lower() == "always":
        return True
    return temperature is None or temperature <= 0


def describe(params: Mapping[str, Any] | None = None) -> str:
    """One line saying which model is live, e.g. ``"LLM: gpt-4o-mini at https://api.openai.com/v1"``.

    Shown at the top of notebooks and by the CLI so nobody wonders whether the answers they see
    came from a real model or from the offline fake.
    """
    try:
        return resolve(params).describe()
    except LLMConfigError as exc:
        return f"LLM: misconfigured — {exc.message}"
