"""LLMSession: cache, call records, token budget, concurrency; ResponseCache; token estimates."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from ipo_vlm.errors import BudgetExceeded, LLMError
from ipo_vlm.llm.base import LLMRequest, LLMResponse, OutputConstraint
from ipo_vlm.llm.cache import ResponseCache, request_key
from ipo_vlm.llm.session import LLMSession
from ipo_vlm.llm.tokens import estimate_tokens


class CountingLLM:
    """Answers ``echo:<prompt>#<n>`` where n counts real calls; fails on prompts saying 'fail'."""

    model_id = "fake:counting"

    def __init__(self, delay_s: float = 0.0, max_concurrency: int = 1) -> None:
        self.calls = 0
        self.delay_s = delay_s
        self.max_concurrency = max_concurrency
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def complete(self, request: LLMRequest) -> LLMResponse:
        with self._lock:
            self.calls += 1
            n = self.calls
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay_s)
        with self._lock:
            self.active -= 1
        prompt = request.messages[-1][1]
        if "fail" in prompt:
            raise LLMError(f"scripted failure for {prompt}")
        return LLMResponse(text=f"echo:{prompt}#{n}", model=self.model_id, tokens_in=10, tokens_out=5, latency_s=0.01)


def req(text: str, **kw: object) -> LLMRequest:
    return LLMRequest(messages=(("system", "s"), ("user", text)), **kw)  # type: ignore[arg-type]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_request_is_served_from_cache_at_zero_tokens(tmp_path: Path) -> None:
    llm = CountingLLM()
    calls = tmp_path / "llm_calls.jsonl"
    session = LLMSession(llm, cache=ResponseCache(tmp_path / "c.sqlite"), calls_path=calls)
    first = session.complete(req("a"))
    second = session.complete(req("a"))
    assert first.text == second.text == "echo:a#1" and llm.calls == 1
    assert second.cache_hit and (second.tokens_in, second.tokens_out) == (0, 0)
    assert (session.tokens_in, session.tokens_out, session.calls) == (10, 5, 2)
    recs = records(calls)
    assert [r["cache_hit"] for r in recs] == [False, True]
    assert [r["tokens_in"] for r in recs] == [10, 0]
    assert recs[0]["prompt_hash"] == recs[1]["prompt_hash"] and recs[0]["id"] != recs[1]["id"]
    assert recs[1]["id"] == second.call_id and recs[0]["model"] == "fake:counting"


def test_cache_key_covers_sampling_settings_and_sample_index(tmp_path: Path) -> None:
    llm = CountingLLM()
    session = LLMSession(llm, cache=ResponseCache(tmp_path / "c.sqlite"))
    variants = [req("a"), req("a", temperature=0.5), req("a", sample_index=1), req("a", seed=3),
                req("a", repeat_penalty=1.2), req("a", constraint=OutputConstraint(5)), req("a", top_p=0.9)]
    texts = [session.complete(r).text for r in variants]
    assert len(set(texts)) == len(variants) and llm.calls == len(variants)
    assert request_key(req("a"), "m1") != request_key(req("a"), "m2")


def test_a_backend_cache_id_separates_answers_of_one_model(tmp_path: Path) -> None:
    """A setting that changes a backend's answers (its ``cache_id``) gets its own cache entries,
    while the records still name the model."""
    cache = ResponseCache(tmp_path / "c.sqlite")
    calls = tmp_path / "llm_calls.jsonl"
    plain, other = CountingLLM(), CountingLLM()
    other.cache_id = "fake:counting|other-sampler"
    LLMSession(plain, cache=cache).complete(req("a"))
    again = LLMSession(CountingLLM(), cache=cache).complete(req("a"))
    assert again.cache_hit
    answer = LLMSession(other, cache=cache, calls_path=calls).complete(req("a"))
    assert not answer.cache_hit and other.calls == 1 and records(calls)[0]["model"] == "fake:counting"
    assert LLMSession(other, cache=cache).complete(req("a")).cache_hit


def test_cache_persists_across_instances_and_use_cache_false_bypasses_it(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    llm = CountingLLM()
    LLMSession(llm, cache=ResponseCache(path)).complete(req("a"))
    again = LLMSession(llm, cache=ResponseCache(path))
    assert again.complete(req("a")).cache_hit and llm.calls == 1
    fresh = again.complete(req("a"), use_cache=False)
    assert not fresh.cache_hit and fresh.text == "echo:a#2" and llm.calls == 2
    assert len(ResponseCache(path)) == 1


def test_errors_are_recorded_and_not_cached(tmp_path: Path) -> None:
    llm = CountingLLM()
    calls = tmp_path / "llm_calls.jsonl"
    session = LLMSession(llm, cache=ResponseCache(tmp_path / "c.sqlite"), calls_path=calls)
    for _ in range(2):
        with pytest.raises(LLMError):
            session.complete(req("fail now"))
    assert llm.calls == 2
    recs = records(calls)
    assert recs[0]["error"] == {"type": "LLMError", "message": "scripted failure for fail now"}
    assert recs[0]["tokens_in"] == 0 and not recs[0]["cache_hit"]


def test_annotate_dict_is_merged_into_the_record(tmp_path: Path) -> None:
    calls = tmp_path / "llm_calls.jsonl"
    session = LLMSession(CountingLLM(), calls_path=calls)
    session.complete(req("a"), annotate=lambda text: {"valid": 4, "returned": 5, "rejected": {"no placeholder": len(text) - 7}})
    rec = records(calls)[0]
    assert (rec["valid"], rec["returned"], rec["rejected"]) == (4, 5, {"no placeholder": 1})


def test_budget_is_a_hard_cap_that_counts_misses_only(tmp_path: Path) -> None:
    llm = CountingLLM()
    session = LLMSession(llm, cache=ResponseCache(tmp_path / "c.sqlite"), max_total_tokens=40, start_tokens=(10, 5))
    assert session.remaining_tokens() == 25
    small = {"max_tokens": 8}  # ~10 prompt tokens + 8: fits in 25
    session.complete(req("a", **small))
    session.complete(req("a", **small))  # hit: free
    assert session.remaining_tokens() == 10 and llm.calls == 1
    # ~10 prompt tokens + 8 could cross the 10 left: the call is not made
    with pytest.raises(BudgetExceeded, match="could use"):
        session.complete(req("b", **small))
    assert llm.calls == 1 and session.remaining_tokens() == 10
    session.complete(req("a", **small))  # a cached answer is still served
    with pytest.raises(BudgetExceeded):
        session.complete(req("c"))  # max_tokens 512 alone is over the budget
    assert LLMSession(CountingLLM()).remaining_tokens() is None


def test_complete_many_keeps_order_errors_in_place_and_runs_concurrently(tmp_path: Path) -> None:
    llm = CountingLLM(delay_s=0.05, max_concurrency=4)
    calls = tmp_path / "llm_calls.jsonl"
    session = LLMSession(llm, calls_path=calls)
    prompts = [f"p{i}" if i != 3 else "fail 3" for i in range(8)]
    out = session.complete_many([req(p) for p in prompts], annotate=lambda t: {"len": len(t)})
    assert isinstance(out[3], LLMError)
    assert [o.text.split("#")[0] for i, o in enumerate(out) if i != 3] == [f"echo:p{i}" for i in range(8) if i != 3]  # type: ignore[union-attr]
    assert llm.peak > 1
    assert len(records(calls)) == 8 and session.calls == 8


def test_serial_backend_is_never_called_concurrently() -> None:
    llm = CountingLLM(delay_s=0.02, max_concurrency=1)
    LLMSession(llm).complete_many([req(f"p{i}") for i in range(4)])
    assert llm.peak == 1


def test_estimate_tokens_uses_backend_tokenizer_when_offered() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("x" * 41) == 11

    class WithTokenizer:
        def count_tokens(self, text: str) -> int:
            return len(text.split())

    assert estimate_tokens("a b c d e f g h", WithTokenizer()) == 8
