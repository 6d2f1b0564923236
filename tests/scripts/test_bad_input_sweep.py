"""The second round of the newcomer's sweep (``scripts/bad_input_sweep.py --round 2``) runs in
the suite: every case must end as intended -- one line and exit 2, a warning, or silence towards
a reader that is gone -- and never as a traceback, a hang, a silent success or lost work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_every_case_of_the_second_round_ends_as_intended():
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bad_input_sweep.py"), "--round", "2", "--strict",
                           "--timeout", "120"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    bad = [line for line in done.stdout.splitlines()
           if any(v in line for v in ("traceback", "timeout", "silent success", "lost work", "unclear", "wrong reason",
                                      "several lines", " exit "))]
    assert done.returncode == 0, "\n".join(bad) or done.stdout[-3000:] + done.stderr[-3000:]
