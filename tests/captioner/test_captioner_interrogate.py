"""interrogate: attribute phrases ranked by the run's own VLM."""

from __future__ import annotations

import json

import pytest

from ipo_vlm.captioner import create_captioner
from ipo_vlm.captioner.interrogate import load_interrogate
from ipo_vlm.captioner.vocabulary import load_vocabulary, packaged_vocabulary_path, parse_vocabulary
from ipo_vlm.errors import ConfigError
from test_captioner_fakes import KeywordVLM, solid

VOCAB = {
    "prompt": "a photo of something {}",
    "sentence": "Something {}.",
    "groups": {
        "colour": ["mostly red", "mostly green", "mostly blue"],
        "pattern": ["striped", "dotted"],
        "shape": ["round", "square", "oval"],
    },
}


def test_the_known_right_phrase_wins_and_silent_groups_are_left_out():
    vlm = KeywordVLM()
    cap = load_interrogate("", vlm=vlm, vocabulary=VOCAB)
    texts = cap.describe([solid("red"), solid("blue")], "ignored")
    # The keyword VLM sees colour only; "pattern" and "shape" phrases all tie -> chance -> omitted.
    assert texts == ["Something mostly red.", "Something mostly blue."]


def test_attribute_margins_and_ordering():
    cap = load_interrogate("", vlm=KeywordVLM(), vocabulary=VOCAB, min_margin=0.0, rel_margin=0.0, max_attributes=3)
    attrs = cap.attributes(cap.vlm.encode_images([solid("green")]))[0]
    assert attrs[0].group == "colour" and attrs[0].phrase == "mostly green"
    # cos 1.0 for the green phrase against 0.5 for the others, times logit_scale 100
    assert attrs[0].margin == pytest.approx(50.0)
    ties = {a.group: a.margin for a in attrs[1:]}
    assert ties == pytest.approx({"pattern": 0.0, "shape": 0.0})
    # Sentence order follows the vocabulary, not the strength.
    assert cap.describe([solid("green")], "")[0] == "Something mostly green, striped, round."


def test_two_phrase_groups_can_speak_and_weak_groups_fall_back_to_the_strongest():
    vocab = {"groups": {"pattern": ["striped", "dotted"], "hue": ["red", "blue"], "form": ["round", "square"]}}
    cap = load_interrogate("", vlm=KeywordVLM(), vocabulary=vocab)
    assert cap.describe([solid("blue")], "") == ["blue."]
    strict = load_interrogate("", vlm=KeywordVLM(), vocabulary=vocab, min_margin=1000.0)
    # nothing clears the bar: the single strongest group is still reported
    assert strict.describe([solid("red")], "") == ["red."]


def test_groups_much_weaker_than_the_strongest_are_left_out():
    # "red" beats "blue" by 50 logits; "red" beats "red striped" by 100 * (1 - 2/sqrt(6)) = 18.4
    vocab = {"groups": {"hue": ["red", "blue"], "detail": ["red", "red striped"]}}
    default = load_interrogate("", vlm=KeywordVLM(), vocabulary=vocab)
    assert default.attributes(KeywordVLM().encode_images([solid("red")]))[0][1:] == []
    loose = load_interrogate("", vlm=KeywordVLM(), vocabulary=vocab, rel_margin=0.3)
    (hue, detail), = loose.attributes(KeywordVLM().encode_images([solid("red")]))
    assert (hue.group, detail.group) == ("hue", "detail")
    assert detail.margin == pytest.approx(100 * (1 - 2 / 6**0.5))


def test_phrase_embeddings_are_encoded_once_and_output_is_deterministic():
    vlm = KeywordVLM()
    cap = create_captioner("interrogate", vlm=vlm, vocabulary=VOCAB, unknown_option=1)
    first = cap.describe([solid("red"), solid("green")], "x")
    second = cap.describe([solid("red"), solid("green")], "x")
    assert first == second
    assert vlm.text_calls == [8]


def test_model_id_tracks_vlm_vocabulary_and_settings():
    a = load_interrogate("", vlm=KeywordVLM(), vocabulary=VOCAB)
    b = load_interrogate("", vlm=KeywordVLM(), vocabulary={**VOCAB, "sentence": "It is {}."})
    c = load_interrogate("", vlm=KeywordVLM(), vocabulary=VOCAB, max_attributes=2)
    assert a.model_id.startswith("interrogate:keyword-vlm:")
    assert len({a.model_id, b.model_id, c.model_id}) == 3


def test_vocabulary_path_in_the_spec(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(VOCAB))
    cap = create_captioner(f"interrogate:{path}", vlm=KeywordVLM())
    assert cap.describe([solid("blue")], "") == ["Something mostly blue."]


def test_vlm_advertised_vocabulary_is_used():
    vlm = KeywordVLM()
    vlm.attribute_vocabulary = {"hue": ["red", "green", "blue"]}
    cap = load_interrogate("", vlm=vlm)
    assert [g.name for g in cap.vocabulary.groups] == ["hue"]
    assert cap.describe([solid("green")], "") == ["green."]


def test_packaged_vocabulary_is_valid_and_ranks_colours():
    vocab = load_vocabulary(packaged_vocabulary_path())
    names = {g.name for g in vocab.groups}
    assert {"colour", "texture", "shape", "material", "setting", "viewpoint", "lighting"} <= names
    assert sum(len(g.phrases) for g in vocab.groups) >= 60
    cap = load_interrogate("", vlm=KeywordVLM())
    assert "mostly red" in cap.describe([solid("red")], "")[0]


def test_needs_a_vlm_and_valid_settings(tmp_path):
    with pytest.raises(ConfigError, match="needs the run's VLM"):
        create_captioner("interrogate")
    with pytest.raises(ConfigError, match="rel_margin"):
        load_interrogate("", vlm=KeywordVLM(), vocabulary=VOCAB, rel_margin=2)
    with pytest.raises(ConfigError, match="min_margin"):
        load_interrogate("", vlm=KeywordVLM(), vocabulary=VOCAB, min_margin=-1)
    with pytest.raises(ConfigError, match="cannot read attribute vocabulary"):
        load_interrogate(str(tmp_path / "missing.json"), vlm=KeywordVLM())


@pytest.mark.parametrize("raw, message", [
    ({"groups": {"a": []}}, "no phrases"),
    ({"groups": {"a": "red"}}, "list of phrases"),
    ({"prompt": "no slot", "groups": {"a": ["x"]}}, "'prompt' must contain"),
    (42, "expected attribute groups"),
])
def test_invalid_vocabularies(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_vocabulary(raw)


def test_flat_list_vocabulary():
    vocab = parse_vocabulary(["bright", "dark", "bright"])
    assert [(g.name, g.phrases) for g in vocab.groups] == [("attributes", ("bright", "dark"))]


def test_tiny_clip_runs_the_real_encoders(tmp_path):
    pytest.importorskip("torch")
    from ipo_vlm.testing.tiny_clip import build_tiny_clip
    from ipo_vlm.vlm import create_vlm

    path = build_tiny_clip(tmp_path / "clip")
    vlm = create_vlm(f"hf:{path}")
    cap = create_captioner("interrogate", vlm=vlm)
    images = [solid("red", 40), solid("blue", 40)]
    first = cap.describe(images, "")
    assert first == cap.describe(images, "")
    assert all(t.startswith("A photo of something ") and t.endswith(".") for t in first)
    phrases = {p for g in cap.vocabulary.groups for p in g.phrases}
    for text in first:
        body = text[len("A photo of something "):-1]
        assert body and any(p in body for p in phrases)
    # the captioner ranks phrases with the run's own VLM, and a new instance answers the same
    assert cap.vlm is vlm
    assert create_captioner("interrogate", vlm=vlm).describe(images, "") == first
