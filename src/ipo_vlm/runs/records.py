"""A finished run as read back from its files, and its scored templates ranked.

Every method writes the same ``history.jsonl`` (one scored template per line), so ranking,
export and classification never ask which method made a run. Ranking keys:

- ``train``: training accuracy, ties by lower training loss
- ``val``: few-shot validation accuracy, ties by lower val loss, then the training key
- ``trainval``: accuracy pooled over train and val images (weighted by their image counts),
  ties by the pooled loss
- ``loss``: lower training loss, ties by higher training accuracy

Equal keys keep history order (the earlier template first), as the run's own selection does."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.runs.rundir import RunDir

RANK_KEYS = ("train", "val", "trainval", "loss")


@dataclass(frozen=True)
class FinishedRun:
    """What export, classify and history need from a run directory."""

    path: Path
    config: dict[str, Any]  # the ``config`` section of config.json
    split: dict[str, Any] | None  # split.json
    result: dict[str, Any] | None  # result.json
    history: list[dict[str, Any]]

    @property
    def vlm(self) -> str:
        return str(self.config.get("vlm", ""))

    @property
    def select_on(self) -> str:
        return str(self.config.get("optimize", {}).get("select_on", "train"))

    @property
    def best_template(self) -> str:
        if not self.result or not self.result.get("best_template"):
            raise ConfigError(f"{self.path} has no result.json yet; finish (or --resume) the run first")
        return str(self.result["best_template"])

    def classnames(self) -> tuple[list[str], list[str], list[str]]:
        """(all in label order, base, novel) class names from ``split.json``."""
        if not self.split:
            raise ConfigError(f"{self.path} has no split.json")
        try:
            base, novel = list(self.split["base_classnames"]), list(self.split["novel_classnames"])
            labels = list(self.split["base_labels"]) + list(self.split["novel_labels"])
        except (KeyError, TypeError):
            raise ConfigError(f"{self.path / 'split.json'} lacks the class lists") from None
        names = base + novel
        if len(labels) != len(names):
            return names, base, novel
        return [n for _, n in sorted(zip(labels, names), key=lambda p: p[0])], base, novel

    def image_counts(self) -> tuple[int, int]:
        """Few-shot (train, val) image counts, the weights of the ``trainval`` key."""
        counts = (self.split or {}).get("counts") or {}
        return sum(counts.get("train") or []), sum(counts.get("val") or [])


def read_run(path: str | Path, need_result: bool = True) -> FinishedRun:
    """Read a run directory; a missing ``result.json`` is a ``ConfigError`` when ``need_result``."""
    rundir = RunDir(path)
    if not rundir.path.is_dir():
        raise ConfigError(f"run directory not found: {rundir.path}")
    config = rundir.read_config()["config"]
    result = rundir.read_result()
    if need_result and not (result and result.get("best_template")):
        raise ConfigError(f"{rundir.path} has no result.json yet; finish (or --resume) the run first")
    split = None
    if rundir.split_path.exists():
        try:
            split = json.loads(rundir.split_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read {rundir.split_path}: {e}") from None
    return FinishedRun(rundir.path, config, split, result, rundir.history_records())


def scored_templates(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per distinct template (its first), in history order."""
    out: dict[str, dict[str, Any]] = {}
    for rec in history:
        if isinstance(rec.get("template"), str) and rec.get("train_acc") is not None:
            out.setdefault(rec["template"], rec)
    return list(out.values())


def _pooled(a: float, b: float, weights: tuple[int, int]) -> float:
    wa, wb = weights
    if wa + wb <= 0:
        wa = wb = 1
    return (a * wa + b * wb) / (wa + wb)


def rank_key(by: str, weights: tuple[int, int] = (1, 1)) -> Callable[[dict[str, Any]], tuple[float, ...]]:
    """A sort key (ascending = best first) for one of :data:`RANK_KEYS`."""
    train = lambda r: (-r["train_acc"], r["train_loss"])  # noqa: E731
    if by == "train":
        return train
    if by == "loss":
        return lambda r: (r["train_loss"], -r["train_acc"])
    if by == "val":
        return lambda r: (-r["val_acc"], r["val_loss"], *train(r))
    if by == "trainval":
        return lambda r: (
            -_pooled(r["train_acc"], r["val_acc"], weights),
            _pooled(r["train_loss"], r["val_loss"], weights),
        )
    raise ConfigError(f"unknown ranking {by!r}; known: {', '.join(RANK_KEYS)}")


def rank(records: Sequence[dict[str, Any]], by: str, weights: tuple[int, int] = (1, 1)) -> list[dict[str, Any]]:
    """Distinct scored templates, best first by ``by``."""
    pool = scored_templates(records)
    if by in ("val", "trainval"):
        missing = sum(1 for r in pool if r.get("val_acc") is None or r.get("val_loss") is None)
        if missing:
            raise ConfigError(f"ranking by {by} needs validation scores, but {missing} of {len(pool)} templates have none (the run selected on train)")
    return sorted(pool, key=rank_key(by, weights))  # stable: ties keep history order


def check_ensemble_size(k: int, available: int) -> int:
    """``k`` if an ensemble of ``k`` templates can be drawn from ``available`` distinct ones."""
    if k < 1:
        raise ConfigError(f"--ensemble must be at least 1, got {k}")
    if k > available:
        raise ConfigError(f"--ensemble {k} is larger than the {available} distinct templates the run scored")
    return k


def top_templates(run: FinishedRun, k: int, by: str | None = None) -> list[str]:
    """The run's ``k`` best distinct templates by ``by`` (default: the run's own selection key)."""
    ranked = rank(run.history, by or run.select_on, run.image_counts())
    check_ensemble_size(k, len(ranked))
    return [r["template"] for r in ranked[:k]]
