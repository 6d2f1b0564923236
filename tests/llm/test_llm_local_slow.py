"""The offline ``local`` model really generating under the template grammar (slow: ~1 min on 2
cores). It needs llama-cpp-python and the assembled model (``make model``); without them it
fails with the reason, it does not skip: CI installs both."""

from __future__ import annotations

import pytest

from ipo_vlm.errors import BackendError
from ipo_vlm.llm.base import LLMRequest, OutputConstraint

SYSTEM = "You write prompt templates for a zero-shot image classifier. <CLASS> stands for the class name."
ASK = (
    "Templates so far, worst to best:\n"
    "a photo of a <CLASS>. -> acc 0.61\n"
    "a blurry photo of a <CLASS>. -> acc 0.64\n"
    "Write {n} new templates for photos of clothing items, one per line, each containing <CLASS> once."
)


def load_local_or_fail():  # noqa: ANN201 - the backend type lives behind an optional import
    from ipo_vlm.llm.llamacpp import load_local

    try:
        llm = load_local()
        llm.check()
    except BackendError as e:
        pytest.fail(f"the local LLM is not available ({e}); run 'make model' (and 'make deps' for llama-cpp-python)")
    return llm


@pytest.mark.slow
def test_local_model_returns_only_valid_templates_and_reuses_the_prompt_prefix() -> None:
    llm = load_local_or_fail()
    results = []
    for n in (3, 2):
        request = LLMRequest(
            messages=(("system", SYSTEM), ("user", ASK.format(n=n))),
            temperature=1.1, top_p=0.95, repeat_penalty=1.2, max_tokens=160, seed=1,
            constraint=OutputConstraint(n),
        )
        resp = llm.complete(request)
        assert resp.text.endswith("\n"), resp.text  # every line is newline-terminated
        lines = [line for line in resp.text.split("\n") if line]
        assert len(lines) == n, resp.text
        for k, line in enumerate(lines, start=1):
            assert line.startswith(f"{k}. "), line  # the grammar numbers the lines
            template = line[len(f"{k}. "):]
            assert template.count("<CLASS>") == 1 and template.replace("<CLASS>", "").strip(), line
        assert resp.tokens_in > 50 and resp.tokens_out > 0
        results.append(resp)
    # The second prompt differs only near its end: the shared system + memory prefix is reused.
    assert results[1].extra["prefix_reused_tokens"] > 40
