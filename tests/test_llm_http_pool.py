"""The LLM client's idle-connection check (:mod:`flownb.llm.http_pool`): a socket found once per
connection, polled when httpcore's pool asks whether the server closed an idle connection.

Real ``openai`` clients against a small HTTP server of this file's own that counts the TCP
connections it accepts and can close each one after its answer without saying so (as a server
whose keep-alive timeout ran out does). No mocks of httpx or httpcore.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_server import real_client_env

from flownb.llm import client as llm_client
from flownb.llm import http_pool
from flownb.llm.config import resolve
from flownb.llm.errors import LLMError

KEY = "sk-test-http-pool"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    yield from real_client_env(monkeypatch, tmp_path, KEY)


class _Server:
    """HTTP/1.1 chat completions on 127.0.0.1: keep-alive in its headers, and, when
    ``close_after_answer``, the connection closed by the server once the answer is sent."""

    def __init__(self, close_after_answer: bool, tls: ssl.SSLContext | None = None) -> None:
        self.close_after_answer = close_after_answer
        self.tls = tls
        self.connections = 0
        self.answers = 0
        self.port = 0
        self._srv: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> _Server:
        self._srv = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._srv.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._srv is not None
        self._srv.close()
        await self._srv.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.answers += 1
                body = json.dumps({
                    "id": f"c{self.answers}", "object": "chat.completion", "created": 0,
                    "model": "test-model",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"a{self.answers}"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: keep-alive\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _two_calls(close_after_answer: bool, tls: ssl.SSLContext | None = None,
                     ) -> tuple[list[str], _Server, Any]:
    async with _Server(close_after_answer, tls) as srv:
        scheme = "https" if tls else "http"
        settings = resolve({"base_url": f"{scheme}://127.0.0.1:{srv.port}/v1",
                            "model": "test-model", "backend": "openai", "max_retries": 0})
        texts = []
        try:
            for _ in range(2):
                texts.append((await llm_client.achat(settings, MESSAGES)).text)
                await asyncio.sleep(0.1)  # the server's FIN reaches the idle connection
            http = llm_client.async_client(settings)._client
        finally:
            await llm_client.aclose_clients()
        return texts, srv, http


def test_the_shared_client_has_the_cheap_check_with_the_resolved_versions() -> None:
    """If httpx / httpcore move the pool or its backend, this fails (the client would only be
    slower: see the module's docstring)."""
    texts, srv, http = asyncio.run(_two_calls(close_after_answer=False))
    assert http_pool.is_wrapped(http)
    assert texts == ["a1", "a2"]
    assert srv.connections == 1  # the idle connection was found open and used again


def test_an_idle_connection_the_server_closed_is_not_used_again() -> None:
    texts, srv, _ = asyncio.run(_two_calls(close_after_answer=True))
    assert texts == ["a1", "a2"]  # with max_retries=0: no retry hid a failed first try
    assert srv.connections == 2


def test_without_the_check_the_closed_connection_fails_the_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above is not vacuous: a check that never sees the close sends the second call
    on the closed connection, and it fails."""
    monkeypatch.setattr(http_pool, "_readable", lambda sock: False)
    with pytest.raises(LLMError):
        asyncio.run(_two_calls(close_after_answer=True))


@pytest.fixture
def tls_server_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 (openssl), trusted by the client through
    ``SSL_CERT_FILE`` as a user trusts a private CA."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("FLOWNB_LLM_ALLOWED_BASE_URLS", "https://127.0.0.1:*")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_over_tls_an_open_idle_connection_is_used_again(
        tls_server_context: ssl.SSLContext) -> None:
    """TLS goes through ``start_tls``: the stream it returns must read, write and answer "not
    readable" for an open idle connection (a wrong "readable" would open a connection per call).

    A TLS server's close of an idle connection is not checked here: httpcore misses it with or
    without this module (asyncio's TLS transport has read the close before the pool asks), and
    the SDK's retries cover it (``max_retries``)."""
    texts, srv, http = asyncio.run(_two_calls(close_after_answer=False, tls=tls_server_context))
    assert http_pool.is_wrapped(http)
    assert texts == ["a1", "a2"] and srv.connections == 1


def test_readable_is_what_the_socket_says() -> None:
    a, b = socket.socketpair()
    try:
        assert not http_pool._readable(a)
        b.sendall(b"x")
        assert http_pool._readable(a)
        a.recv(1)
        b.close()
        assert http_pool._readable(a)  # the peer's close: the next read returns b""
    finally:
        a.close()
    assert http_pool._readable(a)  # closed here (fileno -1): as httpcore, readable


class _Inner:
    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock
        self.calls: list[Any] = []

    def get_extra_info(self, info: str) -> Any:
        self.calls.append(info)
        return self.sock if info == "socket" else f"inner {info}"

    async def start_tls(self, ctx: Any, server_hostname: str | None = None,
                        timeout: float | None = None) -> _Inner:
        self.calls.append(("start_tls", ctx, server_hostname, timeout))
        return _Inner(self.sock)


def test_other_questions_and_tls_go_to_the_inner_stream() -> None:
    a, b = socket.socketpair()
    try:
        inner = _Inner(a)
        s = http_pool._Stream(inner)
        assert s.get_extra_info("server_addr") == "inner server_addr"
        assert s.get_extra_info("is_readable") is False
        assert "is_readable" not in inner.calls  # answered from the socket found once
        tls = asyncio.run(s.start_tls("ctx", "example.org", 3.0))
        assert isinstance(tls, http_pool._Stream)
        assert inner.calls[-1] == ("start_tls", "ctx", "example.org", 3.0)
        # no socket to poll: the inner stream answers, as it would have
        assert http_pool._Stream(_Inner(None)).get_extra_info("is_readable") == "inner is_readable"
    finally:
        a.close()
        b.close()


def test_a_client_without_the_expected_pool_is_left_as_it_is() -> None:
    class Odd:
        _transport = object()

    odd = Odd()
    assert http_pool.cheap_readable_checks(odd) is False
    assert not http_pool.is_wrapped(odd)
