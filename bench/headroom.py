"""How much room is there above the seeds? Every template a run (and its control) scored, on test.

A proposal mechanism can only beat its control if some template it could write is better on the
test images than what the seeds already give, and if selection on the training images finds it.
For each finished run given (or each ``seed*/`` run under a ``bench/controls.py --out`` folder)
this evaluates every template in the method's and the control's history on the run's test split
and prints, per split:

  - the seeds alone: the step-0 template the run's own rule selects, and its test H;
  - the best test H among the seeds, the LLM's templates and the control's draws (an oracle: no
    rule can see the test images, so this is the ceiling of what selection could reach);
  - how many LLM templates (and control draws) are at least ``--margin`` H points better on test
    than the seeds alone, and how many of them also score at least as well on training accuracy
    (the ones selection on train could have picked);
  - the rank correlation between training accuracy and test H over all scored templates;

then where selection loses: for the method's pool and the control's, the pool's best template on
test against the one the run's rule picked, on the base and on the novel classes' test accuracy
(a loss on novel only means the pick fits the training classes, not the images);

then the same runs re-ranked by each training-only rule, the method's pool and the control's,
with the paired difference: whether another rule would have picked better. The rules are the
run's own ``train`` and ``loss``, and ``short-1se``, tried here only: the template with the fewest
words among those whose training accuracy is within one binomial standard error of the best
(fewer words, fewer chances to fit the training classes rather than the images).

    .venv/bin/python bench/headroom.py --runs /tmp/controls           # a controls.py --out folder
    .venv/bin/python bench/headroom.py --runs RUN_DIR [RUN_DIR ...]

Test images are encoded once per dataset and VLM (the feature store), prompts once per template.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np
from agreement import spearman  # bench/agreement.py: ties share their mean rank, NaN when constant
from controls import wtl

from ipo_vlm.prompting import word_count  # the words max_words counts


#: selection rules that need no validation images: every run can be re-ranked by them
RULES = ("train", "loss", "short-1se")


def shortest_within_se(ranked: list, n_images: int) -> object:
    """Of ``ranked`` (best first by training accuracy), the template with the fewest words (as
    ``optimize.max_words`` counts them) whose training accuracy is within one binomial standard
    error of the best, on ``n_images`` images; equal lengths keep the ranking's order."""
    best = ranked[0].accuracy
    band = best - math.sqrt(max(best * (1.0 - best), 0.0) / max(n_images, 1))
    inside = [s for s in ranked if s.accuracy >= band - 1e-12]
    return min(inside, key=lambda s: word_count(s.template))


def pick(run, rule: str, pool: str) -> list:
    """The run's pool (``method`` or ``control``) re-ranked by ``rule``: a one-item list, or
    empty when the run has no such pool."""
    if rule != "short-1se":
        return run.ranked(rule, pool)[:1]
    ranked = run.ranked("train", pool)
    return [shortest_within_se(ranked, run.image_counts()[0])] if ranked else []


def run_dirs(paths: list[str]) -> list[Path]:
    """Run directories: each path itself when it has ``config.json``, else its ``seed*/`` runs."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "config.json").exists():
            found.append(p)
            continue
        inside = sorted((d for d in p.glob("seed*") if (d / "config.json").exists()),
                        key=lambda d: int("".join(ch for ch in d.name if ch.isdigit()) or 0))
        if not inside:
            raise SystemExit(f"headroom: {p} is neither a run directory nor a folder of seed*/ runs")
        found.extend(inside)
    return found


def measure(path: Path, margin: float) -> dict:
    from ipo_vlm.runs.run import Run
    from ipo_vlm.scored import best_first

    run = Run.open(path, need_result=True)
    method = run.history
    control = [s.with_(source="control") for s in run.control_history()]
    in_method = {m.template for m in method}
    everything = method + [s for s in control if s.template not in in_method]
    task = run.task()
    evaluated = {e.template: e for e in task.evaluate(list(dict.fromkeys(s.template for s in everything)))}
    scores = {t: 100 * e.hm for t, e in evaluated.items()}
    seeds = [s for s in method if s.source == "seed"]
    seed_pick = best_first(seeds, run.select_on)[0] if seeds else None
    floor = scores[seed_pick.template] if seed_pick else float("nan")
    floor_train = seed_pick.accuracy if seed_pick else float("nan")

    def part(source: str) -> dict:
        items = [s for s in everything if s.source == source]
        better = [s for s in items if scores[s.template] >= floor + margin]
        return {"n": len(items), "best": max((scores[s.template] for s in items), default=float("nan")),
                "better": len(better), "findable": sum(s.accuracy >= floor_train for s in better)}

    def loss(pool: list) -> dict[str, float]:
        """The pool's best on test minus the run rule's pick, in base and novel accuracy points."""
        if not pool:
            return {"base": float("nan"), "novel": float("nan"), "hm": float("nan")}
        best = evaluated[max(pool, key=lambda s: scores[s.template]).template]
        pick = evaluated[best_first(pool, run.select_on)[0].template]
        return {k: 100 * (getattr(best, f) - getattr(pick, f)) for k, f in
                (("base", "base_acc"), ("novel", "novel_acc"), ("hm", "hm"))}

    picks = {}
    for rule in RULES:
        for pool in ("method", "control"):
            ranked = pick(run, rule, pool) if pool == "method" or control else []
            picks[(pool, rule)] = scores.get(ranked[0].template, float("nan")) if ranked else float("nan")
    return {"run": path, "seed_pick": seed_pick.template if seed_pick else "", "floor": floor, "picks": picks,
            "selected": scores.get(run.require_result().best_template, float("nan")),
            "seed": part("seed"), "llm": part("llm"), "control": part("control"),
            "lost": {"method": loss(method), "control": loss(control)},
            "rho": spearman(np.array([s.accuracy for s in everything]), np.array([scores[s.template] for s in everything]))}


def mean_sd(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {sd:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="run directories or bench/controls.py --out folders")
    ap.add_argument("--margin", type=float, default=1.0, help="H points above the seeds alone that count as better")
    args = ap.parse_args(argv)

    rows = []
    for path in run_dirs(args.runs):
        print(f"evaluating every template of {path} ...", file=sys.stderr, flush=True)
        rows.append(measure(path, args.margin))
    m = args.margin
    print(f"H on test in %; 'better' = at least {m:g} H above the seeds alone; 'findable' = better on test "
          "and at least as accurate on train as the seeds alone")
    print("| run | seeds alone | selected | best seed | best LLM | best control | LLM better (findable) of n "
          "| control better (findable) of n | rho(train acc, test H) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        llm, ctl = r["llm"], r["control"]
        print(f"| {r['run'].name} | {r['floor']:.1f} | {r['selected']:.1f} | {r['seed']['best']:.1f} | {llm['best']:.1f} "
              f"| {ctl['best']:.1f} | {llm['better']} ({llm['findable']}) of {llm['n']} "
              f"| {ctl['better']} ({ctl['findable']}) of {ctl['n']} | {r['rho']:.2f} |")
    print()
    print(f"over {len(rows)} runs (mean ± sd): best LLM − seeds alone "
          f"{mean_sd([r['llm']['best'] - r['floor'] for r in rows])}; best control − seeds alone "
          f"{mean_sd([r['control']['best'] - r['floor'] for r in rows])}; "
          f"runs with a findable better LLM template: {sum(r['llm']['findable'] > 0 for r in rows)}/{len(rows)}; "
          f"with a findable better control draw: {sum(r['control']['findable'] > 0 for r in rows)}/{len(rows)}; "
          f"rho {mean_sd([r['rho'] for r in rows])}")
    print("\nWhere selection loses: the pool's best on test minus the template the run's rule picked "
          "(accuracy points, mean ± sd over runs):\n")
    print("| pool | base | novel | H |\n|---|---|---|---|")
    for pool in ("method", "control"):
        lost = [r["lost"][pool] for r in rows]
        print(f"| {pool} | {mean_sd([x['base'] for x in lost])} | {mean_sd([x['novel'] for x in lost])} "
              f"| {mean_sd([x['hm'] for x in lost])} |")
    print("\nThe same runs re-ranked by each training-only rule (method pool and control pool, the same rule for both;"
          " test H in %):\n")
    print("| rule | method | control | method − control (paired) | wins/ties/losses |\n|---|---|---|---|---|")
    for rule in RULES:
        method = [r["picks"][("method", rule)] for r in rows]
        control = [r["picks"][("control", rule)] for r in rows]
        diff = [a - b for a, b in zip(method, control) if a == a and b == b]
        print(f"| {rule} | {mean_sd(method)} | {mean_sd(control)} | {mean_sd(diff)} | {wtl(diff)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
