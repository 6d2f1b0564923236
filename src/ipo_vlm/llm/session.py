"""``LLMSession``: the one door through which the optimizer talks to an LLM.

It adds what every backend needs and none should repeat: the response cache, one record per
call in ``llm_calls.jsonl`` (hit or miss, success or error), token totals and a token budget,
and concurrency for independent calls. A cache hit costs zero tokens and counts zero toward the
budget."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ipo_vlm.errors import BudgetExceeded, LLMError
from ipo_vlm.io.jsonio import append_jsonl
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.llm.base import LLM, LLMRequest, LLMResponse
from ipo_vlm.llm.cache import ResponseCache

log = logging.getLogger(__name__)

Annotate = Callable[[str], dict[str, Any]]


class LLMSession:
    """Wraps an ``LLM`` with a cache, call records and a token budget.

    ``start_tokens`` are the ``(tokens_in, tokens_out)`` already spent by an earlier part of the
    same run (resume), so the budget spans the whole run."""

    def __init__(
        self,
        llm: LLM,
        cache: ResponseCache | None = None,
        calls_path: str | Path | None = None,
        max_total_tokens: int | None = None,
        start_tokens: tuple[int, int] = (0, 0),
    ) -> None:
        self.llm = llm
        self.cache = cache
        self.calls_path = Path(calls_path) if calls_path is not None else None
        self.max_total_tokens = max_total_tokens
        self.tokens_in, self.tokens_out = int(start_tokens[0]), int(start_tokens[1])
        self.calls = 0
        #: answers served from the response cache (they cost no tokens)
        self.cache_hits = 0
        self._lock = threading.Lock()
        if self.calls_path is not None:
            self.calls_path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def model_id(self) -> str:
        return self.llm.model_id

    @property
    def cache_id(self) -> str:
        """What the response cache keys answers by: the backend's ``cache_id`` where it has one
        (the model plus any setting that changes its answers to the same request), else its model."""
        return getattr(self.llm, "cache_id", None) or self.llm.model_id

    def remaining_tokens(self) -> int | None:
        """Tokens left in the budget, or ``None`` when there is no budget."""
        if self.max_total_tokens is None:
            return None
        return max(0, self.max_total_tokens - self.tokens_in - self.tokens_out)

    def check_budget(self, request: LLMRequest | None = None) -> None:
        """Raise ``BudgetExceeded`` when the budget is spent, or when ``request`` could cross it
        (its estimated prompt tokens plus ``max_tokens``)."""
        remaining = self.remaining_tokens()
        if remaining is None:
            return
        spent = self.tokens_in + self.tokens_out
        if remaining <= 0:
            raise BudgetExceeded(f"LLM token budget spent: {spent} of {self.max_total_tokens} tokens used")
        if request is not None:
            from ipo_vlm.llm.tokens import estimate_request_tokens

            worst = estimate_request_tokens(request.messages) + request.max_tokens
            if worst > remaining:
                raise BudgetExceeded(
                    f"LLM token budget: the next call could use ~{worst} tokens, over the {remaining} left "
                    f"({spent} of {self.max_total_tokens} used)"
                )

    def complete(self, request: LLMRequest, annotate: Annotate | None = None, use_cache: bool = True) -> LLMResponse:
        """One call: budget check, cache lookup, backend call, record. Raises ``LLMError``.

        The budget is a hard cap: a call that could cross it (its estimated prompt tokens plus
        ``max_tokens``) is not made and ``BudgetExceeded`` is raised instead; an answer the
        response cache already holds costs nothing and is always served."""
        if self.max_total_tokens is not None and not (use_cache and self.cache is not None and self.cache.get(request, self.cache_id)):
            self.check_budget(request)
        return self._complete(request, annotate, use_cache)

    def complete_many(
        self, requests: Sequence[LLMRequest], annotate: Annotate | None = None, use_cache: bool = True
    ) -> list[LLMResponse | LLMError]:
        """Independent calls, concurrently where the backend allows (``max_concurrency``).

        Results keep the order of ``requests``; a failed call is an ``LLMError`` in its slot. The
        budget is checked once before the batch, so one batch may overrun it slightly."""
        self.check_budget()
        workers = max(1, min(int(getattr(self.llm, "max_concurrency", 1) or 1), len(requests)))

        def one(req: LLMRequest) -> LLMResponse | LLMError:
            try:
                return self._complete(req, annotate, use_cache)
            except LLMError as e:
                return e

        if workers == 1:
            return [one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
            return list(pool.map(one, requests))

    def _complete(self, request: LLMRequest, annotate: Annotate | None, use_cache: bool) -> LLMResponse:
        call_id = uuid.uuid4().hex[:16]
        cache_id = self.cache_id
        cached = self.cache.get(request, cache_id) if (self.cache is not None and use_cache) else None
        if cached is not None:
            self.cache_hits += 1
            cached.call_id = call_id
            self._finish(call_id, request, cached, None, annotate)
            return cached
        start = time.perf_counter()
        try:
            resp = self.llm.complete(request)
        except LLMError as e:
            self._finish(call_id, request, None, e, None, latency=time.perf_counter() - start)
            raise
        resp.call_id = call_id
        resp.cache_hit = False
        if not resp.latency_s:
            resp.latency_s = time.perf_counter() - start
        if self.cache is not None and use_cache:
            self.cache.put(request, cache_id, resp)
        self._finish(call_id, request, resp, None, annotate)
        return resp

    def _finish(
        self,
        call_id: str,
        request: LLMRequest,
        resp: LLMResponse | None,
        error: Exception | None,
        annotate: Annotate | None,
        latency: float = 0.0,
    ) -> None:
        """Count tokens and write the call's record (annotate's dict merged in)."""
        record: dict[str, Any] = {
            "id": call_id,
            "time": round(time.time(), 3),
            "model": self.llm.model_id,
            "prompt_hash": sha256_json([list(m) for m in request.messages]),
            "tokens_in": resp.tokens_in if resp else 0,
            "tokens_out": resp.tokens_out if resp else 0,
            "latency_s": round(resp.latency_s if resp else latency, 4),
            "cache_hit": bool(resp and resp.cache_hit),
            "error": {"type": type(error).__name__, "message": str(error)} if error else None,
            "sample_index": request.sample_index,
        }
        if resp is not None and resp.extra:
            record["extra"] = resp.extra
        annotate_error: BaseException | None = None
        if annotate is not None and resp is not None:
            try:
                record.update(annotate(resp.text))
            except Exception as e:  # record the call anyway, then let the caller see the bug
                record["annotate_error"] = f"{type(e).__name__}: {e}"
                annotate_error = e
        with self._lock:
            self.calls += 1
            self.tokens_in += record["tokens_in"]
            self.tokens_out += record["tokens_out"]
            if self.calls_path is not None:
                append_jsonl(self.calls_path, record)
        if annotate_error is not None:
            raise annotate_error
