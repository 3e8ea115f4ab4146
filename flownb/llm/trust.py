"""What a blueprint may make a worker send where: API keys and base URLs.

Why: a blueprint is data that may come from elsewhere (a shared folder, a user's upload, a run
submitted by anyone with Redis access), while a worker's environment holds its operator's
secrets. With ``base_url`` and ``api_key_env`` in node params, a blueprint could make any worker
send any of its environment variables — and ``OPENAI_API_KEY`` — to any URL. So:

* ``api_key_env`` may name only a variable the operator allowed: ``FLOWNB_LLM_KEY_ENVS``, a
  comma-separated list of names or ``fnmatch`` patterns (default ``OPENAI_API_KEY,FLOWNB_*``);
* a node's ``base_url`` that differs from the configured one (``configure(base_url=...)``,
  ``OPENAI_BASE_URL``, else OpenAI's) is refused unless it matches
  ``FLOWNB_LLM_ALLOWED_BASE_URLS`` (comma-separated URLs or ``fnmatch`` patterns such as
  ``http://127.0.0.1:*``; ``*`` allows any).

Both are read from the environment of the process that makes the call: on workers, the worker's
operator decides, whatever the submitting client set.
"""

from __future__ import annotations

import fnmatch
import os

from .errors import LLMConfigError

KEY_ENVS_ENV = "FLOWNB_LLM_KEY_ENVS"
DEFAULT_KEY_ENVS = "OPENAI_API_KEY,FLOWNB_*"
BASE_URLS_ENV = "FLOWNB_LLM_ALLOWED_BASE_URLS"


def _patterns(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name)
    return [p.strip() for p in (default if raw is None else raw).split(",") if p.strip()]


def check_key_env(name: str) -> None:
    """Refuse ``api_key_env: name`` unless the operator allowed that variable."""
    allowed = _patterns(KEY_ENVS_ENV, DEFAULT_KEY_ENVS)
    if not any(fnmatch.fnmatchcase(name, p) for p in allowed):
        raise LLMConfigError(
            f"params.api_key_env names {name!r}, which this process may not send to a model: a "
            "blueprint may come from elsewhere and must not choose which secret leaves the "
            f"machine. The operator allows variables with {KEY_ENVS_ENV} (now: "
            f"{','.join(allowed) or 'none'})")


def check_base_url(node_url: str, configured: str) -> None:
    """Refuse a node's ``base_url`` that differs from ``configured`` unless it is allowed."""
    if node_url.rstrip("/") == configured.rstrip("/"):
        return
    allowed = _patterns(BASE_URLS_ENV)
    if any(fnmatch.fnmatchcase(node_url.rstrip("/"), p.rstrip("/")) for p in allowed):
        return
    raise LLMConfigError(
        f"params.base_url {node_url!r} differs from the configured base URL {configured!r}; a "
        "blueprint may come from elsewhere and would receive the API key. The operator allows "
        f"other servers with {BASE_URLS_ENV}=<url or pattern, comma-separated> (or sets the "
        "URL with flownb.llm.configure(base_url=...) / OPENAI_BASE_URL)")


__all__ = ["BASE_URLS_ENV", "DEFAULT_KEY_ENVS", "KEY_ENVS_ENV", "check_base_url",
           "check_key_env"]
