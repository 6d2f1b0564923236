"""The meta-prompt levers that give the LLM what a random sampler cannot use: ``guidance`` (what
makes a template work) and ``reflect`` (the best template's errors on the training images, told
through their masked descriptions and the confused class pairs), end to end with a scripted LLM."""

from __future__ import annotations

import json

import pytest
from helpers.captioners import ClassNamingCaptioner

from ipo_vlm.config import preset
from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting import MetaPromptInputs, render_meta_prompt
from ipo_vlm.prompting import text as T
from ipo_vlm.prompting.reflect import Reflection, reflect, render_reflection
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.scored import ScoredTemplate
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

ANSWER = "1. a plain photo of a <CLASS>.\n2. a studio photo of the <CLASS>.\n3. a worn <CLASS>."
MEMORY = [ScoredTemplate("a photo of a {}.", 0.5, 1.2)]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))


def user_text(**inputs) -> str:
    return render_meta_prompt(MetaPromptInputs(domain="clothing item", memory=MEMORY, **inputs))[1][1]


def test_guidance_none_renders_the_meta_prompt_as_before_and_each_variant_adds_its_text():
    plain = user_text()
    assert T.GUIDANCE_LOOKS.strip() not in plain and "How a template works" not in plain
    looks = user_text(guidance="looks")
    assert looks == plain + T.GUIDANCE_LOOKS_UNDESCRIBED  # one sentence after the closing instruction
    mechanism = user_text(guidance="mechanism")
    # the paragraph sits right after the task (the part that stays the same between steps)
    task_end = plain.index("\n\n")
    assert mechanism.startswith(plain[:task_end] + "\n\nHow a template works: CLIP puts each class name")
    assert "<CLASS>" in mechanism.split("\n\n")[1] and "{placeholder}" not in mechanism
    both = user_text(guidance="both")
    assert both.endswith(T.GUIDANCE_LOOKS_UNDESCRIBED) and "How a template works" in both
    with pytest.raises(ConfigError, match="unknown guidance 'wise'"):
        MetaPromptInputs(domain="x", guidance="wise")


def test_reflection_counts_errors_keeps_the_most_shared_descriptions_and_hides_class_names():
    names = ["shirt", "coat", "bag"]
    truth = [0, 0, 0, 1, 1, 2, 2, 2]
    predicted = [1, 1, 0, 0, 1, 2, 1, 2]
    descs = ["a dark photo.", "a dark photo.", "fine", "a side view.", "ok", "ok", "a dark photo.", ""]
    r = reflect(truth, predicted, descs, names, k=2)
    assert (r.total, r.wrong) == (8, 4)
    assert r.descriptions == (("a dark photo.", 3), ("a side view.", 1))
    assert r.pairs == (("shirt", "coat", 2), ("coat", "shirt", 1), ("bag", "coat", 1))
    text = render_reflection(r)
    assert text.splitlines()[0].startswith("Under the best template so far, 4 of 8 training images are classified wrongly.")
    assert "- a dark photo. (3 of them)" in text and "- a side view." in text
    assert "(one class taken for another): 2, 1, 1, of 4." in text
    assert not any(name in text for name in names)
    named = render_reflection(reflect(truth, predicted, descs, names, k=0, named=True))
    assert "shirt taken for coat (2); coat taken for shirt (1); bag taken for coat (1)" in named and "- " not in named
    assert render_reflection(Reflection(total=8, wrong=0)) == T.REFLECT_NONE


def test_train_predictions_agree_with_the_scored_accuracy(tmp_path):
    from ipo_vlm.data import make_split
    from ipo_vlm.engine.task import Task

    ds = FakeDataset()
    task = Task(ds, make_split(ds, 4, 1), FakeVLM(ds.info.classnames))
    for template in ("a photo of a {}.", "a worn {}."):
        truth, predicted = task.train_predictions(template)
        (scored,) = task.score_train([template])
        assert len(truth) == len(task.split.train)
        assert sum(t == p for t, p in zip(truth, predicted)) / len(truth) == pytest.approx(scored.accuracy)


class SketchCaptioner(ClassNamingCaptioner):
    model_id = "sketch-captioner"

    def sentence(self, name, index):
        return f"A sketch of a {name}, seen from the side." if index % 2 else f"A {name} on a table."


def test_a_run_with_reflection_and_guidance_shows_the_best_templates_errors_and_records_the_settings(tmp_path):
    config = preset("demo").updated(
        data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "sketch"},
        optimize={"steps": 2, "candidates": 3, "memory_size": 6, "select_on": "train", "control": "none", "ensemble": 0,
                  "guidance": "mechanism", "reflect": 2},
    )
    ds = FakeDataset()
    llm = ScriptedLLM([ANSWER, "1. a folded <CLASS>.\n2. a bright photo of a <CLASS>."])
    vlm = FakeVLM(ds.info.classnames, noise=2.0)  # noisy: the best template still misclassifies images
    optimize(config, tmp_path / "run", backends=Backends(ds, vlm, llm, SketchCaptioner(ds.info.classnames)))
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["optimize"]
    assert (recorded["guidance"], recorded["reflect"], recorded["reflect_class_names"]) == ("mechanism", 2, False)
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    seeds = [h for h in history if h["step"] == 0]
    best = max(seeds, key=lambda h: (h["train_acc"], -h["train_loss"]))
    n = 4 * len(json.loads((tmp_path / "run" / "split.json").read_text())["base_classnames"])
    wrong = round((1 - best["train_acc"]) * n)
    first = llm.requests[0].messages[1][1]
    assert "How a template works" in first
    assert f"Under the best template so far, {wrong} of {n} training images are classified wrongly." in first
    block = first[first.index("Under the best template"):].split("\n\n")[0]
    assert "clothing item" in block and not any(name in block for name in ds.info.classnames)
    assert sum(line.startswith("- ") for line in block.splitlines()) <= 2


@pytest.mark.parametrize("bad", [{"guidance": "wise"}, {"reflect": -1}, {"reflect_class_names": "yes"}])
def test_bad_lever_settings_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        preset("demo").updated(optimize=bad)


def test_the_dry_run_prices_the_guidance_and_the_reflection():
    from ipo_vlm.methods.ipo.dryrun import dry_run_plan

    base = preset("demo").updated(optimize={"steps": 4})
    plain = dry_run_plan(base).first_prompt_tokens
    guided = dry_run_plan(base.updated(optimize={"guidance": "mechanism"})).first_prompt_tokens
    reflecting = dry_run_plan(base.updated(optimize={"reflect": 4})).first_prompt_tokens
    assert guided > plain + 60 and reflecting > plain + 4 * 10


def test_the_looks_sentence_points_to_descriptions_only_when_there_are_some():
    described = user_text(guidance="looks", descriptions=["a photo of a clothing item."])
    assert described.endswith(T.GUIDANCE_LOOKS) and "descriptions above" in described
    assert user_text(guidance="looks").endswith(T.GUIDANCE_LOOKS_UNDESCRIBED)
    assert "descriptions above" not in user_text(guidance="both")
