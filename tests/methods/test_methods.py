"""Methods beside IPO, through ``optimize()`` on the torch-free fakes: random search (no LLM,
seeded, resumable), the hand-crafted template, CLIP's 80-template ensemble, the random-search
control and top-K ensembles in the result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ipo_vlm.captioner.base import NoCaptioner
from ipo_vlm.config import preset
from ipo_vlm.errors import ConfigError
from ipo_vlm.methods import METHODS, create_method
from ipo_vlm.prompting.bank import clip_imagenet_templates
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

ANSWER = "1. a plain photo of a <CLASS>.\n2. a studio photo of the <CLASS>.\n3. a worn <CLASS>, a kind of clothing."


class Refusing:
    """An LLM that must not be called."""

    model_id = "refusing"

    def complete(self, request):
        raise AssertionError("this method must not call the LLM")


def config(method="ipo", **optimize_settings):
    settings = {"steps": 3, "candidates": 4, "memory_size": 6, "select_on": "train", **optimize_settings}
    return preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"},
                                  optimize=settings, method=method)


def backends(llm=None):
    ds = FakeDataset()
    return Backends(ds, FakeVLM(ds.info.classnames), llm or Refusing(), NoCaptioner())


def history(run):
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))


def test_the_built_in_methods_are_registered_and_an_unknown_one_lists_them():
    assert {"ipo", "random", "handcrafted", "ensemble80"} <= set(METHODS.schemes())
    with pytest.raises(ConfigError, match=r"unknown method 'nope'; known: .*ensemble80.*handcrafted.*ipo.*random"):
        create_method("nope")


def test_random_search_spends_no_tokens_and_draws_generic_templates(tmp_path):
    result = optimize(config("random"), tmp_path / "run", backends=backends())
    records = history(tmp_path / "run")
    drawn = [r for r in records if r["source"] == "random"]
    assert len(drawn) == 3 * 4 and result.llm_tokens_in == result.llm_tokens_out == 0
    assert not (tmp_path / "run" / "llm_calls.jsonl").exists()
    for r in drawn:
        assert r["template"].count("{}") == 1
        assert not any(name in r["template"].lower() for name in FakeDataset().info.classnames)
    assert result.method == "random" and result.complete


def test_random_search_is_seeded_and_resumes_to_the_same_draws(tmp_path):
    from helpers import Killed, kill_at

    optimize(config("random"), tmp_path / "a", backends=backends())
    with pytest.raises(Killed):
        optimize(config("random"), tmp_path / "b", backends=backends(), hook=kill_at("candidate", 6))
    optimize(config("random"), tmp_path / "b", resume=True, backends=backends())
    other_seed = config("random").updated(data={"seed": 2})
    optimize(other_seed, tmp_path / "c", backends=backends())
    a, b, c = (history(tmp_path / n) for n in "abc")
    assert [r["template"] for r in a] == [r["template"] for r in b]
    assert [r["template"] for r in a if r["source"] == "random"] != [r["template"] for r in c if r["source"] == "random"]


def test_handcrafted_scores_the_datasets_template_and_nothing_else(tmp_path):
    result = optimize(config("handcrafted"), tmp_path / "run", backends=backends())
    info = FakeDataset().info
    assert result.best_template == info.template and result.complete and result.steps_done == 0
    assert (result.base_acc, result.novel_acc) == (result.handcrafted.base_acc, result.handcrafted.novel_acc)
    assert not result.baseline_kept


def test_ensemble80_headline_is_the_ensemble_of_clips_templates(tmp_path):
    result = optimize(config("ensemble80"), tmp_path / "run", backends=backends())
    templates = clip_imagenet_templates()
    assert len(templates) == 80
    row = result.ensembles[0]
    assert row["k"] == 80 and row["templates"] == templates
    assert (result.base_acc, result.novel_acc, result.hm) == (row["base_acc"], row["novel_acc"], row["hm"])
    assert result.best_template in templates


def test_top_k_ensemble_matches_a_hand_computed_one(tmp_path):
    result = optimize(config("random", ensemble=3), tmp_path / "run", backends=backends())
    (row,) = result.ensembles
    assert row["k"] == 3 and len(row["templates"]) == 3
    # the ensemble's base accuracy, recomputed from the fake VLM's own encoders
    ds, vlm = FakeDataset(), FakeVLM(FakeDataset().info.classnames)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    base = split["base_classnames"]
    tests = [s for s in ds.split("test") if s.classname in base]
    feats = vlm.encode_images([ds.open_image(s) for s in tests])
    emb = sum(vlm.encode_texts([t.replace("{}", c) for c in base]) for t in row["templates"])
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    predicted = (feats @ emb.T).argmax(axis=1)
    expected = np.mean([base[p] == s.classname for p, s in zip(predicted, tests)])
    assert row["base_acc"] == pytest.approx(expected)


def test_the_random_control_runs_beside_ipo_and_the_difference_is_reported(tmp_path):
    result = optimize(config("ipo", control="random"), tmp_path / "run", backends=backends(ScriptedLLM([ANSWER])))
    control = result.control
    assert control["method"] == "random" and control["templates_scored"] >= 2 + 3
    assert control["diff_hm"] == pytest.approx(result.hm - control["hm"])
    control_history = history(tmp_path / "run" / "control")
    assert {r["source"] for r in control_history} == {"seed", "random"}
    # the control never enters the method's own history
    assert "random" not in {r["source"] for r in history(tmp_path / "run")}
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["control"]["best_template"] == control["best_template"]
    best = max(control_history, key=lambda r: (r["train_acc"], -r["train_loss"]))
    assert (control["best_source"], control["best_step"]) == (best["source"], best["step"])


def test_the_seeds_alone_row_is_the_best_step_0_template_by_the_runs_rule(tmp_path, capsys):
    from ipo_vlm.cli.optimize import print_result

    result = optimize(config("ipo", control="random"), tmp_path / "run", backends=backends(ScriptedLLM([ANSWER])))
    seeds = [r for r in history(tmp_path / "run") if r["step"] == 0]
    best_seed = max(seeds, key=lambda r: (r["train_acc"], -r["train_loss"]))
    assert result.seeds_alone["template"] == best_seed["template"] and result.seeds_alone["kind"] == "baseline"
    ds = FakeDataset()
    assert 0.0 <= result.seeds_alone["hm"] <= 1.0 and result.seeds_alone["template"] in ("a photo of a {}.", ds.info.template)
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["seeds_alone"] == result.seeds_alone
    print_result(result, tmp_path / "run")
    printed = capsys.readouterr().out
    rows = [line.split()[0:2] for line in printed.splitlines()]
    assert ["seeds", "alone"] in rows and ["random", "control"] in rows
    assert f"ipo - seeds alone: {100 * (result.hm - result.seeds_alone['hm']):+.2f}" in printed
    if result.best_source == "llm":
        assert f"proposed by the LLM at step {result.best_step}" in printed
    else:
        assert "The selected template is a baseline seed" in printed
    if result.control["best_source"] == "random":
        assert f"drew at random (step {result.control['best_step']})" in printed
    else:
        assert "The random control kept a baseline seed" in printed


def test_origin_sentences_name_the_llm_a_description_seed_and_the_controls_draw():
    from ipo_vlm.cli.optimize import origin_sentences

    base = {"baseline": {"template": "a photo of a {}."}, "handcrafted": {"template": "a photo of a {}, a type of clothing."},
            "select_on": "train", "method": "ipo"}
    llm = {**base, "best_source": "llm", "best_step": 3, "best_template": "a blurry photo of a {}.",
           "control": {"best_source": "random", "best_step": 2, "best_template": "a dim shot of a {}."}}
    assert origin_sentences(llm) == [
        "The selected template was proposed by the LLM at step 3; it beat every seed by the selection rule (train).",
        "The random control selected a template it drew at random (step 2)."]
    seed = {**base, "best_source": "seed", "best_step": 0, "best_template": "a sketch of a {}.",
            "control": {"best_source": "seed", "best_step": 0, "best_template": "a sketch of a {}."}}
    assert origin_sentences(seed) == [
        "The selected template is a seed made from the image descriptions, scored before any proposal: none of the "
        "templates the LLM proposed beat it by the selection rule (train).",
        "The random control kept a seed made from the image descriptions (the same one)."]
    assert origin_sentences({**base, "method": "handcrafted", "best_source": "seed"}) == []


@pytest.mark.parametrize("bad", [{"ensemble": -1}, {"ensemble": 7}, {"control": "llm"}, {"select_on": "best"}])
def test_bad_method_settings_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        config(**bad)


def test_trainval_selection_pools_train_and_val(tmp_path):
    result = optimize(config("random", select_on="trainval", memory_size=20), tmp_path / "run", backends=backends())
    records = history(tmp_path / "run")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    n_train, n_val = sum(split["counts"]["train"]), sum(split["counts"]["val"])
    pooled = {r["template"]: (r["train_acc"] * n_train + r["val_acc"] * n_val) / (n_train + n_val) for r in records}
    assert result.select_on == "trainval"
    assert pooled[result.best_template] == max(pooled[s] for s in pooled if s in {r["template"] for r in records})
