"""The search loop every iterative method shares: seeds at step 0, then ``step()`` proposes
candidates that are scored in one batch, recorded one by one and offered to the memory.

Crash safety: each scored template is appended to ``history.jsonl`` as soon as it is scored and
a line in ``steps.jsonl`` marks a finished step. Resuming rebuilds memory and the set of seen
templates from the finished steps, re-runs the first unfinished step (an LLM's answers come back
identical from the response cache; a sampler is seeded by the step) and reuses, instead of
re-scoring, any of its candidates that were already recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ipo_vlm.errors import BudgetExceeded
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.methods.base import Hook, MethodOutcome, Progress, RunRecord, StepRecord
from ipo_vlm.prompting.placeholders import normalize_key
from ipo_vlm.prompting.render import sort_for_prompt
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.methods.memory import Memory

log = logging.getLogger(__name__)

#: scored templates for a batch of templates, in order (training scores, plus validation
#: scores when the run selects on them)
ScoreFn = Callable[[Sequence[str]], list[ScoredTemplate]]
#: a candidate to score: (template, source, llm_call_id)
Candidate = tuple[str, str, "str | None"]


def request_seed(run_seed: int, step: int, sample_index: int) -> int:
    """A per-request seed that depends only on where the request sits in the run."""
    return int(sha256_json({"run_seed": run_seed, "step": step, "sample": sample_index})[:8], 16)


def replay_memory(history: Sequence[ScoredTemplate], config: "RunConfig") -> list[ScoredTemplate]:
    """The memory a search loop ends with after ``history`` (its pool), best first: every
    recorded template offered in the order it was recorded, as the loop offered it."""
    from ipo_vlm.methods.memory import Memory

    return Memory.from_entries(history, config.optimize.memory_size).entries


class SearchLoop:
    """Runs (or resumes) the seed step and the method's steps over one run record.

    Subclasses implement :meth:`step`, which proposes candidates and scores them with
    :meth:`_score_and_record`; ``tokens`` reports LLM tokens spent so far (none by default)."""

    def __init__(
        self,
        record: RunRecord,
        config: "RunConfig",
        score: ScoreFn,
        memory: "Memory",
        progress: Callable[[Progress], None] | None = None,
        hook: Hook | None = None,
    ) -> None:
        self.record = record
        self.config = config
        self.score = score
        self.memory = memory
        self.progress = progress
        self.hook = hook or (lambda event, step: None)
        self.seen: set[str] = set()
        #: every template scored in finished or current steps, in order (for ``worst``)
        self.scored: list[ScoredTemplate] = []
        self._pending: dict[str, ScoredTemplate] = {}

    #: the ``source`` of the templates this loop's steps propose
    source = "llm"

    def key(self, template: str) -> str:
        return normalize_key(template)

    def tokens(self) -> tuple[int, int]:
        return (0, 0)

    def cached_answers(self) -> int:
        return 0

    def step(self, step: int) -> StepRecord:
        raise NotImplementedError

    # -- resume ------------------------------------------------------------------------------

    def _restore(self) -> int:
        """Rebuild memory and ``seen`` from finished steps; keep the unfinished step's already
        scored candidates for reuse. Returns the first step to run."""
        last = self.record.last_step_done()
        for scored in self.record.history():
            if scored.step <= last:
                self.memory.add(scored)
                self.seen.add(self.key(scored.template))
                self.scored.append(scored)
            elif scored.step == last + 1:
                self._pending[scored.template] = scored
        self._rescore_lost(last)
        if last >= 0 or self._pending:
            log.info("resuming after step %d (%d recorded candidates reused)", last, len(self._pending))
        return last + 1

    def _rescore_lost(self, last: int) -> None:
        """Candidates a finished step chose but ``history.jsonl`` lacks (its last line torn by a
        kill, or cut by hand) are scored again and recorded, so none is lost from the run."""
        recorded = {s.template for s in self.record.history()}
        for rec in self.record.steps():
            lost = [t for t in dict.fromkeys(rec.candidates) if t not in recorded] if rec.step <= last else []
            if not lost:
                continue
            log.warning("step %d: %d scored candidate(s) missing from the history; scoring them again", rec.step, len(lost))
            for scored in self.score(lost):
                scored = scored.with_(step=rec.step, source="seed" if rec.step == 0 else self.source)
                self.record.append_history(scored)
                self.memory.add(scored)
                self.seen.add(self.key(scored.template))
                self.scored.append(scored)

    def worst(self, k: int) -> list[ScoredTemplate]:
        """The ``k`` worst-ranked templates scored so far, worst first in the meta-prompt's own
        order (lowest accuracy, then highest loss), none of them in the memory; empty for ``k == 0``."""
        if k <= 0:
            return []
        held = self.memory.keys()
        pool = {self.key(s.template): s for s in self.scored if self.key(s.template) not in held}
        return sort_for_prompt(list(pool.values()))[:k]

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
            self.seen.add(self.key(scored.template))
            self.scored.append(scored.with_(step=step))
        self._pending.clear()

    def _seed_step(self, seeds: Sequence[str]) -> StepRecord:
        items, keys = [], set()
        for template in seeds:
            if self.key(template) not in keys:
                keys.add(self.key(template))
                items.append((template, "seed", None))
        self._score_and_record(0, items)
        return StepRecord(step=0, returned=len(items), valid=len(items), candidates=[t for t, _, _ in items])

    # -- the run -----------------------------------------------------------------------------

    def run(self, seeds: Sequence[str]) -> MethodOutcome:
        """Run from wherever the run's record stands to ``optimize.steps``; stops cleanly
        (``stopped="budget"``) when an LLM session's token budget is spent."""
        start = self._restore()
        stopped = "done"
        for step in range(start, self.config.optimize.steps + 1):
            try:
                record = self._seed_step(seeds) if step == 0 else self.step(step)
            except BudgetExceeded as e:
                log.info("stopping at step %d: %s", step, e)
                stopped = "budget"
                break
            self.record.append_step(record)
            self.hook("step_done", step)
            self._report(step)
        return MethodOutcome(self.record.last_step_done(), stopped, self.memory.entries, self.record.steps())

    def _report(self, step: int, doing: str = "") -> None:
        if self.progress is None:
            return
        best = self.memory.best()
        self.progress(Progress(step, self.config.optimize.steps, best.template, best.accuracy, *self.tokens(), doing,
                               self.cached_answers()))
