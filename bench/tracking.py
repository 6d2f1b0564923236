"""What MLflow tracking costs a run: the same run with and without ``--track mlflow``, side by side.

The run is the offline test doubles' (a fake dataset and VLM, a scripted LLM: steps of a few
milliseconds, so the tracker's cost is not hidden in model time), repeated with the variants
interleaved. Per step: the median wall time between finished steps; per run: the fixed cost of
opening the MLflow run (experiment, params) and of closing it (metrics, report, artifacts).

    .venv/bin/python bench/tracking.py                                   # a local SQLite store
    .venv/bin/python bench/tracking.py --uri http://127.0.0.1:5000       # an MLflow server
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def one_run(out: Path, track: str, steps: int, experiment: str) -> tuple[float, list[float]]:
    """(total seconds, seconds between finished steps) of one run."""
    from ipo_vlm.captioner.base import NoCaptioner
    from ipo_vlm.config import preset
    from ipo_vlm.runs.optimize import Backends, optimize
    from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
    from ipo_vlm.testing.scripted import ScriptedLLM

    adjectives = ["bright", "dark", "small", "large", "close-up", "blurry", "clean", "cropped", "studio", "folded", "worn", "plain"]
    nouns = ["photo", "picture", "image", "snapshot", "render"]
    places = ["", " indoors", " outdoors", " on a table"]
    pool = [f"a {a} {n} of a <CLASS>{p}." for p in places for a in adjectives for n in nouns]  # 240 distinct templates
    answers = ["\n".join(f"{k + 1}. {pool[(5 * i + k) % len(pool)]}" for k in range(5)) for i in range(steps + 5)]
    config = preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"},
                                    optimize={"steps": steps, "candidates": 5, "memory_size": 10, "ensemble": 3, "control": "none"},
                                    tracking={"spec": track, "experiment": experiment})
    ds = FakeDataset()
    backends = Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM(answers, model_id="bench"), NoCaptioner())
    marks: list[float] = []

    def progress(p) -> None:  # type: ignore[no-untyped-def]
        if not p.doing:
            marks.append(time.perf_counter())

    started = time.perf_counter()
    optimize(config, out, backends=backends, progress=progress)
    total = time.perf_counter() - started
    return total, [b - a for a, b in zip(marks, marks[1:])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--uri", default=None, help="an MLflow tracking server (default: a local SQLite store in a temp dir)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ipo_vlm.methods").setLevel(logging.ERROR)  # the scripted LLM's repeats are not the point here
    root = Path(tempfile.mkdtemp(prefix="ipo-bench-tracking-"))
    os.chdir(root)  # the default store, ./mlruns, lands here
    os.environ["IPO_CACHE_DIR"] = str(root / "cache")
    if args.uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.uri
    store = args.uri or f"sqlite in {root / 'mlruns'}"
    one_run(root / "warm-none", "none", 2, "bench-warm")  # imports and caches, for both variants
    one_run(root / "warm-mlflow", "mlflow", 2, "bench-warm")  # imports mlflow; creates the store
    results: dict[str, dict[str, list[float]]] = {v: {"total": [], "step": []} for v in ("none", "mlflow")}
    for rep in range(args.repeats):
        for variant in ("none", "mlflow"):
            total, steps = one_run(root / f"{variant}-{rep}", variant, args.steps, "bench-tracking")
            results[variant]["total"].append(total)
            results[variant]["step"].extend(steps)
    none, ml = results["none"], results["mlflow"]
    step_none, step_ml = statistics.median(none["step"]), statistics.median(ml["step"])
    print(f"tracking overhead, {args.steps} steps x {args.repeats} runs per variant (interleaved), store: {store}")
    print(f"{'':24}{'no tracking':>14}{'mlflow':>14}{'ratio':>9}")
    print(f"{'median step, ms':24}{1000 * step_none:>14.1f}{1000 * step_ml:>14.1f}{step_ml / step_none:>9.2f}")
    print(f"{'per-step cost, ms':24}{'':>14}{1000 * (step_ml - step_none):>14.1f}")
    tn, tm = statistics.median(none["total"]), statistics.median(ml["total"])
    print(f"{'median run, s':24}{tn:>14.2f}{tm:>14.2f}{tm / tn:>9.2f}")
    fixed = (tm - tn) - args.steps * (step_ml - step_none)
    print(f"{'open + close run, s':24}{'':>14}{fixed:>14.2f}   (params, final metrics, report.html, 3 artifacts)")
    print(f"a step of the local 1.5B LLM takes 8-20 s: {1000 * (step_ml - step_none):.0f} ms is "
          f"{100 * (step_ml - step_none) / 8:.2f}% of the shortest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
