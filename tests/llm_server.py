"""A tiny local server speaking OpenAI's chat-completions protocol, for the LLM tests.

The tests drive the *real* ``openai`` SDK against it — no monkeypatching — so retries, timeouts,
streaming and error mapping are exercised the way they run in production, without the network:
it listens on 127.0.0.1 on a free port and only answers ``POST /v1/chat/completions``.

``server.script(...)`` sets what the next requests get: a reply (text or a function of the
request body), failures to return first (``fail=[429, 429]``: two rate limits, then success),
a delay before answering (to trip the client's timeout), stream chunking and reported usage.
Every request is recorded in ``server.requests`` (path, headers, parsed JSON body, arrival
time); ``server.max_in_flight`` is the most chat completions it was answering at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Reply = str | Callable[[dict[str, Any]], str]


@dataclass
class Script:
    """What the server does with the requests it receives from now on."""

    reply: Reply | None = None
    #: statuses to answer with first, one per request (429, 500, 503, 400, …)
    fail: list[int] = field(default_factory=list)
    #: seconds to wait before answering (counts only for successful answers)
    sleep_s: float = 0.0
    #: ``Retry-After-Ms`` sent with failures: the SDK ignores ``Retry-After: 0`` and would back off
    #: for ~0.5 s, so the ms header keeps the retry tests fast
    retry_after_ms: int | None = 1
    chunk_size: int = 4
    chunk_delay_s: float = 0.0
    #: (prompt_tokens, completion_tokens) to report; ``None`` = ~len/4 of the texts
    usage: tuple[int, int] | None = None
    #: report no usage at all (some compatible servers don't)
    no_usage: bool = False


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    json: dict[str, Any]
    at: float


class LLMServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``base_url`` ends in ``/v1``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script = Script()
        self._lock = threading.Lock()
        self.release = threading.Event()  # set on stop so sleeping handlers exit promptly
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    # -- control ---------------------------------------------------------------------------------
    def script(self, reply: Reply | None = None, *, fail: list[int] | None = None,
               sleep_s: float = 0.0, retry_after_ms: int | None = 1, chunk_size: int = 4,
               chunk_delay_s: float = 0.0, usage: tuple[int, int] | None = None,
               no_usage: bool = False) -> LLMServer:
        with self._lock:
            self._script = Script(reply=reply, fail=list(fail or []), sleep_s=sleep_s,
                                  retry_after_ms=retry_after_ms, chunk_size=chunk_size,
                                  chunk_delay_s=chunk_delay_s, usage=usage, no_usage=no_usage)
        return self

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/v1"

    def start(self) -> LLMServer:
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        # a short poll interval so shutdown() (once per test) returns quickly
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="llm-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- used by the handler ---------------------------------------------------------------------
    def _next(self, rec: Recorded) -> tuple[Script, int | None]:
        """Record the request; return the script and the failure status to send, if any."""
        with self._lock:
            self.requests.append(rec)
            script = self._script
            status = script.fail.pop(0) if script.fail else None
            return script, status


def _reply_text(script: Script, body: dict[str, Any]) -> str:
    if callable(script.reply):
        return script.reply(body)
    if script.reply is not None:
        return script.reply
    last = next((m.get("content", "") for m in reversed(body.get("messages") or [])
                 if m.get("role") == "user"), "")
    return f"Echo: {last}"


def _usage(script: Script, body: dict[str, Any], text: str) -> dict[str, int]:
    if script.usage is not None:
        pt, ct = script.usage
    else:
        prompt = "".join(str(m.get("content", "")) for m in body.get("messages") or [])
        pt, ct = max(1, len(prompt) // 4), max(1, len(text) // 4)
    return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}


class _Handler(BaseHTTPRequestHandler):
    owner: LLMServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send_json(self, status: int, payload: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                       time.time())
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.owner.requests.append(rec)
            self._send_json(404, {"error": {"message": f"no route {self.path}",
                                            "type": "invalid_request_error"}})
            return
        script, status = self.owner._next(rec)
        self.owner._enter()
        try:
            if status is not None:
                headers = {"retry-after": "0"}
                if script.retry_after_ms is not None:
                    headers["retry-after-ms"] = str(script.retry_after_ms)
                kind = {429: "rate_limit_exceeded", 400: "invalid_request_error",
                        401: "invalid_api_key"}.get(status, "server_error")
                self._send_json(status, {"error": {
                    "message": f"scripted failure {status}", "type": kind, "code": kind}},
                    headers)
                return
            if script.sleep_s and self.owner.release.wait(script.sleep_s):
                return  # server stopping
            text = _reply_text(script, body)
            model = str(body.get("model", "test-model"))
            if body.get("stream"):
                self._stream(script, body, text, model)
            else:
                payload = {
                    "id": "chatcmpl-test", "object": "chat.completion",
                    "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                }
                if not script.no_usage:
                    payload["usage"] = _usage(script, body, text)
                self._send_json(200, payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to do
        finally:
            self.owner._leave()

    def _stream(self, script: Script, body: dict[str, Any], text: str, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(delta: dict[str, Any], finish: str | None = None,
                  usage: dict[str, int] | None = None, choices: bool = True) -> bytes:
            c: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion.chunk",
                                 "created": int(time.time()), "model": model,
                                 "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish}] if choices else [],
                                 "usage": usage}
            return f"data: {json.dumps(c)}\n\n".encode()

        def pieces() -> Iterator[bytes]:
            size = max(1, script.chunk_size)
            first = True
            for i in range(0, len(text), size):
                delta: dict[str, Any] = {"content": text[i:i + size]}
                if first:
                    delta["role"] = "assistant"
                    first = False
                yield chunk(delta)
            yield chunk({}, finish="stop")
            opts = body.get("stream_options") or {}
            if opts.get("include_usage") and not script.no_usage:
                yield chunk({}, usage=_usage(script, body, text), choices=False)
            yield b"data: [DONE]\n\n"

        for piece in pieces():
            self.wfile.write(piece)
            self.wfile.flush()
            if script.chunk_delay_s:
                time.sleep(script.chunk_delay_s)


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """A started :class:`LLMServer`, stopped after the test."""
    server = LLMServer().start()
    try:
        yield server
    finally:
        server.stop()


def real_client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, key: str) -> Iterator[None]:
    """The environment of a test that drives the real ``openai`` client at a local server: its
    own key, no cache, no proxy for 127.0.0.1, that server's URL allowed, no settings left over
    from the machine or another test (``flownb.llm.reset()``); after the test, the settings
    reset and the pooled clients closed. An autouse fixture ``yield from``s it."""
    import flownb.llm as llm
    from flownb.llm import client as llm_client

    for var in ("FLOWNB_LLM", "FLOWNB_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("FLOWNB_LLM_CACHE", "0")
    monkeypatch.setenv("FLOWNB_LLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWNB_LLM_ALLOWED_BASE_URLS", "http://127.0.0.1:*")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    llm.reset()
    yield
    llm.reset()
    llm_client.close_clients()
