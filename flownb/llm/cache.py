"""A response cache for model calls.

Prototyping a workflow means re-running it dozens of times with the same prompts; paying (in
money and seconds) for identical answers each time is pointless, and cached answers also make a
notebook re-run reproducible. The key is the sha256 of everything that determines the answer —
model, messages, temperature, max_tokens and base URL — so changing any of them misses.

Two stores: :class:`DiskCache` (the default, one JSON file per answer under
``~/.cache/flownb/llm`` or ``$FLOWNB_LLM_CACHE_DIR``, written atomically so concurrent runs and
crashes never leave a torn file) and :class:`RedisCache` (shared by distributed workers, with a
TTL). ``FLOWNB_LLM_CACHE=0`` or ``flownb.llm.configure(cache=False)`` turns caching off. The
offline fake is never cached: it is free and instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..files import atomic_write_text

#: cache entries carry this so a future format change can ignore old files instead of misreading
CACHE_FORMAT = 1


@runtime_checkable
class Cache(Protocol):
    """What a cache must do; entries are small JSON-able dicts."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: Mapping[str, Any]) -> None: ...


def cache_key(model: str, messages: Sequence[Mapping[str, Any]], temperature: float | None,
              max_tokens: int | None, base_url: str | None) -> str:
    """sha256 over a canonical JSON of what determines the answer."""
    payload = json.dumps({"v": CACHE_FORMAT, "model": model, "messages": list(messages),
                          "temperature": temperature, "max_tokens": max_tokens,
                          "base_url": (base_url or "").rstrip("/")},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    """``$FLOWNB_LLM_CACHE_DIR``, else ``$XDG_CACHE_HOME/flownb/llm``, else ``~/.cache/flownb/llm``."""
    env = os.environ.get("FLOWNB_LLM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flownb" / "llm"


class DiskCache:
    """One JSON file per key, sharded by the key's first two hex digits.

    Files rather than SQLite: any number of processes (notebook, workers) can read and write at
    once without locks, because each write goes to a temporary file in the same directory and is
    moved into place with ``os.replace`` — readers see the old file or the new one, never half.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self._path(key), encoding="utf-8") as fh:
                value = json.load(fh)
        except (OSError, ValueError):
            return None  # a missing or unreadable entry is simply a miss
        if not isinstance(value, dict) or value.get("format") != CACHE_FORMAT:
            return None
        return value

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({**value, "format": CACHE_FORMAT}, ensure_ascii=False))
        except OSError:
            # a read-only or full disk must not fail the run: the answer is already in hand
            import logging

            logging.getLogger("flownb.llm").warning("could not write LLM cache entry %s", path,
                                                    exc_info=True)

    def clear(self) -> int:
        """Delete every entry; returns how many files were removed."""
        n = 0
        if not self.directory.is_dir():
            return 0
        for f in self.directory.glob("*/*.json"):
            try:
                f.unlink()
                n += 1
            except OSError:
                pass
        return n

    def __repr__(self) -> str:
        return f"<DiskCache {self.directory}>"


class MemoryCache:
    """A dict in this process: for tests and for notebooks that want no files."""

    def __init__(self) -> None:
        self._d: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            v = self._d.get(key)
            return dict(v) if v is not None else None

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._d[key] = {**value, "format": CACHE_FORMAT}

    def __len__(self) -> int:
        return len(self._d)


class RedisCache:
    """Entries in Redis with a TTL, so every worker of a distributed run shares the answers.

    Takes a ready ``redis.Redis`` client (so it reuses the executor's connection settings);
    :meth:`from_url` builds one, importing ``redis`` only then.
    """

    def __init__(self, client: Any, *, ttl_s: float | None = 7 * 24 * 3600,
                 prefix: str = "flownb:llm:") -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisCache:
        from ..extras import require

        redis = require("redis", "RedisCache")
        return cls(redis.Redis.from_url(url), **kwargs)

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.client.get(self.prefix + key)
        if raw is None:
            return None
        try:
            value = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except ValueError:
            return None
        if not isinstance(value, dict) or value.get("format") != CACHE_FORMAT:
            return None
        return value

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        data = json.dumps({**value, "format": CACHE_FORMAT}, ensure_ascii=False)
        ex = max(1, int(self.ttl_s)) if self.ttl_s else None
        self.client.set(self.prefix + key, data, ex=ex)

    def __repr__(self) -> str:
        return f"<RedisCache prefix={self.prefix!r} ttl_s={self.ttl_s}>"


_default_lock = threading.Lock()
_default: tuple[str, DiskCache] | None = None


def reset_default_cache() -> None:
    """Drop the memoised default cache (after ``configure(cache=...)`` or an env change)."""
    global _default
    with _default_lock:
        _default = None


def get_cache() -> Cache | None:
    """The cache in effect: ``configure(cache=...)`` first, then ``FLOWNB_LLM_CACHE``; ``None`` = off."""
    from .config import current_globals

    configured = current_globals().cache
    if configured is False:
        return None
    if configured is not None and configured is not True:
        if not isinstance(configured, Cache):
            from .errors import LLMConfigError

            raise LLMConfigError(f"configure(cache=...) needs True, False or an object with "
                                 f"get/set, got {type(configured).__name__}")
        return configured
    if configured is None:
        env = (os.environ.get("FLOWNB_LLM_CACHE") or "").strip().lower()
        if env in ("0", "false", "no", "off"):
            return None
    global _default
    directory = str(default_cache_dir())
    with _default_lock:
        # keyed by directory so a changed FLOWNB_LLM_CACHE_DIR takes effect without a reset
        if _default is None or _default[0] != directory:
            _default = (directory, DiskCache(directory))
        return _default[1]
