"""A method is all a reader asks of a method: a third-party method, installed as a real plug-in
(an entry point in the ``ipo_vlm.method`` group), gets the same result table row, report label,
dry run, benchmark plan and table rows as a built-in; methods without an LLM plan 0 LLM calls;
IPO's estimate follows the run's own meta-prompt settings."""

from __future__ import annotations

import sys
import textwrap
import pytest

from ipo_vlm.captioner.base import NoCaptioner
from ipo_vlm.config import preset
from ipo_vlm.methods import METHODS
from ipo_vlm.methods.base import create_method, describe, dry_run, traits
from ipo_vlm.methods.ipo.dryrun import dry_run_plan
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.runs.run import Run
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM

PLUGIN = '''
from dataclasses import replace

from ipo_vlm.methods.memory import Memory
from ipo_vlm.methods.search import SearchLoop


class Tiny:
    """Scores two fixed phrasings beside the seeds and keeps the best three."""

    name = "tiny"
    label = "tiny search"
    uses_llm = False
    fixed = False

    def run(self, ctx):
        config = replace(ctx.config, optimize=replace(ctx.config.optimize, steps=0))
        loop = SearchLoop(ctx.record, config, ctx.task.score, Memory(3), ctx.progress, ctx.hook)
        return loop.run([*ctx.seeds, "a small photo of a {}.", "a picture of the {}."])


def load(name="", **_):
    return Tiny()
'''


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Install the plug-in as a distribution on sys.path and let the registry read entry points again."""
    site = tmp_path / "site"
    dist = site / "tiny_method-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "tiny_method.py").write_text(textwrap.dedent(PLUGIN))
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-method\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ipo_vlm.method]\ntiny = tiny_method:load\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(METHODS, "_factories", dict(METHODS._factories))
    monkeypatch.setattr(METHODS, "_help", dict(METHODS._help))
    monkeypatch.setattr(METHODS, "_plugins_loaded", False)
    yield "tiny"
    sys.modules.pop("tiny_method", None)


def _config(method):
    return preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"},
                                  optimize={"steps": 2, "candidates": 3, "memory_size": 6, "ensemble": 2}, method=method)


def test_a_plug_in_runs_and_is_read_labelled_and_tabled_like_a_built_in(tiny, tmp_path, capsys):
    from ipo_vlm.cli.optimize import print_dry_run, result_rows
    from ipo_vlm.report import build_run_report

    t = traits(tiny)
    assert (t.label, t.fixed, t.uses_llm) == ("tiny search", False, False)
    ds = FakeDataset()
    result = optimize(_config(tiny), tmp_path / "run", backends=Backends(ds, FakeVLM(ds.info.classnames), None, NoCaptioner()))
    run = Run.open(tmp_path / "run")
    assert run.method == "tiny" and len(run.pool()) == 3 and run.top(2) == result.ensembles[0]["templates"]
    assert any(line.startswith("tiny ") for line in result_rows(result.to_dict()))
    html = build_run_report(tmp_path / "run").read_text()
    assert "tiny search" in html
    print_dry_run(_config(tiny))
    assert "calls: 0" in capsys.readouterr().out
    assert describe(create_method(tiny), _config(tiny)) == "method tiny: scoring its templates"


def test_the_benchmark_plans_and_tables_a_plug_in_like_a_built_in(tiny):
    from ipo_vlm.benchmark.cells import plan_llm
    from ipo_vlm.benchmark.grid import parse_grid
    from ipo_vlm.benchmark.prices import load_prices
    from ipo_vlm.benchmark.table import Tables

    grid = parse_grid({"datasets": ["demo"], "shots": [1], "seeds": [1, 2], "methods": ["handcrafted", "random", tiny, "ipo"],
                       "vlm": "demo:fashion", "llm": "openai:gpt-4o-mini"})
    cells = {c.method: c for c in grid.cells()}
    assert plan_llm(cells[tiny]) is None and plan_llm(cells["random"]) is None and plan_llm(cells["ipo"]).calls_min > 0
    records = {c.cell_id: {"cell_id": c.cell_id, "name": c.name, "dataset": c.dataset, "dataset_name": c.dataset_name,
                           "shots": c.shots, "seed": c.seed, "method": c.method, "vlm": c.config["vlm"], "llm": "x",
                           "rundir": f"runs/{c.name}", "status": "done", "error": None, "base_acc": 0.5, "novel_acc": 0.5,
                           "hm": 0.5, "best_template": "a {}.", "llm_calls": 0, "llm_tokens_in": 0, "llm_tokens_out": 0,
                           "cost_usd": 0.0, "seconds": 1.0, "images_encoded": 1, "prompts_encoded": 1} for c in grid.cells()}
    tables = Tables(grid, records, load_prices())
    paired = {(r["method"], r["vs"]) for r in tables.paired_rows()}
    for method in (tiny, "ipo"):
        assert {(method, "handcrafted"), (method, "random")} <= paired
    assert {r["method"] for r in tables.cost_rows()} >= {tiny, "ipo"}
    assert {r["method"] for r in tables.result_rows()} >= {tiny, "ipo"}


@pytest.mark.parametrize("method", ["random", "handcrafted", "ensemble80"])
def test_methods_without_an_llm_plan_no_llm_call(method, capsys):
    from ipo_vlm.cli.optimize import print_dry_run

    assert dry_run(create_method(method), _config(method)) is None
    print_dry_run(_config(method))
    assert "calls: 0" in capsys.readouterr().out.splitlines()


def test_ipo_estimate_follows_max_words_description_seeds_and_show_worst():
    base = _config("ipo").updated(data={"dataset": "demo"}, optimize={"steps": 10, "memory_size": 4})
    plan = dry_run_plan(base)
    assert dry_run(create_method("ipo"), base) == plan
    worded = dry_run_plan(base.updated(optimize={"max_words": 8}))
    assert worded.first_prompt_tokens != plan.first_prompt_tokens  # the instruction names the word limit
    captioned = base.updated(captioner={"spec": "interrogate"})
    seeded = dry_run_plan(captioned.updated(optimize={"description_seeds": 3}))
    assert seeded.first_prompt_tokens > dry_run_plan(captioned).first_prompt_tokens
    worst = dry_run_plan(base.updated(optimize={"show_worst": 3}))
    assert worst.tokens_in > plan.tokens_in and worst.first_prompt_tokens == plan.first_prompt_tokens
