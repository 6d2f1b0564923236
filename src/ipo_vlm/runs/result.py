"""What a run achieved: :class:`RunResult`, written as ``result.json``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ipo_vlm.engine.evaluate import EvalScores
from ipo_vlm.methods.base import MethodOutcome, StepRecord
from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE
from ipo_vlm.runs.select import select_best

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.engine.task import Task
    from ipo_vlm.runs.rundir import RunDir


@dataclass(frozen=True)
class RunResult:
    """The selected template with its base/novel/H on the test split, the same for the
    baselines, and the run's costs. Accuracies are fractions in [0, 1]."""

    best_template: str
    base_acc: float
    novel_acc: float
    hm: float
    best_train_acc: float
    best_train_loss: float
    best_val_acc: float | None
    best_step: int
    best_source: str
    select_on: str
    baseline: EvalScores
    handcrafted: EvalScores
    steps_done: int
    steps: int
    complete: bool
    stopped: str
    templates_scored: int
    llm_tokens_in: int
    llm_tokens_out: int
    llm_calls: int
    candidates_returned: int
    candidates_valid: int
    valid_rate: float | None
    rejections: dict[str, int]
    description_maskings: int
    minutes: float
    dataset: str
    shots: int
    seed: int
    vlm: str
    llm: str
    #: fields added by later versions or other methods, kept as read
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``result.json`` layout (flat; baselines as nested objects)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                out.update(value)
            elif isinstance(value, EvalScores):
                out[f.name] = value.to_dict()
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunResult":
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in raw.items() if k in known}
        for name in ("baseline", "handcrafted"):
            values[name] = EvalScores(**raw[name])
        return cls(**values, extra={k: v for k, v in raw.items() if k not in known})


def candidate_stats(steps: Sequence[StepRecord]) -> dict[str, Any]:
    """Counts over finished LLM steps; ``valid_rate`` = valid and new / returned."""
    llm_steps = [s for s in steps if s.step > 0]
    returned = sum(s.returned for s in llm_steps)
    valid = sum(s.valid for s in llm_steps)
    rejected: dict[str, int] = {}
    for s in llm_steps:
        for reason, n in s.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + n
    return {
        "llm_calls": sum(s.llm_calls for s in llm_steps),
        "candidates_returned": returned,
        "candidates_valid": valid,
        "valid_rate": valid / returned if returned else None,
        "rejections": dict(sorted(rejected.items())),
    }


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def build_result(
    config: "RunConfig", rundir: "RunDir", task: "Task", outcome: MethodOutcome, tokens: tuple[int, int], maskings: int, seconds: float
) -> RunResult:
    """Select the best template of the method's pool, evaluate it and both baselines on the
    test split, and gather the run's numbers."""
    history = rundir.history()
    best = select_best(history, [s.template for s in outcome.pool], config.optimize.select_on)
    handcrafted = task.dataset.info.template
    scores = {s.template: s for s in task.evaluate(_unique([best.template, BASELINE_TEMPLATE, handcrafted]))}
    top = scores[best.template]
    return RunResult(
        best_template=top.template,
        base_acc=top.base_acc,
        novel_acc=top.novel_acc,
        hm=top.hm,
        best_train_acc=best.accuracy,
        best_train_loss=best.loss,
        best_val_acc=best.val_accuracy,
        best_step=best.step,
        best_source=best.source,
        select_on=config.optimize.select_on,
        baseline=scores[BASELINE_TEMPLATE],
        handcrafted=scores[handcrafted],
        steps_done=max(outcome.steps_done, 0),
        steps=config.optimize.steps,
        complete=outcome.stopped == "done" and outcome.steps_done >= config.optimize.steps,
        stopped=outcome.stopped,
        templates_scored=len(history),
        llm_tokens_in=tokens[0],
        llm_tokens_out=tokens[1],
        **candidate_stats(outcome.steps),
        description_maskings=maskings,
        minutes=round(seconds / 60, 3),
        dataset=task.dataset.info.name,
        shots=config.data.shots,
        seed=config.data.seed,
        vlm=config.vlm,
        llm=config.llm.spec,
    )
