"""Base / novel / H on the test split.

Base test images are classified among the base classes only and novel test images among the
novel classes only (the CoOp / IPO base-to-novel protocol); H is the harmonic mean
``2·b·n / (b + n)``. Test features go through the same on-disk feature store as training
features, so evaluating several templates, or the same run twice, encodes each image once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting.placeholders import require_template

if TYPE_CHECKING:
    from ipo_vlm.data import TaskSplit
    from ipo_vlm.data.base import Dataset
    from ipo_vlm.engine.scoring import Scorer
    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)


def harmonic_mean(base: float, novel: float) -> float:
    """``2·b·n / (b + n)``; 0 when both are 0."""
    return 2 * base * novel / (base + novel) if base + novel > 0 else 0.0


@dataclass(frozen=True)
class EvalScores:
    """One template's test accuracies, as fractions in [0, 1].

    Attributes:
        template: the template (or an ensemble's label).
        base_acc: accuracy on the base classes' test images, among the base classes.
        novel_acc: accuracy on the novel classes' test images, among the novel classes.
        hm: the harmonic mean of the two, the headline number.
    """

    template: str
    base_acc: float
    novel_acc: float
    hm: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TestSetEvaluator:
    """Scores templates on a split's base and novel test images (features computed once)."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(
        self,
        vlm: "VisionLanguageModel",
        dataset: "Dataset",
        split: "TaskSplit",
        progress: Callable[..., Any] | None = None,
        scorer: "Scorer | None" = None,
    ) -> None:
        from ipo_vlm.engine.features import FeatureStore
        from ipo_vlm.engine.scoring import Scorer

        self.split = split
        self.scorer = scorer or Scorer(vlm)
        store = FeatureStore(vlm)
        self._halves = []
        for samples, classnames in ((split.test_base, split.base_classnames), (split.test_novel, split.novel_classnames)):
            feats = store.features(dataset, samples, progress=progress) if samples else None
            labels = [s.label for s in samples]
            self._halves.append((list(classnames), feats, labels))

    def scores(self, templates: Sequence[str], half: int) -> list[tuple[float, float | None]]:
        """(accuracy, loss) of each template on one half (0: base, 1: novel); a half without
        images scores 0 accuracy and no loss."""
        classnames, feats, labels = self._halves[half]
        if feats is None or not labels:
            log.warning("no %s test images; accuracy reported as 0", "base" if half == 0 else "novel")
            return [(0.0, None)] * len(templates)
        import numpy as np

        scores = self.scorer.score(list(templates), classnames, feats, np.asarray(labels))
        return [(float(s.accuracy), float(s.loss)) for s in scores]

    def _accuracies(self, templates: Sequence[str], half: int) -> list[float]:
        return [acc for acc, _ in self.scores(templates, half)]

    def per_class(self, template: str) -> list[float | None]:
        """Test accuracy of each class (base classes among base, novel among novel), in the
        order base then novel; None for a class without test images."""
        import numpy as np

        accs: list[float | None] = []
        for classnames, feats, labels in self._halves:
            if feats is None or not labels:
                accs.extend([None] * len(classnames))
                continue
            text = np.asarray(self.scorer.class_embeddings(template, classnames), dtype=np.float64)
            pred = (np.asarray(feats, dtype=np.float64) @ text.T).argmax(axis=1)
            truth = np.asarray(labels)
            for c in range(len(classnames)):
                mask = truth == c
                accs.append(float(np.mean(pred[mask] == c)) if mask.any() else None)
        return accs

    def evaluate_ensemble(self, templates: Sequence[str], label: str | None = None) -> EvalScores:
        """Base/novel/H of the ensemble of ``templates`` (the mean of their normalised class
        embeddings, see :mod:`ipo_vlm.engine.ensemble`); reported under ``label``."""
        from ipo_vlm.engine.ensemble import ensemble_accuracy_and_loss

        for t in templates:
            require_template(t)
        accs = []
        for half, (classnames, feats, labels) in enumerate(self._halves):
            if feats is None or not labels:
                log.warning("no %s test images; accuracy reported as 0", "base" if half == 0 else "novel")
                accs.append(0.0)
                continue
            acc, _ = ensemble_accuracy_and_loss(self.scorer, templates, classnames, feats, labels, self.scorer.vlm.logit_scale)
            accs.append(acc)
        name = label or f"ensemble of {len(templates)} templates"
        return EvalScores(name, accs[0], accs[1], harmonic_mean(accs[0], accs[1]))

    def evaluate(self, templates: Sequence[str]) -> list[EvalScores]:
        """Base/novel/H for each template, in order."""
        for t in templates:
            require_template(t)
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
    vlm_options: dict[str, Any] | None = None,
    class_split: str = "ordered",
) -> list[EvalScores]:
    """Evaluate templates on any dataset and VLM. ``shots``/``seed`` only pick the base/novel
    split's few-shot part; the test part is the dataset's full test split either way.

    Args:
        dataset_name: a dataset name (``demo``, ``oxford_pets``, ``folder``, ...).
        data_root: the folder that holds it (``None`` for the bundled demo).
        vlm_spec: the VLM spec, e.g. ``hf:openai/clip-vit-base-patch16``.
        templates: the templates to evaluate, each with ``{}`` for the class name.
        shots: few-shot images per class of the split.
        seed: the split's seed.
        progress: called while test images are encoded.
        vlm_options: options for the VLM backend (``device``, ``batch_size``).
        class_split: which classes are base: ``ordered`` (the protocol's first half) or
            ``random`` (a half drawn from ``seed``), as ``data.class_split`` of a run.

    Returns:
        One ``EvalScores`` (``template``, ``base_acc``, ``novel_acc``, ``hm``) per template.

    Raises:
        ConfigError: a template without exactly one ``{}``.
    """
    from ipo_vlm.data import load_dataset, make_split
    from ipo_vlm.vlm import create_vlm

    for t in templates:
        require_template(t)
    dataset = load_dataset(dataset_name, data_root)
    vlm = create_vlm(vlm_spec, **(vlm_options or {}))
    split = make_split(dataset, shots, seed, class_split=class_split)
    return TestSetEvaluator(vlm, dataset, split, progress=progress).evaluate(templates)
