"""A scriptable OpenAI-compatible server on 127.0.0.1 for tests (stdlib only).

    with FakeOpenAIServer() as server:
        server.push(Reply.status(429, retry_after=0.2), Reply.ok("a photo of a <CLASS>."))
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        ...
        assert len(server.chat_requests()) == 2

Each ``POST .../chat/completions`` takes the next scripted ``Reply`` from the queue; when the
queue is empty it asks ``responder`` (a callable given the request body) or answers with
``default``. ``GET .../models`` lists ``models``. Every request is recorded (method, path, headers,
parsed JSON body; header names lower-cased) in ``server.requests``; vision calls are recorded like any other chat call."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted behaviour of the server."""

    kind: str = "ok"  # ok | status | hang | malformed | empty_choices | close
    text: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: dict[str, int] | None = None
    body: bytes | None = None

    @classmethod
    def ok(cls, text: str, prompt_tokens: int = 11, completion_tokens: int = 7, delay_s: float = 0.0) -> "Reply":
        return cls("ok", text=text, delay_s=delay_s, usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens})

    @classmethod
    def no_usage(cls, text: str) -> "Reply":
        return cls("ok", text=text, usage=None)

    @classmethod
    def error(cls, status: int, retry_after: float | None = None, message: str = "scripted failure") -> "Reply":
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = json.dumps({"error": {"message": message, "type": "server_error", "code": None}}).encode()
        return cls("status", status=status, headers=headers, body=body)

    @classmethod
    def hang(cls, seconds: float) -> "Reply":
        return cls("hang", delay_s=seconds)

    @classmethod
    def malformed(cls) -> "Reply":
        return cls("malformed", body=b'{"id": "x", "choices": [{"message": ')

    @classmethod
    def empty_choices(cls) -> "Reply":
        return cls("empty_choices")

    @classmethod
    def close(cls) -> "Reply":
        """Drop the connection without answering."""
        return cls("close")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    time: float


class FakeOpenAIServer:
    """Loopback HTTP server speaking enough of the OpenAI chat API for the SDK."""

    def __init__(
        self,
        default: Reply | None = None,
        responder: Callable[[Any], Reply] | None = None,
        models: tuple[str, ...] = ("fake-model",),
        models_status: int = 200,
    ) -> None:
        self.default = default or Reply.ok("ok")
        self.responder = responder
        self.models = models
        self.models_status = models_status
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------------------------
    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def _next(self, body: Any) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(body) if self.responder else self.default

    def chat_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    """Serves one request per call, as scripted by the owning ``FakeOpenAIServer``."""

    @property
    def fake(self) -> FakeOpenAIServer:
        return self.server.fake  # type: ignore[attr-defined]

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _record(self, body: Any) -> None:
        rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
        with self.fake._lock:
            self.fake.requests.append(rec)

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            data = {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "test"} for m in self.fake.models]}
            self._send(self.fake.models_status, json.dumps(data).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._record(body)
        if not self.path.endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        self._reply(self.fake._next(body), body)

    def _reply(self, reply: Reply, body: Any) -> None:
        if reply.kind == "hang":
            time.sleep(reply.delay_s)
            self.close_connection = True
            return
        if reply.kind == "close":
            self.close_connection = True
            return
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.kind == "status":
            self._send(reply.status, reply.body or b"{}", reply.headers)
        elif reply.kind == "malformed":
            self._send(200, reply.body or b"{", reply.headers)
        else:
            choices = [] if reply.kind == "empty_choices" else [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply.text}}
            ]
            model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
            data: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model, "choices": choices}
            if reply.usage is not None:
                u = reply.usage
                data["usage"] = {**u, "total_tokens": u["prompt_tokens"] + u["completion_tokens"]}
            self._send(200, json.dumps(data).encode(), reply.headers)
