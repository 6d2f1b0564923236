"""The rendered Prompt Optimization Prompt: order, content and stable prefix."""

from __future__ import annotations

import hashlib
import re

import pytest

import ipo_vlm.prompting.text as prompt_text
from ipo_vlm.errors import ConfigError
from ipo_vlm.scored import ScoredTemplate as S
from ipo_vlm.prompting import (
    PROMPT_VERSION,
    MetaPromptInputs,
    normalize_key,
    parse_candidates,
    render_meta_prompt,
)

MEMORY = [
    S("a photo of a {}.", 0.81, 0.62),
    S("a close-up photo of a {}.", 0.90, 0.40),
    S("a {} on a sofa.", 0.81, 0.90),  # same accuracy as the first, higher loss: shown before it
    S("a blurry photo of a {}.", 0.55, 1.30),
    S("a photo of a {}, a type of pet.", 0.93, 0.35),
]
# worst first, best last; the 0.81 tie puts the higher loss (0.90) first
EXPECTED_ORDER = [
    "a blurry photo of a <CLASS>.",
    "a <CLASS> on a sofa.",
    "a photo of a <CLASS>.",
    "a close-up photo of a <CLASS>.",
    "a photo of a <CLASS>, a type of pet.",
]
# words naming the other CoOp datasets or their domains
OTHER_DATASET_WORDS = [
    "imagenet", "caltech", "oxford", "pets", "pet", "cars", "car", "flowers", "food", "food101",
    "aircraft", "sun397", "scene", "scenes", "dtd", "texture", "textures", "eurosat", "satellite",
    "ucf101", "action", "actions", "fashion", "clothing",
]


def _user(inputs: MetaPromptInputs) -> str:
    messages = render_meta_prompt(inputs)
    assert [role for role, _ in messages] == ["system", "user"]
    return messages[1][1]


def test_memory_is_shown_ascending_with_best_last() -> None:
    user = _user(MetaPromptInputs(domain="pet", memory=MEMORY))
    positions = [user.index(t + " |") for t in EXPECTED_ORDER]
    assert positions == sorted(positions)
    # the best entry is the last memory line, right before the closing instruction
    memory_lines = [line for line in user.splitlines() if line.count(" | ") == 2]
    assert memory_lines[-1].startswith("a photo of a <CLASS>, a type of pet. |")
    assert "| 93.0 | 0.350" in memory_lines[-1]
    paragraphs = user.split("\n\n")
    assert paragraphs[-2].splitlines()[-1] == memory_lines[-1]
    assert paragraphs[-1].startswith("Write 5 new templates")


def test_domain_word_appears_and_no_other_dataset_words() -> None:
    for domain in ("flower", "fine-grained bird species"):
        system, user = (content for _, content in render_meta_prompt(
            MetaPromptInputs(domain=domain, memory=[S("a photo of a {}.", 0.5, 1.0)], dataset_name="oxford_flowers")
        ))
        assert domain in user
        words = set(re.findall(r"[a-z0-9]+", (system + user).lower()))
        assert words.isdisjoint(OTHER_DATASET_WORDS), words & set(OTHER_DATASET_WORDS)


def test_placeholder_is_shown_as_class_and_never_as_braces() -> None:
    system, user = (c for _, c in render_meta_prompt(MetaPromptInputs(domain="pet", memory=MEMORY)))
    assert "{}" not in system + user
    assert "<CLASS>" in user and "exactly once" in user
    custom = _user(MetaPromptInputs(domain="pet", memory=MEMORY, placeholder="[X]"))
    assert "<CLASS>" not in custom and "a photo of a [X]. |" in custom


def test_descriptions_included_when_given_and_absent_otherwise() -> None:
    descriptions = ["a cat lying on grass", "a small dog\non a red sofa"]
    with_desc = _user(MetaPromptInputs(domain="pet", memory=MEMORY, descriptions=descriptions))
    assert prompt_text.DESCRIPTIONS_HEADER in with_desc
    assert "- a cat lying on grass" in with_desc and "- a small dog on a red sofa" in with_desc
    without = _user(MetaPromptInputs(domain="pet", memory=MEMORY))
    assert prompt_text.DESCRIPTIONS_HEADER not in without and "lying on grass" not in without
    blank_only = _user(MetaPromptInputs(domain="pet", memory=MEMORY, descriptions=["", "  "]))
    assert blank_only == without


def test_unchanging_parts_come_first_so_the_prefix_is_reusable() -> None:
    desc = ["a cat lying on grass"]
    early = render_meta_prompt(MetaPromptInputs(domain="pet", memory=MEMORY[:1], descriptions=desc))
    late = render_meta_prompt(MetaPromptInputs(domain="pet", memory=MEMORY, descriptions=desc))
    assert early[0] == late[0]
    a, b = early[1][1], late[1][1]
    common = len(_common_prefix(a, b))
    assert "a cat lying on grass" in a[:common]
    # everything up to the memory entries is shared; the memory and the closing come after
    assert prompt_text.MEMORY_HEADER in a[:common]
    assert "Write 5 new templates" not in a[:common]


def test_closing_instruction_asks_for_n_and_empty_memory_is_said() -> None:
    user = _user(MetaPromptInputs(domain="car", n_candidates=7))
    assert "Write 7 new templates" in user
    assert prompt_text.MEMORY_EMPTY in user


def test_user_text_is_inserted_literally() -> None:
    user = _user(MetaPromptInputs(domain="{n} {placeholder}", descriptions=["{0.__class__} {domain}"], memory=MEMORY))
    assert "images of {n} {placeholder}." in user
    assert "- {0.__class__} {domain}" in user


def test_memory_lines_parse_back_to_their_templates() -> None:
    # A model that copies the memory verbatim must yield exactly the templates already scored.
    user = _user(MetaPromptInputs(domain="pet", memory=MEMORY))
    copied = "\n".join(line for line in user.splitlines() if line.count(" | ") == 2)
    res = parse_candidates(copied)
    assert sorted(res.valid) == sorted(e.template for e in MEMORY)
    seen = {normalize_key(e.template) for e in MEMORY}
    assert parse_candidates(copied, seen=seen).rejection_counts() == {"already scored": 5}


@pytest.mark.parametrize(
    "kwargs",
    [dict(domain=" "), dict(domain="pet", n_candidates=0), dict(domain="pet", placeholder=""),
     dict(domain="pet", placeholder="{}")],
)
def test_bad_inputs_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        MetaPromptInputs(**kwargs)


def test_percent_accuracy_is_refused() -> None:
    with pytest.raises(ValueError, match="fraction"):
        render_meta_prompt(MetaPromptInputs(domain="pet", memory=[S("a {}", 81.0, 0.6)]))


def test_prompt_version_tracks_the_text() -> None:
    # When the meta-prompt text changes, bump PROMPT_VERSION and record the new digest here.
    constants = {k: v for k, v in vars(prompt_text).items() if k.isupper() and k != "PROMPT_VERSION"}
    digest = hashlib.sha256(repr(sorted(constants.items())).encode()).hexdigest()[:16]
    assert (PROMPT_VERSION, digest) == ("pop-3", KNOWN_DIGEST)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


KNOWN_DIGEST = "e431fd27807d2d6d"
