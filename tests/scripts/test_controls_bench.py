"""bench/controls.py on a tiny world (real hf: CLIP code path, scripted LLM): IPO against its fair
random-search control on two splits, the paired table and the LLM's call figures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from helpers.bench import make_world

REPO = Path(__file__).resolve().parents[2]


def test_fair_table_pairs_each_split_and_counts_the_calls(tmp_path):
    world = make_world(tmp_path / "world")
    out = tmp_path / "controls"
    cmd = [sys.executable, "bench/controls.py", "--seeds", "1-2", "--out", str(out), "--dataset", "folder",
           "--vlm", world["vlm"], "--llm", world["llm"], "--captioner", "none", "--steps", "2",
           "--set", f"data.data_root={world['shapes']}", "--set", "data.shots=2", "--set", "optimize.candidates=3"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = {s: json.loads((out / f"seed{s}" / "result.json").read_text()) for s in (1, 2)}
    for s, r in results.items():
        row = re.search(rf"^\| {s} \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([+-][\d.]+) \|", done.stdout, re.M)
        assert row, done.stdout
        baseline, seeds, control, ipo, diff = map(float, row.groups())
        assert ipo == round(100 * r["hm"], 1) and control == round(100 * r["control"]["hm"], 1)
        assert seeds == round(100 * r["seeds_alone"]["hm"], 1)
        assert abs(diff - 100 * (r["hm"] - r["control"]["hm"])) < 0.051
    calls = sum(r["llm_calls"] for r in results.values())
    valid = sum(r["candidates_valid"] for r in results.values())
    line = re.search(r"LLM calls per step ([\d.]+); usable candidates (\d+) of (\d+)", done.stdout)
    assert line and float(line.group(1)) == round(calls / 4, 2)
    assert (int(line.group(2)), int(line.group(3))) == (valid, 2 * 2 * 3)
    # a second call re-prints the same table from the finished runs, running nothing
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout == done.stdout and "min in this call" not in again.stderr
