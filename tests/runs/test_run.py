"""``Run``, the one reader of a run directory: every command that ranks a run's templates
(``result.json``'s selection and ensembles, ``export``/``classify --ensemble K``, ``history
--pool``, ``Run.top``) agrees, for every selection rule and K, on runs where the history holds
more templates than the method's pool (so ranking the whole history would disagree)."""

from __future__ import annotations

import json
import shutil

import pytest

from ipo_vlm.captioner.base import NoCaptioner
from ipo_vlm.cli.main import main
from ipo_vlm.config import preset
from ipo_vlm.errors import ConfigError
from ipo_vlm.runs.classify import classify_images
from ipo_vlm.runs.export import export_run
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.runs.run import Run
from ipo_vlm.scored import SELECTION_KEYS
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

WORDS = ["photo", "clothing", "garment", "studio", "plain", "worn", "folded", "bright", "dark", "item", "picture", "close-up"]
ANSWERS = [
    "\n".join(f"{k + 1}. a {WORDS[(i + k) % 12]} {WORDS[(3 * i + 2 * k + 1) % 12]} of a <CLASS>." for k in range(4))
    for i in range(30)
]
KS = (1, 3, 5)


def _backends():
    ds = FakeDataset()
    return Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM(ANSWERS, model_id="scripted-run"), NoCaptioner())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run per rule with result.json's ensembles at every K (the run ends at K = 5; resumes
    that change only ``optimize.ensemble`` re-evaluate it at 3 and 1, kept as copies)."""
    root = tmp_path_factory.mktemp("rules")
    out = {}
    for rule in SELECTION_KEYS:
        settings = {"steps": 4, "candidates": 3, "memory_size": 6, "select_on": rule}
        for k in reversed(KS):
            config = preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"},
                                            optimize={**settings, "ensemble": k})
            optimize(config, root / rule, resume=k != KS[-1], backends=_backends())
            shutil.copytree(root / rule, root / f"{rule}-{k}")
            out[rule, k] = root / f"{rule}-{k}"
    return out


@pytest.mark.parametrize("rule", SELECTION_KEYS)
@pytest.mark.parametrize("k", KS)
def test_every_ranking_command_agrees_with_result_json(runs, rule, k, tmp_path, capsys):
    path = runs[rule, k]
    result = json.loads((path / "result.json").read_text())
    run = Run.open(path)
    assert len({s.template for s in run.history}) > len(run.pool())  # the pool is a strict part of the history
    (ensemble,) = [e for e in result["ensembles"] if e["k"] == k]
    assert run.top(k) == ensemble["templates"]
    assert run.best().template == result["best_template"] == run.top(1)[0]
    assert json.loads(export_run(path, "json", ensemble=k))["ensemble"]["templates"] == ensemble["templates"]
    ds = FakeDataset()
    image = tmp_path / "one.png"
    ds.open_image(ds.split("test")[0]).save(image)
    assert classify_images(path, [image], ensemble=k, vlm=FakeVLM(ds.info.classnames)).templates == ensemble["templates"]
    capsys.readouterr()
    assert main(["history", str(path), "--pool", "--top", str(k), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["template"] for r in rows] == ensemble["templates"] and rows[0]["selected"]


def test_a_run_recorded_without_its_pool_replays_it_from_the_history(runs, tmp_path):
    for rule in SELECTION_KEYS:
        path = tmp_path / rule
        shutil.copytree(runs[rule, 5], path)
        result = json.loads((path / "result.json").read_text())
        del result["pool"]
        (path / "result.json").write_text(json.dumps(result))
        assert Run.open(path).top(5) == result["ensembles"][0]["templates"]


def test_a_run_in_progress_is_read_and_ranked_and_the_missing_result_is_one_error(runs, tmp_path):
    path = tmp_path / "unfinished"
    shutil.copytree(runs["train", 1], path)
    (path / "result.json").unlink()
    run = Run.open(path)
    assert run.result is None and run.config.optimize.select_on == "train" and run.split is not None
    assert run.best().template == json.loads((runs["train", 1] / "result.json").read_text())["best_template"]
    assert [s.step for s in run.steps] == list(range(5))
    with pytest.raises(ConfigError, match="has no result.json yet; finish"):
        Run.open(path, need_result=True)
    with pytest.raises(ConfigError, match="not found"):
        Run.open(tmp_path / "nothing")


def test_the_config_has_its_resumes_applied(runs):
    assert Run.open(runs["val", 1]).config.optimize.ensemble == 1
