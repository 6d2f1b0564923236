"""`ipo report RUNDIR|BENCHDIR`: one self-contained HTML page from a run's (or a benchmark's)
files: no model, no LLM, no network; it opens from disk in any browser."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write an HTML report of a run or a benchmark", description=__doc__)
    p.add_argument("path", help="a run directory or a benchmark directory (with cells.jsonl)")
    p.add_argument("--out", default=None, metavar="FILE", help="where to write the page (default: PATH/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ipo_vlm.report import build_report

    started = time.perf_counter()
    out = build_report(args.path, args.out)
    print(f"report: {out} ({time.perf_counter() - started:.1f} s)")
    return 0
