"""Ranking a run's templates, exporting it (JSON, transformers and open_clip snippets) and
classifying new images with it, on a real run directory made by ``optimize()`` on the fakes."""

from __future__ import annotations

import ast
import json
import math

import numpy as np
import pytest

from ipo_vlm.captioner.base import NoCaptioner
from ipo_vlm.config import preset
from ipo_vlm.errors import ConfigError
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.runs.classify import Failure, classify_images
from ipo_vlm.runs.export import export_run, format_safe, render_hf, render_open_clip
from ipo_vlm.runs.run import Run
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

WORDS = ["photo", "clothing", "garment", "studio", "plain", "worn", "folded", "bright", "dark", "item", "picture", "close-up"]
ANSWERS = [
    "\n".join(f"{k + 1}. a {WORDS[(i + k) % 12]} {WORDS[(3 * i + 2 * k + 1) % 12]} of a <CLASS>." for k in range(4))
    for i in range(30)
]
EVIL = '"); import os; os.system("x\'); import os; os.system(\'x'


def _config(select_on):
    settings = {"steps": 4, "candidates": 3, "memory_size": 6, "select_on": select_on}
    return preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"}, optimize=settings)


def _backends():
    ds = FakeDataset()
    return Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM(ANSWERS, model_id="scripted-test"), NoCaptioner())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for select_on in ("train", "val"):
        optimize(_config(select_on), root / select_on, backends=_backends())
        out[select_on] = root / select_on
    return out


def test_rank_orders_by_accuracy_then_loss_and_top1_is_the_selected_template(runs):
    for select_on, path in runs.items():
        run = Run.open(path)
        ranked = run.ranked(of="history")
        assert len(ranked) == len({s.template for s in run.history})
        score = (lambda s: (s.val_accuracy, -s.val_loss)) if select_on == "val" else (lambda s: (s.accuracy, -s.loss))  # noqa: E731
        for a, b in zip(ranked, ranked[1:]):
            assert score(a) >= score(b)
        assert run.top(1) == [run.require_result().best_template]
    by_loss = Run.open(runs["train"]).ranked("loss", of="history")
    assert [s.loss for s in by_loss] == sorted(s.loss for s in by_loss)


def test_trainval_pools_by_image_counts(runs):
    run = Run.open(runs["val"])
    n_train, n_val = run.image_counts()
    assert n_train == 4 * 3 and n_val > 0  # 4 shots of the 3 base classes
    pooled = lambda s: (s.accuracy * n_train + s.val_accuracy * n_val) / (n_train + n_val)  # noqa: E731
    ranked = run.ranked("trainval", of="history")
    assert [pooled(s) for s in ranked] == sorted((pooled(s) for s in ranked), reverse=True)


def test_ranking_by_val_without_val_scores_and_bad_ensemble_sizes_are_clear_errors(runs):
    run = Run.open(runs["train"])
    with pytest.raises(ConfigError, match="validation scores"):
        run.ranked("val")
    distinct = len(run.ranked())
    with pytest.raises(ConfigError, match="at least 1"):
        run.top(0)
    with pytest.raises(ConfigError, match=f"larger than the {distinct} distinct templates in the run's pool"):
        run.top(distinct + 1)
    assert len(run.top(distinct)) == distinct


def test_json_export_holds_classes_best_template_vlm_and_ranked_ensemble(runs):
    payload = json.loads(export_run(runs["val"], "json", ensemble=3))
    split = json.loads((runs["val"] / "split.json").read_text())
    result = json.loads((runs["val"] / "result.json").read_text())
    assert payload["classnames"] == list(FakeDataset().info.classnames)
    assert payload["base_classnames"] == split["base_classnames"] and payload["novel_classnames"] == split["novel_classnames"]
    assert payload["best_template"] == result["best_template"] and payload["vlm"] == "fake"
    assert payload["ensemble"]["templates"] == [s.template for s in Run.open(runs["val"]).ranked("val")[:3]]
    assert payload["ensemble"]["ranked_by"] == "val"
    assert "ensemble" not in json.loads(export_run(runs["val"], "json"))


def test_unknown_format_and_missing_result_are_clear_errors(runs, tmp_path):
    with pytest.raises(ConfigError, match="known: json, hf, open_clip"):
        export_run(runs["train"], "onnx")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "split.json", "history.jsonl"):
        (unfinished / name).write_bytes((runs["train"] / name).read_bytes())
    with pytest.raises(ConfigError, match="no result.json"):
        export_run(unfinished, "json")
    with pytest.raises(ConfigError, match="not found"):
        export_run(tmp_path / "nothing", "json")


def _string_literals(code):
    return [n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _calls(code):
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "?"))
    return names


def _hostile_payload(ensemble):
    templates = [EVIL + " {}", "a {0.__class__} photo of a {}.", "a photo of a {}.\n# x = 1"]
    return {
        "run": "runs/x\nimport os", "dataset": "fake", "vlm": "hf:openai/clip-vit-base-patch16",
        "classnames": ["cat", 'dog"); os.system("rm', "a\nb"], "best_template": templates[0],
        **({"ensemble": {"k": 3, "templates": templates}} if ensemble else {}),
    }


@pytest.mark.parametrize("render", [render_hf, render_open_clip])
@pytest.mark.parametrize("ensemble", [False, True])
def test_snippets_keep_hostile_strings_inert(render, ensemble):
    payload = _hostile_payload(ensemble)
    code = render(payload)
    literals = _string_literals(code)
    for name in payload["classnames"]:
        assert name in literals
    templates = payload["ensemble"]["templates"] if ensemble else [payload["best_template"]]
    for t in templates:
        assert t in literals or format_safe(t) in literals
    assert "system" not in _calls(code) and "os" not in {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
    assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(a.name == "os" for a in n.names) for n in ast.walk(ast.parse(code)))


def test_hf_snippet_uses_the_pipeline_with_a_format_safe_template():
    payload = _hostile_payload(False) | {"best_template": "a {0.__class__} photo of a {}."}
    code = render_hf(payload)
    assert "pipeline" in _calls(code) and '"zero-shot-image-classification"' in code
    hyp = next(s for s in _string_literals(code) if "photo of a" in s)
    assert hyp == "a {{0.__class__}} photo of a {}."
    assert hyp.format("cat") == "a {0.__class__} photo of a cat."  # what the pipeline will do with it
    assert "candidate_labels=CLASSNAMES" in code and "hypothesis_template=HYPOTHESIS_TEMPLATE" in code


def test_open_clip_snippet_builds_the_classifier_with_replace_callables():
    code = render_open_clip(_hostile_payload(True))
    assert "build_zero_shot_classifier" in _calls(code)
    assert "templates=[lambda c, t=t: t.replace('{}', c) for t in TEMPLATES]" in code
    assert "ARCH = 'ViT-B-16'" in code and "PRETRAINED = 'openai'" in code
    ns = {}
    exec(compile("TEMPLATES = " + repr(_hostile_payload(True)["ensemble"]["templates"]), "t", "exec"), ns)
    fill = [lambda c, t=t: t.replace("{}", c) for t in ns["TEMPLATES"]]
    assert fill[1]("cat") == "a {0.__class__} photo of a cat."


def test_a_fake_vlm_run_exports_with_a_stand_in_model_named_in_a_comment(runs):
    code = export_run(runs["train"], "hf")
    assert "MODEL = 'openai/clip-vit-base-patch16'" in code and "# NOTE: the run used 'fake'" in code
    ast.parse(code)


def _save(ds, sample, path):
    ds.open_image(sample).save(path)
    return path


def test_classify_gives_softmax_over_all_classes_and_reports_bad_files(runs, tmp_path):
    ds = FakeDataset()
    vlm = FakeVLM(ds.info.classnames)
    samples = ds.split("test")[::10]  # one image per class
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    paths = [_save(ds, s, folder / ("sub" if i % 2 else "") / f"{i}.png") for i, s in enumerate(samples)]
    (folder / "broken.png").write_bytes(b"not an image at all")
    (folder / "notes.txt").write_text("skipped: not an image extension")
    seen = []
    got = classify_images(runs["train"], [folder, tmp_path / "missing.jpg"], top=3, vlm=vlm, report=seen.append)
    assert sorted(p.path for p in got.predictions) == sorted(map(str, paths))
    assert {f.path for f in got.failures} == {str(folder / "broken.png"), str(tmp_path / "missing.jpg")}
    assert len(seen) == len(paths) + 2 and sum(isinstance(s, Failure) for s in seen) == 2
    # by hand: softmax(logit_scale * cos) over all six classes with the run's best template
    best = Run.open(runs["train"]).best_template
    text = vlm.encode_texts([best.replace("{}", c) for c in ds.info.classnames]).astype(np.float64)
    for pred in got.predictions:
        image = ds.open_image(next(s for s, p in zip(samples, paths) if str(p) == pred.path))
        logits = vlm.logit_scale * vlm.encode_images([image]).astype(np.float64) @ text.T
        probs = np.exp(logits[0] - logits.max()) / np.exp(logits[0] - logits.max()).sum()
        order = np.argsort(-probs)[:3]
        assert [n for n, _ in pred.top] == [ds.info.classnames[i] for i in order]
        assert [p for _, p in pred.top] == pytest.approx(probs[order].tolist(), abs=1e-5)


def test_classify_with_an_ensemble_uses_the_top_k_templates(runs, tmp_path):
    ds = FakeDataset()
    path = _save(ds, ds.split("test")[0], tmp_path / "one.png")
    got = classify_images(runs["val"], [path], ensemble=3, top=6, vlm=FakeVLM(ds.info.classnames))
    assert got.templates == Run.open(runs["val"]).top(3)
    assert len(got.predictions[0].top) == 6 and math.isclose(sum(p for _, p in got.predictions[0].top), 1.0, rel_tol=1e-9)
    with pytest.raises(ConfigError, match="at least 1"):
        classify_images(runs["val"], [path], ensemble=0, vlm=FakeVLM(ds.info.classnames))


def test_classify_refuses_a_run_without_result(runs, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_bytes((runs["train"] / "config.json").read_bytes())
    with pytest.raises(ConfigError, match="no result.json"):
        classify_images(run, [tmp_path], vlm=FakeVLM())
    assert RunDir(run).read_result() is None
