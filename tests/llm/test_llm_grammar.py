"""The word-limited output grammar, read as text: it admits exactly the answers the run can use
(n numbered templates, the placeholder once each, at most ``max_words`` words as the parser counts
them) and nothing the parser would reject for its structure or length in words. llama.cpp's own
engine reads the same grammars in tests/llm/test_llm_local_slow.py."""

from __future__ import annotations

import random

import pytest

from ipo_vlm.errors import ConfigError
from ipo_vlm.llm.base import OutputConstraint
from ipo_vlm.llm.constraint import MAX_SEPARATOR_CHARS, MAX_WORD_CHARS, template_grammar, template_pattern, templates_json_schema
from ipo_vlm.prompting.parse import parse_candidates, word_count
from tests.helpers.gbnf import gbnf_to_regex


def accepts(constraint: OutputConstraint, answer: str) -> bool:
    return gbnf_to_regex(template_grammar(constraint)).fullmatch(answer) is not None


def numbered(*lines: str) -> str:
    return "".join(f"{k}. {line}\n" for k, line in enumerate(lines, start=1))


FIVE = OutputConstraint(3, max_words=5)


@pytest.mark.parametrize(
    "line",
    [
        "a photo of a <CLASS>.",  # exactly five words
        "<CLASS>",
        "(<CLASS>)",
        '"a <CLASS>\'s fur"',  # an apostrophe after the placeholder joins nothing: three words
        "dog's <CLASS>, close-up",  # dog's is one word, close-up two
        "a <CLASS>s",  # the parser counts "s" as a word of its own, so does the grammar
        "a 3D render, <CLASS>!",  # digits inside the line are words like any other
    ],
)
def test_the_word_grammar_accepts_usable_templates(line: str) -> None:
    answer = numbered(line, "a <CLASS>.", "<CLASS> art")
    assert accepts(FIVE, answer), answer
    parsed = parse_candidates(answer, max_words=5)
    assert parsed.returned == 3 and len(parsed.valid) == 3, parsed


@pytest.mark.parametrize(
    "answer",
    [
        numbered("a photo of a big <CLASS>.", "a <CLASS>", "b <CLASS>"),  # six words
        numbered("a <CLASS>", "b <CLASS> and <CLASS>", "c <CLASS>"),  # two placeholders
        numbered("a photo", "b <CLASS>", "c <CLASS>"),  # none
        numbered("a <CLASS>", "b <CLASS>"),  # too few
        numbered("a <CLASS>", "b <CLASS>", "c <CLASS>", "d <CLASS>"),  # too many
        numbered("- a <CLASS>", "b <CLASS>", "c <CLASS>"),  # a second list marker
        numbered("2 a <CLASS>", "b <CLASS>", "c <CLASS>"),  # a digit opening the template
        numbered(" a <CLASS>", "b <CLASS>", "c <CLASS>"),  # a space after the number
        numbered("a {} <CLASS>", "b <CLASS>", "c <CLASS>"),  # braces
        numbered("a <CLASS> | 91", "b <CLASS>", "c <CLASS>"),  # a fake score cell
        numbered("a <CLASS>photo", "b <CLASS>", "c <CLASS>") + "and some chatter\n",
        "a <CLASS>\nb <CLASS>\nc <CLASS>\n",  # unnumbered
        numbered("a " + "x" * (MAX_WORD_CHARS + 1) + " <CLASS>", "b <CLASS>", "c <CLASS>"),  # runaway word
        numbered("a" + " " * (MAX_SEPARATOR_CHARS + 1) + "<CLASS>", "b <CLASS>", "c <CLASS>"),
    ],
)
def test_the_word_grammar_rejects_what_the_run_cannot_use(answer: str) -> None:
    assert not accepts(FIVE, answer), answer


def test_lines_may_end_in_several_newlines() -> None:
    assert accepts(FIVE, "1. a <CLASS>.\n\n2. b <CLASS>\n3. c <CLASS>\n\n")


def test_words_are_bounded_not_characters() -> None:
    c = OutputConstraint(1, max_words=16, max_chars=40)
    sixteen = "a very detailed and sharp studio photograph of one small <CLASS> on a plain white background."
    assert word_count(sixteen.replace("<CLASS>", "{}")) == 16 and len(sixteen) > 40
    assert accepts(c, numbered(sixteen))
    assert not accepts(c, numbered(sixteen.replace("plain", "plain grey")))


def _random_line(rng: random.Random, pieces: list[str], seps: list[str], words: int) -> str:
    tokens = [rng.choice(pieces) for _ in range(words - 1)]
    tokens.insert(rng.randint(0, len(tokens)), "<CLASS>")
    line = tokens[0]
    for t in tokens[1:]:
        line += rng.choice(seps) + t
    return line + rng.choice(["", ".", "!", ")", "..."])


def test_every_answer_the_grammar_admits_is_usable_within_the_word_limit() -> None:
    """Random lines of hostile pieces (digits first, long runs of punctuation, braces, apostrophes,
    bars): whatever the grammar admits, the parser takes whole, within the word limit."""
    rng = random.Random(7)
    pieces = ["a", "photo", "of", "dog's", "3D", "x" * MAX_WORD_CHARS, "it's", "'", "{", "|", "-", "#2"]
    seps = [" ", ", ", " - ", ". ", " (", ") ", "/", '"', " & ", "", " -- ( "]
    admitted = 0
    for _ in range(1000):
        limit = rng.randint(1, 9)
        answer = numbered(*(_random_line(rng, pieces, seps, rng.randint(1, limit + 2)) for _ in range(2)))
        if accepts(OutputConstraint(2, max_words=limit), answer):
            admitted += 1
            parsed = parse_candidates(answer, max_words=limit, max_chars=10_000)
            assert parsed.returned == 2 and len(parsed.valid) + len(parsed.rejected) == 2, answer
            assert all(reason == "repeated in answer" for _, reason in parsed.rejected), (answer, parsed)
    assert admitted > 40  # the check was exercised


def test_the_grammar_admits_every_plain_template_within_the_limit_and_none_beyond() -> None:
    rng = random.Random(11)
    pieces = ["a", "photo", "of", "the", "dog's", "3D", "close", "up", "it's", "x" * MAX_WORD_CHARS]
    seps = [" ", ", ", " - ", ". ", " (", ") ", "/", '" ', " & "]
    for _ in range(300):
        limit, words = rng.randint(1, 9), rng.randint(1, 11)
        line = _random_line(rng, pieces, seps, words)
        if line[0].isdigit():
            line = "a " + line
        n_words = word_count(line.replace("<CLASS>", "{}"))
        assert accepts(OutputConstraint(1, max_words=limit), numbered(line)) == (n_words <= limit), (line, limit)


def test_the_json_schema_pattern_means_what_the_grammar_means() -> None:
    """The pattern a bounded ``json_object`` schema carries admits one template exactly when the
    grammar admits it as a line (lines without a double quote, which JSON would escape)."""
    import re

    rng = random.Random(5)
    pieces = ["a", "photo", "of", "dog's", "3D", "x" * MAX_WORD_CHARS, "it's", "'", "{", "|", "-", "#2", "x" * 17]
    seps = [" ", ", ", " - ", ". ", " (", ") ", "/", " & ", "", " -- ( "]
    agreed = 0
    for _ in range(500):
        limit = rng.randint(1, 6)
        line = _random_line(rng, pieces, seps, rng.randint(1, limit + 2))
        c = OutputConstraint(1, max_words=limit)
        in_pattern = re.fullmatch(template_pattern(c), line) is not None
        assert in_pattern == accepts(c, numbered(line)), (line, limit)
        agreed += in_pattern
    assert agreed > 50
    schema = templates_json_schema(OutputConstraint(4, max_words=16), bounded=True)["properties"]["templates"]
    assert schema["minItems"] == schema["maxItems"] == 4 and schema["items"]["pattern"].startswith("^")
    assert not re.search(r"(?<!\\)\(\?", schema["items"]["pattern"])  # llama.cpp's converter takes plain groups only


def test_a_placeholder_that_starts_with_a_letter_cannot_appear_twice() -> None:
    c = OutputConstraint(1, placeholder="CLASS", max_words=4)
    assert accepts(c, "1. a CLASS photo\n")
    assert not accepts(c, "1. a CLASS photo CLASS\n")
    assert not accepts(c, "1. a Cat CLASS\n")  # no word may hold the placeholder's first letter


def test_bad_constraints_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        template_grammar(OutputConstraint(2, max_words=0))
    with pytest.raises(ConfigError):
        template_grammar(OutputConstraint(0, max_words=4))
