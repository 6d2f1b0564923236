"""Choosing a run's template: the best of a pool by the run's selection rule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ipo_vlm.errors import ConfigError
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.runs.rundir import RunDir


def select_best(history: Sequence[ScoredTemplate], candidates: Iterable[str] | None, select_on: str) -> ScoredTemplate:
    """The best scored template among ``candidates`` (all of history if None).

    ``train``: highest training accuracy, ties broken by lower loss. ``val``: the same on the
    few-shot validation split, then the training scores. Equal keys keep the earliest record."""
    allowed = None if candidates is None else set(candidates)
    pool = [s for s in history if allowed is None or s.template in allowed]
    if not pool:
        raise ConfigError("the run has no scored templates yet")
    if select_on == "val":
        missing = [s.template for s in pool if s.val_accuracy is None]
        if missing:
            raise ConfigError(f"select_on=val but {len(missing)} templates have no validation score")
    return max(pool, key=lambda s: s.rank_key(select_on))


def best_template_of(rundir: "RunDir", select_on: str = "train") -> str:
    """The run's selected template: ``result.json``'s, or the best in ``history.jsonl``."""
    result = rundir.read_result()
    if result and result.get("best_template"):
        return str(result["best_template"])
    history = rundir.history()
    if not history:
        raise ConfigError(f"{rundir.path} has no scored templates yet")
    return select_best(history, None, select_on).template
