"""Prompt ensembles: mean of normalised class embeddings, re-normalised."""

from __future__ import annotations

import numpy as np
import pytest

from ipo_vlm.engine.ensemble import ensemble_accuracy_and_loss, ensemble_class_embeddings, ensemble_logits
from ipo_vlm.errors import ConfigError
from ipo_vlm.engine.scoring import Scorer
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM


class TableEmbedder:
    """Fixed, deliberately unnormalised class embeddings per template."""

    def __init__(self, table):
        self.table = {k: np.asarray(v, dtype=np.float64) for k, v in table.items()}

    def class_embeddings(self, template, classnames):
        return self.table[template][: len(classnames)]


TABLE = TableEmbedder({
    "a {}": [[3.0, 4.0], [0.0, 2.0]],  # normalised: [.6, .8], [0, 1]
    "b {}": [[1.0, 0.0], [-1.0, 0.0]],  # normalised: [1, 0], [-1, 0]
})


def test_hand_computed_two_template_ensemble():
    got = ensemble_class_embeddings(TABLE, ["a {}", "b {}"], ["x", "y"])
    # class x: mean([.6,.8],[1,0]) = [.8,.4] -> /sqrt(.8) ; class y: mean([0,1],[-1,0]) = [-.5,.5] -> /sqrt(.5)
    want = np.array([[0.8, 0.4] / np.sqrt(0.8), [-0.5, 0.5] / np.sqrt(0.5)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    feats = np.array([[1.0, 0.0], [0.0, 1.0]])
    logits = ensemble_logits(TABLE, ["a {}", "b {}"], ["x", "y"], feats, 10.0)
    np.testing.assert_allclose(logits, 10.0 * feats @ want.T)
    acc, loss = ensemble_accuracy_and_loss(TABLE, ["a {}", "b {}"], ["x", "y"], feats, [0, 1], 10.0)
    # image 0: logits [8/sqrt(.8), -5/sqrt(.5)] -> right; image 1: [4/sqrt(.8), 5/sqrt(.5)] -> right
    l0 = 10 * np.array([0.8 / np.sqrt(0.8), -0.5 / np.sqrt(0.5)])
    l1 = 10 * np.array([0.4 / np.sqrt(0.8), 0.5 / np.sqrt(0.5)])
    ce = lambda l, y: np.log(np.exp(l).sum()) - l[y]  # noqa: E731
    assert acc == 1.0 and loss == pytest.approx((ce(l0, 0) + ce(l1, 1)) / 2)


def test_one_template_ensemble_equals_the_scorer_on_that_template():
    ds = FakeDataset()
    vlm = FakeVLM(ds.info.classnames)
    scorer = Scorer(vlm, cache_root=False)
    samples = ds.split("test")
    feats = vlm.encode_images([ds.open_image(s) for s in samples])
    labels = np.array([s.label for s in samples])
    names = list(ds.info.classnames)
    for template in ("a photo of a {}.", "a {} clothing item photo"):
        single = scorer.score([template], names, feats, labels)[0]
        acc, loss = ensemble_accuracy_and_loss(scorer, [template], names, feats, labels, vlm.logit_scale)
        assert acc == single.accuracy and loss == pytest.approx(single.loss, abs=1e-5)
    # a real ensemble scores differently from each of its members
    two = ensemble_accuracy_and_loss(scorer, ["a photo of a {}.", "a {} clothing item photo"], names, feats, labels, vlm.logit_scale)
    assert two[1] not in (pytest.approx(s.loss) for s in scorer.score(["a photo of a {}.", "a {} clothing item photo"], names, feats, labels))


def test_empty_inputs_are_config_errors():
    with pytest.raises(ConfigError):
        ensemble_class_embeddings(TABLE, [], ["x"])
    with pytest.raises(ConfigError):
        ensemble_class_embeddings(TABLE, ["a {}"], [])
