"""``ScoredTemplate``: the one shape of a scored template, from the scorer to the memory, the
meta-prompt, ``history.jsonl`` and the result — and the one ordering of scored templates
(:func:`rank_key`, :func:`best_first`, :func:`worst_first`), which the memory, the meta-prompt,
the run's selection and the report all use, with one NaN rule: NaN ranks below every real score."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ScoredTemplate:
    """A template (``{}`` placeholder) with its accuracy (a fraction in [0, 1]) and mean
    cross-entropy on the images it was scored on — the few-shot training images in a run —
    plus where it came from and, when a run scores them, its validation scores.

    ``source``: ``"seed"`` (scored before the first step), ``"llm"``, or another method's name
    (``"random"``, ...)."""

    template: str
    accuracy: float
    loss: float
    step: int = 0
    source: str = "seed"
    llm_call_id: str | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None

    def with_(self, **changes: Any) -> "ScoredTemplate":
        return replace(self, **changes)

    def to_record(self) -> dict[str, Any]:
        """The ``history.jsonl`` line (validation fields only when scored)."""
        rec: dict[str, Any] = {
            "step": self.step,
            "template": self.template,
            "train_acc": self.accuracy,
            "train_loss": self.loss,
            "source": self.source,
            "llm_call_id": self.llm_call_id,
        }
        if self.val_accuracy is not None:
            rec["val_acc"], rec["val_loss"] = self.val_accuracy, self.val_loss
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "ScoredTemplate":
        val = rec.get("val_acc")
        return cls(
            template=str(rec["template"]),
            accuracy=float(rec["train_acc"]),
            loss=float(rec["train_loss"]),
            step=int(rec.get("step", 0)),
            source=str(rec.get("source", "llm")),
            llm_call_id=rec.get("llm_call_id"),
            val_accuracy=None if val is None else float(val),
            val_loss=None if rec.get("val_loss") is None else float(rec["val_loss"]),
        )

    def rank_key(self, on: str = "train", weights: tuple[int, int] = (1, 1)) -> tuple[float, ...]:
        """This template's :func:`rank_key`."""
        return rank_key(self, on, weights)


def rank_key(s: ScoredTemplate, on: str = "train", weights: tuple[int, int] = (1, 1)) -> tuple[float, ...]:
    """The sort key of a scored template, larger is better, for one of ``SELECTION_KEYS``:

    - ``train``: training accuracy, then lower training loss;
    - ``val``: validation accuracy, then lower validation loss, then the training key;
    - ``trainval``: accuracy and loss pooled over the training and validation images
      (``weights`` = their image counts), then the training key;
    - ``loss``: lower training loss, then higher training accuracy.

    NaN ranks below every real score."""
    acc, loss = _num(s.accuracy, -math.inf), -_num(s.loss, math.inf)
    if on == "train":
        return (acc, loss)
    if on == "loss":
        return (loss, acc)
    if on not in SELECTION_KEYS:
        raise ValueError(f"unknown selection key {on!r}; known: {', '.join(SELECTION_KEYS)}")
    if s.val_accuracy is None:
        raise ValueError(f"{s.template!r} has no validation score")
    val_acc, val_loss = _num(s.val_accuracy, -math.inf), -_num(s.val_loss, math.inf)
    if on == "val":
        return (val_acc, val_loss, acc, loss)
    wt, wv = weights if sum(weights) > 0 else (1, 1)
    return ((acc * wt + val_acc * wv) / (wt + wv), (loss * wt + val_loss * wv) / (wt + wv), acc, loss)


def best_first(items: Iterable[ScoredTemplate], on: str = "train", weights: tuple[int, int] = (1, 1)) -> list[ScoredTemplate]:
    """``items`` best first by :func:`rank_key`; equal keys keep their order (stable)."""
    return sorted(items, key=lambda s: rank_key(s, on, weights), reverse=True)


def worst_first(items: Iterable[ScoredTemplate]) -> list[ScoredTemplate]:
    """``items`` worst first by the training key (the meta-prompt's order: the best sits
    nearest the instruction); equal keys keep their order (stable)."""
    return sorted(items, key=rank_key)


#: the ways a run can rank its scored templates (``optimize.select_on``)
SELECTION_KEYS = ("train", "val", "trainval", "loss")
NEEDS_VAL = frozenset({"val", "trainval"})


def _num(x: float | None, default: float) -> float:
    return default if x is None or math.isnan(x) else float(x)
