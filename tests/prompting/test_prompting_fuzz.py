"""parse_candidates survives any answer: seeded random and hostile strings, with the
invariants every result must satisfy."""

from __future__ import annotations

import random
import time

import pytest

from ipo_vlm.prompting import normalize_key, parse_candidates

# Fragments an LLM (or an attacker) might emit; random strings are stitched from them.
FRAGMENTS = [
    "<CLASS>", "{}", "{", "}", "{0.__class__}", "{0}", "[CLASS]", "<INS>", "</INS>", "<template>",
    "```json\n", "```", '{"templates": [', "]", "[", '"', "'", ",", "\n", "\r\n", "\x00", "\t",
    "1.", "- ", "* ", "**", "`", "|", " | 91.0 | 0.31", "-> 0.82", "(accuracy: 91%)", "a photo of a ",
    "Here are 5 new templates:", "é", "🐱", "\u202e", "\u2028", "\ud7ff", "%s", "%(x)s", "$x", "\\",
    " ", "0.5", "loss", "accuracy", ":",
]

HOSTILE = [
    "",
    "\x00" * 10_000,
    "{0.__class__.__mro__}",
    "{" * 50_000,
    "[" * 50_000,
    "```json\n" + "[" * 10_000,
    "<INS>" * 20_000,
    "-1" * 50_000 + "x",
    ("a photo of a <CLASS>. | 1 " * 500 + "\n") * 50,
    "x" * 5_000_000,
    "\n" * 200_000,
    "".join(chr(c) for c in range(0, 0x3000)),
    '{"templates": ' + "[" * 5_000 + "]" * 5_000 + "}",
]


def _check_invariants(res, seen: set[str], max_chars: int) -> None:
    assert res.returned == len(res.valid) + len(res.rejected)
    keys = [normalize_key(t) for t in res.valid]
    assert len(keys) == len(set(keys)) and not set(keys) & seen
    for template in res.valid:
        assert template.count("{}") == 1
        assert "{" not in template.replace("{}", "") and "}" not in template.replace("{}", "")
        assert 0 < len(template) <= max_chars
        assert "\x00" not in template and "\n" not in template
    for raw, reason in res.rejected:
        assert isinstance(raw, str) and isinstance(reason, str) and reason


@pytest.mark.parametrize("seed", range(8))
def test_random_answers_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    seen = {normalize_key("a photo of a {}.")}
    for _ in range(250):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 60)))
        if rng.random() < 0.3:
            text += "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 30)))
        max_chars = rng.choice([20, 300])
        _check_invariants(parse_candidates(text, seen=seen, max_chars=max_chars), seen, max_chars)


@pytest.mark.parametrize("text", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_hostile_answers_are_handled_quickly(text: str) -> None:
    start = time.perf_counter()
    res = parse_candidates(text)
    assert time.perf_counter() - start < 5.0
    _check_invariants(res, set(), 300)


@pytest.mark.parametrize("value", [None, 42, b"a photo of a <CLASS>", ["a <CLASS>"]])
def test_non_string_answers_do_not_crash(value: object) -> None:
    _check_invariants(parse_candidates(value), set(), 300)
