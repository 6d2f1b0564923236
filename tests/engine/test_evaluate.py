"""Base/novel/H evaluation on the demo test images with a tiny random CLIP, checked against an
independent numpy computation from the VLM's own encoders."""

from __future__ import annotations

import numpy as np
import pytest

from ipo_vlm.errors import ConfigError
from ipo_vlm.engine.evaluate import TestSetEvaluator, evaluate_on, harmonic_mean
from ipo_vlm.methods.base import StepRecord
from ipo_vlm.prompting.placeholders import require_template
from ipo_vlm.runs.result import candidate_stats
from ipo_vlm.runs.select import select_best
from ipo_vlm.scored import ScoredTemplate


def test_harmonic_mean():
    assert harmonic_mean(0.8, 0.6) == pytest.approx(2 * 0.8 * 0.6 / 1.4)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(1.0, 0.0) == 0.0


def test_a_user_template_needs_exactly_one_placeholder_and_no_other_brace():
    assert require_template("a {} here") == "a {} here"
    assert require_template("a {0.__class__} {}") == "a {0.__class__} {}"  # filled by replace: inert
    for bad in ("no placeholder", "{} and {}", "", "  "):
        with pytest.raises(ConfigError, match="placeholder"):
            require_template(bad)


def test_select_best_by_train_then_loss_or_by_val():
    history = [
        ScoredTemplate("a", 0.9, 0.5, step=0, val_accuracy=0.5, val_loss=1.0),
        ScoredTemplate("b", 0.9, 0.4, step=1, val_accuracy=0.6, val_loss=1.0),
        ScoredTemplate("c", 0.8, 0.1, step=2, val_accuracy=0.7, val_loss=2.0),
    ]
    assert select_best(history, None, "train").template == "b"
    assert select_best(history, None, "val").template == "c"
    assert select_best(history, ["a", "b"], "val").template == "b"
    with pytest.raises(ConfigError):
        select_best(history, ["zzz"], "train")


def test_candidate_stats_count_llm_steps_only():
    steps = [StepRecord(0, returned=2, valid=2), StepRecord(1, 1, 5, 4, {"no placeholder": 1}), StepRecord(2, 2, 5, 5)]
    stats = candidate_stats(steps)
    assert stats["candidates_returned"] == 10 and stats["candidates_valid"] == 9
    assert stats["valid_rate"] == pytest.approx(0.9) and stats["llm_calls"] == 3
    assert stats["rejections"] == {"no placeholder": 1}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from ipo_vlm.data import load_dataset, make_split
    from ipo_vlm.testing.tiny_clip import build_tiny_clip
    from ipo_vlm.vlm import create_vlm

    path = build_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")
    ds = load_dataset("demo")
    return f"hf:{path}", create_vlm(f"hf:{path}"), ds, make_split(ds, 1, 1)


def reference_accuracy(vlm, ds, samples, classnames, template):
    from ipo_vlm.engine.features import FeatureStore

    img = FeatureStore(vlm).features(ds, samples)  # cached image features; the rest is independent
    txt = vlm.encode_texts([template.replace("{}", c) for c in classnames])
    pred = np.argmax(img @ txt.T, axis=1)
    return float(np.mean(pred == np.array([s.label for s in samples])))


def test_base_and_novel_are_scored_within_their_own_classes(tiny):
    _, vlm, ds, split = tiny
    assert {s.label for s in split.test_novel} == set(range(len(split.novel_classnames)))
    template = "a photo of a {}."
    [scores] = TestSetEvaluator(vlm, ds, split).evaluate([template])
    assert scores.base_acc == pytest.approx(reference_accuracy(vlm, ds, split.test_base, split.base_classnames, template), abs=1e-6)
    assert scores.novel_acc == pytest.approx(reference_accuracy(vlm, ds, split.test_novel, split.novel_classnames, template), abs=1e-6)
    assert scores.hm == pytest.approx(harmonic_mean(scores.base_acc, scores.novel_acc))


def test_shots_pick_the_split_but_the_test_set_is_always_full(tiny):
    spec = tiny[0]
    one = evaluate_on("demo", None, spec, ["a photo of a {}.", "a {} on white."], shots=1, seed=1)
    sixteen = evaluate_on("demo", None, spec, ["a photo of a {}.", "a {} on white."], shots=16, seed=1)
    assert [s.to_dict() for s in one] == [s.to_dict() for s in sixteen]
    assert one[0].base_acc != one[1].base_acc or one[0].novel_acc != one[1].novel_acc


def test_a_template_without_placeholder_is_a_user_error(tiny):
    _, vlm, ds, split = tiny
    with pytest.raises(ConfigError, match="placeholder"):
        TestSetEvaluator(vlm, ds, split).evaluate(["a photo"])
