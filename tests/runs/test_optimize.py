"""``optimize()`` end to end on the torch-free fakes: kills at every crash-safe point, then a
resume whose result equals an uninterrupted run's; selection on val; user errors."""

from __future__ import annotations

import json

import pytest
from helpers import Killed, kill_at

from ipo_vlm.captioner.base import NoCaptioner
from ipo_vlm.config import preset
from ipo_vlm.errors import ConfigError
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

WORDS = ["photo", "clothing", "garment", "studio", "plain", "worn", "folded", "bright", "dark", "item", "picture", "close-up"]
ANSWERS = [
    "\n".join(f"{k + 1}. a {WORDS[(i + k) % 12]} {WORDS[(3 * i + 2 * k + 1) % 12]} of a <CLASS>." for k in range(4))
    for i in range(30)
]
TIMING = {"minutes"}


def config(**optimize_settings):
    settings = {"steps": 5, "candidates": 3, "memory_size": 6, "select_on": "train", **optimize_settings}
    return preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"}, optimize=settings)


def backends():
    ds = FakeDataset()
    return Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM(ANSWERS, model_id="scripted-test"), NoCaptioner())


def same(a, b):
    a, b = a.to_dict(), b.to_dict()
    return {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}


@pytest.fixture
def reference(tmp_path):
    return optimize(config(), tmp_path / "ref", backends=backends())


def test_result_fields_and_the_selected_template_is_the_true_best(tmp_path, reference):
    history = RunDir(tmp_path / "ref").history_records()
    best = max(history, key=lambda r: (r["train_acc"], -r["train_loss"]))
    assert reference.best_template == best["template"] and reference.best_train_acc == best["train_acc"]
    assert reference.steps_done == 5 and reference.complete
    assert {reference.baseline.template, reference.handcrafted.template} == {"a photo of a {}.", FakeDataset().info.template}
    # the per-call counts (written by the LLM session as each answer came back) agree with the
    # result's totals (summed from steps.jsonl); every scripted answer has exactly 4 lines
    calls = [json.loads(l) for l in (tmp_path / "ref" / "llm_calls.jsonl").read_text().splitlines()]
    assert reference.llm_calls == len(calls) >= 5
    assert reference.candidates_returned == sum(c["returned"] for c in calls) == 4 * len(calls)
    assert reference.candidates_valid == sum(c["valid"] for c in calls)
    assert 0 < reference.valid_rate <= 1
    per_step: dict[int, int] = {}
    for c in calls:
        per_step[c["step"]] = per_step.get(c["step"], 0) + c["valid"]
    assert len(history) == 2 + sum(min(3, v) for v in per_step.values())
    assert reference.llm_tokens_in > 0
    # the baselines were scored like any candidate, as seeds
    assert [r["source"] for r in history[:2]] == ["seed", "seed"]


@pytest.mark.parametrize("event,nth", [("config", 1), ("candidate", 1), ("candidate", 4), ("step_done", 2), ("result", 1)])
def test_kill_anywhere_then_resume_gives_the_uninterrupted_result(tmp_path, reference, event, nth):
    run = tmp_path / "run"
    with pytest.raises(Killed):
        optimize(config(), run, backends=backends(), hook=kill_at(event, nth))
    assert not (run / "result.json").exists()
    resumed = optimize(config(), run, resume=True, backends=backends())
    assert same(resumed, reference)
    for path in run.iterdir():
        for line in path.read_text().splitlines() if path.suffix == ".jsonl" else []:
            json.loads(line)


def test_select_on_val_scores_candidates_on_val_and_picks_by_val(tmp_path):
    result = optimize(config(select_on="val"), tmp_path / "val", backends=backends())
    history = RunDir(tmp_path / "val").history_records()
    assert all("val_acc" in r for r in history)
    # the memory holds the top 6 by training score; among those the best on val wins
    memory = sorted(history, key=lambda r: (-r["train_acc"], r["train_loss"], r["step"]))[:6]
    expected = max(memory, key=lambda r: (r["val_acc"], -r["val_loss"], r["train_acc"], -r["train_loss"]))
    assert result.best_template == expected["template"]
    assert result.select_on == "val" and result.best_val_acc == expected["val_acc"]


def test_resume_with_a_changed_setting_is_refused_and_changes_nothing(tmp_path, reference):
    before = (tmp_path / "ref" / "history.jsonl").read_text()
    with pytest.raises(ConfigError, match="optimize.candidates"):
        optimize(config(candidates=2), tmp_path / "ref", resume=True, backends=backends())
    assert (tmp_path / "ref" / "history.jsonl").read_text() == before
