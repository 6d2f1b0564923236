"""Choosing a run's templates: the pool ranked by the run's selection rule, its best, its top K."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipo_vlm.errors import ConfigError
from ipo_vlm.scored import NEEDS_VAL, SELECTION_KEYS, ScoredTemplate, best_first


def rank(
    history: Sequence[ScoredTemplate], select_on: str, candidates: Iterable[str] | None = None, weights: tuple[int, int] = (1, 1)
) -> list[ScoredTemplate]:
    """Distinct templates among ``candidates`` (all of history if None), best first by
    ``select_on`` (see :func:`ipo_vlm.scored.rank_key`); equal keys keep history order."""
    if select_on not in SELECTION_KEYS:
        raise ConfigError(f"unknown selection rule {select_on!r}; known: {', '.join(SELECTION_KEYS)}")
    allowed = None if candidates is None else set(candidates)
    pool: dict[str, ScoredTemplate] = {}
    for s in history:
        if allowed is None or s.template in allowed:
            pool.setdefault(s.template, s)
    if not pool:
        raise ConfigError("the run has no scored templates yet")
    if select_on in NEEDS_VAL:
        missing = [s.template for s in pool.values() if s.val_accuracy is None]
        if missing:
            raise ConfigError(f"selection by {select_on} needs validation scores, but {len(missing)} of {len(pool)} templates have none")
    return best_first(pool.values(), select_on, weights)


def select_best(
    history: Sequence[ScoredTemplate], candidates: Iterable[str] | None, select_on: str, weights: tuple[int, int] = (1, 1)
) -> ScoredTemplate:
    """The best scored template among ``candidates`` (all of history if None)."""
    return rank(history, select_on, candidates, weights)[0]


def check_ensemble_size(k: int, available: int) -> int:
    """``k`` if an ensemble of ``k`` templates can be drawn from ``available`` distinct ones."""
    if k < 1:
        raise ConfigError(f"--ensemble must be at least 1, got {k}")
    if k > available:
        raise ConfigError(f"--ensemble {k} is larger than the {available} distinct templates in the run's pool")
    return k
