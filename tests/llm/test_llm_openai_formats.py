"""Servers that reject a ``response_format``: the backend steps down json_schema -> json_object ->
plain text at once (no retry spent), remembers what worked for the run, records it per call, and
turns a server's multi-line reason into one line. Fault injection on a loopback fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ipo_vlm.cli.main import main
from ipo_vlm.errors import LLMError
from ipo_vlm.llm.base import LLMRequest, OutputConstraint
from ipo_vlm.llm.formats import FORMATS, one_line, server_reason
from ipo_vlm.llm.openai_backend import OpenAIChat
from ipo_vlm.llm.openai_settings import OpenAISettings
from ipo_vlm.llm.retry import RetryPolicy
from ipo_vlm.llm.session import LLMSession
from helpers.llm_server import FakeOpenAIServer, Reply

FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=1.0, jitter=0.0)
ANSWER = '{"templates": ["a photo of a <CLASS>."]}'
# what llama-cpp-python's server says to a json_schema request (a 500, several lines)
PYDANTIC = (
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
    "  Input should be 'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]\n"
    "    For further information visit https://errors.pydantic.dev/2.11/v/literal_error"
)


@pytest.fixture(autouse=True)
def fresh_memory():
    FORMATS.clear()
    yield
    FORMATS.clear()


def rejecting(*formats: str, status: int = 500, message: str = PYDANTIC):
    """A responder that rejects requests whose response_format type is in ``formats``."""

    def respond(body: Any) -> Reply:
        fmt = (body.get("response_format") or {}).get("type", "none")
        if fmt in formats:
            return Reply.error(status, message=message)
        return Reply.ok(ANSWER)

    return respond


def backend(server: FakeOpenAIServer, **kw: Any) -> OpenAIChat:
    return OpenAIChat("fake-model", settings=OpenAISettings(base_url=server.url, timeout_s=2.0), retry=FAST, **kw)


def constrained(i: int = 0) -> LLMRequest:
    return LLMRequest(messages=(("user", f"write templates {i}"),), constraint=OutputConstraint(3, max_words=8))


def sent_formats(server: FakeOpenAIServer) -> list[str]:
    return [(r.body.get("response_format") or {}).get("type", "none") for r in server.chat_requests()]


def test_a_rejected_json_schema_costs_one_extra_call_and_the_run_remembers_json_object(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=rejecting("json_schema")) as server:
        session = LLMSession(backend(server), calls_path=tmp_path / "llm_calls.jsonl")
        first = session.complete(constrained(1))
        second = session.complete(constrained(2))
        again = backend(server).complete(constrained(3))  # a new backend object in the same run
    assert sent_formats(server) == ["json_schema", "json_object", "json_object", "json_object"]
    assert first.text == second.text == again.text == ANSWER
    assert first.extra["response_format"] == "json_object" and second.extra["response_format"] == "json_object"
    [rejected] = first.extra["response_format_rejected"]
    assert rejected["format"] == "json_schema" and "\n" not in rejected["reason"]
    assert "Input should be 'text' or 'json_object'" in rejected["reason"] and "pydantic.dev" not in rejected["reason"]
    assert "response_format_rejected" not in second.extra
    records = [json.loads(line) for line in (tmp_path / "llm_calls.jsonl").read_text().splitlines()]
    assert [r["extra"]["response_format"] for r in records] == ["json_object", "json_object"]
    assert records[0]["extra"]["response_format_rejected"][0]["format"] == "json_schema"
    assert records[0]["error"] is None


def test_a_server_that_takes_no_format_gets_plain_text_after_two_rejections() -> None:
    message = "Invalid parameter: 'response_format' is not supported by this model."
    with FakeOpenAIServer(responder=rejecting("json_schema", "json_object", status=400, message=message)) as server:
        resp = backend(server).complete(constrained())
        backend(server).complete(constrained(1))
    assert sent_formats(server) == ["json_schema", "json_object", "none", "none"]
    assert resp.extra["response_format"] == "none" and len(resp.extra["response_format_rejected"]) == 2


def test_parallel_calls_pay_for_a_rejection_once() -> None:
    with FakeOpenAIServer(responder=rejecting("json_schema")) as server:
        session = LLMSession(backend(server, concurrency=4))
        results = session.complete_many([constrained(i) for i in range(6)])
    assert all(not isinstance(r, LLMError) for r in results)
    assert sent_formats(server).count("json_schema") == 1 and len(server.chat_requests()) == 7


def test_an_explicit_format_is_where_the_chain_starts() -> None:
    with FakeOpenAIServer(responder=rejecting("json_schema")) as server:
        resp = backend(server, response_format="json_object").complete(constrained())
    assert sent_formats(server) == ["json_object"] and "response_format_rejected" not in resp.extra


def test_other_server_errors_still_retry_and_end_as_one_line_with_the_reason() -> None:
    message = "model overloaded\nplease try again\n  later"
    with FakeOpenAIServer(default=Reply.error(503, message=message)) as server:
        with pytest.raises(LLMError) as info:
            backend(server).complete(constrained())
    assert len(server.chat_requests()) == 1 + FAST.max_retries  # retried, and never a format fallback
    assert sent_formats(server) == ["json_schema"] * 4
    assert str(info.value) == f"openai:fake-model@{server.url}: HTTP 503: model overloaded; please try again; later"


def test_server_reasons_from_every_body_shape_become_one_line() -> None:
    assert server_reason({"error": {"message": "bad\nthing"}}, "x") == "bad; thing"
    assert server_reason({"detail": [{"loc": ["body", "response_format"], "msg": "Input should be 'text'"}]}, "x") == (
        "body.response_format: Input should be 'text'")
    assert server_reason(b"plain failure\n\n", "x") == "plain failure"
    assert server_reason(None, "Error code: 500") == "Error code: 500"
    assert len(one_line("word " * 200)) <= 300


def test_check_llm_reports_the_formats_the_server_accepts(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(responder=rejecting("json_schema")) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(["backends", "--check-llm", "openai:fake-model"]) == 0
    out = capsys.readouterr().out
    assert "response_format json_schema: rejected (HTTP 500: 1 validation error" in out
    assert "response_format json_object: accepted" in out and "response_format none:        accepted" in out
    assert "a run uses: json_object" in out


def test_a_server_of_ones_own_gets_minutes_per_call_openai_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipo_vlm.llm.openai_backend import LOCAL_TIMEOUT_S, load_openai

    monkeypatch.setenv("OPENAI_API_KEY", "sk-timeout-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert load_openai("gpt-4o-mini").settings.timeout_s == 60.0
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8765/v1")
    assert load_openai("qwen").settings.timeout_s == LOCAL_TIMEOUT_S == 600.0
    assert load_openai("qwen?timeout=30").settings.timeout_s == 30.0
