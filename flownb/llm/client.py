"""A thin wrapper over the official ``openai`` SDK's chat completions.

The async path (what the nodes use) keeps one ``openai.AsyncOpenAI`` — one httpx connection
pool — per event loop and server, so hundreds of node visits on one loop share connections and
run their requests concurrently; see :func:`async_client`.

Thin on purpose: retries (429, 5xx, timeouts, connection drops — with ``Retry-After`` honoured)
and timeouts are the SDK's own ``max_retries`` / ``timeout`` options, set per node, rather than a
second retry loop of ours that would multiply with the SDK's. What this module adds is what a
workflow needs around the call: one :class:`Completion` shape for plain and streamed calls,
token usage (estimated when a server does not report it), and SDK exceptions turned into one
:class:`~flownb.llm.errors.LLMError` whose message says what was tried and what came back.

``openai`` is imported inside the functions only: ``import flownb`` (and ``flownb.llm``, which
the offline fake needs) must work without it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..core.extras import install_hint
from .config import LLMSettings
from .errors import LLMError
from .fake import estimate_tokens, message_text
from .http_pool import cheap_readable_checks

TokenCallback = Callable[[str], None]
log = logging.getLogger("flownb.llm")

INSTALL_HINT = f"the LLM nodes need {install_hint('openai')}"


@dataclass
class Completion:
    """One model answer, however it was obtained (API, stream, cache or fake)."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    cached: bool = False
    estimated: bool = False  # True when token counts are ~len/4 guesses, not the server's

    def to_cache(self) -> dict[str, Any]:
        return {"text": self.text, "model": self.model, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "finish_reason": self.finish_reason,
                "estimated": self.estimated, "created": time.time()}

    @classmethod
    def from_cache(cls, d: Mapping[str, Any]) -> Completion:
        return cls(text=str(d.get("text", "")), model=str(d.get("model", "")),
                   prompt_tokens=int(d.get("prompt_tokens") or 0),
                   completion_tokens=int(d.get("completion_tokens") or 0),
                   finish_reason=d.get("finish_reason"), cached=True,
                   estimated=bool(d.get("estimated", False)))


def import_openai() -> ModuleType:
    """``import openai`` or a clear instruction to install it."""
    try:
        import openai
    except ImportError:
        raise LLMError(INSTALL_HINT) from None
    return openai


class TokenCoalescer:
    """Batches streamed token pieces into at most one callback per ``interval_s``.

    A model streams 30–100 pieces a second; an event per piece would flood the event bus (and a
    Redis stream, for distributed runs) and make notebook widgets redraw constantly. ~10 events a
    second still looks live. The first piece goes out at once so the user sees the start early.
    """

    def __init__(self, emit: TokenCallback, interval_s: float = 0.1) -> None:
        self._emit = emit
        self.interval_s = interval_s
        self._buf: list[str] = []
        self._last = float("-inf")
        self.events = 0

    def add(self, text: str) -> None:
        if not text:
            return
        self._buf.append(text)
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._flush(now)

    def flush(self) -> None:
        """Send what is buffered (call once when the stream ends)."""
        if self._buf:
            self._flush(time.monotonic())

    def _flush(self, now: float) -> None:
        text = "".join(self._buf)
        self._buf.clear()
        self._last = now
        self.events += 1
        self._emit(text)


# -- request building ------------------------------------------------------------------------------

_MAX_COMPLETION_TOKENS_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def request_kwargs(settings: LLMSettings, messages: Sequence[Mapping[str, Any]], *,
                   stream: bool) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for these settings."""
    kw: dict[str, Any] = {"model": settings.model, "messages": [dict(m) for m in messages]}
    if settings.temperature is not None:
        kw["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        # reasoning models reject max_tokens; OpenAI-compatible servers often only know it
        name = settings.model.rsplit("/", 1)[-1].lower()
        reasoning = name.startswith(_MAX_COMPLETION_TOKENS_PREFIXES)
        kw["max_completion_tokens" if reasoning else "max_tokens"] = settings.max_tokens
    if stream:
        kw["stream"] = True
        kw["stream_options"] = {"include_usage": True}
    return kw


_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def sync_client(settings: LLMSettings) -> Any:
    """An ``openai.OpenAI`` per (base URL, key), reused so connections are kept alive.

    Per-call ``max_retries`` / ``timeout`` are applied with ``with_options``, which shares the
    underlying HTTP client.
    """
    key = (settings.effective_base_url, settings.api_key or "")
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            openai = import_openai()
            client = openai.OpenAI(api_key=settings.api_key, base_url=settings.effective_base_url,
                                   max_retries=settings.max_retries, timeout=settings.timeout_s)
            _clients[key] = client
    return client.with_options(max_retries=settings.max_retries, timeout=settings.timeout_s)


def close_clients() -> None:
    """Close the pooled sync clients (tests; long-lived processes switching endpoints)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


# -- calls -----------------------------------------------------------------------------------------

def chat(settings: LLMSettings, messages: Sequence[Mapping[str, Any]], *,
         on_token: TokenCallback | None = None) -> Completion:
    """One chat completion, synchronously. Streams when ``settings.stream`` or ``on_token``."""
    openai = import_openai()
    client = sync_client(settings)
    stream = settings.stream or on_token is not None
    kw = request_kwargs(settings, messages, stream=stream)
    try:
        if not stream:  # one POST, no SDK models either way (.chat_post says why)
            from .chat_post import post_chat

            return post_chat(client, kw, settings, messages)
        acc = _StreamAccumulator(settings, messages, on_token)
        with client.chat.completions.create(**kw) as chunks:
            for chunk in chunks:
                acc.add(chunk)
        return acc.result()
    except openai.OpenAIError as exc:
        raise to_llm_error(exc, settings) from exc


# -- the async pool: one AsyncOpenAI per (event loop, base URL, key) ------------------------------

#: loop -> {(base_url, key): AsyncOpenAI}. An httpx async pool belongs to the loop that opened its
#: connections; sharing one across loops fails in odd ways ("Event loop is closed", futures
#: attached to a different loop). Keyed by loop — weakly, so a finished loop's clients go with it
#: — a notebook's helper-thread loop, a worker's loop and a test's loop each get their own pool,
#: and every call on one loop shares one pool (keep-alive, many requests in flight at once).
_aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], Any]] = \
    weakref.WeakKeyDictionary()
#: loop -> {(base_url, key, max_retries, timeout): that client's with_options copy}
_acopies: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                    dict[tuple[str, str, str, str], Any]] = weakref.WeakKeyDictionary()


def async_client(settings: LLMSettings) -> Any:
    """The shared ``openai.AsyncOpenAI`` of the running loop for these settings' server and key."""
    loop = asyncio.get_running_loop()
    key = (settings.effective_base_url, settings.api_key or "")
    with _clients_lock:
        per_loop = _aclients.get(loop)
        if per_loop is None:
            per_loop = _aclients[loop] = {}
        client = per_loop.get(key)
        if client is None:
            openai = import_openai()
            # openai's default pool limits (1000 connections, 100 kept alive): keeping 1000
            # alive made httpcore's pool scan every idle connection for each request, which
            # doubled in process run_many's CPU per call at 600 in flight (bench/README)
            http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [_on_response]})
            cheap_readable_checks(http)  # the pool's idle-connection check: .http_pool
            client = openai.AsyncOpenAI(api_key=settings.api_key,
                                        base_url=settings.effective_base_url,
                                        max_retries=settings.max_retries,
                                        timeout=settings.timeout_s, http_client=http)
            per_loop[key] = client
        # the per-call options' copy (same connections), kept too: with_options builds a whole
        # client (headers, resources), ~1.5% of a worker's CPU when made for every call
        copies = _acopies.get(loop)
        if copies is None:
            copies = _acopies[loop] = {}
        opts_key = (*key, str(settings.max_retries), str(settings.timeout_s))
        derived = copies.get(opts_key)
        if derived is None:
            derived = copies[opts_key] = client.with_options(max_retries=settings.max_retries,
                                                             timeout=settings.timeout_s)
    return derived


async def _on_response(response: Any) -> None:
    """Every HTTP answer, retries included: a 429 pushes the rate-limit bucket of its model back
    by ``Retry-After`` so that the other calls (on every worker) wait too."""
    if response.status_code != 429:
        return
    from .ratelimit import get_limiter, retry_after_s

    seconds = retry_after_s(response.headers)
    if seconds is None:
        return
    request = response.request
    try:
        model = str(json.loads(request.content or b"{}").get("model", ""))
    except ValueError:
        model = ""
    base = str(request.url).split("/chat/completions")[0].rstrip("/")
    limiter = get_limiter()
    limiter.backoff(f"{base}|{model}", seconds)
    limiter.backoff(base, seconds)


async def aclose_clients() -> None:
    """Close the running loop's pooled async clients (tests; before a loop is closed)."""
    loop = asyncio.get_running_loop()
    with _clients_lock:
        clients = list((_aclients.pop(loop, None) or {}).values())
        _acopies.pop(loop, None)  # they share the clients' connections
    for c in clients:
        try:
            await c.close()
        except Exception:
            log.debug("closing an async LLM client failed", exc_info=True)


async def achat(settings: LLMSettings, messages: Sequence[Mapping[str, Any]], *,
                on_token: TokenCallback | None = None) -> Completion:
    """:func:`chat` for async code, on the running loop's shared ``openai.AsyncOpenAI``."""
    openai = import_openai()
    stream = settings.stream or on_token is not None
    kw = request_kwargs(settings, messages, stream=stream)
    client = async_client(settings)
    try:
        if not stream:  # one POST, no SDK models either way (.chat_post says why)
            from .chat_post import apost_chat

            return await apost_chat(client, kw, settings, messages)
        acc = _StreamAccumulator(settings, messages, on_token)
        chunks = await client.chat.completions.create(**kw)
        async with chunks:
            async for chunk in chunks:
                acc.add(chunk)
        return acc.result()
    except openai.OpenAIError as exc:
        raise to_llm_error(exc, settings) from exc


class _StreamAccumulator:
    """Collects streamed chunks into a :class:`Completion`, passing text pieces to ``on_token``."""

    def __init__(self, settings: LLMSettings, messages: Sequence[Mapping[str, Any]],
                 on_token: TokenCallback | None) -> None:
        self.settings = settings
        self.messages = messages
        self.on_token = on_token
        self.parts: list[str] = []
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None

    def add(self, chunk: Any) -> None:
        self.model = self.model or getattr(chunk, "model", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.prompt_tokens = getattr(usage, "prompt_tokens", None)
            self.completion_tokens = getattr(usage, "completion_tokens", None)
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "index", 0) != 0:
                continue
            delta = getattr(choice, "delta", None)
            piece = getattr(delta, "content", None) if delta is not None else None
            if piece:
                self.parts.append(piece)
                if self.on_token is not None:
                    self.on_token(piece)
            if getattr(choice, "finish_reason", None):
                self.finish_reason = choice.finish_reason

    def result(self) -> Completion:
        text = "".join(self.parts)
        pt, ct = self.prompt_tokens, self.completion_tokens
        prompt_tokens = pt if pt is not None else estimate_tokens(message_text(self.messages))
        return Completion(text=text, model=self.model or self.settings.model,
                          prompt_tokens=prompt_tokens,
                          completion_tokens=ct if ct is not None else estimate_tokens(text),
                          finish_reason=self.finish_reason, estimated=pt is None or ct is None)


_RETRYABLE = frozenset({408, 409, 429})


def to_llm_error(exc: BaseException, settings: LLMSettings) -> LLMError:
    """An SDK exception as an :class:`LLMError` saying where, how often, and what came back."""
    openai = import_openai()
    url = settings.effective_base_url
    retries = settings.max_retries
    if isinstance(exc, openai.APITimeoutError):
        n = retries + 1
        return LLMError(f"request to {url} (model {settings.model!r}) timed out after "
                        f"timeout_s={settings.timeout_s:g} on each of {n} attempt(s) "
                        f"(max_retries={retries})", attempts=n)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        n = retries + 1 if (status in _RETRYABLE or status >= 500) else 1
        detail = _error_detail(exc)
        hint = ""
        if status == 401:
            hint = " — check OPENAI_API_KEY"
        elif status == 404:
            hint = f" — is {settings.model!r} a model this server knows?"
        elif status == 429:
            hint = " — rate limited; raise params.max_retries or slow down"
        return LLMError(f"request to {url} (model {settings.model!r}) failed with HTTP "
                        f"{status} after {n} attempt(s) (max_retries={retries}): {detail}{hint}",
                        status_code=status, attempts=n)
    if isinstance(exc, openai.APIConnectionError):
        n = retries + 1
        cause = exc.__cause__ or exc.__context__
        why = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return LLMError(f"could not connect to {url} after {n} attempt(s) "
                        f"(max_retries={retries}){why}", attempts=n)
    return LLMError(f"request to {url} (model {settings.model!r}) failed: "
                    f"{type(exc).__name__}: {exc}")


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    text = str(getattr(exc, "message", "") or exc)
    return text[:300]
