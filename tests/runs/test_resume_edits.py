"""What a resume may change, found even when the change is a hand edit of ``config.json``."""

from __future__ import annotations

import json

import pytest

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.jsonio import read_jsonl
from ipo_vlm.methods.base import StepRecord
from ipo_vlm.runs.rundir import RunDir

CFG = {"vlm": "demo:fashion", "data": {"dataset": "demo", "seed": 1},
       "optimize": {"steps": 3, "candidates": 5, "memory_size": 20, "max_llm_tokens": None}, "llm": {"use_cache": True}}


def _started(tmp_path) -> RunDir:
    rd = RunDir(tmp_path / "run")
    rd.prepare(CFG, resume=False, prompt_version="v1")
    rd.append_step(StepRecord(step=0))
    return rd


def _edit(rd: RunDir, section: str | None, key: str, value) -> dict:
    raw = json.loads(rd.config_path.read_text())
    (raw["config"][section] if section else raw["config"])[key] = value
    rd.config_path.write_text(json.dumps(raw, indent=2))
    return raw["config"]


@pytest.mark.parametrize("section, key, value", [(None, "vlm", "demo:fashion-shifted"), ("optimize", "memory_size", 3),
                                                 ("optimize", "candidates", 7)])
def test_a_hand_edit_of_what_the_records_depend_on_is_refused(tmp_path, section, key, value):
    rd = _started(tmp_path)
    edited = _edit(rd, section, key, value)
    # the resumed settings come from the edited file itself, so they agree with it: only the
    # fingerprints recorded when the run started can tell
    with pytest.raises(ConfigError, match=rf"edited by hand \(({section}\.)?{key}\)"):
        RunDir(rd.path).prepare(edited, resume=True, prompt_version="v1")
    assert not rd.resumes_path.exists()


def test_a_hand_edit_a_resume_may_make_is_recorded_in_resumes_jsonl(tmp_path):
    rd = _started(tmp_path)
    edited = _edit(rd, "optimize", "steps", 6)
    again = RunDir(rd.path)
    again.prepare(edited, resume=True, prompt_version="v1")
    (line,) = list(read_jsonl(rd.resumes_path))
    assert line["changes"] == {"optimize.steps": [None, 6]} and line["edited_in_config_json"] == ["optimize.steps"]
    assert again.read_config()["config"]["optimize"]["steps"] == 6


def test_a_run_recorded_before_fingerprints_still_resumes(tmp_path):
    rd = _started(tmp_path)
    raw = json.loads(rd.config_path.read_text())
    del raw["fingerprints"]
    rd.config_path.write_text(json.dumps(raw))
    assert RunDir(rd.path).prepare(CFG, resume=True, prompt_version="v1") == CFG
