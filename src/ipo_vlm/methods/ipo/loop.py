"""The optimization loop: render -> ask -> parse -> score -> remember -> record, step by step.

Everything the loop needs comes in as small dependencies (an LLM session, a proposer that
renders and parses meta-prompts, score functions, the run directory), so it is tested with fakes
and wired to the real VLM and LLM in :mod:`ipo_vlm.runs.optimize`.

Crash safety: each scored template is appended to ``history.jsonl`` as soon as it is scored and
a line in ``steps.jsonl`` marks a finished step. Resuming rebuilds memory and the set of seen
templates from the finished steps, re-runs the first unfinished step (its LLM answers come back
identical from the response cache or the scripted LLM) and reuses, instead of re-scoring, any of
its candidates that were already recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ipo_vlm.errors import BudgetExceeded
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.llm.base import LLMRequest, OutputConstraint
from ipo_vlm.methods.base import Hook, MethodOutcome, Progress, RunRecord, StepRecord
from ipo_vlm.methods.ipo.proposer import Parsed, Proposer
from ipo_vlm.prompting.placeholders import LLM_PLACEHOLDER
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.methods.ipo.memory import Memory

log = logging.getLogger(__name__)

#: scored templates for a batch of templates, in order (training scores, plus validation
#: scores when the run selects on them)
ScoreFn = Callable[[Sequence[str]], list[ScoredTemplate]]


class LLMSessionLike(Protocol):
    tokens_in: int
    tokens_out: int

    def complete(self, request: LLMRequest, annotate: Callable[[str], dict[str, Any]] | None = None) -> Any: ...


def enough_candidates(candidates: int) -> int:
    """A step asks again only while it has fewer valid new candidates than this (half, rounded
    up): with a slow local model, a retry for the last missing candidate costs a whole call."""
    return (candidates + 1) // 2


def request_seed(run_seed: int, step: int, sample_index: int) -> int:
    """A per-request seed that depends only on where the request sits in the run."""
    return int(sha256_json({"run_seed": run_seed, "step": step, "sample": sample_index})[:8], 16)


class OptimizationLoop:
    """Runs (or resumes) the seed step and the LLM steps of one run directory."""

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
    ) -> None:
        self.record = record
        self.config = config
        self.session = session
        self.proposer = proposer
        self.score = score
        self.memory = memory
        self.progress = progress
        self.hook = hook or (lambda event, step: None)
        self.seen: set[str] = set()
        self._pending: dict[str, ScoredTemplate] = {}

    # -- resume ------------------------------------------------------------------------------

    def _restore(self) -> int:
        """Rebuild memory and ``seen`` from finished steps; keep the unfinished step's already
        scored candidates for reuse. Returns the first step to run."""
        last = self.record.last_step_done()
        for scored in self.record.history():
            if scored.step <= last:
                self.memory.add(scored)
                self.seen.add(self.proposer.key(scored.template))
            elif scored.step == last + 1:
                self._pending[scored.template] = scored
        if last >= 0 or self._pending:
            log.info("resuming after step %d (%d recorded candidates reused)", last, len(self._pending))
        return last + 1

    # -- scoring and recording ---------------------------------------------------------------

    def _score_and_record(self, step: int, items: list[tuple[str, str, str | None]]) -> None:
        """Score ``(template, source, llm_call_id)`` items in one batch (skipping those already
        recorded), append each to history at once, then add all to memory in order."""
        fresh = [t for t, _, _ in items if t not in self._pending]
        scores = dict(zip(fresh, self.score(fresh))) if fresh else {}
        kept = []
        for template, source, call_id in items:
            scored = self._pending.get(template)
            if scored is None:
                scored = scores[template].with_(step=step, source=source, llm_call_id=call_id)
                self.record.append_history(scored)
                self.hook("candidate", step)
            kept.append(scored)
        # candidates recorded before a crash whose re-asked step answered differently (no
        # response cache) are kept too: they were scored, so they are not thrown away
        kept += [s for t, s in self._pending.items() if t not in {i[0] for i in items}]
        for scored in kept:
            self.memory.add(scored.with_(step=step))
            self.seen.add(self.proposer.key(scored.template))
        self._pending.clear()

    def _seed_step(self, seeds: Sequence[str]) -> StepRecord:
        items, keys = [], set()
        for template in seeds:
            if self.proposer.key(template) not in keys:
                keys.add(self.proposer.key(template))
                items.append((template, "seed", None))
        self._score_and_record(0, items)
        return StepRecord(step=0, returned=len(items), valid=len(items))

    # -- one LLM step ------------------------------------------------------------------------

    def _request(self, messages: tuple[tuple[str, str], ...], step: int, sample_index: int) -> LLMRequest:
        llm, candidates = self.config.llm, self.config.optimize.candidates
        constraint = OutputConstraint(n=candidates, placeholder=LLM_PLACEHOLDER) if llm.constrained else None
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

    def _llm_step(self, step: int) -> StepRecord:
        messages = self.proposer.messages(self.memory.for_prompt())
        record = StepRecord(step=step)
        chosen: list[tuple[str, str, str | None]] = []
        seen = set(self.seen)
        wanted = self.config.optimize.candidates
        for sample_index in range(1 + self.config.optimize.max_retries_per_step):
            tin, tout = self.session.tokens_in, self.session.tokens_out
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
        self._score_and_record(step, chosen)
        return record

    # -- the run -----------------------------------------------------------------------------

    def run(self, seeds: Sequence[str]) -> MethodOutcome:
        """Run from wherever the run's record stands to ``optimize.steps``; stops cleanly
        (``stopped="budget"``) when the LLM session's token budget is spent."""
        start = self._restore()
        stopped = "done"
        for step in range(start, self.config.optimize.steps + 1):
            try:
                record = self._seed_step(seeds) if step == 0 else self._llm_step(step)
            except BudgetExceeded as e:
                log.info("stopping at step %d: %s", step, e)
                stopped = "budget"
                break
            self.record.append_step(record)
            self.hook("step_done", step)
            self._report(step)
        return MethodOutcome(self.record.last_step_done(), stopped, self.memory.entries, self.record.steps())

    def _report(self, step: int) -> None:
        if self.progress is None:
            return
        best = self.memory.best()
        steps = self.config.optimize.steps
        self.progress(Progress(step, steps, best.template, best.accuracy, self.session.tokens_in, self.session.tokens_out))
