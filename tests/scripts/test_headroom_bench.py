"""bench/headroom.py: every template of a finished run (and of its control) evaluated on test,
on a tiny world (real hf: CLIP code path, scripted LLM)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.bench import make_world
from helpers.scripts import load_script

from ipo_vlm.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_rank_correlation_orders_ties_and_constants():
    spearman = load_script("bench/agreement.py").spearman  # the rank correlation headroom.py prints
    a = np.array
    assert spearman(a([1, 2, 3, 4]), a([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(a([1, 2, 3, 4]), a([4, 3, 2, 1])) == pytest.approx(-1.0)
    # ties take their mean rank: x ranks (0.5, 0.5, 2, 3) against y ranks (0, 1, 2, 3)
    assert spearman(a([5, 5, 6, 7]), a([1, 2, 3, 4])) == pytest.approx(0.9486833, abs=1e-6)
    assert math.isnan(spearman(a([1, 1, 1]), a([1, 2, 3])))


def test_the_shortest_template_within_one_standard_error_is_picked():
    from ipo_vlm.scored import ScoredTemplate as S

    shortest = load_script("bench/headroom.py").shortest_within_se
    ranked = [S("a close-up studio photo of a {}.", 0.80, 0.5), S("a large photo of a {}.", 0.78, 0.6),
              S("a photo of a {}.", 0.70, 0.7), S("a {}.", 0.50, 0.9)]
    # one standard error at 0.80 on 100 images is 4 points: 0.78 is inside, 0.70 is not
    assert shortest(ranked, 100).template == "a large photo of a {}."
    assert shortest(ranked, 10_000).template == ranked[0].template  # 0.4 points: only the best
    assert shortest(ranked, 4).template == "a photo of a {}."  # 20 points: down to 0.60, so "a {}." stays out
    tied = [S("a dark photo of a {}.", 1.0, 0.1), S("a pale photo of a {}.", 1.0, 0.2)]
    assert shortest(tied, 50).template == "a dark photo of a {}."  # no spread at 100 %: the ranking's order


def test_every_template_of_a_run_and_its_control_is_evaluated(tmp_path):
    world = make_world(tmp_path / "world")
    out = tmp_path / "runs" / "seed1"
    code = main(["optimize", "--preset", "demo", "--dataset", "folder", "--data-root", world["shapes"], "--shots", "2",
                 "--vlm", world["vlm"], "--llm", world["llm"], "--captioner", "none", "--steps", "2",
                 "--candidates", "3", "--control", "random", "--out", str(out)])
    assert code == 0
    done = subprocess.run([sys.executable, "bench/headroom.py", "--runs", str(out.parent), "--margin", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| seed1 ")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    control = [json.loads(line) for line in (out / "control" / "history.jsonl").read_text().splitlines()]
    n_llm = sum(r["source"] == "llm" for r in history)
    assert cells[6].endswith(f"of {n_llm}")
    new_draws = {r["template"] for r in control} - {r["template"] for r in history}
    assert cells[7].endswith(f"of {len(new_draws)}")
    # the selected template's H is the run's own test evaluation
    result = json.loads((out / "result.json").read_text())
    assert float(cells[2]) == pytest.approx(100 * result["hm"], abs=0.05)
    assert re.search(r"over 1 runs \(mean ± sd\)", done.stdout)
    # re-ranked by the run's own rule (train), the method's pick is the template the run selected
    rules = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (train|loss|short-1se) \| ([\d.]+) ± ", done.stdout, re.M)}
    assert set(rules) == {"train", "loss", "short-1se"}
    assert rules["train"] == pytest.approx(100 * result["hm"], abs=0.005)
    # where selection loses: the pool's best on test against the pick, which is the selected template
    lost = re.search(r"^\| method \| (-?[\d.]+) ± [\d.]+ \| (-?[\d.]+) ± [\d.]+ \| (-?[\d.]+) ± ", done.stdout, re.M)
    assert lost, done.stdout
    best = max(float(cells[3]), float(cells[4]))  # best seed, best LLM template
    assert float(lost.group(3)) == pytest.approx(best - 100 * result["hm"], abs=0.06)
    assert float(lost.group(3)) >= 0
