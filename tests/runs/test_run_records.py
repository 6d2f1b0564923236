"""What a run records is never rewritten or lost: resumes append their changes, a finished run
is left alone, a cut history line is scored again, bad settings and corrupt images are found
before anything is written or any LLM token spent."""

from __future__ import annotations

import json

import pytest
from helpers import Killed, kill_at

from ipo_vlm.captioner.base import NoCaptioner
from ipo_vlm.config import preset, resolve_config
from ipo_vlm.errors import ConfigError, DataError
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

ANSWERS = [f"1. a {w} photo of a <CLASS>.\n2. a {w} picture of the <CLASS>.\n3. a {w} <CLASS>, a kind of clothing."
           for w in ("plain", "worn", "folded", "bright", "dark", "studio")]


def config(**optimize_settings):
    settings = {"steps": 3, "candidates": 3, "memory_size": 6, "select_on": "train", **optimize_settings}
    return preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"},
                                  optimize=settings, method="ipo")


def backends(dataset=None):
    ds = dataset or FakeDataset()
    return Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM(ANSWERS, model_id="scripted-records"), NoCaptioner())


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))


def test_resuming_a_finished_run_rewrites_nothing(tmp_path):
    run = tmp_path / "run"
    first = optimize(config(), run, backends=backends())
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    again = optimize(config(), run, resume=True, backends=backends())
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before and again.to_dict() == first.to_dict()


def test_extending_a_run_is_recorded_and_config_json_keeps_the_original(tmp_path):
    run = tmp_path / "run"
    optimize(config(), run, backends=backends())
    recorded = (run / "config.json").read_bytes()
    longer = optimize(config(steps=5), run, resume=True, backends=backends())
    assert (run / "config.json").read_bytes() == recorded
    (line,) = [json.loads(l) for l in (run / "resumes.jsonl").read_text().splitlines()]
    assert line["changes"] == {"optimize.steps": [3, 5]}
    assert longer.steps_done == 5 and longer.steps == 5
    from ipo_vlm.runs.rundir import RunDir

    assert RunDir(run).read_config()["config"]["optimize"]["steps"] == 5  # the settings in force
    with pytest.raises(ConfigError, match="has done 5 steps; --steps 1 cannot undo them"):
        optimize(config(steps=1), run, resume=True, backends=backends())


def test_a_cut_history_line_is_scored_again_on_resume(tmp_path):
    ref = optimize(config(), tmp_path / "ref", backends=backends())
    run = tmp_path / "run"
    with pytest.raises(Killed):
        optimize(config(), run, backends=backends(), hook=kill_at("result"))
    history = run / "history.jsonl"
    lines = history.read_text().splitlines()
    lost = json.loads(lines[-1])["template"]
    history.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # a torn last line
    resumed = optimize(config(), run, resume=True, backends=backends())
    templates = [json.loads(l)["template"] for l in history.read_text().splitlines()]
    assert lost in templates and len(templates) == len(lines)
    assert resumed.best_template == ref.best_template and resumed.hm == ref.hm


@pytest.mark.parametrize("bad", [{"optimize": {"steps": "many"}}, {"llm": {"temperature": "hot"}}, {"optimize": 5},
                                 {"optimize": {"steps": 1.5}}, {"data": {"shots": True}}, {"vlm_options": ["cpu"]}])
def test_a_setting_of_the_wrong_type_is_one_clear_error(bad):
    with pytest.raises(ConfigError, match="must be"):
        resolve_config("demo", overrides=bad)


def test_paths_are_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = resolve_config("paper", overrides={"data": {"dataset": "./photos", "data_root": "DATA"}})
    assert config.data.dataset == str(tmp_path / "photos") and config.data.data_root == str(tmp_path / "DATA")


class CorruptTest(FakeDataset):
    def verify_samples(self, samples):
        for s in samples:
            if s.ref == "test/3/7":
                raise DataError("cannot read image test/3/7: truncated")


def test_a_corrupt_test_image_stops_the_run_before_the_llm_is_asked(tmp_path):
    bk = backends(CorruptTest())
    with pytest.raises(DataError, match="test/3/7"):
        optimize(config(), tmp_path / "run", backends=bk)
    assert bk.llm.requests == [] and not (tmp_path / "run" / "history.jsonl").exists()
    # nothing was computed: after the fix the same --out starts again
    assert optimize(config(), tmp_path / "run", backends=backends()).complete


def test_a_mistake_in_a_settings_file_is_an_error_even_where_a_flag_overrides_it(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"optimize": {"steps": "many"}}')
    with pytest.raises(ConfigError, match="optimize.steps must be an integer"):
        resolve_config("demo", config_file=path, overrides={"optimize": {"steps": 1}})
