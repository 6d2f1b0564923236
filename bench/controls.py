"""Does the LLM earn its keep? IPO against its fair random-search control on the same splits.

For each seed: one run with ``--control random`` (the control starts from the run's own seeds,
so only the proposals differ). The default table reads each run (``Run``): per split the
baseline, the seeds alone (best step-0 seed by the run's rule), the control and IPO, which
ingredient each selected template came from (a baseline or description seed, the LLM, the
control's random draw), tokens and minutes; then paired differences with mean +- sd and
wins/ties/losses. ``--rules`` instead records validation scores and compares every selection
rule and top-1/3/5 ensembles (re-encodes each split's test images).

    .venv/bin/python bench/controls.py --seeds 1-10 --out /tmp/controls            # the demo
    .venv/bin/python bench/controls.py --preset demo-shifted --set optimize.description_seeds=0 ...

Runs already in --out are reused (resumed if unfinished), so the table can be re-printed."""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import Counter
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipo_vlm.runs.run import Run

RULES = ("train", "val", "trainval", "loss")
KS = (1, 3, 5)


def seeds_arg(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def run_one(args: argparse.Namespace, seed: int) -> Path:
    from ipo_vlm.config import merge_settings
    from ipo_vlm.overrides import settings_from
    from ipo_vlm.runs.optimize import optimize, resolve_run_config

    out = Path(args.out) / f"seed{seed}"
    overrides: dict = {"data": {"seed": seed}, "optimize": {"control": "random"}}
    if args.rules:  # validation scores for every template, so every rule can be compared afterwards
        overrides["optimize"].update({"select_on": "trainval", "ensemble": 0})
    for section, key, value in (("data", "dataset", args.dataset), ("llm", "spec", args.llm), ("captioner", "spec", args.captioner),
                                ("optimize", "steps", args.steps)):
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    if args.vlm:
        overrides["vlm"] = args.vlm
    overrides = merge_settings(overrides, settings_from(args.set))
    resume = (out / "config.json").exists()
    if (out / "result.json").exists():
        return out
    config = resolve_run_config(None, False, args.preset, None, overrides)
    started = time.perf_counter()
    result = optimize(config, out, resume=resume)
    print(f"seed {seed}: {result.minutes:.1f} min in this call, tokens {result.llm_tokens_in}+{result.llm_tokens_out},"
          f" {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return out


def evaluate_rules(run: Path) -> dict:
    """{(who, rule, k): (base, novel, H)} for the method and its control, plus the baseline,
    each ranked as the run itself ranks its pool (``Run.top``)."""
    from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE
    from ipo_vlm.runs.run import Run

    opened = Run.open(run, need_result=True)
    task = opened.task()
    out = {}
    (base,) = task.evaluate([BASELINE_TEMPLATE])
    out[("baseline", "-", 1)] = (base.base_acc, base.novel_acc, base.hm)
    for who, pool in (("ipo", "method"), ("random", "control")):
        for rule in RULES:
            for k in KS:
                templates = opened.top(min(k, len(opened.ranked(rule, pool))), rule, pool)
                s = task.evaluate(templates)[0] if k == 1 else task.evaluate_ensemble(templates)
                out[(who, rule, k)] = (s.base_acc, s.novel_acc, s.hm)
    result = opened.require_result()
    out["cost"] = (result.llm_tokens_in, result.llm_tokens_out, result.minutes)
    return out


def mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2f}"


def source_of(result: dict, row: dict | None = None) -> str:
    """Where a selected template came from: llm, random, seed:description or seed:baseline."""
    row = row if row is not None else result
    source = row.get("best_source", "random")
    if source != "seed":
        return source
    baselines = (result["baseline"]["template"], result["handcrafted"]["template"])
    return "seed:baseline" if row["best_template"] in baselines else "seed:description"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z-]+", text.lower()))


def description_words_used(run: "Run") -> tuple[int, int, float]:
    """(LLM templates that use a word of the image descriptions absent from the baseline
    template and the domain, LLM templates, the LLM's best training accuracy minus the seeds'
    best): did the LLM describe the images as they look, and did it beat the seeds in training?"""
    texts = [d["text"] for d in run.descriptions]
    baseline = run.require_result().baseline.template
    special = set().union(*(_words(t) for t in texts)) - _words(baseline) - _words(run.dataset().info.domain) if texts else set()
    llm = [s.template for s in run.history if s.source == "llm"]
    best = lambda src: max((s.accuracy for s in run.history if s.source == src), default=float("nan"))  # noqa: E731
    return sum(bool(_words(t) & special) for t in llm), len(llm), best("llm") - best("seed")


def call_counts(run: "Run") -> tuple[int, int, int, int]:
    """(LLM calls, steps, candidates asked for, usable candidates): how much of each call the run could use."""
    r = run.require_result()
    return r.llm_calls, r.steps_done, run.config.optimize.candidates * r.steps_done, r.candidates_valid


def read_fair(path: Path) -> dict:
    """One split's numbers from its run (H as fractions)."""
    from ipo_vlm.runs.run import Run

    run = Run.open(path, need_result=True)
    r = run.result_dict or {}
    if not r.get("control") or not r.get("seeds_alone"):
        raise SystemExit(f"{path}: result.json has no fair control / seeds_alone row (a run of an older version?)")
    return {"baseline": r["baseline"]["hm"], "seeds": r["seeds_alone"]["hm"], "control": r["control"]["hm"], "ipo": r["hm"],
            "ipo_src": source_of(r), "control_src": source_of(r, r["control"]), "template": r["best_template"],
            "tokens": r["llm_tokens_in"] + r["llm_tokens_out"], "tokens_out": r["llm_tokens_out"], "minutes": r["minutes"],
            "calls": call_counts(run), "desc_words": description_words_used(run)}


def wtl(d: list[float], eps: float = 1e-9) -> str:
    return f"{sum(x > eps for x in d)}/{sum(abs(x) <= eps for x in d)}/{sum(x < -eps for x in d)}"


def fair_table(table: dict[int, dict], label: str) -> None:
    """The per-split table and the paired summary (H in %)."""
    seeds = list(table)
    print(f"\n{label}: {len(seeds)} splits (seeds {','.join(map(str, seeds))}); H in %\n")
    print("| seed | baseline | seeds alone | control | IPO | IPO - control | IPO selected | control selected | tokens | min |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in seeds:
        t = table[s]
        print(f"| {s} | {100 * t['baseline']:.1f} | {100 * t['seeds']:.1f} | {100 * t['control']:.1f} | {100 * t['ipo']:.1f} | "
              f"{100 * (t['ipo'] - t['control']):+.1f} | {t['ipo_src']} | {t['control_src']} | {t['tokens']} | {t['minutes']:.1f} |")
    col = lambda k: [100 * table[s][k] for s in seeds]  # noqa: E731
    print("\n| row | H mean ± sd |\n|---|---|")
    for name, key in (("baseline", "baseline"), ("seeds alone", "seeds"), ("fair random control", "control"), ("IPO", "ipo")):
        print(f"| {name} | {mean_sd(col(key))} |")
    print("\n| paired, H points | mean ± sd | wins/ties/losses |\n|---|---|---|")
    for name, a, b in (("IPO - fair control", "ipo", "control"), ("IPO - seeds alone", "ipo", "seeds"),
                       ("control - seeds alone", "control", "seeds"), ("IPO - baseline", "ipo", "baseline")):
        d = [x - y for x, y in zip(col(a), col(b))]
        print(f"| {name} | {mean_sd(d)} | {wtl(d)} |")
    counts = lambda k: ", ".join(f"{v} {n}" for v, n in sorted(Counter(table[s][k] for s in seeds).items()))  # noqa: E731
    print(f"\nIPO selected: {counts('ipo_src')}; control selected: {counts('control_src')}")
    used = [table[s]["desc_words"] for s in seeds]
    print(f"LLM templates using a description word the baseline lacks: {sum(u[0] for u in used)} of {sum(u[1] for u in used)}; "
          f"the LLM's best minus the seeds' best training accuracy: {mean_sd([100 * u[2] for u in used])} points")
    calls, steps, asked, usable = (sum(table[s]["calls"][i] for s in seeds) for i in range(4))
    print(f"per run: {statistics.mean(table[s]['tokens'] for s in seeds):.0f} LLM tokens, "
          f"{calls / len(seeds):.1f} calls, {statistics.mean(table[s]['minutes'] for s in seeds):.1f} min (last call of the run)")
    print(f"LLM calls per step {calls / max(steps, 1):.2f}; usable candidates {usable} of {asked} asked for "
          f"({100 * usable / max(asked, 1):.1f} %); completion tokens per usable candidate "
          f"{sum(table[s]['tokens_out'] for s in seeds) / max(usable, 1):.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("1-10"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--vlm", default=None)
    ap.add_argument("--llm", default=None)
    ap.add_argument("--captioner", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--label", default=None, help="a name for the table (default: the --out folder)")
    ap.add_argument("--rules", action="store_true", help="compare every selection rule and top-1/3/5 ensembles instead")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="any other setting, e.g. --set optimize.meta_prompt=edit (value read as YAML)")
    args = ap.parse_args()
    if not args.rules:
        fair_table({seed: read_fair(run_one(args, seed)) for seed in args.seeds}, args.label or Path(args.out).name)
        return 0
    return rules_table(args)


def rules_table(args: argparse.Namespace) -> int:
    table = {seed: evaluate_rules(run_one(args, seed)) for seed in args.seeds}
    seeds = list(table)
    print(f"\n{len(seeds)} splits (seeds {seeds[0]}-{seeds[-1]}); base / novel / H in %, mean over splits; H ± sd\n")
    print("| row | rule | k | base | novel | H |\n|---|---|---|---|---|---|")
    keys = [("baseline", "-", 1)] + [(w, r, k) for w in ("ipo", "random") for r in RULES for k in KS]
    for key in keys:
        vals = [table[s][key] for s in seeds]
        b, n = (statistics.mean(100 * v[i] for v in vals) for i in (0, 1))
        print(f"| {key[0]} | {key[1]} | {key[2]} | {b:.1f} | {n:.1f} | {mean_sd([100 * v[2] for v in vals])} |")
    print("\npaired per split, H points (IPO - random; IPO - baseline):\n")
    print("| rule | k | IPO - random | wins | IPO - baseline | beats baseline |\n|---|---|---|---|---|---|")
    for rule in RULES:
        for k in KS:
            d = [100 * (table[s][("ipo", rule, k)][2] - table[s][("random", rule, k)][2]) for s in seeds]
            e = [100 * (table[s][("ipo", rule, k)][2] - table[s][("baseline", "-", 1)][2]) for s in seeds]
            print(f"| {rule} | {k} | {mean_sd(d)} | {sum(x > 0 for x in d)}/{len(d)} | {mean_sd(e)} | {sum(x > 0 for x in e)}/{len(e)} |")
    for rule in RULES:
        e = [100 * (table[s][("random", rule, 1)][2] - table[s][("baseline", "-", 1)][2]) for s in seeds]
        print(f"random - baseline ({rule}, k=1): {mean_sd(e)}, above on {sum(x > 0 for x in e)}/{len(e)}")
    print("\nper split, H in % (selection on train; ensemble: top-5 of the method's pool):\n")
    print("| seed | baseline | random | random top-5 | IPO | IPO top-5 | IPO - random |\n|---|---|---|---|---|---|---|")
    for s in seeds:
        t = table[s]
        row = [t[("baseline", "-", 1)], t[("random", "train", 1)], t[("random", "train", 5)], t[("ipo", "train", 1)], t[("ipo", "train", 5)]]
        print(f"| {s} | " + " | ".join(f"{100 * r[2]:.1f}" for r in row) + f" | {100 * (row[3][2] - row[1][2]):+.1f} |")
    tin = [table[s]["cost"][0] for s in seeds]
    tout = [table[s]["cost"][1] for s in seeds]
    mins = [table[s]["cost"][2] for s in seeds]
    print(f"\nLLM tokens per run: {statistics.mean(tin):.0f} in, {statistics.mean(tout):.0f} out; minutes per run (last call): {statistics.mean(mins):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
