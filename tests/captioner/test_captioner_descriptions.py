"""describe_samples (cache, masking, run file), select_for_prompt (budget, round robin)."""

from __future__ import annotations

import json

import pytest

from ipo_vlm.captioner import create_captioner
from ipo_vlm.captioner.descriptions import (
    Description, DescriptionSet, approx_tokens, describe_samples, description_instruction,
    read_descriptions, select_for_prompt,
)
from ipo_vlm.errors import BackendError, ConfigError
from test_captioner_fakes import COLOURS, CountingCaptioner, MemoryDataset, solid

CLASSES = ["basset hound", "sphynx", "pug"]


def _setup():
    images = [solid("red"), solid("green"), solid("blue"), solid("red", 20)]
    dataset = MemoryDataset(images, [0, 1, 2, 0], CLASSES, domain="pet")
    captioner = CountingCaptioner({
        COLOURS["red"]: "A Basset Hound lying on red grass.",
        COLOURS["green"]: "Two sphynxes on a   green\nsofa.",
        COLOURS["blue"]: "A small dog on a blue rug.",
    })
    return dataset, captioner


def test_instruction_uses_the_domain_word():
    text = description_instruction("satellite image")
    assert "satellite image" in text
    assert description_instruction("pet") != text


def test_describe_masks_counts_and_writes_the_masked_text(tmp_path):
    dataset, captioner = _setup()
    out = tmp_path / "run" / "descriptions.jsonl"
    descs = describe_samples(captioner, dataset, dataset.samples, "describe", CLASSES,
                             cache_root=tmp_path / "cache", out_path=out)
    texts = [d.text for d in descs.items]
    assert texts[0] == "A pet lying on red grass."
    assert texts[1] == "Two pets on a green sofa."  # whitespace folded to one line
    assert texts[2] == "A small dog on a blue rug."
    assert [d.masked for d in descs.items] == [1, 1, 0, 1]
    assert descs.maskings == 3
    assert (descs.hits, descs.computed) == (0, 4)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in records] == texts
    assert all("basset" not in r["text"].lower() and "sphynx" not in r["text"].lower() for r in records)
    assert read_descriptions(out).items == descs.items


def test_second_call_is_served_from_the_cache(tmp_path):
    dataset, captioner = _setup()
    first = describe_samples(captioner, dataset, dataset.samples, "describe", CLASSES, cache_root=tmp_path)
    seen = captioner.seen
    second = describe_samples(captioner, dataset, dataset.samples, "describe", CLASSES, cache_root=tmp_path)
    assert captioner.seen == seen == 4
    assert (second.hits, second.computed) == (4, 0)
    assert second.items == first.items


def test_cache_key_includes_instruction_and_model(tmp_path):
    dataset, captioner = _setup()
    describe_samples(captioner, dataset, dataset.samples, "describe", CLASSES, cache_root=tmp_path)
    describe_samples(captioner, dataset, dataset.samples, "describe the pet", CLASSES, cache_root=tmp_path)
    assert captioner.seen == 8
    captioner.model_id = "fake:v2"
    describe_samples(captioner, dataset, dataset.samples, "describe", CLASSES, cache_root=tmp_path)
    assert captioner.seen == 12


def test_identical_images_are_described_once(tmp_path):
    dataset, captioner = _setup()
    samples = [dataset.samples[0], dataset.samples[0], dataset.samples[1]]
    descs = describe_samples(captioner, dataset, samples, "d", CLASSES, cache_root=tmp_path)
    assert captioner.seen == 2 and descs.computed == 2 and len(descs.items) == 3


def test_a_wrong_number_of_descriptions_is_a_backend_error(tmp_path):
    dataset, captioner = _setup()
    captioner.describe = lambda images, instruction: ["only one"]
    with pytest.raises(BackendError, match="returned 1 descriptions for 4 images"):
        describe_samples(captioner, dataset, dataset.samples, "d", CLASSES, cache_root=tmp_path)


def test_none_captioner_describes_nothing_and_writes_no_file(tmp_path):
    dataset, _ = _setup()
    out = tmp_path / "descriptions.jsonl"
    descs = describe_samples(create_captioner("none", vlm=object()), dataset, dataset.samples, "d", CLASSES,
                             cache_root=tmp_path, out_path=out)
    assert descs.items == [] and descs.computed == 0
    assert not out.exists()
    assert dataset.opened == 0
    assert select_for_prompt(descs) == []


def _set(*pairs: tuple[int, str]) -> DescriptionSet:
    return DescriptionSet([Description(str(i), lab, f"c{lab}", text, 0) for i, (lab, text) in enumerate(pairs)])


def test_round_robin_takes_one_per_class_before_seconds():
    descs = _set((0, "a0"), (0, "a1"), (0, "a2"), (1, "b0"), (2, "c0"), (2, "c1"))
    assert select_for_prompt(descs, 1000, "round_robin") == ["a0", "b0", "c0", "a1", "c1", "a2"]
    assert select_for_prompt(descs, 1000, "first") == ["a0", "a1", "a2", "b0", "c0", "c1"]


def test_budget_is_respected_and_long_items_are_skipped():
    descs = _set((0, "x" * 40), (1, "y" * 400), (2, "z" * 40), (0, "w" * 40))
    assert approx_tokens("x" * 40) == 10 and approx_tokens("x" * 41) == 11
    chosen = select_for_prompt(descs, budget_tokens=25)
    assert chosen == ["x" * 40, "z" * 40]
    assert sum(approx_tokens(t) for t in chosen) <= 25
    assert select_for_prompt(descs, budget_tokens=0) == []


def test_duplicates_are_kept_once_with_their_share_most_shared_first():
    descs = _set((0, "rare"), (1, "same"), (2, "same"), (0, "other"), (1, "same"), (2, "other"))
    assert select_for_prompt(descs, 100) == ["same (3 of 6 images)", "other (2 of 6 images)", "rare"]
    # the share's words count against the budget: "other ..." no longer fits
    budget = approx_tokens("rare") + approx_tokens("same (3 of 6 images)")
    assert select_for_prompt(descs, budget) == ["same (3 of 6 images)", "rare"]


def test_bad_selection_and_budget_are_config_errors():
    with pytest.raises(ConfigError, match="unknown description selection"):
        select_for_prompt(_set((0, "a")), 10, "random")
    with pytest.raises(ConfigError):
        select_for_prompt(_set((0, "a")), -1)
