"""A real OpenAI-compatible server: llama-cpp-python's own (its ``server`` extra), serving the
offline model on loopback. ``ipo optimize --llm openai:qwen`` must work against it with no
option on the spec: the server rejects ``json_schema`` once, the run falls back to
``json_object`` and says so in ``llm_calls.jsonl``. Slow (~1-2 min on 2 cores); it needs
``make deps`` (llama-cpp-python[server] and the assembled model) and fails, not skips, without."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipo_vlm.errors import BackendError

STARTUP_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ipo_vlm.llm.local_model import ensure_local_model

    try:
        import llama_cpp.server  # noqa: F401 - the extra's presence is the point
    except ImportError as e:
        pytest.fail(f"llama-cpp-python's server extra is missing ({e}); run 'make deps'")
    try:
        model = ensure_local_model()
    except BackendError as e:
        pytest.fail(f"the local model is not available ({e}); run 'make model'")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "qwen",
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--n_ctx", "4096"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ipo(*args: str, base_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": base_url}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "ipo_vlm.cli.main", *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.slow
def test_ipo_optimize_runs_against_llama_cpp_pythons_server_with_no_spec_options(llama_server: str, tmp_path: Path) -> None:
    done = ipo("optimize", "--preset", "demo-shifted", "--llm", "openai:qwen", "--steps", "2", "--out", str(tmp_path / "run"),
               base_url=llama_server)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    result = json.loads((run / "result.json").read_text())
    assert result["steps_done"] == 2 and 0.0 <= result["hm"] <= 1.0 and result["llm_tokens_out"] > 0
    calls = [json.loads(line) for line in (run / "llm_calls.jsonl").read_text().splitlines()]
    assert calls and all(c["error"] is None and c["model"] == f"openai:qwen@{llama_server}" for c in calls)
    # json_schema is rejected once, on the first call; every call then goes out as json_object
    rejected = [r for c in calls for r in c["extra"].get("response_format_rejected", [])]
    assert [r["format"] for r in rejected] == ["json_schema"] and "\n" not in rejected[0]["reason"]
    assert "extra" in calls[0] and calls[0]["extra"].get("response_format_rejected")
    assert {c["extra"]["response_format"] for c in calls} == {"json_object"}
    steps = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    usable = sum(len(s["candidates"]) for s in steps if s["llm_calls"])
    assert usable >= 5, steps  # the server's grammar (from the bounded schema) gives usable templates
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert any(h["source"] == "llm" and "{}" in h["template"] for h in history)


@pytest.mark.slow
def test_check_llm_reports_what_the_server_accepts(llama_server: str) -> None:
    done = ipo("backends", "--check-llm", "openai:qwen", base_url=llama_server)
    assert done.returncode == 0, done.stderr
    assert "response_format json_schema: rejected (HTTP 500" in done.stdout
    assert "response_format json_object: accepted" in done.stdout and "a run uses: json_object" in done.stdout
