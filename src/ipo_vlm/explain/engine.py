"""Rebuilding a finished run's task (dataset, split, VLM, cached features) to score templates.

The one place where ``explain`` touches the engine; these imports follow the engine modules
when they move."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipo_vlm.errors import ConfigError
from ipo_vlm.engine.evaluate import harmonic_mean
from ipo_vlm.prompting.placeholders import require_template as check_template
from ipo_vlm.runs.run import Run

__all__ = ["Part", "RunTask", "check_template"]


@dataclass
class Part:
    """Cached image features of one part of the split and the classes they are scored among."""

    name: str
    classnames: list[str]
    features: np.ndarray
    labels: np.ndarray


class RunTask:
    """A run's train, test-base and test-novel images with one shared scorer, so that every
    prompt is encoded at most once (and not at all when the text cache already holds it)."""

    def __init__(self, run: Run, dataset: Any = None, vlm: Any = None, progress: Callable[..., Any] | None = None) -> None:
        """``dataset`` and ``vlm`` default to those named in the run's config."""
        from ipo_vlm.engine.features import FeatureStore
        from ipo_vlm.engine.scoring import Scorer
        from ipo_vlm.vlm import create_vlm

        self.run = run
        self.result: dict[str, Any] = run.result_dict or {}
        dataset = dataset if dataset is not None else run.dataset()
        split = run.load_split(dataset)
        self.vlm = vlm if vlm is not None else create_vlm(run.vlm, **run.vlm_options)
        self.scorer = Scorer(self.vlm)
        store = FeatureStore(self.vlm)
        self.parts: dict[str, Part] = {}
        for name, samples, classnames in (
            ("train", split.train, split.base_classnames),
            ("base", split.test_base, split.base_classnames),
            ("novel", split.test_novel, split.novel_classnames),
        ):
            if samples:
                feats = np.asarray(store.features(dataset, samples, progress=progress), dtype=np.float64)
                self.parts[name] = Part(name, list(classnames), feats, np.asarray([s.label for s in samples]))
        self.halves = {"base": list(split.base_classnames), "novel": list(split.novel_classnames)}
        self.classnames = self.halves["base"] + self.halves["novel"]

    @classmethod
    def open(cls, run: str | Path, dataset: Any = None, vlm: Any = None, progress: Callable[..., Any] | None = None) -> "RunTask":
        """The task of a run that has a ``result.json``; a clear ``ConfigError`` otherwise."""
        return cls(Run.open(run, need_result=True), dataset=dataset, vlm=vlm, progress=progress)

    def check(self, template: str) -> None:
        """``ConfigError`` unless ``template`` can be scored for every class of the run."""
        check_template(template)
        problem = self.scorer.check(template, self.classnames)
        if problem:
            raise ConfigError(f"template {template!r} cannot be used: {problem}")

    def score(self, templates: Sequence[str]) -> dict[str, dict[str, float]]:
        """``{template: {train_acc, train_loss, base_acc, base_loss, novel_acc, novel_loss, hm}}``;
        a part without images scores 0 accuracy and no loss."""
        out: dict[str, dict[str, float]] = {t: {} for t in templates}
        for name in ("train", "base", "novel"):
            part = self.parts.get(name)
            scores = self.scorer.score(list(templates), part.classnames, part.features, part.labels) if part else None
            for i, t in enumerate(templates):
                out[t][f"{name}_acc"] = float(scores[i].accuracy) if scores else 0.0
                out[t][f"{name}_loss"] = float(scores[i].loss) if scores else None  # type: ignore[assignment]
        for s in out.values():
            s["hm"] = harmonic_mean(s["base_acc"], s["novel_acc"])
        return out

    def per_class(self, template: str) -> list[float | None]:
        """Test accuracy of each class (base classes among base, novel among novel), in the
        order base then novel; None for a class without test images."""
        accs: list[float | None] = []
        for name, classnames in self.halves.items():
            part = self.parts.get(name)
            if part is None:
                accs.extend([None] * len(classnames))
                continue
            text = np.asarray(self.scorer.class_embeddings(template, classnames), dtype=np.float64)
            pred = (part.features @ text.T).argmax(axis=1)
            for c in range(len(classnames)):
                mask = part.labels == c
                accs.append(float(np.mean(pred[mask] == c)) if mask.any() else None)
        return accs

    @property
    def text_stats(self) -> dict[str, int]:
        return dict(self.scorer.stats)
