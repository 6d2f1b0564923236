"""`ipo explain RUNDIR`: which words of the run's best template (or --template) matter.

Each word (with --phrases also each 2-3-word span) is removed in turn and the template is
re-scored on the base training images and the base and novel test images; the table shows the
change against the full template, positive when the removed words help. Writes
RUNDIR/explain.json (read by `ipo report`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

BAR = 12  # characters on each side of the bar column


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="word importance of a run's template, by ablation", description=__doc__)
    p.add_argument("rundir", help="a finished run directory (with result.json)")
    p.add_argument("--template", default=None, help="explain this template instead of the run's best ({} for the class)")
    p.add_argument("--phrases", action="store_true", help="also remove each contiguous 2- and 3-word span")
    p.add_argument("--json", action="store_true", help="print explain.json instead of the table")
    p.set_defaults(func=run)


def bar(value: float, scale: float) -> str:
    """A two-sided bar: negative values grow left of the axis, positive ones right."""
    n = min(BAR, round(BAR * abs(value) / scale)) if scale > 0 else 0
    left = ("█" * n if value < 0 else "").rjust(BAR)
    right = ("█" * n if value > 0 else "").ljust(BAR)
    return f"{left}|{right}"


def _pp(x: float | None) -> str:
    return "" if x is None else f"{100 * x:+.1f}"


def format_table(explained: dict[str, Any]) -> list[str]:
    """The word table: words in template order, then phrases; deltas in percentage points."""
    rows = explained["ablations"]
    scale = max((abs(r["d_hm"]) for r in rows), default=0.0)
    width = max([len(r["removed"]) for r in rows] + [8])
    full = explained["full"]
    lines = [
        f"template: {explained['template']}",
        f"full: train {100 * full['train_acc']:.1f}% (loss {full['train_loss']:.3f}) | "
        f"base {100 * full['base_acc']:.1f}% | novel {100 * full['novel_acc']:.1f}% | H {100 * full['hm']:.1f}%",
        "change when removed, in points (+ = the words help):",
        f"  {'removed':<{width}} {'train':>6} {'loss':>7} {'base':>6} {'novel':>6} {'H':>6}  {'H change':^{2 * BAR + 1}}",
    ]
    for r in rows:
        loss = "" if r["d_train_loss"] is None else f"{r['d_train_loss']:+.3f}"
        lines.append(
            f"  {r['removed']:<{width}} {_pp(r['d_train_acc']):>6} {loss:>7} {_pp(r['d_base_acc']):>6} "
            f"{_pp(r['d_novel_acc']):>6} {_pp(r['d_hm']):>6}  {bar(r['d_hm'], scale)}"
        )
    words = explained["words"]
    lines.append(f"  {words[explained['placeholder_word']]:<{width}} (holds the class placeholder: never removed)")
    cost = explained["cost"]
    lines.append(
        f"cost: {cost['templates']} templates, {cost['prompts_encoded']} prompts encoded "
        f"({cost['prompts_cached']} from cache) over {cost['class_names']} class names"
    )
    return lines


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ipo_vlm.explain import explain_run

    explained = explain_run(args.rundir, template=args.template, phrases=args.phrases)
    if args.json:
        print(json.dumps(explained, indent=2, ensure_ascii=False))
        return 0
    for line in format_table(explained):
        print(line)
    if explained.get("saved", True):
        print(f"wrote {Path(args.rundir) / 'explain.json'}")
    return 0
