"""IPO's meta-prompt levers, end to end through ``optimize()`` with a scripted LLM: the word
limit (stated, enforced by rejection, the output grammar's cap following it), the ``edit``
closing instruction, the worst templates shown as what to avoid, and description shares."""

from __future__ import annotations

import json

import pytest
from helpers.captioners import ClassNamingCaptioner

from ipo_vlm.config import preset
from ipo_vlm.errors import ConfigError
from ipo_vlm.methods.ipo.proposer import CHARS_PER_WORD
from ipo_vlm.prompting import MetaPromptInputs, parse_candidates, render_meta_prompt, word_count
from ipo_vlm.prompting import text as T
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.scored import ScoredTemplate
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

SHORT = "a plain photo of a <CLASS>."  # 6 words
LONG = "a plain photo of a <CLASS> hanging on a rail in a shop window."  # 14 words


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))


def run(tmp_path, answers, **optimize_settings):
    settings = {"steps": 2, "candidates": 3, "memory_size": 6, "select_on": "train", "control": "none", "ensemble": 0,
                **optimize_settings}
    config = preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"}, optimize=settings)
    llm = ScriptedLLM(answers)
    ds = FakeDataset()
    from ipo_vlm.captioner.base import NoCaptioner

    result = optimize(config, tmp_path / "run", backends=Backends(ds, FakeVLM(ds.info.classnames), llm, NoCaptioner()))
    return result, llm


def prompt_of(request) -> str:
    return "\n".join(content for _, content in request.messages)


def test_word_count_counts_the_placeholder_as_one_word():
    assert word_count("a photo of a {}.") == 5
    assert word_count("{}") == 1 and word_count("a {}-shaped thing") == 4


def test_the_word_limit_rejects_whole_templates_and_never_cuts_them():
    answer = f"1. {SHORT}\n2. {LONG}\n3. a <CLASS>."
    parsed = parse_candidates(answer, max_words=6)
    assert parsed.valid == ["a plain photo of a {}.", "a {}."]
    assert [reason for _, reason in parsed.rejected] == ["over the word limit"]
    assert parse_candidates(answer, max_words=None).valid[1] == LONG.replace("<CLASS>", "{}")


def test_a_run_with_a_word_limit_states_it_records_rejections_and_bounds_the_grammar_by_words(tmp_path):
    answer = f"1. {SHORT}\n2. {LONG}\n3. a studio photo of the <CLASS>."
    result, llm = run(tmp_path, [answer, answer.upper()], max_words=8)
    assert "at most 8 words" in prompt_of(llm.requests[0])
    assert llm.requests[0].constraint.max_chars == 8 * CHARS_PER_WORD and llm.requests[0].constraint.max_words == 8
    steps = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert steps[1]["rejected"] == {"over the word limit": 1}
    history = [json.loads(line)["template"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert not any("rail" in t.lower() for t in history)
    assert result.rejections["over the word limit"] >= 1


def test_without_a_word_limit_nothing_is_said_and_the_grammar_keeps_its_cap(tmp_path):
    answer = f"1. {SHORT}\n2. {LONG}\n3. a studio photo of the <CLASS>."
    _, llm = run(tmp_path, [answer, answer.upper()])
    assert "words." not in prompt_of(llm.requests[0]) and llm.requests[0].constraint.max_chars == 300
    assert llm.requests[0].constraint.max_words is None
    history = [json.loads(line)["template"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert any("rail" in t for t in history)


def test_the_edit_style_asks_for_edits_of_the_best_templates(tmp_path):
    _, paper = run(tmp_path / "a", [f"1. {SHORT}"])
    _, edit = run(tmp_path / "b", [f"1. {SHORT}"], meta_prompt="edit")
    assert "editing one of the best templates" in prompt_of(edit.requests[0])
    assert "editing" not in prompt_of(paper.requests[0])
    assert "Vary the wording" in prompt_of(paper.requests[0])


def test_the_worst_templates_are_shown_to_avoid_and_the_memory_is_not_repeated_there(tmp_path):
    first = "1. a <CLASS>.\n2. a studio photo of the <CLASS>.\n3. a blurry photo of a <CLASS>."
    second = "1. a worn <CLASS>.\n2. a photo of the big <CLASS>.\n3. a photo of one <CLASS>."
    _, llm = run(tmp_path, [first, second], show_worst=2, memory_size=2)
    assert T.WORST_HEADER not in prompt_of(llm.requests[0])  # nothing scored but the seed yet, and it is in memory
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    after_step1 = [h for h in history if h["step"] <= 1]
    ranked = sorted(after_step1, key=lambda h: (-h["train_acc"], h["train_loss"]))
    held, rest = ranked[:2], ranked[2:]
    worst = sorted(rest, key=lambda h: (h["train_acc"], -h["train_loss"]))[:2]
    prompt = prompt_of(llm.requests[1])
    section = prompt.split(T.WORST_HEADER)[1].split("\n\n")[0]
    shown = [line for line in section.splitlines() if line.strip()]
    assert shown == [w["template"].replace("{}", "<CLASS>") for w in worst]
    for h in held:
        assert h["template"].replace("{}", "<CLASS>") not in section


def test_bad_lever_settings_are_config_errors():
    with pytest.raises(ConfigError, match="meta_prompt"):
        preset("demo").updated(optimize={"meta_prompt": "freestyle"})
    with pytest.raises(ConfigError, match="max_words"):
        preset("demo").updated(optimize={"max_words": 1})
    with pytest.raises(ConfigError, match="show_worst"):
        preset("demo").updated(optimize={"show_worst": -1})
    with pytest.raises(ConfigError, match="style"):
        MetaPromptInputs(domain="pet", style="freestyle")


def test_the_settings_know_exactly_the_styles_the_renderer_has():
    from ipo_vlm import config, prompting

    assert set(config.META_PROMPT_STYLES) == set(prompting.META_PROMPT_STYLES)


def test_the_paper_preset_keeps_the_papers_meta_prompt():
    o = preset("paper").optimize
    assert (o.meta_prompt, o.show_worst, o.max_words) == ("paper", 0, None)
    messages = render_meta_prompt(MetaPromptInputs(domain="pet", memory=[ScoredTemplate("a photo of a {}.", 0.5, 1.0)]))
    assert messages[1][1].endswith(T.CLOSING_INSTRUCTION.replace("{n}", "5").replace("{placeholder}", "<CLASS>"))


class MediumCaptioner(ClassNamingCaptioner):
    """Describes three of every four images as sketches and the rest as lying on a table, each
    naming its class (masked before the LLM or the seeds see it)."""

    model_id = "medium-captioner"

    def sentence(self, name, index):
        return f"An {name} on a table." if index % 4 == 3 else f"A sketch of a {name}."


def test_description_seeds_join_step_0_and_the_control_starts_from_the_same_seeds(tmp_path):
    answer = "1. a plain photo of a <CLASS>.\n2. a studio photo of the <CLASS>.\n3. a worn <CLASS>."
    config = preset("demo").updated(
        data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "medium"},
        optimize={"steps": 1, "candidates": 3, "memory_size": 6, "select_on": "train", "control": "random",
                  "ensemble": 0, "description_seeds": 2},
    )
    ds = FakeDataset()
    optimize(config, tmp_path / "run", backends=Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM([answer]),
                                                          MediumCaptioner(ds.info.classnames)))
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines()]  # noqa: E731
    run_seeds = [h["template"] for h in read(tmp_path / "run" / "history.jsonl") if h["step"] == 0]
    # the most shared description first; the class word back to the placeholder, "an" to "a"
    assert run_seeds == ["a photo of a {}.", ds.info.template, "A sketch of a {}.", "A {} on a table."]
    control = read(tmp_path / "run" / "control" / "history.jsonl")
    # the fair control: the same seeds with the same scores; only the proposals differ
    run_step0 = [(h["template"], h["train_acc"], h["train_loss"]) for h in read(tmp_path / "run" / "history.jsonl") if h["step"] == 0]
    assert [(h["template"], h["train_acc"], h["train_loss"]) for h in control if h["step"] == 0] == run_step0
    assert {h["source"] for h in control if h["step"] > 0} == {"random"}
    assert not {h["template"] for h in control if h["step"] > 0} & set(run_seeds)


def test_templates_from_descriptions_skip_what_cannot_be_a_template():
    from ipo_vlm.prompting.seeds import template_from_description, templates_from_descriptions

    assert template_from_description("Two clothing items on a rail.", "clothing item") is None  # plural
    assert template_from_description("a clothing-item rack", "clothing item") is None
    assert template_from_description("A dress {0} on a clothing item.", "clothing item") is None  # stray braces
    assert template_from_description("An animal lying on grass.", "animal") == "A {} lying on grass."
    texts = ["a sketch of a clothing item.", "A SKETCH of a Clothing Item.", "nothing here",
             "a long long long long long long long photo of a clothing item.", "a clothing item."]
    assert templates_from_descriptions(texts, "clothing item", k=5, max_words=6) == ["a sketch of a {}.", "a {}."]
    assert templates_from_descriptions(texts, "clothing item", k=1) == ["a sketch of a {}."]
    with pytest.raises(ConfigError, match="description_seeds"):
        preset("demo").updated(optimize={"description_seeds": -1})


class PhotoOfClothingCaptioner(ClassNamingCaptioner):
    """Says what the fake VLM's images hold: the class, "photo" and "clothing"."""

    model_id = "photo-of-clothing-captioner"

    def sentence(self, name, index):
        return f"Photo, clothing, {name}."


def test_a_kept_description_seed_is_not_called_the_baseline(tmp_path, capsys):
    from ipo_vlm.cli.optimize import print_result

    # long candidates full of words the fake VLM's images lack: the seed stays the best
    answer = ("1. a <CLASS> beside seven wooden garden tools, two buckets and a ladder.\n"
              "2. an old map of harbours, rivers and mountains behind a <CLASS>.\n"
              "3. a <CLASS> under rain, thunder, wind and falling autumn leaves.")
    config = preset("demo").updated(
        data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "photo-of-clothing"},
        optimize={"steps": 1, "candidates": 3, "memory_size": 6, "select_on": "train", "control": "none",
                  "ensemble": 0, "description_seeds": 1},
    )
    ds = FakeDataset()
    vlm = FakeVLM(ds.info.classnames, noise=0.5)  # little noise: the words decide
    result = optimize(config, tmp_path / "run", backends=Backends(ds, vlm, ScriptedLLM([answer]),
                                                                   PhotoOfClothingCaptioner(ds.info.classnames)))
    assert (result.best_template, result.best_source, result.best_step) == ("Photo, clothing, {}.", "seed", 0)
    assert not result.baseline_kept
    print_result(result, tmp_path / "run")
    printed = capsys.readouterr().out
    assert "The selected template is a seed made from the image descriptions" in printed and "a baseline seed" not in printed
    assert result.seeds_alone["template"] == "Photo, clothing, {}." and result.seeds_alone["kind"] == "description"
    assert result.seeds_alone["hm"] == pytest.approx(result.hm)


def test_an_llm_template_that_names_a_training_class_is_rejected_and_a_novel_name_is_not_looked_for(tmp_path):
    # base classes: red shirt, blue coat, green hat; novel: white shoe, black bag, grey scarf
    answer = "1. a photo of a <CLASS> beside a Blue-Coat.\n2. a <CLASS> worn with a grey scarf.\n3. a studio photo of the <CLASS>."
    run(tmp_path, [answer, "1. a <CLASS> on red shirts.\n2. a <CLASS> in a coat shop.\n3. a bright photo of a <CLASS>."])
    steps = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert steps[1]["rejected"] == {"names a training class": 1}
    assert steps[2]["rejected"] == {"names a training class": 1}  # a plural, in other case
    scored = {json.loads(line)["template"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()}
    assert {"a {} worn with a grey scarf.", "a {} in a coat shop.", "a bright photo of a {}."} <= scored
    assert not any("blue" in t.lower() or "shirt" in t for t in scored)
