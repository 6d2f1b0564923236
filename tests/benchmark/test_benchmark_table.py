"""Tables from cell records: mean ± sd over seeds, averages, paired differences, cost per
gain, and published reference rows only where dataset, shots and backbone match."""

from __future__ import annotations

import csv
import io
import math

import pytest

from ipo_vlm.benchmark.grid import parse_grid
from ipo_vlm.benchmark.prices import load_prices
from ipo_vlm.benchmark.references import COOP_11, all_references, references_for
from ipo_vlm.benchmark.table import Tables, mean_sd, write_tables

CLIP = "hf:openai/clip-vit-base-patch16"


def records_for(grid, hm_of, tokens=1000, cost=0.01):
    """A done record per cell; base = novel = hm_of(cell) so H is easy to predict."""
    recs = {}
    for c in grid.cells():
        h = hm_of(c)
        recs[c.cell_id] = {
            "cell_id": c.cell_id, "name": c.name, "dataset": c.dataset, "dataset_name": c.dataset_name, "shots": c.shots,
            "seed": c.seed, "method": c.method, "vlm": c.config["vlm"], "llm": c.config["llm"]["spec"], "rundir": f"runs/{c.name}",
            "status": "done", "error": None, "base_acc": h, "novel_acc": h, "hm": h, "best_template": "a {}.",
            "llm_calls": 2 if c.method == "ipo" else 0, "llm_tokens_in": tokens if c.method == "ipo" else 0,
            "llm_tokens_out": 0, "cost_usd": cost if c.method == "ipo" else 0.0, "seconds": 1.0,
            "images_encoded": 5, "prompts_encoded": 7,
        }
    return recs


def grid_of(datasets, vlm=CLIP, shots=(16,), methods=("handcrafted", "random", "ipo")):
    return parse_grid({"datasets": list(datasets), "data_root": "/data", "shots": list(shots), "seeds": [1, 2, 3],
                       "methods": list(methods), "vlm": vlm, "llm": "openai:gpt-4o-mini"})


def test_mean_sd():
    assert mean_sd([]) == (None, None, 0)
    assert mean_sd([0.5]) == (0.5, None, 1)
    m, sd, n = mean_sd([0.1, 0.2, 0.3])
    assert (m, n) == (pytest.approx(0.2), 3) and sd == pytest.approx(0.1)


def test_rows_paired_differences_and_cost_per_gain():
    grid = grid_of(["eurosat", "dtd"])
    gain = {"handcrafted": 0.0, "random": 0.01, "ipo": 0.03}
    recs = records_for(grid, lambda c: 0.5 + gain[c.method] + 0.01 * c.seed)
    t = Tables(grid, recs, load_prices())
    rows = t.result_rows()
    ipo = next(r for r in rows if r["kind"] == "ours" and r["dataset"] == "dtd" and r["method"] == "ipo")
    assert ipo["n"] == 3 and ipo["hm_mean"] == pytest.approx(0.55) and ipo["hm_sd"] == pytest.approx(0.01)
    avg = next(r for r in rows if r["kind"] == "average" and r["method"] == "ipo")
    assert avg["dataset"] == "average (2 datasets)" and avg["hm_mean"] == pytest.approx(0.55)
    p = t.paired("ipo", 16, "handcrafted")
    assert p["n"] == 6 and p["d_hm_mean"] == pytest.approx(0.03) and p["d_hm_sd"] == pytest.approx(0.0, abs=1e-12)
    assert t.paired("ipo", 16, "random")["d_hm_mean"] == pytest.approx(0.02)
    cost = next(r for r in t.cost_rows() if r["method"] == "ipo")
    # 0.03 H per 1000 tokens per cell, and per $0.01
    assert cost["d_hm_per_1k_tokens"] == pytest.approx(0.03) and cost["d_hm_per_usd"] == pytest.approx(3.0)
    assert cost["images_encoded"] == 30 and cost["llm_calls"] == 2
    # references: CoOp datasets, 16 shots, the ViT-B/16 backbone -> IPO's per-dataset rows beside ours
    refs = [r for r in rows if r["kind"] == "reference"]
    assert {(r["dataset"], r["method"]) for r in refs} == {("eurosat", "IPO (published)"), ("dtd", "IPO (published)")}
    assert next(r for r in refs if r["dataset"] == "dtd")["hm_mean"] == pytest.approx(0.7369)
    md = t.markdown()
    assert "| dtd | ipo | 3 | 55.00 ± 1.00 | 55.00 ± 1.00 | 55.00 ± 1.00 |" in md
    assert "Table 8" in md and "+3.00 ± 0.00" in md


def test_no_reference_rows_for_another_backbone_or_dataset_or_shots():
    assert references_for("eurosat", 16, "hf:openai/clip-vit-large-patch14") == []
    assert references_for("demo", 16, CLIP) == []
    assert references_for("eurosat", 4, CLIP) == []
    grid = grid_of(["eurosat"], vlm="demo:fashion")
    rows = Tables(grid, records_for(grid, lambda c: 0.5), load_prices()).result_rows()
    assert all(r["kind"] != "reference" for r in rows)


def test_eleven_dataset_average_sits_beside_published_averages():
    grid = grid_of(COOP_11, methods=("ipo",))
    recs = records_for(grid, lambda c: 0.8)
    rows = Tables(grid, recs, load_prices()).result_rows()
    avg = [r for r in rows if r["dataset"] == "average (11 datasets)"]
    methods = {r["method"] for r in avg if r["kind"] == "reference"}
    assert {"IPO (published)", "CLIP (zero-shot)", "CoOp", "CoCoOp", "MaPLe", "PromptSRC"} <= methods
    assert "IPO (published), mean of its per-dataset rows" in methods
    # missing one dataset's cells: no 11-dataset average at all
    del recs[next(c.cell_id for c in grid.cells() if c.dataset == "dtd")]
    del recs[next(c.cell_id for c in grid.cells() if c.dataset == "dtd" and c.seed == 2)]
    del recs[next(c.cell_id for c in grid.cells() if c.dataset == "dtd" and c.seed == 3)]
    assert not [r for r in Tables(grid, recs, load_prices()).result_rows() if r["kind"] == "average"]


def test_reference_file_and_its_16_shot_discrepancy():
    refs = all_references()
    ipo16 = [r for r in refs if r.method == "IPO (published)" and r.shots == 16 and r.dataset in COOP_11]
    assert len(ipo16) == 11
    base = sum(r.base for r in ipo16) / 11
    novel = sum(r.novel for r in ipo16) / 11
    assert (round(100 * base, 2), round(100 * novel, 2), round(200 * base * novel / (base + novel), 2)) == (83.24, 78.47, 80.79)
    reported = next(r for r in refs if r.method == "IPO (published)" and r.shots == 16 and r.dataset == "average")
    assert (reported.base, reported.novel, reported.hm) == pytest.approx((0.7992, 0.8051, 0.8021)) and "83.24" in reported.note
    computed = next(r for r in refs if r.method.endswith("mean of its per-dataset rows"))
    assert (computed.base, computed.hm) == pytest.approx((0.8324, 0.8079)) and computed.shots == 16
    # the 1-shot rows agree with their reported average, so no second row for them
    assert not [r for r in refs if r.shots == 1 and r.method.endswith("rows")]
    assert all(r.source for r in refs)
    clip = next(r for r in refs if r.method == "CLIP (zero-shot)")
    assert (clip.base, clip.novel, clip.hm) == pytest.approx((0.6934, 0.7422, 0.717))


def test_prices_dated_and_overridable():
    p = load_prices()
    assert p.date and p.cost("openai:gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert p.cost("local", 10**6, 10**6) == 0.0 and p.cost("scripted:/x.json", 5, 5) == 0.0
    assert p.cost("openai:some-new-model", 1, 1) is None
    q = load_prices({"gpt-4o-mini": {"input": 1.0, "output": 2.0}})
    assert q.cost("openai:gpt-4o-mini?concurrency=4", 10**6, 10**6) == pytest.approx(3.0) and q.overridden == ("gpt-4o-mini",)


def test_written_files_and_partial_grids(tmp_path):
    grid = grid_of(["eurosat", "dtd"])
    recs = records_for(grid, lambda c: 0.6)
    first = dict(list(recs.items())[:2])
    write_tables(tmp_path, grid, first, load_prices())
    assert "2 of 18 cells done" in (tmp_path / "table.md").read_text()
    write_tables(tmp_path, grid, recs, load_prices())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))
    ours = [r for r in rows if r["kind"] == "ours"]
    assert len(ours) == 6 and all(math.isclose(float(r["hm_mean"]), 0.6) for r in ours)  # fractions in files
    assert (tmp_path / "paired.csv").read_text().count("\n") == 1 + 3
    assert "d_hm_per_usd" in (tmp_path / "cost.csv").read_text()
