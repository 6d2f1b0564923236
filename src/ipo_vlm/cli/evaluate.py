"""`ipo evaluate`: base / novel / H of a run's best template or of any template."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ipo_vlm.cli.common import add_class_split_arg, add_data_args, add_vlm_arg, vlm_options
from ipo_vlm.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="base/novel/H accuracy of a run's best template or of --template",
        description="Evaluate on the full test split: base images among base classes, novel among novel classes.",
    )
    p.add_argument("rundir", nargs="?", default=None,
                   help="a run directory (its dataset, split and best template; --data-root says where its dataset is now if it moved)")
    p.add_argument("--template", action="append", default=None, help="a template with {} for the class name (repeatable)")
    add_data_args(p)
    add_vlm_arg(p)
    p.add_argument("--shots", type=int, default=None, help="few-shot size of the split (default 16; only picks the split, test is always full)")
    p.add_argument("--seed", type=int, default=None, help="seed of the split (default 1)")
    add_class_split_arg(p, default=None)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    p.set_defaults(func=run)


def _default_vlm(dataset: str) -> str:
    from ipo_vlm.config import DEFAULT_VLM, preset

    return preset("demo").vlm if dataset == "demo" else DEFAULT_VLM


def run(args: argparse.Namespace) -> int:
    from ipo_vlm.engine.evaluate import evaluate_on
    from ipo_vlm.runs.evaluate import evaluate_run, run_rows

    if args.rundir and args.dataset:
        raise ConfigError("give a run directory or --dataset, not both")
    given = [flag for flag, value in (("--shots", args.shots), ("--seed", args.seed), ("--class-split", args.class_split))
             if value is not None]
    if args.rundir and given:
        raise ConfigError(f"{', '.join(given)}: a run is evaluated on its own split (split.json); "
                          "to evaluate its template on another split, give --dataset and --template instead")
    labels: list[str] = []
    if args.rundir and not args.template:
        rows = run_rows(args.rundir, data_root=args.data_root)
        labels = [label for label, _ in rows]
        templates = list(dict.fromkeys(t for _, t in rows))
        evaluated = evaluate_run(args.rundir, templates, vlm_spec=args.vlm, vlm_options=vlm_options(args), data_root=args.data_root)
        by_template = {s.template: s for s in evaluated}
        scores = [by_template[t] for _, t in rows]
    elif args.rundir:
        scores = evaluate_run(args.rundir, args.template, vlm_spec=args.vlm, vlm_options=vlm_options(args),
                              data_root=args.data_root)
    else:
        if not args.template:
            raise ConfigError("give a run directory or --template \"...{}...\"")
        dataset = args.dataset or "demo"
        scores = evaluate_on(dataset, args.data_root, args.vlm or _default_vlm(dataset), args.template,
                             16 if args.shots is None else args.shots, 1 if args.seed is None else args.seed,
                             vlm_options=vlm_options(args), class_split=args.class_split or "ordered")
    if args.json:
        print(json.dumps(_payload(scores, labels)))
        return 0
    names = [_LABELS[label] for label in labels] or [""] * len(scores)
    if labels and scores[0].template == scores[1].template:  # the dataset's template is the baseline itself
        names, scores = ["baseline = hand-crafted", *names[2:]], [scores[0], *scores[2:]]
    width = max(len(n) for n in names) + 2 if labels else 0
    print(f"{'':{width}}{'base':>7}{'novel':>8}{'H':>8}  template")
    for name, s in zip(names, scores):
        print(f"{name:{width}}{100 * s.base_acc:>6.1f}%{100 * s.novel_acc:>7.1f}%{100 * s.hm:>7.1f}%  {s.template}")
    return 0


_LABELS = {"baseline": "baseline", "handcrafted": "hand-crafted", "optimized": "optimized"}


def _payload(scores: list[Any], labels: list[str]) -> Any:
    """A run's evaluation: the optimized template's fields with ``baseline`` and ``handcrafted``
    beside them (as in ``result.json``); one ``--template``: its fields; several: a list."""
    if labels:
        rows = dict(zip(labels, scores))
        return {**rows["optimized"].to_dict(), **{k: rows[k].to_dict() for k in ("baseline", "handcrafted")}}
    if len(scores) == 1:
        return scores[0].to_dict()
    return [s.to_dict() for s in scores]
