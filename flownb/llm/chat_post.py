"""A plain (non-streamed) chat completion as one ``POST``, its JSON answer read as a dict.

Why not ``client.chat.completions.create``: before it sends anything, the SDK walks the request
through its typed-dict transform (``async_maybe_transform``: every key of ~40 parameters looked
up in ``TypedDict`` annotations, hashing ``Literal`` types on the way), and after the answer it
builds pydantic models of the whole reply (``ChatCompletion``, its choices, message, usage).
For the plain messages flownb sends — strings in dicts — the transform changes nothing, and
flownb reads four fields of the reply. py-spy on a cluster worker running the moderation agent
put the two at ~18% of its CPU (the transform alone ~13%), more than flownb's own Redis calls.

So the request goes through the SDK's documented low-level call (``client.post(path, body=...,
cast_to=object)``, openai's README: "undocumented endpoints"): the same client, connection
pool, headers and auth, base URL, retries with back-off and ``Retry-After``, timeout, and the
same exceptions (``APIStatusError`` …, turned into :class:`~.errors.LLMError` by the caller) —
only without the two conversions. Streamed calls still use ``create`` (one call, many chunks).
"""

from __future__ import annotations

import json

from collections.abc import Mapping, Sequence
from typing import Any

from .client import Completion
from .config import LLMSettings
from .errors import LLMError
from .fake import estimate_tokens, message_text

PATH = "/chat/completions"
_options: dict[str, Any] | None = None


def request_options() -> dict[str, Any]:
    """What ``create`` passes as request options: bearer auth only, where the SDK asks for it
    (openai >= 3 names the auth schemes of a request; older versions always add the key)."""
    global _options
    if _options is None:
        try:
            from openai._models import FinalRequestOptions

            # pydantic 2 names them model_fields, pydantic 1 __fields__ (openai allows both)
            fields = (getattr(FinalRequestOptions, "model_fields", None)
                      or getattr(FinalRequestOptions, "__fields__", None) or {})
        except ImportError:  # a layout we do not know: the SDK's defaults
            fields = {}
        _options = {"security": {"bearer_auth": True}} if "security" in fields else {}
    return _options


async def apost_chat(client: Any, kw: Mapping[str, Any], settings: LLMSettings,
                     messages: Sequence[Mapping[str, Any]]) -> Completion:
    """One non-streamed chat completion on the async ``client`` (see the module doc)."""
    body = await client.post(PATH, body=dict(kw), cast_to=object, options=request_options())
    return completion_from_body(body, settings, messages)


def post_chat(client: Any, kw: Mapping[str, Any], settings: LLMSettings,
              messages: Sequence[Mapping[str, Any]]) -> Completion:
    """:func:`apost_chat` on a sync ``openai.OpenAI`` client."""
    body = client.post(PATH, body=dict(kw), cast_to=object, options=request_options())
    return completion_from_body(body, settings, messages)


def completion_from_body(body: Any, settings: LLMSettings,
                         messages: Sequence[Mapping[str, Any]]) -> Completion:
    """The :class:`Completion` of a chat-completions JSON answer (what ``ChatCompletion`` would
    hold): the first choice's text, the usage (estimated when the server sent none), the model."""
    url, model = settings.effective_base_url, settings.model
    if isinstance(body, (str, bytes)):  # JSON sent without a JSON content type: the SDK's
        try:                            # typed parse read it anyway, so read it too
            body = json.loads(body)
        except ValueError:
            pass
    if not isinstance(body, Mapping):
        raise LLMError(f"{url} answered with something other than a JSON object (model "
                       f"{model!r}): {str(body)[:200]!r}; is it an OpenAI-compatible "
                       "chat-completions server?")
    choices = body.get("choices") or []
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, Mapping):
        raise LLMError(f"{url} answered with no choices (model {model!r})")
    msg = first.get("message") or {}
    text = (msg.get("content") if isinstance(msg, Mapping) else None) or ""
    if isinstance(text, list) and text and all(
            isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in text):  # content as text parts: their text, in order
        text = "".join(p["text"] for p in text)
    if not isinstance(text, str):
        raise LLMError(f"{url} answered with a message content that is not text (model "
                       f"{model!r}): {str(text)[:200]!r}")
    if not text and isinstance(msg, Mapping) and msg.get("refusal"):
        raise LLMError(f"model {model!r} refused: {msg['refusal']}")
    usage = body.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    pt, ct = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    return Completion(text=text, model=str(body.get("model") or model),
                      prompt_tokens=pt if pt is not None else estimate_tokens(message_text(messages)),
                      completion_tokens=ct if ct is not None else estimate_tokens(text),
                      finish_reason=first.get("finish_reason"),
                      estimated=pt is None or ct is None)


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


__all__ = ["apost_chat", "completion_from_body", "post_chat", "request_options"]
