"""``random``: random search, the control the paper lacks. The same loop, budget (steps x
candidates), memory, selection and run files as IPO, with the LLM replaced by a sampler over a
template bank composed from generic phrase parts and the dataset's domain word, never from
class names (:mod:`ipo_vlm.prompting.bank`). Seeded by the run seed and the step, so a resumed
run draws what the interrupted one would have; it spends no LLM tokens."""

from __future__ import annotations

import random
from typing import Any

from ipo_vlm.methods.base import MethodContext, MethodOutcome, StepRecord
from ipo_vlm.methods.search import SearchLoop, replay_memory, request_seed

SOURCE = "random"


def draw(bank: Any, config: Any, domain: str, step: int, n: int, exclude: Any) -> list[str]:
    """``n`` bank templates for ``step`` of a run, seeded by the run seed and the step (so a
    resumed run draws the same), none matching ``exclude``."""
    return bank.sample(n, random.Random(request_seed(config.data.seed, step, 0)), domain, exclude=exclude)


class RandomLoop(SearchLoop):
    source = SOURCE

    def __init__(self, ctx: MethodContext, memory: Any) -> None:
        super().__init__(ctx.record, ctx.config, ctx.task.score, memory, ctx.progress, ctx.hook)
        from ipo_vlm.prompting.bank import TemplateBank

        self.bank = TemplateBank.load(extra=ctx.config.optimize.bank)
        self.domain = ctx.task.dataset.info.domain
        self.check = ctx.task.check

    def step(self, step: int) -> StepRecord:
        drawn = draw(self.bank, self.config, self.domain, step, self.config.optimize.candidates, self.seen)
        record = StepRecord(step=step, returned=len(drawn))
        usable = []
        for template in drawn:
            reason = self.check(template)
            if reason:
                record.rejected[reason] = record.rejected.get(reason, 0) + 1
            else:
                usable.append((template, SOURCE, None))
        record.valid = len(usable)
        record.candidates = [t for t, _, _ in usable]
        self._score_and_record(step, usable)
        return record


class RandomSearch:
    name = "random"
    label = "random search"
    proposer = "random search"
    uses_llm = False
    fixed = False

    def describe(self, config: Any) -> str:
        return f"method {self.name}: {config.optimize.steps} steps x {config.optimize.candidates} candidates"

    def run(self, ctx: MethodContext) -> MethodOutcome:
        from ipo_vlm.methods.memory import Memory

        return RandomLoop(ctx, Memory(ctx.config.optimize.memory_size)).run(ctx.seeds)

    def replay_pool(self, history: Any, config: Any) -> list[Any]:
        return replay_memory(history, config)


def load_random(name: str = "", **_: Any) -> RandomSearch:
    return RandomSearch()
