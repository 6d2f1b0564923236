"""Choosing a run's best template and writing what the run achieved (``result.json``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.loop import BASELINE_TEMPLATE, LoopResult
from ipo_vlm.proposer import memory_rows
from ipo_vlm.rundir import RunDir, StepRecord


def _train_key(rec: dict[str, Any]) -> tuple[float, float]:
    return (rec["train_acc"], -rec["train_loss"])


def select_best(history: Sequence[dict[str, Any]], candidates: Iterable[str] | None, select_on: str) -> dict[str, Any]:
    """The history record of the best template among ``candidates`` (all of history if None).

    ``train``: highest training accuracy, ties broken by lower loss. ``val``: the same on the
    few-shot validation split, then the training scores. Equal keys keep the earliest record."""
    allowed = None if candidates is None else set(candidates)
    pool = [r for r in history if allowed is None or r["template"] in allowed]
    if not pool:
        raise ConfigError("the run has no scored templates yet")
    if select_on == "val":
        missing = [r["template"] for r in pool if r.get("val_acc") is None]
        if missing:
            raise ConfigError(f"select_on=val but {len(missing)} templates have no validation score")
        return max(pool, key=lambda r: (r["val_acc"], -r["val_loss"], *_train_key(r)))
    return max(pool, key=_train_key)


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
    config: Any, rundir: RunDir, backends: Any, split: Any, outcome: LoopResult, session: Any, maskings: int, seconds: float
) -> dict[str, Any]:
    """Select the best template, evaluate it and both baselines on the test split, and gather
    the run's numbers into the ``result.json`` dict (fractions, not percentages)."""
    from ipo_vlm.evaluate import TestSetEvaluator

    history = rundir.history()
    in_memory = [row[0] for row in memory_rows(outcome.memory.for_prompt())]
    best = select_best(history, in_memory, config.optimize.select_on)
    handcrafted = backends.dataset.info.template
    evaluator = TestSetEvaluator(backends.vlm, backends.dataset, split)
    scores = {s.template: s for s in evaluator.evaluate(_unique([best["template"], BASELINE_TEMPLATE, handcrafted]))}
    top = scores[best["template"]]
    result: dict[str, Any] = {
        "best_template": top.template,
        "base_acc": top.base_acc,
        "novel_acc": top.novel_acc,
        "hm": top.hm,
        "best_train_acc": best["train_acc"],
        "best_train_loss": best["train_loss"],
        "best_val_acc": best.get("val_acc"),
        "best_step": best["step"],
        "best_source": best["source"],
        "select_on": config.optimize.select_on,
        "baseline": scores[BASELINE_TEMPLATE].to_dict(),
        "handcrafted": scores[handcrafted].to_dict(),
        "steps_done": max(outcome.steps_done, 0),
        "steps": config.optimize.steps,
        "complete": outcome.stopped == "done" and outcome.steps_done >= config.optimize.steps,
        "stopped": outcome.stopped,
        "templates_scored": len(history),
        "llm_tokens_in": session.tokens_in,
        "llm_tokens_out": session.tokens_out,
        **candidate_stats(outcome.steps),
        "description_maskings": maskings,
        "minutes": round(seconds / 60, 3),
        "dataset": backends.dataset.info.name,
        "shots": config.data.shots,
        "seed": config.data.seed,
        "vlm": config.vlm,
        "llm": config.llm.spec,
    }
    return result
