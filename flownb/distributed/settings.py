"""Where the distributed executor finds Redis, and how it talks to it.

Modelled on arq's ``RedisSettings`` (arq/connections.py): one small frozen value object that can be
built from a URL or the environment, passed around (and pickled) freely, and turned into a
``redis.Redis`` client on demand.  Field names carry their units (``_s`` = seconds) because
redis-py mixes seconds and milliseconds across its API and a silent unit error here shows up as
"workers hang forever" much later.

``redis`` is imported lazily: the flownb core (blueprints, the in-process executor) must import on a
machine without the ``redis`` extra, so this module only needs redis-py once a client is built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from flownb.core.errors import ExecutorError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import redis

__all__ = [
    "ACCEPTED_SCHEMES",
    "MIN_REDIS_VERSION",
    "RedisSettings",
    "check_server",
    "describe_client",
    "mask_url",
    "redis_errors",
]

#: URL schemes redis-py understands; anything else is rejected before a connection is attempted.
ACCEPTED_SCHEMES: tuple[str, ...] = ("redis", "rediss", "unix")
_SCHEME_HELP = (
    "use redis://[:password@]host:port/db, rediss://[:password@]host:port/db (TLS) "
    "or unix:///path/to/redis.sock?db=N"
)
#: Oldest server flownb supports: it relies on 6.2 commands (``LMOVE``/``BLMOVE``, ``GETDEL``,
#: ``XAUTOCLAIM``, ``SET ... GET``) and on ACL-style ``AUTH user pass``.
MIN_REDIS_VERSION: tuple[int, int] = (6, 2)
#: Environment variables consulted, in order, when no URL is given.
ENV_VARS: tuple[str, ...] = ("FLOWNB_REDIS_URL", "REDIS_URL")

# Reconnect policy: after a server restart or a dropped connection every command is retried 5 times
# with 0.1, 0.2, 0.4, 0.8, 1.6 s pauses (~3 s in all), which covers a local restart or a failover
# without hiding a server that is really gone for long.
_RETRIES = 5
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 2.0


def _import_redis() -> ModuleType:
    """Import redis-py on first use so the flownb core keeps working without the extra."""
    from flownb.core.extras import require

    return require("redis", "the distributed executor")


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` so it is safe to log or raise.

    Works on malformed URLs too (it is used to build the "bad URL" error message), so it does not
    rely on ``urllib`` accepting the string.  Usernames stay visible: they help debugging and are
    not secret.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        # userinfo ends at the last '@' before the query: a password may itself contain '/' or ':'
        query_at = rest.find("?")
        end = query_at if query_at >= 0 else len(rest)
        at = rest.rfind("@", 0, end)
        if at >= 0:
            userinfo, hostpart = rest[:at], rest[at + 1:]
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            rest = f"{userinfo}@{hostpart}"
        masked = f"{scheme}://{rest}"
    else:
        masked = url
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", masked, flags=re.IGNORECASE)


def _validate_url(url: str) -> None:
    """Reject URLs redis-py would choke on later, with a message that names the URL (masked)."""
    shown = mask_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ExecutorError(f"invalid Redis URL {shown!r}: {exc}; {_SCHEME_HELP}") from None
    scheme = parts.scheme.lower()
    if scheme not in ACCEPTED_SCHEMES:
        got = f"scheme {parts.scheme + '://'!r}" if parts.scheme else "no scheme"
        accepted = ", ".join(f"{s}://" for s in ACCEPTED_SCHEMES)
        raise ExecutorError(
            f"invalid Redis URL {shown!r}: {got} is not one of {accepted}; {_SCHEME_HELP}"
        )
    query = parse_qs(parts.query)
    db_values = query.get("db")
    if scheme == "unix":
        if not parts.path:
            raise ExecutorError(
                f"invalid Redis URL {shown!r}: a unix:// URL needs the socket path, "
                "e.g. unix:///tmp/redis.sock?db=0"
            )
    else:
        try:
            parts.port  # noqa: B018 - property access validates the port
        except ValueError:
            raise ExecutorError(
                f"invalid Redis URL {shown!r}: the port must be a number between 0 and 65535"
            ) from None
        path = unquote(parts.path).strip("/")
        if path and not db_values:
            db_values = [path]
    for value in db_values or ():
        if not value.isdigit():
            raise ExecutorError(
                f"invalid Redis URL {shown!r}: the database must be a non-negative integer, "
                f"got {value!r}"
            )


@dataclass(frozen=True)
class RedisSettings:
    """How to reach Redis; ``url=None`` means "start a private embedded redis-server".

    Build it with :meth:`from_url` (which also reads ``FLOWNB_REDIS_URL`` / ``REDIS_URL``), turn it
    into a client with :meth:`connect`.  Frozen so it can be shared between threads and pickled to
    worker processes without anyone mutating it underneath the others.
    """

    url: str | None = None
    #: Read timeout per command; ``None`` waits forever (blocking pops need that or a larger value).
    socket_timeout_s: float | None = None
    socket_connect_timeout_s: float = 5.0
    #: PING idle connections before use so a dead pooled connection is found before a command.
    health_check_interval_s: float = 30.0
    #: Also retry commands that hit a socket timeout (not only connection errors).
    retry_on_timeout: bool = True
    max_connections: int | None = None
    #: Every key flownb writes starts with ``<key_prefix>:`` so several apps can share one db.
    key_prefix: str = "flownb"
    #: RQ queue the executor enqueues node jobs on.
    queue_name: str = "flownb"

    def __post_init__(self) -> None:
        if self.url is not None:
            if not isinstance(self.url, str) or not self.url.strip():
                raise ExecutorError(f"Redis URL must be a non-empty string, got {self.url!r}")
            _validate_url(self.url)
        for name in ("socket_connect_timeout_s", "health_check_interval_s"):
            if getattr(self, name) < 0:
                raise ExecutorError(f"RedisSettings.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.socket_timeout_s is not None and self.socket_timeout_s <= 0:
            raise ExecutorError(
                f"RedisSettings.socket_timeout_s must be > 0 or None, got {self.socket_timeout_s!r}"
            )
        if self.max_connections is not None and self.max_connections < 1:
            raise ExecutorError(
                f"RedisSettings.max_connections must be >= 1 or None, got {self.max_connections!r}"
            )
        for name in ("key_prefix", "queue_name"):
            if not getattr(self, name):
                raise ExecutorError(f"RedisSettings.{name} must not be empty")

    def __repr__(self) -> str:
        # never print a password: settings objects end up in logs and tracebacks
        fields = ", ".join(
            f"{f.name}={self.masked_url if f.name == 'url' and self.url else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
        )
        return f"RedisSettings({fields})"

    @classmethod
    def from_url(cls, url: str | None = None, **overrides: Any) -> RedisSettings:
        """Settings for ``url``, or the environment (``FLOWNB_REDIS_URL``, then ``REDIS_URL``).

        With neither, ``url`` stays ``None`` and :meth:`connect` uses the embedded server.  Keyword
        overrides set the other fields (``RedisSettings.from_url(u, socket_timeout_s=10)``).
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"url"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ExecutorError(
                f"unknown RedisSettings option(s) {', '.join(unknown)}; "
                f"valid ones are {', '.join(sorted(known))}"
            )
        if url is None:
            for var in ENV_VARS:
                value = os.environ.get(var, "").strip()
                if value:
                    url = value
                    break
        elif isinstance(url, str):
            url = url.strip()
        return cls(url=url, **overrides)

    @property
    def masked_url(self) -> str:
        """The URL with its password replaced by ``***`` (``"embedded"`` when ``url`` is None)."""
        return "embedded" if self.url is None else mask_url(self.url)

    @property
    def embedded(self) -> bool:
        """True when no URL was configured and flownb runs its own redis-server."""
        return self.url is None

    def resolved_url(self) -> str:
        """The URL to connect to, starting the process-wide embedded server if ``url`` is None."""
        if self.url is not None:
            return self.url
        from flownb.distributed.server import shared_server

        return shared_server().url

    def connect(self, *, decode_responses: bool = False) -> redis.Redis:
        """A ``redis.Redis`` client for these settings that reconnects by itself.

        The client retries a command 5 times with exponential backoff (50 ms base, 2 s cap) on
        connection errors, and on timeouts when ``retry_on_timeout``, so a Redis restart or a
        dropped socket costs a pause instead of a failed run.  Commands are therefore
        at-least-once over a flaky link; flownb's writes are idempotent for that reason.
        """
        redis_mod = _import_redis()
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        errors: tuple[type[Exception], ...] = (redis_mod.ConnectionError,)
        if self.retry_on_timeout:
            errors += (redis_mod.TimeoutError, TimeoutError)
        retry = Retry(
            ExponentialBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S),
            retries=_RETRIES,
            supported_errors=errors,
        )
        url = self.resolved_url()
        try:
            client: redis.Redis = redis_mod.Redis.from_url(
                url,
                socket_timeout=self.socket_timeout_s,
                socket_connect_timeout=self.socket_connect_timeout_s,
                health_check_interval=self.health_check_interval_s,
                retry=retry,
                max_connections=self.max_connections,
                decode_responses=decode_responses,
            )
        except ValueError as exc:  # redis-py's own URL checks (e.g. a bad query option)
            raise ExecutorError(f"invalid Redis URL {mask_url(url)!r}: {exc}") from None
        return client


def describe_client(client: redis.Redis) -> str:
    """A password-free URL for the server ``client`` talks to, for error messages."""
    pool = client.connection_pool
    kwargs: dict[str, Any] = dict(getattr(pool, "connection_kwargs", {}))
    db = kwargs.get("db", 0)
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    conn_cls = getattr(pool, "connection_class", None)
    scheme = "rediss" if conn_cls is not None and "SSL" in conn_cls.__name__ else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


def _reason(exc: BaseException) -> str:
    """The most useful one-line cause: the OS error text ("Connection refused") when there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        current = current.__cause__ or current.__context__
    text = str(exc).strip()
    return text or type(exc).__name__


def _parse_version(text: str) -> tuple[int, ...]:
    """``"6.2.14"`` -> ``(6, 2, 14)``; tolerant of suffixes such as ``"7.4.0-rc1"``."""
    numbers: list[int] = []
    for part in text.split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)


#: How long the start-up check waits for a server to accept and to answer PING.
CHECK_TIMEOUT_S = 5.0


def _probe_client(client: redis.Redis, timeout_s: float) -> redis.Redis:
    """A one-off client to the same server with connect *and* read timeouts and no retries.

    The normal client may wait for ever on a read (``socket_timeout_s=None`` is right for
    blocking reads) and retries for ~3 s; a port that accepts connections but never answers (a
    wrong service, a stopped process, a firewall that drops) would then hang the start-up check
    for ever."""
    redis_mod = _import_redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = client.connection_pool
    kwargs: dict[str, Any] = dict(getattr(pool, "connection_kwargs", {}))
    kwargs.update(socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                  retry=Retry(NoBackoff(), 0), health_check_interval=0)
    kwargs.pop("retry_on_error", None)
    probe_pool = redis_mod.ConnectionPool(connection_class=pool.connection_class, max_connections=1,
                                          **kwargs)
    return redis_mod.Redis(connection_pool=probe_pool)  # type: ignore[no-any-return]


def check_server(client: redis.Redis, *, min_version: tuple[int, ...] = MIN_REDIS_VERSION,
                 timeout_s: float = CHECK_TIMEOUT_S) -> str:
    """PING the server and make sure it is new enough; return its ``redis_version``.

    Called once when an executor or worker starts so a wrong URL or an old server fails right away
    with a readable message instead of as an obscure "unknown command 'BLMOVE'" mid-run.  It
    gives up after ``timeout_s`` (connect and each reply), so it never hangs.
    """
    redis_mod = _import_redis()
    where = describe_client(client)
    probe = _probe_client(client, timeout_s)
    try:
        probe.ping()
        info = probe.info("server")
    except redis_mod.AuthenticationError as exc:
        raise ExecutorError(f"Redis at {where} rejected the credentials: {exc}") from exc
    except (redis_mod.TimeoutError, TimeoutError) as exc:
        raise ExecutorError(
            f"Redis at {where} did not answer within {timeout_s:g} s ({_reason(exc)}): is it a "
            "Redis server, and is it running? Check the URL (host, port, unix socket path)"
        ) from exc
    except (redis_mod.ConnectionError, OSError) as exc:
        raise ExecutorError(f"cannot reach Redis at {where}: {_reason(exc)}") from exc
    except redis_mod.RedisError as exc:
        raise ExecutorError(f"Redis at {where} did not answer PING/INFO: {exc}") from exc
    finally:
        probe.close()
        probe.connection_pool.disconnect()
    raw = info.get("redis_version", "")  # redis-py decodes INFO keys even without decode_responses
    version = raw.decode() if isinstance(raw, bytes) else str(raw)
    parsed = _parse_version(version)
    if not parsed or parsed < tuple(min_version):
        need = ".".join(str(n) for n in min_version)
        raise ExecutorError(f"flownb needs Redis >= {need}, {where} runs {version or 'an unknown version'}")
    return version


@contextlib.contextmanager
def redis_errors(client: redis.Redis, what: str, *, run_id: str | None = None) -> Iterator[None]:
    """Turn redis-py's errors inside the block into an :class:`ExecutorError` saying what failed.

    Every call a user makes on a run handle or an executor goes through this, so a Redis that is
    down or restarting shows up as a flownb error naming the server and the operation (after the
    client's own ~3 s of reconnect attempts), never as a raw ``redis.ConnectionError``."""
    redis_mod = _import_redis()
    try:
        yield
    except redis_mod.AuthenticationError as exc:
        raise ExecutorError(f"Redis at {describe_client(client)} rejected the credentials while "
                            f"{what}: {exc}", run_id=run_id) from exc
    except (redis_mod.ConnectionError, redis_mod.TimeoutError) as exc:
        raise ExecutorError(
            f"Redis at {describe_client(client)} is unreachable ({_reason(exc)}) while {what}. "
            "With persistence (appendonly) a run goes on once Redis is back: try again then", run_id=run_id) from exc
    except redis_mod.RedisError as exc:
        raise ExecutorError(f"Redis at {describe_client(client)} failed while {what}: {exc}",
                            run_id=run_id) from exc
