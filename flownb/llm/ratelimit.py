"""LLM rate limits: requests per minute and tokens per minute, per model or per base URL.

Why flownb limits at all: a worker runs many LLM calls at once, and eight workers of 32 calls
each will hammer an API into 429s. The SDK retries 429s, but each retry is one more request
against the same exhausted budget; spacing the calls *before* they are sent is what keeps a
batch flowing. So every call first takes a slot from a limiter shared by everything that talks
to the same model: in process an in-memory :class:`MemoryRateLimiter`, on workers the Redis one
in :mod:`flownb.distributed.ratelimit` (one Lua script, so every worker on one Redis shares one
budget). Both implement :class:`RateLimiter` and pass the same contract tests.

The algorithm is GCRA (the "generic cell rate algorithm", a token bucket kept as one timestamp
per bucket): requests are spaced ``60 / rpm`` seconds apart after an initial ``burst``; tokens
are counted against a bucket holding one minute of ``tpm``. A call is charged its estimated
prompt tokens plus ``max_tokens`` (the answer's size is not known in advance). A 429 answer's
``Retry-After`` pushes the whole bucket back (:meth:`RateLimiter.backoff`), so the other calls —
on every worker — wait too instead of piling on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import LLMError

#: the shortest sleep between two tries, so a rounding error never busy-loops
_MIN_SLEEP_S = 0.001
#: a waiting call re-checks at least this often (a bucket pushed back by a 429 elsewhere)
_MAX_SLEEP_S = 5.0
#: a 429's ``Retry-After`` pushes a bucket back at most this long (the openai SDK caps its own
#: retry sleep at 60 s too); ``FLOWNB_LLM_MAX_RETRY_AFTER_S`` changes it (up to an hour)
DEFAULT_MAX_RETRY_AFTER_S = 60.0
MAX_RETRY_AFTER_ENV = "FLOWNB_LLM_MAX_RETRY_AFTER_S"
#: a call never waits longer than this for its slot: it fails with :class:`RateLimitWaitTooLong`
#: at once instead (``FLOWNB_LLM_MAX_RATE_WAIT_S``; a node's ``timeout_s`` also ends a wait)
DEFAULT_MAX_WAIT_S = 600.0
MAX_WAIT_ENV = "FLOWNB_LLM_MAX_RATE_WAIT_S"
#: a call that waits longer than this is logged and reported (``on_wait``)
LONG_WAIT_S = 5.0
#: the bound on either setting: a bucket is never pushed further ahead than this
_HARD_MAX_S = 3600.0

log = logging.getLogger("flownb.llm")


class RateLimitWaitTooLong(LLMError):
    """A call would wait longer for its rate-limit slot than it is allowed to."""


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= _HARD_MAX_S:
        log.warning("flownb: ignoring %s=%r (want seconds, more than 0 and at most %g); using %g",
                    name, raw, _HARD_MAX_S, default)
        return default
    return value


def max_retry_after_s() -> float:
    """The longest push-back one ``Retry-After`` may cause (see :data:`DEFAULT_MAX_RETRY_AFTER_S`)."""
    return _env_seconds(MAX_RETRY_AFTER_ENV, DEFAULT_MAX_RETRY_AFTER_S)


def max_wait_s() -> float:
    """The longest a call waits for its slot (see :data:`DEFAULT_MAX_WAIT_S`)."""
    return _env_seconds(MAX_WAIT_ENV, DEFAULT_MAX_WAIT_S)


def clamp_backoff(seconds: float) -> float:
    """``seconds`` of a push-back, made finite and at most :func:`max_retry_after_s`."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(s) or s <= 0:
        return 0.0
    return min(s, max_retry_after_s())


@dataclass(frozen=True)
class RateLimit:
    """A budget. ``None`` means no limit on that dimension."""

    rpm: float | None = None
    tpm: float | None = None
    #: requests allowed back to back before the spacing applies
    burst: int = 1

    def __bool__(self) -> bool:
        return bool(self.rpm) or bool(self.tpm)


@runtime_checkable
class RateLimiter(Protocol):
    """What a limiter does; implementations must be safe to share between threads/processes."""

    def reserve(self, key: str, limit: RateLimit, tokens: int) -> float:
        """Take one request and ``tokens`` tokens from bucket ``key``: ``0.0`` when granted (and
        charged); otherwise the seconds to wait before trying again (nothing is charged)."""
        ...

    def backoff(self, key: str, seconds: float) -> None:
        """Grant nothing from bucket ``key`` for ``seconds`` (a server said ``Retry-After``)."""
        ...


def gcra(now: float, tat_req: float, tat_tok: float, blocked_until: float, limit: RateLimit,
         tokens: int) -> tuple[float, float, float]:
    """One GCRA decision: ``(wait, new_tat_req, new_tat_tok)``; ``wait > 0`` means refused.

    The Lua script in :mod:`flownb.distributed.scripts` is a line-by-line port of this function.
    """
    wait = max(0.0, blocked_until - now)
    new_req, new_tok = tat_req, tat_tok
    if limit.rpm:
        interval = 60.0 / limit.rpm
        tolerance = (max(1, limit.burst) - 1) * interval
        base = max(tat_req, now)
        wait = max(wait, base - tolerance - now)
        new_req = base + interval
    if limit.tpm:
        per_token = 60.0 / limit.tpm
        cost = min(60.0, max(0, tokens) * per_token)  # one huge call may use a whole minute
        base = max(tat_tok, now)
        wait = max(wait, base + cost - 60.0 - now)
        new_tok = base + cost
    return wait, new_req, new_tok


class MemoryRateLimiter:
    """The in-process limiter: the same GCRA over a dict, under a lock."""

    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}  # key -> [tat_req, tat_tok, blocked_until]
        self._lock = threading.Lock()

    def reserve(self, key: str, limit: RateLimit, tokens: int) -> float:
        now = time.time()
        with self._lock:
            b = self._buckets.setdefault(key, [0.0, 0.0, 0.0])
            wait, req, tok = gcra(now, b[0], b[1], b[2], limit, tokens)
            if wait > 0:
                return wait
            b[0], b[1] = req, tok
            return 0.0

    def backoff(self, key: str, seconds: float) -> None:
        until = time.time() + clamp_backoff(seconds)
        with self._lock:
            b = self._buckets.setdefault(key, [0.0, 0.0, 0.0])
            b[2] = max(b[2], until)

    def __repr__(self) -> str:
        return f"<MemoryRateLimiter buckets={len(self._buckets)}>"


_lock = threading.Lock()
_limiter: RateLimiter | None = None


def get_limiter() -> RateLimiter:
    """The limiter in use: one installed with :func:`set_limiter` (a worker installs the Redis
    one), else a process-wide in-memory one."""
    global _limiter
    with _lock:
        if _limiter is None:
            _limiter = MemoryRateLimiter()
        return _limiter


def set_limiter(limiter: RateLimiter | None) -> None:
    """Install ``limiter`` for every LLM call of this process (``None``: back to in-memory)."""
    global _limiter
    with _lock:
        _limiter = limiter


#: ``on_wait(seconds, until_epoch)``: told once when a call is about to wait long
OnWait = Callable[[float, float], None]


def _pauses(limiter: RateLimiter, key: str, limit: RateLimit, tokens: int,
            max_wait: float | None, on_wait: OnWait | None) -> Iterator[float]:
    """How long to sleep before each new try, until bucket ``key`` grants the call."""
    pacing = _pacing(key, limit, max_wait, on_wait)
    next(pacing)
    try:
        while True:
            yield pacing.send(limiter.reserve(key, limit, tokens))
    except StopIteration:
        return


def _pacing(key: str, limit: RateLimit, max_wait: float | None,
            on_wait: OnWait | None) -> Generator[float, float, None]:
    """Sent each answer of the bucket (the seconds to wait, 0 when granted), yields how long to
    sleep before the next try; stops once granted. Apart from the reserve calls so that an
    async limiter (``areserve``: a worker's Redis, awaited on its loop) shares the rules.

    Why fail at once rather than after ``max_wait``: the bucket says exactly how long the wait
    is, so a call that cannot be served in time is told so now, with the figures, instead of
    holding a worker slot for nothing."""
    limit_s = max_wait_s() if max_wait is None else max_wait
    t0 = time.monotonic()
    told = False
    wait = yield 0.0
    while True:
        if wait <= 0:
            return
        waited = time.monotonic() - t0
        if not math.isfinite(wait) or waited + wait > limit_s:
            raise RateLimitWaitTooLong(
                f"rate limit of {key!r} (rpm={limit.rpm}, tpm={limit.tpm}): this call would wait "
                f"{wait:.1f} s more (after {waited:.1f} s), longer than the {limit_s:g} s a call "
                f"may wait ({MAX_WAIT_ENV}); raise the limit or the wait, or send fewer calls")
        if not told and waited + wait >= LONG_WAIT_S:
            told = True
            # INFO: a batch queued behind its own limit is expected (a warning per row would
            # fill a notebook's cells); a minute or more is not
            log.log(logging.WARNING if waited + wait >= 60 else logging.INFO,
                    "flownb: LLM call waits %.1f s for the rate limit of %r (rpm=%s, tpm=%s)",
                    wait, key, limit.rpm, limit.tpm)
            if on_wait is not None:
                on_wait(wait, time.time() + wait)
        wait = yield min(_MAX_SLEEP_S, max(_MIN_SLEEP_S, wait))


async def acquire(key: str, limit: RateLimit, tokens: int,
                  limiter: RateLimiter | None = None, *, max_wait: float | None = None,
                  on_wait: OnWait | None = None) -> float:
    """Wait until bucket ``key`` grants a call; returns the seconds waited.

    Raises :class:`RateLimitWaitTooLong` when the wait would pass ``max_wait`` (default
    :func:`max_wait_s`); ``on_wait`` is told once when the wait passes :data:`LONG_WAIT_S`."""
    waited = 0.0
    if not limit:
        return waited
    lim = limiter or get_limiter()
    areserve = getattr(lim, "areserve", None)
    if areserve is None:
        for pause in _pauses(lim, key, limit, tokens, max_wait, on_wait):
            await asyncio.sleep(pause)
            waited += pause
        return waited
    pacing = _pacing(key, limit, max_wait, on_wait)
    next(pacing)
    try:
        while True:
            pause = pacing.send(await areserve(key, limit, tokens))
            await asyncio.sleep(pause)
            waited += pause
    except StopIteration:
        return waited


def acquire_sync(key: str, limit: RateLimit, tokens: int,
                 limiter: RateLimiter | None = None, *, max_wait: float | None = None,
                 on_wait: OnWait | None = None) -> float:
    """:func:`acquire` for synchronous callers (:func:`flownb.llm.complete`)."""
    waited = 0.0
    if limit:
        for pause in _pauses(limiter or get_limiter(), key, limit, tokens, max_wait, on_wait):
            time.sleep(pause)
            waited += pause
    return waited


def retry_after_s(headers: object) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds) headers, else ``None``;
    at most :func:`max_retry_after_s` (``inf``, ``1e12``: one answer must not block a model for
    every worker for years)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except (TypeError, ValueError):
            continue  # an HTTP date: rare for LLM APIs; the SDK still honours it itself
        if math.isnan(value):
            continue
        return clamp_backoff(value)
    return None
