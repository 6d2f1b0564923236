"""The leakage guard: class names in descriptions are replaced, counted, and nothing else is."""

from __future__ import annotations

import pytest

from ipo_vlm.captioner.descriptions import mask_classnames


def test_breed_name_is_masked_with_the_domain_word():
    assert mask_classnames("a Basset Hound lying on grass", ["basset hound"], "pet") == ("a pet lying on grass", 1)


@pytest.mark.parametrize("text", ["two basset hounds", "Two BASSET HOUNDS", "two basset-hounds", "two basset_hounds"])
def test_plurals_case_and_separators(text):
    masked, count = mask_classnames(text, ["basset hound"], "pet")
    assert count == 1
    assert masked.lower() == "two pets"


@pytest.mark.parametrize("text", ["a t-shirt", "a T shirt", "a tshirt", "a T-SHIRT", "a t_shirt"])
def test_spellings_of_t_shirt(text):
    assert mask_classnames(text, ["t-shirt"], "clothing item") == ("a clothing item", 1)


def test_no_partial_word_matches():
    text = "a catalog of concatenated scattering"
    assert mask_classnames(text, ["cat"], "pet") == (text, 0)


def test_es_and_ies_plurals():
    assert mask_classnames("three boxes", ["box"])[0] == "three objects"
    assert mask_classnames("butterflies on a butterfly bush", ["butterfly"], "insect") == (
        "insects on an insect bush", 2)


def test_longest_name_wins_over_a_name_it_contains():
    masked, count = mask_classnames("a basset hound next to a hound", ["hound", "basset hound"], "dog")
    assert (masked, count) == ("a dog next to a dog", 2)


def test_article_follows_the_neutral_word():
    assert mask_classnames("An Abyssinian cat", ["abyssinian"], "pet")[0] == "A pet cat"
    assert mask_classnames("a sphynx", ["sphynx"], "animal")[0] == "an animal"


def test_slash_names_mask_each_alternative_and_the_whole():
    masked, count = mask_classnames("a T-shirt/top, a t-shirt and a top", ["T-shirt/top"], "garment")
    assert masked == "a garment, a garment and a garment"
    assert count == 3


def test_default_neutral_and_empty_inputs():
    assert mask_classnames("a cat", ["cat"]) == ("an object", 1)
    assert mask_classnames("", ["cat"]) == ("", 0)
    assert mask_classnames("a cat", []) == ("a cat", 0)


def test_punctuation_in_names_and_possessives():
    assert mask_classnames("the st bernard's collar", ["St. Bernard"], "dog") == ("the dog's collar", 1)
    assert mask_classnames("a 707-320 and a 707 320", ["707-320"], "aircraft")[1] == 2
