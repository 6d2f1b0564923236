"""`ipo history`: the templates a run scored, best first, with their scores."""

from __future__ import annotations

import argparse
import json
from typing import Any

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
    p.add_argument("--pool", action="store_true",
                   help="only the method's final pool, the templates the run selects from and --ensemble K draws from")
    p.add_argument("--json", action="store_true", help="print the records as JSON (fractions, not percentages)")
    p.set_defaults(func=run)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    from ipo_vlm.runs.run import Run

    if args.top < 0:
        raise ConfigError(f"--top must be 0 (all) or more, got {args.top}")
    finished = Run.open(args.rundir)
    by = args.sort or finished.select_on
    if not finished.history:
        raise ConfigError(f"{finished.path} has no scored templates yet")
    ranked = finished.ranked(by, of="method" if args.pool else "history")
    shown = ranked[: args.top] if args.top else ranked
    best = finished.result.best_template if finished.result else None
    if args.json:
        rows = [_record(s) | {"rank": i + 1, "selected": s.template == best} for i, s in enumerate(shown)]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    has_val = any(s.val_accuracy is not None for s in shown)
    head = f"{'#':>3} {'step':>4} {'source':<7} {'train':>7} {'loss':>7}"
    head += f" {'val':>7} {'v.loss':>7}" if has_val else ""
    print(f"{head}  template")
    for i, s in enumerate(shown):
        line = f"{i + 1:>3} {s.step:>4} {s.source:<7} {_pct(s.accuracy):>7} {_loss(s.loss):>7}"
        if has_val:
            line += f" {_pct(s.val_accuracy):>7} {_loss(s.val_loss):>7}"
        print(f"{line} {'*' if s.template == best else ' '} {s.template}")
    more = len(ranked) - len(shown)
    print(f"sorted by {by}; {len(ranked)} distinct templates" + (" in the pool" if args.pool else "") + (f" ({more} not shown; --top 0 for all)" if more else "")
          + ("; * = the run's selected template" if best else ""))
    return 0


def _record(s: Any) -> dict[str, Any]:
    return {"step": s.step, "template": s.template, "source": s.source, "train_acc": s.accuracy, "train_loss": s.loss,
            "val_acc": s.val_accuracy, "val_loss": s.val_loss}
