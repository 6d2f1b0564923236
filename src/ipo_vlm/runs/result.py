"""What a run achieved: :class:`RunResult`, written as ``result.json``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ipo_vlm.config import DEFAULT_METHOD
from ipo_vlm.engine.evaluate import EvalScores
from ipo_vlm.methods.base import MethodOutcome, StepRecord, traits
from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE
from ipo_vlm.runs.select import rank
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.engine.task import Task
    from ipo_vlm.runs.rundir import RunDir


@dataclass(frozen=True)
class RunResult:
    """The selected template with its base/novel/H on the test split, the same for the
    baselines, and the run's costs. Accuracies are fractions in [0, 1].

    Attributes:
        best_template: the selected template, with ``{}`` for the class name.
        base_acc: its test accuracy on the base classes.
        novel_acc: its test accuracy on the unseen novel classes.
        hm: the harmonic mean of the two.
        best_source: where it came from: ``seed``, ``llm`` or another method's name.
        select_on: the selection key it was chosen by (``train``, ``val``, ``trainval``, ``loss``).
        baseline: "a photo of a {}." evaluated the same way.
        handcrafted: the dataset's hand-crafted template evaluated the same way.
        stopped: why the run ended (``"budget"`` when the token budget was spent).
        llm_tokens_in: prompt tokens spent (cached answers cost none).
        llm_tokens_out: completion tokens spent.
        baseline_kept: the search found nothing better than a baseline seed.
        ensembles: the top-K ensembles evaluated beside the single template.
        control: the random-search control on the same split, with ``diff_hm``.
    """

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
    method: str = DEFAULT_METHOD
    empty_steps: int = 0
    #: the selected template is a baseline seed ("a photo of a {}." or the dataset's own): the
    #: search found nothing better by the selection rule (a seed made from the image descriptions
    #: is not a baseline: ``best_source`` says "seed" and this stays False)
    baseline_kept: bool = False
    #: ensembles evaluated beside the single template: {k, templates, base_acc, novel_acc, hm}
    ensembles: list[dict[str, Any]] = field(default_factory=list)
    #: the random-search control from the same seeds on the same split: {method, best_template,
    #: best_source ("seed" or "random"), best_step, base_acc, novel_acc, hm, diff_hm (this run's
    #: H minus the control's), templates_scored, ensembles}
    control: dict[str, Any] | None = None
    #: the step-0 seeds alone, selected by the run's rule: {template, kind ("baseline" or
    #: "description"), base_acc, novel_acc, hm}; None for a method without a search
    seeds_alone: dict[str, Any] | None = None
    #: the method's final pool (IPO, random: the memory), the templates every reader ranks
    #: (:meth:`ipo_vlm.runs.run.Run.ranked`); empty in runs recorded before it was kept
    pool: list[str] = field(default_factory=list)
    #: what the headline numbers are: the selected ``"template"``, or the method's own
    #: ``"ensemble"`` (then ``ensembles[0]``)
    headline: str = "template"
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
        # steps where the LLM answered but gave no usable new template
        "empty_steps": sum(1 for s in llm_steps if s.llm_calls and s.valid == 0),
    }


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def ranked_pool(task: "Task", config: "RunConfig", history: Sequence[ScoredTemplate], outcome: MethodOutcome) -> list[ScoredTemplate]:
    """The method's pool, best first by the run's selection rule."""
    return rank(history, config.optimize.select_on, [s.template for s in outcome.pool], task.image_counts())


def ensemble_rows(task: "Task", ranked: Sequence[ScoredTemplate], ks: Iterable[int]) -> list[dict[str, Any]]:
    """Test base/novel/H of the top-k ensembles of ``ranked`` (k larger than the pool: skipped)."""
    rows = []
    for k in ks:
        if 0 < k <= len(ranked):
            templates = [s.template for s in ranked[:k]]
            scores = task.evaluate_ensemble(templates, f"top-{k} ensemble")
            rows.append({"k": k, "templates": templates, "base_acc": scores.base_acc, "novel_acc": scores.novel_acc, "hm": scores.hm})
    return rows


def seeds_alone_pick(config: "RunConfig", task: "Task", history: Sequence[ScoredTemplate]) -> ScoredTemplate | None:
    """The best of the step-0 seeds by the run's selection rule: what the run would have
    selected had no step proposed anything; None for a method without a search."""
    seeds = [s.template for s in history if s.step == 0 and s.source == "seed"]
    if traits(config.method).fixed or not seeds:
        return None
    return rank(history, config.optimize.select_on, seeds, task.image_counts())[0]


def seed_kind(template: str, handcrafted: str) -> str:
    """"baseline" for "a photo of a {}." or the dataset's own template, else "description"."""
    return "baseline" if template in (BASELINE_TEMPLATE, handcrafted) else "description"


def build_result(
    config: "RunConfig", rundir: "RunDir", task: "Task", outcome: MethodOutcome, tokens: tuple[int, int], maskings: int, seconds: float
) -> RunResult:
    """Select the best template of the method's pool, evaluate it, its ensembles and both
    baselines on the test split, and gather the run's numbers. A method that ensembles its own
    templates (CLIP's 80-template ensemble) has the ensemble as its headline."""
    history = rundir.history()
    ranked = ranked_pool(task, config, history, outcome)
    best = ranked[0]
    handcrafted = task.dataset.info.template
    seed = seeds_alone_pick(config, task, history)
    extra = [seed.template] if seed else []
    scores = {s.template: s for s in task.evaluate(_unique([best.template, BASELINE_TEMPLATE, handcrafted, *extra]))}
    top = scores[best.template]
    ensembles = ensemble_rows(task, ranked, [config.optimize.ensemble])
    if outcome.ensemble:
        top = task.evaluate_ensemble(outcome.ensemble, f"{config.method} ensemble")
        ensembles.insert(0, {"k": len(outcome.ensemble), "templates": list(outcome.ensemble), "base_acc": top.base_acc,
                             "novel_acc": top.novel_acc, "hm": top.hm})
    complete = outcome.complete if outcome.complete is not None else outcome.steps_done >= config.optimize.steps
    return RunResult(
        best_template=best.template,
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
        complete=outcome.stopped == "done" and complete,
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
        method=config.method,
        baseline_kept=(best.source == "seed" and best.template in (BASELINE_TEMPLATE, handcrafted)
                       and not traits(config.method).fixed),
        ensembles=ensembles,
        seeds_alone=None if seed is None else {**scores[seed.template].to_dict(),
                                               "kind": seed_kind(seed.template, handcrafted)},
        pool=[s.template for s in outcome.pool],
        headline="ensemble" if outcome.ensemble else "template",
    )
