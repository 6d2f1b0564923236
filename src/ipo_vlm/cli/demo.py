"""`ipo demo`: the whole pipeline offline on the bundled Fashion-MNIST demo (demo VLM, the local
LLM, the interrogate captioner), then the baseline vs optimized table."""

from __future__ import annotations

import argparse
from pathlib import Path

from ipo_vlm.cli.optimize import add_run_args, default_out, exit_code, print_result, resolve_config, run_with_progress
from ipo_vlm.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run IPO offline on the bundled demo (a few minutes on 2 cores)", description=__doc__)
    p.add_argument("--out", default=None, help="run directory (default: runs/demo-<time>)")
    p.add_argument("--llm", default=None, help="swap the LLM (default: the offline local model)")
    add_run_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume and not args.out:
        raise ConfigError("--resume needs --out RUNDIR (the demo run to continue)")
    config = resolve_config(args, default_preset="demo")
    out = Path(args.out) if args.out else default_out("demo")
    result = run_with_progress(config, out, args.resume)
    print_result(result, out)
    from ipo_vlm.report import build_run_report

    print(f"report: {build_run_report(out)}")
    return exit_code(result)
