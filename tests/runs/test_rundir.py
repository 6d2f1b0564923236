"""The run directory: refusing to overwrite, resume checks, torn lines, token totals."""

from __future__ import annotations

import json

import pytest

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.jsonio import append_jsonl
from ipo_vlm.methods.base import StepRecord
from ipo_vlm.runs.rundir import RunDir, config_differences, package_versions
from ipo_vlm.scored import ScoredTemplate

CFG = {"data": {"dataset": "demo", "seed": 1}, "optimize": {"steps": 3, "max_llm_tokens": None}, "llm": {"use_cache": True}}


def test_fresh_run_writes_config_with_versions_and_refuses_a_second_start(tmp_path):
    rd = RunDir(tmp_path / "run")
    assert rd.prepare(CFG, resume=False, prompt_version="v1") is None
    written = json.loads(rd.config_path.read_text())
    assert written["config"] == CFG and written["prompt_version"] == "v1"
    assert written["versions"]["python"] and written["versions"]["numpy"]
    # nothing was computed yet: a second fresh start may begin again
    assert RunDir(tmp_path / "run").prepare({**CFG, "data": {"dataset": "demo", "seed": 2}}, resume=False, prompt_version="v1") is None
    assert json.loads(rd.config_path.read_text())["config"]["data"]["seed"] == 2
    rd.append_step(StepRecord(step=0))
    with pytest.raises(ConfigError, match="--resume"):
        RunDir(tmp_path / "run").prepare(CFG, resume=False, prompt_version="v1")


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        RunDir(f).prepare(CFG, resume=False, prompt_version="v1")


def test_resume_allows_steps_budget_and_cache_changes_only(tmp_path):
    rd = RunDir(tmp_path)
    rd.prepare(CFG, resume=False, prompt_version="v1")
    raised = {**CFG, "optimize": {"steps": 10, "max_llm_tokens": 5000}, "llm": {"use_cache": False}}
    assert rd.prepare(raised, resume=True, prompt_version="v1") == CFG
    assert rd.read_config()["config"] == raised
    other_seed = {**raised, "data": {"dataset": "demo", "seed": 2}}
    with pytest.raises(ConfigError, match="data.seed"):
        rd.prepare(other_seed, resume=True, prompt_version="v1")
    assert config_differences(CFG, other_seed) == ["data.seed", "llm.use_cache", "optimize.max_llm_tokens", "optimize.steps"]


def test_resume_repairs_torn_lines_so_new_appends_stay_valid(tmp_path):
    rd = RunDir(tmp_path)
    rd.prepare(CFG, resume=False, prompt_version="v1")
    rd.append_history(ScoredTemplate("a {}", 0.5, 1.0, step=0, source="seed"))
    with open(rd.history_path, "a") as f:
        f.write('{"step": 1, "templ')  # killed mid-write
    rd.prepare(CFG, resume=True, prompt_version="v1")
    rd.append_history(ScoredTemplate("b {}", 0.6, 0.9, step=1, source="llm", llm_call_id="x"))
    lines = rd.history_path.read_text().splitlines()
    assert [json.loads(l)["template"] for l in lines] == ["a {}", "b {}"]


def test_steps_and_tokens_are_read_back(tmp_path):
    rd = RunDir(tmp_path)
    rd.prepare(CFG, resume=False, prompt_version="v1")
    assert rd.last_step_done() == -1 and rd.llm_tokens_spent() == (0, 0)
    rd.append_step(StepRecord(step=0))
    rd.append_step(StepRecord(step=1, llm_calls=2, returned=7, valid=5, rejected={"no placeholder": 2}, tokens_in=300, tokens_out=80))
    assert rd.last_step_done() == 1 and rd.steps()[1].rejected == {"no placeholder": 2}
    append_jsonl(rd.llm_calls_path, {"id": "a", "tokens_in": 300, "tokens_out": 80})
    append_jsonl(rd.llm_calls_path, {"id": "b", "tokens_in": 0, "tokens_out": 0, "cache_hit": True})
    append_jsonl(rd.llm_calls_path, {"id": "c", "tokens_in": 310, "tokens_out": 90})
    assert rd.llm_tokens_spent() == (610, 170)


def test_result_round_trip_and_package_versions(tmp_path):
    rd = RunDir(tmp_path)
    assert rd.read_result() is None
    rd.write_result({"best_template": "a {}", "hm": 0.5})
    assert rd.read_result() == {"best_template": "a {}", "hm": 0.5}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert "transformers" in package_versions()
