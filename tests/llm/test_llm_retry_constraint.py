"""Retry schedule, Retry-After parsing, and the template grammar / JSON schema."""

from __future__ import annotations

import email.utils
import random
import re

import pytest

from ipo_vlm.errors import ConfigError, LLMError
from ipo_vlm.llm.base import OutputConstraint
from ipo_vlm.llm.constraint import response_format, template_grammar
from ipo_vlm.llm.retry import Retryable, RetryPolicy, parse_retry_after, with_retries


def test_with_retries_is_bounded_and_waits_exponentially() -> None:
    waits: list[float] = []
    attempts = 0

    def always_fails() -> None:
        nonlocal attempts
        attempts += 1
        raise Retryable(LLMError(f"try {attempts}"))

    policy = RetryPolicy(max_retries=3, base_delay_s=0.5, max_delay_s=1.5, jitter=0.0)
    with pytest.raises(LLMError, match="try 4"):
        with_retries(always_fails, policy, sleep=waits.append)
    assert attempts == 4 and waits == [0.5, 1.0, 1.5]


def test_retry_after_wins_and_jitter_is_seeded() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=30.0, jitter=0.5)
    assert policy.backoff(0, 7.0, random.Random(1)) == 7.0
    assert policy.backoff(0, 100.0, None) == 30.0
    a = [policy.backoff(i, None, random.Random(3)) for i in range(3)]
    b = [policy.backoff(i, None, random.Random(3)) for i in range(3)]
    assert a == b and all(2**i <= w <= 1.5 * 2**i for i, w in enumerate(a))


def test_success_after_failures_returns_value() -> None:
    results = iter([Retryable(LLMError("x"), 0.2), "ok"])
    waits: list[float] = []

    def fn() -> str:
        r = next(results)
        if isinstance(r, Exception):
            raise r
        return r

    assert with_retries(fn, RetryPolicy(max_retries=1), sleep=waits.append) == "ok" and waits == [0.2]


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "150", "retry-after": "9"}) == 0.15
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def grammar_regex(grammar: str, placeholder: str) -> re.Pattern[str]:
    """A regex with the meaning of the generated grammar, to check strings against it."""
    first = re.escape(placeholder[0])
    line = rf"(?:[^\n{first}\-*#0-9 \t][^\n{first}]{{0,299}})?{re.escape(placeholder)}[^\n{first}]{{0,300}}\n+"
    n = grammar.splitlines()[0].count("line")
    return re.compile("".join(rf"{k}\. {line}" for k in range(1, n + 1)))


def test_template_grammar_structure() -> None:
    g = template_grammar(OutputConstraint(3))
    assert g.splitlines()[0] == 'root ::= "1. " line "2. " line "3. " line'
    rx = grammar_regex(g, "<CLASS>")
    assert rx.fullmatch("1. a photo of a <CLASS>.\n2. an <CLASS> in the wild, very long " + "x" * 250 + "\n3. <CLASS> art\n")
    # a runaway side stops at max_chars (300), so a cut line is always too long to be accepted
    assert not rx.fullmatch("1. a photo of a <CLASS>.\n2. an <CLASS> " + "x" * 300 + "\n3. <CLASS> art\n")
    assert "{0,300}" in g and "{0,299}" in g
    assert not rx.fullmatch("1. a <CLASS> and <CLASS>\n2. b <CLASS>\n3. c <CLASS>\n")  # two placeholders
    assert not rx.fullmatch("1. a photo\n2. b <CLASS>\n3. c <CLASS>\n")  # none
    assert not rx.fullmatch("1. - a <CLASS>\n2. b <CLASS>\n3. c <CLASS>\n")  # a second list marker
    assert not rx.fullmatch("a <CLASS>\nb <CLASS>\nc <CLASS>\n")  # unnumbered
    assert not rx.fullmatch("1. a <CLASS>\n2. b <CLASS>\n")  # too few
    assert rx.fullmatch("1. a <CLASS>\n\n2. b <CLASS>\n3. c <CLASS>\n\n")  # blank lines may end a line


def test_grammar_escapes_placeholders() -> None:
    g = template_grammar(OutputConstraint(2, placeholder='{"x"}'))
    assert '"{\\"x\\"}"' in g and "[^\\n{]" in g
    with pytest.raises(ConfigError):
        template_grammar(OutputConstraint(0))


def test_response_format_styles() -> None:
    c = OutputConstraint(4)
    assert response_format(None, "json_schema") is None
    assert response_format(c, "none") is None
    js = response_format(c, "json_schema")
    assert js is not None and js["json_schema"]["strict"] is True
    assert "4 prompt templates" in js["json_schema"]["schema"]["properties"]["templates"]["description"]
    with pytest.raises(ConfigError):
        response_format(c, "yaml")


def test_cache_key_covers_the_constraint_version(monkeypatch) -> None:
    from ipo_vlm.io.hashing import sha256_json
    from ipo_vlm.llm import base as llm_base
    from ipo_vlm.llm.base import LLMRequest

    req = LLMRequest(messages=(("user", "hi"),), constraint=OutputConstraint(3))
    before = sha256_json(req.cache_payload("m"))
    monkeypatch.setattr(llm_base, "CONSTRAINT_VERSION", llm_base.CONSTRAINT_VERSION + 1)
    assert sha256_json(req.cache_payload("m")) != before
    plain = LLMRequest(messages=(("user", "hi"),))
    assert "constraint_version" not in plain.cache_payload("m")
