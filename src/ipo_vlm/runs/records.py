"""A finished run as read back from its files, and its scored templates ranked.

Every method writes the same ``history.jsonl`` (one scored template per line), so ranking,
export and classification never ask which method made a run; templates are ranked exactly as
the run's own selection ranks them (:mod:`ipo_vlm.runs.select`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.runs.select import check_ensemble_size, rank
from ipo_vlm.scored import ScoredTemplate


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


def rank_records(records: Sequence[dict[str, Any]], by: str, weights: tuple[int, int] = (1, 1)) -> list[dict[str, Any]]:
    """Distinct scored templates' history records, best first by ``by`` (one of
    :data:`~ipo_vlm.scored.SELECTION_KEYS`, ranked as the run's own selection ranks)."""
    first: dict[str, dict[str, Any]] = {}
    for rec in records:
        if isinstance(rec.get("template"), str) and rec.get("train_acc") is not None:
            first.setdefault(rec["template"], rec)
    ranked = rank([ScoredTemplate.from_record(r) for r in first.values()], by, weights=weights)
    return [first[s.template] for s in ranked]


def top_templates(run: FinishedRun, k: int, by: str | None = None) -> list[str]:
    """The run's ``k`` best distinct templates by ``by`` (default: the run's own selection key)."""
    ranked = rank_records(run.history, by or run.select_on, run.image_counts())
    check_ensemble_size(k, len(ranked))
    return [r["template"] for r in ranked[:k]]
