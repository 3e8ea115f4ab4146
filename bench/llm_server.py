"""The bench's own OpenAI-compatible chat-completions server: every answer after a fixed latency.

``python -m bench.llm_server [--latency 0.2] [--port 0]`` listens on 127.0.0.1 only and prints
``PORT <n>`` once it serves. It is plain asyncio (no web framework), so thousands of requests can
wait their latency at once at almost no CPU, which is the shape of a real LLM API: the time is
the provider's, not the client's. It records how many calls were in flight at most — the figure
that tells a framework that overlaps its waits from one that queues them.

Endpoints: ``POST /v1/chat/completions`` (JSON in, JSON out, with ``usage``), ``GET /stats``
(``{"calls", "in_flight", "max_in_flight"}``), ``POST /reset`` (zero the counters).

The answers follow the two bench agents' prompts with simple keyword rules, so every contender
takes the same branches: yes/no questions about personal data (an ``@``) and spam (a link),
a hate-speech rating from insults, the moderation router from the three checks, and a fixed
paragraph for any writing task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

_INSULTS = re.compile(r"(?i)\b(idiot|moron|worthless|stupid)\b")
_CHOICES = re.compile(r"Answer with exactly one of: ([^\n]+?)\. Reply")
_PARAGRAPH = ("Agents that call language models spend most of their time waiting for the "
              "provider. A workflow engine earns its keep by overlapping those waits, retrying "
              "what fails, and showing what happened, without adding work of its own. ") * 2


def answer(prompt: str) -> str:
    """The reply to one user prompt (deterministic, from keywords)."""
    low = prompt.lower()
    m = _CHOICES.search(prompt)
    if m:
        choices = [c.strip() for c in m.group(1).split(",")]
        if "hate speech: severe" in low and "ban" in choices:
            return "ban"
        if "spam: true" in low and "delete-spam" in choices:
            return "delete-spam"
        if "pii found: true" in low and "redact" in choices:
            return "redact"
        return "approve" if "approve" in choices else choices[0]
    if "true or false" in low:
        if "personal data" in low:
            return "true" if "@" in prompt else "false"
        if "spam" in low:
            return "true" if re.search(r"https?://", prompt) else "false"
        return "false"
    if "none, moderate or severe" in low:
        n = len(_INSULTS.findall(prompt))
        return "severe" if n >= 2 else "moderate" if n == 1 else "none"
    return _PARAGRAPH


class Server:
    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                status, payload = await self.route(method, path, body)
                data = json.dumps(payload).encode()
                writer.write(b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: application/json"
                             b"\r\nContent-Length: " + str(len(data)).encode()
                             + b"\r\nConnection: keep-alive\r\n\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def route(self, method: str, path: str, body: bytes) -> tuple[str, Any]:
        if method == "POST" and path.endswith("/chat/completions"):
            return "200 OK", await self.complete(body)
        if path == "/stats":
            return "200 OK", {"calls": self.calls, "in_flight": self.in_flight,
                              "max_in_flight": self.max_in_flight}
        if path == "/reset" and method == "POST":
            self.calls = self.max_in_flight = 0
            return "200 OK", {"ok": True}
        return "404 Not Found", {"error": {"message": f"no route {method} {path}"}}

    async def complete(self, body: bytes) -> dict[str, Any]:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            req = json.loads(body or b"{}")
            messages = req.get("messages") or []
            prompt = "\n".join(str(m.get("content", "")) for m in messages
                               if m.get("role") == "user")
            text = answer(prompt)
            await asyncio.sleep(self.latency_s)
        finally:
            self.in_flight -= 1
        p_tok, c_tok = max(1, len(prompt) // 4), max(1, len(text) // 4)
        return {"id": f"chatcmpl-{self.calls}", "object": "chat.completion",
                "created": int(time.time()), "model": req.get("model") or "bench-model",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": p_tok, "completion_tokens": c_tok,
                          "total_tokens": p_tok + c_tok}}


async def _main(latency_s: float, port: int) -> None:
    srv = Server(latency_s)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", port, backlog=4096,
                                        limit=1 << 20)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.llm_server")
    ap.add_argument("--latency", type=float, default=0.2, help="seconds before each answer")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    try:
        asyncio.run(_main(args.latency, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
