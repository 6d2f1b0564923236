"""How long `ipo demo` takes a new user, for two LLM specs side by side.

Each round runs `ipo demo --seed S` once per spec, alternating which goes first, every run with
empty caches (a fresh ``IPO_CACHE_DIR``; the assembled model is found through ``IPO_MODEL_DIR``,
so it is not rebuilt). Prints per run the wall time, the LLM's share and the calls, then per spec
the mean wall time and the ratio of the means. Wall times depend on the machine and its load:
compare the two specs of one invocation, never figures from two machines.

    .venv/bin/python bench/demo_time.py                    # check-first against grammar-first, seeds 1-3
    .venv/bin/python bench/demo_time.py --seeds 1-5 --spec a=local --spec b="local?grammar_first=true"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controls import seeds_arg  # bench/controls.py: "1-10" or "1,3,5"

from ipo_vlm.llm.local_model import model_path

DEFAULT_SPECS = ("check-first=local", "grammar-first=local?grammar_first=true")


def one_demo(spec: str, seed: int, work: Path, steps: int | None = None) -> dict[str, float]:
    """One `ipo demo` with empty caches; its wall time and what its LLM calls took."""
    env = {**os.environ, "IPO_CACHE_DIR": str(work / "cache"), "IPO_MODEL_DIR": str(model_path().parent)}
    out = work / "run"
    start = time.perf_counter()
    command = [sys.executable, "-m", "ipo_vlm.cli.main", "demo", "--out", str(out), "--seed", str(seed), "--llm", spec]
    if steps:
        command += ["--steps", str(steps)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    calls = [json.loads(line) for line in (out / "llm_calls.jsonl").read_text().splitlines()]
    result = json.loads((out / "result.json").read_text())
    return {"wall_s": wall, "llm_s": sum(c["latency_s"] for c in calls), "calls": len(calls),
            "H": 100.0 * result["hm"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1-3")
    ap.add_argument("--spec", action="append", default=None, help="NAME=LLM_SPEC (give two)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the demo's)")
    args = ap.parse_args(argv)
    specs = dict(s.split("=", 1) for s in (args.spec or DEFAULT_SPECS))
    if len(specs) != 2:
        ap.error("give exactly two --spec NAME=LLM_SPEC")
    names = list(specs)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for r, seed in enumerate(seeds_arg(args.seeds)):
        for name in names if r % 2 == 0 else reversed(names):
            with tempfile.TemporaryDirectory(prefix="ipo-demo-time-") as tmp:
                row = one_demo(specs[name], seed, Path(tmp), args.steps)
            rows[name].append(row)
            print(f"seed {seed} {name}: {row['wall_s']:.0f} s wall, LLM {row['llm_s']:.0f} s in {row['calls']} calls, "
                  f"H {row['H']:.1f}", flush=True)
    print("| spec | runs | wall s (mean) | LLM s (mean) | LLM calls (mean) |")
    print("|---|---|---|---|---|")
    for name in names:
        rs = rows[name]
        print(f"| {name} | {len(rs)} | {statistics.mean(r['wall_s'] for r in rs):.0f} | "
              f"{statistics.mean(r['llm_s'] for r in rs):.0f} | {statistics.mean(r['calls'] for r in rs):.1f} |")
    a, b = (statistics.mean(r["wall_s"] for r in rows[n]) for n in names)
    print(f"wall time, {names[0]} / {names[1]}: x{a / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
