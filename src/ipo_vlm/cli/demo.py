"""`ipo demo`: the whole pipeline offline on the bundled Fashion-MNIST demo (a stand-in VLM, the
local LLM, the interrogate captioner), then the table of the baseline, the random-search
control, the optimizer and its ensemble.

Conditions: ``shifted`` (the default) shows the items out of focus to a stand-in VLM in which a
context word such as "blurry" changes the class embeddings, as it does for CLIP;
``plain`` shows the photos to the first stand-in, whose wording barely matters."""

from __future__ import annotations

import argparse
from pathlib import Path

from ipo_vlm.cli.optimize import add_run_args, default_out, exit_code, print_result, resolve_config, run_with_progress
from ipo_vlm.errors import ConfigError

#: demo condition -> its preset
CONDITIONS = {"shifted": "demo-shifted", "plain": "demo"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run IPO offline on the bundled demo (a few minutes on 2 cores)", description=__doc__)
    p.add_argument("--out", default=None, help="run directory (default: runs/demo-<time>)")
    p.add_argument("--llm", default=None, help="swap the LLM (default: the offline local model)")
    p.add_argument("--condition", choices=tuple(CONDITIONS), default="shifted",
                   help="shifted: blurry photos and a wording-sensitive stand-in (default); plain: photos and the first stand-in")
    p.add_argument("--captioner", default=None, help="captioner spec (default: interrogate; none: no image descriptions)")
    add_run_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume and not args.out:
        raise ConfigError("--resume needs --out RUNDIR (the demo run to continue)")
    config = resolve_config(args, default_preset=CONDITIONS[args.condition])
    out = Path(args.out) if args.out else default_out("demo")
    result = run_with_progress(config, out, args.resume)
    print_result(result, out)
    from ipo_vlm.report import build_run_report

    print(f"report: {build_run_report(out)}")
    return exit_code(result)
