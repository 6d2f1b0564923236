"""Parsing of messy LLM answers: each case lists, by hand, the templates it must yield."""

from __future__ import annotations

import pytest

from ipo_vlm.prompting import (
    REASON_ALREADY_SCORED,
    REASON_CHECK_FAILED,
    REASON_EMPTY,
    REASON_MULTIPLE_PLACEHOLDERS,
    REASON_NO_PLACEHOLDER,
    REASON_QUOTES_SCORE,
    REASON_REPEATED,
    REASON_STRAY_BRACES,
    REASON_TOO_LONG,
    REASON_TOO_MANY,
    from_llm_placeholder,
    normalize_key,
    parse_candidates,
    to_llm_placeholder,
    validate_template,
)

# (LLM answer, templates expected in `valid`, in order)
MESSY = [
    # the memory's line format copied with made-up score cells
    ("1. a photo of a <CLASS> on a table. | ? | ?\n2. a dark <CLASS>. | n/a\n3. a <CLASS> | 91.2 | 0.3",
     ["a photo of a {} on a table.", "a dark {}.", "a {}"]),
    # 1 the format asked for
    ("a photo of a <CLASS>.\na close-up photo of the <CLASS>.",
     ["a photo of a {}.", "a close-up photo of the {}."]),
    # 2 chatter before and after
    ("Here are 3 new templates:\na photo of a <CLASS> outdoors.\na drawing of a <CLASS>.\n"
     "a <CLASS> in the snow.\nI hope these help!",
     ["a photo of a {} outdoors.", "a drawing of a {}.", "a {} in the snow."]),
    # 3 numbered list
    ("1. a photo of a <CLASS>, a type of pet.\n2) a blurry photo of a <CLASS>.\n(3) an image of a <CLASS>.",
     ["a photo of a {}, a type of pet.", "a blurry photo of a {}.", "an image of a {}."]),
    # 4 bullets of several kinds
    ("- a photo of a <CLASS>.\n* a sketch of a <CLASS>.\n• a painting of a <CLASS>.\n+ a toy <CLASS>.",
     ["a photo of a {}.", "a sketch of a {}.", "a painting of a {}.", "a toy {}."]),
    # 5 the memory format copied with fake scores
    ("a studio photo of a <CLASS>. | 91.0 | 0.310\na photo of a small <CLASS>. | 88.5 | 0.402",
     ["a studio photo of a {}.", "a photo of a small {}."]),
    # 6 arrow scores
    ("a photo of a <CLASS> on a table -> 0.82\na macro shot of a <CLASS> => 0.9",
     ["a photo of a {} on a table", "a macro shot of a {}"]),
    # 7 parenthesised and labelled scores
    ("a bright photo of a <CLASS>. (accuracy: 91%)\na dark photo of a <CLASS>. - loss 0.3\n"
     "a cropped photo of a <CLASS>. (acc 90.1, loss 0.35)",
     ["a bright photo of a {}.", "a dark photo of a {}.", "a cropped photo of a {}."]),
    # 8 INS tags, as in the paper's format
    ("<INS>a photo of a <CLASS>, a kind of flower.</INS>\n<INS>a close-up of a <CLASS> petal.</INS>",
     ["a photo of a {}, a kind of flower.", "a close-up of a {} petal."]),
    # 9 template tags, several on one line
    ("<template>a <CLASS> in the wild</template><template>a museum photo of a <CLASS></template>",
     ["a {} in the wild", "a museum photo of a {}"]),
    # 10 JSON object
    ('{"templates": ["a photo of a <CLASS>.", "a satellite photo of <CLASS>."]}',
     ["a photo of a {}.", "a satellite photo of {}."]),
    # 11 JSON list inside a fence, with chatter
    ('Sure! Here you go:\n```json\n["a photo of the <CLASS> texture.", "a close-up of <CLASS> fabric."]\n```\nEnjoy.',
     ["a photo of the {} texture.", "a close-up of {} fabric."]),
    # 12 JSON objects carrying explanations next to the template
    ('[{"template": "a photo of a <CLASS> aircraft.", "why": "mentions the domain"},'
     ' {"template": "an airliner, the <CLASS>."}]',
     ["a photo of a {} aircraft.", "an airliner, the {}."]),
    # 13 markdown emphasis and backticks
    ("1. **a photo of a <CLASS> dish.**\n2. `a plate of <CLASS>.`\n3. *a bowl of <CLASS>.*",
     ["a photo of a {} dish.", "a plate of {}.", "a bowl of {}."]),
    # 14 quotes of several kinds, JSON-ish trailing commas
    ('"a photo of a <CLASS>.",\n\'a rendering of a <CLASS>.\'\n\u201ca scan of a <CLASS>.\u201d',
     ["a photo of a {}.", "a rendering of a {}.", "a scan of a {}."]),
    # 15 every accepted placeholder spelling
    ("a {} one\na [CLASS] two\na {class} three\na {CLASS} four\na <class> five\na [class] six\n"
     "a {classname} seven\na <CLASSNAME> eight",
     ["a {} one", "a {} two", "a {} three", "a {} four", "a {} five", "a {} six", "a {} seven",
      "a {} eight"]),
    # 16 class names instead of templates: nothing valid
    ("<INS>shoes</INS>\n<INS>sandal</INS>", []),
    # 17 labels "Template 1:" and a header line
    ("New templates:\nTemplate 1: a photo of a <CLASS> at night.\nTemplate 2: a photo of a <CLASS> at dawn.",
     ["a photo of a {} at night.", "a photo of a {} at dawn."]),
    # 18 a markdown table with header and separator
    ("| template | accuracy | loss |\n|---|---|---|\n| a photo of a <CLASS>, from above. | 92.0 | 0.25 |\n"
     "| a low-angle photo of a <CLASS>. | 90 | 0.3 |",
     ["a photo of a {}, from above.", "a low-angle photo of a {}."]),
    # 19 duplicates within the answer, differing only in case and spacing
    ("a photo of a <CLASS>.\nA  photo of a <CLASS>.\na photo of a <CLASS> .",
     ["a photo of a {}.", "a photo of a {} ."]),
    # 20 two placeholders and none
    ("a <CLASS> next to a <CLASS>.\na photo of something.\na photo of a <CLASS> at home.",
     ["a photo of a {} at home."]),
    # 21 a hostile format string stays out
    ("a {0.__class__} photo of a <CLASS>.\n{<CLASS>}\na safe photo of a <CLASS>.", ["a safe photo of a {}."]),
    # 22 Windows line ends, tabs, blank lines and a code fence without a language
    ("```\r\n\ta photo of a <CLASS>.\r\n\r\n\ta cartoon <CLASS>.\r\n```", ["a photo of a {}.", "a cartoon {}."]),
    # 23 unicode and accents survive
    ("une photo d'un <CLASS> — très jolie\na photo of a <CLASS> 🐱", ["une photo d'un {} — très jolie", "a photo of a {} 🐱"]),
    # 24 numbers that are part of the wording are kept
    ("a 3D rendering of a <CLASS>.\na photo of 2 <CLASS> objects.\na 1990s photo of a <CLASS>.",
     ["a 3D rendering of a {}.", "a photo of 2 {} objects.", "a 1990s photo of a {}."]),
    # 25 scores written before the template
    ("81.0 | 0.620 | a faded photo of a <CLASS>.", ["a faded photo of a {}."]),
    # 26 a mixture: tags for some, plain lines for others, chatter around
    ("Okay, improved templates below.\n<INS>a photo of a <CLASS> in a field.</INS>\n"
     "a photo of a <CLASS> in a garden.\nThese vary the setting.",
     ["a photo of a {} in a field.", "a photo of a {} in a garden."]),
    # 27 nulls and control characters in the middle of a template
    ("a photo\x00 of a <CLASS>\x07.\n", ["a photo of a {}."]),
    # 28 an unclosed tag per line
    ("<INS>a photo of a <CLASS> in the rain.\n<INS>a photo of a <CLASS> in the fog.",
     ["a photo of a {} in the rain.", "a photo of a {} in the fog."]),
    # 29 "Score:" suffix after an em dash, and a trailing "accuracy 91%"
    ("a toy model of a <CLASS> — score: 0.77\na photo of a <CLASS>. accuracy: 91%, loss: 0.3",
     ["a toy model of a {}", "a photo of a {}."]),
    # 30 lines that open with a placeholder are not mistaken for JSON
    ("{} in the wild.\n[CLASS] at night.\n{CLASS}, close up.", ["{} in the wild.", "{} at night.", "{}, close up."]),
    # 31 a memory row copied with scores and an explanation after them: the template is the first cell
    ("a photo of <CLASS> from the side using natural sunlight | 84.3 | 0.715 (warm lighting gives depth) "
     "[adjustable lighting]\na dark <CLASS> at dusk | 81% | 0.7 (<CLASS> looks darker)\n"
     "3. 81.0 | 0.62 | a faded <CLASS> on a shelf | 80 | 0.6",
     ["a photo of {} from the side using natural sunlight", "a dark {} at dusk", "a faded {} on a shelf"]),
    # 32 a sentence without the placeholder, then the placeholder given a class: no template
    ("A photo of a large, bright item. | 75.0 | 0.6243890670598419 <CLASS> = jacket\n"
     "A close-up shot of a plain shirt against a dark wall. <CLASS> = dress shirt\n"
     "a photo of a <CLASS> on the floor. <CLASS> -> coat", ["a photo of a {} on the floor."]),
    # 33 the LLM's placeholder is configurable
    ("a photo of a [OBJ].", ["a photo of a {}."]),
]


@pytest.mark.parametrize(("text", "expected"), MESSY[:-1], ids=[f"case{i + 1}" for i in range(len(MESSY) - 1)])
def test_messy_answers_yield_the_templates_written_by_hand(text: str, expected: list[str]) -> None:
    assert parse_candidates(text).valid == expected


def test_custom_llm_placeholder() -> None:
    text, expected = MESSY[-1]
    assert parse_candidates(text, placeholder="[OBJ]").valid == expected
    assert parse_candidates(text).valid == []


@pytest.mark.parametrize("expected", [e for _, e in MESSY[:-1] if e], ids=lambda e: e[0][:30])
def test_a_clean_numbered_list_of_the_expected_templates_parses_back_unchanged(expected: list[str]) -> None:
    answer = "\n".join(f"{i + 1}. {to_llm_placeholder(t)}" for i, t in enumerate(expected))
    assert parse_candidates(answer).valid == expected


def test_rejection_reasons_are_counted() -> None:
    text = "\n".join(
        [
            "a photo of a <CLASS>.",  # already scored
            "a new photo of a <CLASS>.",  # valid
            "a new photo of a <CLASS>.",  # repeated in answer
            "shoes",  # no placeholder
            "boots",  # no placeholder
            "a <CLASS> and a <CLASS>",  # multiple placeholders
            "a {weird} <CLASS>",  # stray braces
            "a " + "very " * 80 + "long photo of a <CLASS>",  # too long
            '""',  # empty
            "a rejected-by-check photo of a <CLASS>",
        ]
    )
    res = parse_candidates(
        text,
        seen={normalize_key("a photo of a {}.")},
        check=lambda t: "over token limit" if "rejected-by-check" in t else None,
    )
    assert res.valid == ["a new photo of a {}."]
    assert res.returned == 10
    assert res.rejection_counts() == {
        REASON_ALREADY_SCORED: 1,
        REASON_REPEATED: 1,
        REASON_NO_PLACEHOLDER: 2,
        REASON_MULTIPLE_PLACEHOLDERS: 1,
        REASON_STRAY_BRACES: 1,
        REASON_TOO_LONG: 1,
        REASON_EMPTY: 1,
        "over token limit": 1,
    }
    assert ("shoes", REASON_NO_PLACEHOLDER) in res.rejected


def test_a_score_written_inside_a_template_is_a_rejection() -> None:
    # answers of the local model on the plain demo: once such a line was scored, the model copied
    # its made-up numbers into almost every later template of the run
    text = "\n".join(
        [
            "1. A photo of an plain item sitting on the ground in a living room at night under warm light "
            "(69% accuracy, loss: 0.387). Example image: <CLASS> near window lights while reading books.",
            "2. It's a photo from different angles showing multiple aspects of the item. (85) Loss: 0. <CLASS>",
            "3. a photo of a <CLASS> with training accuracy of 91 percent",
            "4. a photo of a <CLASS> in a lossy, low-resolution scan.",  # a word, not a score
            "5. a close-up of a <CLASS> at 50% zoom.",  # a percentage that is not a score
            "6. a photo of a <CLASS>. (acc 85%)",  # a fake score at the end is peeled off, as before
        ]
    )
    res = parse_candidates(text)
    assert res.rejection_counts() == {REASON_QUOTES_SCORE: 3}
    assert res.valid == ["a photo of a {} in a lossy, low-resolution scan.", "a close-up of a {} at 50% zoom.",
                         "a photo of a {}."]


def test_seen_keys_match_case_and_whitespace_insensitively() -> None:
    res = parse_candidates("A PHOTO   of a <CLASS>.", seen={"a photo of a {}."})
    assert res.valid == [] and res.rejected == [("A PHOTO   of a <CLASS>.", REASON_ALREADY_SCORED)]


def test_max_chars_is_honoured() -> None:
    assert parse_candidates("a photo of a <CLASS>.", max_chars=10).rejection_counts() == {REASON_TOO_LONG: 1}
    assert parse_candidates("a photo of a <CLASS>.", max_chars=20).valid == ["a photo of a {}."]


def test_check_sees_the_normalised_template_and_its_crash_is_a_rejection() -> None:
    calls: list[str] = []

    def check(template: str) -> str | None:
        calls.append(template)
        raise RuntimeError("tokenizer broke")

    res = parse_candidates("1. a photo of a <CLASS>. | 80 | 0.5", check=check)
    assert calls == ["a photo of a {}."]
    assert res.rejection_counts() == {REASON_CHECK_FAILED: 1}


def test_runaway_answers_are_capped() -> None:
    text = "\n".join(f"a photo number {i} of a <CLASS>" for i in range(100))
    res = parse_candidates(text, max_candidates=10)
    assert len(res.valid) == 10 and res.returned == 100
    assert res.rejection_counts() == {REASON_TOO_MANY: 90}


def test_chatter_only_answer_returns_nothing() -> None:
    res = parse_candidates("Sure! Here are some templates:\n\n---\nI hope this helps.")
    assert (res.valid, res.rejected, res.returned) == ([], [], 0)


def test_placeholder_conversion_round_trip() -> None:
    assert to_llm_placeholder("a photo of a {}.") == "a photo of a <CLASS>."
    assert from_llm_placeholder("a photo of a <CLASS>.") == "a photo of a {}."
    assert from_llm_placeholder("a [Class Name] and a {class_name}") == "a {} and a {}"
    assert from_llm_placeholder("{0.__class__}") == "{0.__class__}"


def test_normalize_key() -> None:
    assert normalize_key("  A Photo\tof a <CLASS>. ") == normalize_key("a photo of a {}.") == "a photo of a {}."
    assert normalize_key("a photo of a {}") != normalize_key("a photo of a {}.")


def test_validate_template_for_user_templates() -> None:
    assert validate_template("a photo of a {}.") is None
    assert validate_template("a photo") == REASON_NO_PLACEHOLDER
    assert validate_template("{} {}") == REASON_MULTIPLE_PLACEHOLDERS
    assert validate_template("{0} {}") == REASON_STRAY_BRACES
