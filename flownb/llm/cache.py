"""A response cache for model calls.

Prototyping a workflow means re-running it dozens of times with the same prompts; paying (in
money and seconds) for identical answers each time is pointless, and cached answers also make a
notebook re-run reproducible. The key is the sha256 of everything that determines the answer —
model, messages, temperature, max_tokens and base URL — so changing any of them misses.

Two stores: :class:`DiskCache` (the default, one JSON file per answer under
``~/.cache/flownb/llm`` or ``$FLOWNB_LLM_CACHE_DIR``, written atomically so concurrent runs and
crashes never leave a torn file) and :class:`RedisCache` (shared by distributed workers, with a
TTL). ``FLOWNB_LLM_CACHE=0`` or ``flownb.llm.configure(cache=False)`` turns caching off. The
offline fake is never cached: it is free and instant. Nor is a sampled call (temperature > 0)
unless the node says ``cache: true``: see :func:`flownb.llm.config.cache_wanted`.

The disk cache is bounded, because a notebook left running over a dataset would otherwise fill
a disk: entries older than ``max_age_s`` (``FLOWNB_LLM_CACHE_MAX_AGE_S``, default 30 days) are
misses and are deleted, and when the directory outgrows ``max_mb`` (``FLOWNB_LLM_CACHE_MAX_MB``,
default 500) the oldest entries go first. ``flownb cache clear`` empties it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..core.files import atomic_write_text

#: cache entries carry this so a future format change can ignore old files instead of misreading
CACHE_FORMAT = 1
DEFAULT_MAX_AGE_S = 30 * 24 * 3600.0
DEFAULT_MAX_MB = 500.0
#: the size bound is checked every this many writes (a directory walk is not free)
PRUNE_EVERY = 64


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

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 max_age_s: float | None = None, max_mb: float | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.max_age_s = _env_float("FLOWNB_LLM_CACHE_MAX_AGE_S", DEFAULT_MAX_AGE_S) \
            if max_age_s is None else max_age_s
        self.max_mb = _env_float("FLOWNB_LLM_CACHE_MAX_MB", DEFAULT_MAX_MB) if max_mb is None \
            else max_mb
        self._writes = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as fh:
                value = json.load(fh)
        except (OSError, ValueError):
            return None  # a missing or unreadable entry is simply a miss
        if not isinstance(value, dict) or value.get("format") != CACHE_FORMAT:
            return None
        created = value.get("created")
        if self.max_age_s and isinstance(created, (int, float)) \
                and time.time() - created > self.max_age_s:
            path.unlink(missing_ok=True)
            return None
        return value

    def prune(self) -> int:
        """Delete expired entries, then the oldest ones while the directory is over ``max_mb``;
        returns how many files were removed."""
        entries = []
        for f in self.directory.glob("*/*.json"):
            try:
                st = f.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, f))
        entries.sort()
        now = time.time()
        budget = self.max_mb * 1024 * 1024 if self.max_mb else float("inf")
        total = sum(size for _, size, _ in entries)
        removed = 0
        for mtime, size, f in entries:
            expired = bool(self.max_age_s) and now - mtime > self.max_age_s
            if not expired and total <= budget:
                break
            try:
                f.unlink()
            except OSError:
                continue
            total -= size
            removed += 1
        return removed

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps({**value, "format": CACHE_FORMAT}, ensure_ascii=False))
            self._writes += 1
            if self._writes % PRUNE_EVERY == 1:
                self.prune()
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
        return f"<DiskCache {self.directory} max_age_s={self.max_age_s:g} max_mb={self.max_mb:g}>"


def _env_float(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        from .errors import LLMConfigError

        raise LLMConfigError(f"{name} must be a number, got {raw!r}") from None


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
        from ..core.extras import require

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
