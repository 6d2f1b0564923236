"""Scorer: golden accuracy/CE numbers, validity checks, one batched encoder call, text cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipo_vlm.errors import ConfigError
from ipo_vlm.engine.scoring import Scorer, accuracy_and_loss
from ipo_vlm.prompting.placeholders import fill
from ipo_vlm.scored import ScoredTemplate
from ipo_vlm.testing.tiny_clip import build_tiny_clip
from ipo_vlm.vlm import create_vlm

CLASSES = ["cat", "dog", "tabby cat", "bird"]


@pytest.fixture(scope="module")
def vlm(tmp_path_factory: pytest.TempPathFactory):
    model = create_vlm(f"hf:{build_tiny_clip(tmp_path_factory.mktemp('tiny') / 'clip', seed=3)}")
    calls: list[list[str]] = []
    encode = model.encode_texts

    def counting(texts, **kw):
        calls.append(list(texts))
        return encode(texts, **kw)

    model.encode_texts = counting
    model.calls = calls
    return model


@pytest.fixture(scope="module")
def image_data(vlm):
    rng = np.random.default_rng(11)
    images = [Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)) for _ in range(12)]
    return vlm.encode_images(images), np.arange(12) % len(CLASSES)


class VectorVLM:
    """Text embeddings looked up from a table, so expected numbers can be worked out by hand."""

    model_id = "table"
    preprocess_id = "none"
    logit_scale = 2.0
    max_text_tokens = 8

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def count_tokens(self, texts):
        return [len(t.split()) + 2 for t in texts]

    def encode_texts(self, texts):
        x = np.asarray([self.table[t] for t in texts], dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_golden_numbers_worked_by_hand() -> None:
    vlm = VectorVLM({"a x": [1, 0], "a y": [0, 1], "b x": [0, 1], "b y": [1, 0]})
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    labels = [0, 1, 1]
    good, bad = Scorer(vlm, cache_root=False).score(["a {}", "b {}"], ["x", "y"], feats, labels)
    # template "a {}": logits 2*cos -> [2,0], [0,2], [1.2,1.6]; all three right
    ce = [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-2)), math.log(1 + math.exp(-0.4))]
    assert good == ScoredTemplate("a {}", 1.0, pytest.approx(sum(ce) / 3, abs=1e-9))
    # template "b {}" swaps the class texts: every image now goes to the other class
    ce_bad = [math.log(1 + math.exp(2)), math.log(1 + math.exp(2)), math.log(1 + math.exp(0.4))]
    assert bad.accuracy == 0.0 and bad.loss == pytest.approx(sum(ce_bad) / 3, abs=1e-9)


def test_scores_match_numpy_from_features(vlm, image_data) -> None:
    feats, labels = image_data
    templates = ["a photo of a {}.", "{}", "a blurry picture of the {}, seen from afar"]
    scores = Scorer(vlm, cache_root=False).score(templates, CLASSES, feats, labels)
    for t, s in zip(templates, scores):
        # reference: each prompt encoded alone and padded to the full 77-token context
        text = np.concatenate([vlm.encode_texts([fill(t, c)], pad_to="max_length") for c in CLASSES])
        logits = 100.0 * feats.astype(np.float64) @ text.T.astype(np.float64)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        assert s.template == t
        assert s.accuracy == pytest.approx(np.mean(p.argmax(1) == labels), abs=1e-12)
        assert s.loss == pytest.approx(-np.mean(np.log(p[np.arange(len(labels)), labels])), rel=1e-4)
    # random weights at scale 100 still separate the templates: the numbers are not all equal
    assert len({round(s.loss, 6) for s in scores}) == 3


def test_one_encoder_call_then_cache(vlm, image_data, tmp_path: Path) -> None:
    feats, labels = image_data
    templates = ["itap of a {}.", "a {} in the wild.", "itap of a {}."]
    vlm.calls.clear()
    scorer = Scorer(vlm, cache_root=tmp_path)
    first = scorer.score(templates, CLASSES, feats, labels)
    assert len(vlm.calls) == 1 and len(vlm.calls[0]) == 8  # duplicates encoded once
    assert first[0] == first[2]
    assert scorer.score(templates[:2], CLASSES, feats, labels) == first[:2]
    assert len(vlm.calls) == 1
    again = Scorer(vlm, cache_root=tmp_path).score(templates, CLASSES, feats, labels)
    assert len(vlm.calls) == 1 and again == first  # served from disk
    Scorer(vlm, cache_root=False).score(templates, CLASSES, feats, labels)
    assert len(vlm.calls) == 2


def test_check_reasons(vlm) -> None:
    scorer = Scorer(vlm, cache_root=False)
    assert scorer.check("a photo of a {}.", CLASSES) is None
    assert scorer.check("a photo of a cat.", CLASSES) == "no placeholder"
    assert scorer.check("a {} or a {}", CLASSES) == "multiple placeholders"
    long_name = "x" * 70  # fits alone (72 tokens) but not inside the template
    reason = scorer.check("a photo of a {}.", ["cat", long_name])
    assert reason is not None and "over the 77-token limit for class 'xxx" in reason


def test_over_limit_is_rejected_not_truncated(vlm, image_data) -> None:
    feats, labels = image_data
    vlm.calls.clear()
    with pytest.raises(ConfigError, match="77-token limit"):
        Scorer(vlm, cache_root=False).score(["ok {}", "y" * 80 + " {}"], CLASSES, feats, labels)
    with pytest.raises(ConfigError, match="placeholder"):
        Scorer(vlm, cache_root=False).score(["no placeholder"], CLASSES, feats, labels)
    assert vlm.calls == []  # nothing was encoded for a rejected batch


def test_braces_stay_inert_text(vlm) -> None:
    template = "{0.__class__} a {} {name}"
    assert fill(template, "cat") == "{0.__class__} a cat {name}"
    emb = Scorer(vlm, cache_root=False).class_embeddings(template, CLASSES)
    assert emb.shape == (len(CLASSES), 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_accuracy_and_loss_helper_and_bad_inputs(vlm, image_data) -> None:
    acc, loss = accuracy_and_loss(np.array([[0.0, 0.0], [3.0, 1.0]]), np.array([1, 0]))
    assert acc == 0.5  # a tie goes to the first class, so row 0 counts as wrong
    assert loss == pytest.approx((math.log(2) + math.log(1 + math.exp(-2))) / 2)
    feats, labels = image_data
    with pytest.raises(ValueError):
        Scorer(vlm, cache_root=False).score(["{}"], CLASSES[:2], feats, labels)
