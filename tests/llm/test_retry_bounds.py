"""Bounded, visible waits: a Retry-After beyond the cap fails at once with a clear line, a long
wait is announced on stderr, and the OpenAI settings are checked before any request."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ipo_vlm.errors import BackendError, LLMError
from ipo_vlm.llm.openai_settings import OpenAISettings, check_api_key, check_base_url
from ipo_vlm.llm.retry import Retryable, RetryPolicy, with_retries


def _failing(retry_after):
    def fn():
        raise Retryable(LLMError("429 slow down"), retry_after)
    return fn


def test_a_retry_after_beyond_the_cap_fails_at_once():
    waits: list[float] = []
    with pytest.raises(LLMError, match=r"asks to wait 3600 s .*more than the 60 s"):
        with_retries(_failing(3600.0), RetryPolicy(max_retries=4, max_delay_s=60.0), sleep=waits.append, what="chat call")
    assert waits == []


def test_long_waits_are_announced_and_short_ones_only_logged(caplog):
    waits: list[float] = []
    with caplog.at_level(logging.INFO, logger="ipo_vlm.llm.retry"), pytest.raises(LLMError, match="429"):
        with_retries(_failing(None), RetryPolicy(max_retries=3, base_delay_s=1.0, jitter=0.0), sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0]
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [lvl for lvl, _ in levels] == [logging.INFO, logging.INFO, logging.WARNING]
    assert "retry 3/3 in 4 s" in levels[-1][1]


@pytest.mark.parametrize("url", ["localhost:8000/v1", "ftp://host/v1", "http:///v1", " http://host/v1"])
def test_a_base_url_that_is_not_http_is_named(url, monkeypatch):
    with pytest.raises(BackendError, match="OPENAI_BASE_URL"):
        check_base_url(url)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(BackendError, match="OPENAI_BASE_URL"):
        OpenAISettings.from_env()


@pytest.mark.parametrize("key, what", [("sk-tëst", r"non-ASCII character U\+00EB"), ("sk-test\r", r"carriage return"),
                                       ("sk te", "a space")])
def test_a_key_that_cannot_be_sent_is_named_without_showing_it(key, what, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(BackendError, match=what) as e:
        OpenAISettings(base_url="http://127.0.0.1:9/v1").api_key()
    assert key not in str(e.value)
    assert check_api_key("sk-fine_123") == "sk-fine_123"


class _WebPage(BaseHTTPRequestHandler):
    def _page(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"<!doctype html><html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, *args) -> None:
        pass


def test_a_base_url_that_serves_a_web_page_is_named_not_a_traceback(monkeypatch):
    from ipo_vlm.llm import create_llm
    from ipo_vlm.llm.base import LLMRequest

    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        llm = create_llm("openai:m")
        with pytest.raises(BackendError, match="web page, not an OpenAI-compatible API"):
            llm.check()
        with pytest.raises(LLMError, match="web page"):
            llm.complete(LLMRequest(messages=(("user", "hi"),), max_tokens=4))
    finally:
        server.shutdown()
