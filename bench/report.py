"""How long `ipo report` takes, by run size: synthetic runs of 20, 100 and 500 steps (5
candidates each, every file a finished run writes, explain.json included) built side by side,
and optionally existing run directories (--run DIR, e.g. a demo run).

Printed per run: steps, templates scored, build time (median of --repeat builds, matplotlib
already imported), HTML size, and the time ratio to the 20-step run; plus the one-off cost of
importing matplotlib, which a fresh `ipo report` process pays once.

    python bench/report.py                     # synthetic runs only
    python bench/report.py --run runs/demo-x   # and a real run directory
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ipo_vlm.report import build_run_report  # noqa: E402
from ipo_vlm.testing.runs import synthetic_run  # noqa: E402


def timed_build(run: Path, out: Path, repeat: int) -> tuple[float, int]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        build_run_report(run, out)
        times.append(time.perf_counter() - started)
    return statistics.median(times), out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 100, 500])
    parser.add_argument("--run", action="append", default=[], help="also time this run directory (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    import matplotlib.figure  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401

    print(f"matplotlib import (once per process): {time.perf_counter() - started:.2f} s")
    tmp = Path(tempfile.mkdtemp(prefix="ipo-bench-report-"))
    try:
        runs = [(f"synthetic {s} steps", synthetic_run(tmp / f"run{s}", steps=s)) for s in args.steps]
        runs += [(f"run {r}", Path(r)) for r in args.run]
        build_run_report(runs[0][1], tmp / "warm.html")  # fonts and caches, once
        print(f"{'run':<40}{'steps':>7}{'scored':>8}{'seconds':>9}{'KiB':>7}{'ratio':>7}")
        first = None
        for name, run in runs:
            history = sum(1 for _ in (run / "history.jsonl").open(encoding="utf-8"))
            steps = json.loads((run / "result.json").read_text(encoding="utf-8")).get("steps_done", "?") if (run / "result.json").exists() else "?"
            seconds, size = timed_build(run, tmp / "out.html", args.repeat)
            first = first or seconds
            print(f"{name[:39]:<40}{steps:>7}{history:>8}{seconds:>9.2f}{size / 1024:>7.0f}{seconds / first:>7.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
