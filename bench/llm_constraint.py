"""What the output grammar costs and yields: the character-bounded grammar ("before") against
the word-bounded one ("after"), side by side on the same splits, presets and machine.

For each preset and seed, one full run per variant (order alternating from seed to seed, so a
machine that slows down does not favour one side); the response cache is off, so every call is
made. "before" is the grammar the local model had when templates were bounded by characters
only (``llm.constraint.char_limited_grammar``), "after" the one the backend uses now. From the
run files alone, per variant and preset:

  calls/step          LLM calls per optimizer step (a step asks again while too few are usable)
  usable/call         new, valid templates a call yields (those the step goes on to score)
  usable %            usable templates per candidate asked for (steps x candidates)
  tokens/usable       completion tokens per usable template
  s/step              seconds of LLM calls per step
  H                   the run's harmonic mean (test split; the run's own selection)

    .venv/bin/python bench/llm_constraint.py --seeds 1-3 --out /tmp/constraint
    .venv/bin/python bench/llm_constraint.py --seeds 1 --presets demo-shifted --out /tmp/c   # quick look
    .venv/bin/python bench/llm_constraint.py --runs before=/tmp/a after=/tmp/b   # runs made elsewhere

Runs already in --out are reused, so the table can be re-printed without any LLM call; --runs
summarizes existing run directories (every DIR/**/steps.jsonl with a result.json beside it),
e.g. those of bench/controls.py made with the grammar of before and after."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from controls import seeds_arg  # bench/controls.py: "1-10" or "1,3,5"

VARIANTS = ("before", "after")


def use_variant(variant: str) -> None:
    """Point the llama.cpp backend at the variant's grammar (both are this package's own)."""
    from ipo_vlm.llm import constraint, llamacpp

    llamacpp.template_grammar = constraint.template_grammar if variant == "after" else constraint.char_limited_grammar


def run_one(out: Path, preset: str, seed: int, variant: str, llm_spec: str, steps: int | None) -> Path:
    from ipo_vlm.runs.optimize import optimize, resolve_run_config

    if (out / "result.json").exists():
        return out
    use_variant(variant)
    overrides: dict[str, Any] = {"data": {"seed": seed}, "llm": {"spec": llm_spec, "use_cache": False}}
    if steps is not None:
        overrides["optimize"] = {"steps": steps}
    config = resolve_run_config(None, False, preset, None, overrides)
    started = time.perf_counter()
    result = optimize(config, out, resume=(out / "config.json").exists())
    print(f"{preset} seed {seed} {variant}: {time.perf_counter() - started:.0f} s, H {100 * result.hm:.1f}", file=sys.stderr, flush=True)
    return out


def measure(run: Path) -> dict[str, float]:
    """Totals of one run from its files: steps, calls, usable templates, tokens, seconds."""
    config = json.loads((run / "config.json").read_text())["config"]
    wanted = int(config["optimize"]["candidates"])
    steps = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines() if line.strip()]
    llm_steps = [s for s in steps if s.get("llm_calls")]
    calls = [json.loads(line) for line in (run / "llm_calls.jsonl").read_text().splitlines() if line.strip()]
    result = json.loads((run / "result.json").read_text())
    return {
        "steps": len(llm_steps),
        "calls": sum(s["llm_calls"] for s in llm_steps),
        "usable": sum(len(s.get("candidates", [])) for s in llm_steps),
        "asked": wanted * len(llm_steps),
        "tokens_out": sum(s["tokens_out"] for s in llm_steps),
        "llm_s": sum(c["latency_s"] for c in calls),
        "wall_s": 60 * float(result.get("minutes", 0.0)),
        "hm": float(result["hm"]),
    }


def summarize(runs: list[dict[str, float]]) -> dict[str, float]:
    total = {k: sum(r[k] for r in runs) for k in runs[0]}
    return {
        "runs": len(runs),
        "calls/step": total["calls"] / total["steps"],
        "usable/call": total["usable"] / total["calls"],
        "usable %": 100 * total["usable"] / total["asked"],
        "tokens/usable": total["tokens_out"] / max(1, total["usable"]),
        "s/step": total["llm_s"] / total["steps"],
        "run s": total["wall_s"] / len(runs),
        "H": 100 * statistics.mean(r["hm"] for r in runs),
    }


COLUMNS = ("calls/step", "usable/call", "usable %", "tokens/usable", "s/step", "run s", "H")


def print_table(table: dict[tuple[str, str], dict[str, float]], presets: list[str]) -> None:
    print("| preset | variant | runs | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for preset in presets:
        rows = {v: table[(preset, v)] for v in VARIANTS if (preset, v) in table}
        for variant, row in rows.items():
            print(f"| {preset} | {variant} | {row['runs']} | " + " | ".join(f"{row[c]:.2f}" for c in COLUMNS) + " |")
        if len(rows) == 2:
            ratio = " | ".join(f"{rows['after'][c] / rows['before'][c]:.2f}x" if rows["before"][c] else "-" for c in COLUMNS)
            print(f"| {preset} | after/before | | {ratio} |")


def summarize_existing(specs: list[str]) -> int:
    table: dict[tuple[str, str], dict[str, float]] = {}
    for spec in specs:
        variant, _, root = spec.partition("=")
        if variant not in VARIANTS or not root:
            raise SystemExit(f"--runs takes before=DIR or after=DIR, got {spec!r}")
        runs = sorted(p.parent for p in Path(root).rglob("steps.jsonl") if (p.parent / "result.json").exists()
                      and p.parent.name != "control")
        if not runs:
            raise SystemExit(f"no finished run under {root}")
        table[("runs", variant)] = summarize([measure(r) for r in runs])
        print(f"{variant}: {len(runs)} run(s) under {root}", file=sys.stderr)
    print_table(table, ["runs"])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("1-3"))
    ap.add_argument("--presets", nargs="+", default=["demo", "demo-shifted"])
    ap.add_argument("--llm", default="local", help="an in-process llama.cpp spec (the grammar is what is compared)")
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default: the preset's)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--runs", nargs="+", default=None, metavar="VARIANT=DIR", help="summarize existing runs, no LLM call")
    args = ap.parse_args()
    if args.runs:
        return summarize_existing(args.runs)
    if not args.out:
        ap.error("--out is required unless --runs is given")
    measured: dict[tuple[str, str], list[dict[str, float]]] = {}
    for preset in args.presets:
        for i, seed in enumerate(args.seeds):
            order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                run = run_one(Path(args.out) / preset / f"seed{seed}" / variant, preset, seed, variant, args.llm, args.steps)
                measured.setdefault((preset, variant), []).append(measure(run))
    seeds = args.seeds
    print(f"\n{len(seeds)} split(s) per preset (seeds {seeds[0]}-{seeds[-1]}), local grammar before/after, same machine\n")
    print_table({key: summarize(runs) for key, runs in measured.items()}, args.presets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
