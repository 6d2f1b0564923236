"""The optimization loop: render -> ask -> parse -> score -> remember -> record, step by step.

Everything the loop needs comes in as small dependencies (an LLM session, a proposer that
renders and parses meta-prompts, score functions, the run directory), so it is tested with fakes
and wired to the real VLM and LLM in :mod:`ipo_vlm.optimize`.

Crash safety: each scored template is appended to ``history.jsonl`` as soon as it is scored and
a line in ``steps.jsonl`` marks a finished step. Resuming rebuilds memory and the set of seen
templates from the finished steps, re-runs the first unfinished step (its LLM answers come back
identical from the response cache or the scripted LLM) and reuses, instead of re-scoring, any of
its candidates that were already recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ipo_vlm.errors import BudgetExceeded
from ipo_vlm.jsonio import sha256_json
from ipo_vlm.llm.base import LLMRequest, OutputConstraint
from ipo_vlm.rundir import RunDir, StepRecord

log = logging.getLogger(__name__)

BASELINE_TEMPLATE = "a photo of a {}."
LLM_PLACEHOLDER = "<CLASS>"

#: template -> (accuracy, loss) for a batch of templates, in order
ScoreFn = Callable[[Sequence[str]], list[tuple[float, float]]]
#: called at named points ("candidate", "step_done"); tests raise from it to simulate a kill
Hook = Callable[[str, int], None]


@dataclass
class Parsed:
    """The loop's view of one parsed LLM answer."""

    valid: list[str]  # templates with ``{}``, new and usable, in the order the LLM gave them
    returned: int  # candidate lines the LLM returned
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count


class Proposer(Protocol):
    """Turns the memory into a meta-prompt and an LLM answer into candidate templates."""

    def messages(self, memory: list[tuple[str, float, float]]) -> tuple[tuple[str, str], ...]: ...

    def parse(self, text: str, seen: set[str]) -> Parsed: ...

    def key(self, template: str) -> str: ...


class LLMSessionLike(Protocol):
    tokens_in: int
    tokens_out: int

    def complete(self, request: LLMRequest, annotate: Callable[[str], dict[str, Any]] | None = None) -> Any: ...


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    candidates: int
    max_retries_per_step: int
    seed: int
    temperature: float = 1.0
    top_p: float = 1.0
    repeat_penalty: float | None = None
    max_tokens: int = 400
    constrained: bool = True
    #: a step asks again only while it has fewer valid new candidates than this (default: half,
    #: rounded up); with a slow local model, a retry for the last missing candidate costs a whole call
    min_valid: int | None = None

    def enough(self) -> int:
        return self.min_valid if self.min_valid is not None else (self.candidates + 1) // 2


@dataclass(frozen=True)
class LoopProgress:
    """Sent to the progress callback after every finished step, and while a step works."""

    step: int
    steps: int
    best_template: str
    best_acc: float
    tokens_in: int
    tokens_out: int
    #: what the step is doing now ("asking the LLM (call 2)"); empty once the step is finished
    doing: str = ""


@dataclass
class LoopResult:
    steps_done: int
    stopped: str  # "done" or "budget"
    memory: Any
    steps: list[StepRecord]


def request_seed(run_seed: int, step: int, sample_index: int) -> int:
    """A per-request seed that depends only on where the request sits in the run."""
    return int(sha256_json({"run_seed": run_seed, "step": step, "sample": sample_index})[:8], 16)


class OptimizationLoop:
    """Runs (or resumes) the seed step and the LLM steps of one run directory."""

    def __init__(
        self,
        rundir: RunDir,
        settings: LoopSettings,
        session: LLMSessionLike,
        proposer: Proposer,
        score_train: ScoreFn,
        score_val: ScoreFn | None,
        memory: Any,
        progress: Callable[[LoopProgress], None] | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.rundir = rundir
        self.settings = settings
        self.session = session
        self.proposer = proposer
        self.score_train = score_train
        self.score_val = score_val
        self.memory = memory
        self.progress = progress
        self.hook = hook or (lambda event, step: None)
        self.seen: set[str] = set()
        self._pending: dict[str, dict[str, Any]] = {}

    # -- resume ------------------------------------------------------------------------------

    def _restore(self) -> int:
        """Rebuild memory and ``seen`` from finished steps; keep the unfinished step's already
        scored candidates for reuse. Returns the first step to run."""
        from ipo_vlm.memory import MemoryEntry

        last = self.rundir.last_step_done()
        for rec in self.rundir.history():
            if rec["step"] <= last:
                self.memory.add(MemoryEntry(rec["template"], rec["train_acc"], rec["train_loss"], rec["step"], rec["source"]))
                self.seen.add(self.proposer.key(rec["template"]))
            elif rec["step"] == last + 1:
                self._pending[rec["template"]] = rec
        if last >= 0 or self._pending:
            log.info("resuming after step %d (%d recorded candidates reused)", last, len(self._pending))
        return last + 1

    # -- scoring and recording ---------------------------------------------------------------

    def _score_and_record(self, step: int, items: list[tuple[str, str, str | None]]) -> None:
        """Score ``(template, source, llm_call_id)`` items in one batch (skipping those already
        recorded), append each to history at once, then add all to memory in order."""
        from ipo_vlm.memory import MemoryEntry

        fresh = [t for t, _, _ in items if t not in self._pending]
        train = dict(zip(fresh, self.score_train(fresh))) if fresh else {}
        val = dict(zip(fresh, self.score_val(fresh))) if fresh and self.score_val else {}
        records = []
        for template, source, call_id in items:
            rec = self._pending.get(template)
            if rec is None:
                acc, loss = train[template]
                rec = {"step": step, "template": template, "train_acc": acc, "train_loss": loss, "source": source, "llm_call_id": call_id}
                if self.score_val:
                    rec["val_acc"], rec["val_loss"] = val[template]
                self.rundir.append_history(rec)
                self.hook("candidate", step)
            records.append(rec)
        # candidates recorded before a crash whose re-asked step answered differently (no
        # response cache) are kept too: they were scored, so they are not thrown away
        records += [rec for t, rec in self._pending.items() if t not in {i[0] for i in items}]
        for rec in records:
            self.memory.add(MemoryEntry(rec["template"], rec["train_acc"], rec["train_loss"], step, rec["source"]))
            self.seen.add(self.proposer.key(rec["template"]))
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
        s = self.settings
        constraint = OutputConstraint(n=s.candidates, placeholder=LLM_PLACEHOLDER) if s.constrained else None
        return LLMRequest(
            messages=messages,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=request_seed(s.seed, step, sample_index),
            repeat_penalty=s.repeat_penalty,
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
        for sample_index in range(1 + self.settings.max_retries_per_step):
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
                if key in seen or len(chosen) >= self.settings.candidates:
                    continue
                seen.add(key)
                chosen.append((template, "llm", getattr(response, "call_id", None) or None))
            if len(chosen) >= self.settings.enough():
                break
            log.debug("step %d: %d of %d candidates after call %d", step, len(chosen), self.settings.candidates, sample_index + 1)
        self._report(step, f"scoring {len(chosen)} candidate(s)")
        self._score_and_record(step, chosen)
        return record

    # -- the run -----------------------------------------------------------------------------

    def run(self, seeds: Sequence[str]) -> LoopResult:
        """Run from wherever the run directory stands to ``settings.steps``; stops cleanly
        (``stopped="budget"``) when the LLM session's token budget is spent."""
        start = self._restore()
        stopped = "done"
        for step in range(start, self.settings.steps + 1):
            try:
                record = self._seed_step(seeds) if step == 0 else self._llm_step(step)
            except BudgetExceeded as e:
                log.info("stopping at step %d: %s", step, e)
                stopped = "budget"
                break
            self.rundir.append_step(record)
            self.hook("step_done", step)
            self._report(step)
        return LoopResult(self.rundir.last_step_done(), stopped, self.memory, self.rundir.steps())

    def _report(self, step: int, doing: str = "") -> None:
        if self.progress is None:
            return
        best = self.memory.best()
        self.progress(LoopProgress(step, self.settings.steps, best.template, best.accuracy, self.session.tokens_in, self.session.tokens_out, doing))
