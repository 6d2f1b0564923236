"""`ipo benchmark` on this machine: a grid of the demo dataset plus a folder dataset made of demo
images, seeds 1-3, methods handcrafted / random / ipo, a few steps. Printed:

  (a) wall time of the whole grid (local executor, cold caches);
  (b) wall time of the same command again once finished (every cell skipped);
  (c) images encoded for the grid vs the number of cells;
  (d) the table (table.md);
  (e) with --compare-ray: the grid again with cold caches on a local Ray instance and with the
      local executor, side by side: wall times, their ratio, and whether every cell's numbers
      and template are equal.

    python bench/benchmark_grid.py --llm local --steps 2                 # the offline LLM
    python bench/benchmark_grid.py --llm scripted --compare-ray          # Ray vs local
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

PHRASES = ["a {} photo of a <CLASS>.", "a {} picture of a <CLASS>.", "a close-up {} image of the <CLASS>.",
           "a {} studio shot of a <CLASS>.", "a plain {} photo of one <CLASS>."]
WORDS = ["grey", "small", "centred", "simple", "dark", "bright", "flat", "blurry"]


def make_folder_dataset(root: Path, per_class: int) -> Path:
    """Class folders of PNGs: demo test images mirrored left-right, so that no file has the
    content of a demo image (the feature store would otherwise share them across datasets)."""
    from PIL import ImageOps

    from ipo_vlm.data.demo import DemoDataset

    ds = DemoDataset()
    counts: dict[int, int] = {}
    for s in ds.split("test")[::-1]:  # from the end of the pool
        if counts.get(s.label, 0) >= per_class:
            continue
        counts[s.label] = counts.get(s.label, 0) + 1
        path = root / s.classname.replace(" ", "_") / f"{s.ref.replace('/', '_')}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        ImageOps.mirror(ds.open_image(s)).save(path)
    return root


def scripted(root: Path) -> str:
    answers = ["\n".join(f"{k + 1}. " + PHRASES[(i + k) % 5].replace("{}", WORDS[(3 * i + k) % 8]) for k in range(5)) for i in range(50)]
    path = root / "script.json"
    path.write_text(json.dumps({"responses": answers}))
    return f"scripted:{path}"


def run(grid_raw: dict, bench: Path, cache: Path, executor: str, jobs: int = 1) -> tuple[float, object]:
    from ipo_vlm.benchmark import make_executor, parse_grid, run_benchmark

    os.environ["IPO_CACHE_DIR"] = str(cache)
    started = time.perf_counter()
    summary = run_benchmark(parse_grid(grid_raw), bench, make_executor(executor, jobs))
    return time.perf_counter() - started, summary


def outcomes(bench: Path) -> dict:
    recs = [json.loads(l) for l in (bench / "cells.jsonl").read_text().splitlines()]
    return {r["name"]: (r["status"], r["base_acc"], r["novel_acc"], r["hm"], r["best_template"]) for r in recs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm", default="local", help="LLM spec, or 'scripted' for canned answers")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=40, help="images per class of the folder dataset")
    ap.add_argument("--compare-ray", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--keep", default=None, help="keep the benchmark directories here")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="ipo-bench-grid-"))
    folder = make_folder_dataset(root / "demo-folder", args.per_class)
    llm = scripted(root) if args.llm == "scripted" else args.llm
    grid = {
        "datasets": ["demo", {"name": "folder", "data_root": str(folder), "label": "demo-folder"}],
        "shots": [16], "seeds": [1, 2, 3], "methods": ["handcrafted", "random", "ipo"],
        "preset": "demo", "llm": llm, "captioner": "none",
        "optimize": {"steps": args.steps, "candidates": 5, "select_on": "val"},
    }
    cells = 2 * 3 * 3
    wall, s = run(grid, root / "local", root / "cache-local", "local")
    print(f"(a) grid of {cells} cells, local executor, cold caches: {wall:.1f} s ({s.done} done, {s.failed} failed), LLM {llm}")
    rerun, s2 = run(grid, root / "local", root / "cache-local", "local")
    print(f"(b) the same command once finished: {rerun:.2f} s ({s2.skipped} cells skipped, {s2.ran} run)")
    recs = [json.loads(l) for l in (root / "local" / "cells.jsonl").read_text().splitlines()]
    per_dataset = {d: sum(r["images_encoded"] for r in recs if r["dataset"] == d) for d in ("demo", "demo-folder")}
    print(f"(c) images encoded: {s.images_encoded} for {cells} cells ({per_dataset}); "
          f"per cell: {[r['images_encoded'] for r in recs]}")
    print("(d) table.md:\n" + (root / "local" / "table.md").read_text())
    if args.compare_ray:
        ray_wall, rs = run(grid, root / "ray", root / "cache-ray", "ray", args.jobs)
        local_wall, ls = run(grid, root / "local2", root / "cache-local2", "local")
        same = outcomes(root / "ray") == outcomes(root / "local2")
        print(f"(e) cold caches, same grid: local {local_wall:.1f} s, ray ({args.jobs} CPUs) {ray_wall:.1f} s, "
              f"ratio local/ray {local_wall / ray_wall:.2f}; every cell equal: {same} ({rs.done} / {ls.done} done)")
    print(f"directories: {root}")


if __name__ == "__main__":
    main()
