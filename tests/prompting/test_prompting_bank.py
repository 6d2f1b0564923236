"""The template bank of the random-search control and CLIP's 80 ImageNet templates."""

from __future__ import annotations

import json
import random
import re

import pytest

from ipo_vlm.data.coop import COOP_SPECS
from ipo_vlm.data.demo import CLASSNAMES as DEMO_CLASSES
from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting import normalize_key
from ipo_vlm.prompting.bank import TemplateBank, clip_imagenet_templates
from ipo_vlm.testing.fakes import FAKE_CLASSES


@pytest.fixture(scope="module")
def bank():
    return TemplateBank.load()


def test_shipped_bank_composes_tens_of_thousands_of_distinct_templates(bank):
    n = bank.size("clothing item")
    assert 20_000 <= n <= bank.combinations()
    assert bank.size("satellite image") == n  # the domain word only fills the {domain} slot


def test_every_dimension_the_meta_prompt_names_is_a_slot(bank):
    from ipo_vlm.prompting.text import CLOSING_INSTRUCTION

    assert {"style", "viewpoint", "background", "material", "setting", "lighting", "quality"} <= set(bank.slots)
    for word in ("style", "viewpoint", "background", "material", "setting"):
        assert word in CLOSING_INSTRUCTION


def test_sample_is_seeded_distinct_and_holds_the_placeholder_once(bank):
    a = bank.sample(200, random.Random(7), "pet", set())
    assert a == bank.sample(200, random.Random(7), "pet", set())
    assert a != bank.sample(200, random.Random(8), "pet", set())
    assert len({normalize_key(t) for t in a}) == 200
    assert all(t.count("{}") == 1 and "{domain}" not in t and not re.search(r"\{\w+\}", t) for t in a)
    assert sum("pet" in t for t in a) > 10  # the domain word is used


def test_sample_never_returns_an_excluded_key(bank):
    first = bank.sample(50, random.Random(1), "pet", set())
    # exclusion works on normalised keys: case and spacing of the excluded text do not matter
    exclude = {"  " + t.upper() for t in first}
    again = bank.sample(3000, random.Random(1), "pet", exclude)
    assert not {normalize_key(t) for t in again} & {normalize_key(t) for t in first}


def test_sample_never_contains_a_class_name(bank):
    names = {*DEMO_CLASSES, *FAKE_CLASSES, "boot", "shoe", "hat", "trousers", "cat", "dog", "car", "flower"}
    found = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")s?\b")
    for t in bank.sample(3000, random.Random(3), "clothing item", set()):
        assert not found.search(t.lower()), t


def test_a_small_bank_is_exhausted_exactly_then_returns_fewer(tmp_path):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps({"patterns": ["a {s} of a {}{c}.", "my {}."], "slots": {"s": ["photo", "sketch", "Photo"], "c": ["", ", a {domain}"]}}))
    small = TemplateBank.load(path)
    assert small.size("toy") == 5  # "Photo" and "photo" share a key
    got = small.sample(10, random.Random(0), "toy", {"my {}."})
    assert len(got) == 4 and "my {}." not in got
    assert set(map(normalize_key, got)) == {"a photo of a {}.", "a sketch of a {}.", "a photo of a {}, a toy.", "a sketch of a {}, a toy."}


def test_user_bank_extends_the_shipped_one(tmp_path, bank):
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps({"patterns": ["an x-ray {style} of a {}."], "slots": {"style": ["daguerreotype"]}}))
    bigger = TemplateBank.load(extra=extra)
    assert "daguerreotype" in bigger.slots["style"] and len(bigger.patterns) == len(bank.patterns) + 1
    assert bigger.size("object") > bank.size("object")


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"patterns": "a {}", "slots": {}}', "'patterns' must be a list"),
        ('{"patterns": ["a photo of a thing."], "slots": {}}', "placeholder {} 0 times"),
        ('{"patterns": ["{} and {}"], "slots": {}}', "placeholder {} 2 times"),
        ('{"patterns": ["a {shade} {}"], "slots": {}}', "unknown slot 'shade'"),
        ('{"patterns": ["a {0.__class__} {}"], "slots": {}}', "stray brace"),
        ('{"patterns": ["a {s} {}"], "slots": {"s": []}}', "slot 's' has no phrases"),
        ('{"patterns": ["a {s} {}"], "slots": {"s": ["x {}"]}}', "may hold no braces"),
        ('{"patterns": ["a {}"], "slots": {"domain": ["x"]}}', "cannot be a slot"),
        ('{"format": "v9", "patterns": ["a {}"], "slots": {}}', "format"),
    ],
)
def test_a_malformed_user_bank_is_one_config_error_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        TemplateBank.load(extra=path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_bank_file_and_bad_domain_are_config_errors(tmp_path, bank):
    with pytest.raises(ConfigError, match="not found"):
        TemplateBank.load(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="braces"):
        bank.sample(1, random.Random(0), "{x}", set())
    with pytest.raises(ConfigError, match="domain"):
        bank.sample(1, random.Random(0), "  ", set())


def test_clip_imagenet_templates_are_the_published_80():
    t = clip_imagenet_templates()
    assert len(t) == 80 and len(set(t)) == 80
    assert all(x.count("{}") == 1 and "{" not in x.replace("{}", "") for x in t)
    assert t[0] == "a bad photo of a {}." and t[-1] == "a tattoo of the {}."
    assert "itap of my {}." in t and "a {} in a video game." in t


def test_no_coop_dataset_domain_word_breaks_the_bank(bank):
    for spec in COOP_SPECS.values():
        got = bank.sample(20, random.Random(0), spec.domain, set())
        assert len(got) == 20 and all(t.count("{}") == 1 for t in got)
