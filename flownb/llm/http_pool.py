"""A cheaper "is this idle connection still open?" for the LLM client's HTTP connection pool.

Why this exists: httpcore's pool (``httpcore`` under openai 1.x, ``httpcore2`` under openai 3.x)
walks its connections each time it hands one out or takes one back, and asks every idle one
whether the server closed it (``has_expired`` → ``get_extra_info("is_readable")``). Through the
anyio backend that question first rebuilds anyio's table of socket attributes
(``getpeername``, the family, the local address …) to find the socket it polls. With 128 LLM
calls in flight on a worker, that walk was ~15% of the worker's CPU (py-spy, ``--gil``, the
moderation agent, bench/README).

:func:`cheap_readable_checks` wraps the pool's network backend so that each stream finds its
socket once, when it is opened, and answers ``is_readable`` with one ``poll(0)`` on it. The
answer is the same as httpcore's (a readable idle socket means the server closed it or sent
something unasked; no socket means closed). Everything else the stream does is passed through
unchanged: reads, writes, TLS, timeouts and error mapping stay httpcore's.

The pool and its backend are private attributes of httpx's transport. Where they are not found
(another httpx, a proxy transport, a user's own ``http_client``), nothing is changed: the
client is only slower, never different. ``tests/test_llm_http_pool.py`` checks that the wrap is in
place with the versions CI resolves, so a change upstream shows up as a failing test.
"""

from __future__ import annotations

import select
import socket
from typing import Any

__all__ = ["cheap_readable_checks", "is_wrapped"]


def _readable(sock: socket.socket) -> bool:
    fd = sock.fileno()
    if fd < 0:  # closed under us: as httpcore, "readable" (the next read returns b"")
        return True
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


class _Stream:
    """An httpcore network stream whose ``is_readable`` polls a socket found once."""

    __slots__ = ("_inner", "_sock")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._sock: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)  # type: ignore[no-any-return]

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                        timeout: float | None = None) -> _Stream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._sock is not None:
            return _readable(self._sock)
        return self._inner.get_extra_info(info)


class _Backend:
    """Wraps an httpcore async network backend: its streams answer ``is_readable`` cheaply."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> _Stream:
        return _Stream(await self.inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _Stream:
        return _Stream(await self.inner.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _pool_of(http_client: Any) -> Any:
    return getattr(getattr(http_client, "_transport", None), "_pool", None)


def cheap_readable_checks(http_client: Any) -> bool:
    """Wrap ``http_client``'s connection pool backend (before its first request); True if done."""
    pool = _pool_of(http_client)
    backend = getattr(pool, "_network_backend", None)
    if backend is None or not hasattr(backend, "connect_tcp"):
        return False
    if not isinstance(backend, _Backend):
        pool._network_backend = _Backend(backend)
    return True


def is_wrapped(http_client: Any) -> bool:
    """Whether :func:`cheap_readable_checks` is in place on this client (tests, diagnostics)."""
    return isinstance(getattr(_pool_of(http_client), "_network_backend", None), _Backend)
