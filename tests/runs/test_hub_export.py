"""`ipo export --format hub`: a dataset repository folder whose card loads with huggingface_hub's
DatasetCard, round-trips the run's numbers and strings, and keeps hostile strings inert."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from helpers.report import fake_run

from ipo_vlm.cli.main import main
from ipo_vlm.runs.export import format_safe

# an LLM's template and class names that try to end the YAML block, break the table, inject
# HTML, close the code fence and reach str.format
HOSTILE_TEMPLATE = 'a "{}" photo\n---\nlicense: evil\n<script>alert(1)</script> | ``` `x` [l](javascript:1) {0.__class__} #'
CLASSES = ("red shirt", "<img src=x onerror=alert(2)> coat", "green | hat", "white\u2028shoe", "black `bag`", "grey: [scarf]")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "run"
    fake_run(path, classnames=CLASSES, steps=3)
    result = json.loads((path / "result.json").read_text())
    result["best_template"] = HOSTILE_TEMPLATE
    (path / "result.json").write_text(json.dumps(result))
    return path


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "repo"
    assert main(["export", str(run), "--format", "hub", "--out", str(out), "--ensemble", "3"]) == 0
    return out


def test_the_folder_holds_the_card_templates_and_result(run, exported):
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "result.json", "templates.json"]
    assert (exported / "result.json").read_bytes() == (run / "result.json").read_bytes()
    doc = json.loads((exported / "templates.json").read_text())
    split = json.loads((run / "split.json").read_text())
    assert doc["template"] == HOSTILE_TEMPLATE and sorted(doc["classnames"]) == sorted(CLASSES)
    assert doc["base_classnames"] == split["base_classnames"] and doc["novel_classnames"] == split["novel_classnames"]
    ens = doc["ensemble"]["templates"]
    history = [json.loads(l) for l in (run / "history.jsonl").read_text().splitlines()]
    best = max(h["train_acc"] for h in history)
    assert len(ens) == 3 and ens[0]["train_acc"] == pytest.approx(best) and ens[0]["train_acc"] >= ens[-1]["train_acc"]
    assert all(e["template"] in {h["template"] for h in history} for e in ens)


def test_the_card_loads_with_huggingface_hub_and_round_trips_the_numbers(run, exported):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(exported / "README.md")
    meta = card.data.to_dict()
    result = json.loads((run / "result.json").read_text())
    assert meta["license"] == "mit" and "prompt-optimization" in meta["tags"]
    info = meta["ipo_vlm"]
    assert info["template"] == HOSTILE_TEMPLATE and info["protocol"] == "base-to-novel" and info["vlm"] == "fake"
    res = info["results"]
    for key in ("base_acc", "novel_acc", "hm"):
        assert res["selected"][key] == result[key]  # exact: YAML writes floats as repr
        assert res["baseline"][key] == result["baseline"][key] and res["handcrafted"][key] == result["handcrafted"][key]
        assert res["control"][key] == result["control"][key]
        assert res["ensembles"][0][key] == result["ensembles"][0][key]
    # the table shows the same numbers, as percentages
    assert f"| {100 * result['hm']:.2f} |" in card.text and f"{100 * result['control']['hm']:.2f}" in card.text


def test_run_strings_are_inert_in_the_rendered_card(exported):
    from huggingface_hub import DatasetCard
    from markdown_it import MarkdownIt

    card = DatasetCard.load(exported / "README.md")
    html = MarkdownIt("commonmark").enable("table").render(card.text)
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    # the table keeps its five columns on every row whatever the template holds
    tokens = MarkdownIt("commonmark").enable("table").parse(card.text)
    rows = [i for i, t in enumerate(tokens) if t.type == "tr_open"]
    cells = [sum(1 for t in tokens[i:] [: next(j for j, u in enumerate(tokens[i:]) if u.type == "tr_close")] if t.type in ("td_open", "th_open"))
             for i in rows]
    assert len(rows) >= 5 and set(cells) == {5}
    # every code block is valid Python holding the class names and the template as literals
    fences = [t.content for t in tokens if t.type == "fence"]
    assert len(fences) == 2
    for code in fences:
        tree = ast.parse(code)
        values = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
                  if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and n.targets[0].id in ("CLASSNAMES", "TEMPLATES")}
        assert sorted(values["CLASSNAMES"]) == sorted(CLASSES)
    hypothesis = next(n.value for n in ast.parse(fences[0]).body if isinstance(n, ast.Assign) and n.targets[0].id == "HYPOTHESIS_TEMPLATE")
    assert ast.literal_eval(hypothesis) == format_safe(HOSTILE_TEMPLATE)


def test_the_export_never_writes_into_the_run_or_over_a_foreign_folder(run, exported, tmp_path, capsys):
    before = sorted(p.name for p in run.iterdir())
    for out in (run, run / "hub"):
        assert main(["export", str(run), "--format", "hub", "--out", str(out)]) == 2
        assert "inside the run directory" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["export", str(run), "--format", "hub", "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err
    assert main(["export", str(run), "--format", "hub"]) == 2 and "needs --out" in capsys.readouterr().err
    # a second export over its own earlier one is fine
    assert main(["export", str(run), "--format", "hub", "--out", str(exported), "--license", "cc-by-4.0"]) == 0
    assert "license: cc-by-4.0" in (exported / "README.md").read_text()
    assert main(["export", str(run), "--format", "hub", "--out", str(exported), "--ensemble", "3"]) == 0
