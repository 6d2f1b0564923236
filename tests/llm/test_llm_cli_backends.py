"""`ipo backends`: the listing and the one-call LLM check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ipo_vlm.cli.main import main
from helpers.llm_server import FakeOpenAIServer, Reply


def test_lists_every_registered_scheme_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    from ipo_vlm.captioner import CAPTIONERS
    from ipo_vlm.llm import LLMS
    from ipo_vlm.vlm import VLMS

    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for kind, registry in (("vlm", VLMS), ("llm", LLMS), ("captioner", CAPTIONERS)):
        assert f"{kind}:\n" in out
        for scheme, help_line in registry.schemes().items():
            assert any(line.split()[:1] == [scheme] and help_line in line for line in out.splitlines()), scheme


def test_check_llm_prints_model_latency_tokens(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(default=Reply.ok("ok", prompt_tokens=13, completion_tokens=1)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
        assert main(["backends", "--check-llm", "openai:fake-model"]) == 0
        paths = [r.path for r in server.requests]
    out = capsys.readouterr().out
    assert f"model:   openai:fake-model@{server.url}" in out
    assert "tokens:  13 in, 1 out" in out and "latency:" in out
    # preflight first, then one call, then one tiny call per response format
    assert paths == ["/v1/models"] + ["/v1/chat/completions"] * 4
    assert "response_format json_schema: accepted" in out and "a run uses: json_schema" in out


def test_check_llm_user_errors_are_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(["backends", "--check-llm", "openai:m"]) == 2
    assert main(["backends", "--check-llm", "llamacpp:/no/such.gguf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ipo: error: cannot reach the OpenAI-compatible server at http://127.0.0.1:9/v1: APIConnectionError",
                   "ipo: error: GGUF model file not found: /no/such.gguf"]


def test_importing_the_llm_layer_stays_light() -> None:
    code = (
        "import sys, ipo_vlm.llm, ipo_vlm.llm.session, ipo_vlm.llm.cache, ipo_vlm.llm.openai_backend, "
        "ipo_vlm.llm.llamacpp, ipo_vlm.cli.backends\n"
        "heavy = [m for m in ('openai', 'llama_cpp', 'torch', 'transformers') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
