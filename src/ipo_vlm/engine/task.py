"""``Task``: one few-shot task seen through one VLM — the training (and validation) images of
the base classes as cached features, a scorer, and base/novel/H on the test split.

Methods score candidates through it; runs evaluate the chosen template through it. Images are
encoded once (the feature store is on disk and content-addressed) and text embeddings are shared
between training, validation and test scoring."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting.placeholders import template_problem
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.data import TaskSplit
    from ipo_vlm.data.base import Dataset
    from ipo_vlm.engine.evaluate import EvalScores, TestSetEvaluator
    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)

#: the rejection reason counted for a template too long for the text encoder
REASON_TOKEN_LIMIT = "over the VLM's token limit"


class Task:
    """Scores templates on a split's base-class training (and, with ``with_val``, validation)
    images and evaluates them on its base and novel test images.

    Image features come from the content-addressed feature store, so building a task encodes
    only images not seen before by this VLM.

    Args:
        dataset: the dataset the split was drawn from.
        split: the few-shot split (base/novel classes, training, validation and test items).
        vlm: the frozen vision-language model.
        with_val: also encode the validation images (for ``val`` and ``trainval`` selection).
    """

    def __init__(self, dataset: "Dataset", split: "TaskSplit", vlm: "VisionLanguageModel", with_val: bool = False,
                 lazy: bool = False) -> None:
        """The training (and validation) images are encoded now, or with ``lazy`` on first use
        (a caller that only evaluates on the test split never encodes them)."""
        import numpy as np

        from ipo_vlm.engine.features import FeatureStore
        from ipo_vlm.engine.scoring import Scorer

        self.dataset, self.split, self.vlm = dataset, split, vlm
        self.scorer = Scorer(vlm)
        self.classnames = list(split.base_classnames)
        self.all_classnames = self.classnames + list(split.novel_classnames)
        self._store = FeatureStore(vlm)
        self._train_data: tuple[Any, Any] | None = None
        if not lazy:
            self._train  # noqa: B018 - encode now, as the caller expects
        self._val = None
        if with_val:
            if not split.val:
                raise ConfigError("--select-on val needs validation images, but the split has none")
            self._val = (self._store.features(dataset, split.val), np.asarray([s.label for s in split.val]))
        self._test: "TestSetEvaluator | None" = None

    @property
    def _train(self) -> tuple[Any, Any]:
        """The training images' features and labels, encoded (or read from the cache) on first use."""
        if self._train_data is None:
            import numpy as np

            split = self.split
            self._train_data = (self._store.features(self.dataset, split.train), np.asarray([s.label for s in split.train]))
        return self._train_data

    @property
    def has_val(self) -> bool:
        return self._val is not None

    def _score(self, data: tuple[Any, Any], templates: Sequence[str]) -> list[ScoredTemplate]:
        return self.scorer.score(list(templates), self.classnames, data[0], data[1])

    def score_train(self, templates: Sequence[str]) -> list[ScoredTemplate]:
        """Accuracy and loss of each template on the base-class training images."""
        return self._score(self._train, templates)

    def score_val(self, templates: Sequence[str]) -> list[ScoredTemplate]:
        """The same on the validation images (only when built ``with_val``)."""
        if self._val is None:
            raise ConfigError("this task was built without validation images")
        return self._score(self._val, templates)

    def score(self, templates: Sequence[str]) -> list[ScoredTemplate]:
        """Training scores, with the validation scores attached when the task has them."""
        train = self.score_train(templates)
        if self._val is None:
            return train
        val = self.score_val(templates)
        return [t.with_(val_accuracy=v.accuracy, val_loss=v.loss) for t, v in zip(train, val)]

    def train_predictions(self, template: str) -> tuple[list[int], list[int]]:
        """(true, predicted) base-class indices of the training images under ``template``, from
        the cached features (the text embeddings are usually cached already: it was scored)."""
        predicted = self.scorer.predict(template, self.classnames, self._train[0])
        return [int(x) for x in self._train[1]], [int(x) for x in predicted]

    def check(self, template: str) -> str | None:
        """Why ``template`` cannot be scored, as a reason to count (the details go to the debug
        log); novel class names count too, since the template must also fit them at test time."""
        problem = template_problem(template, stray_braces=True)
        if problem:
            return problem
        detail = self.scorer.length_problem(template, self.all_classnames)
        if detail:
            log.debug("rejected %r: %s", template, detail)
            return REASON_TOKEN_LIMIT
        return None

    def _tester(self, progress: Any = None) -> "TestSetEvaluator":
        if self._test is None:
            from ipo_vlm.engine.evaluate import TestSetEvaluator

            self._test = TestSetEvaluator(self.vlm, self.dataset, self.split, progress=progress, scorer=self.scorer)
        return self._test

    def evaluate(self, templates: Sequence[str], progress: Any = None) -> list["EvalScores"]:
        """Base/novel/H of each template on the test split (test images encoded on first use)."""
        return self._tester(progress).evaluate(templates)

    def evaluate_ensemble(self, templates: Sequence[str], label: str | None = None) -> "EvalScores":
        """Base/novel/H of the ensemble of ``templates`` on the test split."""
        return self._tester().evaluate_ensemble(templates, label)

    def require(self, template: str) -> str:
        """``template`` if it can be scored for every class, else a ``ConfigError`` with the
        details (for templates a user gives; :meth:`check` is the same rule as a reason)."""
        from ipo_vlm.prompting.placeholders import require_template

        require_template(template)
        if self.check(template):
            detail = self.scorer.check(template, self.all_classnames)
            raise ConfigError(f"template {template!r} cannot be used: {detail}")
        return template

    def score_parts(self, templates: Sequence[str], progress: Any = None) -> dict[str, dict[str, Any]]:
        """``{template: {train_acc, train_loss, base_acc, base_loss, novel_acc, novel_loss, hm}}``:
        training scores and test scores in one go (one text encoding per prompt)."""
        from ipo_vlm.engine.evaluate import harmonic_mean

        templates = list(templates)
        out: dict[str, dict[str, Any]] = {t: {} for t in templates}
        for t, s in zip(templates, self.score_train(templates)):
            out[t]["train_acc"], out[t]["train_loss"] = float(s.accuracy), float(s.loss)
        tester = self._tester(progress)
        for half, name in enumerate(("base", "novel")):
            for t, (acc, loss) in zip(templates, tester.scores(templates, half)):
                out[t][f"{name}_acc"], out[t][f"{name}_loss"] = acc, loss
        for s in out.values():
            s["hm"] = harmonic_mean(s["base_acc"], s["novel_acc"])
        return out

    def per_class(self, template: str, progress: Any = None) -> list[float | None]:
        """Test accuracy of each class, base then novel (None: a class without test images)."""
        return self._tester(progress).per_class(template)

    @property
    def text_stats(self) -> dict[str, int]:
        """Prompts encoded and prompts found in the text cache so far."""
        return dict(self.scorer.stats)

    def image_counts(self) -> tuple[int, int]:
        """Few-shot training and validation images: the weights of the ``trainval`` selection."""
        return len(self.split.train), len(self.split.val)
