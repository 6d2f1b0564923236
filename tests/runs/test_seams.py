"""The wiring between units, seen end to end through ``optimize()``: what actually reaches the
LLM (masked descriptions, no class name), what happens to a candidate the VLM cannot encode,
and whether the response cache is used and keyed on every setting of a request."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from helpers.captioners import ClassNamingCaptioner

from ipo_vlm.config import preset
from ipo_vlm.llm.base import LLMRequest, OutputConstraint
from ipo_vlm.llm.cache import request_key
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

ANSWER = "1. a plain photo of a <CLASS>.\n2. a studio photo of the <CLASS>.\n3. a worn <CLASS>, a kind of clothing."
# FakeVLM counts a prompt's words + 2 against a 40-token limit
TOO_LONG = "a " + " ".join(["very"] * 45) + " long photo of a <CLASS>."


class NamingCaptioner(ClassNamingCaptioner):
    """Names each image's class the ways people write it: capitalised, plural, hyphenated,
    run together, shouted."""

    model_id = "naming-captioner"
    FORMS = ("Two {title}s hanging on a rail.", "A {hyphen} folded on a bright table.",
             "The {joined} looks worn.", "A {upper} in a studio.")

    def sentence(self, name, index):
        form = self.FORMS[index % len(self.FORMS)]
        return form.format(title=name.title(), hyphen=name.replace(" ", "-"), joined=name.replace(" ", ""), upper=name.upper())


def config(**optimize_settings):
    settings = {"steps": 2, "candidates": 3, "memory_size": 6, "select_on": "train", **optimize_settings}
    return preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "naming"}, optimize=settings)


def backends(llm, captioner=True):
    ds = FakeDataset()
    cap = NamingCaptioner(ds.info.classnames) if captioner else None
    from ipo_vlm.captioner.base import NoCaptioner

    return Backends(ds, FakeVLM(ds.info.classnames), llm, cap or NoCaptioner())


def class_name_forms(name):
    words = name.lower().split()
    return {" ".join(words), "-".join(words), "".join(words), "_".join(words)}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own response cache, so one test's answers never serve another's."""
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))


def test_masked_descriptions_reach_the_meta_prompt_and_no_class_name_does(tmp_path):
    llm = ScriptedLLM([ANSWER])
    optimize(config(), tmp_path / "run", backends=backends(llm))
    written = [json.loads(line) for line in (tmp_path / "run" / "descriptions.jsonl").read_text().splitlines()]
    assert written and all(d["masked"] >= 1 for d in written)
    prompt = "\n".join(content for request in llm.requests for _, content in request.messages)
    # the descriptions the captioner wrote reach the LLM, with the class replaced by the domain word
    assert "hanging on a rail" in prompt and "folded on a bright table" in prompt and "looks worn" in prompt
    assert "clothing item" in prompt
    lowered = prompt.lower()
    for name in FakeDataset().info.classnames:
        for form in class_name_forms(name):
            assert form not in lowered, f"class name {form!r} reached the LLM"


def test_without_a_captioner_the_prompt_has_no_description_section(tmp_path):
    llm = ScriptedLLM([ANSWER])
    optimize(config(), tmp_path / "run", backends=backends(llm, captioner=False))
    prompt = "\n".join(content for request in llm.requests for _, content in request.messages)
    assert "hanging on a rail" not in prompt
    assert not (tmp_path / "run" / "descriptions.jsonl").exists()


def test_an_over_long_candidate_is_a_recorded_rejection_and_the_run_goes_on(tmp_path):
    llm = ScriptedLLM([f"1. {TOO_LONG}\n2. a plain photo of a <CLASS>.\n3. a studio photo of the <CLASS>."])
    result = optimize(config(steps=1), tmp_path / "run", backends=backends(llm, captioner=False))
    run = tmp_path / "run"
    steps = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    assert steps[-1]["step"] == 1 and steps[-1]["rejected"] == {"over the VLM's token limit": 1}
    calls = [json.loads(line) for line in (run / "llm_calls.jsonl").read_text().splitlines()]
    assert calls[0]["rejected"] == {"over the VLM's token limit": 1} and calls[0]["valid"] == 2
    history = [json.loads(line)["template"] for line in (run / "history.jsonl").read_text().splitlines()]
    assert "a plain photo of a {}." in history and not any("very very" in t for t in history)
    assert result.complete and result.rejections == {"over the VLM's token limit": 1}


def _tokens_and_hits(run):
    calls = [json.loads(line) for line in (run / "llm_calls.jsonl").read_text().splitlines()]
    return sum(c["tokens_in"] + c["tokens_out"] for c in calls), [c["cache_hit"] for c in calls]


def test_a_second_identical_run_is_served_by_the_response_cache(tmp_path):
    first = optimize(config(), tmp_path / "a", backends=backends(ScriptedLLM([ANSWER, ANSWER.upper()]), captioner=False))
    llm = ScriptedLLM([ANSWER, ANSWER.upper()])
    second = optimize(config(), tmp_path / "b", backends=backends(llm, captioner=False))
    tokens, hits = _tokens_and_hits(tmp_path / "b")
    assert first.llm_tokens_in > 0 and tokens == 0 and hits and all(hits)
    assert second.llm_tokens_in == second.llm_tokens_out == 0 and llm.requests == []
    assert second.best_template == first.best_template


@pytest.mark.parametrize("setting", [
    {"temperature": 0.3}, {"top_p": 0.5}, {"repeat_penalty": 1.05}, {"max_tokens": 200}, {"constrained": False},
])
def test_any_changed_sampling_setting_misses_the_cache(tmp_path, setting):
    optimize(config(), tmp_path / "a", backends=backends(ScriptedLLM([ANSWER]), captioner=False))
    changed = config().updated(llm=setting)
    llm = ScriptedLLM([ANSWER])
    optimize(changed, tmp_path / "b", backends=backends(llm, captioner=False))
    tokens, hits = _tokens_and_hits(tmp_path / "b")
    assert tokens > 0 and not any(hits) and len(llm.requests) == len(hits)


def _variant(value):
    """A different value of the same kind, for every field an LLMRequest has."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if value is None:
        return 7
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return value + (("user", "more"),)
    if isinstance(value, tuple):
        return value + ("###",)
    raise AssertionError(f"no variant for {value!r}")


def test_the_cache_key_changes_with_every_field_of_a_request():
    base = LLMRequest(messages=(("user", "hi"),), seed=1, repeat_penalty=1.1, constraint=OutputConstraint(n=3))
    keys = {request_key(base, "m")}
    names = []
    for f in dataclasses.fields(LLMRequest):
        value = getattr(base, f.name)
        if f.name == "constraint":
            other = dataclasses.replace(base, constraint=OutputConstraint(n=4))
            keys.add(request_key(dataclasses.replace(base, constraint=None), "m"))
        else:
            other = dataclasses.replace(base, **{f.name: _variant(value)})
        keys.add(request_key(other, "m"))
        names.append(f.name)
    assert {"max_tokens", "stop", "seed", "temperature", "top_p", "repeat_penalty", "sample_index"} <= set(names)
    # one key per field varied, plus the base and the unconstrained request: all distinct
    assert len(keys) == len(names) + 2
    assert request_key(base, "m") != request_key(base, "other-model")


def test_the_same_request_gives_the_same_key():
    a = LLMRequest(messages=(("user", "hi"),), stop=("\n\n",), max_tokens=64)
    b = LLMRequest(messages=(("user", "hi"),), stop=("\n\n",), max_tokens=64)
    assert request_key(a, "m") == request_key(b, "m")
    assert re.fullmatch(r"[0-9a-f]{64}", request_key(a, "m"))
