"""``ipo explain``: ablation lists (pure), exact scores on a real run made with the fakes, the
text-encoder cost through the caches, the table, and the errors a user can cause."""

from __future__ import annotations

import json

import pytest

from ipo_vlm.cli.explain import bar, format_table
from ipo_vlm.cli.main import main
from ipo_vlm.errors import ConfigError
from ipo_vlm.explain import ablations, explain_run, split_words
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.testing.runs import synthetic_run
from helpers.report import fake_run


# -- which templates are scored ------------------------------------------------------------------

def test_each_word_is_removed_once_and_the_placeholder_word_never():
    cuts = ablations("a photo of a {}.")
    assert [c.removed for c in cuts] == ["a", "photo", "of", "a"]
    assert [c.template for c in cuts] == ["photo of a {}.", "a of a {}.", "a photo a {}.", "a photo of {}."]
    assert all("{}" in c.template for c in cuts)


def test_phrases_never_cross_the_placeholder():
    cuts = ablations("a blurry photo {}, in the snow", max_span=3)
    spans = [(c.start, c.end) for c in cuts]
    assert all(not (s <= 3 < e) for s, e in spans)  # word 3 is "{},"
    # 6 single words, then the 2-spans, then the 3-spans, on either side of the placeholder
    assert sum(c.kind == "word" for c in cuts) == 6
    assert [c.removed for c in cuts if c.end - c.start == 2] == ["a blurry", "blurry photo", "in the", "the snow"]
    assert {c.removed for c in cuts if c.end - c.start == 3} == {"a blurry photo", "in the snow"}


def test_a_bare_placeholder_has_nothing_to_remove():
    assert ablations("{}") == []
    assert ablations("  {}.  ") == []
    assert split_words("a  photo\tof {}") == ["a", "photo", "of", "{}"]


def test_the_placeholder_inside_a_word_keeps_that_word():
    assert [c.removed for c in ablations("photo of a({}) thing")] == ["photo", "of", "thing"]


# -- scores on a real run ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("explain") / "run")


def test_full_template_scores_match_the_run_files(run):
    out = explain_run(run.path, dataset=run.dataset, vlm=run.vlm)
    best = run.result["best_template"]
    assert out["template"] == best and out["is_best"]
    rec = next(r for r in RunDir(run.path).history_records() if r["template"] == best)
    assert out["full"]["train_acc"] == pytest.approx(rec["train_acc"]) and out["full"]["train_loss"] == pytest.approx(rec["train_loss"])
    for key in ("base_acc", "novel_acc", "hm"):
        assert out["full"][key] == pytest.approx(run.result[key])
    written = json.loads((run.path / "explain.json").read_text())
    assert written["template"] == best and len(written["ablations"]) == len(ablations(best))


def test_deltas_are_full_minus_ablated_and_match_a_direct_score(run):
    out = explain_run(run.path, dataset=run.dataset, vlm=run.vlm, write=False)
    from ipo_vlm.runs.run import Run

    task = Run.open(run.path).task(dataset=run.dataset, vlm=run.vlm)
    for row in out["ablations"]:
        direct = task.score_parts([row["template"]])[row["template"]]
        assert row["train_acc"] == pytest.approx(direct["train_acc"]) and row["hm"] == pytest.approx(direct["hm"])
        assert row["d_train_acc"] == pytest.approx(out["full"]["train_acc"] - direct["train_acc"])
        assert row["d_train_loss"] == pytest.approx(direct["train_loss"] - out["full"]["train_loss"])
        assert row["d_hm"] == pytest.approx(out["full"]["hm"] - direct["hm"])
    # the fake VLM's scores depend on words, so removing words changes something
    assert any(abs(r["d_train_loss"]) > 1e-6 for r in out["ablations"])


def test_cost_is_one_prompt_per_class_per_new_template_then_nothing(run):
    template = "a blurry close-up picture of a {}."  # never scored by the run
    before = run.vlm.texts_encoded
    first = explain_run(run.path, template=template, dataset=run.dataset, vlm=run.vlm, write=False)
    templates = 1 + len(ablations(template))
    assert first["cost"]["templates"] == templates == 7
    assert first["cost"]["prompts_encoded"] == templates * len(run.dataset.info.classnames)
    assert run.vlm.texts_encoded - before == first["cost"]["prompts_encoded"]
    again = explain_run(run.path, template=template, dataset=run.dataset, vlm=run.vlm, write=False)
    assert again["cost"]["prompts_encoded"] == 0 and again["ablations"] == first["ablations"]
    assert not again["is_best"]


def test_per_class_accuracy_averages_to_the_test_accuracy(run):
    out = explain_run(run.path, dataset=run.dataset, vlm=run.vlm, write=False)
    pc = out["per_class"]
    assert pc["classes"] == list(run.dataset.info.classnames) and pc["half"].count("base") == 3
    base = [a for a, h in zip(pc["accuracy"], pc["half"]) if h == "base"]
    novel = [a for a, h in zip(pc["accuracy"], pc["half"]) if h == "novel"]
    # equal test images per class: the class mean is the half's accuracy
    assert sum(base) / 3 == pytest.approx(run.result["base_acc"]) and sum(novel) / 3 == pytest.approx(run.result["novel_acc"])
    assert pc["baseline_template"] == "a photo of a {}."
    assert sum(pc["baseline_accuracy"][:3]) / 3 == pytest.approx(run.result["baseline"]["base_acc"])


def test_phrases_add_spans(run):
    out = explain_run(run.path, template="a bright studio photo of a {}.", phrases=True, dataset=run.dataset, vlm=run.vlm, write=False)
    kinds = [r["kind"] for r in out["ablations"]]
    assert kinds.count("word") == 6 and kinds.count("phrase") == 5 + 4
    assert {"bright studio", "a bright studio"} <= {r["removed"] for r in out["ablations"]}


# -- the table -------------------------------------------------------------------------------

def test_table_lists_words_in_order_with_bars(run):
    out = explain_run(run.path, template="a bright studio photo of a {}.", dataset=run.dataset, vlm=run.vlm, write=False)
    lines = format_table(out)
    rows = [l for l in lines if l.startswith("  ") and "|" in l]
    assert [l.split()[0] for l in rows] == ["a", "bright", "studio", "photo", "of", "a"]
    biggest = max(out["ablations"], key=lambda r: abs(r["d_hm"]))
    assert "█" * 12 in rows[out["ablations"].index(biggest)]
    assert any("never removed" in l and "{}." in l for l in lines)


def test_bar_grows_on_the_side_of_its_sign():
    assert bar(0.02, 0.02) == " " * 12 + "|" + "█" * 12
    assert bar(-0.01, 0.02).startswith(" " * 6 + "█" * 6 + "|")
    assert bar(0.0, 0.0) == " " * 12 + "|" + " " * 12


# -- errors ----------------------------------------------------------------------------------

def test_template_without_placeholder_is_refused_before_any_work(run, tmp_path):
    (run.path / "explain.json").unlink(missing_ok=True)
    with pytest.raises(ConfigError, match="placeholder"):
        explain_run(run.path, template="a photo of a thing", dataset=run.dataset, vlm=run.vlm)
    assert not (run.path / "explain.json").exists()


def test_cli_errors_are_one_line(tmp_path, capsys):
    unfinished = synthetic_run(tmp_path / "unfinished", steps=2, result=False)
    assert main(["explain", str(unfinished)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "result.json" in err[0]
    assert main(["explain", str(unfinished), "--template", "no placeholder"]) == 2
    assert "placeholder" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "missing")]) == 2
    assert "config.json" in capsys.readouterr().err


@pytest.mark.slow  # ~40 s on 2 cores: encodes the demo's 2,000 test images with the demo VLM
def test_cli_explain_then_report_on_a_demo_run(tmp_path, capsys):
    script = tmp_path / "llm.json"
    script.write_text(json.dumps({"responses": [
        "1. a grayscale photo of a <CLASS>.\n2. a product photo of a <CLASS> on a plain background.\n3. a centered image of a <CLASS>."]}))
    out = tmp_path / "run"
    assert main(["optimize", "--preset", "demo", "--llm", f"scripted:{script}", "--captioner", "none", "--steps", "1",
                 "--select-on", "train", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["explain", str(out), "--template", "a product photo of a {} on a plain background."]) == 0
    printed = capsys.readouterr().out
    rows = [l.split()[0] for l in printed.splitlines() if l.startswith("  ") and "|" in l]
    assert rows == ["a", "product", "photo", "of", "a", "on", "a", "plain", "background."]
    explained = json.loads((out / "explain.json").read_text())
    assert explained["cost"]["templates"] == 10 and "prompts encoded" in printed
    assert main(["explain", str(out), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    result = json.loads((out / "result.json").read_text())
    assert best["template"] == result["best_template"] and best["full"]["hm"] == pytest.approx(result["hm"])
    assert main(["report", str(out)]) == 0
    assert "report:" in capsys.readouterr().out and "per-class" in (out / "report.html").read_text()
