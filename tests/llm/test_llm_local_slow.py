"""The offline ``local`` model really generating under the template grammars (slow: ~1-2 min on
2 cores), and llama.cpp's own grammar engine reading them. It needs llama-cpp-python and the
assembled model (``make model``); without them it fails with the reason, it does not skip: CI
installs both."""

from __future__ import annotations

import json

import pytest
from helpers.llama_grammar import grammar_accepts

from ipo_vlm.errors import BackendError
from ipo_vlm.llm.base import LLMRequest, OutputConstraint
from ipo_vlm.llm.constraint import template_grammar, templates_json_schema

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
    # A word limit keeps the answer inside its token budget: without one a line may run to the
    # parser's character limit, and the model sometimes writes such lines (either sampler order).
    llm = load_local_or_fail()
    results = []
    for n in (3, 2):
        request = LLMRequest(
            messages=(("system", SYSTEM), ("user", ASK.format(n=n))),
            temperature=1.1, top_p=0.95, repeat_penalty=1.2, max_tokens=160, seed=1,
            constraint=OutputConstraint(n, max_words=12),
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
        # sampled check-first by default: the grammar refused some draws, or none
        assert 0 <= resp.extra["grammar_redraws"] <= resp.tokens_out
        results.append(resp)
    # The second prompt differs only near its end: the shared system + memory prefix is reused.
    assert results[1].extra["prefix_reused_tokens"] > 40


@pytest.mark.slow
def test_llama_cpp_reads_the_grammars_as_the_tests_do() -> None:
    """The grammar text is valid GBNF for llama.cpp itself, and its engine accepts and rejects
    the same answers as the tests' reading of it (tests/llm/test_llm_grammar.py)."""
    import llama_cpp

    from ipo_vlm.llm.local_model import ensure_local_model

    # the vocabulary is all the grammar engine needs: loads in seconds, no weights
    llama = llama_cpp.Llama(model_path=str(ensure_local_model()), vocab_only=True, verbose=False)
    words = template_grammar(OutputConstraint(3, max_words=5))
    assert grammar_accepts(llama, words, "1. a photo of a <CLASS>.\n2. <CLASS>\n3. \"a <CLASS>'s fur\"\n\n")
    assert grammar_accepts(llama, words, "1. a close-up, <CLASS>\n2. dog's <CLASS>\n3. (<CLASS>)\n")
    for bad in (
        "1. a photo of a big <CLASS>.\n2. <CLASS>\n3. a <CLASS>\n",  # six words
        "1. a <CLASS> and <CLASS>\n2. <CLASS>\n3. a <CLASS>\n",  # two placeholders
        "1. a <CLASS>\n2. <CLASS>\n",  # too few
        "1. 2 <CLASS>\n2. <CLASS>\n3. a <CLASS>\n",  # a digit opening a template
    ):
        assert not grammar_accepts(llama, words, bad), bad
    chars = template_grammar(OutputConstraint(2))
    assert grammar_accepts(llama, chars, "1. a photo of a big <CLASS> on a shelf in a shop.\n2. <CLASS>\n")
    assert not grammar_accepts(llama, chars, "1. a <CLASS> and <CLASS>\n2. <CLASS>\n")
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    schema = json_schema_to_gbnf(json.dumps(templates_json_schema(OutputConstraint(2, max_words=4), bounded=True)))
    assert grammar_accepts(llama, schema, '{"templates": ["a photo of <CLASS>", "<CLASS>\'s fur"]}')
    assert not grammar_accepts(llama, schema, '{"templates": ["a photo of a <CLASS>", "<CLASS>"]}')  # five words
    assert not grammar_accepts(llama, schema, '{"templates": ["a <CLASS>"]}')  # one item


@pytest.mark.slow
def test_a_word_limited_step_on_the_local_model_yields_the_requested_templates(tmp_path, monkeypatch) -> None:
    """One optimizer step of the shifted demo (16-word limit, 5 candidates) on the real model:
    one call, five templates, every one within the word limit and usable."""
    from ipo_vlm.config import preset
    from ipo_vlm.runs.optimize import create_backends, optimize

    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    llm = load_local_or_fail()
    config = preset("demo-shifted").updated(optimize={"steps": 1, "control": "none", "ensemble": 0})
    optimize(config, tmp_path / "run", backends=create_backends(config, llm=llm))
    steps = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    [step] = [s for s in steps if s["llm_calls"]]
    assert step["llm_calls"] == 1 and step["returned"] == 5, step
    assert step["rejected"] == {} and len(step["candidates"]) == 5, step
    from ipo_vlm.prompting.parse import word_count

    assert all(word_count(t) <= 16 and t.count("{}") == 1 for t in step["candidates"])


@pytest.mark.slow
def test_check_first_sampling_redraws_what_the_grammar_refuses() -> None:
    """The default sampler lets the grammar judge only the drawn token. With a grammar the model
    would not follow by itself (every word made of the letters z and q), draws are refused and
    redrawn under the whole grammar, and the answer still matches it exactly; with the grammar
    before every draw (llama-cpp-python's own order) it matches too."""
    import llama_cpp

    from ipo_vlm.llm.llamacpp_sampling import check_first_llama
    from ipo_vlm.llm.local_model import ensure_local_model

    strict = 'root ::= "1. " word (" " word)? " <CLASS>\\n"\nword ::= [zq] [zq]? [zq]?\n'
    grammar = llama_cpp.LlamaGrammar.from_string(strict, verbose=False)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK.format(n=1)}]
    path = str(ensure_local_model())
    for check_first in (True, False):
        build = check_first_llama if check_first else llama_cpp.Llama
        llama = build(model_path=path, n_ctx=1024, verbose=False)
        try:
            out = llama.create_chat_completion(messages=messages, grammar=grammar, temperature=1.1, top_p=0.95,
                                               max_tokens=24, seed=3)
            text = out["choices"][0]["message"]["content"]
            assert grammar_accepts(llama, strict, text), text
            assert out["choices"][0]["finish_reason"] == "stop", out
            if check_first:
                sampler = llama.last_sampler
                assert 1 <= sampler.redraws <= sampler.draws, (sampler.redraws, sampler.draws)
        finally:
            llama.close()
