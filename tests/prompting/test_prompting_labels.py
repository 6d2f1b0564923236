"""OPRO/IPO-style answer labels and quotes are not part of a template; a class mentioned with
a slash alternative ("T-shirt/Top") is masked with it."""

from __future__ import annotations

import time

import pytest

from ipo_vlm.captioner.masking import mask_classnames
from ipo_vlm.data.demo import CLASSNAMES
from ipo_vlm.prompting.parse import parse_candidates


@pytest.mark.parametrize(
    "answer, template",
    [
        ('Instruction: "a close-up photo of the {}"', "a close-up photo of the {}"),
        ("Prompt: 'a {} on a table'", "a {} on a table"),
        ("<INS>a photo of {}</INS>", "a photo of {}"),
        ("<INS>Instruction: \"a blurry photo of a {}.\"</INS>", "a blurry photo of a {}."),
        ("text: a {} in the wild", "a {} in the wild"),
        ('TEXT:"a dark photo of a <CLASS>."', "a dark photo of a {}."),
        ('2. New instruction: "a sketch of the {}."', "a sketch of the {}."),
        ("a text message about a {}", "a text message about a {}"),  # a word, not a label
    ],
)
def test_answer_labels_and_quotes_are_stripped(answer: str, template: str) -> None:
    assert parse_candidates(answer).valid == [template]


def test_slash_alternatives_of_a_class_are_masked_with_it() -> None:
    # the demo's class is "t-shirt"; Fashion-MNIST's label, which a captioner may know, is "T-shirt/top"
    assert mask_classnames("a grey T-shirt/Top on white", CLASSNAMES, "clothing item") == ("a grey clothing item on white", 1)
    assert mask_classnames("a top / t-shirt", CLASSNAMES, "clothing item") == ("a clothing item", 1)
    assert mask_classnames("sandals/sneakers", CLASSNAMES, "clothing item") == ("clothing items", 1)
    assert mask_classnames("a black/white t-shirt", CLASSNAMES, "clothing item") == ("a black/white clothing item", 1)
    assert mask_classnames("a top/T-shirt", ["T-shirt/top"], "garment") == ("a garment", 1)


def test_slash_masking_stays_linear_on_hostile_text() -> None:
    # growth, not a wall time: four times the text may take about four times as long (a
    # backtracking pattern would take sixteen); best of three, so a busy machine cannot decide it
    def best_time(n: int) -> float:
        text = ("a/" * n) + "t-shirt" + ("/b" * n) + " x" * (n // 20)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            masked, count = mask_classnames(text, CLASSNAMES, "clothing item")
            times.append(time.perf_counter() - start)
            assert count >= 1
        return min(times)

    assert best_time(20000) / best_time(5000) < 9.0
