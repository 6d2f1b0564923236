"""`ipo demo` with its real demo VLM and captioner; only the LLM is swapped for a scripted one so
the test stays fast (the offline model is exercised by the slow test below)."""

from __future__ import annotations

import json

import pytest

from ipo_vlm.cli.main import main
from ipo_vlm.config import preset


def test_demo_preset_is_offline_and_small():
    cfg = preset("demo")
    assert cfg.vlm == "demo:fashion" and cfg.llm.spec == "local" and cfg.captioner.spec == "interrogate"
    assert cfg.data.dataset == "demo" and cfg.data.seed == 1
    assert cfg.optimize.steps * cfg.optimize.candidates <= 60  # a few minutes on 2 cores


@pytest.mark.slow  # ~40 s on 2 cores: encodes the demo's 2,000 test images and runs the captioner
def test_demo_runs_the_whole_pipeline_and_prints_the_table(tmp_path, capsys):
    script = tmp_path / "llm.json"
    script.write_text(json.dumps({"responses": [
        "1. a photo of a <CLASS>, a piece of clothing.\n2. a grayscale photo of a <CLASS>.\n3. a product photo of a <CLASS> on a plain background.",
        "1. a low resolution photo of a <CLASS>.\n2. a centered image of a single <CLASS>.\n3. a picture of a <CLASS> seen from the front.",
    ]}))
    out = tmp_path / "demo"
    assert main(["demo", "--llm", f"scripted:{script}", "--steps", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    # the shifted condition by default, with its random-search control and a top-5 ensemble
    assert result["steps_done"] == 2 and result["vlm"] == "demo:fashion-shifted" and result["dataset"] == "demo-blurry"
    assert result["handcrafted"]["template"] != "" and result["baseline"]["template"] == "a photo of a {}."
    assert result["control"]["method"] == "random" and [e["k"] for e in result["ensembles"]] == [5]
    assert "baseline" in printed and "optimized" in printed and "random control" in printed and str(out) in printed
    assert f"report: {out / 'report.html'}" in printed and (out / "report.html").stat().st_size > 10_000
    descriptions = [json.loads(l) for l in (out / "descriptions.jsonl").read_text().splitlines()]
    assert len(descriptions) == 16 * 5 and len({d["ref"] for d in descriptions}) == 80
    classnames = json.loads((out / "split.json").read_text())["base_classnames"]
    for d in descriptions:
        assert d["text"].strip() and not any(name.lower() in d["text"].lower() for name in classnames)
    first_prompt = json.loads((out / "llm_calls.jsonl").read_text().splitlines()[0])
    assert first_prompt["step"] == 1


@pytest.mark.slow
def test_demo_with_the_offline_model_gives_mostly_valid_new_candidates(tmp_path, capsys):
    """Needs the assembled local model (make model); two steps of the real demo, plain condition
    (the paper's meta-prompt: no word limit)."""
    out = tmp_path / "demo"
    assert main(["demo", "--condition", "plain", "--steps", "2", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["candidates_returned"] >= 5
    assert result["valid_rate"] >= 0.6


@pytest.mark.slow
def test_the_shifted_demo_with_the_offline_model_keeps_its_word_limit(tmp_path, capsys):
    """The shifted preset's 16-word limit with the real model: over-long lines are rejected whole
    and counted, every scored LLM template is within the limit, and the description seeds are in."""
    from ipo_vlm.prompting import word_count

    out = tmp_path / "demo"
    assert main(["demo", "--steps", "2", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    limit = preset("demo-shifted").optimize.max_words
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    llm = [h["template"] for h in history if h["source"] == "llm"]
    assert llm and all(word_count(t) <= limit for t in llm)
    assert "a blurry photo of a {}." in [h["template"] for h in history if h["step"] == 0]
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    rejected = sum(s["rejected"].get("over the word limit", 0) for s in steps)
    assert result["rejections"].get("over the word limit", 0) == rejected
    assert result["candidates_returned"] == sum(s["returned"] for s in steps if s["step"] > 0)
