"""Base / novel / H on the test split.

Base test images are classified among the base classes only and novel test images among the
novel classes only (the CoOp / IPO base-to-novel protocol); H is the harmonic mean
``2·b·n / (b + n)``. Test features go through the same on-disk feature store as training
features, so evaluating several templates, or the same run twice, encodes each image once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipo_vlm.errors import ConfigError

if TYPE_CHECKING:
    from ipo_vlm.data import TaskSplit
    from ipo_vlm.data.base import Dataset
    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)


def harmonic_mean(base: float, novel: float) -> float:
    """``2·b·n / (b + n)``; 0 when both are 0."""
    return 2 * base * novel / (base + novel) if base + novel > 0 else 0.0


@dataclass(frozen=True)
class EvalScores:
    """One template's test accuracies, as fractions in [0, 1]."""

    template: str
    base_acc: float
    novel_acc: float
    hm: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_template(template: str) -> str:
    """A user-given template must hold the ``{}`` placeholder exactly once."""
    if template.count("{}") != 1:
        raise ConfigError(f"template must contain the class placeholder {{}} exactly once: {template!r}")
    return template


class TestSetEvaluator:
    """Scores templates on a split's base and novel test images (features computed once)."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(
        self,
        vlm: "VisionLanguageModel",
        dataset: "Dataset",
        split: "TaskSplit",
        progress: Callable[..., Any] | None = None,
    ) -> None:
        from ipo_vlm.features import FeatureStore
        from ipo_vlm.scoring import Scorer

        self.split = split
        self.scorer = Scorer(vlm)
        store = FeatureStore(vlm)
        self._halves = []
        for samples, classnames in ((split.test_base, split.base_classnames), (split.test_novel, split.novel_classnames)):
            feats = store.features(dataset, samples, progress=progress) if samples else None
            labels = [s.label for s in samples]
            self._halves.append((list(classnames), feats, labels))

    def _accuracies(self, templates: Sequence[str], half: int) -> list[float]:
        classnames, feats, labels = self._halves[half]
        if feats is None or not labels:
            log.warning("no %s test images; accuracy reported as 0", "base" if half == 0 else "novel")
            return [0.0] * len(templates)
        import numpy as np

        scores = self.scorer.score(list(templates), classnames, feats, np.asarray(labels))
        return [float(s.accuracy) for s in scores]

    def evaluate(self, templates: Sequence[str]) -> list[EvalScores]:
        """Base/novel/H for each template, in order."""
        for t in templates:
            check_template(t)
            reason = self.scorer.check(t, list(self.split.base_classnames) + list(self.split.novel_classnames))
            if reason:
                raise ConfigError(f"template {t!r} cannot be used: {reason}")
        base = self._accuracies(templates, 0)
        novel = self._accuracies(templates, 1)
        return [EvalScores(t, b, n, harmonic_mean(b, n)) for t, b, n in zip(templates, base, novel)]


def evaluate_on(
    dataset_name: str,
    data_root: str | None,
    vlm_spec: str,
    templates: Sequence[str],
    shots: int = 16,
    seed: int = 1,
    progress: Callable[..., Any] | None = None,
) -> list[EvalScores]:
    """Evaluate templates on any dataset and VLM. ``shots``/``seed`` only pick the base/novel
    split's few-shot part; the test part is the dataset's full test split either way."""
    from ipo_vlm.data import load_dataset, make_split
    from ipo_vlm.vlm import create_vlm

    for t in templates:
        check_template(t)
    dataset = load_dataset(dataset_name, data_root)
    vlm = create_vlm(vlm_spec)
    split = make_split(dataset, shots, seed)
    return TestSetEvaluator(vlm, dataset, split, progress=progress).evaluate(templates)


def evaluate_run(
    run: str | Path,
    templates: Sequence[str] | None = None,
    vlm_spec: str | None = None,
    progress: Callable[..., Any] | None = None,
) -> list[EvalScores]:
    """Evaluate a run's best template (from ``result.json``, else chosen from its history), or
    the given ``templates``, on the run's own dataset and split; ``vlm_spec`` swaps the VLM."""
    import json

    from ipo_vlm.data import TaskSplit, load_dataset
    from ipo_vlm.rundir import RunDir
    from ipo_vlm.vlm import create_vlm

    rundir = RunDir(run)
    config = rundir.read_config()["config"]
    if not templates:
        templates = [best_template_of(rundir, config.get("optimize", {}).get("select_on", "train"))]
    for t in templates:
        check_template(t)
    data = config.get("data", {})
    dataset = load_dataset(data.get("dataset", "demo"), data.get("data_root"))
    if not rundir.split_path.exists():
        raise ConfigError(f"{rundir.path} has no split.json yet")
    split = TaskSplit.from_json(json.loads(rundir.split_path.read_text(encoding="utf-8")), dataset)
    vlm = create_vlm(vlm_spec or config["vlm"])
    return TestSetEvaluator(vlm, dataset, split, progress=progress).evaluate(templates)


def run_rows(run: str | Path) -> list[tuple[str, str]]:
    """``(label, template)`` of what a run is compared with: the ``baseline`` template, the
    dataset's ``handcrafted`` one, and the run's selected (``optimized``) template."""
    from ipo_vlm.data import load_dataset
    from ipo_vlm.loop import BASELINE_TEMPLATE
    from ipo_vlm.rundir import RunDir

    rundir = RunDir(run)
    config = rundir.read_config()["config"]
    data = config.get("data", {})
    handcrafted = load_dataset(data.get("dataset", "demo"), data.get("data_root")).info.template
    best = best_template_of(rundir, config.get("optimize", {}).get("select_on", "train"))
    return [("baseline", BASELINE_TEMPLATE), ("handcrafted", handcrafted), ("optimized", best)]


def best_template_of(rundir: Any, select_on: str = "train") -> str:
    """The run's selected template: ``result.json``'s, or the best in ``history.jsonl``."""
    from ipo_vlm.result import select_best

    result = rundir.read_result()
    if result and result.get("best_template"):
        return str(result["best_template"])
    history = rundir.history()
    if not history:
        raise ConfigError(f"{rundir.path} has no scored templates yet")
    return str(select_best(history, None, select_on)["template"])
