"""IPO's step: render the meta-prompt from the memory, ask the LLM (again, a bounded number of
times, while too few candidates are usable), parse, and score the new templates. Everything else
— seeds, recording, resume, budget stops — is the shared :class:`~ipo_vlm.methods.search.SearchLoop`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ipo_vlm.llm.base import LLMRequest, OutputConstraint
from ipo_vlm.methods.base import Hook, Progress, RunRecord, StepRecord
from ipo_vlm.methods.ipo.proposer import Parsed, Proposer
from ipo_vlm.methods.search import Candidate, ScoreFn, SearchLoop, request_seed
from ipo_vlm.prompting.placeholders import LLM_PLACEHOLDER

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.methods.memory import Memory

log = logging.getLogger(__name__)


class LLMSessionLike(Protocol):
    tokens_in: int
    tokens_out: int

    def complete(self, request: LLMRequest, annotate: Callable[[str], dict[str, Any]] | None = None) -> Any: ...


def enough_candidates(candidates: int) -> int:
    """A step asks again only while it has fewer valid new candidates than this (half, rounded
    up): with a slow local model, a retry for the last missing candidate costs a whole call."""
    return (candidates + 1) // 2


class OptimizationLoop(SearchLoop):
    """The LLM optimizer's loop."""

    def __init__(
        self,
        record: RunRecord,
        config: "RunConfig",
        session: LLMSessionLike,
        proposer: Proposer,
        score: ScoreFn,
        memory: "Memory",
        progress: Callable[[Progress], None] | None = None,
        hook: Hook | None = None,
        errors: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(record, config, score, memory, progress, hook)
        self.session = session
        self.proposer = proposer
        #: ``template -> Reflection`` of its training errors, shown under the memory (None: off)
        self.errors = errors

    def key(self, template: str) -> str:
        return self.proposer.key(template)

    def tokens(self) -> tuple[int, int]:
        return (self.session.tokens_in, self.session.tokens_out)

    def cached_answers(self) -> int:
        return int(getattr(self.session, "cache_hits", 0))

    # -- one LLM step ------------------------------------------------------------------------

    def _request(self, messages: tuple[tuple[str, str], ...], step: int, sample_index: int) -> LLMRequest:
        llm, candidates = self.config.llm, self.config.optimize.candidates
        constraint = (OutputConstraint(n=candidates, placeholder=LLM_PLACEHOLDER, max_chars=self.proposer.max_chars,
                                       max_words=getattr(self.proposer, "max_words", None))
                      if llm.constrained else None)
        return LLMRequest(
            messages=messages,
            temperature=llm.temperature,
            top_p=llm.top_p,
            max_tokens=llm.max_tokens,
            seed=request_seed(self.config.data.seed, step, sample_index),
            repeat_penalty=llm.repeat_penalty,
            sample_index=sample_index,
            constraint=constraint,
        )

    def _ask(self, request: LLMRequest, seen: set[str], step: int) -> tuple[Parsed, Any]:
        box: dict[str, Parsed] = {}

        def annotate(text: str) -> dict[str, Any]:
            box["p"] = parsed = self.proposer.parse(text, set(seen))
            return {"step": step, "returned": parsed.returned, "valid": len(parsed.valid), "rejected": parsed.rejected}

        response = self.session.complete(request, annotate=annotate)
        parsed = box.get("p") or self.proposer.parse(response.text, set(seen))
        return parsed, response

    def step(self, step: int) -> StepRecord:
        best = self.memory.best()
        reflection = self.errors(best.template) if self.errors is not None and best is not None else None
        messages = self.proposer.messages(self.memory.for_prompt(), self.worst(self.config.optimize.show_worst), reflection)
        record = StepRecord(step=step)
        chosen: list[Candidate] = []
        seen = set(self.seen)
        wanted = self.config.optimize.candidates
        for sample_index in range(1 + self.config.optimize.max_retries_per_step):
            tin, tout = self.session.tokens_in, self.session.tokens_out
            self._report(step, f"asking the LLM (call {sample_index + 1})")
            parsed, response = self._ask(self._request(messages, step, sample_index), seen, step)
            record.llm_calls += 1
            record.tokens_in += self.session.tokens_in - tin
            record.tokens_out += self.session.tokens_out - tout
            record.returned += parsed.returned
            record.valid += len(parsed.valid)
            for reason, n in parsed.rejected.items():
                record.rejected[reason] = record.rejected.get(reason, 0) + n
            for template in parsed.valid:
                key = self.proposer.key(template)
                if key in seen or len(chosen) >= wanted:
                    continue
                seen.add(key)
                chosen.append((template, "llm", getattr(response, "call_id", None) or None))
            if len(chosen) >= enough_candidates(wanted):
                break
            log.debug("step %d: %d of %d candidates after call %d", step, len(chosen), wanted, sample_index + 1)
        if not chosen:
            log.warning("step %d: the LLM gave no usable template in %d call(s) (%s)", step, record.llm_calls,
                        ", ".join(f"{r}: {n}" for r, n in sorted(record.rejected.items())) or "nothing parsed")
        record.candidates = [t for t, _, _ in chosen]
        self._report(step, f"scoring {len(chosen)} candidate(s)")
        self._score_and_record(step, chosen)
        return record

