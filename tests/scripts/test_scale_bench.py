"""bench/scale.py and bench/agreement.py end to end at toy size: a tiny CLIP with CLIP's real
tokenizer, a synthetic ImageNet layout, the dry run's estimate beside the run, and the
agreement of a bfloat16 run with the float32 one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_scale_bench_prints_the_split_the_growth_and_the_estimate(tmp_path):
    work = tmp_path / "work"
    done = _run("bench/scale.py", "--arch", "tiny", "--classes", "6,12", "--steps", "2", "--image-sample", "2",
                "--check-estimate", "--work", str(work), "--json", str(tmp_path / "rows.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["classes"] for r in rows] == [6, 12]
    # 5 candidates x the base half of the classes per step, all of them new prompts
    assert [round(r["prompts_step"]) for r in rows] == [15, 30]
    assert all(r["steps_done"] == 2 and r["s_step"] > 0 and r["text"] > 0 for r in rows)
    assert all(r["text_mb"] > 0 and r["features_mb"] > 0 for r in rows)
    assert "from 6 to 12 classes (x2)" in out
    est = re.findall(r"images ([\d.]+) s estimated, ([\d.]+) s measured \((\d+) images", out)
    assert len(est) == 2 and [int(n) for *_, n in est] == [6 // 2 + 6, 12 // 2 + 12]  # 1-shot base + one test image each
    history = (work / "run-12" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1 + 2 * 5  # the seed (ImageNet's template is the baseline), then 2 steps x 5 templates


@pytest.mark.slow
def test_agreement_of_bfloat16_with_float32(tmp_path):
    runs = {}
    for dtype in ("float32", "bfloat16"):
        work = tmp_path / dtype
        done = _run("bench/scale.py", "--arch", "tiny", "--classes", "8", "--steps", "2", "--image-sample", "0",
                    "--dtype", dtype, "--work", str(work))
        assert done.returncode == 0, done.stderr[-2000:]
        runs[dtype] = work / "run-8"
    done = _run("bench/agreement.py", str(runs["float32"]), str(runs["bfloat16"]))
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "templates scored in both: 11" in out  # the scripted LLM proposes the same templates to both
    rho = float(re.search(r"accuracy (-?[\d.]+|nan)", out).group(1))
    assert np.isnan(rho) or -1.0 <= rho <= 1.0
    assert re.search(r"same selected template: (yes|no)", out)
