"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from ipo_vlm.errors import BackendError, ConfigError, LLMError
from ipo_vlm.llm import create_llm
from ipo_vlm.llm.base import LLMRequest, OutputConstraint
from ipo_vlm.llm.cache import ResponseCache
from ipo_vlm.llm.openai_backend import OpenAIChat, load_openai
from ipo_vlm.llm.openai_settings import OpenAISettings
from ipo_vlm.llm.retry import RetryPolicy
from ipo_vlm.llm.session import LLMSession
from helpers.llm_server import FakeOpenAIServer, Reply

KEY = "sk-test-7f3a9c1e5b2d4a6f8e0c"
FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=2.0, jitter=0.0)


def req(text: str = "hi", **kw: object) -> LLMRequest:
    return LLMRequest(messages=(("user", text),), **kw)  # type: ignore[arg-type]


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch):
    with FakeOpenAIServer() as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        yield s


def backend(server: FakeOpenAIServer, timeout: float = 2.0, retry: RetryPolicy = FAST, **kw: object) -> OpenAIChat:
    settings = OpenAISettings(base_url=server.url, timeout_s=timeout, max_retries=retry.max_retries)
    return OpenAIChat("fake-model", settings=settings, retry=retry, **kw)  # type: ignore[arg-type]


def test_plain_call_sends_sampling_settings_and_reads_usage(server: FakeOpenAIServer) -> None:
    server.push(Reply.ok("a photo of a <CLASS>.", prompt_tokens=21, completion_tokens=9))
    llm = backend(server)
    resp = llm.complete(req("go", temperature=0.7, top_p=0.9, max_tokens=50, seed=5, stop=("###",)))
    assert resp.text == "a photo of a <CLASS>."
    assert (resp.tokens_in, resp.tokens_out) == (21, 9)
    body = server.chat_requests()[0].body
    assert body["messages"] == [{"role": "user", "content": "go"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"], body["stop"]) == (0.7, 0.9, 50, 5, ["###"])
    assert "response_format" not in body
    assert server.chat_requests()[0].headers["authorization"] == f"Bearer {KEY}"


def test_429_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    server.push(Reply.error(429, retry_after=0.4), Reply.ok("fine"))
    llm = backend(server)
    assert llm.complete(req()).text == "fine"
    first, second = server.chat_requests()
    # Our own backoff would be 0.01 s: the gap shows the server's 0.4 s was respected.
    assert second.time - first.time >= 0.38


def test_5xx_and_broken_answers_are_retried_then_succeed(server: FakeOpenAIServer) -> None:
    server.push(Reply.error(500), Reply.malformed(), Reply.empty_choices(), Reply.ok("done"))
    assert backend(server).complete(req()).text == "done"
    assert len(server.chat_requests()) == 4


@pytest.mark.parametrize(
    "reply, words",
    [
        (Reply.error(503), "scripted failure"),
        (Reply.malformed(), "malformed"),
        (Reply.empty_choices(), "without any choice"),
        (Reply.close(), "connection failed"),
    ],
)
def test_persistent_failures_end_as_llm_error_after_bounded_retries(server: FakeOpenAIServer, reply: Reply, words: str) -> None:
    server.default = reply
    with pytest.raises(LLMError, match=words):
        backend(server).complete(req())
    assert len(server.chat_requests()) == 1 + FAST.max_retries


def test_client_errors_are_not_retried(server: FakeOpenAIServer) -> None:
    server.push(Reply.error(400, message="bad request: unknown field"))
    with pytest.raises(LLMError, match="unknown field"):
        backend(server).complete(req())
    assert len(server.chat_requests()) == 1


def test_hang_past_the_timeout_is_retried_then_fails(server: FakeOpenAIServer) -> None:
    server.default = Reply.hang(1.5)
    retry = RetryPolicy(max_retries=1, base_delay_s=0.01, jitter=0.0)
    llm = backend(server, timeout=0.3, retry=retry)
    llm._get_client()  # the SDK's first import takes seconds on a busy machine: not what is timed here
    start = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        llm.complete(req())
    assert len(server.chat_requests()) == 2
    assert time.monotonic() - start < 1.5  # gave up on the timeout, not on the server


def test_run_of_30_calls_survives_30_percent_failures(server: FakeOpenAIServer, tmp_path: Path) -> None:
    rng = random.Random(7)
    failures = [Reply.error(500), Reply.error(429, retry_after=0.05), Reply.malformed(), Reply.close()]
    server.responder = lambda body: rng.choice(failures) if rng.random() < 0.3 else Reply.ok("ok " + body["messages"][0]["content"])
    session = LLMSession(backend(server, retry=RetryPolicy(max_retries=6, base_delay_s=0.01, jitter=0.5)), calls_path=tmp_path / "calls.jsonl")
    results = session.complete_many([req(f"q{i}") for i in range(30)])
    assert [r.text for r in results] == [f"ok q{i}" for i in range(30)]  # type: ignore[union-attr]
    assert len(server.chat_requests()) > 30  # failures really happened and were retried
    assert session.calls == 30 and session.tokens_in == 30 * 11


def test_constraint_sends_json_schema_or_json_object_or_nothing(server: FakeOpenAIServer) -> None:
    constrained = req(constraint=OutputConstraint(5))
    for style in ("json_schema", "json_object", "none"):
        server.push(Reply.ok('{"templates": ["a <CLASS>"]}'))
        text = backend(server, response_format=style).complete(constrained).text
        assert text == '{"templates": ["a <CLASS>"]}'  # raw text; parsing is the optimizer's
    bodies = [r.body for r in server.chat_requests()]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    schema = bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["templates"] and schema["properties"]["templates"]["items"] == {"type": "string"}
    bounded = bodies[1]["response_format"]["schema"]  # llama.cpp's servers turn it into a grammar
    assert bodies[1]["response_format"]["type"] == "json_object"
    assert bounded["properties"]["templates"]["minItems"] == bounded["properties"]["templates"]["maxItems"] == 5
    assert "minItems" not in schema["properties"]["templates"]  # strict structured outputs take no bounds
    assert "response_format" not in bodies[2]


def test_missing_usage_is_estimated(server: FakeOpenAIServer) -> None:
    server.push(Reply.no_usage("12345678"))
    resp = backend(server).complete(req("x" * 40))
    assert resp.tokens_out == 2 and resp.tokens_in >= 10 and resp.extra["tokens_estimated"] is True


def test_check_preflight(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    backend(server).check()  # reachable, key set: no error
    server.models_status = 401
    with pytest.raises(BackendError, match="rejected OPENAI_API_KEY"):
        backend(server).check()
    server.stop()
    with pytest.raises(BackendError, match="cannot reach"):
        backend(server).check()


def test_missing_key_for_the_official_api_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    llm = create_llm("openai:gpt-4o-mini")
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        llm.check()


def test_spec_options_and_model_id(server: FakeOpenAIServer) -> None:
    llm = load_openai("m1?response_format=json_object&concurrency=8&timeout=3&max_retries=2")
    assert (llm.response_format, llm.max_concurrency, llm.settings.timeout_s, llm.retry.max_retries) == ("json_object", 8, 3.0, 2)
    assert llm.model_id == f"openai:m1@{server.url}"
    with pytest.raises(ConfigError, match="unknown openai option"):
        load_openai("m1?colour=red")
    with pytest.raises(ConfigError, match="response_format"):
        load_openai("m1?response_format=xml")


def test_api_key_is_written_nowhere(server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A server that echoes the key in its error message must not get it into a record.
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    server.push(Reply.ok("one"), Reply.error(401, message=f"Incorrect API key provided: {KEY}"))
    session = LLMSession(backend(server), cache=ResponseCache(), calls_path=tmp_path / "run" / "llm_calls.jsonl")
    session.complete(req("a"))
    session.complete(req("a"))  # cache hit
    with pytest.raises(LLMError) as info:
        session.complete(req("b"))
    assert KEY not in str(info.value)
    records = [json.loads(line) for line in (tmp_path / "run" / "llm_calls.jsonl").read_text().splitlines()]
    assert [r["cache_hit"] for r in records] == [False, True, False]
    assert records[2]["error"]["type"] == "LLMError"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 2
    for p in written:
        assert KEY.encode() not in p.read_bytes(), p
