"""`ipo history`: the templates a run scored, best first, with their scores."""

from __future__ import annotations

import argparse
import json

from ipo_vlm.errors import ConfigError
from ipo_vlm.scored import SELECTION_KEYS

SORTS = SELECTION_KEYS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="list a run's scored templates with train/val accuracy and loss, best first",
        description="List the distinct templates a run scored, sorted as the run's selection ranks them: train "
        "(accuracy, ties by lower loss), val (the same on the few-shot validation images), trainval (both "
        "pooled by image count) or loss (lowest training loss first).",
    )
    p.add_argument("rundir", help="a run directory")
    p.add_argument("--top", type=int, default=20, help="show the N best (default 20; 0 for all)")
    p.add_argument("--sort", choices=SORTS, default=None, help="ranking (default: the run's own selection rule)")
    p.add_argument("--json", action="store_true", help="print the records as JSON (fractions, not percentages)")
    p.set_defaults(func=run)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    from ipo_vlm.runs.records import rank_records, read_run

    if args.top < 0:
        raise ConfigError(f"--top must be 0 (all) or more, got {args.top}")
    finished = read_run(args.rundir, need_result=False)
    by = args.sort or (finished.select_on if finished.select_on in SORTS else "train")
    ranked = rank_records(finished.history, by, finished.image_counts())
    if not ranked:
        raise ConfigError(f"{finished.path} has no scored templates yet")
    shown = ranked[: args.top] if args.top else ranked
    best = (finished.result or {}).get("best_template")
    if args.json:
        keys = ("step", "template", "source", "train_acc", "train_loss", "val_acc", "val_loss")
        rows = [{k: r.get(k) for k in keys} | {"rank": i + 1, "selected": r["template"] == best} for i, r in enumerate(shown)]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    has_val = any(r.get("val_acc") is not None for r in shown)
    head = f"{'#':>3} {'step':>4} {'source':<7} {'train':>7} {'loss':>7}"
    head += f" {'val':>7} {'v.loss':>7}" if has_val else ""
    print(f"{head}  template")
    for i, r in enumerate(shown):
        line = f"{i + 1:>3} {r.get('step', '-'):>4} {str(r.get('source', '-')):<7} {_pct(r['train_acc']):>7} {_loss(r['train_loss']):>7}"
        if has_val:
            line += f" {_pct(r.get('val_acc')):>7} {_loss(r.get('val_loss')):>7}"
        print(f"{line} {'*' if r['template'] == best else ' '} {r['template']}")
    more = len(ranked) - len(shown)
    print(f"sorted by {by}; {len(ranked)} distinct templates" + (f" ({more} not shown; --top 0 for all)" if more else "")
          + ("; * = the run's selected template" if best else ""))
    return 0
