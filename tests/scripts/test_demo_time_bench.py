"""bench/demo_time.py: two LLM specs, each `ipo demo` with empty caches, side by side. Run with a
scripted LLM so that only the bench's own bookkeeping is judged."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # two demos of one step, each encoding the demo's images afresh (~40 s apiece)
def test_two_specs_each_get_a_fresh_demo_and_a_row(tmp_path):
    script = tmp_path / "llm.json"
    script.write_text(json.dumps({"responses": ["1. a grayscale photo of a <CLASS>.\n2. a blurry photo of a <CLASS>."],
                                  "delay_s": 0.3}))
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({"responses": ["1. a grayscale photo of a <CLASS>.\n2. a blurry photo of a <CLASS>."],
                                "delay_s": 3.0}))
    done = subprocess.run([sys.executable, "bench/demo_time.py", "--seeds", "1", "--steps", "1",
                           "--spec", f"fast=scripted:{script}", "--spec", f"slow=scripted:{slow}"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = re.findall(r"^seed 1 (\w+): (\d+) s wall, LLM (\d+) s in (\d+) calls, H ([\d.]+)$", done.stdout, re.M)
    assert sorted(r[0] for r in runs) == ["fast", "slow"], done.stdout
    llm_s = {name: int(llm) for name, _, llm, _, _ in runs}
    assert llm_s["slow"] >= 3 > llm_s["fast"]  # the LLM time is read from each run's own calls
    assert len({h for *_, h in runs}) == 1  # same answers, same split: same H
    ratio = re.search(r"wall time, fast / slow: x([\d.]+)", done.stdout)
    walls = {name: int(wall) for name, wall, *_ in runs}
    assert ratio and abs(float(ratio.group(1)) - walls["fast"] / walls["slow"]) < 0.05
