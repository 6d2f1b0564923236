"""``ipo report`` without a browser: what the page holds for a run and a benchmark, that every
untrusted string is escaped, that nothing points off the page, and the user errors."""

from __future__ import annotations

import json

import pytest

from ipo_vlm.cli.main import main
from ipo_vlm.errors import ConfigError
from ipo_vlm.report import build_report
from ipo_vlm.report.run import checkpoints, ranked
from ipo_vlm.testing.runs import synthetic_bench, synthetic_run
from helpers.report import XSS_CLASS, XSS_TEMPLATE, external_urls, fake_run, parse_dom

CLASSES = ("t-shirt", XSS_CLASS, "$x$ dress", "bag", "sandal", "shirt")


def plots(dom):
    return [a for a in dom.find("img") if "plot" in a.get("class", "")]


def test_a_run_with_every_optional_field(tmp_path):
    run = synthetic_run(tmp_path / "run", steps=12, classnames=CLASSES, extra_templates=[XSS_TEMPLATE])
    out = build_report(run)
    assert out == run / "report.html"
    dom = parse_dom(out.read_text())
    assert dom.find("table", id="headline") and dom.find("table", id="importance") and dom.find("table", id="rejections")
    # progress, candidates, per-class, tokens per step, word importance
    assert len(plots(dom)) == 5
    result = json.loads((run / "result.json").read_text())
    for label in ("IPO (selected)", "baseline", "hand-crafted", "random search (control)", "seeds alone", "ensemble top-5",
                  "baseline replaced"):
        assert label in dom.text
    assert f"{100 * result['hm']:.1f}%" in dom.text and f"{100 * result['control']['hm']:.1f}%" in dom.text
    assert f"{100 * result['seeds_alone']['hm']:.1f}%" in dom.text
    assert "after step 0" in dom.text and "after step 12" in dom.text and "already scored" in dom.text
    assert "run ipo explain" not in dom.text


def test_untrusted_strings_show_as_text(tmp_path):
    run = synthetic_run(tmp_path / "r<b>un&amp;", steps=3, classnames=CLASSES, extra_templates=[XSS_TEMPLATE])
    result = json.loads((run / "result.json").read_text())
    result["handcrafted"]["template"] = "a </td></table><i>x</i> {}"
    (run / "result.json").write_text(json.dumps(result))
    with (run / "descriptions.jsonl").open("a") as f:
        f.write(json.dumps({"ref": "train/99", "label": 0, "classname": XSS_CLASS, "text": "<iframe src=//evil></iframe> item", "masked": 1}) + "\n")
    markup = build_report(run).read_text()
    dom = parse_dom(markup)
    assert not [t for t, a in dom.elements if t in ("script", "iframe", "b", "i") or any(k.startswith("on") for k in a)]
    assert all(t != "img" or a["src"].startswith("data:image/png;base64,") for t, a in dom.elements)
    # the strings themselves are there, as text
    for text in (XSS_TEMPLATE, "a </td></table><i>x</i> {}", "<iframe src=//evil></iframe> item", "r<b>un&amp;", XSS_CLASS):
        assert text in dom.text
    assert "&lt;img src=x onerror=alert(1)&gt; {}" in markup


def test_nothing_on_the_page_leaves_the_file(tmp_path):
    run = synthetic_run(tmp_path / "run", steps=3, extra_templates=["see https://example.com/x.png {}"])
    markup = build_report(run).read_text()
    dom = parse_dom(markup)
    assert external_urls(dom) == []
    assert not dom.find("link") and not dom.find("script")
    csp = dom.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_without_explain_or_result_the_page_says_what_is_missing(tmp_path):
    run = synthetic_run(tmp_path / "run", steps=4, explain=False)
    dom = parse_dom(build_report(run).read_text())
    assert "run ipo explain RUNDIR" in dom.text and len(plots(dom)) == 3
    unfinished = synthetic_run(tmp_path / "unfinished", steps=4, result=False, explain=False)
    dom = parse_dom(build_report(unfinished).read_text())
    assert "No result.json yet" in dom.text and not dom.find("table", id="headline") and len(plots(dom)) == 3


def test_baseline_kept_is_said(tmp_path):
    run = synthetic_run(tmp_path / "run", steps=2)
    result = json.loads((run / "result.json").read_text())
    result["baseline_kept"] = True
    (run / "result.json").write_text(json.dumps(result))
    assert "baseline kept" in parse_dom(build_report(run).read_text()).text
    # today's result.json has no baseline_kept: the selected template tells
    old = synthetic_run(tmp_path / "old", steps=2, optional_fields=False)
    result = json.loads((old / "result.json").read_text())
    assert "baseline replaced" in parse_dom(build_report(old).read_text()).text
    result["best_template"] = result["baseline"]["template"]
    (old / "result.json").write_text(json.dumps(result))
    assert "baseline kept" in parse_dom(build_report(old).read_text()).text


def test_a_run_written_by_optimize(tmp_path):
    """The real run files (fakes for the models), then explain, then the report."""
    from ipo_vlm.explain import explain_run

    run = fake_run(tmp_path / "run")
    before = parse_dom(build_report(run.path).read_text())
    assert len(plots(before)) == 3 and "run ipo explain" in before.text
    explain_run(run.path, dataset=run.dataset, vlm=run.vlm)
    dom = parse_dom(build_report(run.path, tmp_path / "elsewhere" / "page.html").read_text())
    assert len(plots(dom)) == 5
    assert f"{100 * run.result['hm']:.1f}%" in dom.text and run.result["best_template"] in dom.text


def test_memory_ranking_and_checkpoints():
    history = [
        {"step": 0, "template": "a", "train_acc": 0.5, "train_loss": 1.0},
        {"step": 1, "template": "b", "train_acc": 0.6, "train_loss": 1.0},
        {"step": 1, "template": "c", "train_acc": 0.6, "train_loss": 0.9},
        {"step": 2, "template": "a", "train_acc": 0.5, "train_loss": 1.0},
        {"step": 2, "template": "d", "train_acc": 0.9, "train_loss": 2.0},
    ]
    assert [r["template"] for r in ranked(history, 1)] == ["c", "b", "a"]
    assert [r["template"] for r in ranked(history, 2, k=3)] == ["d", "c", "b"]
    assert checkpoints(range(0, 501)) == [0, 125, 250, 375, 500]
    assert checkpoints([0, 1, 2]) == [0, 1, 2]


# -- benchmark directories ---------------------------------------------------------------------

def test_a_benchmark_page_links_each_cell_report(tmp_path):
    bench = synthetic_bench(tmp_path / "bench", methods=("ipo", "random"), seeds=(1,))
    out = build_report(bench)
    dom = parse_dom(out.read_text())
    assert dom.find("table", id="bench-table") and dom.find("table", id="costs") and dom.find("table", id="cells")
    assert "IPO (paper reference)" in dom.text and "BackendError: server unreachable" in dom.text
    assert len(plots(dom)) == 1
    links = [a["href"] for a in dom.find("a")]
    cells = [json.loads(l) for l in (bench / "cells.jsonl").read_text().splitlines()]
    assert len(links) == sum(c["status"] == "done" for c in cells) == 3
    for href in links:
        assert not href.startswith(("/", "http")) and (bench / href).is_file()
    assert external_urls(dom) == []


def test_benchmark_links_are_relative_to_the_page_and_stay_inside(tmp_path):
    bench = synthetic_bench(tmp_path / "bench", datasets=("demo",), methods=("ipo",), seeds=(1,), failed=0)
    cells = [json.loads(l) for l in (bench / "cells.jsonl").read_text().splitlines()]
    outside = synthetic_run(tmp_path / "outside", steps=2)
    cells.append({**cells[0], "name": "escapes", "rundir": "../outside"})
    cells.append({**cells[0], "name": "absolute", "rundir": str(outside)})
    (bench / "cells.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cells))
    out = build_report(bench, tmp_path / "pages" / "bench.html")
    links = [a["href"] for a in parse_dom(out.read_text()).find("a")]
    assert links == ["../bench/cells/demo-16shot-seed1-ipo/report.html"]
    assert (out.parent / links[0]).resolve().is_file()
    assert not (outside / "report.html").exists()


# -- errors ------------------------------------------------------------------------------------

def test_bad_paths_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="not a directory"):
        build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        build_report(tmp_path / "empty")
    run = synthetic_run(tmp_path / "run", steps=2)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot write"):
        build_report(run, tmp_path / "file" / "report.html")
    (run / "result.json").write_text("{not json")
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "result.json" in err[0]


def test_cli_prints_where_the_page_is(tmp_path, capsys):
    run = synthetic_run(tmp_path / "run", steps=2)
    assert main(["report", str(run), "--out", str(tmp_path / "x.html")]) == 0
    assert str(tmp_path / "x.html") in capsys.readouterr().out and (tmp_path / "x.html").stat().st_size > 10_000
